/*
 * udp_ack.c - the decoder of the datagrams Nacos clients send back to a
 * UDP push (udp_ack_decode, contract in udp.h): outside bytes, so it is
 * fuzzed (tests/fuzz/fuzz_nacos_udp.c) and total on any input.
 *
 * It reads with the project's strict JSON reader (nacos/json.h): the
 * datagram must be one JSON object; "type" a string, one of push-ack,
 * dump-ack, unknown-ack; "lastRefTime" a non-negative integer given as a
 * number (npm) or a string of digits (Java 1.x quotes it). A repeated
 * "type" or "lastRefTime" is refused, not resolved, since an ack that says
 * two things matches neither. Other keys are ignored. No allocation:
 * ACK_TOKENS tokens on the stack.
 */
#include "nacos/udp.h"

#include "core/err.h"
#include "nacos/json.h"

#include <stdint.h>
#include <string.h>

#define ACK_TOKENS 64 /* tokens of one ack: a few keys, and room for ignored ones */

/*
 * A ref: 1-19 digits as a JSON number or string. 19 digits fit in 64 bits
 * and parse, though no ref we send is that large (they just match nothing).
 */
static int ref_of(const struct json_doc *d, int tok, uint64_t *out)
{
	char text[24];
	int n = d->t[tok].type == JSMN_PRIMITIVE || d->t[tok].type == JSMN_STRING
	                ? json_str(d, tok, text, sizeof(text))
	                : -ERR_INVAL;
	uint64_t v = 0;

	if (n < 1 || n > 19)
		return -ERR_INVAL;
	for (int i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -ERR_INVAL;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	*out = v;
	return 0;
}

int udp_ack_decode(const void *bytes, size_t len, struct udp_ack *out)
{
	jsmntok_t toks[ACK_TOKENS];
	struct json_doc d;
	int type = -1, ref = -1;

	memset(out, 0, sizeof(*out));
	if (json_parse(&d, bytes, len, toks, ACK_TOKENS) < 0 || d.t[0].type != JSMN_OBJECT)
		return -ERR_INVAL;
	for (int k = 0, i = 1; k < d.t[0].size; k++, i = json_next(&d, i + 1)) {
		if (json_key_eq(&d, i, "type", 4)) {
			if (type >= 0)
				return -ERR_INVAL;
			type = i + 1;
		} else if (json_key_eq(&d, i, "lastRefTime", 11)) {
			if (ref >= 0)
				return -ERR_INVAL;
			ref = i + 1;
		}
	}
	if (type < 0 || d.t[type].type != JSMN_STRING)
		return -ERR_INVAL;
	if (json_key_eq(&d, type, "push-ack", 8))
		out->type = UDP_ACK_PUSH;
	else if (json_key_eq(&d, type, "dump-ack", 8))
		out->type = UDP_ACK_DUMP;
	else if (json_key_eq(&d, type, "unknown-ack", 11))
		out->type = UDP_ACK_UNKNOWN;
	else
		return -ERR_INVAL;
	if (ref >= 0) {
		if (ref_of(&d, ref, &out->ref) < 0)
			return -ERR_INVAL;
		out->has_ref = true;
	}
	if (out->type == UDP_ACK_PUSH && !out->has_ref)
		return -ERR_INVAL;
	return 0;
}
