/*
 * GradCache (--micro-batch N) on tests/data/gradcache: a BatchNorm-free
 * SimCLR model (token-MLP + LayerNorm encoder on two views, NT-Xent with a
 * learnable temperature, batch 64) made by make_gradcache.py.
 *   exact:   with N = 32, 16 and 8 one SGD step gives the full-batch loss and
 *            every grad:<param> within 1e-5 (max |difference| / max |full|),
 *            and the next steps' losses agree; the same for the reference
 *            case a1_mlp_triplet (three inputs, a per-example loss) at N = 4;
 *   pytorch: the full-batch and N = 8 gradients match PyTorch's;
 *   memory:  the train step's arena falls at least 3x with N = 8;
 *   cut:     naming the automatic cut with --cut changes nothing, earlier
 *            cuts are exact too; bad cuts, an indivisible batch and Dropout
 *            in an encoder are errors, BatchNorm a warning.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "tensor_file.h"

#define DIR ONNXC_TEST_DATA "/gradcache"
#define MODEL DIR "/model.onnx"
#define DATA DIR "/test_data_set_0"
#define TRIPLET ONNXC_TEST_DATA "/reference/a1_mlp_triplet"

static const char *const params[] = {"w1", "b1", "ln1.weight", "ln1.bias", "w2", "b2", "ln2.weight",
                                     "ln2.bias", "w3", "b3", "w4", "b4", "logit_scale"};
#define N_PARAMS ((int)(sizeof params / sizeof params[0]))
#define N_STEPS 3

#define MAX_GRADS 64

/* What one compile and a few SGD steps give. */
typedef struct result_s {
  uint64_t arena_bytes; /* the train step's */
  float loss[N_STEPS];  /* before each step */
  int n_grads;          /* every grad:<param> after step 1 */
  char *grad_name[MAX_GRADS];
  float *grad[MAX_GRADS];
  size_t grad_n[MAX_GRADS];
} result_t;

static void result_free(result_t *r) {
  for (int k = 0; k < r->n_grads; k++) {
    free(r->grad_name[k]);
    free(r->grad[k]);
  }
}

/* The gradient of |param| in |r|. */
static const float *grad_of(const result_t *r, const char *param, size_t *n) {
  for (int k = 0; k < r->n_grads; k++)
    if (!strcmp(r->grad_name[k] + 5, param)) {
      *n = r->grad_n[k];
      return r->grad[k];
    }
  ck_abort_msg("no state grad:%s", param);
  return NULL;
}

static oc_host_tensor_t load(const char *path) {
  oc_host_tensor_t t;
  oc_status_t s = oc_tensor_file_read(path, &t);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  return t;
}

static void options(oc_compile_options_t *o, int64_t micro) {
  oc_compile_options_init(o);
  o->train.enabled = 1;
  o->train.lr = 0.05f;
  o->train.momentum = 0.9f;
  o->train.weight_decay = 1e-4f;
  o->train.micro_batch = micro;
}

static oc_status_t compile(const char *model, const oc_compile_options_t *o, oc_compiled_t **out) {
  return oc_compile_file(model, o, out);
}

/* Compiles |dir|/model.onnx and runs N_STEPS steps on its
 * test_data_set_0/input_K.pb. */
static result_t train_model(const char *dir, const oc_compile_options_t *o) {
  result_t r;
  memset(&r, 0, sizeof r);
  oc_compiled_t *c = NULL;
  char path[300];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  oc_status_t s = compile(path, o, &c);
  ck_assert_msg(s == OC_OK, "micro-batch %lld: %s", (long long)o->train.micro_batch,
                oc_status_message(s));
  ck_assert_str_eq(c->entries[0].name, "train_step");
  ck_assert_ptr_null(c->warnings);
  r.arena_bytes = c->entries[0].arena_bytes;
  uint8_t *bytes;
  size_t n;
  ck_assert(oc_plan_serialize(c, &bytes, &n) == OC_OK);
  oc_compiled_free(c);
  oc_plan_t *plan;
  s = oc_plan_open_memory(bytes, n, NULL, &plan);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  free(bytes);
  int entry;
  ck_assert(oc_plan_find_entry(plan, "train_step", &entry) == OC_OK);
  oc_context_t *ctx;
  ck_assert(oc_context_create(plan, NULL, &ctx) == OC_OK);
  for (int k = 0;; k++) {
    snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, k);
    FILE *f = fopen(path, "rb");
    if (!f) break;
    fclose(f);
    oc_host_tensor_t t = load(path);
    int idx = oc_plan_input_index(plan, entry, t.name);
    ck_assert_int_ge(idx, 0);
    ck_assert(oc_context_set_input(ctx, entry, idx, t.data, t.bytes) == OC_OK);
    oc_host_tensor_free(&t);
  }
  for (int step = 0; step < N_STEPS; step++) {
    s = oc_context_run(ctx, entry);
    ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
    const void *out;
    ck_assert(oc_context_output(ctx, entry, 0, &out, &n) == OC_OK);
    ck_assert_uint_eq(n, 4);
    memcpy(&r.loss[step], out, 4);
    for (int k = 0; k < oc_plan_state_count(plan) && step == 0; k++) {
      oc_tensor_info_t info;
      ck_assert(oc_plan_state_info(plan, k, &info) == OC_OK);
      if (strncmp(info.name, "grad:", 5)) continue;
      ck_assert_int_lt(r.n_grads, MAX_GRADS);
      void *g;
      ck_assert(oc_context_state(ctx, k, &g, &n) == OC_OK);
      r.grad_name[r.n_grads] = strdup(info.name);
      r.grad[r.n_grads] = malloc(n);
      memcpy(r.grad[r.n_grads], g, n);
      r.grad_n[r.n_grads++] = n / 4;
    }
  }
  oc_context_release(ctx);
  oc_plan_release(plan);
  return r;
}

static result_t train(const oc_compile_options_t *o) { return train_model(DIR, o); }

/* max |a - b| / max |b| */
static double rel_to_max(const float *a, const float *b, size_t n) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(fabs((double)a[i] - b[i]) <= err)) err = fabs((double)a[i] - b[i]);
    if (fabs(b[i]) > ref) ref = fabs(b[i]);
  }
  return ref > 0 ? err / ref : err;
}

static double max_abs(const float *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(a[i]) > m) m = fabs(a[i]);
  return m;
}

/* Every gradient and loss of |gc| within 1e-5 of |full|'s: per gradient,
 * max |difference| <= 1e-5 * max |full|. A gradient that is zero but for
 * rounding (a bias that cancels in a difference of embeddings) is held to
 * 1e-6 of the step's largest gradient entry instead. */
static void expect_same(const result_t *gc, const result_t *full, const char *what) {
  ck_assert_int_eq(gc->n_grads, full->n_grads);
  ck_assert_int_gt(full->n_grads, 0);
  double largest = 0;
  for (int k = 0; k < full->n_grads; k++) {
    double m = max_abs(full->grad[k], full->grad_n[k]);
    if (m > largest) largest = m;
  }
  double worst = 0;
  const char *worst_name = "";
  for (int k = 0; k < full->n_grads; k++) {
    size_t n;
    const float *g = grad_of(gc, full->grad_name[k] + 5, &n);
    ck_assert_uint_eq(n, full->grad_n[k]);
    double e = rel_to_max(g, full->grad[k], n);
    double diff = e * max_abs(full->grad[k], n);
    if (e > 1e-5 && diff <= 1e-6 * largest) {
      printf("%s: %s is rounding noise (max %.3g, %.3g of the largest gradient entry); "
             "difference %.3g\n", what, full->grad_name[k], max_abs(full->grad[k], n),
             max_abs(full->grad[k], n) / largest, diff);
      continue;
    }
    ck_assert_msg(e <= 1e-5, "%s: %s differs by %.3g of its largest entry", what,
                  full->grad_name[k], e);
    if (e >= worst) {
      worst = e;
      worst_name = full->grad_name[k];
    }
  }
  printf("%s: %d gradients, worst error %.3g of the largest entry (%s)\n", what, full->n_grads,
         worst, worst_name);
  for (int step = 0; step < N_STEPS; step++) {
    double e = fabs((double)gc->loss[step] - full->loss[step]) / fabs(full->loss[step]);
    printf("%s: loss %d %.9g, full batch %.9g, relative error %.3g\n", what, step, gc->loss[step],
           full->loss[step], e);
    ck_assert_msg(e <= 1e-5, "%s: loss %d: %.9g vs %.9g", what, step, gc->loss[step],
                  full->loss[step]);
  }
}

static const int64_t micro_batches[] = {32, 16, 8};

START_TEST(exact) {
  oc_compile_options_t o;
  options(&o, 0);
  result_t full = train(&o);
  options(&o, micro_batches[_i]);
  result_t gc = train(&o);
  char what[64];
  snprintf(what, sizeof what, "micro-batch %lld", (long long)micro_batches[_i]);
  expect_same(&gc, &full, what);
  result_free(&full);
  result_free(&gc);
}
END_TEST

START_TEST(exact_triplet) {
  oc_compile_options_t o;
  options(&o, 0);
  result_t full = train_model(TRIPLET, &o);
  options(&o, 4);
  result_t gc = train_model(TRIPLET, &o);
  expect_same(&gc, &full, "a1_mlp_triplet, micro-batch 4");
  result_free(&full);
  result_free(&gc);
}
END_TEST

/* PyTorch's float32 gradients differ from ours by summation order only. */
START_TEST(matches_pytorch) {
  int64_t micro = _i == 0 ? 0 : 8;
  oc_compile_options_t o;
  options(&o, micro);
  result_t r = train(&o);
  oc_host_tensor_t loss = load(DATA "/output_0.pb");
  double e = fabs((double)r.loss[0] - *(float *)loss.data) / fabs(*(float *)loss.data);
  printf("micro-batch %lld: loss %.9g, PyTorch %.9g (relative error %.3g)\n", (long long)micro,
         r.loss[0], *(float *)loss.data, e);
  ck_assert_msg(e <= 1e-5, "loss %.9g vs PyTorch %.9g", r.loss[0], *(float *)loss.data);
  oc_host_tensor_free(&loss);
  double worst = 0;
  ck_assert_int_eq(r.n_grads, N_PARAMS);
  for (int k = 0; k < N_PARAMS; k++) {
    char path[300];
    snprintf(path, sizeof path, DATA "/gradients/%s.pb", params[k]);
    oc_host_tensor_t ref = load(path);
    size_t n;
    const float *mine = grad_of(&r, params[k], &n);
    ck_assert_uint_eq(ref.bytes / 4, n);
    double g = rel_to_max(mine, ref.data, n);
    ck_assert_msg(g <= 1e-4, "grad:%s differs from PyTorch's by %.3g of its largest entry",
                  params[k], g);
    if (g > worst) worst = g;
    oc_host_tensor_free(&ref);
  }
  printf("micro-batch %lld: gradients within %.3g of PyTorch's (relative to the largest entry)\n",
         (long long)micro, worst);
  result_free(&r);
}
END_TEST

static uint64_t arena(int64_t micro) {
  oc_compile_options_t o;
  options(&o, micro);
  oc_compiled_t *c = NULL;
  oc_status_t s = compile(MODEL, &o, &c);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  uint64_t bytes = c->entries[0].arena_bytes;
  oc_compiled_free(c);
  return bytes;
}

START_TEST(arena_falls) {
  uint64_t full = arena(0), by[4] = {0};
  for (int k = 0; k < 3; k++) by[k] = arena(micro_batches[k]);
  printf("train_step arena: batch 64 %llu bytes; micro-batch 32 %llu, 16 %llu, 8 %llu (%.2fx less)\n",
         (unsigned long long)full, (unsigned long long)by[0], (unsigned long long)by[1],
         (unsigned long long)by[2], (double)full / (double)by[2]);
  ck_assert_msg(by[2] * 3 <= full, "micro-batch 8: arena %llu bytes, full batch %llu",
                (unsigned long long)by[2], (unsigned long long)full);
  ck_assert(by[0] < full && by[1] < by[0] && by[2] < by[1]);
  /* --micro-batch 64 is one chunk: the encoders run twice, nothing is saved. */
  ck_assert_uint_le(arena(64), full + full / 8);
}
END_TEST

/* The cut this model has: the projections of both views. */
static const char *const auto_cut[] = {"embedding", "/Add_7_output_0"};

START_TEST(named_cut) {
  oc_compile_options_t o;
  options(&o, 8);
  result_t a = train(&o);
  o.train.n_cut = 2;
  o.train.cut[0] = auto_cut[0];
  o.train.cut[1] = auto_cut[1];
  result_t b = train(&o);
  for (int step = 0; step < N_STEPS; step++) ck_assert_float_eq(a.loss[step], b.loss[step]);
  ck_assert_int_eq(a.n_grads, b.n_grads);
  for (int k = 0; k < a.n_grads; k++) {
    size_t n;
    const float *g = grad_of(&b, a.grad_name[k] + 5, &n);
    ck_assert_msg(!memcmp(a.grad[k], g, n * 4), "%s", a.grad_name[k]);
  }
  result_free(&a);
  result_free(&b);
  /* A cut earlier than the automatic one (before the projection head of
   * both views) is as exact: the head runs on the full batch. */
  o.train.cut[0] = "/ReduceMean_output_0";
  o.train.cut[1] = "/ReduceMean_1_output_0";
  result_t c = train(&o);
  options(&o, 0);
  result_t full = train(&o);
  expect_same(&c, &full, "cut before the projection heads");
  /* Only the first view's encoder in chunks: the second runs on the full
   * batch inside the head. */
  o.train.micro_batch = 8;
  o.train.n_cut = 1;
  o.train.cut[0] = auto_cut[0];
  result_t d = train(&o);
  expect_same(&d, &full, "cut after the first view's encoder only");
  result_free(&c);
  result_free(&d);
  result_free(&full);
}
END_TEST

static void expect_error(const oc_compile_options_t *o, const char *model, const char *needle) {
  oc_compiled_t *c = NULL;
  oc_status_t s = compile(model, o, &c);
  ck_assert_msg(s != OC_OK, "expected an error with '%s'", needle);
  ck_assert_ptr_null(c);
  printf("error: %s\n", oc_status_message(s));
  ck_assert_msg(strstr(oc_status_message(s), needle), "'%s' lacks '%s'", oc_status_message(s),
                needle);
  oc_status_free(s);
}

START_TEST(errors) {
  oc_compile_options_t o;
  options(&o, 7);
  expect_error(&o, MODEL, "--micro-batch 7: the batch (64 rows: axis 0 of graph input 'x1') is not a multiple of it");
  options(&o, 128);
  expect_error(&o, MODEL, "is not a multiple");
  options(&o, 8);
  o.train.n_cut = 1;
  o.train.cut[0] = "no_such_value";
  expect_error(&o, MODEL, "--cut no_such_value: the train step computes no value of that name");
  o.train.cut[0] = "x1";
  expect_error(&o, MODEL, "is a graph input");
  /* The normalized embeddings of both views, joined along the batch. */
  o.train.cut[0] = "/Div_output_0";
  expect_error(&o, MODEL, "not per-example");
  /* The first LayerNorm's mean: its input also feeds the subtraction. */
  o.train.cut[0] = "/ln1/ReduceMean_output_0";
  expect_error(&o, MODEL,
               "the cut does not separate the encoders from the loss head: node '/ln1/Sub' "
               "reads '/Add_output_0', which the encoder node '/Add' computes");
  /* Training-mode Dropout draws a new mask on each run: the two passes over
   * a chunk would disagree. A cut before it leaves it to the full batch. */
  options(&o, 4);
  expect_error(&o, DIR "/dropout.onnx",
               "node '/encoder/encoder.2/Dropout' (Dropout) in the encoder changes state each time "
               "it runs");
  o.train.n_cut = 2;
  o.train.cut[0] = "/encoder/encoder.1/Relu_output_0";
  o.train.cut[1] = "/encoder/encoder.1_1/Relu_output_0";
  oc_compiled_t *c = NULL;
  oc_status_t s = compile(DIR "/dropout.onnx", &o, &c);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  oc_compiled_free(c);
}
END_TEST

/* a2_simclr_smallcnn's encoder has training-mode BatchNorm: per-chunk
 * statistics, said in a warning; the step runs. */
START_TEST(batchnorm_warns) {
  oc_compile_options_t o;
  options(&o, 4);
  oc_compiled_t *c = NULL;
  oc_status_t s = compile(ONNXC_TEST_DATA "/reference/a2_simclr_smallcnn/model.onnx", &o, &c);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  ck_assert_ptr_nonnull(c->warnings);
  printf("warning: %s", c->warnings);
  ck_assert(strstr(c->warnings, "BatchNormalization") && strstr(c->warnings, "chunk's statistics"));
  oc_compiled_free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gradcache");
  TCase *te = tcase_create("exact");
  tcase_add_loop_test(te, exact, 0, (int)(sizeof micro_batches / sizeof micro_batches[0]));
  tcase_add_loop_test(te, matches_pytorch, 0, 2);
  tcase_add_test(te, exact_triplet);
  tcase_set_timeout(te, 300);
  suite_add_tcase(s, te);
  TCase *tm = tcase_create("memory");
  tcase_add_test(tm, arena_falls);
  tcase_set_timeout(tm, 300);
  suite_add_tcase(s, tm);
  TCase *tc = tcase_create("cut");
  tcase_add_test(tc, named_cut);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, batchnorm_warns);
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
