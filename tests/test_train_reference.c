/*
 * The PyTorch-exported training graphs (tests/data/reference/<case>/model.onnx):
 *   forward: compiled as they are, the plan reproduces PyTorch's loss (relative
 *            error <= 1e-5) and training-mode embedding (the case's tolerance);
 *   train:   compiled with --train, the trainable set equals meta.json's, the
 *            first step's gradients match the gradients/ files, and SGD(lr 0.05,
 *            momentum 0.9, weight decay 1e-4) logs the four losses of
 *            sgd_3steps.txt, within the tolerances in meta.json.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile.h"
#include "json.h"
#include "tensor_file.h"

#define REF ONNXC_TEST_DATA "/reference"

static const char *const cases[] = {"a1_mlp_triplet", "a2_simclr_smallcnn",
                                    "a2b_simclr_smallcnn_opset17", "a4_clip_dual", "a5_moco_v2",
                                    "a6_audio_cpc"};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static json_t *load_meta(const char *c) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/meta.json", REF, c);
  void *buf;
  size_t n;
  oc_status_t s = oc_file_read_all(path, &buf, &n);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  json_t *j = json_parse(buf, n);
  free(buf);
  ck_assert_msg(j != NULL, "%s does not parse", path);
  return j;
}

static oc_host_tensor_t load_tensor(const char *path) {
  oc_host_tensor_t t;
  oc_status_t s = oc_tensor_file_read(path, &t);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  return t;
}

static oc_plan_t *compile_case(const char *c, const oc_compile_options_t *o) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/model.onnx", REF, c);
  oc_compiled_t *comp = NULL;
  oc_status_t s = oc_compile_file(path, o, &comp);
  ck_assert_msg(s == OC_OK, "%s: %s", c, oc_status_message(s));
  uint8_t *bytes;
  size_t n;
  s = oc_plan_serialize(comp, &bytes, &n);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  oc_compiled_free(comp);
  oc_plan_t *plan = NULL;
  s = oc_plan_open_memory(bytes, n, NULL, &plan);
  ck_assert_msg(s == OC_OK, "%s: %s", c, oc_status_message(s));
  free(bytes);
  return plan;
}

/* Binds test_data_set_0/input_K.pb by name. */
static void bind_inputs(const char *c, oc_plan_t *plan, oc_context_t *ctx, int entry) {
  for (int k = 0;; k++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", REF, c, k);
    FILE *f = fopen(path, "rb");
    if (!f) break;
    fclose(f);
    oc_host_tensor_t t = load_tensor(path);
    int idx = oc_plan_input_index(plan, entry, t.name);
    if (idx >= 0) {
      oc_status_t s = oc_context_set_input(ctx, entry, idx, t.data, t.bytes);
      ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
    }
    oc_host_tensor_free(&t);
  }
}

static float read_loss(oc_context_t *ctx, int entry) {
  const void *out;
  size_t bytes;
  oc_status_t s = oc_context_output(ctx, entry, 0, &out, &bytes);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  ck_assert_uint_eq(bytes, 4);
  float v;
  memcpy(&v, out, 4);
  return v;
}

START_TEST(forward_matches_pytorch) {
  const char *c = cases[_i];
  json_t *meta = load_meta(c);
  oc_plan_t *plan = compile_case(c, NULL);
  oc_context_t *ctx;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  bind_inputs(c, plan, ctx, 0);
  oc_status_t s = oc_context_run(ctx, 0);
  ck_assert_msg(s == OC_OK, "%s: %s", c, oc_status_message(s));
  char path[512];
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_0.pb", REF, c);
  oc_host_tensor_t ref = load_tensor(path);
  float loss = read_loss(ctx, 0), want = *(float *)ref.data;
  double rel = fabs((double)loss - want) / fabs(want);
  printf("%s forward: loss %.9g, PyTorch %.9g, relative error %.2g\n", c, loss, want, rel);
  ck_assert_msg(rel <= 1e-5, "%s: loss %.9g vs %.9g (relative error %.3g)", c, loss, want, rel);
  oc_host_tensor_free(&ref);
  /* The other output: the training-mode embedding. */
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_1.pb", REF, c);
  ref = load_tensor(path);
  int idx = oc_plan_output_index(plan, 0, ref.name);
  ck_assert_int_ge(idx, 0);
  const void *out;
  size_t bytes;
  ck_assert(oc_context_output(ctx, 0, idx, &out, &bytes) == OC_OK);
  ck_assert_uint_eq(bytes, ref.bytes);
  json_t *tol = json_get(json_get(meta, "tolerances"), "embedding");
  double atol = json_num(json_get(tol, "atol"), 1e-5), rtol = json_num(json_get(tol, "rtol"), 1e-4);
  double worst = 0;
  for (size_t i = 0; i < bytes / 4; i++) {
    double y = ((const float *)out)[i], r = ((const float *)ref.data)[i];
    double excess = fabs(y - r) / (atol + rtol * fabs(r));
    if (excess > worst) worst = excess;
  }
  printf("%s forward: embedding within %.3g of its tolerance\n", c, worst);
  ck_assert_msg(worst <= 1.0, "%s: embedding differs (%.3g x the tolerance)", c, worst);
  oc_host_tensor_free(&ref);
  oc_context_release(ctx);
  oc_plan_release(plan);
  json_free(meta);
}
END_TEST

static void sgd_options(oc_compile_options_t *o, const char *c) {
  oc_compile_options_init(o);
  o->train.enabled = 1;
  o->train.optimizer = OC_OPTIMIZER_SGD;
  o->train.lr = 0.05f;
  o->train.momentum = 0.9f;
  o->train.weight_decay = 1e-4f;
  if (!strcmp(c, "a5_moco_v2")) {
    o->train.freeze[0] = "encoder_k\\..*";
    o->train.n_freeze = 1;
  }
}

static int json_list_has(const json_t *list, const char *name) {
  for (int i = 0; list && i < list->n; i++)
    if (list->items[i]->kind == J_STR && !strcmp(list->items[i]->str, name)) return 1;
  return 0;
}

START_TEST(train_matches_pytorch) {
  const char *c = cases[_i];
  json_t *meta = load_meta(c);
  oc_compile_options_t o;
  sgd_options(&o, c);
  oc_plan_t *plan = compile_case(c, &o);
  int train;
  ck_assert(oc_plan_find_entry(plan, "train_step", &train) == OC_OK);

  /* The trainable set is PyTorch's. */
  json_t *trainable = json_get(meta, "trainable_initializers");
  int n_grads = 0;
  for (int i = 0; i < oc_plan_state_count(plan); i++) {
    oc_tensor_info_t info;
    ck_assert(oc_plan_state_info(plan, i, &info) == OC_OK);
    if (strncmp(info.name, "grad:", 5)) continue;
    ck_assert_msg(json_list_has(trainable, info.name + 5), "%s: '%s' trains but PyTorch's does not",
                  c, info.name + 5);
    n_grads++;
  }
  ck_assert_msg(n_grads == trainable->n, "%s: %d trained, PyTorch trains %d", c, n_grads,
                trainable->n);

  oc_context_t *ctx;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  bind_inputs(c, plan, ctx, train);
  oc_status_t s = oc_context_run(ctx, train);
  ck_assert_msg(s == OC_OK, "%s: %s", c, oc_status_message(s));
  float losses[4];
  losses[0] = read_loss(ctx, train);

  /* First-step gradients. */
  json_t *gt = json_get(json_get(meta, "tolerances"), "gradients");
  double rel_to_max = json_num(json_get(gt, "rel_to_max"), 1e-3);
  double abs_floor = json_num(json_get(gt, "abs_floor"), 0);
  json_t *zero = json_get(meta, "structurally_zero_gradients");
  double worst = 0;
  const char *worst_name = "";
  for (int t = 0; t < trainable->n; t++) {
    const char *name = trainable->items[t]->str;
    char path[700], gname[600];
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/gradients/%s.pb", REF, c, name);
    oc_host_tensor_t ref = load_tensor(path);
    snprintf(gname, sizeof gname, "grad:%s", name);
    int idx = oc_plan_state_index(plan, gname);
    ck_assert_int_ge(idx, 0);
    void *g;
    size_t bytes;
    ck_assert(oc_context_state(ctx, idx, &g, &bytes) == OC_OK);
    ck_assert_uint_eq(bytes, ref.bytes);
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < bytes / 4; i++) {
      double r = ((float *)ref.data)[i], v = ((float *)g)[i];
      if (fabs(r) > max_ref) max_ref = fabs(r);
      if (!(fabs(v - r) <= max_err)) max_err = fabs(v - r);
    }
    double bound = (json_list_has(zero, name) ? 0 : rel_to_max * max_ref) + abs_floor;
    ck_assert_msg(max_err <= bound, "%s: gradient of '%s': max error %.3g > bound %.3g (max |ref| %.3g)",
                  c, name, max_err, bound, max_ref);
    if (max_err / bound > worst) {
      worst = max_err / bound;
      worst_name = name;
    }
    oc_host_tensor_free(&ref);
  }
  printf("%s train: %d gradients match; worst at %.3g of its bound ('%s')\n", c, trainable->n,
         worst, worst_name);

  /* SGD trajectory: losses before each of three updates, and after the third. */
  for (int k = 1; k < 4; k++) {
    s = oc_context_run(ctx, train);
    ck_assert_msg(s == OC_OK, "%s: step %d: %s", c, k + 1, oc_status_message(s));
    losses[k] = read_loss(ctx, train);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/sgd_3steps.txt", REF, c);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  json_t *st = json_get(json_get(meta, "tolerances"), "sgd_losses");
  json_t *per_line = json_get(st, "rtol_per_line");
  double atol = json_num(json_get(st, "atol"), 1e-6);
  for (int k = 0; k < 4; k++) {
    double want;
    ck_assert_int_eq(fscanf(f, "%lf", &want), 1);
    double rtol = per_line && per_line->n > k ? json_num(per_line->items[k], 2e-4)
                                              : json_num(json_get(st, "rtol"), 2e-4);
    printf("%s train: loss %d = %.9e, PyTorch %.9e\n", c, k, losses[k], want);
    ck_assert_msg(fabs(losses[k] - want) <= atol + rtol * fabs(want),
                  "%s: loss after %d SGD steps is %.9g, PyTorch's %.9g", c, k, losses[k], want);
  }
  fclose(f);
  int64_t steps;
  ck_assert(oc_context_step_count(ctx, &steps) == OC_OK);
  ck_assert_int_eq(steps, 4);
  oc_context_release(ctx);
  oc_plan_release(plan);
  json_free(meta);
}
END_TEST

/* Adam, AdamW and LARS against PyTorch (tests/data/optimizers, made by
 * make_optimizer_refs.py with the same hyper-parameters). */
static const struct {
  const char *file;
  oc_optimizer_kind_t kind;
  float lr, weight_decay, momentum;
} optimizers[] = {
    {"a1_adam.txt", OC_OPTIMIZER_ADAM, 1e-3f, 1e-4f, 0},
    {"a1_adamw.txt", OC_OPTIMIZER_ADAMW, 1e-3f, 1e-2f, 0},
    {"a1_lars.txt", OC_OPTIMIZER_LARS, 0.1f, 1e-4f, 0.9f},
};

START_TEST(optimizer_matches_pytorch) {
  oc_compile_options_t o;
  oc_compile_options_init(&o);
  o.train.enabled = 1;
  o.train.optimizer = optimizers[_i].kind;
  o.train.lr = optimizers[_i].lr;
  o.train.weight_decay = optimizers[_i].weight_decay;
  o.train.momentum = optimizers[_i].momentum;
  o.train.trust_coefficient = 0.001f;
  oc_plan_t *plan = compile_case("a1_mlp_triplet", &o);
  int train;
  ck_assert(oc_plan_find_entry(plan, "train_step", &train) == OC_OK);
  oc_context_t *ctx;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  bind_inputs("a1_mlp_triplet", plan, ctx, train);
  char path[512];
  snprintf(path, sizeof path, "%s/optimizers/%s", ONNXC_TEST_DATA, optimizers[_i].file);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  for (int k = 0; k < 5; k++) {
    oc_status_t s = oc_context_run(ctx, train);
    ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
    double want;
    ck_assert_int_eq(fscanf(f, "%lf", &want), 1);
    float got = read_loss(ctx, train);
    printf("%s step %d: loss %.9e, PyTorch %.9e\n", optimizers[_i].file, k, got, want);
    ck_assert_msg(fabs(got - want) <= 1e-6 + 2e-4 * fabs(want), "%s step %d: %.9g vs %.9g",
                  optimizers[_i].file, k, got, want);
  }
  fclose(f);
  oc_context_release(ctx);
  oc_plan_release(plan);
}
END_TEST

/* MoCo's momentum encoder (--ema, m = 0.999) reproduces sgd_3steps_ema.txt. */
START_TEST(moco_ema_matches_pytorch) {
  const char *c = "a5_moco_v2";
  json_t *meta = load_meta(c);
  oc_compile_options_t o;
  sgd_options(&o, c);
  o.train.n_freeze = 0; /* --ema freezes the key encoder itself */
  o.train.ema_dst[0] = "encoder_k.";
  o.train.ema_src[0] = "encoder_q.";
  o.train.ema_m[0] = 0.999f;
  o.train.n_ema = 1;
  oc_plan_t *plan = compile_case(c, &o);
  int train;
  ck_assert(oc_plan_find_entry(plan, "train_step", &train) == OC_OK);
  ck_assert_int_lt(oc_plan_state_index(plan, "grad:encoder_k.0.features.0.weight"), 0);
  oc_context_t *ctx;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  bind_inputs(c, plan, ctx, train);
  char path[512];
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/sgd_3steps_ema.txt", REF, c);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  json_t *st = json_get(json_get(meta, "tolerances"), "sgd_losses");
  for (int k = 0; k < 4; k++) {
    ck_assert(oc_context_run(ctx, train) == OC_OK);
    double want;
    ck_assert_int_eq(fscanf(f, "%lf", &want), 1);
    float got = read_loss(ctx, train);
    printf("%s ema: loss %d = %.9e, PyTorch %.9e\n", c, k, got, want);
    ck_assert_msg(fabs(got - want) <= json_num(json_get(st, "atol"), 1e-6) +
                                          json_num(json_get(st, "rtol"), 2e-4) * fabs(want),
                  "loss %d: %.9g vs %.9g", k, got, want);
  }
  fclose(f);
  oc_context_release(ctx);
  oc_plan_release(plan);
  json_free(meta);
}
END_TEST

/* Compares state tensor |name| with the tensor file |path| within rel 1e-4. */
static void expect_state(oc_plan_t *plan, oc_context_t *ctx, const char *name, const char *path) {
  oc_host_tensor_t ref = load_tensor(path);
  int idx = oc_plan_state_index(plan, name);
  ck_assert_msg(idx >= 0, "no state '%s'", name);
  void *p;
  size_t bytes;
  ck_assert(oc_context_state(ctx, idx, &p, &bytes) == OC_OK);
  ck_assert_uint_eq(bytes, ref.bytes);
  double max_ref = 0, max_err = 0;
  for (size_t i = 0; i < bytes / 4; i++) {
    double r = ((float *)ref.data)[i], v = ((float *)p)[i];
    if (fabs(r) > max_ref) max_ref = fabs(r);
    if (!(fabs(v - r) <= max_err)) max_err = fabs(v - r);
  }
  ck_assert_msg(max_err <= 1e-4 * max_ref + 1e-7, "'%s': max error %.3g (max |ref| %.3g)", name,
                max_err, max_ref);
  oc_host_tensor_free(&ref);
}

/* Full MoCo (--ema m = 0.99 and --queue) against PyTorch (tests/data/moco):
 * losses, queue and key encoder after 3 steps; and a checkpoint after step 2,
 * resumed in a fresh context, gives a bit-identical step 3. */
START_TEST(moco_full_matches_pytorch) {
  const char *c = "a5_moco_v2";
  oc_compile_options_t o;
  sgd_options(&o, c);
  o.train.n_freeze = 0;
  o.train.ema_dst[0] = "encoder_k.";
  o.train.ema_src[0] = "encoder_q.";
  o.train.ema_m[0] = 0.99f;
  o.train.n_ema = 1;
  o.train.queue_input[0] = "queue";
  o.train.queue_value[0] = "/Div_1_output_0"; /* the normalized keys, [8, 32] */
  o.train.queue_axis[0] = 1;
  o.train.n_queue = 1;
  oc_plan_t *plan = compile_case(c, &o);
  int train;
  ck_assert(oc_plan_find_entry(plan, "train_step", &train) == OC_OK);
  ck_assert_int_lt(oc_plan_input_index(plan, train, "queue"), 0); /* state now */
  oc_context_t *ctx, *resumed;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  ck_assert(oc_context_create(plan, NULL, &resumed) == OC_OK);
  char path[600];
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_2.pb", REF, c);
  oc_host_tensor_t q0 = load_tensor(path);
  void *qs;
  size_t qbytes;
  ck_assert(oc_context_state(ctx, oc_plan_state_index(plan, "queue"), &qs, &qbytes) == OC_OK);
  ck_assert_uint_eq(qbytes, q0.bytes);
  memcpy(qs, q0.data, qbytes);
  oc_host_tensor_free(&q0);
  bind_inputs(c, plan, ctx, train);
  bind_inputs(c, plan, resumed, train);
  snprintf(path, sizeof path, "%s/moco/losses.txt", ONNXC_TEST_DATA);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char ckpt[] = "/tmp/onnxc-moco-XXXXXX";
  int fd = mkstemp(ckpt);
  ck_assert_int_ge(fd, 0);
  close(fd);
  for (int k = 0; k < 4; k++) {
    ck_assert(oc_context_run(ctx, train) == OC_OK);
    double want;
    ck_assert_int_eq(fscanf(f, "%lf", &want), 1);
    float got = read_loss(ctx, train);
    printf("moco: loss %d = %.9e, PyTorch %.9e\n", k, got, want);
    ck_assert_msg(fabs(got - want) <= 1e-4 * fabs(want), "loss %d: %.9g vs %.9g", k, got, want);
    if (k == 1) ck_assert(oc_context_save_checkpoint(ctx, ckpt) == OC_OK);
    if (k == 2) {
      /* After 3 updates: the queue and the key encoder. */
      snprintf(path, sizeof path, "%s/moco/queue.pb", ONNXC_TEST_DATA);
      expect_state(plan, ctx, "queue", path);
      json_t *meta = load_meta(c);
      for (int t = 0; t < oc_plan_state_count(plan); t++) {
        oc_tensor_info_t info;
        ck_assert(oc_plan_state_info(plan, t, &info) == OC_OK);
        if (strncmp(info.name, "encoder_k.", 10)) continue;
        snprintf(path, sizeof path, "%s/moco/key/%s.pb", ONNXC_TEST_DATA, info.name);
        expect_state(plan, ctx, info.name, path);
      }
      json_free(meta);
      /* Resume from the step-2 checkpoint: step 3 gives the same state bits. */
      ck_assert(oc_context_load_checkpoint(resumed, ckpt) == OC_OK);
      ck_assert(oc_context_run(resumed, train) == OC_OK);
      for (int t = 0; t < oc_plan_state_count(plan); t++) {
        void *a, *b;
        size_t na, nb;
        ck_assert(oc_context_state(ctx, t, &a, &na) == OC_OK);
        ck_assert(oc_context_state(resumed, t, &b, &nb) == OC_OK);
        oc_tensor_info_t info;
        oc_plan_state_info(plan, t, &info);
        ck_assert_msg(na == nb && memcmp(a, b, na) == 0, "state '%s' differs after resuming",
                      info.name);
      }
    }
  }
  fclose(f);
  unlink(ckpt);
  oc_context_release(resumed);
  oc_context_release(ctx);
  oc_plan_release(plan);
}
END_TEST

/* --clamp keeps CLIP's learnable logit scale within its bound after every
 * step (here a bound below its start, so the clamp must act). */
START_TEST(clip_clamp_holds) {
  oc_compile_options_t o;
  sgd_options(&o, "a4_clip_dual");
  o.train.clamp_name[0] = "logit_scale";
  o.train.clamp_min[0] = 0.0f;
  o.train.clamp_max[0] = 2.5f;
  o.train.n_clamp = 1;
  oc_plan_t *plan = compile_case("a4_clip_dual", &o);
  int train;
  ck_assert(oc_plan_find_entry(plan, "train_step", &train) == OC_OK);
  oc_context_t *ctx;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  bind_inputs("a4_clip_dual", plan, ctx, train);
  void *p;
  ck_assert(oc_context_state(ctx, oc_plan_state_index(plan, "logit_scale"), &p, NULL) == OC_OK);
  ck_assert_float_gt(*(float *)p, 2.5f); /* log(1/0.07) = 2.66 */
  for (int k = 0; k < 5; k++) {
    ck_assert(oc_context_run(ctx, train) == OC_OK);
    printf("clip clamp: step %d logit_scale %.6f\n", k + 1, *(float *)p);
    ck_assert_float_le(*(float *)p, 2.5f);
  }
  oc_context_release(ctx);
  oc_plan_release(plan);
}
END_TEST

/* The allocator hook of no_allocation_in_steady_state: counts calls. */
static int n_allocs, n_frees;
static void *count_alloc(void *self, size_t bytes, size_t alignment) {
  (void)self;
  n_allocs++;
  return aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
}
static void count_free(void *self, void *p) {
  (void)self;
  n_frees++;
  free(p);
}

/* Every region is allocated in oc_context_create: 100 train steps (Adam for
 * one case, so that its moments are state too) and 100 embed calls, in
 * turns, call the context's allocator not once. lr 1e-3: at the reference's
 * 0.05, 100 steps on one batch diverge for a6. */
START_TEST(no_allocation_in_steady_state) {
  const char *c = cases[_i];
  oc_compile_options_t o;
  sgd_options(&o, c);
  o.train.lr = 1e-3f;
  if (!strcmp(c, "a2_simclr_smallcnn")) o.train.optimizer = OC_OPTIMIZER_ADAM;
  oc_plan_t *plan = compile_case(c, &o);
  int train, embed;
  ck_assert(oc_plan_find_entry(plan, "train_step", &train) == OC_OK);
  ck_assert(oc_plan_find_entry(plan, "embed", &embed) == OC_OK);
  oc_context_options_t co;
  oc_context_options_init(&co);
  co.allocator = (oc_allocator_t){NULL, count_alloc, count_free};
  n_allocs = n_frees = 0;
  oc_context_t *ctx;
  oc_status_t s = oc_context_create(plan, &co, &ctx);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  int after_create = n_allocs;
  ck_assert_int_gt(after_create, 0); /* the hook is the one in use */
  s = oc_context_run(ctx, embed);
  ck_assert_msg(s != OC_OK && strstr(oc_status_message(s), "is not set"),
                "%s: embed ran without its inputs", c);
  oc_status_free(s);
  for (int k = 0; k < 100; k++) {
    /* The entry points share the arena: each one's inputs are set again
     * after the other ran (a run without that is refused, below). */
    bind_inputs(c, plan, ctx, train);
    s = oc_context_run(ctx, train);
    ck_assert_msg(s == OC_OK, "%s step %d: %s", c, k, oc_status_message(s));
    bind_inputs(c, plan, ctx, embed);
    s = oc_context_run(ctx, embed);
    ck_assert_msg(s == OC_OK, "%s embed %d: %s", c, k, oc_status_message(s));
  }
  s = oc_context_run(ctx, train);
  ck_assert_msg(s != OC_OK && strstr(oc_status_message(s), "overwritten by running entry point"),
                "%s: train_step ran on inputs that embed overwrote", c);
  oc_status_free(s);
  printf("%s: %d allocations in oc_context_create, %d in 100 train steps and 100 embed calls\n",
         c, after_create, n_allocs - after_create);
  ck_assert_int_eq(n_allocs, after_create);
  ck_assert_int_eq(n_frees, 0);
  oc_context_release(ctx);
  ck_assert_int_eq(n_frees, n_allocs);
  oc_plan_release(plan);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train_reference");
  TCase *tf = tcase_create("forward");
  tcase_add_loop_test(tf, forward_matches_pytorch, 0, N_CASES);
  tcase_set_timeout(tf, 300);
  suite_add_tcase(s, tf);
  TCase *tt = tcase_create("train");
  tcase_add_loop_test(tt, train_matches_pytorch, 0, N_CASES);
  tcase_set_timeout(tt, 300);
  suite_add_tcase(s, tt);
  TCase *tm = tcase_create("contrastive");
  tcase_add_test(tm, moco_ema_matches_pytorch);
  tcase_add_test(tm, clip_clamp_holds);
  tcase_add_test(tm, moco_full_matches_pytorch);
  tcase_set_timeout(tm, 300);
  suite_add_tcase(s, tm);
  TCase *to = tcase_create("optimizers");
  tcase_add_loop_test(to, optimizer_matches_pytorch, 0,
                      (int)(sizeof optimizers / sizeof optimizers[0]));
  suite_add_tcase(s, to);
  TCase *ta = tcase_create("allocation");
  tcase_add_loop_test(ta, no_allocation_in_steady_state, 0, N_CASES);
  tcase_set_timeout(ta, 300);
  suite_add_tcase(s, ta);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
