/*
 * InstanceNormalization and LpNormalization.
 *
 * InstanceNormalization:
 *   inputs:  x (float32, (N, C, D1..Dn), rank >= 2), scale, bias (float32, (C))
 *   outputs: y (float32, shape of x)
 *   ints:    none          floats: [epsilon]
 *   For every (n, c), over its S = D1*..*Dn values: mean and biased variance
 *   (two passes in double), y = scale[c] * (x - mean) / sqrt(var + eps) +
 *   bias[c]. S = 0 leaves nothing to write.
 * LpNormalization:
 *   inputs:  x (float32, any rank >= 1)
 *   outputs: y (float32, shape of x)
 *   ints:    [axis, p]: axis in [-rank, rank), p 1 or 2      floats: none
 *   y = x / ||x||_p along axis (sum of |x| or the root of the sum of
 *   squares, in double). A zero vector gives 0 / 0 = NaN, as in ONNX's
 *   reference implementation.
 */
#include <math.h>

#include "oc_ops.h"

static oc_status_t instancenorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  char buf[160];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[1], OC_DTYPE_FLOAT32, "scale"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[2], OC_DTYPE_FLOAT32, "B"));
  if (c->n_ints != 0 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "InstanceNormalization takes floats [epsilon] and no ints, got %d ints "
                          "and %d floats",
                          c->n_ints, c->n_floats);
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input is %s; expected (N, C, D1..Dn)",
                          oc_type_str(x, buf, sizeof buf));
  for (int i = 1; i < 3; i++) {
    const oc_tensor_t *t = c->in[i];
    if (t->rank != 1 || t->dims[0] != x->dims[1])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %s is %s; expected float32[%lld]",
                            i == 1 ? "scale" : "B", oc_type_str(t, buf, sizeof buf),
                            (long long)x->dims[1]);
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  return OC_OK;
}

/* y and x are (N, C, S); scale and bias (C). */
static void instancenorm_forward(float *y, const float *x, const float *scale, const float *bias,
                                 float eps, int64_t N, int64_t C, int64_t S) {
  for (int64_t nc = 0; nc < N * C; nc++) {
    const float *xr = x + nc * S;
    float *yr = y + nc * S;
    int64_t ch = nc % C;
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < S; i++) sum += xr[i];
    double mean = sum / (double)S;
    for (int64_t i = 0; i < S; i++) {
      double d = (double)xr[i] - mean;
      sq += d * d;
    }
    double a = (double)scale[ch] / sqrt(sq / (double)S + (double)eps), b = bias[ch];
    for (int64_t i = 0; i < S; i++) yr[i] = (float)(((double)xr[i] - mean) * a + b);
  }
}

static oc_status_t instancenorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t S = 1;
  for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  if (S == 0) return OC_OK;
  instancenorm_forward(c->out[0]->data, x->data, c->in[1]->data, c->in[2]->data, c->floats[0],
                       x->dims[0], x->dims[1], S);
  return OC_OK;
}

const oc_op_def_t oc_op_instancenorm = {"InstanceNormalization", 3, 3, 1, 1, instancenorm_infer,
                                        instancenorm_run};

/* --- LpNormalization ------------------------------------------------------ */

static oc_status_t lpnorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  if (c->n_ints != 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LpNormalization takes ints [axis, p], got %d ints and %d floats",
                          c->n_ints, c->n_floats);
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input is a scalar; it has no axis");
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  if (c->ints[1] != 1 && c->ints[1] != 2)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "p is %lld; LpNormalization takes 1 or 2",
                          (long long)c->ints[1]);
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  return OC_OK;
}

/* y and x are (outer, n, inner): every x[o, :, i] divided by its p-norm. */
static void lpnorm_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner,
                           int p) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *xv = x + o * n * inner + i;
      float *yv = y + o * n * inner + i;
      double acc = 0.0;
      for (int64_t k = 0; k < n; k++) {
        double v = xv[k * inner];
        acc += p == 1 ? fabs(v) : v * v;
      }
      double norm = p == 1 ? acc : sqrt(acc);
      for (int64_t k = 0; k < n; k++) yv[k * inner] = (float)((double)xv[k * inner] / norm);
    }
}

static oc_status_t lpnorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  /* An empty tensor has nothing to write (and outer * inner alone could be
   * huge when the axis is the empty one). */
  if (oc_tensor_numel(x) == 0) return OC_OK;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
  lpnorm_forward(c->out[0]->data, x->data, outer, x->dims[axis], inner, (int)c->ints[1]);
  return OC_OK;
}

const oc_op_def_t oc_op_lpnorm = {"LpNormalization", 1, 1, 1, 1, lpnorm_infer, lpnorm_run};

/* --- backward ------------------------------------------------------------- */

/*
 * InstanceNormalizationBwd: the gradient of InstanceNormalization.
 *   inputs:  x (float32, (N, C, D1..Dn)), scale (float32, (C)), dy (as x)
 *   outputs: the set bits of mask in the order dx (x's type), dscale (C),
 *            dbias (C)
 *   ints:    [mask]: 1 = dx, 2 = dscale, 4 = dbias (1..7)
 *   floats:  [epsilon]
 * Per (n, c), over its S values, with the forward's mean, biased variance
 * and rstd = 1 / sqrt(var + eps), xhat = (x - mean) * rstd:
 *   dx = scale[c] * rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
 *   dscale[c] = sum over n of sum(dy * xhat), dbias[c] = sum over n of sum(dy)
 * (PyTorch's instance_norm backward: batch norm over (1, N*C, S)), in double.
 */
static oc_status_t instancenorm_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  if (c->n_ints != 1 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "InstanceNormalizationBwd takes ints [mask] and floats [epsilon], got %d "
                          "ints and %d floats",
                          c->n_ints, c->n_floats);
  int64_t mask = c->ints[0];
  if (mask < 1 || mask > 7)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output mask %lld is not in 1..7",
                          (long long)mask);
  int n_out = (int)(mask & 1) + (int)(mask >> 1 & 1) + (int)(mask >> 2 & 1);
  if (c->n_out != n_out)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "mask %lld needs %d outputs, got %d",
                          (long long)mask, n_out, c->n_out);
  /* x, scale (and a stand-in bias) as the forward checks them. */
  const oc_tensor_t *x = c->in[0], *dy = c->in[2];
  oc_tensor_t yt;
  oc_tensor_t *fout[1] = {&yt};
  oc_tensor_t *const fin[3] = {c->in[0], c->in[1], c->in[1]};
  oc_op_call_t f = {.floats = c->floats, .n_floats = 1, .n_in = 3, .in = fin, .n_out = 1,
                    .out = fout};
  size_t fws;
  OC_RETURN_IF_ERROR(instancenorm_infer(&f, &fws));
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int same = dy->rank == x->rank;
  for (int i = 0; i < x->rank && same; i++) same = dy->dims[i] == x->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; x is %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(x, b2, sizeof b2));
  int64_t C = x->dims[1];
  int k = 0;
  if (mask & 1) oc_tensor_set_type(c->out[k++], OC_DTYPE_FLOAT32, x->rank, x->dims);
  if (mask & 2) oc_tensor_set_type(c->out[k++], OC_DTYPE_FLOAT32, 1, &C);
  if (mask & 4) oc_tensor_set_type(c->out[k++], OC_DTYPE_FLOAT32, 1, &C);
  return OC_OK;
}

/* x, dy, dx (may be NULL) are (N, C, S); scale, dscale, dbias (C; the
 * latter two may be NULL). */
static void instancenorm_backward(float *dx, float *dscale, float *dbias, const float *x,
                                  const float *scale, const float *dy, float eps, int64_t N,
                                  int64_t C, int64_t S) {
  for (int64_t ch = 0; ch < C; ch++) {
    double sdy = 0.0, sdyx = 0.0;
    for (int64_t n = 0; n < N && S > 0; n++) {
      int64_t nc = n * C + ch;
      const float *xr = x + nc * S, *gr = dy + nc * S;
      double sum = 0.0, sq = 0.0;
      for (int64_t i = 0; i < S; i++) sum += xr[i];
      double mean = sum / (double)S;
      for (int64_t i = 0; i < S; i++) {
        double d = (double)xr[i] - mean;
        sq += d * d;
      }
      double rstd = 1.0 / sqrt(sq / (double)S + (double)eps), a = 0.0, b = 0.0;
      for (int64_t i = 0; i < S; i++) {
        a += gr[i];
        b += (double)gr[i] * ((double)xr[i] - mean) * rstd;
      }
      sdy += a;
      sdyx += b;
      if (!dx) continue;
      float *dr = dx + nc * S;
      double k = (double)scale[ch] * rstd, ma = a / (double)S, mb = b / (double)S;
      for (int64_t i = 0; i < S; i++) {
        double xh = ((double)xr[i] - mean) * rstd;
        dr[i] = (float)(k * ((double)gr[i] - ma - xh * mb));
      }
    }
    if (dscale) dscale[ch] = (float)sdyx;
    if (dbias) dbias[ch] = (float)sdy;
  }
}

static oc_status_t instancenorm_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t N = x->dims[0], C = x->dims[1], S = 1, mask = c->ints[0];
  for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  int k = 0;
  float *dx = mask & 1 ? c->out[k++]->data : NULL;
  float *dscale = mask & 2 ? c->out[k++]->data : NULL;
  float *dbias = mask & 4 ? c->out[k++]->data : NULL;
  instancenorm_backward(dx, dscale, dbias, x->data, c->in[1]->data, c->in[2]->data, c->floats[0],
                        N, C, S);
  return OC_OK;
}

const oc_op_def_t oc_op_instancenorm_bwd = {"InstanceNormalizationBwd", 3, 3, 1, 3,
                                            instancenorm_bwd_infer, instancenorm_bwd_run};

/*
 * LpNormalizationBwd: the gradient of LpNormalization.
 *   inputs:  x (float32, any rank >= 1), dy (float32, x's type)
 *   outputs: dx (float32, x's type)
 *   ints:    LpNormalization's [axis, p]
 *   floats:  none
 * Along the axis, with norm = ||x||_p and y = x / norm (in double):
 *   p = 2: dx = (dy - y * sum(dy * y)) / norm
 *   p = 1: dx = (dy - sign(x) * sum(dy * y)) / norm
 * A zero vector (norm 0) gets dx = 0 rather than NaN (ONNX's forward gives
 * NaN there; the gradient stays finite so that one empty feature does not
 * poison a training step).
 */
static oc_status_t lpnorm_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0], *dy = c->in[1];
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(lpnorm_infer(c, ws));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int same = dy->rank == x->rank;
  for (int i = 0; i < x->rank && same; i++) same = dy->dims[i] == x->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; x is %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(x, b2, sizeof b2));
  return OC_OK;
}

/* dx, x and dy are (outer, n, inner). */
static void lpnorm_backward(float *dx, const float *x, const float *dy, int64_t outer, int64_t n,
                            int64_t inner, int p) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * n * inner + i;
      const float *xv = x + base, *gv = dy + base;
      float *dv = dx + base;
      double acc = 0.0;
      for (int64_t k = 0; k < n; k++) {
        double v = xv[k * inner];
        acc += p == 1 ? fabs(v) : v * v;
      }
      double norm = p == 1 ? acc : sqrt(acc);
      if (!(norm > 0.0)) {
        for (int64_t k = 0; k < n; k++) dv[k * inner] = 0.0f;
        continue;
      }
      double s = 0.0;
      for (int64_t k = 0; k < n; k++) s += (double)gv[k * inner] * ((double)xv[k * inner] / norm);
      for (int64_t k = 0; k < n; k++) {
        double v = xv[k * inner];
        double t = p == 1 ? (v > 0.0 ? 1.0 : v < 0.0 ? -1.0 : 0.0) : v / norm;
        dv[k * inner] = (float)(((double)gv[k * inner] - t * s) / norm);
      }
    }
}

static oc_status_t lpnorm_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  if (oc_tensor_numel(x) == 0) return OC_OK;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
  lpnorm_backward(c->out[0]->data, x->data, c->in[1]->data, outer, x->dims[axis], inner,
                  (int)c->ints[1]);
  return OC_OK;
}

const oc_op_def_t oc_op_lpnorm_bwd = {"LpNormalizationBwd", 2, 2, 1, 1, lpnorm_bwd_infer,
                                      lpnorm_bwd_run};
