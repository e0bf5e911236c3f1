/*
 * Autodiff core: the finite-difference harness itself (it must catch a wrong
 * gradient), the Copy rule, and BatchNormalization in both modes (training
 * mode differentiates through the batch statistics, as PyTorch).
 */
#include <check.h>
#include <math.h>

#include "gradcheck.h"

static void ref_copy(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++) out[i] = in[0][i];
}

START_TEST(copy_grad) {
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)gc_uniform();
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 3, {2, 3, 4}, x, 1}};
  int64_t dims[2] = {6, 4};
  char msg[512];
  ck_assert_msg(gc_check(OC_OP_COPY, dims, 2, NULL, 0, in, 1, ref_copy, NULL, 1e-3, msg,
                         sizeof msg) == 0, "%s", msg);
}
END_TEST

/* The harness must notice a wrong gradient: check it against a reference
 * whose derivative differs (2x instead of x). */
static void ref_twice(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                      const oc_tensor_t *yt, const void *user) {
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++) out[i] = 2 * in[0][i];
}

START_TEST(harness_detects_wrong_gradient) {
  float x[6] = {1, 2, 3, 4, 5, 6};
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 1, {6}, x, 1}};
  int64_t dims[1] = {6};
  char msg[512];
  ck_assert_int_eq(gc_check(OC_OP_COPY, dims, 1, NULL, 0, in, 1, ref_twice, NULL, 1e-3, msg,
                            sizeof msg), 1);
  ck_assert(strstr(msg, "finite differences") != NULL);
}
END_TEST

/* BatchNormalization, double reference. ints[0] (mode) comes through |user|. */
static void ref_batchnorm(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                          const oc_tensor_t *yt, const void *user) {
  int training = *(const int *)user;
  int64_t N = yt->dims[0], C = yt->dims[1], S = 1;
  for (int i = 2; i < yt->rank; i++) S *= yt->dims[i];
  for (int64_t c = 0; c < C; c++) {
    double m = in[3][c], v = in[4][c];
    if (training) {
      double sum = 0, sq = 0;
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < S; i++) sum += in[0][(n * C + c) * S + i];
      m = sum / (double)(N * S);
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < S; i++) {
          double d = in[0][(n * C + c) * S + i] - m;
          sq += d * d;
        }
      v = sq / (double)(N * S);
    }
    double r = 1 / sqrt(v + 1e-5);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        int64_t k = (n * C + c) * S + i;
        out[k] = in[1][c] * (in[0][k] - m) * r + in[2][c];
      }
  }
}

START_TEST(batchnorm_grad) {
  /* (N, C, S) shapes: 4-D conv activations and 3-D BatchNorm1d input. */
  const int64_t shapes[2][4] = {{3, 2, 2, 3}, {4, 3, 5, 0}};
  const int ranks[2] = {4, 3};
  for (int mode = 0; mode < 2; mode++)
    for (int sh = 0; sh < 2; sh++) {
      int64_t n = 1;
      for (int d = 0; d < ranks[sh]; d++) n *= shapes[sh][d];
      int64_t C = shapes[sh][1];
      float x[64], scale[4], bias[4], mean[4], var[4];
      for (int64_t i = 0; i < n; i++) x[i] = (float)(2 * gc_uniform() + 0.3);
      for (int64_t c = 0; c < C; c++) {
        scale[c] = (float)(1 + 0.5 * gc_uniform());
        bias[c] = (float)gc_uniform();
        mean[c] = (float)(0.2 * gc_uniform());
        var[c] = (float)(1 + 0.5 * gc_uniform());
      }
      gc_input_t in[5] = {{OC_DTYPE_FLOAT32, ranks[sh], {0}, x, 1},
                          {OC_DTYPE_FLOAT32, 1, {C}, scale, 1},
                          {OC_DTYPE_FLOAT32, 1, {C}, bias, 1},
                          {OC_DTYPE_FLOAT32, 1, {C}, mean, 0},
                          {OC_DTYPE_FLOAT32, 1, {C}, var, 0}};
      for (int d = 0; d < ranks[sh]; d++) in[0].dims[d] = shapes[sh][d];
      int64_t ints_inf[1] = {0}, ints_train[2] = {1, 1};
      float floats_inf[1] = {1e-5f}, floats_train[2] = {1e-5f, 0.9f};
      char msg[512];
      int rc = mode ? gc_check(OC_OP_BATCHNORM, ints_train, 2, floats_train, 2, in, 5,
                               ref_batchnorm, &mode, 1e-3, msg, sizeof msg)
                    : gc_check(OC_OP_BATCHNORM, ints_inf, 1, floats_inf, 1, in, 5, ref_batchnorm,
                               &mode, 1e-3, msg, sizeof msg);
      ck_assert_msg(rc == 0, "mode %d shape %d: %s", mode, sh, msg);
    }
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_core");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, copy_grad);
  tcase_add_test(tc, harness_detects_wrong_gradient);
  tcase_add_test(tc, batchnorm_grad);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
