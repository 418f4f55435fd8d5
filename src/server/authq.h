/*
 * authq.h - the auth thread: password checks that need a bcrypt, run off
 * the workers.
 *
 * Why a thread. A password the users table's cache has not seen costs one
 * bcrypt (nacos/auth.h: ~50-120 ms at cost 10, up to a second at the
 * highest cost allowed). A worker serves thousands of connections; one
 * bcrypt on it would stall them all. So a worker asks nauth_check_cached
 * first (one SHA-256), and only when that says NAUTH_NEEDS_CRYPT it takes
 * a job from here, parks the request (the connection reads nothing more
 * until the answer: nacos.c, worker.c) and submits the job. The one auth
 * thread runs nauth_check_password (the bcrypt, which also fills the
 * cache) and sends the job back; the worker resumes the request with the
 * answer.
 *
 * Transport: the cross-core rings (shard/xcore.h), an instance of their
 * own with nworkers + 1 participants, the auth thread being participant
 * nworkers, so the main rings' participants (the workers, the peer
 * thread) are untouched. A worker wakes the auth thread through an
 * eventfd; the auth thread wakes a worker with MSG_RING from a small
 * io_uring of its own (XMSG_WAKE_UD, as the peer thread does), and the
 * worker drains its answers in its loop (authq_recv).
 *
 * Bounds: each worker owns AUTHQ_JOBS_PER_WORKER job slots, allocated at
 * start (no malloc per request); with every slot out, authq_job_get says
 * NULL and the worker answers "busy" (HTTP 503, ERR_BUSY) at once. The
 * rings have as many slots as a worker has jobs, so a send never finds its
 * ring full. One thread runs the checks one at a time: while it works, the
 * other requests of a parked connection wait, and every other connection
 * is served as usual.
 *
 * Ownership: a job belongs to its worker, except between authq_submit and
 * the authq_recv that hands it back, when the auth thread owns it. The job
 * carries the password: authq_job_put wipes it.
 *
 * Life cycle: create before the workers (their loops read the pointer),
 * start after their rings exist (server.c's barrier), stop after the
 * workers have exited (they wait for their jobs when they drain), destroy
 * last.
 */
#ifndef DISTRO_SERVER_AUTHQ_H
#define DISTRO_SERVER_AUTHQ_H

#include "nacos/auth.h"

#include <stdbool.h>
#include <stdint.h>

#define AUTHQ_JOBS_PER_WORKER 64 /* a power of two: the rings' slots */

enum authq_kind {
	AUTHQ_HTTP = 1,   /* a Nacos request (or login) waits in its connection's input */
	AUTHQ_BINARY = 2, /* an AUTH frame of the client protocol */
};

struct authq_job {
	uint8_t kind; /* enum authq_kind */
	bool crypted; /* the check ran a bcrypt (it may not: another job filled the cache) */
	uint32_t worker, conn, conn_gen;
	uint32_t request_id; /* AUTHQ_BINARY: the AUTH frame's */
	int rc;              /* nauth_check_password's answer */
	struct nauth_id who;
	uint32_t user_len, pass_len;
	char user[NAUTH_NAME_MAX];
	char pass[NAUTH_PASSWORD_MAX];
	uint32_t next_free;
};

struct authq;

/*
 * Allocates the jobs and the rings for nworkers workers checking against
 * auth (not owned; it outlives the queue). ring_fds: each worker's io_uring
 * fd, filled by the time authq_start runs. 0 or -ENOMEM.
 */
int authq_create(struct nauth *auth, uint32_t nworkers, const int *ring_fds, struct authq **out);

/* Starts the thread. 0 or -errno. */
int authq_start(struct authq *q);

/* Stops the thread (jobs still queued are not run); once the workers have exited. */
void authq_stop(struct authq *q);

/* Frees everything; NULL is fine. */
void authq_destroy(struct authq *q);

/* ---- a worker's side: worker `w` only ---- */

/* A free job slot of worker w, or NULL when all AUTHQ_JOBS_PER_WORKER are out. */
struct authq_job *authq_job_get(struct authq *q, uint32_t w);

/*
 * Hands j (kind, conn, user and password filled) to the auth thread and
 * wakes it (one eventfd write). Never fails: the ring has a slot per job.
 */
void authq_submit(struct authq *q, uint32_t w, struct authq_job *j);

/* Up to max answered jobs of worker w. Returns how many. */
uint32_t authq_recv(struct authq *q, uint32_t w, struct authq_job **jobs, uint32_t max);

/* Gives a job slot back, the password wiped. */
void authq_job_put(struct authq *q, uint32_t w, struct authq_job *j);

#endif
