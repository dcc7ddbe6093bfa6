/*
 * fake_targets: strict stand-ins for the three APIs runbridge mirrors runs
 * into (Testomat.io reporter, QA Sphere public API, Squish Test Center) and
 * for the one it reads results from (Qase TestOps API v1, kind qase).
 *
 *   fake_targets --kind testomat|qasphere|testcenter|qase --port P --record FILE
 *                [--api-key K] [--token T] [--user U --password W]
 *                [--project CODE]
 *
 * One process serves one API on 127.0.0.1.  Every API request, accepted or
 * rejected, is appended to FILE as one JSON line.  POST /_control injects
 * faults, GET /_state shows what the fake holds; see fake_common.h.
 * SIGTERM or SIGINT stops it (stalled requests wake at once) with status 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "fake_common.h"

extern const struct fake_kind fake_qase; /* fake_qase.c */

static const struct fake_kind *const kinds[] = {
	&fake_testomat,
	&fake_qasphere,
	&fake_testcenter,
	&fake_qase,
};

static void usage(void)
{
	fprintf(stderr, "usage: fake_targets --kind testomat|qasphere|testcenter|qase --port P "
			"--record FILE\n"
			"                    [--api-key K] [--token T] [--user U --password W] "
			"[--project CODE]\n");
}

static int parse_args(int argc, char **argv, struct fake_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		if (strcmp(a, "--kind") == 0)
			dst = &o->kind;
		else if (strcmp(a, "--record") == 0)
			dst = &o->record;
		else if (strcmp(a, "--api-key") == 0)
			dst = &o->api_key;
		else if (strcmp(a, "--token") == 0)
			dst = &o->token;
		else if (strcmp(a, "--user") == 0)
			dst = &o->user;
		else if (strcmp(a, "--password") == 0)
			dst = &o->password;
		else if (strcmp(a, "--project") == 0)
			dst = &o->project;
		else if (strcmp(a, "--port") != 0)
			return -1;
		if (i + 1 >= argc)
			return -1;
		if (dst) {
			*dst = argv[++i];
			continue;
		}
		char *end;
		errno = 0;
		long p = strtol(argv[++i], &end, 10);
		if (errno || *end || p < 1 || p > 65535)
			return -1;
		o->port = (int)p;
	}
	if (!o->kind || !o->port || !o->record)
		return -1;
	if (!o->user != !o->password)
		return -1;
	return 0;
}

/* civetweb 1.15's master thread sees mg_stop only when its poll (2 s)
 * returns; a connection to the listening port wakes it at once. */
struct poker {
	int port;
	atomic_int done;
};

static void *poke(void *arg)
{
	struct poker *p = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!atomic_load(&p->done)) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s >= 0) {
			connect(s, (struct sockaddr *)&a, sizeof(a));
			close(s);
		}
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	}
	return NULL;
}

static void stop_server(struct mg_context *ctx, int port)
{
	struct poker p = { .port = port };
	pthread_t t;
	atomic_init(&p.done, 0);
	int poking = pthread_create(&t, NULL, poke, &p) == 0;
	mg_stop(ctx);
	atomic_store(&p.done, 1);
	if (poking)
		pthread_join(t, NULL);
}

static int init_fake(struct fake *f)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->rec_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->wake, &ca);
	pthread_condattr_destroy(&ca);
	f->stall_seconds = 30.0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i]->name, f->opt.kind) == 0)
			f->kind = kinds[i];
	if (!f->kind) {
		fprintf(stderr, "fake_targets: unknown kind %s\n", f->opt.kind);
		return -1;
	}
	f->record = fopen(f->opt.record, "a");
	if (!f->record) {
		fprintf(stderr, "fake_targets: %s: %s\n", f->opt.record, strerror(errno));
		return -1;
	}
	return f->kind->init(f);
}

static void destroy_fake(struct fake *f)
{
	if (f->kind && f->state)
		f->kind->destroy(f);
	if (f->record)
		fclose(f->record);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->rec_lock);
	pthread_mutex_destroy(&f->lock);
}

int main(int argc, char **argv)
{
	struct fake f;
	memset(&f, 0, sizeof(f));
	if (parse_args(argc, argv, &f.opt) < 0) {
		usage();
		return 2;
	}
	if (init_fake(&f) < 0) {
		destroy_fake(&f);
		return 1;
	}

	/* Block the stop signals in every thread; main waits for them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	char listen[32];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", f.opt.port);
	const char *options[] = {
		"listening_ports",    listen,  "num_threads", "32",
		"enable_keep_alive",  "no",    "tcp_nodelay", "1",
		"request_timeout_ms", "60000", NULL,
	};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.begin_request = fake_begin_request;
	char errtext[256] = "";
	struct mg_init_data init = { .callbacks = &cb,
				     .user_data = &f,
				     .configuration_options = options };
	struct mg_error_data edata = { .text = errtext, .text_buffer_size = sizeof(errtext) };
	mg_init_library(0);
	struct mg_context *ctx = mg_start2(&init, &edata);
	if (!ctx) {
		fprintf(stderr, "fake_targets: cannot listen on %s: %s\n", listen, errtext);
		mg_exit_library();
		destroy_fake(&f);
		return 1;
	}
	fprintf(stderr, "fake_targets: %s listening on %s\n", f.kind->name, listen);

	int sig = 0;
	sigwait(&stop, &sig);
	fake_shutdown(&f);
	stop_server(ctx, f.opt.port);
	mg_exit_library();
	destroy_fake(&f);
	return 0;
}
