/*
 * libFuzzer target for the admin port's request glue (http/request.h over
 * http-parser): the input is a byte stream on one connection, cut into
 * reads at points chosen by its first byte, handled exactly as the admin
 * loop does (feed; on a complete request, answer and re-initialise if the
 * connection stays open, else stop). Checks the glue's promises: it never
 * takes more than it was given, never more than REQUEST_HEAD_MAX bytes of
 * one request, decides every head by that bound, and a complete request
 * has a status or a route within range.
 */
#include "http/request.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request r;
	size_t chunk, head = 0;
	unsigned seed;

	if (size == 0)
		return 0;
	seed = data[0];
	data++, size--;
	request_init(&r);
	while (size > 0) {
		size_t used;
		int rc;

		/* Read sizes 1..64 from the seed byte, rotating so they vary. */
		chunk = 1 + (seed & 63);
		seed = (seed * 37 + 11) & 0xff;
		if (chunk > size)
			chunk = size;
		rc = request_feed(&r, (const char *)data, chunk, &used);
		if (used > chunk)
			abort();
		head += used;
		if (head > REQUEST_HEAD_MAX)
			abort();
		if (rc == REQUEST_AGAIN) {
			if (used != chunk)
				abort();
		} else {
			if (rc != REQUEST_DONE || !r.done)
				abort();
			if (r.status != 0 && r.status != 400 && r.status != 405 &&
			    r.status != 413 && r.status != 414 && r.status != 431)
				abort();
			if (r.route > REQUEST_ROUTE_LAST)
				abort();
			if (!r.keep_alive)
				return 0; /* the connection closes; the rest is never read */
			request_init(&r);
			head = 0;
		}
		data += used;
		size -= used;
	}
	return 0;
}
