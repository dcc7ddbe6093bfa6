/*
 * ratelimit: requests per second per client address (token buckets).
 *
 * A fixed table of buckets keyed by address hash: memory stays bounded
 * whatever the number of clients (two addresses sharing a slot share a
 * budget, which only makes the limit stricter for them).
 */
#ifndef RB_HTTP_RATELIMIT_H
#define RB_HTTP_RATELIMIT_H

struct ratelimit;

/* per_s 0 = unlimited (ratelimit_allow always says yes). */
struct ratelimit *ratelimit_new(int per_s);
void ratelimit_free(struct ratelimit *rl);

/* 1 when addr may make one more request now, 0 when over its budget. */
int ratelimit_allow(struct ratelimit *rl, const char *addr, long long now_ms);

#endif
