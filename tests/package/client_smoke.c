/*
 * client_smoke.c - a program built against the installed
 * libdistro-client-dev, the way a user builds one (pkg-config distro), run
 * against a running distrod: registers one instance and lists it back.
 * tests/package/run.sh links it twice, with the shared library and with
 * the static archive alone, and checks each run.
 *
 *   client_smoke HOST:PORT SERVICE    exit 0 when the instance came back
 */
#include <distro/client.h>

#include <stdio.h>
#include <string.h>

static void on_entry(void *ctx, const struct distro_entry *e)
{
	int *found = ctx;

	if (strcmp(e->ip, "192.0.2.30") == 0 && e->port == 7000)
		(*found)++;
}

int main(int argc, char **argv)
{
	struct distro_client *c;
	struct distro_instance in;
	int rc, result, found = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: client_smoke HOST:PORT SERVICE\n");
		return 2;
	}
	rc = distro_connect(argv[1], 5000, &c);
	if (rc < 0) {
		fprintf(stderr, "client_smoke: connect %s: %s\n", argv[1], distro_strerror(rc));
		return 1;
	}
	distro_instance_init(&in);
	in.service = argv[2];
	in.ip = "192.0.2.30"; /* a documentation address: never probed */
	in.port = 7000;
	rc = distro_register(c, &in, 1, &result);
	if (rc < 0 || result < 0) {
		fprintf(stderr, "client_smoke: register: %s\n",
		        distro_strerror(rc < 0 ? rc : result));
		distro_close(c);
		return 1;
	}
	rc = distro_list(c, NULL, NULL, argv[2], NULL, on_entry, &found, NULL);
	distro_close(c);
	if (rc < 0 || found != 1) {
		fprintf(stderr, "client_smoke: list: %s, found %d\n",
		        rc < 0 ? distro_strerror(rc) : "ok", found);
		return 1;
	}
	printf("client_smoke: registered and listed %s 192.0.2.30:7000\n", argv[2]);
	return 0;
}
