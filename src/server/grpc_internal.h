/*
 * grpc_internal.h - what the worker's gRPC files share.
 *
 *   grpc.c         the connections of the Nacos gRPC port: the HTTP/2
 *                  session fed from the worker's receives (src/grpc/h2.h),
 *                  Payload decoding, the connection life cycle (server
 *                  check, setup on the bi-stream, health checks, client
 *                  detection and ejection), the instances a connection
 *                  owns (renewed on a timer, deregistered when it ends),
 *                  pushes on the bi-stream and their acks
 *   grpc_naming.c  the naming requests: InstanceRequest,
 *                  BatchInstanceRequest, PersistentInstanceRequest,
 *                  ServiceQueryRequest, SubscribeServiceRequest,
 *                  ServiceListRequest (docs/nacos.md, "gRPC")
 *
 * Writes take the binary protocol's path (ops_write), like the HTTP
 * port's: routed to the shards and owners, answered once through
 * grpc_write_done with a tag in the request id (grpc_tag) that says what
 * the answer is for.
 */
#ifndef DISTRO_SERVER_GRPC_INTERNAL_H
#define DISTRO_SERVER_GRPC_INTERNAL_H

#include "grpc/h2.h"
#include "grpc/payload.h"
#include "nacos/json.h"
#include "server/nacos_internal.h"

#define GRPC_WAITS_MAX       64         /* a connection's unary writes waiting for their answer */
#define GRPC_INSTS_MAX       16384      /* ephemeral instances one connection owns */
#define GRPC_TOKENS_MAX      65536      /* JSON tokens of one request body */
#define GRPC_RID_MAX         64         /* bytes of a requestId kept for a later answer */
#define GRPC_SCRATCH         (1u << 20) /* unescaped strings of one request */
#define GRPC_ID_MAX          80         /* a connection id: <ms>_<ip>_<port> */
#define GRPC_MOVE_CLOSE_MS   1000       /* a client asked to move is closed this long after */
#define GRPC_STEP_MS         100 /* the timers (renewals, detection, push retries) run this often */
#define GRPC_RENEW_MIN_MS    1000 /* an instance's interval shortens renewals to no less */
#define GRPC_HOLDER_SEQ_MASK ((1ull << 40) - 1) /* the low 40 bits of a holder id */

/* What an answered write was for: the top byte of its request id. */
enum grpc_write_kind {
	GW_ANSWER = 1, /* a unary request waits: the low bits are its wait slot */
	GW_RENEW,      /* the connection's instances renewed: nothing to answer */
	GW_DROP,       /* instances deregistered for the connection: nothing to answer */
};

static inline uint32_t grpc_tag(enum grpc_write_kind k, uint32_t slot)
{
	return (uint32_t)k << 24 | (slot & 0xffffffu);
}

/*
 * One instance a connection registered, as wire items: the instance (for
 * registers and renewals, which carry it whole so a lost one is
 * re-created) and its key (for the release when the connection ends);
 * grpc_item_put prefixes them with the connection's holder id.
 */
struct ginst {
	struct ginst *next;
	uint64_t svc_hash;    /* of namespace, group, service: a publish replaces per service */
	struct addr addr;     /* a deregister names ip and port; the cluster may differ */
	uint32_t interval_ms; /* its own heartbeat interval (metadata), 0: the default */
	uint32_t inst_len, key_len;
	uint8_t bytes[]; /* instance item, then key item */
};

/* A unary write waiting for its answer. */
struct gwait {
	bool used;
	int32_t stream;
	const char *type;    /* the response's type name (a constant) */
	const char *op_type; /* its "type" field (registerInstance, ...), NULL: none */
	struct ginst *insts; /* on success these become the connection's set of the service */
	uint64_t svc_hash;
	bool publish; /* a register or batch: replaces the connection's set of the service */
	char rid[GRPC_RID_MAX];
};

/* One connection of the gRPC port, from the worker's pool while its slot is open. */
struct gconn {
	struct h2_conn h2;
	struct gconn *next, *prev; /* the worker's gRPC connections */
	struct worker *w;
	uint32_t idx;
	bool in_feed;       /* inside h2_feed: output is taken after it returns */
	bool setup;         /* ConnectionSetupRequest seen */
	bool first_message; /* a whole message came: the preface deadline is met */
	bool ending;        /* closing or stopping: its instances are gone, answers adopt nothing */
	int32_t bi;         /* the bi-stream, 0: none */
	int64_t active_ms;  /* last message from the client */
	int64_t since_ms;   /* accepted then */
	int64_t moving_ms;  /* ConnectResetRequest sent then (closed soon after); 0: not moving */
	uint64_t messages;  /* whole messages received */
	int64_t detect_ms;  /* a ClientDetectionRequest is out since then; 0: none */
	uint64_t detect_id;
	int64_t renew_ms;        /* next renewal of its instances */
	uint32_t renew_every_ms; /* --grpc-renew, or an instance's shorter interval */
	uint64_t holder;         /* its leases' holder id: member << 48 | worker << 40 | seq */
	struct ginst *insts;
	uint32_t insts_n;
	uint32_t waits_n;
	uint64_t next_rid; /* ids of the server's requests on the bi-stream */
	char id[GRPC_ID_MAX];
	char tenant[64];
	struct gwait waits[GRPC_WAITS_MAX];
};

/* The worker's gRPC state (grpc_init), scratch included. */
struct grpc_worker {
	struct pool gconns;
	struct gconn *list;
	struct payload_arena arena;
	struct buf body; /* JSON being built */
	jsmntok_t *toks;
	char *scratch;
	uint8_t *frame; /* NACOS_FRAME_BYTES: a write frame being built */
	struct store_kv kv[NACOS_KV_MAX];
	int64_t last_step_ms;
	uint64_t holder_seq; /* the next connection's holder sequence (grpc_conn_open) */
	int64_t refusing_ms; /* since when this node refuses writes (no quorum); 0: it takes them */
};

/* A request being handled. */
struct greq {
	struct worker *w;
	uint32_t idx;
	struct gconn *g;
	int32_t stream;
	struct payload pl;
	struct json_doc d;
	char rid[GRPC_RID_MAX]; /* requestId, "" when absent */
	size_t scratch_used;
};

/* grpc.c */
struct buf *grpc_body(struct worker *w);
bool grpc_put(struct buf *b, const char *s);
/* {"resultCode":200,"errorCode":0,"message":null,"requestId":..,"success":true (no closing) */
bool grpc_put_head(struct buf *b, const char *rid);
/* Answers a unary stream with the JSON in the worker's body, of type. */
void grpc_answer(struct worker *w, uint32_t idx, int32_t stream, const char *type);
/* A typed failure: resultCode 500, errorCode code, message. */
void grpc_answer_fail(struct worker *w, uint32_t idx, int32_t stream, const char *type,
                      const char *rid, int code, const char *msg);
/* A string member of obj into the request's scratch; false when absent or null. */
bool grpc_jstr(struct greq *r, int obj, const char *key, struct store_str *out);
bool grpc_jbool(struct greq *r, int obj, const char *key, bool dflt);
uint64_t grpc_svc_hash(const struct store_svc_key *sk);
/* The connection takes an instance it registered (replacing one of the same key). */
void grpc_insts_adopt(struct gconn *g, struct ginst *n);
/*
 * A write item of op for x, as the connection sends it: the instance (HOLD,
 * RENEW, REGISTER, HEARTBEAT) or key (RELEASE, DEREGISTER) item, after
 * the lease prefix (the connection's holder id, and its renew interval)
 * for the leased ops. grpc_item_len: its bytes; grpc_item_put writes them.
 */
uint32_t grpc_item_len(uint8_t op, const struct ginst *x);
uint32_t grpc_item_put(uint8_t *dst, const struct gconn *g, uint8_t op, const struct ginst *x);
/* Drops an instance it registered (deregistered); true when it had it. */
bool grpc_insts_drop(struct gconn *g, const uint8_t *key, uint32_t key_len);
int grpc_wait_new(struct greq *r, const char *type);

/* grpc_naming.c */
void grpc_naming(struct greq *r, struct store_str type);
bool grpc_naming_type(struct store_str type);

#endif
