/*
 * membership.c - finding this node in cluster.conf, and changing the
 * members while the cluster runs.
 *
 * cluster.conf is read at start and again whenever it changes: the peer
 * thread watches its directory with inotify (editors and configuration
 * tools replace a file by renaming a new one over it, so the directory is
 * watched, not the file), and SIGHUP asks for a reload too (main.c). A
 * file is read 50 ms after the last event, and a list that differs from
 * the one in use is acted on only when a second read 50 ms later gives
 * the same list: a file caught half-written (written in place, not
 * renamed; or a SIGHUP in the middle) would otherwise be applied - worst,
 * a truncated file that no longer names this node would make it leave,
 * and the whole file a moment later make it rejoin and load everything
 * again.
 *
 * Applying a new member list. Member ids are positions in the sorted list
 * (members.h), so a member added or removed may renumber the others, and
 * everything the peer thread keys by id - links, forwards waiting, pulls,
 * the map - would mean someone else. So a change is applied as a
 * restart of the cluster layer that keeps the data and READY: every link
 * is closed (what waits on it is answered "unavailable", retryable), the
 * list is swapped, and the links are dialled again under the new ids. A
 * READY node stays READY (its copy is current; /health does not flap on
 * every member at once): until its links are back it has no quorum, so
 * it owns and expires nothing, and the slots the map gives it once they
 * are back are taken over with fresh deadlines; like a node that regained a quorum, it merges a
 * READY peer's copy (last writer wins, nothing dropped) before it sends a digest. A node still
 * loading starts its load again. No beating instance can be lost in the change.
 *
 * What follows from the new list: a new member is dialled, loads, becomes
 * READY and takes about 1/N of the slots (rendezvous hashing moves only
 * those); a removed member's slots go to the others; the quorum is counted
 * against the new member count. Links with members whose list differs are
 * refused at the handshake (the ids do not match) until they reload too:
 * roll a change out to every member within seconds (one shared file, or
 * configuration management), and mind the quorum while lists differ.
 *
 * A node no longer in the list leaves the cluster: it closes its links,
 * refuses peers, owns nothing, answers every write "unavailable"
 * (retryable: its clients move to a member) and stays so until it is
 * restarted; reads are still served from what it holds.
 * A node started standalone (no cluster.conf, or only itself in it) has no
 * peer thread and does not become a member by a reload: restart it.
 * The file of a node must keep naming it at the same address.
 *
 * Runs on the peer thread (the find_self part also at start, before it).
 */
#include "cluster/peer_internal.h"

#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <libgen.h>
#include <netdb.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELOAD_SETTLE_MS 50
/* Events in the directory delay a change's confirming read this long at most. */
#define RELOAD_CONFIRM_MAX_MS 500
#define LEAVE_GRACE_MS        500 /* a node dropped from the list syncs its last changes meanwhile */

/* True when host is an address of this machine (it can be bound). */
static bool host_is_local(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	bool ok = false;

	if (getaddrinfo(host, "0", &hints, &ai) != 0 || ai == NULL)
		return false;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
		close(fd);
	}
	freeaddrinfo(ai);
	return ok;
}

int membership_find_self(struct members *ms, const struct server_config *cfg)
{
	if (cfg->cluster_self[0]) {
		if (members_find_self(ms, cfg->cluster_self) < 0) {
			log_error("--cluster-self %s is not in %s", cfg->cluster_self,
			          cfg->cluster_conf);
			return -1;
		}
		return 0;
	}
	for (uint32_t i = 0; i < ms->n; i++) {
		if (ms->m[i].port == cfg->peer_port && host_is_local(ms->m[i].host)) {
			ms->self_id = ms->m[i].id;
			return 0;
		}
	}
	log_error("no line of %s is a local address with --peer-port %u (set --cluster-self)",
	          cfg->cluster_conf, cfg->peer_port);
	return -1;
}

/* ---- watching the file ---- */

int membership_watch(struct peer *p)
{
	char dir[sizeof(p->cfg->cluster_conf)];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->inotify_fd };

	snprintf(dir, sizeof(dir), "%s", p->cfg->cluster_conf);
	p->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->inotify_fd < 0 ||
	    inotify_add_watch(p->inotify_fd, dirname(dir),
	                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF) < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->inotify_fd, &ev) < 0) {
		log_warn("cannot watch %s for changes (%s): reload it with SIGHUP",
		         p->cfg->cluster_conf, strerror(errno));
		if (p->inotify_fd >= 0)
			close(p->inotify_fd);
		p->inotify_fd = -1;
	}
	return 0;
}

void membership_on_inotify(struct peer *p)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	/*
	 * Any event in the directory may be a change: a Kubernetes ConfigMap
	 * swaps a `..data` symlink and never names the file, and a queue
	 * overflow names nothing. Reading a small file that did not change
	 * costs nothing (same_members), so every event schedules a read.
	 */
	while ((n = read(p->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *at = buf; at < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)at;

			p->reload_at_ms = p->now_ms + RELOAD_SETTLE_MS;
			/* A busy directory does not put a change's confirming read off for ever. */
			if (p->reload_seen &&
			    p->reload_at_ms > p->reload_first_ms + RELOAD_CONFIRM_MAX_MS)
				p->reload_at_ms = p->reload_first_ms + RELOAD_CONFIRM_MAX_MS;
			at += sizeof(*e) + e->len;
		}
	}
}

/* ---- applying a change ---- */

static bool same_members(const struct members *a, const struct members *b)
{
	if (a->n != b->n || a->self_id != b->self_id)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (strcmp(a->m[i].addr, b->m[i].addr) != 0)
			return false;
	return true;
}

/* Every member forgotten: links closed (their waits answered), health and reports cleared. */
static void members_drop(struct peer *p)
{
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		link_close(p, &p->links[i], "the member list changed");
	for (uint16_t id = 0; id <= MEMBERS_MAX; id++) {
		struct member_link *ml = &p->by_id[id].link;

		ml->next_dial_ms = 0;
		ml->backoff_ms = 0;
		ml->resolving = false;
		p->by_id[id].sees = 0;
		p->by_id[id].no_slots = false;
		p->eligible[id] = false;
	}
}

/*
 * The new list, under conf_mu: the only place the list changes, and
 * peer_status_read (other threads) copies it under the same mutex, so no
 * reader sees half a list. The peer thread's own reads need no lock. The
 * map is empty and the quorum off by now (membership_apply), so a worker
 * that sees the new self id finds no slot of it under the old numbering.
 */
static void swap_list(struct peer *p, const struct members *next)
{
	pthread_mutex_lock(&p->conf_mu);
	p->conf = *next;
	p->self = next->self_id;
	p->conf_hash = members_hash(next);
	p->conf_gen++;
	STORE_RELEASE(&p->view.self, next->self_id);
	STORE_RELAXED(&p->view.n, next->n);
	for (uint16_t id = 0; id <= MEMBERS_MAX; id++) {
		struct peer_view_member *vm = &p->view.m[id];

		STORE_RELAXED(&vm->health, (uint32_t)PEER_DOWN);
		STORE_RELAXED(&vm->ready, 0u);
		STORE_RELAXED(&vm->client_port, 0u);
		STORE_RELAXED(&vm->last_rx_ms, (int64_t)0);
		STORE_RELAXED(&vm->backlog_bytes, (uint64_t)0);
		STORE_RELAXED(&vm->peer_map_version, (uint64_t)0);
	}
	pthread_mutex_unlock(&p->conf_mu);
}

uint64_t members_hash(const struct members *ms)
{
	uint64_t h = 0x6d656d62657273ull; /* "members" */

	for (uint32_t i = 0; i < ms->n; i++)
		h = XXH3_64bits_withSeed(ms->m[i].addr, strlen(ms->m[i].addr), h);
	return h;
}

/* A resolver for the new list; the old one is given up without waiting for its lookups. */
static void resolver_replace(struct peer *p)
{
	struct resolver *r = mem_calloc(1, sizeof(*r));

	if (r == NULL || resolver_start(r, &p->conf) < 0) {
		log_error("peer thread: no resolver for the new member list; names in it are not "
		          "resolved until a restart");
		mem_free(r);
		r = NULL;
	}
	if (p->resolver)
		resolver_retire(p->resolver);
	p->resolver = r;
}

/* Applies a different list that names this node (membership.c's essay). */
static void apply(struct peer *p, const struct members *next, bool rejoin)
{
	PSTAT_INC(p, membership_changes);
	log_warn("%s changed: %u members (was %u), this node is member %u (was %u); links "
	         "restart under the new ids",
	         p->cfg->cluster_conf, next->n, p->conf.n, next->self_id, p->self);
	/* Nothing is expired and nothing owned under ids that are about to change. */
	p->quorum = false; /* recounted against the new list at the next check */
	STORE_RELEASE(&p->view.quorum, 0u);
	/* Links restart, the quorum is not lost: writes are taken while they come back. */
	p->writes_grace_ms = p->now_ms + p->cfg->peer_down_ms;
	members_drop(p);
	health_map_update(p); /* everyone ineligible: the empty map, old ids and all */
	swap_list(p, next);
	resolver_replace(p);
	if (p->ready && !rejoin) {
		/*
		 * Its copy is current (this is no stall): it stays READY, owns
		 * slots again once its links give it a quorum (health.c; until
		 * then it owns and expires nothing), and merges a peer's copy
		 * before verifying.
		 */
		p->need_merge = true;
		p->merging = false;
		load_plan_reset(&p->plan);
	} else {
		load_restart(p, p->now_ms); /* loading, or back after leaving: load again */
	}
}

/* Not in the list: writes are refused at once, the links kept a moment for the last syncs. */
static void leave_begin(struct peer *p)
{
	STORE_RELAXED(&p->view.left, 1u); /* workers answer writes "unavailable" from now */
	p->leave_at_ms = p->now_ms + LEAVE_GRACE_MS;
	log_error("this node (%s) is not in %s any more: it leaves the cluster in %d ms (its "
	          "last changes go out meanwhile); until a list names it again it owns nothing, "
	          "refuses peers and answers writes \"unavailable\"",
	          member_conf(p, p->self)->addr, p->cfg->cluster_conf, LEAVE_GRACE_MS);
}

static void leave_now(struct peer *p)
{
	p->leave_at_ms = 0;
	p->left = true;
	members_drop(p);
	p->quorum = false;
	STORE_RELEASE(&p->view.quorum, 0u);
	load_restart(p, p->now_ms); /* not READY: owns nothing, expires nothing */
}

/*
 * A list that would change something, read for the first time: read again
 * in RELOAD_SETTLE_MS and act only if that read agrees. True when this
 * read confirms the last one.
 */
static bool confirmed(struct peer *p, const struct members *next)
{
	uint64_t h = members_hash(next);

	if (p->reload_seen && p->reload_hash == h) {
		if (p->now_ms - p->reload_first_ms >= RELOAD_SETTLE_MS) {
			p->reload_seen = false;
			return true;
		}
		/* Too soon (a SIGHUP just after an event's read): at the settle time. */
		p->reload_at_ms = p->reload_first_ms + RELOAD_SETTLE_MS;
		return false;
	}
	PSTAT_INC(p, membership_deferred);
	log_info("%s changed: read again in %d ms before acting on it", p->cfg->cluster_conf,
	         RELOAD_SETTLE_MS);
	p->reload_seen = true;
	p->reload_hash = h;
	p->reload_first_ms = p->now_ms;
	p->reload_at_ms = p->now_ms + RELOAD_SETTLE_MS;
	return false;
}

void membership_reload(struct peer *p)
{
	const char *me = member_conf(p, p->self)->addr;
	bool out = p->left || p->leave_at_ms;
	struct members next;
	char err[256];

	p->reload_at_ms = 0;
	if (members_load(p->cfg->cluster_conf, &next, err, sizeof(err)) < 0) {
		log_error("%s changed but cannot be used (the members stay as they are): %s",
		          p->cfg->cluster_conf, err);
		p->reload_seen = false;
		return;
	}
	if (next.n == 0) { /* empty, or caught half-written: never a reason to leave */
		log_error("%s lists no member: ignored (the members stay as they are)",
		          p->cfg->cluster_conf);
		p->reload_seen = false;
		return;
	}
	bool in = members_find_self(&next, me) == 0; /* by the address the list had: no lookup */

	if (in && !out && same_members(&next, &p->conf)) {
		p->reload_seen = false; /* nothing to do (an event for another file, a SIGHUP) */
		return;
	}
	if (!in && out)
		return; /* gone already, and the list still does not name it */
	if (!confirmed(p, &next))
		return;
	if (!in) {
		if (!out)
			leave_begin(p);
		return;
	}
	if (out) {
		log_warn("%s names this node again: it rejoins the cluster", p->cfg->cluster_conf);
		p->left = false;
		p->leave_at_ms = 0;
		STORE_RELAXED(&p->view.left, 0u);
		apply(p, &next, true);
		return;
	}
	apply(p, &next, false);
}

void membership_step(struct peer *p, int64_t now)
{
	if (LOAD_ACQUIRE(&p->reload_req)) {
		STORE_RELAXED(&p->reload_req, 0u);
		log_info("SIGHUP: reading %s again", p->cfg->cluster_conf);
		membership_reload(p);
	} else if (p->reload_at_ms && now >= p->reload_at_ms) {
		membership_reload(p);
	}
	if (p->leave_at_ms && now >= p->leave_at_ms)
		leave_now(p);
}
