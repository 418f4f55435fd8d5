#include "server/config.h"

#include "core/version.h"
#include "nacos/auth.h" /* NAUTH_TTL_MS_*: bounds only */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { T_STR, T_U32, T_U64, T_U16 };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	size_t size; /* for strings */
	const char *def;
	const char *help;
};

#define OFF(f)  offsetof(struct server_config, f)
#define SOFF(f) offsetof(struct server_config, store.f)

static const struct opt opts[] = {
	{ "bind", T_STR, OFF(bind), sizeof(((struct server_config *)0)->bind), "0.0.0.0",
	  "address the client port and the Nacos API listen on" },
	{ "port", T_U32, OFF(port), 0, "8850",
	  "client (binary protocol) port; 0 picks a free one" },
	{ "port-file", T_STR, OFF(port_file), sizeof(((struct server_config *)0)->port_file), "",
	  "write the client port chosen to this file once listening" },
	{ "workers", T_U32, OFF(workers), 0, "0",
	  "worker threads, one core each; 0 = one per core" },
	{ "conns-max", T_U32, OFF(conns_max), 0, "10000", "client connections, all workers" },
	{ "frame-max", T_U32, OFF(frame_bytes_max), 0, "1048576", "largest frame accepted, bytes" },
	{ "batch-max", T_U32, OFF(batch_max), 0, "1024", "instances in one frame" },
	{ "idle-timeout", T_U32, OFF(idle_timeout_ms), 0, "300000",
	  "close a connection silent this long, ms; 0 = never" },
	{ "header-timeout", T_U32, OFF(header_timeout_ms), 0, "10000",
	  "a started request (HTTP head and body, binary frame) must arrive whole within this "
	  "many ms, on every port, else the connection is closed (100..600000)" },
	{ "conns-per-source", T_U32, OFF(conns_per_source), 0, "1024",
	  "client connections (both client ports together) from one source address; 0 = no "
	  "bound" },
	{ "out-max", T_U32, OFF(out_bytes_max), 0, "16777216",
	  "unsent bytes a connection may hold before it is closed as too slow" },
	{ "expire-budget", T_U32, OFF(expire_budget), 0, "4096",
	  "expiry actions per worker loop (bounds the pause)" },
	{ "push-window", T_U32, OFF(push_window_ms), 0, "10",
	  "subscription pushes coalesce the changes of this many ms" },
	{ "subs-max", T_U32, OFF(subs_max), 0, "65536", "subscriptions per worker" },
	{ "http-bind", T_STR, OFF(http_bind), sizeof(((struct server_config *)0)->http_bind),
	  "0.0.0.0", "address the HTTP admin port (/metrics, /health, /cluster) listens on" },
	{ "http-port", T_U32, OFF(http_port), 0, "8851", "HTTP admin port; 0 picks a free one" },
	{ "http-port-file", T_STR, OFF(http_port_file),
	  sizeof(((struct server_config *)0)->http_port_file), "",
	  "write the HTTP port chosen to this file once listening" },
	{ "nacos-port", T_U32, OFF(nacos_port), 0, "8848",
	  "Nacos HTTP API port (/nacos/...) on --bind, served by the workers; 0 picks a free one" },
	{ "nacos-port-file", T_STR, OFF(nacos_port_file),
	  sizeof(((struct server_config *)0)->nacos_port_file), "",
	  "write the Nacos port chosen to this file once listening" },
	{ "grpc-port", T_STR, OFF(grpc_port_arg),
	  sizeof(((struct server_config *)0)->grpc_port_arg), "auto",
	  "Nacos 2.x gRPC port on --bind, served by the workers: auto (--nacos-port + 1000, as "
	  "Nacos clients assume; ephemeral when --nacos-port is 0), off, or a port (0 picks one)" },
	{ "grpc-port-file", T_STR, OFF(grpc_port_file),
	  sizeof(((struct server_config *)0)->grpc_port_file), "",
	  "write the gRPC port chosen to this file once listening" },
	{ "grpc-detect-idle", T_U32, OFF(grpc_detect_idle_ms), 0, "20000",
	  "a gRPC connection silent this long gets a ClientDetectionRequest, ms (Nacos: 20000)" },
	{ "grpc-detect-timeout", T_U32, OFF(grpc_detect_timeout_ms), 0, "5000",
	  "a gRPC connection that does not answer it within this is closed with its instances, "
	  "ms" },
	{ "grpc-renew", T_U32, OFF(grpc_renew_ms), 0, "0",
	  "the instances of each gRPC connection are renewed this often, ms (< --beat-timeout); "
	  "0 = --beat-interval" },
	{ "grpc-move-after", T_U32, OFF(grpc_move_after_ms), 0, "10000",
	  "a node that has refused writes for --peer-down (no quorum) sends ConnectResetRequest "
	  "to the gRPC clients connected at least this long and closes them, ms" },
	{ "grpc-push-timeout", T_U32, OFF(grpc_push_timeout_ms), 0, "5000",
	  "a NotifySubscriberRequest not acknowledged within this is sent again, ms" },
	{ "grpc-msg-max", T_U32, OFF(grpc_msg_bytes_max), 0, "4194304",
	  "largest gRPC message accepted or sent, bytes (gRPC's default 4 MiB)" },
	{ "grpc-streams-max", T_U32, OFF(grpc_streams_max), 0, "128",
	  "concurrent HTTP/2 streams of one gRPC connection" },
	{ "nacos-push-window", T_U32, OFF(nacos_push_window_ms), 0, "2",
	  "UDP pushes to Nacos subscribers coalesce the changes of this many ms" },
	{ "nacos-push-retry", T_U32, OFF(nacos_push_retry_ms), 0, "1000",
	  "an unacknowledged UDP push is sent once more after this many ms" },
	{ "nacos-push-ttl", T_U32, OFF(nacos_push_ttl_ms), 0, "30000",
	  "a UDP subscriber that stops polling is forgotten after this many ms" },
	{ "nacos-push-subs-max", T_U32, OFF(nacos_push_subs_max), 0, "65536",
	  "UDP push subscribers of the node" },
	{ "auth-users", T_STR, OFF(auth_users), sizeof(((struct server_config *)0)->auth_users), "",
	  "users file (name:bcrypt-hash[:admin] lines, distroctl hash-password): turns on "
	  "authentication of the Nacos API and the client port; empty = off" },
	{ "auth-token-ttl", T_U32, OFF(auth_token_ttl_ms), 0, "18000000",
	  "lifetime of the tokens a login issues, ms (1000..604800000; Nacos's 18000 s)" },
	{ "log-level", T_STR, OFF(log_level), sizeof(((struct server_config *)0)->log_level),
	  "info", "error, warn, info or debug" },
	{ "config", T_STR, OFF(config_file), sizeof(((struct server_config *)0)->config_file), "",
	  "read settings from this file first (name = value lines)" },
	{ "node-id", T_U16, SOFF(node_id), 0, "0",
	  "this node's id in versions; in a cluster its cluster.conf id is used" },
	{ "cluster-conf", T_STR, OFF(cluster_conf),
	  sizeof(((struct server_config *)0)->cluster_conf), "",
	  "cluster.conf (host:peerport per line), reloaded on change and on SIGHUP; empty: "
	  "standalone" },
	{ "cluster-self", T_STR, OFF(cluster_self),
	  sizeof(((struct server_config *)0)->cluster_self), "",
	  "this node's line in cluster.conf; empty: the local address with --peer-port" },
	{ "peer-port", T_U32, OFF(peer_port), 0, "7848",
	  "peer port, to find this node in cluster.conf" },
	{ "cluster-secret-file", T_STR, OFF(cluster_secret_file),
	  sizeof(((struct server_config *)0)->cluster_secret_file), "",
	  "file holding the shared cluster secret (>= 16 bytes); or env DISTRO_CLUSTER_SECRET" },
	{ "peer-listen", T_STR, OFF(peer_listen), sizeof(((struct server_config *)0)->peer_listen),
	  "", "host:port the peer port listens on; empty: this node's line in cluster.conf" },
	{ "peer-tls", T_STR, OFF(peer_tls), sizeof(((struct server_config *)0)->peer_tls), "on",
	  "encrypt peer links with TLS 1.3 keyed from the cluster secret: on or off (every "
	  "member must agree)" },
	{ "peer-ping", T_U32, OFF(peer_ping_ms), 0, "200", "ping every peer link this often, ms" },
	{ "peer-suspect", T_U32, OFF(peer_suspect_ms), 0, "1000",
	  "a peer silent this long is SUSPICIOUS (keeps its slots), ms" },
	{ "peer-down", T_U32, OFF(peer_down_ms), 0, "3000",
	  "a peer silent this long is DOWN (its slots move), ms" },
	{ "sync-window", T_U32, OFF(sync_window_ms), 0, "2",
	  "changes are coalesced per instance and sent to peers this often, ms" },
	{ "verify-interval", T_U32, OFF(verify_ms), 0, "1000",
	  "send each peer a digest of the slots this node owns this often, ms" },
	{ "startup-wait", T_U32, OFF(startup_wait_ms), 0, "3000",
	  "with no READY peer for this long after start, become READY with what it holds, ms" },
	{ "peer-backlog", T_U64, OFF(peer_backlog_bytes), 0, "67108864",
	  "unsent bytes per peer link before sync records are dropped (verify repairs them)" },
	{ "fault-drop-sync", T_U32, OFF(fault_drop_pct), 0, "0",
	  "testing: percent of outgoing sync frames dropped" },
	{ "fault-delay-sync", T_U32, OFF(fault_delay_ms), 0, "0",
	  "testing: hold outgoing sync frames this long, ms" },
	{ "beat-interval", T_U32, SOFF(timing.interval_ms), 0, "5000",
	  "default heartbeat interval advised to clients, ms" },
	{ "beat-timeout", T_U32, SOFF(timing.timeout_ms), 0, "15000",
	  "default: unhealthy after this long without a beat, ms" },
	{ "delete-timeout", T_U32, SOFF(timing.delete_ms), 0, "30000",
	  "default: removed after this long without a beat, ms" },
	{ "tombstone", T_U32, SOFF(tombstone_ms), 0, "60000",
	  "how long a delete is remembered, ms" },
	{ "name-max", T_U32, SOFF(limits.name_bytes_max), 0, "256",
	  "bytes in a namespace, group, service or cluster name" },
	{ "meta-max", T_U32, SOFF(limits.meta_bytes_max), 0, "4096",
	  "metadata bytes (keys and values) of an instance" },
	{ "meta-pairs-max", T_U32, SOFF(limits.meta_pairs_max), 0, "64",
	  "metadata pairs of an instance" },
	{ "instances-max", T_U64, SOFF(limits.instances_max), 0, "16777216",
	  "instances (and remembered deletes) of the node" },
	{ "service-instances-max", T_U32, SOFF(limits.service_instances_max), 0, "100000",
	  "instances of one service" },
	{ "services-max", T_U32, SOFF(limits.services_max), 0, "1048576", "services of the node" },
	{ "clusters-max", T_U32, SOFF(limits.clusters_max), 0, "1024", "clusters of one service" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int set(struct server_config *c, const struct opt *o, const char *val)
{
	char *base = (char *)c, *end;
	unsigned long long v;

	if (o->type == T_STR) {
		if (strlen(val) >= o->size) {
			fprintf(stderr, "distrod: --%s: value too long\n", o->name);
			return -1;
		}
		strcpy(base + o->offset, val);
		return 0;
	}
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno || end == val || *end != '\0' || val[0] == '-' ||
	    (o->type == T_U32 && v > UINT32_MAX) || (o->type == T_U16 && v > UINT16_MAX)) {
		fprintf(stderr, "distrod: --%s: '%s' is not a valid number\n", o->name, val);
		return -1;
	}
	if (o->type == T_U32)
		*(uint32_t *)(base + o->offset) = (uint32_t)v;
	else if (o->type == T_U16)
		*(uint16_t *)(base + o->offset) = (uint16_t)v;
	else
		*(uint64_t *)(base + o->offset) = v;
	return 0;
}

static const struct opt *find(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

void config_usage(FILE *out)
{
	fprintf(out, "usage: distrod [--name value]...\n\n"
	             "A service registry for ephemeral instances. Runs standalone with no\n"
	             "settings. Every flag may also be a `name = value` line in --config.\n\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(out, "  --%-22s %s (default: %s)\n", opts[i].name, opts[i].help,
		        opts[i].def[0] ? opts[i].def : "none");
	fprintf(out, "  --%-22s %s\n", "help", "print this and exit");
	fprintf(out, "  --%-22s %s\n", "version", "print the version and the commit, and exit");
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_file(struct server_config *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0;

	if (f == NULL) {
		fprintf(stderr, "distrod: cannot read config file %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq;
		const struct opt *o;

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			fprintf(stderr, "distrod: %s:%d: expected name = value\n", path, lineno);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		o = find(trim(s));
		if (o == NULL || strcmp(o->name, "config") == 0) {
			fprintf(stderr, "distrod: %s:%d: unknown setting '%s'\n", path, lineno,
			        trim(s));
			fclose(f);
			return -1;
		}
		if (set(c, o, trim(eq + 1)) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/*
 * The ports this node listens on must differ, whatever the bind addresses:
 * the defaults all bind 0.0.0.0, and a clash found here is one line on
 * stderr instead of a node that half starts. 0 picks a free port, so it
 * never collides. The peer port counts only when it is what this node
 * listens on: in a cluster, found through --peer-port (--cluster-self names
 * the peer address itself).
 */
static int ports_collide(const struct server_config *c)
{
	const struct {
		const char *flag;
		uint32_t port;
	} p[] = {
		{ "--port", c->port },
		{ "--nacos-port", c->nacos_port },
		{ "--grpc-port", c->grpc_on ? c->grpc_port : 0 },
		{ "--http-port", c->http_port },
		{ "--peer-port",
		  c->cluster_conf[0] && c->cluster_self[0] == '\0' ? c->peer_port : 0 },
	};

	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		for (size_t j = i + 1; j < sizeof(p) / sizeof(p[0]); j++)
			if (p[i].port != 0 && p[i].port == p[j].port) {
				fprintf(stderr,
				        "distrod: %s and %s are both %u; each port needs "
				        "its own number\n",
				        p[i].flag, p[j].flag, p[i].port);
				return -1;
			}
	return 0;
}

int config_load(struct server_config *c, int argc, char **argv)
{
	struct option lopts[NOPTS + 3];
	enum log_level lvl;
	int ch, idx;

	memset(c, 0, sizeof(*c));
	store_config_default(&c->store);
	for (size_t i = 0; i < NOPTS; i++) {
		if (set(c, &opts[i], opts[i].def) < 0)
			return -1;
		lopts[i] = (struct option){ opts[i].name, required_argument, NULL, (int)i };
	}
	lopts[NOPTS] = (struct option){ "help", no_argument, NULL, 'h' };
	lopts[NOPTS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	lopts[NOPTS + 2] = (struct option){ NULL, 0, NULL, 0 };

	/*
	 * First pass: only --config, --help and --version, so the file comes
	 * before the other flags.
	 */
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lopts, &idx)) != -1) {
		if (ch == 'h') {
			config_usage(stdout);
			return 1;
		}
		if (ch == 'V') {
			printf("distrod %s\n", DISTRO_VERSION_LINE);
			return 1;
		}
		if (ch >= 0 && (size_t)ch < NOPTS && strcmp(opts[ch].name, "config") == 0 &&
		    set(c, &opts[ch], optarg) < 0)
			return -1;
	}
	if (c->config_file[0] && load_file(c, c->config_file) < 0)
		return -1;
	opterr = 1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lopts, &idx)) != -1) {
		if (ch == '?' || ch == ':') {
			fprintf(stderr, "distrod: see --help\n");
			return -1;
		}
		if (ch >= 0 && (size_t)ch < NOPTS && set(c, &opts[ch], optarg) < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "distrod: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -1;
	}
	if (log_level_parse(c->log_level, &lvl) < 0) {
		fprintf(stderr, "distrod: --log-level: '%s' is not error, warn, info or debug\n",
		        c->log_level);
		return -1;
	}
	log_level_max = lvl;
	if (c->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->workers = n > 0 ? (uint32_t)n : 1;
	}
	if (c->workers > STORE_SHARDS_MAX) {
		fprintf(stderr, "distrod: --workers: at most %u\n", STORE_SHARDS_MAX);
		return -1;
	}
	if (c->port > 65535 || c->nacos_port > 65535 || c->http_port > 65535) {
		fprintf(stderr, "distrod: --port, --nacos-port and --http-port: at most 65535\n");
		return -1;
	}
	/* Ranges that keep every size computation far from 32-bit overflow. */
	if (c->frame_bytes_max < 4096 || c->frame_bytes_max > (64u << 20) || c->batch_max == 0 ||
	    c->batch_max > 65535 || c->conns_max == 0 || c->conns_max > 1000000 ||
	    c->out_bytes_max < (64u << 10) || c->out_bytes_max > (1u << 30) ||
	    c->expire_budget == 0 || c->push_window_ms == 0 || c->push_window_ms > 60000 ||
	    c->subs_max == 0 || c->header_timeout_ms < 100 || c->header_timeout_ms > 600000) {
		fprintf(stderr, "distrod: out of range: need --frame-max 4096..64Mi, --batch-max "
		                "1..65535, --conns-max 1..1000000, --out-max 64Ki..1Gi, "
		                "--expire-budget >= 1, --push-window 1..60000, --subs-max >= 1, "
		                "--header-timeout 100..600000\n");
		return -1;
	}
	if (!(c->store.timing.interval_ms < c->store.timing.timeout_ms &&
	      c->store.timing.timeout_ms <= c->store.timing.delete_ms)) {
		fprintf(stderr,
		        "distrod: need --beat-interval < --beat-timeout <= --delete-timeout "
		        "(have %u, %u, %u)\n",
		        c->store.timing.interval_ms, c->store.timing.timeout_ms,
		        c->store.timing.delete_ms);
		return -1;
	}
	if (c->peer_port == 0 || c->peer_port > 65535 || c->peer_ping_ms == 0 ||
	    c->peer_suspect_ms <= c->peer_ping_ms || c->peer_down_ms <= c->peer_suspect_ms ||
	    c->sync_window_ms == 0 || c->sync_window_ms > 10000 || c->verify_ms < 10 ||
	    c->peer_backlog_bytes < (1u << 20) || c->fault_drop_pct > 100 ||
	    c->fault_delay_ms > 60000) {
		fprintf(stderr, "distrod: out of range: need --peer-port 1..65535, --peer-ping < "
		                "--peer-suspect < --peer-down, --sync-window 1..10000, "
		                "--verify-interval >= 10, --peer-backlog >= 1Mi, --fault-drop-sync "
		                "0..100, --fault-delay-sync <= 60000\n");
		return -1;
	}
	if (strcmp(c->peer_tls, "on") != 0 && strcmp(c->peer_tls, "off") != 0) {
		fprintf(stderr, "distrod: --peer-tls: need on or off\n");
		return -1;
	}
	if (c->auth_token_ttl_ms < NAUTH_TTL_MS_MIN || c->auth_token_ttl_ms > NAUTH_TTL_MS_MAX) {
		fprintf(stderr, "distrod: --auth-token-ttl: need %lld..%lld ms\n", NAUTH_TTL_MS_MIN,
		        NAUTH_TTL_MS_MAX);
		return -1;
	}
	if (strcmp(c->grpc_port_arg, "off") == 0) {
		c->grpc_on = false;
	} else if (strcmp(c->grpc_port_arg, "auto") == 0) {
		c->grpc_on = true;
		c->grpc_port = c->nacos_port == 0 ? 0 : c->nacos_port + 1000;
	} else {
		char *end;
		unsigned long v = strtoul(c->grpc_port_arg, &end, 10);

		c->grpc_on = true;
		c->grpc_port = (uint32_t)v;
		if (*c->grpc_port_arg == '\0' || *end != '\0' || v > 65535) {
			fprintf(stderr, "distrod: --grpc-port: need auto, off or 0..65535\n");
			return -1;
		}
	}
	if (c->grpc_on && c->grpc_port > 65535) {
		/* A Nacos port above 64535 has no +1000: the SDKs cannot reach gRPC there anyway.
		 */
		fprintf(stderr, "distrod: --grpc-port auto: --nacos-port + 1000 is over 65535, the "
		                "gRPC port is off (give --grpc-port to serve it)\n");
		c->grpc_on = false;
		c->grpc_port = 0;
	}
	if (c->grpc_renew_ms == 0)
		c->grpc_renew_ms =
		        c->store.timing.interval_ms; /* < --beat-timeout, checked above */
	if (c->grpc_detect_idle_ms < 100 || c->grpc_detect_timeout_ms < 100 ||
	    c->grpc_renew_ms < 10 || c->grpc_renew_ms >= c->store.timing.timeout_ms ||
	    c->grpc_push_timeout_ms < 100 || c->grpc_move_after_ms < 100 ||
	    c->grpc_msg_bytes_max < 4096 || c->grpc_msg_bytes_max > (64u << 20) ||
	    c->grpc_streams_max == 0 || c->grpc_streams_max > 65536) {
		fprintf(stderr, "distrod: out of range: need --grpc-detect-idle, "
		                "--grpc-detect-timeout, --grpc-push-timeout, --grpc-move-after >= "
		                "100, --grpc-renew "
		                "10..(--beat-timeout - 1), --grpc-msg-max 4096..64Mi, "
		                "--grpc-streams-max 1..65536\n");
		return -1;
	}
	if (ports_collide(c) < 0)
		return -1;
	if (c->store.tombstone_ms < 1000) {
		fprintf(stderr, "distrod: --tombstone must be at least 1000 ms\n");
		return -1;
	}
	c->store.shards = c->workers;
	return 0;
}
