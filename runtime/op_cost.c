/*
 * Work estimates of instructions (see op_cost.h).
 *
 * Most ops touch each input and output element a bounded number of times:
 * their estimate is the elements of the inputs plus those of the outputs
 * times the input count (a broadcast input is read once per output element).
 * The ops whose work per output element grows with a dimension or an
 * attribute get their own rule below: contractions (MatMul, Gemm and their
 * gradients: output elements x K), convolutions (elements x the filter's
 * taps per output channel), pooling (windows x kernel taps), linear Resize
 * (2^rank corners per output element) and TopK (a merge sort).
 */
#include "op_cost.h"

static uint64_t numel(const oc_tensor_t *t) { return t ? (uint64_t)oc_tensor_numel(t) : 0; }

/* The elements of |t| per index of its first axis: a filter's taps per
 * output (or input) channel. */
static uint64_t per_channel(const oc_tensor_t *t) {
  if (!t || t->rank < 1 || t->dims[0] == 0) return 0;
  return numel(t) / (uint64_t)t->dims[0];
}

static uint64_t elements(const oc_op_call_t *c) {
  uint64_t in = 0, out = 0;
  for (int i = 0; i < c->n_in; i++) in = oc_sat_add(in, numel(c->in[i]));
  for (int i = 0; i < c->n_out; i++) out = oc_sat_add(out, numel(c->out[i]));
  return oc_sat_add(in, oc_sat_mul(out, (uint64_t)(c->n_in > 1 ? c->n_in : 1)));
}

/* Taps of a pooling window: the product of the kernel's n spatial sizes
 * (ints[0..n), n = rank of |x| - 2). */
static uint64_t pool_taps(const oc_op_call_t *c, const oc_tensor_t *x) {
  uint64_t taps = 1;
  int n = x ? x->rank - 2 : 0;
  for (int i = 0; i < n && i < c->n_ints; i++)
    taps = oc_sat_mul(taps, c->ints[i] > 0 ? (uint64_t)c->ints[i] : 0);
  return taps;
}

/* The contraction length K of MatMul's a: its last axis (a 1-D a is (K)). */
static uint64_t last_dim(const oc_tensor_t *t) {
  return t && t->rank >= 1 ? (uint64_t)t->dims[t->rank - 1] : 0;
}

static uint64_t log2_ceil(uint64_t n) {
  uint64_t k = 0;
  while (k < 64 && ((uint64_t)1 << k) < n) k++;
  return k;
}

static uint64_t specific(int op, const oc_op_call_t *c) {
  const oc_tensor_t *in0 = c->n_in > 0 ? c->in[0] : NULL, *in1 = c->n_in > 1 ? c->in[1] : NULL;
  const oc_tensor_t *out0 = c->n_out > 0 ? c->out[0] : NULL;
  switch (op) {
    case OC_OP_MATMUL: /* y (.., M, N) = a (.., M, K) @ b (.., K, N) */
      return oc_sat_mul(numel(out0), last_dim(in0));
    case OC_OP_GEMM: /* y (M, N); A (M, K), or (K, M) when transA */
      if (!in0 || in0->rank != 2 || c->n_ints < 1) return 0;
      return oc_sat_mul(numel(out0), (uint64_t)(c->ints[0] ? in0->dims[0] : in0->dims[1]));
    case OC_OP_MATMUL_BWD: { /* dy (.., M, N) with b (.., K, N) or a (.., M, K) */
      if (!in1 || c->n_ints < 1) return 0;
      uint64_t k = in1->rank >= 2 ? (uint64_t)in1->dims[in1->rank - (c->ints[0] == 0 ? 2 : 1)]
                                  : last_dim(in1);
      return oc_sat_mul(numel(in0), k);
    }
    case OC_OP_CONV: /* y (N, M, ..) from W (M, C/g, k..) */
      return oc_sat_mul(numel(out0), per_channel(in1));
    case OC_OP_CONV_BWD_DATA: /* dy (N, M, ..), W (M, C/g, k..) */
      return oc_sat_mul(numel(in0), per_channel(in1));
    case OC_OP_CONV_BWD_FILTER: /* x, dy (N, M, ..) -> dW (M, C/g, k..) */
      return oc_sat_mul(numel(in1), per_channel(out0));
    case OC_OP_CONVTRANSPOSE: /* x (N, C, ..), W (C, M/g, k..) */
      return oc_sat_mul(numel(in0), per_channel(in1));
    case OC_OP_CONVTRANSPOSE_BWD_FILTER: /* x (N, C, ..), dy -> dW (C, M/g, k..) */
      return oc_sat_mul(numel(in0), per_channel(out0));
    case OC_OP_MAXPOOL:
    case OC_OP_AVGPOOL:
    case OC_OP_LPPOOL: /* windows = y's elements */
      return oc_sat_mul(numel(out0), pool_taps(c, in0));
    case OC_OP_MAXPOOL_BWD:
    case OC_OP_LPPOOL_BWD: /* x, dy: each window is visited twice */
      return oc_sat_mul(oc_sat_mul(numel(in1), pool_taps(c, in0)), 2);
    case OC_OP_AVGPOOL_BWD: /* dy */
      return oc_sat_mul(numel(in0), pool_taps(c, in0));
    case OC_OP_RESIZE:
    case OC_OP_RESIZE_BWD: { /* linear: 2^rank corners of rank terms per element */
      const oc_tensor_t *big = op == OC_OP_RESIZE ? out0 : in0;
      int r = big ? big->rank : 0;
      uint64_t per = c->n_ints > 0 && c->ints[0] == 1 ? ((uint64_t)r << r) : (uint64_t)r;
      return oc_sat_mul(numel(big), per ? per : 1);
    }
    case OC_OP_TOPK: { /* a stable merge sort of every row */
      int axis = c->n_ints > 0 && in0 && in0->rank > 0
                     ? (int)((c->ints[0] % in0->rank + in0->rank) % in0->rank)
                     : 0;
      uint64_t n = in0 && in0->rank > 0 ? (uint64_t)in0->dims[axis] : 1;
      return oc_sat_mul(numel(in0), log2_ceil(n) + 1);
    }
    default:
      return 0;
  }
}

uint64_t oc_op_cost(int op, const oc_op_call_t *call) {
  return oc_sat_add(oc_sat_add(elements(call), specific(op, call)), 1);
}
