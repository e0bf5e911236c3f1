/*
 * The runtime's thread pool and its BLAS entry point. Internal.
 *
 * A context owns one pool of T threads in all: the thread that calls
 * oc_context_run plus T - 1 workers started with the context. Kernels get it
 * as oc_op_call_t.pool (NULL when the compiler folds constants: everything
 * then runs on the calling thread) and split their work with
 * oc_parallel_for. Matrix products go through oc_sgemm, which splits them
 * over the same threads and calls OpenBLAS single-threaded on each part, so
 * OpenBLAS's own threads never compete with the pool's (see parallel.c).
 *
 * Only one thread uses a pool at a time (contexts are thread-compatible). A
 * parallel_for called from inside another one's part (an oc_sgemm inside a
 * parallel kernel) runs serially on the calling thread.
 */
#ifndef ONNXC_PARALLEL_H
#define ONNXC_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "oc_base.h"

typedef struct oc_pool_s oc_pool_t;

/* The number of online cores (at least 1). */
int oc_cpu_count(void);

/* Creates a pool of |threads| threads in all (the caller and threads - 1
 * workers, started now; 1 makes a pool that runs everything inline). If a
 * worker cannot be started the pool keeps the ones that did. */
oc_status_t oc_pool_create(int threads, const oc_allocator_t *allocator, oc_pool_t **out_pool);
/* Stops the workers and frees the pool; NULL is ignored. */
void oc_pool_release(oc_pool_t *pool);
/* Threads in all (1 for NULL). */
int oc_pool_threads(const oc_pool_t *pool);

/* A chunk of a parallel loop: items [begin, end), run by thread |thread| (0
 * is the caller). A thread may run several chunks of one loop. */
typedef void (*oc_parallel_fn)(void *arg, int64_t begin, int64_t end, int thread);

/* Splits [0, n) into contiguous chunks of at least |grain| items (the last
 * may be shorter), up to 4 per thread, and runs |fn| on each; the threads
 * (the caller among them) take chunks in turn until none is left, so a
 * thread slowed down by another process takes fewer. Returns when every
 * chunk is done. One chunk (n < 2 * grain, a one-thread pool, a call from
 * inside a chunk): |fn| runs on the caller over [0, n). */
void oc_parallel_for(oc_pool_t *pool, int64_t n, int64_t grain, oc_parallel_fn fn, void *arg);
/* oc_parallel_for with up to |per_thread| chunks per thread. */
void oc_parallel_for_chunks(oc_pool_t *pool, int64_t n, int64_t grain, int per_thread,
                            oc_parallel_fn fn, void *arg);

/* The smallest part worth a thread (waking one costs microseconds): about
 * 2^17 elementary operations (an element read and written, or 16 multiply-
 * adds). oc_grain(cost) is the matching grain for items of |cost| such
 * operations each. */
#define OC_PARALLEL_MIN_WORK ((int64_t)1 << 17)
static inline int64_t oc_grain(int64_t cost_per_item) {
  if (cost_per_item < 1) cost_per_item = 1;
  return (OC_PARALLEL_MIN_WORK + cost_per_item - 1) / cost_per_item;
}

/* 1 when oc_parallel_for(pool, n, grain, ...) would run on the caller alone,
 * else the number of threads it would use. oc_part_begin: the start of part
 * |i| of |parts| equal parts of [0, n). */
int oc_parallel_parts(const oc_pool_t *pool, int64_t n, int64_t grain);
static inline int64_t oc_part_begin(int64_t n, int parts, int i) {
  return (int64_t)((__int128)n * i / parts);
}

/* Row-major C = alpha * op(A) @ op(B) + beta * C, as cblas_sgemm
 * (CblasRowMajor; trans_a / trans_b nonzero for the transpose), split over
 * the pool's threads by rows of C or by columns, whichever gives each part
 * more work. Dimensions must fit in int (kernels check). */
void oc_sgemm(oc_pool_t *pool, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
              float *c, int64_t ldc);

#endif
