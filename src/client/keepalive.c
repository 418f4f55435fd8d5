/*
 * keepalive.c - automatic heartbeats (distro_keepalive_start).
 *
 * A thread of its own, with a connection of its own (the caller's
 * credentials copied), beats a private copy of the caller's instances
 * every interval until distro_keepalive_stop. The caller's connection is
 * never touched from this thread; the two share only struct keepalive,
 * under its lock (stop flag and counters).
 */
#include "client/client_internal.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct keepalive {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	uint32_t interval_ms;
	struct distro_client *conn;
	struct distro_instance *in;
	uint32_t n;
	char *strings; /* one arena for every copied string */
	struct distro_kv *kvs;
	uint64_t beats, failures;
};

static void *keepalive_main(void *arg)
{
	struct keepalive *k = arg;

	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		pthread_mutex_unlock(&k->lock);
		for (uint32_t off = 0; off < k->n; off += KEEPALIVE_BATCH) {
			uint32_t m = k->n - off < KEEPALIVE_BATCH ? k->n - off : KEEPALIVE_BATCH;

			if (distro_heartbeat(k->conn, k->in + off, m, NULL) < 0)
				k->failures++; /* the next round reconnects */
			else
				k->beats += m;
		}
		pthread_mutex_lock(&k->lock);
		/*
		 * k->cond waits on CLOCK_MONOTONIC (clock_mono_ns's clock), so a
		 * step of the wall clock neither stalls nor hurries the beats.
		 */
		uint64_t due_ns = clock_mono_ns() + (uint64_t)k->interval_ms * 1000000u;
		struct timespec ts = { (time_t)(due_ns / 1000000000u),
			               (long)(due_ns % 1000000000u) };

		while (!k->stop && pthread_cond_timedwait(&k->cond, &k->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *scopy(char **at, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = *at;
	strcpy(d, s);
	*at += strlen(s) + 1;
	return d;
}

int distro_keepalive_start(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                           uint32_t interval_ms)
{
	struct keepalive *k;
	size_t bytes = 0, kvn = 0;
	pthread_condattr_t ca;
	char addr[300], *at;
	int rc;

	if (c->ka || n == 0)
		return -DISTRO_EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		bytes += slen(in[i].ns) + slen(in[i].group) + slen(in[i].service) +
		         slen(in[i].cluster) + slen(in[i].ip);
		for (uint32_t j = 0; j < in[i].meta_n; j++)
			bytes += slen(in[i].meta[j].key) + slen(in[i].meta[j].val);
		kvn += in[i].meta_n;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -DISTRO_ENOMEM;
	k->in = calloc(n, sizeof(k->in[0]));
	k->strings = malloc(bytes + 1);
	k->kvs = calloc(kvn + 1, sizeof(k->kvs[0]));
	if (!k->in || !k->strings || !k->kvs) {
		rc = -DISTRO_ENOMEM;
		goto err;
	}
	at = k->strings;
	kvn = 0;
	for (uint32_t i = 0; i < n; i++) {
		k->in[i] = in[i];
		k->in[i].ns = scopy(&at, in[i].ns);
		k->in[i].group = scopy(&at, in[i].group);
		k->in[i].service = scopy(&at, in[i].service);
		k->in[i].cluster = scopy(&at, in[i].cluster);
		k->in[i].ip = scopy(&at, in[i].ip);
		k->in[i].meta = k->kvs + kvn;
		for (uint32_t j = 0; j < in[i].meta_n; j++, kvn++) {
			k->kvs[kvn].key = scopy(&at, in[i].meta[j].key);
			k->kvs[kvn].val = scopy(&at, in[i].meta[j].val);
		}
	}
	k->n = n;
	k->interval_ms = interval_ms ? interval_ms : 5000;
	snprintf(addr, sizeof(addr), strchr(c->host, ':') ? "[%s]:%s" : "%s:%s", c->host, c->port);
	if ((rc = distro_connect(addr, c->timeout_ms, &k->conn)) < 0)
		goto err;
	if ((rc = client_creds_copy(k->conn, c)) < 0) {
		distro_close(k->conn);
		goto err;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, keepalive_main, k) != 0) {
		rc = -DISTRO_ENOMEM;
		distro_close(k->conn);
		goto err;
	}
	c->ka = k;
	return 0;
err:
	free(k->in);
	free(k->strings);
	free(k->kvs);
	free(k);
	return rc;
}

void distro_keepalive_stop(struct distro_client *c)
{
	struct keepalive *k = c->ka;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	distro_close(k->conn);
	free(k->in);
	free(k->strings);
	free(k->kvs);
	free(k);
	c->ka = NULL;
}
