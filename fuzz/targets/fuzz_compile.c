/*
 * fuzz_compile: the whole compile of an ONNX model, in memory.
 *
 * Input: one flags byte, then a serialized ModelProto (the seeds are the
 * reference models and node-test models behind a flags byte; see
 * fuzz/make_seeds.sh). Every input is compiled as `onnxc MODEL` would
 * (import, shape inference, folding, pruning, memory planning); when flags
 * bit 0 is set it is also compiled as `onnxc --train` (autodiff, optimizer,
 * a train_step and an eval-mode embed entry), with bits 1-2 choosing the
 * optimizer (SGD, Adam, AdamW, LARS), bit 3 momentum/Nesterov/weight decay,
 * bit 4 the cosine schedule, bit 5 --freeze '.*weight.*' and bit 6
 * --trainable '.*(bias|running).*'. Symbolic dims with a common name (batch,
 * N, ...) are bound to 2. The fold budgets are tighter than onnxc's
 * defaults (256 MiB of constants, 128 MiB folded, 2^28 operations).
 * External data resolves against tests/data/models/external_data_mlp/ (its
 * weights.bin; the importer's path rules keep reads inside that folder).
 *
 * Each successful compile is serialized with oc_plan_serialize (in memory;
 * nothing is written) and the plan is opened with oc_plan_open_memory: the
 * runtime must accept every plan the compiler makes, so a rejection aborts
 * with the validator's message.
 */
#include "compile.h"
#include "fuzz_common.h"

#ifndef ONNXC_FUZZ_EXTERNAL_DATA_DIR
#define ONNXC_FUZZ_EXTERNAL_DATA_DIR NULL
#endif

static void compile_one(const uint8_t *model, size_t size, const oc_compile_options_t *o) {
  oc_compiled_t *c = NULL;
  if (!fuzz_ok(oc_compile_memory(model, size, ONNXC_FUZZ_EXTERNAL_DATA_DIR, "fuzz.onnx", o, &c)))
    return;
  uint8_t *plan_bytes = NULL;
  size_t n = 0;
  oc_status_t s = oc_plan_serialize(c, &plan_bytes, &n);
  oc_compiled_free(c);
  if (s) {
    /* Only running out of memory may stop a compiled plan from serializing. */
    if (oc_status_code(s) != OC_STATUS_OUT_OF_MEMORY &&
        oc_status_code(s) != OC_STATUS_RESOURCE_LIMIT) {
      fprintf(stderr, "fuzz_compile: oc_plan_serialize failed on a compiled model: %s\n",
              oc_status_message(s));
      abort();
    }
    oc_status_free(s);
    return;
  }
  oc_plan_t *plan = NULL;
  s = oc_plan_open_memory(plan_bytes, n, NULL, &plan);
  if (s) {
    fprintf(stderr, "fuzz_compile: the runtime rejects the plan the compiler made (%s mode): %s\n",
            o->train.enabled ? "--train" : "plain", oc_status_message(s));
    abort();
  }
  oc_plan_release(plan);
  free(plan_bytes);
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
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const uint8_t *model = data + 1;
  size_t n = size - 1;

  static const char *const dims[] = {"batch", "batch_size", "N", "B", "n", "seq", "seq_len",
                                     "sequence", "T", "time", "length"};
  oc_compile_options_t o;
  oc_compile_options_init(&o);
  /* Budgets that keep one input under the 2 GB RSS and 10 s limits: a
   * training compile holds two entries' folded constants, then the
   * serialized plan and the runtime's copy of it. */
  o.max_memory_bytes = (uint64_t)256 << 20;
  o.max_fold_bytes = (uint64_t)128 << 20;
  o.max_fold_cost = (uint64_t)1 << 28;
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
    o.dim_names[o.n_dims] = dims[i];
    o.dim_values[o.n_dims++] = 2;
  }
  compile_one(model, n, &o);

  if (flags & 1) {
    o.train.enabled = 1;
    o.train.optimizer = (oc_optimizer_kind_t)((flags >> 1) & 3);
    if (flags & 8) {
      o.train.momentum = 0.9f;
      o.train.nesterov = 1;
      o.train.weight_decay = 1e-4f;
    }
    if (flags & 16) {
      o.train.schedule = OC_SCHEDULE_COSINE;
      o.train.warmup_steps = 2;
      o.train.total_steps = 10;
    }
    if (flags & 32) o.train.freeze[o.train.n_freeze++] = ".*weight.*";
    if (flags & 64) o.train.trainable[o.train.n_trainable++] = ".*(bias|running).*";
    compile_one(model, n, &o);
  }
  return 0;
}
