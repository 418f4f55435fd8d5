/*
 * members.h - who is in the cluster: cluster.conf.
 *
 * The file has Nacos's format: one member per line as `host:port` (IPv6 as
 * `[addr]:port`), `#` starts a comment, blank lines are ignored; a line may
 * also hold several members separated by commas (Nacos accepts that too).
 * The port is the member's peer port. A node finds itself as the line
 * whose port is its --peer-port and whose host is an address of this
 * machine, or as the line --cluster-self names (when it sits behind
 * another address). No file, or a file naming only this node: standalone.
 *
 * Members are kept sorted by address text, so every node that reads the
 * same file numbers the members the same way; a member's id is its index
 * in that order plus one (0 means "no node").
 */
#ifndef DISTRO_CLUSTER_MEMBERS_H
#define DISTRO_CLUSTER_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#define MEMBERS_MAX     64
#define MEMBER_ADDR_MAX 64 /* "[v6]:port" with room */

struct member {
	char addr[MEMBER_ADDR_MAX]; /* canonical "host:port" or "[v6]:port" */
	char host[48];
	uint16_t port;
	uint16_t id; /* 1..n */
};

struct members {
	struct member m[MEMBERS_MAX];
	uint32_t n;
	uint16_t self_id; /* 0 when this node is not in the list */
};

/*
 * Parses cluster.conf text. 0, or -ERR_INVAL with a message naming the line
 * in err (bad address or port, a duplicate, more than MEMBERS_MAX).
 */
int members_parse(const char *text, size_t len, struct members *out, char *err, size_t err_len);

/* Reads and parses a file. 0 or -ERR_INVAL / -ERR_NOT_FOUND with a message in err. */
int members_load(const char *path, struct members *out, char *err, size_t err_len);

/* Marks the member whose address is self_addr ("host:port") as self. 0 or -ERR_NOT_FOUND. */
int members_find_self(struct members *ms, const char *self_addr);

#endif
