#include "http/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096

struct bucket {
	unsigned long key;
	double tokens;
	long long last_ms;
};

struct ratelimit {
	int per_s;
	pthread_mutex_t mu;
	struct bucket slot[SLOTS];
};

struct ratelimit *ratelimit_new(int per_s)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	rl->per_s = per_s;
	pthread_mutex_init(&rl->mu, NULL);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

static unsigned long hash(const char *s)
{
	unsigned long h = 1469598103934665603UL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211UL;
	return h | 1; /* 0 marks an empty slot */
}

int ratelimit_allow(struct ratelimit *rl, const char *addr, long long now_ms)
{
	unsigned long h = hash(addr);
	int ok;

	if (!rl || rl->per_s <= 0)
		return 1;
	pthread_mutex_lock(&rl->mu);
	struct bucket *b = &rl->slot[h % SLOTS];
	if (b->key != h) {
		/* a new client, or the slot's owner changed: start full */
		b->key = h;
		b->tokens = rl->per_s;
		b->last_ms = now_ms;
	}
	b->tokens += (double)(now_ms - b->last_ms) * rl->per_s / 1000.0;
	if (b->tokens > rl->per_s)
		b->tokens = rl->per_s;
	b->last_ms = now_ms;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
