/*
 * MatMul and Gemm -> runtime/ops/matmul.c (OC_OP_MATMUL, OC_OP_GEMM).
 *
 * MatMul (opsets 1, 9, 13): numpy matmul, float32 only (integer MatMul is
 * refused; MatMulInteger is a different op).
 * Gemm (opsets 1-13): transA, transB, alpha, beta; C optional (required by
 * the spec before opset 11, accepted as absent anyway) and unidirectionally
 * broadcast to (M,N). Before opset 7 the `broadcast` attribute chose between
 * an exact-shape C and a broadcast one; a broadcast C is accepted either way.
 */
#include "lower.h"

static oc_status_t need_float_input(const oc_lower_t *lw, int i, const char *name) {
  const oc_tensor_t *t = oc_lower_input(lw, i);
  if (!t) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", name);
  if (t->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input '%s' has dtype %s; %s computes float32 only", name,
                          oc_dtype_name(t->dtype), lw->node->op_type);
  return OC_OK;
}

oc_status_t oc_lower_matmul(oc_lower_t *lw);
oc_status_t oc_lower_matmul(oc_lower_t *lw) {
  OC_RETURN_IF_ERROR(need_float_input(lw, 0, "A"));
  OC_RETURN_IF_ERROR(need_float_input(lw, 1, "B"));
  int in[2] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_MATMUL, 2, in, 1, out, NULL, 0, NULL, 0);
}

oc_status_t oc_lower_gemm(oc_lower_t *lw);
oc_status_t oc_lower_gemm(oc_lower_t *lw) {
  int64_t ints[2];
  float floats[2];
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "transA", 0, &ints[0]));
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "transB", 0, &ints[1]));
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "alpha", 1.0f, &floats[0]));
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "beta", 1.0f, &floats[1]));
  /* ONNX reads any non-zero trans value as true. */
  ints[0] = ints[0] != 0;
  ints[1] = ints[1] != 0;
  OC_RETURN_IF_ERROR(need_float_input(lw, 0, "A"));
  OC_RETURN_IF_ERROR(need_float_input(lw, 1, "B"));
  int n_in = 2;
  if (oc_lower_in(lw, 2) >= 0) {
    OC_RETURN_IF_ERROR(need_float_input(lw, 2, "C"));
    n_in = 3;
  }
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), oc_lower_in(lw, 2)};
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_GEMM, n_in, in, 1, out, ints, 2, floats, 2);
}
