/*
 * epoch.h - read-copy-update on Concurrency Kit's ck_epoch.
 *
 * Readers on any thread bracket their accesses with epoch_enter/epoch_exit
 * on their own record; inside, every object they reach stays valid. A writer
 * unlinks an object (an atomic pointer swap, a table slot cleared) and hands
 * it to epoch_retire; the object is freed only after every reader that could
 * have seen it has left its section. ck_epoch proves that rule in its header;
 * we add two things:
 *
 *  - batching: retired objects gather in a batch of EPOCH_BATCH items and the
 *    batch, not each object, takes one ck_epoch_entry, so retiring costs no
 *    allocation per object and no 16-byte entry inside every record;
 *  - ThreadSanitizer: ck's synchronisation is inline assembly TSan cannot
 *    see, so under TSan a reader's exit releases, and the reclaim callback
 *    acquires, a sync address per epoch domain. Without it TSan would report
 *    every reclaimed object as a race.
 *
 * A record belongs to one thread at a time, and its memory must stay valid
 * until the epoch itself is gone: ck_epoch keeps every record ever
 * registered on its list (unregistering only marks it free) and scans them
 * all on every poll. So records live in long-lived structures (a shard, a
 * worker, static storage), never on a thread's stack. Retired objects are freed from
 * inside epoch_poll/epoch_barrier on the retiring record's thread, so the
 * free function may touch that thread's private pools.
 */
#ifndef DISTRO_CORE_EPOCH_H
#define DISTRO_CORE_EPOCH_H

#ifdef __cplusplus
/*
 * ck_stack.h (pulled in by ck_epoch.h) has three MPMC helpers that are not
 * valid C++; claiming them as present skips them. Nothing here uses them.
 */
#define CK_F_STACK_BATCH_POP_UPMC
#define CK_F_STACK_BATCH_POP_MPMC
#define CK_F_STACK_PUSH_MPNC
extern "C" {
#endif
#include <ck_epoch.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define EPOCH_TSAN_RELEASE(a) __tsan_release(a)
#define EPOCH_TSAN_ACQUIRE(a) __tsan_acquire(a)
#else
#define EPOCH_TSAN_RELEASE(a) ((void)(a))
#define EPOCH_TSAN_ACQUIRE(a) ((void)(a))
#endif

#define EPOCH_BATCH 126

struct epoch {
	ck_epoch_t ck;
};

typedef void epoch_free_fn(void *ctx, void *obj);

struct epoch_batch;

struct epoch_rec {
	ck_epoch_record_t ck;
	struct epoch *epoch;
	struct epoch_batch *batch; /* filling; NULL when empty */
	uint64_t retired;          /* objects handed to epoch_retire */
	uint64_t freed;            /* objects whose free function ran */
};

void epoch_init(struct epoch *e);

/* Registers a record for the calling thread. Its memory must outlive the epoch. */
void epoch_register(struct epoch *e, struct epoch_rec *r);

/* Unregisters after running every pending free (blocks until readers leave). */
void epoch_unregister(struct epoch_rec *r);

static inline void epoch_enter(struct epoch_rec *r)
{
	ck_epoch_begin(&r->ck, NULL);
}

static inline void epoch_exit(struct epoch_rec *r)
{
	EPOCH_TSAN_RELEASE(r->epoch);
	ck_epoch_end(&r->ck, NULL);
}

/*
 * Frees obj through fn(ctx, obj) once no reader can hold it. The object must
 * already be unreachable for new readers. Costs O(1); allocates one batch per
 * EPOCH_BATCH calls. If that allocation fails, waits for a grace period and
 * frees at once (slow but never leaks or frees early).
 */
void epoch_retire(struct epoch_rec *r, epoch_free_fn *fn, void *ctx, void *obj);

/* Hands the filling batch to ck_epoch and frees whatever is safe. Call once per loop. */
void epoch_poll(struct epoch_rec *r);

/* Waits for a grace period and frees everything retired so far. */
void epoch_barrier(struct epoch_rec *r);

#ifdef __cplusplus
}
#endif

#endif
