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
#include "autodiff.h"
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

/* --- gradients ---------------------------------------------------------------- */

static oc_status_t grad_oom(void) {
  return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
}

/* MatMul: da = dy @ b^T, db = a^T @ dy, each summed over the batch axes its
 * operand was broadcast along. One MatMulBwd instruction per operand: a
 * cblas_sgemm with transpose flags per matrix (no transposed copies, no
 * broadcast intermediate to reduce), 1-D operands handled as in the forward. */
oc_status_t oc_grad_matmul(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_matmul(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK;
  for (int i = 0; i < 2; i++) {
    if (!oc_grad_wants(gc, i)) continue;
    const oc_tensor_t t = oc_grad_graph(gc)->values[fwd->in[i]].type;
    int64_t ints[1 + OC_MAX_RANK];
    ints[0] = i;
    for (int d = 0; d < t.rank; d++) ints[1 + d] = t.dims[d];
    int g = oc_grad_temp(gc, i ? "db" : "da");
    if (g < 0) return grad_oom();
    int in[2] = {dy[0], fwd->in[1 - i]};
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_MATMUL_BWD, 2, in, 1, &g, ints, 1 + t.rank, NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, i, g));
  }
  return OC_OK;
}

/* Gemm: y = alpha op(A) op(B) + beta C. Each operand's gradient is itself a
 * Gemm (alpha, no C) with the transposes chosen so that no operand is
 * copied:
 *   dA = alpha dy op(B)^T        (transA = 0, A is (M,K))
 *   dA = alpha op(B) dy^T        (transA = 1, A is (K,M))
 *   dB = alpha op(A)^T dy        (transB = 0, B is (K,N))
 *   dB = alpha dy^T op(A)        (transB = 1, B is (N,K))
 * dC = beta dy summed over the axes C was broadcast along (a Mul by beta
 * unless beta = 1; nothing when beta = 0). */
oc_status_t oc_grad_gemm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_gemm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK;
  int ta = (int)fwd->ints[0], tb = (int)fwd->ints[1];
  float alpha = fwd->floats[0], beta = fwd->floats[1];
  float fl[2] = {alpha, 0.0f};
  int A = fwd->in[0], B = fwd->in[1], Y = dy[0];
  if (oc_grad_wants(gc, 0)) {
    int in[2];
    int64_t ints[2];
    if (!ta) {
      in[0] = Y, in[1] = B, ints[0] = 0, ints[1] = !tb;
    } else {
      in[0] = B, in[1] = Y, ints[0] = tb, ints[1] = 1;
    }
    int g = oc_grad_temp(gc, "dA");
    if (g < 0) return grad_oom();
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_GEMM, 2, in, 1, &g, ints, 2, fl, 2));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 0, g));
  }
  if (oc_grad_wants(gc, 1)) {
    int in[2];
    int64_t ints[2];
    if (!tb) {
      in[0] = A, in[1] = Y, ints[0] = !ta, ints[1] = 0;
    } else {
      in[0] = Y, in[1] = A, ints[0] = 1, ints[1] = ta;
    }
    int g = oc_grad_temp(gc, "dB");
    if (g < 0) return grad_oom();
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_GEMM, 2, in, 1, &g, ints, 2, fl, 2));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 1, g));
  }
  if (fwd->n_in > 2 && fwd->in[2] >= 0 && oc_grad_wants(gc, 2) && beta != 0.0f) {
    int g = Y;
    if (beta != 1.0f) {
      int b = oc_grad_const(gc, "beta", 0, NULL, beta);
      g = oc_grad_temp(gc, "dC");
      if (b < 0 || g < 0) return grad_oom();
      int in[2] = {Y, b};
      OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_MUL, 2, in, 1, &g, NULL, 0, NULL, 0));
    }
    OC_RETURN_IF_ERROR(oc_grad_accumulate_unbroadcast(gc, 2, g));
  }
  return OC_OK;
}
