/*
 * libFuzzer target for a peer link's TLS in its first state: arbitrary
 * bytes fed to a fresh server-side link (cluster/ptls.h), in pieces as
 * the socket would bring them, up to the 16 KiB link.c accepts before the
 * handshake is done. OpenSSL parses the records; what is ours is the BIO
 * pair plumbing and the error paths: nothing may crash, leak or loop, and
 * without the key no input may finish the handshake.
 *
 * One link serves every input: made once, then reset after each input
 * (ptls_link_reset: a new SSL on the same BIO pair, emptied; its unit test
 * shows a reset link does what a new one does, result for result). A new
 * pair per input was 384 KiB that ASan maps and unmaps for every input -
 * most of the run's time, in the kernel. The reset comes at the end of an
 * input, so that the SSL an input made is freed within it: libFuzzer's
 * leak check still sees every input's allocations balance.
 */
#include "cluster/ptls.h"

#include <stdlib.h>
#include <string.h>

static struct ptls tls;
static struct ptls_link l; /* the server side, as new at the start of each input */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t secret[] = "a fuzzing cluster secret";

	(void)argc, (void)argv;
	if (ptls_init(&tls, secret, sizeof(secret) - 1) < 0 || ptls_link_new(&tls, &l, false) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t plain[65536];
	char why[160];
	size_t off = 0;

	if (size > PTLS_HANDSHAKE_BYTES_MAX)
		size = PTLS_HANDSHAKE_BYTES_MAX;
	while (off < size) {
		uint8_t *dst, *out;
		size_t room = ptls_in_space(&l, &dst), n = size - off;
		int rc;

		/* Pieces: the first byte of each says how long (as reads split a stream). */
		if (n > 1 + (size_t)data[off] * 8)
			n = 1 + (size_t)data[off] * 8;
		if (n > room)
			n = room;
		if (n == 0)
			break;
		memcpy(dst, data + off, n);
		ptls_in_commit(&l, n);
		off += n;
		rc = ptls_handshake(&l, why, sizeof(why));
		while ((n = ptls_out_pending(&l, &out)) > 0)
			ptls_out_consume(&l, n); /* our answers go nowhere */
		if (rc == PTLS_DONE)
			abort(); /* the handshake finished without anyone holding the key */
		if (rc < 0)
			break;
		if (ptls_read(&l, plain, sizeof(plain), why, sizeof(why)) > 0)
			abort(); /* no plaintext before the handshake */
	}
	if (ptls_link_reset(&tls, &l, false) < 0)
		abort(); /* out of memory: nothing to fuzz with */
	return 0;
}
