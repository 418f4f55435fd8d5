#include "cluster/resolve.h"

#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

static bool lookup(const struct member *mb, int flags, struct sockaddr_storage *addr,
                   socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | flags };
	struct addrinfo *ai = NULL;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", mb->port);
	rc = getaddrinfo(mb->host, port, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		if (!(flags & AI_NUMERICHOST))
			log_warn("peer %s: %s", mb->addr, gai_strerror(rc));
		return false;
	}
	memcpy(addr, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return true;
}

static void *resolver_main(void *arg)
{
	struct resolver *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		uint16_t id = 0;

		for (uint16_t i = 1; i <= r->conf.n && id == 0; i++)
			if (r->e[i].state == R_WANT)
				id = i;
		if (r->stop)
			break;
		if (id == 0) {
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		pthread_mutex_unlock(&r->mu);
		struct sockaddr_storage addr;
		socklen_t len = 0;
		bool ok = lookup(&r->conf.m[id - 1], 0, &addr, &len);

		pthread_mutex_lock(&r->mu);
		if (ok) {
			r->e[id].addr = addr;
			r->e[id].len = len;
		}
		r->e[id].state = ok ? R_OK : R_FAILED;
	}
	bool retired = r->retired;

	pthread_mutex_unlock(&r->mu);
	if (retired) { /* nobody holds r any more (resolver_retire) */
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		mem_free(r);
	}
	return NULL;
}

int resolver_start(struct resolver *r, const struct members *conf)
{
	bool names = false;

	memset(r, 0, sizeof(*r));
	r->conf = *conf;
	for (uint32_t i = 0; i < conf->n; i++) {
		struct resolve_entry *e = &r->e[conf->m[i].id];

		e->numeric = lookup(&conf->m[i], AI_NUMERICHOST, &e->addr, &e->len);
		names |= !e->numeric;
	}
	if (!names)
		return 0;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		return -EAGAIN;
	}
	r->running = true;
	return 0;
}

int resolver_get(struct resolver *r, uint16_t id, struct sockaddr_storage *addr, socklen_t *len)
{
	struct resolve_entry *e = &r->e[id];
	int rc = 0;

	if (e->numeric) {
		*addr = e->addr;
		*len = e->len;
		return 1;
	}
	if (!r->running)
		return -1;
	pthread_mutex_lock(&r->mu);
	switch (e->state) {
	case R_IDLE:
		e->state = R_WANT;
		pthread_cond_signal(&r->cv);
		break;
	case R_WANT:
		break;
	case R_OK:
		*addr = e->addr;
		*len = e->len;
		e->state = R_IDLE;
		rc = 1;
		break;
	case R_FAILED:
		e->state = R_IDLE;
		rc = -1;
		break;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void resolver_stop(struct resolver *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	r->running = false;
}

void resolver_retire(struct resolver *r)
{
	if (!r->running) {
		mem_free(r);
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	r->retired = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_detach(r->thread);
}
