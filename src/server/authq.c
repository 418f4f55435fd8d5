/*
 * authq.c - the auth thread and its rings (design in authq.h).
 *
 * The thread's loop: block on the eventfd (a worker submitted, or stop),
 * then take every job of every worker's ring, one at a time: run the
 * check, send the job back on the ring to its worker, wake that worker.
 * Waking per job, not per batch: a job is a bcrypt, milliseconds, against
 * which one MSG_RING is nothing, and the first answer should not wait for
 * the last check.
 *
 * Job slots: worker w owns jobs[w * AUTHQ_JOBS_PER_WORKER ...], with its
 * own free list (free_head[w]), touched only by w. The auth thread reads
 * and writes a job only between the ring operations that hand it over
 * (release on send, acquire on receive: xcore.c), so no field is shared
 * at the same time.
 */
#include "server/authq.h"

#include "cluster/xmsg.h"
#include "core/atomic.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "shard/xcore.h"

#include <errno.h>
#include <liburing.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert((AUTHQ_JOBS_PER_WORKER & (AUTHQ_JOBS_PER_WORKER - 1)) == 0,
               "the rings' slots are a power of two");

struct authq {
	struct nauth *auth;
	uint32_t nworkers; /* the auth thread is participant nworkers of x */
	const int *ring_fds;
	struct xcore x;
	struct authq_job *jobs;
	uint32_t *free_head; /* per worker; UINT32_MAX: none free */
	int wake_fd;
	struct io_uring ring; /* MSG_RING wake-ups of the workers */
	bool ring_ok;
	bool started;
	uint32_t stop; /* atomic */
	pthread_t thread;
};

int authq_create(struct nauth *auth, uint32_t nworkers, const int *ring_fds, struct authq **out)
{
	struct authq *q = mem_calloc(1, sizeof(*q));
	uint32_t n = nworkers * AUTHQ_JOBS_PER_WORKER;

	*out = NULL;
	if (q == NULL)
		return -ENOMEM;
	q->auth = auth;
	q->nworkers = nworkers;
	q->ring_fds = ring_fds;
	q->wake_fd = -1;
	q->jobs = mem_calloc(n, sizeof(q->jobs[0]));
	q->free_head = mem_calloc(nworkers, sizeof(q->free_head[0]));
	if (q->jobs == NULL || q->free_head == NULL ||
	    xcore_init(&q->x, nworkers + 1, AUTHQ_JOBS_PER_WORKER) < 0)
		goto err;
	for (uint32_t w = 0; w < nworkers; w++) {
		q->free_head[w] = UINT32_MAX;
		for (uint32_t i = AUTHQ_JOBS_PER_WORKER; i-- > 0;) {
			uint32_t k = w * AUTHQ_JOBS_PER_WORKER + i;

			q->jobs[k].worker = w;
			q->jobs[k].next_free = q->free_head[w];
			q->free_head[w] = k;
		}
	}
	q->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (q->wake_fd < 0)
		goto err;
	*out = q;
	return 0;
err:
	authq_destroy(q);
	return -ENOMEM;
}

static void wake_worker(struct authq *q, uint32_t w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct io_uring_cqe *cqe;

	if (sqe == NULL)
		return; /* never: one at a time, and reaped below */
	/* The workers' rings stay open until authq_stop returned (server.c). */
	io_uring_prep_msg_ring(sqe, q->ring_fds[w], 0, XMSG_WAKE_UD, 0);
	io_uring_sqe_set_data64(sqe, 0);
	io_uring_submit(&q->ring);
	if (io_uring_wait_cqe(&q->ring, &cqe) == 0) {
		/* Stopping: a worker whose thread has exited may refuse it (EOWNERDEAD). */
		if (cqe->res < 0 && !LOAD_ACQUIRE(&q->stop))
			log_warn("auth thread: waking worker %u: %s", w, strerror(-cqe->res));
		io_uring_cqe_seen(&q->ring, cqe);
	}
}

static void run(struct authq *q, struct authq_job *j)
{
	uint64_t before = nauth_crypt_runs(q->auth);

	memset(&j->who, 0, sizeof(j->who));
	j->rc = nauth_check_password(q->auth, j->user, j->user_len, j->pass, j->pass_len, &j->who);
	/* The only thread that runs bcrypt on this table: the difference is ours. */
	j->crypted = nauth_crypt_runs(q->auth) != before;
	OPENSSL_cleanse(j->pass, sizeof(j->pass));
	j->pass_len = 0;
}

static void *authq_main(void *arg)
{
	struct authq *q = arg;

	log_thread_name("auth");
	while (!LOAD_ACQUIRE(&q->stop)) {
		uint64_t v;
		bool any = true;

		if (read(q->wake_fd, &v, sizeof(v)) < 0 && errno != EINTR) {
			log_error("auth thread: %s", strerror(errno));
			break;
		}
		while (any && !LOAD_ACQUIRE(&q->stop)) {
			any = false;
			for (uint32_t w = 0; w < q->nworkers; w++) {
				void *m;

				if (xcore_recv(&q->x, w, q->nworkers, &m, 1) == 0)
					continue;
				any = true;
				run(q, m);
				/* A slot per job: the ring back cannot be full. */
				if (!xcore_send(&q->x, q->nworkers, w, m))
					abort();
				wake_worker(q, w);
			}
		}
	}
	return NULL;
}

int authq_start(struct authq *q)
{
	int rc = io_uring_queue_init(8, &q->ring, 0);

	if (rc < 0) {
		log_error("auth thread io_uring: %s", strerror(-rc));
		return rc;
	}
	q->ring_ok = true;
	if (pthread_create(&q->thread, NULL, authq_main, q) != 0)
		return -EAGAIN;
	q->started = true;
	return 0;
}

void authq_stop(struct authq *q)
{
	uint64_t one = 1;

	if (q == NULL || !q->started)
		return;
	STORE_RELEASE(&q->stop, 1);
	if (write(q->wake_fd, &one, sizeof(one)) < 0)
		log_error("stopping the auth thread: %s", strerror(errno));
	pthread_join(q->thread, NULL);
	q->started = false;
}

void authq_destroy(struct authq *q)
{
	if (q == NULL)
		return;
	authq_stop(q);
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	xcore_free(&q->x);
	if (q->jobs)
		OPENSSL_cleanse(q->jobs, sizeof(q->jobs[0]) * q->nworkers * AUTHQ_JOBS_PER_WORKER);
	mem_free(q->jobs);
	mem_free(q->free_head);
	mem_free(q);
}

struct authq_job *authq_job_get(struct authq *q, uint32_t w)
{
	uint32_t k = q->free_head[w];
	struct authq_job *j;

	if (k == UINT32_MAX)
		return NULL;
	j = &q->jobs[k];
	q->free_head[w] = j->next_free;
	return j;
}

void authq_submit(struct authq *q, uint32_t w, struct authq_job *j)
{
	uint64_t one = 1;

	j->worker = w;
	if (!xcore_send(&q->x, w, q->nworkers, j))
		abort(); /* a slot per job: never */
	if (write(q->wake_fd, &one, sizeof(one)) < 0)
		log_error("waking the auth thread: %s", strerror(errno));
}

uint32_t authq_recv(struct authq *q, uint32_t w, struct authq_job **jobs, uint32_t max)
{
	return xcore_recv(&q->x, q->nworkers, w, (void **)jobs, max);
}

void authq_job_put(struct authq *q, uint32_t w, struct authq_job *j)
{
	uint32_t k = (uint32_t)(j - q->jobs);

	OPENSSL_cleanse(j->pass, sizeof(j->pass));
	j->pass_len = 0;
	j->next_free = q->free_head[w];
	q->free_head[w] = k;
}
