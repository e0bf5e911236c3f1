/*
 * fuzz_plan: the plan loader and validator, then one run of "embed".
 *
 * Each input is a plan image (fuzz/corpus/plan/ holds plans compiled from
 * the reference models and from node tests). It is opened twice with
 * oc_plan_open_memory (verify_weights on):
 *
 *   1. as given, which exercises the header and checksum checks;
 *   2. "repaired", when that differs: the header's file size follows the
 *      input's length (a length change is taken to be inside the metadata,
 *      which is moved and the constant section re-aligned behind it) and the
 *      three checksums are recomputed. Without this nearly every mutation
 *      would stop at a checksum and the metadata decoder and validator would
 *      see nothing.
 *
 * ONNXC_FUZZ_WRITE_REPAIRED=path writes the repaired copy of the (last)
 * input to |path|: a finding as a plan file with valid checksums, for onnxrun.
 *
 * Plans open with a cost limit (oc_plan_options_t.max_run_cost) and
 * contexts with a memory limit (oc_context_options_t.max_memory_bytes), as
 * a service loading plans from others would set them. When a plan opens,
 * the target queries every entry's signature and the state tensors,
 * creates a context, sets every input of entry 0 (and of
 * "embed") to zeros, runs "embed" if the plan has it (its status is ignored:
 * a numeric error is a fine outcome; a crash, a sanitizer report, a leak or
 * a hang is not) and reads its outputs.
 */
#include "fuzz_common.h"
#include "oc_base.h"
#include "plan_format.h"

static uint64_t align64(uint64_t v) { return (v + 63) & ~(uint64_t)63; }

/* A repaired copy of the plan image |in| (malloc'd, *out_n bytes), or NULL
 * when |in| does not start like a plan. */
static uint8_t *repair(const uint8_t *in, size_t n, size_t *out_n) {
  const size_t H = OC_PLAN_HEADER_BYTES;
  if (n < H || memcmp(in, OC_PLAN_MAGIC, 8) != 0) return NULL;
  uint64_t fb = fuzz_rd64(in + OC_PLAN_OFF_FILE_BYTES);
  uint64_t mo = fuzz_rd64(in + OC_PLAN_OFF_META_OFFSET);
  uint64_t ml = fuzz_rd64(in + OC_PLAN_OFF_META_BYTES);
  uint64_t dof = fuzz_rd64(in + OC_PLAN_OFF_DATA_OFFSET);
  uint64_t dl = fuzz_rd64(in + OC_PLAN_OFF_DATA_BYTES);
  uint8_t *out = NULL;
  size_t m = n;
  /* The layout the header describes is consistent with the file it was
   * written for (fb bytes) but not with this one: move the metadata. */
  int consistent = fb <= ((uint64_t)1 << 40) && mo >= H && mo <= fb && ml <= fb - mo &&
                   mo + ml <= dof && dof <= fb && dl == fb - dof && dof % 64 == 0;
  if (consistent && fb != n) {
    int64_t delta = (int64_t)n - (int64_t)fb;
    int64_t nml = (int64_t)ml + delta;
    if (nml >= 0 && mo + (uint64_t)nml + dl <= n) {
      uint64_t ndof = align64(mo + (uint64_t)nml);
      m = (size_t)(ndof + dl);
      out = calloc(m ? m : 1, 1);
      if (!out) return NULL;
      memcpy(out, in, (size_t)mo);
      memcpy(out + mo, in + mo, (size_t)nml);
      memcpy(out + ndof, in + n - dl, (size_t)dl);
      fuzz_wr64(out + OC_PLAN_OFF_META_BYTES, (uint64_t)nml);
      fuzz_wr64(out + OC_PLAN_OFF_DATA_OFFSET, ndof);
      ml = (uint64_t)nml;
      dof = ndof;
    }
  }
  if (!out) {
    out = malloc(n);
    if (!out) return NULL;
    memcpy(out, in, n);
  }
  fuzz_wr64(out + OC_PLAN_OFF_FILE_BYTES, m);
  if (mo <= m && ml <= m - mo)
    fuzz_wr64(out + OC_PLAN_OFF_META_HASH, oc_hash64(out + mo, (size_t)ml, OC_PLAN_HASH_SEED));
  if (dof <= m && dl <= m - dof)
    fuzz_wr64(out + OC_PLAN_OFF_DATA_HASH, oc_hash64(out + dof, (size_t)dl, OC_PLAN_HASH_SEED));
  fuzz_wr64(out + OC_PLAN_OFF_HEADER_HASH,
            oc_hash64(out, OC_PLAN_OFF_HEADER_HASH, OC_PLAN_HASH_SEED));
  *out_n = m;
  return out;
}

static void query(const oc_plan_t *plan) {
  int n_entries = oc_plan_entry_count(plan);
  for (int k = 0; k < n_entries; k++) {
    const char *name = oc_plan_entry_name(plan, k);
    if (!name) abort();
    int found = -1;
    if (!fuzz_ok(oc_plan_find_entry(plan, name, &found)) || found != k) {
      fprintf(stderr, "fuzz_plan: entry %d '%s' is not found by its name\n", k, name);
      abort();
    }
    for (int i = 0; i < oc_plan_input_count(plan, k); i++) {
      oc_tensor_info_t info;
      if (!fuzz_ok(oc_plan_input_info(plan, k, i, &info))) abort();
      fuzz_touch(info.name, strlen(info.name));
      fuzz_touch(info.dims, sizeof(int64_t) * (size_t)info.rank);
      (void)oc_plan_input_index(plan, k, info.name);
    }
    for (int i = 0; i < oc_plan_output_count(plan, k); i++) {
      oc_tensor_info_t info;
      if (!fuzz_ok(oc_plan_output_info(plan, k, i, &info))) abort();
      fuzz_touch(info.name, strlen(info.name));
      fuzz_touch(info.dims, sizeof(int64_t) * (size_t)info.rank);
      (void)oc_plan_output_index(plan, k, info.name);
    }
    (void)oc_plan_arena_bytes(plan, k);
    for (int i = 0; i < oc_plan_instruction_count(plan, k); i++)
      (void)oc_plan_instruction_op(plan, k, i);
  }
  for (int i = 0; i < oc_plan_state_count(plan); i++) {
    oc_tensor_info_t info;
    if (!fuzz_ok(oc_plan_state_info(plan, i, &info))) abort();
    fuzz_touch(info.name, strlen(info.name));
  }
  uint64_t ce = 0, cb = 0;
  oc_plan_constant_stats(plan, &ce, &cb);
  const void *src = NULL;
  size_t src_n = 0;
  if (fuzz_ok(oc_plan_source_model(plan, &src, &src_n))) fuzz_touch(src, src_n);
}

/* The limits a service loading plans from others would set: a run of any
 * plan that opens stays well under the 10 s timeout (the seeds need at
 * most 3.3 M operations), and a context under the 2 GB RSS limit. */
#define FUZZ_PLAN_MAX_RUN_COST ((uint64_t)1 << 26)
#define FUZZ_PLAN_MAX_CONTEXT_BYTES ((uint64_t)256 << 20)

static void exercise(const uint8_t *data, size_t size) {
  oc_plan_options_t po;
  oc_plan_options_init(&po);
  po.verify_weights = 1;
  po.max_run_cost = FUZZ_PLAN_MAX_RUN_COST;
  oc_plan_t *plan = NULL;
  if (!fuzz_ok(oc_plan_open_memory(data, size, &po, &plan))) return;
  query(plan);
  for (int k = 0; k < oc_plan_entry_count(plan); k++)
    if (oc_plan_run_cost(plan, k) > FUZZ_PLAN_MAX_RUN_COST) {
      fprintf(stderr, "fuzz_plan: entry %d opened over the cost limit\n", k);
      abort();
    }
  oc_context_options_t co;
  oc_context_options_init(&co);
  co.max_memory_bytes = FUZZ_PLAN_MAX_CONTEXT_BYTES;
  /* One thread: under ASan every thread ever started leaves a record, which
   * would grow a long run past its RSS limit (see fuzz_checkpoint.c). */
  co.threads = 1;
  oc_context_t *ctx = NULL;
  if (fuzz_ok(oc_context_create(plan, &co, &ctx))) {
    int n_in = oc_plan_input_count(plan, 0);
    for (int i = 0; i < n_in; i++) fuzz_fill_input(plan, ctx, 0, i, 0);
    int embed = -1;
    if (fuzz_ok(oc_plan_find_entry(plan, "embed", &embed))) fuzz_run_entry(plan, ctx, embed, 0);
    oc_context_release(ctx);
  }
  oc_plan_release(plan);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_common();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  exercise(data, size);
  size_t m = 0;
  uint8_t *fixed = repair(data, size, &m);
  /* ONNXC_FUZZ_WRITE_REPAIRED=path: save the repaired plan (valid checksums),
   * e.g. to reproduce a finding with onnxrun. */
  const char *save = getenv("ONNXC_FUZZ_WRITE_REPAIRED");
  if (fixed && save && *save) {
    FILE *f = fopen(save, "wb");
    if (!f || fwrite(fixed, 1, m, f) != m || fclose(f) != 0) abort();
  }
  if (fixed && (m != size || memcmp(fixed, data, size) != 0)) exercise(fixed, m);
  free(fixed);
  return 0;
}
