/*
 * libFuzzer target for a peer link's TLS in its first state: arbitrary
 * bytes fed to a fresh server-side link (cluster/ptls.h), in pieces as
 * the socket would bring them, up to the 16 KiB link.c accepts before the
 * handshake is done. OpenSSL parses the records; what is ours is the BIO
 * pair plumbing and the error paths: nothing may crash, leak or loop, and
 * without the key no input may finish the handshake.
 */
#include "cluster/ptls.h"

#include <stdlib.h>
#include <string.h>

static struct ptls tls;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t secret[] = "a fuzzing cluster secret";
	static uint8_t plain[65536];
	struct ptls_link l;
	char why[160];
	size_t off = 0;

	if (tls.ctx == NULL && ptls_init(&tls, secret, sizeof(secret) - 1) < 0)
		abort();
	if (size > PTLS_HANDSHAKE_BYTES_MAX)
		size = PTLS_HANDSHAKE_BYTES_MAX;
	if (ptls_link_new(&tls, &l, false) < 0)
		return 0;
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
	ptls_link_free(&l);
	return 0;
}
