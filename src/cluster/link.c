/*
 * link.c - the peer links: frames, dialling, accepting, the handshake,
 * flushing, reading and its pause, and dispatching frames to the concept
 * that handles them.
 *
 * One TCP connection per pair of members on the peer port. A member with
 * no link to another dials it (backoff 100 ms doubling to 2 s; at most
 * DIAL_ALIVE_MS for a member another still reports alive) and also
 * accepts; when both ends dialled, both keep the link the lower id dialled
 * (link_up). A name is looked up before every dial by the resolver thread
 * (resolve.h), so a slow resolver never stalls the loop (and a name that
 * moved is followed). The handshake (HELLO both ways, then AUTH:
 * HMAC-SHA256 over both nonces and ids, cluster/auth.c) must finish within
 * --peer-down (a connection that sends nothing included); until it does,
 * any other frame, or a frame bigger than PREAUTH_FRAME_MAX, closes the
 * link. Only members should connect here, so one source address may hold
 * at most PREAUTH_PER_SOURCE accepted links that have not authenticated
 * yet: a stranger cannot fill the link table from one host. A nonce the system cannot generate
 * refuses the link: a zero nonce would make the handshake replayable.
 *
 * Buffers: each link has an input buffer (whole frames are parsed from it;
 * at most FRAMES_PER_READ/16 receives per loop per link, so one busy link
 * cannot starve the others) and an output buffer written by every concept
 * with link_frame_*, sent at the end of the loop. Output past
 * OUT_CLOSE_FACTOR x --peer-backlog closes the link (the peer does not read
 * what it asks for); sync stops at --peer-backlog already (sync.c).
 *
 * Reading pauses when the workers are BACKLOG_PAUSE messages behind: bytes
 * then wait in the sockets and TCP slows the peers down instead of our
 * memory growing. Silence while paused is ours, so last_rx is kept fresh.
 *
 * TLS (ptls.h; on unless --peer-tls off): the dialler is the TLS client.
 * The TLS handshake comes first, then HELLO/AUTH inside it, unchanged.
 * `in` and `out` keep holding plaintext frames, so every concept and every
 * bound above is the same with and without TLS; between them and the
 * socket sits the link's BIO pair: received bytes go into its free room and
 * are decrypted into `in` right away; `out` is encrypted record by record
 * (up to 16 KiB each) into its room at flush, and what it holds is sent in
 * as few send() calls as its ring allows. A link may receive at most
 * PTLS_HANDSHAKE_BYTES_MAX bytes until its TLS handshake is done (HELLO/AUTH
 * are then bounded by their frames), and the --peer-down deadline covers
 * both handshakes. A plaintext HELLO reaching a TLS node, or a TLS
 * ClientHello reaching a plaintext one, is refused with a log line that
 * names --peer-tls.
 */
#include "cluster/peer_internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/srclimit.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- frames out ---- */

uint8_t *link_frame_begin(struct link *l, size_t body_len)
{
	if (!buf_reserve(&l->out, PROTO_HEADER_BYTES + body_len, l->out_max)) {
		l->overflow =
		        true; /* link_flush closes it: a frame that cannot go is not skipped */
		return NULL;
	}
	return l->out.p + l->out.len;
}

void link_frame_end(struct link *l, uint8_t op, uint32_t body_len, uint32_t id, uint16_t status,
                    uint16_t count)
{
	pwire_header_put(l->out.p + l->out.len, op, body_len, id, status, count);
	l->out.len += PROTO_HEADER_BYTES + body_len;
}

bool link_frame_put(struct link *l, uint8_t op, const void *body, uint32_t len, uint32_t id,
                    uint16_t status, uint16_t count)
{
	uint8_t *f = link_frame_begin(l, len);

	if (f == NULL)
		return false;
	if (len)
		memcpy(f + PROTO_HEADER_BYTES, body, len);
	link_frame_end(l, op, len, id, status, count);
	return true;
}

/* What epoll watches on a link: input unless reading is paused, output while some waits. */
static void link_events(struct peer *p, struct link *l)
{
	struct epoll_event ev = { .events = (p->reading_paused ? 0 : EPOLLIN) |
		                            (l->want_out ? EPOLLOUT : 0),
		                  .data.ptr = l };

	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, l->fd, &ev) < 0)
		link_close(p, l, strerror(errno));
}

/* Frames, or ciphertext, wait to go out on the link. */
static bool link_has_output(struct link *l)
{
	uint8_t *c;

	return buf_used(&l->out) > 0 || l->overflow || ptls_out_pending(&l->tls, &c) > 0;
}

/*
 * TLS: encrypt `out` into the BIO pair while it has room, send what it
 * holds, again until the socket is full or nothing is left. Each turn
 * sends at least one byte or stops, so it ends. false: the link was closed.
 */
static bool link_flush_tls(struct peer *p, struct link *l)
{
	char why[160];

	for (;;) {
		uint8_t *c;
		size_t n;
		ssize_t sent;

		while (l->tls.done && buf_used(&l->out) > 0) {
			long w = ptls_write(&l->tls, l->out.p + l->out.off, buf_used(&l->out), why,
			                    sizeof(why));

			if (w < 0) {
				link_close(p, l, why);
				return false;
			}
			if (w == 0)
				break; /* the pair is full: send some first */
			buf_consume(&l->out, (size_t)w);
		}
		n = ptls_out_pending(&l->tls, &c);
		if (n == 0)
			return true;
		sent = send(l->fd, c, n, MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			if (errno == EINTR)
				continue;
			link_close(p, l, strerror(errno));
			return false;
		}
		ptls_out_consume(&l->tls, (size_t)sent);
	}
}

static void link_flush(struct peer *p, struct link *l)
{
	uint8_t *c;

	if (l->tls.ssl && !link_flush_tls(p, l))
		return;
	while (l->tls.ssl == NULL && buf_used(&l->out) > 0) {
		ssize_t n = send(l->fd, l->out.p + l->out.off, buf_used(&l->out), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			link_close(p, l, strerror(errno));
			return;
		}
		buf_consume(&l->out, (size_t)n);
	}
	if (l->id && p->by_id[l->id].link.up == l)
		STORE_RELAXED(&p->view.m[l->id].backlog_bytes, (uint64_t)buf_used(&l->out));
	if (l->overflow || buf_used(&l->out) > OUT_CLOSE_FACTOR * p->cfg->peer_backlog_bytes) {
		link_close(p, l, "the peer does not read what it asks for");
		return;
	}
	/* Wake on a writable socket only for bytes that can go now (not frames behind TLS). */
	bool want = ptls_out_pending(&l->tls, &c) > 0 ||
	            (buf_used(&l->out) > 0 && (l->tls.ssl == NULL || l->tls.done));

	if (want != l->want_out) {
		l->want_out = want;
		link_events(p, l);
	}
}

void link_flush_all(struct peer *p)
{
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		if (p->links[i].state >= L_HELLO && link_has_output(&p->links[i]))
			link_flush(p, &p->links[i]);
}

void link_reading_pause_check(struct peer *p)
{
	uint32_t backlog = outbox_backlog(&p->out);
	bool pause = backlog > BACKLOG_PAUSE;

	if (p->reading_paused && !pause && backlog > BACKLOG_PAUSE / 2)
		pause = true; /* hysteresis */
	if (pause == p->reading_paused) {
		if (pause)
			for (uint16_t id = 1; id <= p->conf.n; id++)
				if (p->by_id[id].link.up)
					STORE_RELAXED(&p->view.m[id].last_rx_ms, p->now_ms);
		return;
	}
	p->reading_paused = pause;
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		if (p->links[i].state >= L_HELLO)
			link_events(p, &p->links[i]);
}

/* ---- links ---- */

static struct link *link_new(struct peer *p, int fd, bool initiator, uint16_t id)
{
	for (uint32_t i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];

		if (l->state != L_FREE)
			continue;
		memset(l, 0, sizeof(*l));
		l->fd = fd;
		l->initiator = initiator;
		l->id = id;
		l->opened_ms = p->now_ms;
		/*
		 * The close rule (link_flush) bounds the steady state at
		 * OUT_CLOSE_FACTOR x --peer-backlog; this bounds one loop's
		 * burst on top of it (forward frames, streamed chunks).
		 */
		l->out_max = OUT_CLOSE_FACTOR * p->cfg->peer_backlog_bytes +
		             4 * (size_t)PWIRE_FRAME_MAX + SERVE_HIGH_BYTES;
		if (p->tls.ctx && ptls_link_new(&p->tls, &l->tls, initiator) < 0) {
			log_warn("peer link: no memory for TLS");
			return NULL;
		}
		l->state = initiator ? L_CONNECTING : L_HELLO;
		struct epoll_event ev = { .events = EPOLLIN | (initiator ? EPOLLOUT : 0),
			                  .data.ptr = l };

		l->want_out = initiator;
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			log_warn("peer link: epoll: %s", strerror(errno));
			ptls_link_free(&l->tls);
			l->state = L_FREE;
			return NULL;
		}
		return l;
	}
	return NULL;
}

void link_close(struct peer *p, struct link *l, const char *why)
{
	if (l->state == L_FREE)
		return;
	if (l->id && p->by_id[l->id].link.dialing == l)
		p->by_id[l->id].link.dialing = NULL;
	if (l->id && p->by_id[l->id].link.up == l) {
		if (l->state == L_UP)
			log_warn("peer %s: link lost (%s)", member_conf(p, l->id)->addr, why);
		p->by_id[l->id].link.up = NULL;
		STORE_RELAXED(&p->view.m[l->id].backlog_bytes, 0);
		health_member_down(p, l->id);
	}
	(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, l->fd, NULL); /* close() removes it anyway */
	close(l->fd);
	buf_free(&l->in);
	buf_free(&l->out);
	ptls_link_free(&l->tls);
	l->state = L_FREE;
	l->fd = -1;
}

void link_handshake_timeouts(struct peer *p, int64_t now)
{
	for (uint32_t i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];

		if (l->state == L_FREE || l->state == L_UP ||
		    now - l->opened_ms <= (int64_t)p->cfg->peer_down_ms)
			continue;
		if (l->state != L_CONNECTING) /* connected, then stalled: say so */
			log_warn("peer link: the handshake did not finish within --peer-down "
			         "(%u ms; stalled in %s): closed",
			         p->cfg->peer_down_ms,
			         l->tls.ssl && !l->tls.done ? "the TLS handshake" : "HELLO/AUTH");
		link_close(p, l, "handshake timed out");
	}
}

static void send_hello(struct peer *p, struct link *l, uint16_t to)
{
	uint8_t b[8 + AUTH_NONCE_BYTES];
	struct proto_wr w;

	proto_wr_init(&w, b, sizeof(b));
	proto_wr_u16(&w, PWIRE_VERSION);
	proto_wr_u16(&w, p->self);
	proto_wr_u16(&w, to);
	proto_wr_u16(&w, p->env.client_port);
	proto_wr_bytes(&w, l->nonce_me, AUTH_NONCE_BYTES);
	link_frame_put(l, P_HELLO, b, sizeof(b), 0, 0, 0);
}

/* ---- dialling ---- */

/*
 * Not linked: dial at most once per backoff, once its address is known
 * (both ends may). A member that another member still reports alive
 * (`alive`: only our link to it is cut, health.c) is dialled at least every
 * DIAL_ALIVE_MS: it is there, so a dial costs it one connection, and the
 * link - with the syncs and repairs it carries - comes back within that
 * of the network, not after a backoff grown to 2 s during the cut.
 */
void link_dial_due(struct peer *p, uint16_t id, int64_t now, bool alive)
{
	struct member_link *ml = &p->by_id[id].link;
	struct sockaddr_storage addr;
	socklen_t len;
	int fd, one = 1, rc;

	if (ml->up || ml->dialing || LOAD_ACQUIRE(&p->stop))
		return;
	if (!ml->resolving) {
		if (alive && ml->next_dial_ms > now + DIAL_ALIVE_MS)
			ml->next_dial_ms = now + DIAL_ALIVE_MS;
		if (now < ml->next_dial_ms)
			return;
		ml->backoff_ms = ml->backoff_ms ? ml->backoff_ms * 2 : DIAL_BACKOFF_MIN_MS;
		if (ml->backoff_ms > DIAL_BACKOFF_MAX_MS)
			ml->backoff_ms = DIAL_BACKOFF_MAX_MS;
		ml->next_dial_ms = now + ml->backoff_ms; /* an alive member's is bounded above */
	}
	rc = resolver_get(p->resolver, id, &addr, &len);
	ml->resolving = rc == 0;
	if (rc <= 0)
		return; /* looking it up (dial when it is in), or failed (after the backoff) */
	PSTAT_INC(p, dials);
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	ml->dialing = link_new(p, fd, true, id);
	if (ml->dialing == NULL)
		close(fd);
}

static void auth_refuse(struct peer *p, struct link *l, const char *why)
{
	PSTAT_INC(p, auth_failures);
	log_warn("peer link refused: %s", why);
	link_close(p, l, why);
}

static void on_connected(struct peer *p, struct link *l)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		link_close(p, l, strerror(err ? err : errno));
		return;
	}
	l->state = L_HELLO;
	if (auth_nonce(l->nonce_me) < 0) {
		auth_refuse(p, l, "no random bytes for a nonce");
		return;
	}
	if (l->tls.ssl) {
		char why[160];

		/* The ClientHello goes into the pair (sent at the loop's flush). */
		if (ptls_handshake(&l->tls, why, sizeof(why)) < 0) {
			auth_refuse(p, l, why);
			return;
		}
	}
	send_hello(p, l, l->id); /* waits in `out` until the TLS handshake is done */
}

/* Out of descriptors: the listener leaves epoll for 100 ms (link_accept_resume). */
void link_accept_pause(struct peer *p)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &p->listen_fd };

	if (p->accept_resume_ms == 0)
		log_warn("peer port: accept: %s: accepting pauses 100 ms at a time",
		         strerror(errno));
	(void)epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->listen_fd, &ev);
	p->accept_resume_ms = p->now_ms + 100;
}

void link_accept_resume(struct peer *p, int64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->listen_fd };

	if (p->accept_resume_ms == 0 || now < p->accept_resume_ms)
		return;
	p->accept_resume_ms = 0;
	(void)epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->listen_fd, &ev);
}

void link_on_accept(struct peer *p)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t slen = sizeof(ss);
		int fd = accept4(p->listen_fd, (struct sockaddr *)&ss, &slen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		uint32_t same = 0;
		uint64_t key;
		struct link *l;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				link_accept_pause(p); /* epoll would report it again at once */
			return;
		}
		if (p->left) { /* no longer a member: no peer traffic (membership.c) */
			close(fd);
			continue;
		}
		key = srclimit_key((struct sockaddr *)&ss, slen);
		for (uint32_t i = 0; i < LINKS_MAX; i++) {
			const struct link *o = &p->links[i];

			same += o->state != L_FREE && o->state != L_UP && !o->initiator &&
			        o->src_key == key;
		}
		if (same >= PREAUTH_PER_SOURCE) {
			PSTAT_INC(p, preauth_refused);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		l = link_new(p, fd, false, 0);
		if (l == NULL) {
			log_warn("peer port: too many links, connection refused");
			close(fd);
			continue;
		}
		l->src_key = key;
	}
}

/* ---- the handshake ---- */

/* The member that dialled a link. */
static uint16_t dialler(const struct peer *p, const struct link *l)
{
	return l->initiator ? p->self : l->id;
}

static void link_up(struct peer *p, struct link *l)
{
	struct member_link *ml = &p->by_id[l->id].link;

	if (ml->dialing == l)
		ml->dialing = NULL;
	if (ml->up && ml->up != l) {
		/*
		 * Two links to one member: both dialled at once (a node
		 * starting dials everyone), or the member restarted. Both ends
		 * keep the link the lower id dialled, so they keep the same
		 * one; between links of the same dialler the new one wins.
		 */
		if (dialler(p, ml->up) < dialler(p, l)) {
			link_close(p, l, "a link to this member already exists");
			return;
		}
		link_close(p, ml->up, "replaced by a new link");
	}
	ml->up = l;
	l->state = L_UP;
	ml->backoff_ms = 0;
	STORE_RELAXED(&p->view.m[l->id].client_port, (uint32_t)l->client_port);
	PSTAT_INC(p, links_up);
	log_info("peer %s: link up", member_conf(p, l->id)->addr);
	health_on_link_up(p, l->id);
}

static void on_hello(struct peer *p, struct link *l, const uint8_t *body)
{
	struct proto_rd r;
	uint16_t ver, from, to, cport;
	uint8_t mac[AUTH_MAC_BYTES];

	proto_rd_init(&r, body, 8 + AUTH_NONCE_BYTES);
	ver = proto_rd_u16(&r);
	from = proto_rd_u16(&r);
	to = proto_rd_u16(&r);
	cport = proto_rd_u16(&r);
	if (ver != PWIRE_VERSION || to != p->self || from == 0 || from > p->conf.n ||
	    from == p->self || l->have_peer_hello) {
		auth_refuse(p, l, "bad hello (version, ids or repeated)");
		return;
	}
	memcpy(l->nonce_peer, r.p, AUTH_NONCE_BYTES);
	l->have_peer_hello = true;
	if (l->initiator) {
		if (from != l->id) {
			auth_refuse(p, l, "hello from another member than dialled");
			return;
		}
		l->client_port = cport;
		l->state = L_AUTH; /* the acceptor's AUTH follows */
		return;
	}
	l->id = from;
	l->client_port = cport;
	if (auth_nonce(l->nonce_me) < 0) {
		auth_refuse(p, l, "no random bytes for a nonce");
		return;
	}
	send_hello(p, l, from);
	auth_mac(p->secret, p->secret_len, AUTH_ACCEPTOR, l->nonce_peer, l->nonce_me, from, p->self,
	         mac);
	link_frame_put(l, P_AUTH, mac, sizeof(mac), 0, 0, 0);
	l->state = L_AUTH;
}

static void on_auth(struct peer *p, struct link *l, const uint8_t *body)
{
	uint8_t mac[AUTH_MAC_BYTES];

	if (l->state != L_AUTH) {
		auth_refuse(p, l, "auth before hello");
		return;
	}
	if (l->initiator) {
		if (auth_check(p->secret, p->secret_len, AUTH_ACCEPTOR, l->nonce_me, l->nonce_peer,
		               p->self, l->id, body) != 0) {
			auth_refuse(p, l, "the acceptor does not know the cluster secret");
			return;
		}
		auth_mac(p->secret, p->secret_len, AUTH_INITIATOR, l->nonce_me, l->nonce_peer,
		         p->self, l->id, mac);
		link_frame_put(l, P_AUTH, mac, sizeof(mac), 0, 0, 0);
	} else if (auth_check(p->secret, p->secret_len, AUTH_INITIATOR, l->nonce_peer, l->nonce_me,
	                      l->id, p->self, body) != 0) {
		auth_refuse(p, l, "the dialler does not know the cluster secret");
		return;
	}
	link_up(p, l);
}

/* ---- frames in ---- */

static void on_frame(struct peer *p, struct link *l, const struct proto_header *h,
                     const uint8_t *body)
{
	int rc = pwire_check(h, body);

	if (rc < 0) {
		PSTAT_INC(p, proto_errors);
		log_warn("peer frame refused (op %u): %s", h->op, err_str(rc));
		link_close(p, l, "bad frame");
		return;
	}
	if (l->state != L_UP) {
		if (h->op == P_HELLO)
			on_hello(p, l, body);
		else if (h->op == P_AUTH)
			on_auth(p, l, body);
		else
			auth_refuse(p, l, "frame before authentication");
		return;
	}
	STORE_RELAXED(&p->view.m[l->id].last_rx_ms, p->now_ms);
	switch (h->op) {
	case P_PING:
		health_on_ping(p, l->id, body, h->body_len);
		break;
	case P_FWD:
		forward_on_fwd(p, l->id, h, body);
		break;
	case P_FWD_ACK:
		forward_on_ack(p, l->id, h, body);
		break;
	case P_SYNC:
		sync_on_frame(p, l->id, h, body);
		break;
	case P_DIGEST:
		verify_on_digest(p, l->id, body);
		break;
	case P_SUMS_REQ:
		verify_on_sums_req(p, l->id, h, body);
		break;
	case P_SUMS:
		verify_on_sums(p, l->id, h, body);
		break;
	case P_PULL:
		repair_on_pull(p, l->id, h, body);
		break;
	case P_CHUNK:
		repair_on_chunk(p, l->id, h, body);
		break;
	case P_PULL_DONE:
		repair_on_pull_done(p, l->id, h);
		break;
	default:
		auth_refuse(p, l, "hello or auth on an open link");
		break;
	}
}

/* The first bytes of a TLS record carrying a handshake (a ClientHello). */
static bool looks_tls(const uint8_t *b, size_t n)
{
	return n >= 2 && b[0] == 0x16 && b[1] == 0x03;
}

/* The first bytes of one of our peer frames sent in the clear. */
static bool looks_plain(const uint8_t *b, size_t n)
{
	return n >= 2 && b[0] == PWIRE_MAGIC0 && b[1] == PWIRE_MAGIC1;
}

/* Every whole frame in `in`, dispatched. false: the link was closed. */
static bool parse_frames(struct peer *p, struct link *l)
{
	for (;;) {
		struct proto_header h;
		long f = pwire_frame_check(l->in.p + l->in.off, buf_used(&l->in), &h);

		/* Before authentication only the handshake's small frames. */
		if (f >= 0 && l->state != L_UP && buf_used(&l->in) >= PROTO_HEADER_BYTES &&
		    h.body_len > PREAUTH_FRAME_MAX) {
			PSTAT_INC(p, proto_errors);
			auth_refuse(p, l, "a big frame before authentication");
			return false;
		}
		if (f == 0)
			break;
		if (f < 0) {
			PSTAT_INC(p, proto_errors);
			if (l->state == L_UP)
				log_warn("peer link: %s", err_str((int)f));
			if (l->state != L_UP && l->tls.ssl == NULL &&
			    looks_tls(l->in.p + l->in.off, buf_used(&l->in)))
				auth_refuse(p, l,
				            "the peer speaks TLS and this node has --peer-tls off: "
				            "every member must run with the same --peer-tls");
			else
				auth_refuse(p, l, "not a peer frame");
			return false;
		}
		l->in.off += (size_t)f;
		on_frame(p, l, &h, l->in.p + l->in.off - f + PROTO_HEADER_BYTES);
		if (l->state == L_FREE)
			return false;
	}
	if (l->in.off == l->in.len)
		buf_clear(&l->in);
	return true;
}

/* A TLS failure before the link is authenticated: refused, counted, said why. */
static void tls_refuse(struct peer *p, struct link *l, const char *why)
{
	char msg[256];

	snprintf(msg, sizeof(msg),
	         "TLS handshake failed: %s (does the peer hold another cluster secret, or "
	         "run with --peer-tls off?)",
	         why);
	auth_refuse(p, l, msg);
}

/*
 * TLS: the handshake with what came, then everything decryptable into
 * `in`, frames dispatched as they complete. false: the link was closed.
 */
static bool tls_drain(struct peer *p, struct link *l)
{
	char why[160];

	if (!l->tls.done) {
		int rc = ptls_handshake(&l->tls, why, sizeof(why));

		if (rc < 0) {
			tls_refuse(p, l, why);
			return false;
		}
		if (rc == PTLS_AGAIN)
			return true; /* its answer waits in the pair: the loop's flush sends it */
	}
	for (;;) {
		long n;

		if (!buf_reserve(&l->in, 65536, LINK_IN_MAX)) {
			link_close(p, l, "out of memory");
			return false;
		}
		n = ptls_read(&l->tls, l->in.p + l->in.len, l->in.cap - l->in.len, why,
		              sizeof(why));
		if (n == PTLS_AGAIN)
			return true;
		if (n == PTLS_CLOSED) {
			link_close(p, l, "closed by the peer");
			return false;
		}
		if (n < 0) {
			PSTAT_INC(p, proto_errors);
			if (l->state == L_UP) {
				log_warn("peer link: TLS: %s", why);
				link_close(p, l, why);
			} else {
				tls_refuse(p, l, why);
			}
			return false;
		}
		l->in.len += (size_t)n;
		if (!parse_frames(p, l))
			return false;
	}
}

/*
 * Bytes received while the TLS handshake runs: bounded in all, and a
 * plaintext HELLO on a TLS node is named. After it, HELLO/AUTH are bounded
 * by their frames (two, of at most PREAUTH_FRAME_MAX bytes); the peer's
 * first bytes after its AUTH may share a receive with it, so they are not
 * counted. false: the link was refused.
 */
static bool tls_handshake_bytes(struct peer *p, struct link *l, const uint8_t *b, size_t n)
{
	if (l->tls.ssl == NULL || l->tls.done)
		return true;
	if (l->preauth_bytes == 0 && looks_plain(b, n)) {
		PSTAT_INC(p, proto_errors);
		auth_refuse(p, l,
		            "the peer speaks plaintext (--peer-tls off there) and this node TLS: "
		            "every member must run with the same --peer-tls");
		return false;
	}
	if (n > PTLS_HANDSHAKE_BYTES_MAX - l->preauth_bytes) {
		PSTAT_INC(p, proto_errors);
		auth_refuse(p, l, "a TLS handshake longer than 16 KiB");
		return false;
	}
	l->preauth_bytes += (uint32_t)n;
	return true;
}

static void on_readable(struct peer *p, struct link *l)
{
	if (p->reading_paused)
		return; /* see link_reading_pause_check */
	for (int reads = 0; reads < FRAMES_PER_READ / 16; reads++) {
		uint8_t *dst;
		size_t room;
		ssize_t n;

		if (l->tls.ssl) {
			room = ptls_in_space(&l->tls, &dst);
			if (room == 0) { /* tls_drain empties it: never full here */
				link_close(p, l, "TLS input stuck");
				return;
			}
		} else {
			if (!buf_reserve(&l->in, 65536, LINK_IN_MAX)) {
				link_close(p, l, "out of memory");
				return;
			}
			dst = l->in.p + l->in.len;
			room = l->in.cap - l->in.len;
		}
		n = recv(l->fd, dst, room, 0);
		if (n == 0) {
			if (l->tls.ssl && !l->tls.done && l->initiator)
				log_warn(
				        "peer %s closed the link during the TLS handshake (does it "
				        "hold another cluster secret, or run with --peer-tls off?)",
				        member_conf(p, l->id)->addr);
			link_close(p, l, "closed by the peer");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				link_close(p, l, strerror(errno));
			break;
		}
		if (!tls_handshake_bytes(p, l, dst, (size_t)n))
			return;
		if (l->tls.ssl) {
			ptls_in_commit(&l->tls, (size_t)n);
			if (!tls_drain(p, l))
				return;
		} else {
			l->in.len += (size_t)n;
			if (!parse_frames(p, l))
				return;
		}
	}
}

void link_on_event(struct peer *p, struct link *l, uint32_t events)
{
	if (l->state == L_FREE)
		return;
	if (l->state == L_CONNECTING && (events & (EPOLLOUT | EPOLLERR)))
		on_connected(p, l);
	if (l->state != L_FREE && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		on_readable(p, l);
}
