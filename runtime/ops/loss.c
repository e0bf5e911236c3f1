/*
 * Loss heads.
 *
 * NegativeLogLikelihoodLoss: the (weighted) negative log-likelihood of class
 * labels, as ONNX NegativeLogLikelihoodLoss and PyTorch F.nll_loss.
 *   inputs:  x float32 (N, C, d1, ..., dk), k >= 0: log-probabilities over C
 *            classes along axis 1;
 *            target int64 or int32 (N, d1, ..., dk): class labels in [0, C),
 *            or the ignore index;
 *            optional weight float32 (C): per-class weights.
 *   outputs: loss float32: (N, d1, ..., dk) for reduction none, else a scalar
 *   ints:    [reduction, has_ignore, ignore_index]: reduction 0 none, 1 sum,
 *            2 mean; has_ignore 0 or 1; ignore_index any int64 (used only
 *            when has_ignore is 1)
 *   floats:  none
 * Per element, with c = target[n, d...] and w = weight[c] (1 without weight):
 *   l[n, d...] = -w * x[n, c, d...], and 0 when c is the ignore index.
 * sum: the sum of l; mean: sum(l) / sum(w over non-ignored elements) (without
 * weight and ignore index that is the element count). Like the ONNX reference,
 * a mean over zero weight (no elements, or all ignored) is 0/0 = NaN. Sums
 * accumulate in double. An ignore index may lie outside [0, C); any other
 * label outside [0, C) is a run-time error naming the label and its position.
 * A log-probability of -inf at the target gives +inf (as PyTorch); -inf at
 * other classes does not enter the result.
 *
 * SoftmaxCrossEntropyLoss is lowered to LogSoftmax over axis 1 followed by
 * this op (compiler/ops/loss.c), the same composition as F.cross_entropy.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "oc_ops.h"

enum { NLL_NONE = 0, NLL_SUM = 1, NLL_MEAN = 2 };

/* x viewed as (n, c, d), target and the unreduced loss as (n, d). */
typedef struct nll_geom_s {
  int64_t n, c, d;
} nll_geom_t;

static oc_status_t nll_check(const oc_op_call_t *c, nll_geom_t *g) {
  const oc_tensor_t *x = c->in[0], *t = c->in[1];
  const oc_tensor_t *w = c->n_in > 2 ? c->in[2] : NULL;
  char b1[160], b2[160];
  if (c->n_ints != 3 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "needs ints [reduction, has_ignore, ignore_index] and no floats");
  if (c->ints[0] < NLL_NONE || c->ints[0] > NLL_MEAN)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "reduction is %lld; must be 0 (none), 1 (sum) or 2 (mean)",
                          (long long)c->ints[0]);
  if (c->ints[1] != 0 && c->ints[1] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "has_ignore is %lld; must be 0 or 1",
                          (long long)c->ints[1]);
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  if (t->dtype != OC_DTYPE_INT64 && t->dtype != OC_DTYPE_INT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "target has dtype %s; expected int64 or int32",
                          oc_dtype_name(t->dtype));
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input %s must have rank >= 2: (N, C, d1, ..., dk)",
                          oc_type_str(x, b1, sizeof b1));
  int ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
  for (int i = 1; ok && i < t->rank; i++) ok = t->dims[i] == x->dims[i + 1];
  if (!ok)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "target %s must have the dims of input %s without axis 1",
                          oc_type_str(t, b1, sizeof b1), oc_type_str(x, b2, sizeof b2));
  if (w) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "weight"));
    if (w->rank != 1 || w->dims[0] != x->dims[1])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "weight %s must have shape (C) = (%lld)",
                            oc_type_str(w, b1, sizeof b1), (long long)x->dims[1]);
  }
  /* x passed oc_check_type, so these products fit (a zero dim makes the
   * rest unbounded, so compute d with a check). */
  uint64_t d = 1;
  for (int i = 2; i < x->rank; i++)
    if (oc_mul_overflows(d, (uint64_t)x->dims[i], &d) || d > (uint64_t)1 << 62)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "input dims are too large");
  g->n = x->dims[0];
  g->c = x->dims[1];
  g->d = (int64_t)d;
  return OC_OK;
}

static oc_status_t nll_infer(const oc_op_call_t *c, size_t *ws) {
  nll_geom_t g;
  OC_RETURN_IF_ERROR(nll_check(c, &g));
  const oc_tensor_t *t = c->in[1];
  if (c->ints[0] == NLL_NONE)
    oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, t->rank, t->dims);
  else
    oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, 0, NULL);
  *ws = 0;
  return OC_OK;
}

/* The label of element |i| of target (int64 or int32). */
static inline int64_t nll_label(const oc_tensor_t *t, int64_t i) {
  return t->dtype == OC_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
                                    : ((const int32_t *)t->data)[i];
}

/* A label outside [0, C) that is not the ignore index: names its position. */
static oc_status_t nll_bad_label(const oc_op_call_t *c, int64_t i, int64_t label, int64_t nc) {
  const oc_tensor_t *t = c->in[1];
  char pos[200] = "";
  size_t k = 0;
  int64_t rem = i, idx[OC_MAX_RANK];
  for (int a = t->rank - 1; a >= 0; a--) {
    idx[a] = t->dims[a] ? rem % t->dims[a] : 0;
    rem = t->dims[a] ? rem / t->dims[a] : 0;
  }
  for (int a = 0; a < t->rank && k < sizeof pos; a++)
    k += (size_t)snprintf(pos + k, sizeof pos - k, a ? ",%lld" : "%lld", (long long)idx[a]);
  if (c->ints[1])
    return oc_make_status(OC_STATUS_NUMERIC,
                          "target[%s] is %lld; labels must be in [0, %lld) or equal the "
                          "ignore_index %lld",
                          pos, (long long)label, (long long)nc, (long long)c->ints[2]);
  return oc_make_status(OC_STATUS_NUMERIC, "target[%s] is %lld; labels must be in [0, %lld)",
                        pos, (long long)label, (long long)nc);
}

/* x is (n, c, d), target is (n, d), weight is (c) or NULL; loss is (n, d)
 * for reduction none, else (). */
static oc_status_t nll_run(const oc_op_call_t *c) {
  nll_geom_t g;
  OC_RETURN_IF_ERROR(nll_check(c, &g));
  const float *x = c->in[0]->data;
  const oc_tensor_t *t = c->in[1];
  const float *w = (c->n_in > 2 && c->in[2]) ? c->in[2]->data : NULL;
  float *loss = c->out[0]->data;
  int reduction = (int)c->ints[0];
  int has_ignore = (int)c->ints[1];
  int64_t ignore = c->ints[2];
  double sum = 0.0, wsum = 0.0;
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t d = 0; d < g.d; d++) {
      int64_t i = n * g.d + d;
      int64_t label = nll_label(t, i);
      if (has_ignore && label == ignore) {
        if (reduction == NLL_NONE) loss[i] = 0.0f;
        continue;
      }
      if (label < 0 || label >= g.c) return nll_bad_label(c, i, label, g.c);
      float wc = w ? w[label] : 1.0f;
      float l = -wc * x[(n * g.c + label) * g.d + d];
      if (reduction == NLL_NONE) {
        loss[i] = l;
      } else {
        sum += l;
        wsum += wc;
      }
    }
  }
  if (reduction == NLL_SUM) loss[0] = (float)sum;
  if (reduction == NLL_MEAN) loss[0] = (float)(sum / wsum); /* 0/0 is NaN, as ONNX */
  return OC_OK;
}

const oc_op_def_t oc_op_nll_loss = {.name = "NegativeLogLikelihoodLoss",
                                    .min_inputs = 2, .max_inputs = 3,
                                    .min_outputs = 1, .max_outputs = 1,
                                    .infer = nll_infer, .run = nll_run};

/*
 * NegativeLogLikelihoodLossBwd: the gradient of NegativeLogLikelihoodLoss
 * with respect to its input x (the target and the class weights get none,
 * as PyTorch's F.nll_loss / F.cross_entropy).
 *   inputs:  dy float32: (N, d1, ..., dk) for reduction none, else ();
 *            target int64 or int32 (N, d1, ..., dk), as the forward;
 *            optional weight float32 (C), as the forward.
 *   outputs: dx float32 (N, C, d1, ..., dk)
 *   ints:    [reduction, has_ignore, ignore_index, C]: the forward's ints,
 *            then x's class count (x's other dims are the target's).
 *   floats:  none
 * With c = target[n, d...] and w = weight[c] (1 without weight), dx is zero
 * except dx[n, c, d...] = -w * g, where g is dy[n, d...] (none), dy (sum) or
 * dy / sum(w over non-ignored elements) (mean); ignored elements get 0. As
 * PyTorch, a mean over zero total weight gives 0 where no element contributes
 * and -w * dy / 0 (NaN for w = 0) at contributing elements.
 */
static oc_status_t nll_bwd_check(const oc_op_call_t *c, nll_geom_t *g) {
  const oc_tensor_t *dy = c->in[0], *t = c->in[1];
  const oc_tensor_t *w = c->n_in > 2 ? c->in[2] : NULL;
  char b1[160], b2[160];
  if (c->n_ints != 4 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "NegativeLogLikelihoodLossBwd needs ints [reduction, has_ignore, "
                          "ignore_index, C] and no floats");
  if (c->ints[0] < NLL_NONE || c->ints[0] > NLL_MEAN)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "reduction is %lld; must be 0 (none), 1 (sum) or 2 (mean)",
                          (long long)c->ints[0]);
  if (c->ints[1] != 0 && c->ints[1] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "has_ignore is %lld; must be 0 or 1",
                          (long long)c->ints[1]);
  if (c->ints[3] < 0 || c->ints[3] > OC_MAX_DIM)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "class count %lld is not in [0, 2^40]",
                          (long long)c->ints[3]);
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "dy"));
  if (t->dtype != OC_DTYPE_INT64 && t->dtype != OC_DTYPE_INT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "target has dtype %s; expected int64 or int32",
                          oc_dtype_name(t->dtype));
  if (t->rank < 1 || t->rank >= OC_MAX_RANK)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "target %s must have rank in [1, %d]",
                          oc_type_str(t, b1, sizeof b1), OC_MAX_RANK - 1);
  int ok;
  if (c->ints[0] == NLL_NONE) {
    ok = dy->rank == t->rank;
    for (int i = 0; ok && i < t->rank; i++) ok = dy->dims[i] == t->dims[i];
  } else {
    ok = dy->rank == 0;
  }
  if (!ok)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "dy %s must be %s for reduction %lld with target %s",
                          oc_type_str(dy, b1, sizeof b1),
                          c->ints[0] == NLL_NONE ? "the target's shape" : "a scalar",
                          (long long)c->ints[0], oc_type_str(t, b2, sizeof b2));
  if (w) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "weight"));
    if (w->rank != 1 || w->dims[0] != c->ints[3])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "weight %s must have shape (C) = (%lld)",
                            oc_type_str(w, b1, sizeof b1), (long long)c->ints[3]);
  }
  /* dx = (N, C, d1, ..., dk); its size is checked by the caller
   * (oc_op_infer) after infer, so compute d with an overflow check. */
  uint64_t d = 1;
  for (int i = 1; i < t->rank; i++)
    if (oc_mul_overflows(d, (uint64_t)t->dims[i], &d) || d > (uint64_t)1 << 62)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "target dims are too large");
  g->n = t->dims[0];
  g->c = c->ints[3];
  g->d = (int64_t)d;
  return OC_OK;
}

static oc_status_t nll_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  nll_geom_t g;
  OC_RETURN_IF_ERROR(nll_bwd_check(c, &g));
  const oc_tensor_t *t = c->in[1];
  oc_tensor_t dx = {.dtype = OC_DTYPE_FLOAT32, .rank = t->rank + 1};
  dx.dims[0] = t->dims[0];
  dx.dims[1] = g.c;
  for (int i = 1; i < t->rank; i++) dx.dims[i + 1] = t->dims[i];
  OC_RETURN_IF_ERROR(oc_check_type(&dx, "dx"));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, dx.rank, dx.dims);
  *ws = 0;
  return OC_OK;
}

/* dy is (n, d) or (), target is (n, d), weight is (c) or NULL; dx is
 * (n, c, d). */
static oc_status_t nll_bwd_run(const oc_op_call_t *c) {
  nll_geom_t g;
  OC_RETURN_IF_ERROR(nll_bwd_check(c, &g));
  const float *dy = c->in[0]->data;
  const oc_tensor_t *t = c->in[1];
  const float *w = (c->n_in > 2 && c->in[2]) ? c->in[2]->data : NULL;
  float *dx = c->out[0]->data;
  int reduction = (int)c->ints[0];
  int has_ignore = (int)c->ints[1];
  int64_t ignore = c->ints[2];
  /* Labels first (the forward has checked them too), with the total weight. */
  double wsum = 0.0;
  for (int64_t i = 0; i < g.n * g.d; i++) {
    int64_t label = nll_label(t, i);
    if (has_ignore && label == ignore) continue;
    if (label < 0 || label >= g.c) return nll_bad_label(c, i, label, g.c);
    wsum += w ? w[label] : 1.0f;
  }
  int64_t nx = g.n * g.c * g.d;
  if (nx > 0) memset(dx, 0, sizeof(float) * (size_t)nx);
  double scale = reduction == NLL_NONE ? 1.0 : reduction == NLL_SUM ? dy[0] : dy[0] / wsum;
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t d = 0; d < g.d; d++) {
      int64_t i = n * g.d + d;
      int64_t label = nll_label(t, i);
      if (has_ignore && label == ignore) continue;
      double wc = w ? w[label] : 1.0;
      double gi = reduction == NLL_NONE ? dy[i] : scale;
      dx[(n * g.c + label) * g.d + d] = (float)(-wc * gi);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_nll_loss_bwd = {.name = "NegativeLogLikelihoodLossBwd",
                                        .min_inputs = 2, .max_inputs = 3,
                                        .min_outputs = 1, .max_outputs = 1,
                                        .infer = nll_bwd_infer, .run = nll_bwd_run};
