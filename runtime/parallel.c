/*
 * The thread pool (see parallel.h).
 *
 * Workers wait for a new job by spinning on a generation counter for a short
 * while (kernels follow each other closely, and waking a sleeping thread
 * costs more than most of them), then sleep on a condition variable. A job
 * is a range split into chunks that the caller and the workers take in turn
 * (an atomic counter); the caller then spins (yielding) until every worker
 * is done with it.
 *
 * BLAS: the pool's threads also run the matrix products. OpenBLAS's own
 * threads would otherwise spin between its calls on the cores the pool
 * needs for the next kernel (its idle threads busy-wait for a long time
 * before they sleep), so creating a pool sets OpenBLAS to one thread for the
 * process (and stops its idle server threads) and oc_sgemm splits each
 * product over the pool: each thread packs and multiplies its own block of C.
 */
#include "parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* A worker spins this long for the next job before it sleeps (kernels of
 * one run follow each other within microseconds). While spinning it yields
 * the core every SPIN_CHUNK checks, so that spinning costs little when there
 * are more runnable threads than cores (many contexts at once). */
#define WORKER_SPIN_NS 200000
enum { SPIN_CHUNK = 64 };

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

typedef struct worker_s {
  struct oc_pool_s *pool;
  int index; /* 1..threads-1 */
  pthread_t tid;
} worker_t;

struct oc_pool_s {
  oc_allocator_t allocator;
  int threads; /* in all, caller included */
  int n_workers;
  worker_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_uint gen;      /* bumped for each job (and to stop) */
  atomic_int pending;   /* workers still on the current job */
  atomic_llong next;    /* the next chunk of the current job to take */
  atomic_int sleepers;  /* workers waiting on cv */
  atomic_int stop;
  /* The current job: written by the caller before gen is bumped. */
  oc_parallel_fn fn;
  void *arg;
  int64_t n;
  int parts; /* chunks of the current job */
};

static _Thread_local int in_part; /* this thread is running a part */

int oc_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* Takes chunks of the current job until none is left: a thread that starts
 * late or runs slowly (another process on its core) takes fewer. */
static void run_chunks(struct oc_pool_s *p, int thread) {
  in_part = 1;
  for (;;) {
    long long i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (i >= p->parts) break;
    int64_t b = oc_part_begin(p->n, p->parts, (int)i);
    int64_t e = oc_part_begin(p->n, p->parts, (int)i + 1);
    if (e > b) p->fn(p->arg, b, e, thread);
  }
  in_part = 0;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  struct oc_pool_s *p = w->pool;
  unsigned seen = 0;
  for (;;) {
    unsigned g;
    int spins = 0;
    int64_t t0 = 0;
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
      if (++spins % SPIN_CHUNK) {
        CPU_RELAX();
        continue;
      }
      int64_t t = now_ns();
      if (!t0) t0 = t;
      if (t - t0 < WORKER_SPIN_NS) {
        sched_yield();
        continue;
      }
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleepers, 1);
      while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv, &p->mu);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->mu);
      spins = 0;
      t0 = 0;
    }
    seen = g;
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
    run_chunks(p, w->index);
    atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
  }
}

/* OpenBLAS's pthread build starts its worker threads when it loads; idle,
 * they spin for a while before sleeping, on the cores the pool needs. Once
 * it runs single-threaded, its server is stopped (it restarts by itself if
 * someone asks OpenBLAS for threads again). Weak: other BLAS builds lack it. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();
}

oc_status_t oc_pool_create(int threads, const oc_allocator_t *allocator, oc_pool_t **out_pool) {
  *out_pool = NULL;
  if (threads < 1) threads = 1;
  if (threads > 1024) threads = 1024;
  pthread_once(&blas_once, blas_single_thread);
  oc_allocator_t a = oc_allocator_or_default(allocator);
  struct oc_pool_s *p = oc_alloc(&a, sizeof *p);
  if (!p) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory creating a thread pool");
  p->allocator = a;
  p->threads = 1;
  atomic_init(&p->gen, 0);
  atomic_init(&p->pending, 0);
  atomic_init(&p->next, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->stop, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (threads > 1) {
    p->workers = oc_alloc(&a, sizeof(worker_t) * (size_t)(threads - 1));
    if (!p->workers) {
      oc_pool_release(p);
      return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory creating a thread pool");
    }
    for (int i = 1; i < threads; i++) {
      worker_t *w = &p->workers[p->n_workers];
      w->pool = p;
      w->index = i;
      if (pthread_create(&w->tid, NULL, worker_main, w) != 0) break;
      p->n_workers++;
    }
    p->threads = 1 + p->n_workers;
  }
  *out_pool = p;
  return OC_OK;
}

void oc_pool_release(oc_pool_t *p) {
  if (!p) return;
  if (p->n_workers) {
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i].tid, NULL);
  }
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  oc_allocator_t a = p->allocator;
  oc_free(&a, p->workers);
  oc_free(&a, p);
}

int oc_pool_threads(const oc_pool_t *p) { return p ? p->threads : 1; }

int oc_parallel_parts(const oc_pool_t *p, int64_t n, int64_t grain) {
  if (!p || p->threads <= 1 || in_part || n <= 0) return 1;
  if (grain < 1) grain = 1;
  int64_t parts = n / grain;
  if (parts > p->threads) parts = p->threads;
  return parts < 1 ? 1 : (int)parts;
}

void oc_parallel_for(oc_pool_t *p, int64_t n, int64_t grain, oc_parallel_fn fn, void *arg) {
  oc_parallel_for_chunks(p, n, grain, 4, fn, arg);
}

void oc_parallel_for_chunks(oc_pool_t *p, int64_t n, int64_t grain, int per_thread,
                            oc_parallel_fn fn, void *arg) {
  if (n <= 0) return;
  int parts = oc_parallel_parts(p, n, grain);
  if (parts <= 1) {
    fn(arg, 0, n, 0);
    return;
  }
  /* up to |per_thread| chunks per thread, each at least |grain| items */
  int64_t chunks = n / (grain < 1 ? 1 : grain);
  int64_t most = (int64_t)p->threads * (per_thread < 1 ? 1 : per_thread);
  if (chunks > most) chunks = most;
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->parts = (int)chunks;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  atomic_store_explicit(&p->pending, p->n_workers, memory_order_relaxed);
  atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes the job, ordered before the read below */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  run_chunks(p, 0);
  int spins = 0;
  while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
    if (++spins % SPIN_CHUNK)
      CPU_RELAX();
    else
      sched_yield(); /* a worker may be waiting for a core */
  }
}

/* --- sgemm ---------------------------------------------------------------- */

typedef struct gemm_job_s {
  int ta, tb, by_rows;
  int64_t m, n, k, lda, ldb, ldc, block;
  float alpha, beta;
  const float *a, *b;
  float *c;
} gemm_job_t;

static void gemm_part(void *arg, int64_t begin, int64_t end, int thread) {
  const gemm_job_t *j = arg;
  (void)thread;
  int64_t lo = begin * j->block, hi = end * j->block;
  const float *a = j->a, *b = j->b;
  float *c = j->c;
  int64_t m = j->m, n = j->n;
  if (j->by_rows) {
    if (hi > m) hi = m;
    a += j->ta ? lo : lo * j->lda;
    c += lo * j->ldc;
    m = hi - lo;
  } else {
    if (hi > n) hi = n;
    b += j->tb ? lo * j->ldb : lo;
    c += lo;
    n = hi - lo;
  }
  if (m <= 0 || n <= 0) return;
  cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
              (blasint)m, (blasint)n, (blasint)j->k, j->alpha, a, (blasint)j->lda, b,
              (blasint)j->ldb, j->beta, c, (blasint)j->ldc);
}

void oc_sgemm(oc_pool_t *pool, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
              float *c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  gemm_job_t j = {.ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
                  .ldc = ldc, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c};
  /* Blocks of 16 rows or columns (OpenBLAS's micro-kernel widths divide
   * it); split the longer side unless that leaves parts too small. */
  const int64_t B = 16;
  double work = (double)m * (double)n * (double)(k > 0 ? k : 1);
  int threads = oc_pool_threads(pool);
  if (threads <= 1 || work < 32.0 * (double)OC_PARALLEL_MIN_WORK) {
    j.block = n;
    gemm_part(&j, 0, 1, 0);
    return;
  }
  j.by_rows = m > n;
  int64_t len = j.by_rows ? m : n;
  j.block = B;
  int64_t blocks = (len + B - 1) / B;
  if (blocks < 2) { /* too thin to split that way: try the other side */
    j.by_rows = !j.by_rows;
    len = j.by_rows ? m : n;
    blocks = (len + B - 1) / B;
  }
  double per_block = work / (double)blocks / 16.0; /* ~16 multiply-adds per elementary op */
  /* two chunks per thread: each chunk packs its operands again */
  oc_parallel_for_chunks(pool, blocks, oc_grain((int64_t)per_block + 1), 2, gemm_part, &j);
}
