/*
 * Autodiff core: the driver's accumulation (a value used twice), broadcast
 * reduction, the Copy rule, and the train step's own ops.
 */
#include <check.h>

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

int main(void) {
  Suite *s = suite_create("grad_core");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, copy_grad);
  tcase_add_test(tc, harness_detects_wrong_gradient);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
