/* C interface of the opt-in allocation-counting shim (alloc_shim.cpp).
 *
 * The shim is linked into a program (metrics::agent_shim) or preloaded
 * (libmetrics-agent-preload.so); the agent finds it at run time with
 * dlsym(RTLD_DEFAULT, "metrics_agent_read_alloc_counts"), so the agent
 * library itself never depends on it. */
#ifndef METRICS_AGENT_ALLOC_SHIM_H_
#define METRICS_AGENT_ALLOC_SHIM_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct metrics_agent_alloc_counts {
  uint64_t mallocs;         /* successful allocations, realloc moves included */
  uint64_t frees;           /* blocks released (free of NULL not counted) */
  uint64_t allocated_bytes; /* usable bytes of every allocation, in total */
};

/* Fills *out with a snapshot (each field exact; the three are not read in
 * one atomic step). Returns 1. Async-signal-safe and lock-free. */
int metrics_agent_read_alloc_counts(struct metrics_agent_alloc_counts* out);

typedef int (*metrics_agent_read_alloc_counts_fn)(struct metrics_agent_alloc_counts*);

#ifdef __cplusplus
}
#endif

#endif /* METRICS_AGENT_ALLOC_SHIM_H_ */
