/*
 * peer_internal.h - the peer thread's own state, shared by the files of
 * src/cluster/ that make up Distro, and by nothing else.
 *
 * Everything here belongs to the peer thread alone, except `view`
 * (view.h: the part other threads read, written here with relaxed or
 * release stores). One file per concept:
 *
 *   peer.c     the thread: create, start, the loop (and why its order),
 *              stop; messages to and from the workers
 *   link.c     links: frames, dial, accept, the handshake, flush, reading
 *              and its pause, frame dispatch
 *   health.c   UP / SUSPICIOUS / DOWN, READY, quorum, eligibility, the
 *              slot map and the takeover of the slots gained
 *   forward.c  writes for other members' slots, both ways
 *   sync.c     the change feed to every peer; peers' records to workers
 *   verify.c   digests, per-slot sums, the confirming look
 *   repair.c   pulls (repair and load), collecting a slot, serving pulls
 *   load.c     the startup load, merge-before-verify, becoming READY
 *   fault.c    test-only hooks that drop or hold sync frames
 *   resolve.c  member names looked up on a thread of their own
 *   view.c     the readers of view.h
 *
 * The per-member state is split by concern (struct member_state): the link
 * and dialling, forwarding, pulls and verify, serving, fault hooks. Member
 * ids run 1..n; index 0 is unused so that `p->by_id[id]` needs no
 * arithmetic. `p->conf` is cluster.conf's member list (indexed 0..n-1: use
 * member_conf()).
 */
#ifndef DISTRO_CLUSTER_PEER_INTERNAL_H
#define DISTRO_CLUSTER_PEER_INTERNAL_H

#include "cluster/auth.h"
#include "cluster/members.h"
#include "cluster/peer.h"
#include "cluster/ptls.h"
#include "cluster/pwire.h"
#include "cluster/resolve.h"
#include "cluster/slotmap.h"
#include "cluster/view.h"
#include "cluster/xmsg.h"
#include "core/atomic.h"
#include "core/buf.h"
#include "core/epoch.h"
#include "shard/outbox.h"

#include <liburing.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define DIAL_BACKOFF_MIN_MS 100
#define DIAL_BACKOFF_MAX_MS 2000
#define DIAL_ALIVE_MS       200 /* the backoff's bound for a member others report alive */
#define LOOP_WAIT_MS        5
#define PULLS_MAX           4          /* pulls in flight per peer */
#define PULL_SLOTS          256        /* slots per repair pull */
#define LOAD_SETS           256        /* startup load: sets of 64 slots, strided */
#define CHUNK_RECORDS       512        /* records per CHUNK */
#define SERVE_HIGH_BYTES    (4u << 20) /* stop streaming while the link holds this much */
#define FWD_FRAME_BYTES     (1u << 20) /* a FWD frame is sent once it holds this much */
#define FWD_WAITS_MAX       4096       /* FWD frames awaiting an answer, per peer */
#define SECRET_MAX          1024
#define SERVES_MAX          16          /* pulls a peer may have queued here */
#define REPAIR_SLOT_RECORDS 65536       /* one slot's records in one repair */
#define REPAIR_SLOT_BYTES   (64u << 20) /* ... and bytes */
#define OUT_CLOSE_FACTOR    2           /* a link holding 2 x --peer-backlog unsent is closed */
#define FRAMES_PER_READ     256         /* frames handled per readable link per loop */
#define PREAUTH_FRAME_MAX   64          /* body bytes accepted before a link is authenticated */
#define WAIT_TIMEOUT_MS     10000       /* a FWD answer or a pull's end this late: given up */
#define FWD_SERVING_MAX     4096        /* forward frames of one peer running here */
#define BACKLOG_PAUSE       8192        /* messages for the workers before links stop being read */
#define DELAYED_MAX         4096        /* sync frames the fault hook holds per peer */
#define LINKS_MAX           (MEMBERS_MAX * 2)
#define PREAUTH_PER_SOURCE  4 /* accepted links not yet authenticated, per source address */
#define LINK_IN_MAX         (64u << 20) /* a link's unparsed input (frames are smaller) */
#define FWD_OPS             6           /* register, deregister, heartbeat, renew, release, hold */
#define VERIFY_CONFIRM_MS   200         /* a slot that differs is looked at again this much later */
#define VERIFY_CONFIRM_MAX  4           /* ... or twice the sync lag, at most this many intervals */

_Static_assert(PULL_SLOTS <= PWIRE_PULL_MAX, "a pull fits the wire's bound");
_Static_assert(STORE_SLOTS / LOAD_SETS <= PULL_SLOTS, "a load set is one pull");
_Static_assert(PWIRE_RANGE_SLOTS == 64, "a digest range is one bitmap word");

/* ---- links (link.c) ---- */

enum link_state { L_FREE = 0, L_CONNECTING, L_HELLO, L_AUTH, L_UP };

struct link {
	int fd;
	enum link_state state;
	bool initiator;
	bool want_out;
	uint16_t id;          /* member, once known */
	uint16_t client_port; /* from its HELLO; believed once the link is authenticated */
	uint8_t nonce_me[AUTH_NONCE_BYTES], nonce_peer[AUTH_NONCE_BYTES];
	bool have_peer_hello;
	bool overflow; /* a frame found no room: the link is closed at the next flush */
	int64_t opened_ms;
	uint64_t src_key; /* accepted: its source address (srclimit_key), for PREAUTH_PER_SOURCE */
	size_t out_max;   /* output ceiling (link_new) */
	uint32_t preauth_bytes; /* received in the TLS handshake (PTLS_HANDSHAKE_BYTES_MAX) */
	struct buf in, out;     /* frames: plaintext (TLS or not) */
	struct ptls_link tls;   /* ssl NULL: a plaintext link (--peer-tls off) */
};

/* A member's link and dialling. */
struct member_link {
	struct link *up;      /* the authenticated link, NULL when none */
	struct link *dialing; /* our connection attempt, until it is UP or closed */
	int64_t next_dial_ms;
	uint32_t backoff_ms;
	bool resolving; /* its name is being looked up (resolve.h): dial once it is in */
};

/* ---- forwarding (forward.c) ---- */

/* An item forwarded: where its result goes. */
struct fref {
	struct pending *p;
	uint32_t i;
};

/* Items for one owner and one op, collected during a loop. */
struct fwd_build {
	struct buf items;
	struct fref *refs;
	uint32_t n, cap;
};

/* A FWD frame waiting for its answer. */
struct fwd_wait {
	uint32_t tag;
	uint32_t n;
	int64_t sent_ms;
	struct fref *refs;
};

/* Forwarding to one member and from it. */
struct member_fwd {
	struct fwd_build build[FWD_OPS];
	struct fwd_wait *waits; /* FWD_WAITS_MAX */
	uint32_t waits_n, waits_cap;
	uint32_t serving; /* its forward frames running here (FWD_SERVING_MAX) */
};

/* Whoever gets a forwarded item's result (the peer thread: fref_answer). */
typedef void fwd_answer_fn(void *ctx, struct fref *f, int16_t res);

/* ---- verify, pulls and repair (verify.c, repair.c) ---- */

/* The confirming look's state for one owner (verify.c). */
struct verify_bits {
	uint64_t suspect[STORE_SLOTS / 64]; /* slots that differed at the last look */
	uint64_t want[STORE_SLOTS / 64];    /* slots to pull from this owner */
	uint32_t *seen;     /* STORE_SLOTS: the owner's sum at the last look (lazy; NULL: none) */
	int64_t confirm_ms; /* a confirming SUMS_REQ is due then (0: none) */
	uint64_t
	        apply_mark; /* apply_sent when the last one went: decide once all that is applied */
	uint32_t lag_ms[2]; /* its sync's largest arrival lag: this interval, the one before */
};

/* What one look at a slot decided (verify_note). */
enum verify_verdict { VERIFY_EQUAL = 0, VERIFY_LOOK_AGAIN, VERIFY_PULL };

/* A pull this node asked a peer for (repair or load). */
struct pull {
	uint32_t tag;
	int64_t sent_ms;
	bool load;
	uint16_t set; /* load: the load set */
	uint16_t n;
	uint16_t slots[PULL_SLOTS];
};

/* The repair slot being collected from one owner's chunks. */
struct collect {
	struct buf records;
	uint32_t tag; /* the pull whose chunks these are */
	int32_t slot; /* -1: none */
	uint32_t count;
	bool abandoned; /* too big or out of memory: this slot's repair is given up */
};

struct member_pulls {
	struct pull *pulls[PULLS_MAX];
	struct verify_bits verify;
	struct collect collect;
};

/* A pull a peer asked of this node, streamed as the link drains. */
struct serve {
	uint32_t tag;
	uint16_t n, next;
	bool started;
	struct store_cursor cur;
	uint64_t before;
	uint16_t slots[PWIRE_PULL_MAX];
	struct serve *next_serve;
};

struct member_serve {
	struct serve *head, *tail;
	uint32_t n; /* SERVES_MAX */
};

/* ---- fault hooks (fault.c) ---- */

/* A sync frame held back by the fault hook. */
struct delayed {
	int64_t due_ms;
	struct delayed *next;
	size_t len;
	uint8_t frame[];
};

struct member_fault {
	struct delayed *head, *tail;
	uint32_t n; /* DELAYED_MAX */
};

/* Everything this node keeps about one other member. */
struct member_state {
	uint64_t sees; /* from its latest PING: bit id-1 = it has member id eligible (reached) */
	bool no_slots; /* its latest PING said it may own no slot (PING_NO_SLOTS: no quorum) */
	struct member_link link;
	struct member_fwd fwd;
	struct member_pulls pulls;
	struct member_serve serve;
	struct member_fault fault;
};

/* ---- the startup load (load.c) ---- */

enum { SET_TODO = 0, SET_IN_FLIGHT = 1, SET_DONE = 2 };

/* Which load sets are still to pull: a pure schedule, unit-tested. */
struct load_plan {
	uint8_t state[LOAD_SETS];
	uint32_t done;
};

/* ---- the thread ---- */

struct peer {
	struct peer_env env;
	const struct server_config *cfg; /* env.cfg */
	struct members conf;             /* cluster.conf */
	uint16_t self;
	uint32_t idx; /* our participant number on the rings */
	uint8_t secret[SECRET_MAX];
	size_t secret_len;
	struct ptls tls; /* ctx NULL: plaintext peer links (--peer-tls off) */
	int listen_fd, epfd, wake_fd;
	struct io_uring ring;      /* MSG_RING wake-ups of the workers */
	struct resolver *resolver; /* replaced whole when the member list changes */
	bool ring_ok;
	pthread_t thread;
	bool started;
	uint32_t stop;        /* atomic */
	struct epoch_rec rec; /* reads the store (digests, snapshots) */
	int64_t now_ms;       /* this loop's time */

	struct peer_view view; /* what other threads read (view.h) */

	/* membership.c: cluster.conf changes */
	pthread_mutex_t conf_mu;  /* held to change conf, and by other threads to copy it */
	int inotify_fd;           /* the directory of cluster.conf, -1 when not watched */
	int64_t reload_at_ms;     /* a change seen: read the file then (0: none) */
	uint64_t reload_hash;     /* members_hash of a changed list read once, to be confirmed */
	int64_t reload_first_ms;  /* when it was read: confirmed by a read RELOAD_SETTLE_MS later */
	bool reload_seen;         /* reload_hash is set: a later read must agree to act */
	int64_t accept_resume_ms; /* out of descriptors: the listener is back then (link.c) */
	uint32_t reload_req;      /* atomic: SIGHUP asked for a reload (peer_reload_request) */
	bool left;                /* this node is no longer in the list */
	int64_t leave_at_ms;      /* dropped from the list: leave then (0: not leaving) */
	uint64_t conf_hash;       /* members_hash of conf: PINGs from other lists are not read */
	uint32_t conf_gen;        /* bumped by every list change: answers from before are dropped */

	/* health and the map (health.c) */
	struct slotmap scratch; /* the next map, computed here */
	bool eligible[MEMBERS_MAX + 1];
	uint64_t sees;           /* what its PINGs report: the members it has eligible (reached) */
	bool ready;              /* view.ready, as this thread knows it */
	bool quorum;             /* view.quorum, likewise */
	bool writable;           /* view.writable, likewise */
	int64_t writes_grace_ms; /* writes taken without a quorum until then: links coming up */
	uint64_t takeover_due[STORE_SLOTS / 64]; /* gained slots not yet sent (no memory) */
	int64_t start_ms;
	int64_t last_verify_ms;
	int64_t last_ping_ms;

	/* startup load and merge (load.c) */
	bool loading;
	bool need_merge; /* READY without a peer's copy: merge one before sending digests */
	bool merging;
	struct load_plan plan;
	int64_t load_progress_ms;
	uint64_t load_sent;  /* load messages handed to the workers */
	uint64_t load_done;  /* ... and released by them (atomic: workers add) */
	uint64_t apply_sent; /* synced records' messages handed to the workers (verify.c) */
	uint64_t apply_done; /* ... and released by them, applied (atomic: workers add) */

	/* sync.c: where each record of a frame goes */
	struct {
		uint8_t shard;
		uint32_t off, len;
	} split[65536];

	uint32_t next_tag;
	struct member_state by_id[MEMBERS_MAX + 1];
	struct link links[LINKS_MAX];

	struct outbox out; /* to the workers */
	bool reading_paused;
	uint64_t rng;
};

#define PSTAT_ADD(p, name, d) STORE_RELAXED(&(p)->view.stats.name, (p)->view.stats.name + (d))
#define PSTAT_INC(p, name)    PSTAT_ADD(p, name, 1)
#define PSTAGE_ADD(p, st, us)                                                                      \
	do {                                                                                       \
		uint64_t *c_ = &(p)->view.stage[st][repl_stage_bucket(us)];                        \
		STORE_RELAXED(c_, *c_ + 1);                                                        \
	} while (0)

static inline const struct member *member_conf(const struct peer *p, uint16_t id)
{
	return &p->conf.m[id - 1];
}

/* The member's authenticated link, or NULL. */
static inline struct link *member_up(struct peer *p, uint16_t id)
{
	struct link *l = p->by_id[id].link.up;

	return l && l->state == L_UP ? l : NULL;
}

/* peer.c */
int64_t peer_now_ms(void);
uint64_t peer_wall_version(void);
void peer_to_worker(struct peer *p, uint32_t w, void *msg);

/* link.c */
uint8_t *link_frame_begin(struct link *l, size_t body_len);
void link_frame_end(struct link *l, uint8_t op, uint32_t body_len, uint32_t id, uint16_t status,
                    uint16_t count);
bool link_frame_put(struct link *l, uint8_t op, const void *body, uint32_t len, uint32_t id,
                    uint16_t status, uint16_t count);
void link_close(struct peer *p, struct link *l, const char *why);
void link_flush_all(struct peer *p);
void link_reading_pause_check(struct peer *p);
void link_on_event(struct peer *p, struct link *l, uint32_t events);
void link_on_accept(struct peer *p);
void link_accept_pause(struct peer *p);
void link_accept_resume(struct peer *p, int64_t now);
void link_dial_due(struct peer *p, uint16_t id, int64_t now, bool alive);
void link_handshake_timeouts(struct peer *p, int64_t now);

/* health.c */
bool health_quorum(uint32_t reachable, uint32_t n, bool lowest_reachable);
void health_check(struct peer *p, int64_t now);
void health_member_down(struct peer *p, uint16_t id);
void health_on_link_up(struct peer *p, uint16_t id);
void health_on_ping(struct peer *p, uint16_t id, const uint8_t *body, uint32_t len);
void health_pings(struct peer *p);
void health_send_ping(struct peer *p, struct link *l);
void health_map_update(struct peer *p);
void health_takeover_retry(struct peer *p);

/* forward.c */
bool fwd_add(struct member_fwd *f, uint32_t opi, const uint8_t *item, size_t len,
             struct pending *pd, uint32_t i);
uint32_t fwd_flush(struct member_fwd *f, uint32_t opi, struct link *l, uint32_t tag, int64_t now,
                   fwd_answer_fn *answer, void *ctx);
uint32_t fwd_ack(struct member_fwd *f, uint32_t tag, const uint8_t *results, uint32_t n,
                 fwd_answer_fn *answer, void *ctx);
uint32_t fwd_expire(struct member_fwd *f, int64_t now, int64_t timeout_ms, fwd_answer_fn *answer,
                    void *ctx);
uint32_t fwd_fail_all(struct member_fwd *f, fwd_answer_fn *answer, void *ctx);
void fwd_member_free(struct member_fwd *f);
void forward_on_pending(struct peer *p, struct pending *pd);
void forward_on_part(struct peer *p, struct pending *pd);
void forward_on_fwd(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body);
void forward_on_ack(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body);
void forward_flush_all(struct peer *p);
void forward_member_down(struct peer *p, uint16_t id);
void forward_expire(struct peer *p, uint16_t id, int64_t now);

/* sync.c */
/* Returns the oldest version among the records (expiry's left out), 0 if none. */
uint64_t sync_records_to_workers(struct peer *p, uint8_t kind, const uint8_t *data, uint32_t len,
                                 uint32_t count, uint16_t slot, uint64_t before);
void sync_on_feed(struct peer *p, struct xrecords *m);
void sync_on_frame(struct peer *p, uint16_t from, const struct proto_header *h,
                   const uint8_t *body);

/* verify.c */
enum verify_verdict verify_note(struct verify_bits *v, uint32_t slot, bool differs,
                                uint32_t owner_sum, uint32_t my_sum, bool may_decide);
void verify_range_clean(struct verify_bits *v, uint32_t range);
void verify_note_lag(struct verify_bits *v, int64_t now_wall_ms, uint64_t version);
uint32_t verify_confirm_delay_ms(const struct verify_bits *v, uint32_t verify_ms);
void verify_reset(struct verify_bits *v);
void verify_free(struct verify_bits *v);
void verify_round(struct peer *p);
void verify_confirm_due(struct peer *p, int64_t now);
void verify_on_digest(struct peer *p, uint16_t from, const uint8_t *body);
void verify_on_sums_req(struct peer *p, uint16_t from, const struct proto_header *h,
                        const uint8_t *body);
void verify_on_sums(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body);

/* repair.c */
bool repair_pull_send(struct peer *p, uint16_t id, struct pull *pl);
uint32_t repair_pulls_free(const struct member_pulls *mp);
void repair_schedule(struct peer *p);
void repair_pulls_lost(struct peer *p, uint16_t id);
void repair_pulls_expire(struct peer *p, uint16_t id, int64_t now);
void repair_on_chunk(struct peer *p, uint16_t from, const struct proto_header *h,
                     const uint8_t *body);
void repair_on_pull_done(struct peer *p, uint16_t from, const struct proto_header *h);
void repair_on_pull(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body);
void repair_serve_some(struct peer *p, uint16_t id);
void repair_member_free(struct member_state *st);

/* load.c */
void load_plan_reset(struct load_plan *lp);
int load_plan_take(struct load_plan *lp);
void load_plan_finish(struct load_plan *lp, uint32_t set, bool ok);
bool load_plan_complete(const struct load_plan *lp);
void load_set_slots(uint32_t set, struct pull *pl);
void load_progress(struct peer *p, int64_t now);
void load_merge_progress(struct peer *p);
void load_restart(struct peer *p, int64_t now);

/* membership.c */
int membership_find_self(struct members *ms, const struct server_config *cfg);
uint64_t members_hash(const struct members *ms);
int membership_watch(struct peer *p);
void membership_on_inotify(struct peer *p);
void membership_reload(struct peer *p);
void membership_step(struct peer *p, int64_t now);
void load_pull_finished(struct peer *p, const struct pull *pl, bool ok);
bool load_any_ready_peer(struct peer *p);

/* fault.c */
bool fault_drop(struct peer *p);
bool fault_hold(struct peer *p, uint16_t id, uint8_t op, const uint8_t *body, uint32_t len,
                uint16_t count, int64_t now);
void fault_flush(struct peer *p, int64_t now);
void fault_member_down(struct peer *p, uint16_t id);

/* view.c: the peer thread's writes */
void view_map_publish(struct peer *p, const uint16_t *owners, uint32_t *changed, uint32_t *gained);

#endif
