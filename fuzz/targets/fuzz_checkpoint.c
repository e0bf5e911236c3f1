/*
 * fuzz_checkpoint: oc_context_load_checkpoint.
 *
 * The plan is fixed: a small training plan compiled at build time from
 * tests/data/reference/a1_mlp_triplet/model.onnx by the in-tree onnxc
 * (--train, Adam, cosine schedule, only the last bias trainable, so the
 * state and the checkpoints stay small); ONNXC_FUZZ_PLAN=path overrides it.
 * The loader reads a path, so each input is written to a per-process file in
 * /dev/shm (or $TMPDIR) and loaded from there into a fresh context, twice:
 *
 *   1. as given (magic, version, sizes and checksums);
 *   2. "repaired", when that differs: the file size, the state layout hash
 *      and both checksums are recomputed, so mutations of the state bytes
 *      reach the runtime instead of stopping at a checksum.
 *
 * Checked: a rejected checkpoint leaves the context's state untouched (the
 * documented contract); an accepted one is exactly the file's state bytes.
 * After a load, "embed" and "train_step" run once on fixed inputs (their
 * statuses are ignored: NaN state and a huge step count must give a status,
 * not a crash).
 *
 * ONNXC_FUZZ_WRITE_CHECKPOINT=path makes the target write a valid
 * checkpoint of the plan (after one train step) to |path| and exit: the seed
 * (fuzz/make_seeds.sh).
 */
#include <unistd.h>

#include "fuzz_common.h"
#include "oc_base.h"
#include "oc_file.h"
#include "plan_format.h"
#include "plan_internal.h"

#ifndef ONNXC_FUZZ_TRAIN_PLAN
#define ONNXC_FUZZ_TRAIN_PLAN "a1_mlp_triplet.train.plan"
#endif

static oc_plan_t *g_plan;
static int g_train = -1, g_embed = -1;
static uint8_t *g_state0; /* a fresh context's state */
static char g_path[512];
/* One thread per context: a context with a pool starts a worker thread, and
 * under ASan every thread ever started leaves a record behind, so millions
 * of inputs would grow the fuzzer past its RSS limit (and thread start-up
 * was a quarter of an execution). The pool is covered by the concurrency and
 * TSan tests. */
static oc_context_options_t g_context_options;

static void die(const char *what, oc_status_t s) {
  fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, s ? oc_status_message(s) : "failed");
  abort();
}

static void remove_file(void) {
  if (g_path[0]) unlink(g_path);
}

static void write_input(const uint8_t *data, size_t size) {
  FILE *f = fopen(g_path, "wb");
  if (!f) die(g_path, NULL);
  if (size && fwrite(data, 1, size, f) != size) die(g_path, NULL);
  if (fclose(f) != 0) die(g_path, NULL);
}

static void load(const uint8_t *data, size_t size) {
  write_input(data, size);
  oc_context_t *ctx = NULL;
  oc_status_t s = oc_context_create(g_plan, &g_context_options, &ctx);
  if (s) die("oc_context_create", s);
  size_t state_bytes = (size_t)g_plan->state_bytes;
  if (fuzz_ok(oc_context_load_checkpoint(ctx, g_path))) {
    if (size != 64 + state_bytes || memcmp(ctx->state, data + 64, state_bytes) != 0) {
      fprintf(stderr, "fuzz_checkpoint: an accepted %zu-byte checkpoint did not load as the "
              "file's state bytes\n", size);
      abort();
    }
    if (g_embed >= 0) fuzz_run_entry(g_plan, ctx, g_embed, 1);
    if (g_train >= 0) fuzz_run_entry(g_plan, ctx, g_train, 1);
  } else if (memcmp(ctx->state, g_state0, state_bytes) != 0) {
    fprintf(stderr, "fuzz_checkpoint: a rejected checkpoint changed the context's state\n");
    abort();
  }
  oc_context_release(ctx);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_common();
  const char *path = getenv("ONNXC_FUZZ_PLAN");
  if (!path || !*path) path = ONNXC_FUZZ_TRAIN_PLAN;
  void *buf = NULL;
  size_t n = 0;
  oc_status_t s = oc_file_read_all(path, &buf, &n);
  if (s) die("reading the plan (set ONNXC_FUZZ_PLAN)", s);
  s = oc_plan_open_memory(buf, n, NULL, &g_plan);
  free(buf);
  if (s) die(path, s);
  if (oc_plan_state_count(g_plan) == 0) die("the plan has no state (not a --train plan)", NULL);
  if (!fuzz_ok(oc_plan_find_entry(g_plan, "train_step", &g_train))) g_train = -1;
  if (!fuzz_ok(oc_plan_find_entry(g_plan, "embed", &g_embed))) g_embed = -1;

  oc_context_t *ctx = NULL;
  oc_context_options_init(&g_context_options);
  g_context_options.threads = 1;
  if ((s = oc_context_create(g_plan, &g_context_options, &ctx))) die("oc_context_create", s);
  size_t state_bytes = (size_t)g_plan->state_bytes;
  g_state0 = malloc(state_bytes ? state_bytes : 1);
  if (!g_state0) die("out of memory", NULL);
  memcpy(g_state0, ctx->state, state_bytes);

  const char *seed = getenv("ONNXC_FUZZ_WRITE_CHECKPOINT");
  if (seed && *seed) {
    if (g_train >= 0) fuzz_run_entry(g_plan, ctx, g_train, 1);
    if ((s = oc_context_save_checkpoint(ctx, seed))) die(seed, s);
    fprintf(stderr, "fuzz_checkpoint: wrote %s (%zu bytes)\n", seed, 64 + state_bytes);
    exit(0);
  }
  oc_context_release(ctx);

  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  snprintf(g_path, sizeof g_path, "%s/onnxc-fuzz-checkpoint.%ld", dir, (long)getpid());
  atexit(remove_file);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load(data, size);
  if (size < 64) return 0;
  uint8_t *fixed = malloc(size);
  if (!fixed) return 0;
  memcpy(fixed, data, size);
  fuzz_wr64(fixed + 16, size);
  fuzz_wr64(fixed + 32, oc_plan_state_layout_hash(g_plan));
  fuzz_wr64(fixed + 40, oc_hash64(fixed + 64, size - 64, OC_PLAN_HASH_SEED_CKPT));
  fuzz_wr64(fixed + 48, oc_hash64(fixed, 48, OC_PLAN_HASH_SEED_CKPT));
  if (memcmp(fixed, data, size) != 0) load(fixed, size);
  free(fixed);
  return 0;
}
