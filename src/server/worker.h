/*
 * worker.h - the per-core server: one thread, one io_uring, one store shard.
 *
 * The worker's files are listed in worker_internal.h; the server that owns
 * the workers is server.h. Other threads read a worker only through its
 * counters (worker_stats_read: relaxed loads of fields only the worker
 * writes).
 */
#ifndef DISTRO_SERVER_WORKER_H
#define DISTRO_SERVER_WORKER_H

#include "core/buf.h"
#include "core/pool.h"
#include "io/uring.h"
#include "server/stats.h"
#include "shard/outbox.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct conn;
struct watch;
struct sub;
struct server;
struct repair_job;
struct nacos_worker;
struct grpc_worker;

/* Client ports a worker listens on: binary, Nacos HTTP, Nacos gRPC (enum conn_kind). */
#define WORKER_LISTENERS 3

/* The worker's replica side (replica.c): work spread over loops within a budget. */
struct replica {
	uint64_t takeover_due[STORE_SLOTS / 64]; /* gained slots not walked yet */
	uint32_t takeover_word;                  /* every word of takeover_due below it is 0 */
	struct store_cursor takeover_cur;        /* the slot being walked, if active */
	bool takeover_active;
	struct repair_job *repairs, *repairs_tail; /* slots to prune, in arrival order */
	struct buf scratch;                        /* keys to forget, outside the epoch */
	int64_t last_sync_us;                      /* the feed was last drained */
	/* The first load's size estimate (replica.c: load_presize). */
	uint64_t load_records; /* records of ours in the load messages so far */
	uint32_t load_slots;   /* slots they came from (changes of slot, an estimate) */
	uint16_t load_slot;    /* the latest message's slot */
	bool load_presized;    /* estimated once: the table is sized */
};

struct worker {
	uint32_t id;
	struct server *srv;
	struct io_uring ring;
	struct uring_bufs bufs;
	uint32_t bufs_filled; /* receive buffers the completions of this loop filled */
	uint32_t bufs_conns;  /* ... by this many connections */
	uint32_t loop_seq;    /* loops so far (conn.recv_loop) */
	bool bufs_short;      /* a receive found the ring empty this loop */
	bool ring_ok;         /* closed by the server, after the peer thread stopped */
	/* The client ports' listeners, by enum conn_kind (accept.c); fd -1: not served. */
	struct listener {
		int fd;
		bool armed; /* its multishot poll is armed */
		bool ready; /* it fired: connections may wait to be accepted */
	} listeners[WORKER_LISTENERS];
	struct nacos_worker *nacos;
	struct grpc_worker *grpc;
	struct store_shard *shard;
	struct epoch_rec *rec; /* the shard's record: this thread writes and reads with it */

	struct conn *conns;
	uint32_t conns_max;
	uint32_t conns_used;
	uint32_t conn_free; /* free list head, UINT32_MAX when empty */
	uint32_t *dirty;    /* connections with output to flush */
	uint32_t dirty_n;

	struct pool pendings; /* cross-core requests this worker started */
	uint32_t pendings_n;
	struct outbox out; /* to the other workers and the peer thread */

	struct store_view *views; /* scratch for LIST, the feed, repairs */
	uint32_t views_cap;

	struct watch **watch_tab; /* WATCH_BUCKETS chains, by service */
	struct watch *watches;    /* every watch, for the push pass */
	struct sub *dead_subs;    /* unlinked at the end of the loop */
	uint32_t nsubs;
	int64_t last_push_ms;
	struct replica replica;
	bool inbound_more; /* the apply budget ran out with messages maybe left */

	int64_t now_ms;
	int64_t last_sweep_ms;
	int64_t stall_until_ms;   /* connections accepted before this are checked (worker.c) */
	int64_t frame_start_us;   /* the frame being handled */
	int64_t accept_resume_ms; /* accepts pause after an accept error */
	int64_t accept_log_ms;
	bool stopping;
	bool done;
	pthread_t thread;
	struct worker_stats stats;
} __attribute__((aligned(64)));

/* The worker thread's body (server.c starts it). */
void *worker_main(void *arg);

/* Sets up worker id of s (its memory, not its thread). 0 or -ENOMEM. */
int worker_init(struct server *s, struct worker *w, uint32_t id);

/* Frees what worker_init and the thread left; the thread has exited. */
void worker_free(struct worker *w);

/* One worker's counters (relaxed reads), for per-worker metrics. */
void worker_stats_read(struct worker *w, struct worker_stats *out);

#endif
