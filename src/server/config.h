/*
 * config.h - distrod's settings: defaults, command-line flags, config file.
 *
 * One table (config.c) names every setting once: its flag, its type, where
 * it lives in struct server_config, its default and its help line. --help,
 * the flag parser and the config file reader all walk that table, so they
 * cannot disagree. The config file holds `name = value` lines with the
 * flag names (no dashes), `#` comments; flags given on the command line win
 * over the file.
 */
#ifndef DISTRO_SERVER_CONFIG_H
#define DISTRO_SERVER_CONFIG_H

#include "core/log.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct server_config {
	char bind[64];
	uint32_t port; /* binary protocol; 0 picks a free one */
	char port_file[256];
	uint32_t workers; /* 0: one per online core */
	uint32_t conns_max;
	uint32_t frame_bytes_max;
	uint32_t batch_max;
	uint32_t idle_timeout_ms;   /* 0: never */
	uint32_t header_timeout_ms; /* a started request (HTTP head, binary frame) must finish */
	uint32_t conns_per_source;  /* client connections (both ports) per source address; 0: off */
	uint32_t out_bytes_max;     /* per connection, before it is closed as too slow */
	uint32_t expire_budget;     /* expiry actions per loop per worker */
	uint32_t push_window_ms;    /* subscription pushes coalesce changes over this window */
	uint32_t subs_max;          /* subscriptions per worker */
	char http_bind[64];
	uint32_t http_port; /* admin HTTP: /metrics, /health, /cluster; 0 picks a free one */
	char http_port_file[256];
	uint32_t nacos_port; /* the Nacos HTTP API (docs/nacos.md); 0 picks a free one */
	char nacos_port_file[256];
	/* The Nacos 2.x gRPC port (docs/nacos.md, "gRPC") */
	char grpc_port_arg[16]; /* "auto" (--nacos-port + 1000), "off", or a port; 0 picks one */
	uint32_t grpc_port;     /* from grpc_port_arg, when grpc_on */
	bool grpc_on;
	char grpc_port_file[256];
	uint32_t grpc_move_after_ms;     /* refusing writes: clients connected this long move */
	uint32_t grpc_detect_idle_ms;    /* a connection silent this long is asked if it is there */
	uint32_t grpc_detect_timeout_ms; /* and ejected if it does not answer within this */
	uint32_t grpc_renew_ms;          /* the connections' instances are renewed this often */
	uint32_t grpc_push_timeout_ms;   /* an unacknowledged push is sent again after this */
	uint32_t grpc_msg_bytes_max;     /* one gRPC message, either way */
	uint32_t grpc_streams_max;       /* concurrent HTTP/2 streams of one connection */
	uint32_t nacos_push_window_ms;   /* UDP pushes coalesce the changes of this many ms */
	uint32_t nacos_push_retry_ms;    /* an unacknowledged push is sent again after this */
	uint32_t nacos_push_ttl_ms;   /* a subscriber that stops polling is forgotten after this */
	uint32_t nacos_push_subs_max; /* UDP subscribers of the node */
	/* Nacos-compatible authentication (docs/nacos.md, "Authentication") */
	char auth_users[256];       /* users file; "": authentication off */
	uint32_t auth_token_ttl_ms; /* tokens issued expire after this */
	char log_level[16];
	char config_file[256];
	/* cluster (docs/distro.md) */
	char cluster_conf[256]; /* "": standalone */
	char cluster_self[64]; /* this node's peer address in cluster.conf; "": found by --peer-port
	                        */
	uint32_t peer_port;    /* used to find self when --cluster-self is empty */
	char peer_listen[64];  /* where the peer port listens; "": this node's cluster.conf line */
	char cluster_secret_file[256];
	char peer_tls[8];      /* "on" (TLS 1.3 keyed from the secret) or "off" (plaintext links) */
	uint32_t peer_ping_ms; /* a ping on every link this often */
	uint32_t peer_suspect_ms;    /* silent this long: SUSPICIOUS (still owns its slots) */
	uint32_t peer_down_ms;       /* silent this long: DOWN (its slots move), link closed */
	uint32_t sync_window_ms;     /* changes are coalesced and sent this often */
	uint32_t verify_ms;          /* digest of owned slots to every peer this often */
	uint32_t startup_wait_ms;    /* no READY peer this long after start: READY as it is */
	uint64_t peer_backlog_bytes; /* unsent bytes per link before sync is dropped */
	uint32_t fault_drop_pct;     /* tests: share of outgoing sync frames dropped */
	uint32_t fault_delay_ms;     /* tests: outgoing sync frames held this long */
	struct store_config store;
};

/*
 * Fills c from defaults, then the config file (if --config names one), then
 * the flags. Returns 0, 1 when --help or --version was printed (exit 0), or -1 after
 * printing the problem to stderr.
 */
int config_load(struct server_config *c, int argc, char **argv);

void config_usage(FILE *out);

#endif
