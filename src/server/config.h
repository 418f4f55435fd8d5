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

#include <stdint.h>
#include <stdio.h>

struct server_config {
	char bind[64];
	uint32_t port;
	char port_file[256];
	uint32_t workers; /* 0: one per online core */
	uint32_t conns_max;
	uint32_t frame_bytes_max;
	uint32_t batch_max;
	uint32_t idle_timeout_ms; /* 0: never */
	uint32_t out_bytes_max;   /* per connection, before it is closed as too slow */
	uint32_t expire_budget;   /* expiry actions per loop per worker */
	uint32_t push_window_ms;  /* subscription pushes coalesce changes over this window */
	uint32_t subs_max;        /* subscriptions per worker */
	char http_bind[64];
	uint32_t http_port; /* admin HTTP: /metrics, /health; 0 picks a free one */
	char http_port_file[256];
	char log_level[16];
	char config_file[256];
	struct store_config store;
};

/*
 * Fills c from defaults, then the config file (if --config names one), then
 * the flags. Returns 0, 1 when --help was printed (exit 0), or -1 after
 * printing the problem to stderr.
 */
int config_load(struct server_config *c, int argc, char **argv);

void config_usage(FILE *out);

#endif
