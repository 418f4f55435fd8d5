/*
 * distroctl - the command line client for distrod.
 *
 *   distroctl [-s HOST:PORT] [--json] [--user U --password-file F | --token T]
 *             COMMAND ARGS...
 *
 * Human-readable output by default, one JSON document with --json; exit
 * status 0 on success, 1 when the node refused or failed, 2 on bad usage,
 * with the reason on stderr.
 */
#include "distro/client.h"
#include "core/version.h"
#include "nacos/auth.h" /* NAUTH_* bounds of hash-password, no code */

#include <crypt.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define META_MAX 64

static const char *server = "127.0.0.1:8850"; /* distrod --port */
static bool json;
/* Credentials for a node with authentication on (distrod --auth-users). */
static const char *auth_user, *auth_password_file, *auth_token;

static void usage(FILE *out)
{
	fprintf(out, "usage: distroctl [-s HOST:PORT] [--json] [--user U] [--token T] COMMAND ...\n"
	             "\n"
	             "commands:\n"
	             "  register SERVICE IP:PORT [instance options] [--keepalive]\n"
	             "                     register (and with --keepalive, beat until Ctrl-C, then "
	             "deregister)\n"
	             "  deregister SERVICE IP:PORT [--ns NS] [--group G] [--cluster C]\n"
	             "  beat SERVICE IP:PORT [instance options]   one heartbeat (re-creates if "
	             "unknown)\n"
	             "  list SERVICE [--ns NS] [--group G] [--cluster C]... [--healthy] [--all]\n"
	             "  ping               check the node answers\n"
	             "  stats              the node's counters\n"
	             "  cluster            the members as the node sees them: health, READY, "
	             "slots owned\n"
	             "                     (counted in its slot map), and the map's version\n"
	             "  hash-password [--cost N]   print a bcrypt hash (N 4..14, default 10)\n"
	             "                     of a password read on stdin, for the Nacos users file\n"
	             "\n"
	             "options:\n"
	             "  -s, --server HOST:PORT   node to talk to (default 127.0.0.1:8850)\n"
	             "  --json                   print JSON instead of text\n"
	             "  --version                print the version and the commit, and exit\n"
	             "  --user NAME              authenticate as NAME (a node started with "
	             "--auth-users);\n"
	             "                           the password from --password-file or "
	             "$DISTRO_PASSWORD\n"
	             "  --password-file FILE     the password: the file's first line\n"
	             "  --token TOKEN            authenticate with a token (a Nacos login's "
	             "accessToken);\n"
	             "                           or $DISTRO_TOKEN\n"
	             "instance options:\n"
	             "  --ns NS  --group G  --cluster C  --weight W (0..10000, default 1)\n"
	             "  --meta KEY=VALUE (repeatable)  --unhealthy  --disabled  --persistent\n"
	             "  --interval MS  --timeout MS  --delete MS   heartbeat timing (default: the "
	             "node's)\n"
	             "list options:\n"
	             "  --healthy  only healthy instances;  --all  include disabled ones\n");
}

static int fail(const char *what, int rc)
{
	if (json)
		printf("{\"ok\":false,\"error\":%d,\"message\":\"%s: %s\"}\n", rc < 0 ? -rc : rc,
		       what, distro_strerror(rc));
	fprintf(stderr, "distroctl: %s: %s\n", what, distro_strerror(rc));
	return 1;
}

static int parse_ip_port(const char *s, char *ip, size_t iplen, uint16_t *port)
{
	const char *colon;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e || e[1] != ':' || (size_t)(e - s - 1) >= iplen)
			return -1;
		memcpy(ip, s + 1, (size_t)(e - s - 1));
		ip[e - s - 1] = '\0';
		colon = e + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= iplen)
			return -1;
		memcpy(ip, s, (size_t)(colon - s));
		ip[colon - s] = '\0';
	}
	p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

struct list_state {
	int n;
	const char *json_head; /* service name: print the document's head before the first entry */
};

static void json_str(const char *s);

static void print_json_head(const char *service)
{
	printf("{\"service\":");
	json_str(service);
	printf(",\"hosts\":[");
}

static void print_entry(void *ctx, const struct distro_entry *e)
{
	struct list_state *st = ctx;

	if (json) {
		if (st->n == 0 && st->json_head)
			print_json_head(st->json_head);
		printf("%s{\"ip\":", st->n ? "," : "");
		json_str(e->ip);
		printf(",\"port\":%u,\"cluster\":", e->port);
		json_str(e->cluster);
		printf(",\"weight\":%g,\"healthy\":%s,\"enabled\":%s,\"ephemeral\":%s,"
		       "\"metadata\":{",
		       e->weight, e->healthy ? "true" : "false", e->enabled ? "true" : "false",
		       e->ephemeral ? "true" : "false");
		for (uint32_t i = 0; i < e->meta_n; i++) {
			if (i)
				putchar(',');
			json_str(e->meta[i].key);
			putchar(':');
			json_str(e->meta[i].val);
		}
		printf("}}");
	} else {
		printf("%s%s%s:%u  cluster=%s weight=%g %s%s", strchr(e->ip, ':') ? "[" : "", e->ip,
		       strchr(e->ip, ':') ? "]" : "", e->port, e->cluster, e->weight,
		       e->healthy ? "healthy" : "UNHEALTHY", e->enabled ? "" : " disabled");
		for (uint32_t i = 0; i < e->meta_n; i++)
			printf(" %s=%s", e->meta[i].key, e->meta[i].val);
		putchar('\n');
	}
	st->n++;
}

static void print_push(void *ctx, uint32_t id, uint64_t revision, const struct distro_entry *e,
                       uint32_t n)
{
	struct list_state st = { 0 };

	(void)ctx;
	(void)id;
	if (json) {
		printf("{\"revision\":%llu,\"hosts\":[", (unsigned long long)revision);
		for (uint32_t i = 0; i < n; i++)
			print_entry(&st, &e[i]);
		printf("]}\n");
	} else {
		printf("-- revision %llu: %u instance%s\n", (unsigned long long)revision, n,
		       n == 1 ? "" : "s");
		for (uint32_t i = 0; i < n; i++)
			print_entry(&st, &e[i]);
	}
	fflush(stdout);
}

static const char *health_word(uint8_t h)
{
	return h == DISTRO_UP ? "UP" : h == DISTRO_SUSPICIOUS ? "SUSPICIOUS" : "DOWN";
}

/* `distroctl cluster`: the node's SLOT_MAP, members with the slots each owns. */
static int print_cluster(struct distro_client *c)
{
	static struct distro_slot_map map; /* 40 KiB */
	uint32_t slots[DISTRO_MEMBERS_MAX + 1] = { 0 };
	int rc;

	if ((rc = distro_slot_map(c, &map)) < 0)
		return rc;
	for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
		slots[map.owners[s]]++; /* the decoder bounds every owner */
	if (map.n == 0) {
		printf(json ? "{\"clustered\":false}\n" : "standalone node (no cluster)\n");
		return 0;
	}
	if (json) {
		printf("{\"clustered\":true,\"map_version\":%llu,\"self\":%u,\"ready\":%s,"
		       "\"members\":[",
		       (unsigned long long)map.version, map.self_id, map.ready ? "true" : "false");
		for (uint32_t i = 0; i < map.n; i++) {
			const struct distro_member *m = &map.m[i];

			printf("%s{\"id\":%u,\"addr\":", i ? "," : "", m->id);
			json_str(m->addr);
			printf(",\"client_addr\":");
			json_str(m->client_addr);
			printf(",\"self\":%s,\"health\":\"%s\",\"ready\":%s,\"slots\":%u}",
			       m->id == map.self_id ? "true" : "false", health_word(m->health),
			       m->ready ? "true" : "false", slots[m->id]);
		}
		printf("],\"unowned_slots\":%u}\n", slots[0]);
		return 0;
	}
	printf("slot map version %llu; this node is member %u, %s\n",
	       (unsigned long long)map.version, map.self_id, map.ready ? "READY" : "NOT READY");
	printf("  %-3s %-24s %-24s %-10s %-5s %5s\n", "ID", "PEER ADDRESS", "CLIENT ADDRESS",
	       "HEALTH", "READY", "SLOTS");
	for (uint32_t i = 0; i < map.n; i++) {
		const struct distro_member *m = &map.m[i];

		printf("%c %-3u %-24s %-24s %-10s %-5s %5u\n", m->id == map.self_id ? '*' : ' ',
		       m->id, m->addr, m->client_addr[0] ? m->client_addr : "-",
		       health_word(m->health), m->ready ? "yes" : "no", slots[m->id]);
	}
	if (slots[0])
		printf("unowned slots: %u\n", slots[0]);
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

enum {
	O_NS = 256,
	O_GROUP,
	O_CLUSTER,
	O_WEIGHT,
	O_META,
	O_UNHEALTHY,
	O_DISABLED,
	O_PERSISTENT,
	O_INTERVAL,
	O_TIMEOUT,
	O_DELETE,
	O_HEALTHY,
	O_ALL,
	O_KEEPALIVE,
	O_JSON,
	O_USER,
	O_PASSWORD_FILE,
	O_TOKEN
};

static const char *result_word(int r)
{
	switch (r) {
	case 0:
		return "unchanged";
	case 1:
		return "changed";
	case 2:
		return "created";
	}
	return "failed";
}

/*
 * hash-password: a line of the Nacos API's users file needs a bcrypt hash
 * (docs/nacos.md, "Authentication"). Reads one line from stdin, without
 * echo and twice when stdin is a terminal, and prints `$2b$NN$...` made
 * by libxcrypt with a salt from the kernel's random source.
 */
static int read_password(const char *prompt, char *buf, size_t cap, bool tty)
{
	struct termios old, quiet;
	size_t n;
	char *ok;

	if (tty) {
		fputs(prompt, stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ok = fgets(buf, (int)cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (ok == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(stdin))
		return -2; /* longer than the buffer */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return (int)n;
}

static int hash_password(int argc, char **argv)
{
	static struct crypt_data cd; /* 32 KiB: not on the stack */
	char pass[NAUTH_PASSWORD_MAX + 2], again[NAUTH_PASSWORD_MAX + 2];
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	bool tty = isatty(STDIN_FILENO);
	long cost = 10;
	int n;

	for (int i = 1; i < argc; i++) {
		char *end = NULL;

		if (!strcmp(argv[i], "--cost") && i + 1 < argc)
			cost = strtol(argv[++i], &end, 10);
		else if (!strncmp(argv[i], "--cost=", 7))
			cost = strtol(argv[i] + 7, &end, 10);
		if (end == NULL || *end != '\0' || cost < 4 || cost > NAUTH_BCRYPT_COST_MAX) {
			fprintf(stderr, "distroctl: hash-password [--cost N], N in 4..%d\n",
			        NAUTH_BCRYPT_COST_MAX);
			return 2;
		}
	}
	n = read_password("Password: ", pass, sizeof(pass), tty);
	if (n <= 0 || n > NAUTH_PASSWORD_MAX) {
		fprintf(stderr, "distroctl: hash-password: need a password of 1..%d bytes\n",
		        NAUTH_PASSWORD_MAX);
		return 1;
	}
	if (tty && (read_password("Again: ", again, sizeof(again), tty) != n ||
	            strcmp(pass, again) != 0)) {
		fprintf(stderr, "distroctl: hash-password: the passwords differ\n");
		return 1;
	}
	if (crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, salt, sizeof(salt)) == NULL ||
	    crypt_r(pass, salt, &cd) == NULL || strncmp(cd.output, "$2b$", 4) != 0) {
		fprintf(stderr, "distroctl: hash-password: libcrypt made no bcrypt hash\n");
		return 1;
	}
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(again, sizeof(again));
	printf("%s\n", cd.output);
	return 0;
}

/*
 * --token (or $DISTRO_TOKEN), else --user with the password of
 * --password-file or $DISTRO_PASSWORD: proves the connection before the
 * command. Nothing given: nothing sent (a node without authentication).
 * 0, or the exit status after saying why.
 */
static int authenticate(struct distro_client *c)
{
	const char *token = auth_token ? auth_token : getenv("DISTRO_TOKEN");
	char pass[NAUTH_PASSWORD_MAX + 2];
	const char *env;
	int rc;

	if (token && *token) {
		rc = distro_auth_token(c, token);
		return rc < 0 ? fail("--token", rc) : 0;
	}
	if (auth_user == NULL) {
		if (auth_password_file) {
			fprintf(stderr, "distroctl: --password-file needs --user\n");
			return 2;
		}
		return 0;
	}
	if (auth_password_file) {
		FILE *f = fopen(auth_password_file, "r");
		size_t n;

		if (f == NULL || fgets(pass, sizeof(pass), f) == NULL) {
			fprintf(stderr, "distroctl: --password-file %s: cannot read a line\n",
			        auth_password_file);
			if (f)
				fclose(f);
			return 2;
		}
		fclose(f);
		n = strcspn(pass, "\r\n");
		pass[n] = '\0';
	} else if ((env = getenv("DISTRO_PASSWORD")) != NULL && strlen(env) <= NAUTH_PASSWORD_MAX) {
		strcpy(pass, env);
	} else {
		fprintf(stderr, "distroctl: --user needs --password-file or $DISTRO_PASSWORD\n");
		return 2;
	}
	rc = distro_auth_password(c, auth_user, pass);
	explicit_bzero(pass, sizeof(pass));
	return rc < 0 ? fail("--user", rc) : 0;
}

int main(int argc, char **argv)
{
	static const struct option gopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "user", required_argument, NULL, O_USER },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "token", required_argument, NULL, O_TOKEN },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option copts[] = {
		{ "ns", required_argument, NULL, O_NS },
		{ "group", required_argument, NULL, O_GROUP },
		{ "cluster", required_argument, NULL, O_CLUSTER },
		{ "weight", required_argument, NULL, O_WEIGHT },
		{ "meta", required_argument, NULL, O_META },
		{ "unhealthy", no_argument, NULL, O_UNHEALTHY },
		{ "disabled", no_argument, NULL, O_DISABLED },
		{ "persistent", no_argument, NULL, O_PERSISTENT },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "delete", required_argument, NULL, O_DELETE },
		{ "healthy", no_argument, NULL, O_HEALTHY },
		{ "all", no_argument, NULL, O_ALL },
		{ "keepalive", no_argument, NULL, O_KEEPALIVE },
		{ "json", no_argument, NULL, O_JSON },
		{ "server", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, O_USER },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "token", required_argument, NULL, O_TOKEN },
		{ NULL, 0, NULL, 0 },
	};
	struct distro_kv meta[META_MAX];
	char metabuf[META_MAX][512];
	const char *clusters[64];
	uint32_t nclusters = 0;
	struct distro_instance in;
	struct distro_list_opts lo = { 0 };
	struct distro_client *c;
	bool keepalive = false;
	const char *cmd;
	char ip[64];
	int ch, rc;

	distro_instance_init(&in);
	while ((ch = getopt_long(argc, argv, "+s:h", gopts, NULL)) != -1) {
		if (ch == 's')
			server = optarg;
		else if (ch == O_JSON)
			json = true;
		else if (ch == O_USER)
			auth_user = optarg;
		else if (ch == O_PASSWORD_FILE)
			auth_password_file = optarg;
		else if (ch == O_TOKEN)
			auth_token = optarg;
		else if (ch == 'h') {
			usage(stdout);
			return 0;
		} else if (ch == 'V') {
			printf("distroctl %s\n", DISTRO_VERSION_LINE);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "hash-password")) /* local: needs no server */
		return hash_password(argc - optind, argv + optind);
	/* Command options may come before or after the positional arguments. */
	optind++;
	int pos0 = optind;
	char *positional[4];
	int npos = 0;

	opterr = 1;
	while (optind < argc) {
		ch = getopt_long(argc, argv, "s:", copts, NULL);
		if (ch == -1) {
			if (npos < 4)
				positional[npos++] = argv[optind];
			optind++;
			continue;
		}
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case O_JSON:
			json = true;
			break;
		case O_USER:
			auth_user = optarg;
			break;
		case O_PASSWORD_FILE:
			auth_password_file = optarg;
			break;
		case O_TOKEN:
			auth_token = optarg;
			break;
		case O_NS:
			in.ns = optarg;
			break;
		case O_GROUP:
			in.group = optarg;
			break;
		case O_CLUSTER:
			in.cluster = optarg;
			if (nclusters < 64)
				clusters[nclusters++] = optarg;
			break;
		case O_WEIGHT:
			in.weight = atof(optarg);
			break;
		case O_META: {
			char *eq = strchr(optarg, '=');

			if (!eq || in.meta_n >= META_MAX || strlen(optarg) >= 512) {
				fprintf(stderr, "distroctl: --meta wants KEY=VALUE\n");
				return 2;
			}
			strcpy(metabuf[in.meta_n], optarg);
			metabuf[in.meta_n][eq - optarg] = '\0';
			meta[in.meta_n].key = metabuf[in.meta_n];
			meta[in.meta_n].val = metabuf[in.meta_n] + (eq - optarg) + 1;
			in.meta_n++;
			break;
		}
		case O_UNHEALTHY:
			in.healthy = false;
			break;
		case O_DISABLED:
			in.enabled = false;
			break;
		case O_PERSISTENT:
			in.ephemeral = false;
			break;
		case O_INTERVAL:
			in.interval_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_TIMEOUT:
			in.timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_DELETE:
			in.delete_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_HEALTHY:
			lo.healthy_only = true;
			break;
		case O_ALL:
			lo.include_disabled = true;
			break;
		case O_KEEPALIVE:
			keepalive = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	(void)pos0;
	in.meta = meta;

	bool needs_addr =
	        !strcmp(cmd, "register") || !strcmp(cmd, "deregister") || !strcmp(cmd, "beat");
	bool listing = !strcmp(cmd, "list") || !strcmp(cmd, "watch");
	bool bare = !strcmp(cmd, "ping") || !strcmp(cmd, "stats") || !strcmp(cmd, "cluster");
	bool known = needs_addr || listing || bare;

	if (!known) {
		fprintf(stderr, "distroctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if ((needs_addr && npos != 2) || (listing && npos != 1) || (bare && npos != 0)) {
		fprintf(stderr, "distroctl: %s: wrong arguments\n", cmd);
		usage(stderr);
		return 2;
	}
	if (needs_addr) {
		in.service = positional[0];
		if (parse_ip_port(positional[1], ip, sizeof(ip), &in.port) < 0) {
			fprintf(stderr, "distroctl: '%s' is not IP:PORT\n", positional[1]);
			return 2;
		}
		in.ip = ip;
	}
	if ((rc = distro_connect(server, 0, &c)) < 0)
		return fail(server, rc);
	if ((rc = authenticate(c)) != 0) {
		distro_close(c);
		return rc;
	}

	if (needs_addr) {
		int result = 0;

		if (!strcmp(cmd, "register"))
			rc = distro_register(c, &in, 1, &result);
		else if (!strcmp(cmd, "deregister"))
			rc = distro_deregister(c, &in, 1, &result);
		else
			rc = distro_heartbeat(c, &in, 1, &result);
		if (rc == 0 && result < 0)
			rc = result;
		if (rc < 0 && !(rc == -3 && !strcmp(cmd, "deregister"))) {
			distro_close(c);
			return fail(cmd, rc);
		}
		const char *word = rc < 0                       ? "absent"
		                   : !strcmp(cmd, "deregister") ? "deregistered"
		                                                : result_word(result);

		if (json)
			printf("{\"ok\":true,\"result\":\"%s\"}\n", word);
		else if (strchr(in.ip, ':'))
			printf("%s %s [%s]:%u: %s\n", cmd, in.service, in.ip, in.port, word);
		else
			printf("%s %s %s:%u: %s\n", cmd, in.service, in.ip, in.port, word);
		if (keepalive && !strcmp(cmd, "register")) {
			signal(SIGINT, on_signal);
			signal(SIGTERM, on_signal);
			rc = distro_keepalive_start(c, &in, 1, in.interval_ms);
			if (rc < 0) {
				distro_close(c);
				return fail("keepalive", rc);
			}
			if (!json)
				printf("beating; Ctrl-C deregisters and exits\n");
			while (!interrupted)
				pause();
			distro_keepalive_stop(c);
			/* Idempotent: one retry covers a connection the node closed meanwhile. */
			rc = distro_deregister(c, &in, 1, NULL);
			if (rc < 0)
				rc = distro_deregister(c, &in, 1, NULL);
			if (rc < 0) {
				distro_close(c);
				return fail("deregister on exit", rc);
			}
		}
	} else if (!strcmp(cmd, "list")) {
		struct list_state st = { 0 };
		uint64_t rev = 0;

		lo.clusters = nclusters ? clusters : NULL;
		lo.clusters_n = nclusters;
		/*
		 * The library decodes the whole answer before the first callback,
		 * so a failure comes before any output: one JSON document either way.
		 */
		st.json_head = positional[0];
		rc = distro_list(c, in.ns, in.group, positional[0], &lo, print_entry, &st, &rev);
		if (rc < 0) {
			distro_close(c);
			return fail("list", rc);
		}
		if (json && st.n == 0)
			print_json_head(positional[0]);
		if (json)
			printf("],\"revision\":%llu}\n", (unsigned long long)rev);
		else if (st.n == 0)
			printf("(no instances)\n");
	} else if (!strcmp(cmd, "watch")) {
		uint32_t id;

		lo.clusters = nclusters ? clusters : NULL;
		lo.clusters_n = nclusters;
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		rc = distro_subscribe(c, in.ns, in.group, positional[0], &lo, print_push, NULL,
		                      &id);
		if (rc < 0) {
			distro_close(c);
			return fail("watch", rc);
		}
		while (!interrupted) {
			rc = distro_poll(c, 200);
			if (rc < 0 && rc != -1002) {
				/* The connection broke: the next poll reconnects and renews. */
				fprintf(stderr, "distroctl: watch: %s; reconnecting\n",
				        distro_strerror(rc));
				sleep(1);
			}
		}
	} else if (!strcmp(cmd, "cluster")) {
		if ((rc = print_cluster(c)) < 0) {
			distro_close(c);
			return fail("cluster", rc);
		}
	} else if (!strcmp(cmd, "ping")) {
		if ((rc = distro_ping(c)) < 0) {
			distro_close(c);
			return fail("ping", rc);
		}
		printf(json ? "{\"ok\":true}\n" : "pong\n");
	} else {
		static char text[65536];

		if ((rc = distro_stats(c, text, sizeof(text))) < 0) {
			distro_close(c);
			return fail("stats", rc);
		}
		if (json) {
			char *line = strtok(text, "\n");
			int first = 1;

			printf("{");
			for (; line; line = strtok(NULL, "\n")) {
				char *sp = strchr(line, ' ');

				if (!sp)
					continue;
				*sp = '\0';
				printf("%s\"%s\":%s", first ? "" : ",", line, sp + 1);
				first = 0;
			}
			printf("}\n");
		} else {
			fputs(text, stdout);
		}
	}
	distro_close(c);
	return 0;
}
