/*
 * Helpers shared by the fuzz targets (not part of the project's libraries).
 *
 * Targets may print and abort: an abort is how an invariant violation
 * becomes a libFuzzer crash with a reproducer.
 */
#ifndef ONNXC_FUZZ_COMMON_H
#define ONNXC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc/onnxc.h"

/* OpenBLAS (not instrumented) would start a thread pool per core: one
 * thread keeps executions deterministic and cheap. */
void openblas_set_num_threads(int num_threads);

static inline void fuzz_init_common(void) { openblas_set_num_threads(1); }

static inline uint64_t fuzz_rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static inline void fuzz_wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ONNXC_FUZZ_VERBOSE=1 prints every status the targets see (for checking
 * what the seeds reach: run a target on one file with it). */
static inline int fuzz_verbose(void) {
  static int v = -1;
  if (v < 0) {
    const char *e = getenv("ONNXC_FUZZ_VERBOSE");
    v = e && *e && *e != '0';
  }
  return v;
}

/* Releases |s|; returns whether it was OC_OK. */
static inline int fuzz_ok(oc_status_t s) {
  if (!s) return 1;
  /* Every status must carry a message. */
  const char *m = oc_status_message(s);
  if (!m) {
    fprintf(stderr, "fuzz: a status without a message (code %d)\n", (int)oc_status_code(s));
    abort();
  }
  if (fuzz_verbose()) fprintf(stderr, "status %s: %s\n", oc_status_code_name(oc_status_code(s)), m);
  oc_status_free(s);
  return 0;
}

/* Reads every byte of [p, p+n) so ASan sees a short buffer; the result is
 * consumed so the loop is not optimized away. */
static inline void fuzz_touch(const void *p, size_t n) {
  const volatile uint8_t *b = p;
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc ^= b[i];
  __asm__ volatile("" : : "r"(acc));
}

/* Fills input |index| of |entry| through oc_context_set_input: zeros, or
 * (pattern != 0) a small deterministic non-zero pattern for float inputs.
 * Inputs over 64 MiB are zeroed in place (oc_context_input_buffer) instead of
 * copying from a second buffer of that size. */
static inline void fuzz_fill_input(const oc_plan_t *plan, oc_context_t *ctx, int entry,
                                   int index, int pattern) {
  oc_tensor_info_t info;
  if (!fuzz_ok(oc_plan_input_info(plan, entry, index, &info))) {
    fprintf(stderr, "fuzz: oc_plan_input_info(%d, %d) failed for an input that exists\n", entry,
            index);
    abort();
  }
  const size_t max_copy = (size_t)64 << 20;
  void *buf = NULL;
  size_t bytes = info.bytes;
  if (bytes > max_copy) {
    size_t got = 0;
    if (fuzz_ok(oc_context_input_buffer(ctx, entry, index, &buf, &got))) memset(buf, 0, got);
    return;
  }
  buf = calloc(bytes ? bytes : 1, 1);
  if (!buf) return;
  if (pattern && info.dtype == OC_DTYPE_FLOAT32) {
    float *f = buf;
    for (size_t i = 0; i < bytes / sizeof(float); i++)
      f[i] = (float)((uint32_t)(i * 2654435761u) % 1000u) / 500.0f - 1.0f;
  }
  if (!fuzz_ok(oc_context_set_input(ctx, entry, index, buf, bytes))) {
    fprintf(stderr, "fuzz: oc_context_set_input rejected the %zu bytes oc_plan_input_info gave\n",
            bytes);
    abort();
  }
  free(buf);
}

/* Fills every input of |entry|, runs it (its status is ignored: a numeric
 * error is an allowed outcome) and reads every output. */
static inline void fuzz_run_entry(const oc_plan_t *plan, oc_context_t *ctx, int entry,
                                  int pattern) {
  int n_in = oc_plan_input_count(plan, entry);
  for (int i = 0; i < n_in; i++) fuzz_fill_input(plan, ctx, entry, i, pattern);
  if (!fuzz_ok(oc_context_run(ctx, entry))) return;
  int n_out = oc_plan_output_count(plan, entry);
  for (int i = 0; i < n_out; i++) {
    const void *p = NULL;
    size_t n = 0;
    if (fuzz_ok(oc_context_output(ctx, entry, i, &p, &n)) && n) fuzz_touch(p, n);
  }
}

#endif
