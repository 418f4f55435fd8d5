/*
 * pwire.c - peer frame headers and body checks.
 */
#include "cluster/pwire.h"

#include "cluster/records.h"
#include "core/err.h"

#include <endian.h>
#include <string.h>

void pwire_header_put(uint8_t *out, uint8_t op, uint32_t body_len, uint32_t id, uint16_t status,
                      uint16_t count)
{
	proto_header_put(out, op, body_len, id, status, count);
	out[0] = PWIRE_MAGIC0;
	out[1] = PWIRE_MAGIC1;
	out[2] = PWIRE_VERSION;
}

long pwire_frame_check(const uint8_t *buf, size_t len, struct proto_header *h)
{
	if (len < PROTO_HEADER_BYTES)
		return len >= 2 && (buf[0] != PWIRE_MAGIC0 || buf[1] != PWIRE_MAGIC1)
		               ? -ERR_PROTO_MAGIC
		               : 0;
	if (buf[0] != PWIRE_MAGIC0 || buf[1] != PWIRE_MAGIC1)
		return -ERR_PROTO_MAGIC;
	if (buf[2] != PWIRE_VERSION)
		return -ERR_PROTO_VERSION;
	h->magic[0] = buf[0];
	h->magic[1] = buf[1];
	h->version = buf[2];
	h->op = buf[3];
	memcpy(&h->body_len, buf + 4, 4);
	memcpy(&h->request_id, buf + 8, 4);
	memcpy(&h->status, buf + 12, 2);
	memcpy(&h->count, buf + 14, 2);
	h->body_len = le32toh(h->body_len);
	h->request_id = le32toh(h->request_id);
	h->status = le16toh(h->status);
	h->count = le16toh(h->count);
	if (h->body_len > PWIRE_FRAME_MAX)
		return -ERR_PROTO_TOO_BIG;
	if (len < PROTO_HEADER_BYTES + (size_t)h->body_len)
		return 0;
	return (long)(PROTO_HEADER_BYTES + h->body_len);
}

static int u16_list(const uint8_t *body, uint32_t len, uint32_t max, uint32_t below)
{
	struct proto_rd r;
	uint16_t n;

	proto_rd_init(&r, body, len);
	n = proto_rd_u16(&r);
	if (n > max)
		return -ERR_PROTO_COUNT;
	for (uint16_t i = 0; i < n && !r.err; i++)
		if (proto_rd_u16(&r) >= below)
			return -ERR_INVAL;
	return proto_rd_done(&r);
}

int pwire_check(const struct proto_header *h, const uint8_t *body)
{
	struct proto_rd r;

	proto_rd_init(&r, body, h->body_len);
	switch (h->op) {
	case P_HELLO:
		return h->body_len == 8 + 32 ? 0 : -ERR_PROTO_TRUNCATED;
	case P_AUTH:
		return h->body_len == 32 ? 0 : -ERR_PROTO_TRUNCATED;
	case P_PING: /* 9 bytes before the `sees` map was added */
		return h->body_len == 9 || h->body_len == PWIRE_PING_BYTES ? 0
		                                                           : -ERR_PROTO_TRUNCATED;
	case P_FWD: {
		struct proto_header ch = *h;

		if (h->status > UINT8_MAX || !proto_op_write((uint8_t)h->status))
			return -ERR_PROTO_OP;
		ch.op = (uint8_t)h->status;
		return proto_body_check(&ch, body, PWIRE_FWD_MAX);
	}
	case P_FWD_ACK:
		return h->body_len == 2u * h->count ? 0 : -ERR_PROTO_TRUNCATED;
	case P_SYNC:
		return record_batch_check(body, h->body_len, h->count);
	case P_DIGEST:
		return h->body_len == 8u * PWIRE_RANGES ? 0 : -ERR_PROTO_TRUNCATED;
	case P_SUMS_REQ:
		return u16_list(body, h->body_len, PWIRE_RANGES, PWIRE_RANGES);
	case P_SUMS: {
		uint16_t n = proto_rd_u16(&r);

		if (n > STORE_SLOTS)
			return -ERR_PROTO_COUNT;
		for (uint32_t i = 0; i < n && !r.err; i++) {
			if (proto_rd_u16(&r) >= STORE_SLOTS)
				return -ERR_INVAL;
			(void)proto_rd_u64(&r);
			(void)proto_rd_u32(&r);
		}
		return proto_rd_done(&r);
	}
	case P_PULL:
		return u16_list(body, h->body_len, PWIRE_PULL_MAX, STORE_SLOTS);
	case P_CHUNK:
		if (h->body_len < 10)
			return -ERR_PROTO_TRUNCATED;
		if (proto_rd_u16(&r) >= STORE_SLOTS)
			return -ERR_INVAL;
		return record_batch_check(body + 10, h->body_len - 10, h->count);
	case P_PULL_DONE:
		return h->body_len == 0 ? 0 : -ERR_PROTO_TRAILING;
	}
	return -ERR_PROTO_OP;
}
