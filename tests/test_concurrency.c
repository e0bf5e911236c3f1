/*
 * One opened plan shared by many threads (README: "One opened plan serves any
 * number of threads, each with its own context").
 *
 * For each reference encoder (the a2 SimCLR image encoder, float32 input and
 * conv/GEMM through OpenBLAS; the a4 CLIP text encoder, int64 tokens,
 * embedding lookup, attention and MatMul through OpenBLAS): compile it
 * in-process, open the plan once, compute single-threaded reference outputs
 * for every (thread, call) input, then run 8 threads x 1,000 embed calls at
 * once, each thread with its own context and its own inputs (made
 * deterministically from (thread, call)), and compare every output bit for
 * bit with its reference. A last case runs both plans at once, each thread
 * alternating between them.
 *
 * scripts/tsan.sh builds and runs this under ThreadSanitizer.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile.h"

#define THREADS 8
#define CALLS 1000

#define IMAGE_MODEL ONNXC_TEST_DATA "/reference/a2_simclr_smallcnn/embed/model.onnx"
#define TEXT_MODEL ONNXC_TEST_DATA "/reference/a4_clip_dual/embed_text/model.onnx"
/* nn.Embedding(100, 32): token ids in [0, 100). */
#define TEXT_VOCAB 100

static void expect_ok(oc_status_t s) {
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: the inputs of call |c| of thread |t| depend on (t, c) only. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* One shared plan and everything the threads compare against. */
typedef struct model_s {
  const char *path;
  oc_plan_t *plan;
  int entry;
  oc_tensor_info_t in, out;
  uint8_t *ref; /* THREADS * CALLS outputs of out.bytes each */
} model_t;

/* Fills |buf| with the input of call |c| of thread |t|. */
static void make_input(const model_t *m, int t, int c, void *buf) {
  uint64_t seed = mix((uint64_t)m->in.dtype << 40 ^ mix((uint64_t)t * 1000003u + (uint64_t)c));
  if (m->in.dtype == OC_DTYPE_FLOAT32) {
    float *p = buf;
    for (size_t i = 0; i < m->in.elements; i++) {
      uint64_t r = mix(seed + i);
      /* [-2, 2) in steps of 2^-20: exact in float32. */
      p[i] = (float)((int64_t)(r >> 42) - (1 << 21)) / (float)(1 << 20);
    }
  } else {
    int64_t *p = buf;
    for (size_t i = 0; i < m->in.elements; i++) p[i] = (int64_t)(mix(seed + i) % TEXT_VOCAB);
  }
}

static void open_model(model_t *m, const char *path) {
  memset(m, 0, sizeof *m);
  m->path = path;
  oc_compiled_t *c = NULL;
  expect_ok(oc_compile_file(path, NULL, &c));
  uint8_t *bytes;
  size_t n;
  expect_ok(oc_plan_serialize(c, &bytes, &n));
  oc_compiled_free(c);
  expect_ok(oc_plan_open_memory(bytes, n, NULL, &m->plan));
  free(bytes);
  expect_ok(oc_plan_find_entry(m->plan, "embed", &m->entry));
  ck_assert_int_eq(oc_plan_input_count(m->plan, m->entry), 1);
  expect_ok(oc_plan_input_info(m->plan, m->entry, 0, &m->in));
  expect_ok(oc_plan_output_info(m->plan, m->entry, 0, &m->out));
  ck_assert(m->in.dtype == OC_DTYPE_FLOAT32 || m->in.dtype == OC_DTYPE_INT64);
  ck_assert_uint_gt(m->out.bytes, 0);

  /* The references: one context, one thread, every (thread, call) input. */
  m->ref = malloc(m->out.bytes * THREADS * CALLS);
  void *x = malloc(m->in.bytes);
  ck_assert(m->ref && x);
  oc_context_t *ctx;
  expect_ok(oc_context_create(m->plan, NULL, &ctx));
  double t0 = now();
  for (int t = 0; t < THREADS; t++)
    for (int k = 0; k < CALLS; k++) {
      make_input(m, t, k, x);
      expect_ok(oc_context_set_input(ctx, m->entry, 0, x, m->in.bytes));
      expect_ok(oc_context_run(ctx, m->entry));
      const void *y;
      size_t yb;
      expect_ok(oc_context_output(ctx, m->entry, 0, &y, &yb));
      ck_assert_uint_eq(yb, m->out.bytes);
      memcpy(m->ref + m->out.bytes * ((size_t)t * CALLS + (size_t)k), y, yb);
    }
  double dt = now() - t0;
  /* The reference itself is reproducible: a fresh context gives the same
   * bits for a few of the inputs. */
  oc_context_release(ctx);
  expect_ok(oc_context_create(m->plan, NULL, &ctx));
  for (int k = 0; k < CALLS; k += 97) {
    int t = k % THREADS;
    make_input(m, t, k, x);
    expect_ok(oc_context_set_input(ctx, m->entry, 0, x, m->in.bytes));
    expect_ok(oc_context_run(ctx, m->entry));
    const void *y;
    expect_ok(oc_context_output(ctx, m->entry, 0, &y, NULL));
    ck_assert(memcmp(y, m->ref + m->out.bytes * ((size_t)t * CALLS + (size_t)k), m->out.bytes) == 0);
  }
  oc_context_release(ctx);
  free(x);
  printf("%s: %d single-threaded embed calls in %.3f s (%zu-byte %s input, %zu-byte output)\n",
         path, THREADS * CALLS, dt, m->in.bytes, oc_dtype_name(m->in.dtype), m->out.bytes);
}

static void close_model(model_t *m) {
  free(m->ref);
  oc_plan_release(m->plan);
}

/* --- the threads ---------------------------------------------------------------- */

typedef struct worker_s {
  model_t *models[2];
  int n_models; /* 1, or 2: alternate between the two plans call by call */
  int t;
  pthread_barrier_t *start;
  /* Results, read by the main thread after the join. */
  int calls, mismatches, first_bad_call;
  char error[512];
} worker_t;

static void *worker(void *p) {
  worker_t *w = p;
  oc_context_t *ctx[2] = {NULL, NULL};
  void *x[2] = {NULL, NULL};
  oc_status_t s = OC_OK;
  w->first_bad_call = -1;
  for (int j = 0; j < w->n_models && !s; j++) {
    s = oc_context_create(w->models[j]->plan, NULL, &ctx[j]);
    x[j] = malloc(w->models[j]->in.bytes);
    if (!s && !x[j]) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  pthread_barrier_wait(w->start);
  for (int k = 0; k < CALLS * w->n_models && !s; k++) {
    int j = k % w->n_models, call = k / w->n_models;
    model_t *m = w->models[j];
    if (call % 2 == 0) {
      /* Through oc_context_set_input ... */
      make_input(m, w->t, call, x[j]);
      s = oc_context_set_input(ctx[j], m->entry, 0, x[j], m->in.bytes);
    } else {
      /* ... or filled in place. */
      void *buf;
      size_t n;
      s = oc_context_input_buffer(ctx[j], m->entry, 0, &buf, &n);
      if (!s) make_input(m, w->t, call, buf);
    }
    if (!s) s = oc_context_run(ctx[j], m->entry);
    const void *y = NULL;
    size_t yb = 0;
    if (!s) s = oc_context_output(ctx[j], m->entry, 0, &y, &yb);
    if (s) break;
    w->calls++;
    const uint8_t *want = m->ref + m->out.bytes * ((size_t)w->t * CALLS + (size_t)call);
    if (yb != m->out.bytes || memcmp(y, want, yb) != 0) {
      if (w->first_bad_call < 0) w->first_bad_call = k;
      w->mismatches++;
    }
  }
  if (s) {
    snprintf(w->error, sizeof w->error, "%s", oc_status_message(s));
    oc_status_free(s);
  }
  for (int j = 0; j < 2; j++) {
    oc_context_release(ctx[j]);
    free(x[j]);
  }
  return NULL;
}

static void run_threads(model_t **models, int n_models, const char *what) {
  pthread_barrier_t start;
  ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
  worker_t w[THREADS];
  pthread_t th[THREADS];
  double t0 = now();
  for (int t = 0; t < THREADS; t++) {
    memset(&w[t], 0, sizeof w[t]);
    for (int j = 0; j < n_models; j++) w[t].models[j] = models[j];
    w[t].n_models = n_models;
    w[t].t = t;
    w[t].start = &start;
    ck_assert_int_eq(pthread_create(&th[t], NULL, worker, &w[t]), 0);
  }
  for (int t = 0; t < THREADS; t++) ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  double dt = now() - t0;
  pthread_barrier_destroy(&start);
  int calls = 0;
  for (int t = 0; t < THREADS; t++) {
    ck_assert_msg(!w[t].error[0], "%s: thread %d: %s", what, t, w[t].error);
    ck_assert_msg(w[t].mismatches == 0,
                  "%s: thread %d: %d of %d outputs differ from the single-threaded run (first: "
                  "call %d)",
                  what, t, w[t].mismatches, w[t].calls, w[t].first_bad_call);
    ck_assert_int_eq(w[t].calls, CALLS * n_models);
    calls += w[t].calls;
  }
  printf("%s: %d threads, %d embed calls, all bit-identical to the single-threaded run, %.3f s\n",
         what, THREADS, calls, dt);
}

START_TEST(image_encoder_threads) {
  model_t m;
  open_model(&m, IMAGE_MODEL);
  model_t *ms[1] = {&m};
  run_threads(ms, 1, "a2 image encoder (float32)");
  close_model(&m);
}
END_TEST

START_TEST(text_encoder_threads) {
  model_t m;
  open_model(&m, TEXT_MODEL);
  model_t *ms[1] = {&m};
  run_threads(ms, 1, "a4 text encoder (int64)");
  close_model(&m);
}
END_TEST

START_TEST(two_plans_threads) {
  model_t a, b;
  open_model(&a, IMAGE_MODEL);
  open_model(&b, TEXT_MODEL);
  model_t *ms[2] = {&a, &b};
  run_threads(ms, 2, "both plans, alternating");
  close_model(&a);
  close_model(&b);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("concurrency");
  TCase *tc = tcase_create("threads");
  tcase_set_timeout(tc, 1800); /* generous: scripts/tsan.sh runs it instrumented */
  tcase_add_test(tc, image_encoder_threads);
  tcase_add_test(tc, text_encoder_threads);
  tcase_add_test(tc, two_plans_threads);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
