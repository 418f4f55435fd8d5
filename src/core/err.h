/*
 * err.h - the project's error codes.
 *
 * Every fallible function returns 0 (or a non-negative count) on success and a
 * negative code on failure; nothing sets errno. Codes are small, stable
 * integers because they travel on the wire to clients (docs/protocol.md will
 * pin them): never renumber one, only append. err_str() gives the message a
 * human or a log line shows.
 */
#ifndef DISTRO_CORE_ERR_H
#define DISTRO_CORE_ERR_H

/* X(name, value, message) - value is the positive wire code; functions return -value. */
#define ERR_LIST(X)                                                                                \
	X(ERR_NOMEM, 1, "out of memory")                                                           \
	X(ERR_INVAL, 2, "invalid argument")                                                        \
	X(ERR_NOT_FOUND, 3, "not found")                                                           \
	X(ERR_NAME_EMPTY, 4, "name is empty")                                                      \
	X(ERR_NAME_LONG, 5, "name is longer than the configured limit")                            \
	X(ERR_NAME_CHARS, 6, "name contains a control character or '@@'")                          \
	X(ERR_WEIGHT, 7, "weight out of range 0..10000")                                           \
	X(ERR_ADDR, 8, "bad address (unparsable or unspecified ip, or port 0)")                    \
	X(ERR_META_LONG, 9, "metadata larger than the configured limit")                           \
	X(ERR_META_PAIRS, 10, "too many metadata pairs")                                           \
	X(ERR_META_KEY, 11, "metadata key empty, too long or repeated")                            \
	X(ERR_TIMING, 12, "heartbeat timing invalid (need interval < timeout <= delete)")          \
	X(ERR_LIMIT_INSTANCES, 13, "instance limit of the node reached")                           \
	X(ERR_LIMIT_SERVICE, 14, "instance limit of the service reached")                          \
	X(ERR_LIMIT_SERVICES, 15, "service limit of the node reached")                             \
	X(ERR_LIMIT_CLUSTERS, 16, "cluster limit of the service reached")                          \
	X(ERR_LIMIT_TIMINGS, 17, "too many distinct heartbeat timings")                            \
	X(ERR_STALE, 18, "record older than the stored version")                                   \
	X(ERR_WRONG_SHARD, 19, "key belongs to another shard")                                     \
	X(ERR_PROTO_MAGIC, 20, "bad frame magic")                                                  \
	X(ERR_PROTO_VERSION, 21, "unsupported protocol version")                                   \
	X(ERR_PROTO_TOO_BIG, 22, "frame larger than the limit")                                    \
	X(ERR_PROTO_TRUNCATED, 23, "frame body shorter than its fields")                           \
	X(ERR_PROTO_TRAILING, 24, "bytes after the last field of a frame body")                    \
	X(ERR_PROTO_OP, 25, "unknown operation")                                                   \
	X(ERR_PROTO_COUNT, 26, "item count over the batch limit")                                  \
	X(ERR_PROTO_FAMILY, 27, "address family not 4 or 6")                                       \
	X(ERR_CLOCK_SKEW, 28, "record version too far ahead of this node's clock")                 \
	X(ERR_BUSY, 29, "server busy, retry")                                                      \
	X(ERR_LIMIT_SUBS, 30, "subscription limit reached")                                        \
	X(ERR_UNAVAILABLE, 31, "the owner of the instance is unreachable, retry")                  \
	X(ERR_TOO_BIG, 32, "input over a decoder's bound (items, tokens or scratch space)")        \
	X(ERR_AUTH_REQUIRED, 33, "authentication required")                                        \
	X(ERR_AUTH_USERS_FILE, 34, "users file unreadable or malformed")                           \
	X(ERR_AUTH_USER, 35, "unknown user")                                                       \
	X(ERR_AUTH_PASSWORD, 36, "wrong password")                                                 \
	X(ERR_AUTH_TOKEN_ENCODING, 37, "token is not unpadded base64url")                          \
	X(ERR_AUTH_TOKEN_LENGTH, 38, "token truncated or longer than its fields")                  \
	X(ERR_AUTH_TOKEN_VERSION, 39, "unsupported token version")                                 \
	X(ERR_AUTH_TOKEN_FORGED, 40, "token signature does not verify")                            \
	X(ERR_AUTH_TOKEN_EXPIRED, 41, "token expired")                                             \
	X(ERR_AUTH_TOKEN_FUTURE, 42, "token expires further ahead than its lifetime")              \
	X(ERR_AUTH_REFUSED, 43,                                                                    \
	  "authentication refused: unknown user, wrong password or bad token")                     \
	X(ERR_LIMIT_LEASES, 44, "lease table of the shard full")

enum err_code {
#define ERR_ENUM(name, value, msg) name = value,
	ERR_LIST(ERR_ENUM)
#undef ERR_ENUM
};

/* Message for a code, positive or negative. Never NULL. */
const char *err_str(int code);

#endif
