/*
 * udp_packet.c - the datagram of a Nacos UDP push (see udp_packet.h).
 */
#include "nacos/udp_packet.h"

#include "core/err.h"
#include "core/mem.h"
#include "nacos/udp.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int udp_packet_init(struct udp_packet *p, int gzip_level)
{
	memset(p, 0, sizeof(*p));
	p->out = mem_alloc(UDP_PACKET_BYTES_MAX);
	if (p->out == NULL)
		return -ERR_NOMEM;
	/* 15 + 16: a gzip wrapper; memLevel 8 and the default strategy, as gzip(1). */
	if (deflateInit2(&p->z, gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ERR_NOMEM;
	p->z_ready = true;
	return 0;
}

void udp_packet_free(struct udp_packet *p)
{
	if (p->z_ready)
		deflateEnd(&p->z);
	p->z_ready = false;
	mem_free(p->out);
	p->out = NULL;
}

/* The two-character escapes of JSON; other bytes below 0x20 become \u00XX. */
static const char esc_short[128] = {
	['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
	['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't',
};

/* Bytes of s[0..n) escaped inside a JSON string. */
static size_t esc_len(const char *s, size_t n)
{
	size_t len = n;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 128 && esc_short[c])
			len += 1;
		else if (c < 0x20)
			len += 5;
	}
	return len;
}

/*
 * Escapes s[0..n) into dst[0..cap) in whole escapes; returns the bytes
 * written and sets *used to the input consumed (cap >= 6 consumes some).
 */
static size_t esc_copy(const char *s, size_t n, size_t *used, char *dst, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 128 && esc_short[c]) {
			if (o + 2 > cap)
				break;
			dst[o++] = '\\';
			dst[o++] = esc_short[c];
		} else if (c < 0x20) {
			if (o + 6 > cap)
				break;
			memcpy(dst + o, "\\u00", 4);
			dst[o + 4] = hex[c >> 4];
			dst[o + 5] = hex[c & 15];
			o += 6;
		} else {
			if (o + 1 > cap)
				break;
			dst[o++] = (char)c;
		}
	}
	*used = i;
	return o;
}

/* Feeds in[0..n) to deflate; false when the datagram's room ran out. */
static bool gz_feed(struct udp_packet *p, const void *in, size_t n, int flush)
{
	p->z.next_in = (Bytef *)(uintptr_t)in;
	p->z.avail_in = (uInt)n;
	if (flush == Z_FINISH)
		return deflate(&p->z, Z_FINISH) == Z_STREAM_END;
	if (n == 0)
		return true;
	/* With output room deflate takes all the input; what it leaves means no room. */
	(void)deflate(&p->z, Z_NO_FLUSH);
	return p->z.avail_in == 0;
}

int udp_packet_encode(struct udp_packet *p, uint64_t ref, const char *data, size_t n, bool *gz)
{
	static const char tail[] = "\"}";
	char head[64];
	size_t head_len, plain, used, k;

	head_len = (size_t)snprintf(head, sizeof(head),
	                            "{\"type\":\"dom\",\"lastRefTime\":%llu,\"data\":\"",
	                            (unsigned long long)ref);
	plain = head_len + esc_len(data, n) + 2;
	*gz = plain >= UDP_GZIP_MIN_BYTES;
	if (!*gz) {
		char *o = (char *)p->out;

		memcpy(o, head, head_len);
		k = esc_copy(data, n, &used, o + head_len, plain - head_len - 2);
		assert(used == n && head_len + k + 2 == plain);
		memcpy(o + plain - 2, tail, 2);
		return (int)plain;
	}
	if (deflateReset(&p->z) != Z_OK)
		return -ERR_PROTO_TOO_BIG;
	p->z.next_out = p->out;
	p->z.avail_out = UDP_PACKET_BYTES_MAX;
	if (!gz_feed(p, head, head_len, Z_NO_FLUSH))
		return -ERR_PROTO_TOO_BIG;
	while (n > 0) {
		k = esc_copy(data, n, &used, p->chunk, sizeof(p->chunk));
		if (!gz_feed(p, p->chunk, k, Z_NO_FLUSH))
			return -ERR_PROTO_TOO_BIG;
		data += used;
		n -= used;
	}
	if (!gz_feed(p, tail, 2, Z_FINISH))
		return -ERR_PROTO_TOO_BIG;
	return (int)(UDP_PACKET_BYTES_MAX - p->z.avail_out);
}
