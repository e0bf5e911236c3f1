/*
 * Helper of tests/test_distributed.sh (public API only):
 *
 *   state_diff PLAN_A CKPT_A PLAN_B CKPT_B [TOL]
 *       Loads each checkpoint into a context of its plan and compares the
 *       float32 state tensors the two plans share by name (parameters,
 *       running statistics, optimizer state, last gradients). Per tensor
 *       the difference is max|a - b| / max(max|a|, 1e-30); prints the
 *       largest one and its tensor, and exits 1 when it is over TOL
 *       (default 1e-5) or the plans share no tensor or differ in a shared
 *       tensor's shape.
 *
 *   Exit status 2 on bad usage or a plan or checkpoint that does not load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc/onnxc.h"

static int open_state(const char *plan_path, const char *ckpt, oc_plan_t **plan, oc_context_t **ctx) {
  oc_status_t s = oc_plan_open_file(plan_path, NULL, plan);
  if (!s) s = oc_context_create(*plan, NULL, ctx);
  if (!s) s = oc_context_load_checkpoint(*ctx, ckpt);
  if (s) {
    fprintf(stderr, "state_diff: error: %s\n", oc_status_message(s));
    oc_status_free(s);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: state_diff PLAN_A CKPT_A PLAN_B CKPT_B [TOL]\n");
    return 2;
  }
  double tol = argc == 6 ? atof(argv[5]) : 1e-5;
  oc_plan_t *pa = NULL, *pb = NULL;
  oc_context_t *ca = NULL, *cb = NULL;
  int rc = 2;
  if (open_state(argv[1], argv[2], &pa, &ca) || open_state(argv[3], argv[4], &pb, &cb)) goto done;
  double worst = 0.0;
  const char *worst_name = "";
  int shared = 0;
  rc = 0;
  for (int i = 0; i < oc_plan_state_count(pa); i++) {
    oc_tensor_info_t ia, ib;
    if (oc_plan_state_info(pa, i, &ia) || ia.dtype != OC_DTYPE_FLOAT32) continue;
    int j = oc_plan_state_index(pb, ia.name);
    if (j < 0 || oc_plan_state_info(pb, j, &ib)) continue;
    void *da, *db;
    size_t na, nb;
    if (oc_context_state(ca, i, &da, &na) || oc_context_state(cb, j, &db, &nb)) continue;
    if (na != nb || ib.dtype != OC_DTYPE_FLOAT32) {
      printf("state_diff: '%s' has %zu bytes in A and %zu in B\n", ia.name, na, nb);
      rc = 1;
      continue;
    }
    shared++;
    const float *a = da, *b = db;
    double dmax = 0.0, amax = 0.0;
    for (size_t k = 0; k < na / sizeof(float); k++) {
      double d = fabs((double)a[k] - (double)b[k]);
      if (!(d <= dmax)) dmax = d; /* NaN wins */
      if (fabs((double)a[k]) > amax) amax = fabs((double)a[k]);
    }
    double rel = dmax / (amax > 1e-30 ? amax : 1e-30);
    if (!(rel <= worst)) {
      worst = rel;
      worst_name = ia.name;
    }
  }
  printf("state_diff: %d shared tensors, largest relative difference %.3e ('%s')\n", shared, worst,
         worst_name);
  if (!shared || !(worst <= tol)) rc = 1;
done:
  oc_context_release(ca);
  oc_context_release(cb);
  oc_plan_release(pa);
  oc_plan_release(pb);
  return rc;
}
