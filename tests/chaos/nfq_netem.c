/*
 * nfq_netem: delay, reorder and duplicate IPv4 packets from an NFQUEUE queue,
 * for kernels without sch_netem (the fault campaign, docs/chaos.md).
 *
 * Why. `tc qdisc ... netem` is what delays, reorders and duplicates packets
 * on Linux, but a kernel built without CONFIG_NET_SCH_NETEM (this machine's)
 * has none of it. iptables can drop packets (the `statistic` match) but not
 * hold or copy them. NFQUEUE can: an iptables rule hands each packet to a
 * program through netlink, and the packet waits in the kernel until the
 * program gives its verdict. Verdicts are found by packet id, so they may be
 * given in any order and at any later time: holding a verdict delays the
 * packet, holding one longer than a later packet's reorders them.
 *
 * What it does, per packet. Its release time is now + delay ± jitter
 * (uniform, never below 0); with probability --reorder it is held
 * --reorder-ms more, so packets sent after it within that time overtake it;
 * with probability --duplicate a copy of it is sent right after its
 * verdict. A packet due at once is accepted at once. Otherwise it waits in a
 * min-heap ordered by (release time, arrival), and the loop accepts every
 * packet whose time has come, then sleeps (ppoll, ns resolution) until the
 * next one is due or netlink brings more.
 *
 * Copies. The kernel has no "accept twice" verdict, so the copy is the
 * packet's bytes sent again through a raw IPPROTO_RAW socket (the IP header
 * is ours, as received; the kernel rewrites only the header checksum and
 * length) with SO_MARK set to --mark; the iptables rule that queues packets
 * must skip that mark (`-m mark ! --mark 0x4e51`) or every copy would be
 * queued and perhaps copied again. The bytes are good to send as they are:
 * without NFQA_CFG_F_GSO the kernel segments large packets and completes
 * partial checksums before it queues them (nfnetlink_queue), so what we get
 * is what the wire would carry. Copies are IPv4 only (the campaign's peer
 * network); an IPv6 packet is accepted without one (counted in dup_failed).
 *
 * Ownership and bounds. One thread; every packet held has one slot of a
 * fixed array allocated at start (--held-max slots of SLOT_BYTES each, for
 * the bytes of a copy): nothing is allocated per packet. When every slot is
 * taken the packet is accepted at once (counted in `overflow`): the fault
 * weakens, nothing is dropped. The kernel's own queue is bounded too
 * (queue maxlen, held-max + QUEUE_SLACK) and set to fail open
 * (NFQA_CFG_F_FAIL_OPEN): a packet that finds it full, or that netlink
 * cannot deliver, is accepted, not dropped. The rule should carry
 * `--queue-bypass`, so that without this program bound the packets pass.
 *
 * Exit. SIGTERM or SIGINT: every held packet is accepted at once (with its
 * copy), what the socket still holds is accepted too, the queue is unbound
 * and one line of counters is printed on stdout. Remove the iptables rule
 * first: a packet queued after the last read is dropped by the kernel when
 * the socket closes. If the program dies without that (SIGKILL), the kernel
 * drops what it held and `--queue-bypass` lets later packets through.
 *
 * Output (stdout, line-buffered): "nfq_netem: ready queue=N" once the queue
 * is bound and configured - add the iptables rule after it - and at exit
 * "nfq_netem: queued=... accepted=... " (the counters of NQ_STATS). Errors
 * go to stderr; the exit status is 0 after a clean stop, 1 on a setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define SLOT_BYTES     2048u  /* bytes kept for a copy: the peer link's MTU is 1500 */
#define QUEUE_SLACK    1024u  /* kernel queue beyond our slots: packets not yet read */
#define HELD_MAX_LIMIT 65536u /* --held-max at most (slot index fits the heap) */
#define RECV_BATCH     64     /* netlink reads per wake-up before releasing again */
#define RCVBUF_BYTES   (8 << 20)
#define NL_BUF_BYTES   (0xffff + 4096) /* one packet message: header + up to 64 KiB */
#define MARK_DEFAULT   0x4e51u         /* "NQ" */
#define PPM            1000000u        /* probabilities are parts per million */
#define NS_PER_MS      1000000ull

/* Counters printed at exit, in this order. */
#define NQ_STATS(X)                                                                                \
	X(queued)         /* packets received from the queue */                                    \
	X(accepted)       /* verdicts given (every packet gets exactly one) */                     \
	X(delayed)        /* accepted after being held */                                          \
	X(reordered)      /* held --reorder-ms longer */                                           \
	X(duplicated)     /* copies sent */                                                        \
	X(dup_failed)     /* a copy chosen but not sent: too large, not IPv4, or sendto failed */  \
	X(overflow)       /* every slot taken: accepted at once */                                 \
	X(verdict_errors) /* a verdict the kernel did not take */                                  \
	X(recv_errors)    /* netlink read errors (ENOBUFS: the kernel failed open) */              \
	X(accepted_at_exit) /* held when SIGTERM came, accepted then */

struct nq_stats {
#define NQ_FIELD(name) uint64_t name;
	NQ_STATS(NQ_FIELD)
#undef NQ_FIELD
	uint64_t held_peak; /* most packets held at once */
};

struct nq_config {
	uint16_t queue;
	uint64_t delay_ns;
	uint64_t jitter_ns;
	uint32_t reorder_ppm;
	uint64_t reorder_ns;
	uint32_t duplicate_ppm;
	uint32_t mark;
	uint32_t held_max;
	uint64_t seed;
};

/* A packet whose verdict is held. */
struct nq_held {
	uint64_t due_ns;    /* CLOCK_MONOTONIC */
	uint64_t seq;       /* arrival order: ties in due_ns keep it */
	uint32_t id;        /* the kernel's packet id, for the verdict */
	uint16_t copy_len;  /* bytes in pkt to send as a copy; 0 = no copy */
	unsigned char *pkt; /* SLOT_BYTES of the arena */
};

struct nq {
	struct nq_config cfg;
	struct nq_stats st;
	struct mnl_socket *nl;
	unsigned int portid;
	int raw_fd;
	uint64_t rng;
	uint64_t seq;
	struct nq_held *slots; /* cfg.held_max */
	uint32_t *heap;        /* slot indexes, min-heap on (due_ns, seq) */
	uint32_t nheap;
	uint32_t *free_slots;
	uint32_t nfree;
	unsigned char *arena;
	char *buf; /* NL_BUF_BYTES: netlink reads and writes */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: seeded, so a run's choices can be repeated given the same packets. */
static uint64_t nq_rand(struct nq *q)
{
	uint64_t z = (q->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool nq_roll(struct nq *q, uint32_t ppm)
{
	return ppm != 0 && nq_rand(q) % PPM < ppm;
}

/* ---------------------------------------------------------------- the heap */

static bool nq_before(const struct nq *q, uint32_t a, uint32_t b)
{
	const struct nq_held *x = &q->slots[a], *y = &q->slots[b];

	return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->seq < y->seq);
}

static void nq_heap_push(struct nq *q, uint32_t slot)
{
	uint32_t i = q->nheap++;

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!nq_before(q, slot, q->heap[parent]))
			break;
		q->heap[i] = q->heap[parent];
		i = parent;
	}
	q->heap[i] = slot;
}

static uint32_t nq_heap_pop(struct nq *q)
{
	uint32_t top = q->heap[0], last = q->heap[--q->nheap], i = 0;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= q->nheap)
			break;
		if (c + 1 < q->nheap && nq_before(q, q->heap[c + 1], q->heap[c]))
			c++;
		if (!nq_before(q, q->heap[c], last))
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->nheap > 0)
		q->heap[i] = last;
	return top;
}

/* ------------------------------------------------------------- netlink I/O */

static int nq_packet(const struct nlmsghdr *nlh, void *data);

/*
 * Sends one config message and waits for the kernel's answer (NLM_F_ACK), so
 * a queue another program already holds (-EPERM/-EBUSY) fails at start, not
 * silently. A packet that arrives meanwhile (a rule added too early) is
 * handled as any other. Returns 0 or -errno.
 */
static int nq_config_send(struct nq *q, struct nlmsghdr *nlh)
{
	static uint32_t nl_seq;
	uint32_t seq = ++nl_seq;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (int i = 0; i < 10000; i++) { /* bounded: packets before the ack */
		ssize_t n = mnl_socket_recvfrom(q->nl, q->buf, NL_BUF_BYTES);
		int ret;

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(q->buf, (size_t)n, seq, q->portid, nq_packet, q);
		if (ret < 0)
			return -errno;
		if (ret == MNL_CB_STOP) /* the ack */
			return 0;
	}
	return -ETIMEDOUT;
}

static void nq_verdict(struct nq *q, uint32_t id)
{
	_Alignas(8) char buf[256]; /* header, nfgenmsg, one verdict attribute */
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, q->cfg.queue);

	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		q->st.verdict_errors++;
	else
		q->st.accepted++;
}

/* The copy: the packet's IPv4 bytes again, marked so the rule lets it pass. */
static void nq_send_copy(struct nq *q, const unsigned char *pkt, size_t len)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };

	if (len < 20 || (pkt[0] >> 4) != 4) {
		q->st.dup_failed++;
		return;
	}
	memcpy(&dst.sin_addr, pkt + 16, 4);
	if (sendto(q->raw_fd, pkt, len, 0, (struct sockaddr *)&dst, sizeof(dst)) != (ssize_t)len)
		q->st.dup_failed++;
	else
		q->st.duplicated++;
}

/* Accepts every held packet due by now_ns (all of them with UINT64_MAX). */
static void nq_release(struct nq *q, uint64_t now_ns)
{
	while (q->nheap > 0 && q->slots[q->heap[0]].due_ns <= now_ns) {
		uint32_t s = nq_heap_pop(q);
		struct nq_held *h = &q->slots[s];

		nq_verdict(q, h->id);
		q->st.delayed++;
		if (h->copy_len > 0)
			nq_send_copy(q, h->pkt, h->copy_len);
		q->free_slots[q->nfree++] = s;
	}
}

/* One queued packet: decide its fate, accept it now or hold it. */
static int nq_packet(const struct nlmsghdr *nlh, void *data)
{
	struct nq *q = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	const unsigned char *pkt = NULL;
	uint32_t id, plen = 0;
	uint64_t delay_ns = q->cfg.delay_ns;
	bool copy;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return MNL_CB_OK; /* not a packet (an ack, an error): nothing to answer */
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	if (attr[NFQA_PAYLOAD] != NULL) {
		pkt = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	q->st.queued++;

	if (q->cfg.jitter_ns > 0) {
		uint64_t span = 2 * q->cfg.jitter_ns + 1;
		uint64_t off = nq_rand(q) % span; /* delay - jitter .. delay + jitter */

		delay_ns += off;
		delay_ns = delay_ns > q->cfg.jitter_ns ? delay_ns - q->cfg.jitter_ns : 0;
	}
	if (nq_roll(q, q->cfg.reorder_ppm)) {
		delay_ns += q->cfg.reorder_ns;
		q->st.reordered++;
	}
	copy = nq_roll(q, q->cfg.duplicate_ppm);

	if (delay_ns == 0 || q->nfree == 0) {
		if (delay_ns != 0)
			q->st.overflow++;
		nq_verdict(q, id);
		if (copy)
			nq_send_copy(q, pkt, plen);
		return MNL_CB_OK;
	}

	uint32_t s = q->free_slots[--q->nfree];
	struct nq_held *h = &q->slots[s];

	h->due_ns = mono_ns() + delay_ns;
	h->seq = q->seq++;
	h->id = id;
	h->copy_len = 0;
	if (copy) {
		if (pkt != NULL && plen <= SLOT_BYTES) {
			memcpy(h->pkt, pkt, plen);
			h->copy_len = (uint16_t)plen;
		} else {
			q->st.dup_failed++;
		}
	}
	nq_heap_push(q, s);
	if (q->nheap > q->st.held_peak)
		q->st.held_peak = q->nheap;
	return MNL_CB_OK;
}

/*
 * An error answer: to a verdict (no ack is asked for one, so an answer is a
 * verdict the kernel refused). Counted; it must not stop the reading, or the
 * packets read with it would wait for a verdict until the socket closes.
 */
static int nq_error(const struct nlmsghdr *nlh, void *data)
{
	struct nq *q = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (e->error != 0)
		q->st.verdict_errors++;
	return MNL_CB_OK;
}

/*
 * Reads what the socket holds, up to RECV_BATCH messages, without blocking.
 * Returns 0, or -errno on an error that ends the program.
 */
static int nq_read(struct nq *q)
{
	/* Not const: libmnl's prototype takes a plain pointer. */
	static mnl_cb_t nq_ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = nq_error };

	for (int i = 0; i < RECV_BATCH; i++) {
		ssize_t n = recv(mnl_socket_get_fd(q->nl), q->buf, NL_BUF_BYTES, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			if (errno == ENOBUFS) {
				/* the kernel failed open for what it could not send us */
				q->st.recv_errors++;
				continue;
			}
			return -errno;
		}
		if (mnl_cb_run2(q->buf, (size_t)n, 0, q->portid, nq_packet, q, nq_ctl,
		                MNL_ARRAY_SIZE(nq_ctl)) < 0) {
			q->st.recv_errors++;
			continue;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ set-up */

static int nq_open(struct nq *q)
{
	struct nlmsghdr *nlh;
	int one = 1, rcvbuf = RCVBUF_BYTES, err;
	uint32_t mode = q->cfg.duplicate_ppm ? NFQNL_COPY_PACKET : NFQNL_COPY_META;

	q->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (q->nl == NULL)
		return -errno;
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	q->portid = mnl_socket_get_portid(q->nl);
	/* Room for bursts; root may exceed rmem_max (SO_RCVBUFFORCE), else take what we get. */
	if (setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
	               sizeof(rcvbuf)) < 0)
		(void)setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		                 sizeof(rcvbuf));
	(void)mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));

	nlh = nfq_nlmsg_put(q->buf, NFQNL_MSG_CONFIG, q->cfg.queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	err = nq_config_send(q, nlh);
	if (err < 0) {
		fprintf(stderr, "nfq_netem: bind queue %u: %s\n", q->cfg.queue, strerror(-err));
		return err;
	}
	nlh = nfq_nlmsg_put(q->buf, NFQNL_MSG_CONFIG, q->cfg.queue);
	nfq_nlmsg_cfg_put_params(nlh, (uint8_t)mode, 0xffff);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, q->cfg.held_max + QUEUE_SLACK);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
	err = nq_config_send(q, nlh);
	if (err < 0) {
		fprintf(stderr, "nfq_netem: configure queue %u: %s\n", q->cfg.queue,
		        strerror(-err));
		return err;
	}

	if (q->cfg.duplicate_ppm) {
		q->raw_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (q->raw_fd < 0)
			return -errno;
		if (setsockopt(q->raw_fd, SOL_SOCKET, SO_MARK, &q->cfg.mark, sizeof(q->cfg.mark)) <
		    0)
			return -errno;
	}
	return 0;
}

static void nq_unbind(struct nq *q)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put(q->buf, NFQNL_MSG_CONFIG, q->cfg.queue);

	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
	(void)mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len);
}

static void nq_print_stats(const struct nq *q)
{
	printf("nfq_netem:");
#define NQ_PRINT(name) printf(" " #name "=%" PRIu64, q->st.name);
	NQ_STATS(NQ_PRINT)
#undef NQ_PRINT
	printf(" held_peak=%" PRIu64 "\n", q->st.held_peak);
	fflush(stdout);
}

/* A non-negative number, at most max: milliseconds, a count, a percentage. */
static int parse_num(const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nfq_netem --queue N [--delay MS] [--jitter MS] [--reorder PCT "
	           "--reorder-ms MS]\n"
	           "                 [--duplicate PCT] [--mark M] [--held-max N] [--seed S]\n"
	           "Holds and copies the packets of NFQUEUE queue N (docs/chaos.md). Rule:\n"
	           "  iptables -A OUTPUT -o IF -m mark ! --mark M -j NFQUEUE --queue-num N "
	           "--queue-bypass\n");
}

static int parse_args(int argc, char **argv, struct nq_config *c)
{
	static const struct option opts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "delay", required_argument, NULL, 'd' },
		{ "jitter", required_argument, NULL, 'j' },
		{ "reorder", required_argument, NULL, 'r' },
		{ "reorder-ms", required_argument, NULL, 'R' },
		{ "duplicate", required_argument, NULL, 'D' },
		{ "mark", required_argument, NULL, 'm' },
		{ "held-max", required_argument, NULL, 'H' },
		{ "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool have_queue = false;
	int o;

	*c = (struct nq_config){ .mark = MARK_DEFAULT, .held_max = 4096, .seed = 1 };
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		double v, max;
		char *end;

		if (o == 'h') {
			usage(stdout);
			exit(0);
		}
		if (o == 'm' || o == 's') {
			unsigned long long u;

			errno = 0;
			u = strtoull(optarg, &end, 0);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    (o == 'm' && (u == 0 || u > UINT32_MAX)))
				goto bad;
			if (o == 'm')
				c->mark = (uint32_t)u;
			else
				c->seed = u;
			continue;
		}
		if (o == '?' || optarg == NULL)
			goto bad;
		max = o == 'q' ? 65535 : 600000; /* a queue number, else ms, a count or a % */
		if (o == 'H')
			max = HELD_MAX_LIMIT;
		if (parse_num(optarg, max, &v) < 0)
			goto bad;
		switch (o) {
		case 'q':
			c->queue = (uint16_t)v;
			have_queue = true;
			break;
		case 'd':
			c->delay_ns = (uint64_t)(v * NS_PER_MS);
			break;
		case 'j':
			c->jitter_ns = (uint64_t)(v * NS_PER_MS);
			break;
		case 'r':
		case 'D':
			if (v > 100)
				goto bad;
			*(o == 'r' ? &c->reorder_ppm : &c->duplicate_ppm) = (uint32_t)(v * 10000);
			break;
		case 'R':
			c->reorder_ns = (uint64_t)(v * NS_PER_MS);
			break;
		case 'H':
			if (v < 1)
				goto bad;
			c->held_max = (uint32_t)v;
			break;
		}
	}
	if (!have_queue || optind != argc)
		goto bad;
	return 0;
bad:
	usage(stderr);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct nq q = { .raw_fd = -1 };
	sigset_t sigs;
	int sfd = -1, err, rc = 1;

	if (parse_args(argc, argv, &q.cfg) < 0)
		return 2;
	q.rng = q.cfg.seed;
	q.slots = calloc(q.cfg.held_max, sizeof(*q.slots));
	q.heap = calloc(q.cfg.held_max, sizeof(*q.heap));
	q.free_slots = calloc(q.cfg.held_max, sizeof(*q.free_slots));
	/* The bytes of copies only when there are copies to make. */
	q.arena = calloc(q.cfg.duplicate_ppm ? q.cfg.held_max : 1, SLOT_BYTES);
	q.buf = malloc(NL_BUF_BYTES);
	if (!q.slots || !q.heap || !q.free_slots || !q.arena || !q.buf) {
		fprintf(stderr, "nfq_netem: out of memory\n");
		goto out;
	}
	for (uint32_t i = 0; i < q.cfg.held_max; i++) {
		q.slots[i].pkt = q.arena + (q.cfg.duplicate_ppm ? (size_t)i * SLOT_BYTES : 0);
		q.free_slots[q.nfree++] = q.cfg.held_max - 1 - i;
	}

	/* Signals come through a descriptor: the loop sees them between two packets. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 ||
	    (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		perror("nfq_netem: signalfd");
		goto out;
	}
	err = nq_open(&q);
	if (err < 0) {
		fprintf(stderr, "nfq_netem: set-up: %s\n", strerror(-err));
		goto out;
	}
	printf("nfq_netem: ready queue=%u\n", q.cfg.queue);
	fflush(stdout);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = mnl_socket_get_fd(q.nl), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		struct timespec ts, *tsp = NULL;
		uint64_t t = mono_ns();

		nq_release(&q, t);
		if (q.nheap > 0) {
			uint64_t wait_ns = q.slots[q.heap[0]].due_ns - t;

			ts.tv_sec = (time_t)(wait_ns / 1000000000ull);
			ts.tv_nsec = (long)(wait_ns % 1000000000ull);
			tsp = &ts;
		}
		if (ppoll(pfd, 2, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			perror("nfq_netem: ppoll");
			break;
		}
		if (pfd[1].revents & POLLIN)
			break;
		if (pfd[0].revents & (POLLIN | POLLERR)) {
			err = nq_read(&q);
			if (err < 0) {
				fprintf(stderr, "nfq_netem: netlink: %s\n", strerror(-err));
				break;
			}
		}
	}

	/* Stop: what is held goes now, then whatever the socket still has (nothing
	 * held any more: every packet read from here on is accepted at once). */
	q.st.accepted_at_exit = q.nheap;
	nq_release(&q, UINT64_MAX);
	q.cfg.delay_ns = q.cfg.jitter_ns = 0;
	q.cfg.reorder_ppm = 0;
	(void)nq_read(&q);
	nq_unbind(&q);
	nq_print_stats(&q);
	rc = 0;
out:
	if (q.nl != NULL)
		mnl_socket_close(q.nl);
	if (q.raw_fd >= 0)
		close(q.raw_fd);
	if (sfd >= 0)
		close(sfd);
	free(q.slots);
	free(q.heap);
	free(q.free_slots);
	free(q.arena);
	free(q.buf);
	return rc;
}
