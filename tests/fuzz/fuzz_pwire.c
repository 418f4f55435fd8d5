/*
 * libFuzzer target for the peer frame decoder: arbitrary bytes as a stream
 * of peer frames, cut at every frame boundary the header check finds, each
 * body checked for its op. A hostile or broken peer can at worst have its
 * link closed: nothing here may crash, read out of bounds or loop.
 */
#include "cluster/pwire.h"
#include "core/err.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct proto_header h;
		long n = pwire_frame_check(data + off, size - off, &h);

		if (n <= 0)
			break;
		if ((size_t)n < PROTO_HEADER_BYTES || (size_t)n > size - off)
			abort(); /* the check promised a whole frame */
		(void)pwire_check(&h, data + off + PROTO_HEADER_BYTES);
		off += (size_t)n;
	}
	return 0;
}
