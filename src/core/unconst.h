/*
 * unconst: RB_UNCONST(p) drops const where a C interface takes char * but
 * does not write through it (posix_spawn's argv, a record whose strings are
 * sometimes owned and sometimes borrowed), without the cast -Wcast-qual
 * reports (curl's CURL_UNCONST).  Use it only there, never to write.
 */
#ifndef RB_CORE_UNCONST_H
#define RB_CORE_UNCONST_H

#include <stdint.h>

#define RB_UNCONST(p) ((void *)(uintptr_t)(const void *)(p))

#endif
