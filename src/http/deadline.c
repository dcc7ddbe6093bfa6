#include "http/deadline.h"

#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"

struct slot {
	int used, fired;
	int local_port, remote_port;
	long long deadline_ms;
};

struct deadlines {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int stop, n;
	struct slot *slot;
};

int deadline_sock_port(int fd, int peer)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	int rc = peer ? getpeername(fd, (struct sockaddr *)&a, &len)
		      : getsockname(fd, (struct sockaddr *)&a, &len);
	if (rc != 0)
		return -1;
	if (a.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&a)->sin_port);
	if (a.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
	return -1;
}

int deadline_each_socket(int (*fn)(void *ctx, int fd), void *ctx)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	if (!dir)
		return -1;
	while ((e = readdir(dir)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		struct stat st;
		if (*end || end == e->d_name || fd == dirfd(dir) || fstat((int)fd, &st) != 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		if (fn(ctx, (int)fd))
			break;
	}
	closedir(dir);
	return 0;
}

struct port_pair {
	int local, remote;
};

static int cut_if_pair(void *ctx, int fd)
{
	const struct port_pair *pp = ctx;

	if (deadline_sock_port(fd, 0) != pp->local || deadline_sock_port(fd, 1) != pp->remote)
		return 0;
	shutdown(fd, SHUT_RDWR);
	return 1;
}

/* Shuts down the connected socket with this port pair, if any. */
static void cut(int local_port, int remote_port)
{
	struct port_pair pp = { local_port, remote_port };

	(void)deadline_each_socket(cut_if_pair, &pp); /* unreadable: nothing to cut */
}

static void *watch(void *arg)
{
	struct deadlines *d = arg;

	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		long long now = clock_mono_ms();
		for (int i = 0; i < d->n; i++) {
			struct slot *s = &d->slot[i];
			if (s->used && !s->fired && now > s->deadline_ms) {
				s->fired = 1;
				cut(s->local_port, s->remote_port);
			}
		}
		struct timespec ts = clock_deadline(200);
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

struct deadlines *deadlines_start(int slots)
{
	struct deadlines *d = calloc(1, sizeof(*d));

	if (!d || !(d->slot = calloc((size_t)slots, sizeof(*d->slot)))) {
		free(d);
		return NULL;
	}
	d->n = slots;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (pthread_create(&d->thread, NULL, watch, d) != 0) {
		free(d->slot);
		free(d);
		return NULL;
	}
	pthread_setname_np(d->thread, "rb-deadline");
	return d;
}

void deadlines_stop(struct deadlines *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d->slot);
	free(d);
}

int deadline_arm(struct deadlines *d, int local_port, int remote_port, long long deadline_ms)
{
	int found = -1;

	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->n && found < 0; i++) {
		if (!d->slot[i].used) {
			d->slot[i] = (struct slot){ 1, 0, local_port, remote_port, deadline_ms };
			found = i;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return found;
}

int deadline_disarm(struct deadlines *d, int slot)
{
	int fired;

	if (slot < 0)
		return 0;
	pthread_mutex_lock(&d->mu);
	fired = d->slot[slot].fired;
	d->slot[slot].used = 0;
	pthread_mutex_unlock(&d->mu);
	return fired;
}
