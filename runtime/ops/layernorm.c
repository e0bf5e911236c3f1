/*
 * LayerNormalization (ONNX opset 17, stash_type float32).
 *   inputs:  x float32 (d0..d{r-1}); scale float32 and optional bias float32,
 *            each unidirectionally broadcastable to the normalized shape
 *            (d{axis}..d{r-1}).
 *   outputs: y (same type as x); optional mean and inv_std_dev, float32 with
 *            dims (d0..d{axis-1}, 1, ..., 1) (rank r).
 *   ints:    [axis], axis in [-r, r)
 *   floats:  [epsilon]
 * x is viewed as (N, D) with D the product of the normalized dims; mean and
 * variance are accumulated in double. When scale or bias is smaller than
 * (D), it is expanded into the workspace first (2 * D floats at most).
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"

/* Whether |t| broadcasts unidirectionally to dims[0..rank). */
static int ln_broadcasts_to(const oc_tensor_t *t, int rank, const int64_t *dims) {
  if (t->rank > rank) return 0;
  for (int i = 0; i < t->rank; i++) {
    int64_t want = dims[rank - t->rank + i];
    if (t->dims[i] != want && t->dims[i] != 1) return 0;
  }
  return 1;
}

static oc_status_t layernorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0], *scale = c->in[1];
  const oc_tensor_t *bias = c->n_in > 2 ? c->in[2] : NULL;
  char b1[160], b2[160];
  if (c->n_ints != 1 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LayerNormalization needs ints [axis] and floats [epsilon]");
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "LayerNormalization input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(scale, OC_DTYPE_FLOAT32, "LayerNormalization input Scale"));
  if (bias) OC_RETURN_IF_ERROR(oc_expect_dtype(bias, OC_DTYPE_FLOAT32, "LayerNormalization input B"));
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int nrank = x->rank - axis;
  const int64_t *ndims = x->dims + axis;
  /* Checked: dims after a zero dim are unbounded by the tensor-size check. */
  uint64_t du = 1;
  for (int i = axis; i < x->rank; i++)
    if (oc_mul_overflows(du, (uint64_t)x->dims[i], &du) || du > OC_MAX_TENSOR_BYTES / 4)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "LayerNormalization: the normalized shape of %s is too large",
                            oc_type_str(x, b1, sizeof b1));
  int64_t d = (int64_t)du;
  for (int k = 1; k < c->n_in; k++) {
    const oc_tensor_t *t = c->in[k];
    if (t && !ln_broadcasts_to(t, nrank, ndims))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "LayerNormalization %s %s does not broadcast to the normalized "
                            "shape of X %s at axis %d",
                            k == 1 ? "Scale" : "B", oc_type_str(t, b1, sizeof b1),
                            oc_type_str(x, b2, sizeof b2), axis);
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  int64_t sdims[OC_MAX_RANK];
  for (int i = 0; i < x->rank; i++) sdims[i] = i < axis ? x->dims[i] : 1;
  for (int k = 1; k < c->n_out; k++) oc_tensor_set_type(c->out[k], OC_DTYPE_FLOAT32, x->rank, sdims);
  /* A workspace only when scale or bias must be expanded (d * 4 <= 2^40). */
  uint64_t need = 0;
  for (int k = 1; k < c->n_in; k++)
    if (c->in[k] && oc_tensor_numel(c->in[k]) != d) need += (uint64_t)d * sizeof(float);
  *ws = (size_t)need;
  return OC_OK;
}

/* Expands t (broadcastable to the normalized dims ndims[0..nrank)) into
 * out, which is (D). */
static void ln_expand(float *out, const oc_tensor_t *t, int nrank, const int64_t *ndims, int64_t d) {
  const float *p = t->data;
  int64_t strides[OC_MAX_RANK], idx[OC_MAX_RANK] = {0}, s = 1, off = 0;
  for (int i = nrank - 1; i >= 0; i--) {
    int it = i - (nrank - t->rank);
    strides[i] = (it >= 0 && t->dims[it] != 1) ? s : 0;
    if (it >= 0) s *= t->dims[it];
  }
  for (int64_t j = 0; j < d; j++) {
    out[j] = p[off];
    for (int k = nrank - 1; k >= 0; k--) {
      idx[k]++;
      off += strides[k];
      if (idx[k] < ndims[k]) break;
      off -= strides[k] * idx[k];
      idx[k] = 0;
    }
  }
}

/* Rows of 8 floats widened to doubles: the statistics are accumulated in
 * double as by the scalar loop they replace, 8 lanes at a time. */
typedef float ln_v8f __attribute__((vector_size(32)));
typedef double ln_v8d __attribute__((vector_size(64)));

OC_VINLINE ln_v8d ln_load8(const float *p) {
  ln_v8f v;
  memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, ln_v8d);
}

OC_VINLINE double ln_hsum(ln_v8d v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* x is (n, d), scale is (d), bias is (d) or NULL; y is (n, d); mean and
 * rstd are (n) or NULL. Per row: m = sum(x) / d and v = sum((x - m)^2) / d
 * in double, r = 1 / sqrt(v + eps), y = (float)((x - m) * r) * scale + bias. */
OC_SIMD_CLONES static void layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                                             const float *scale, const float *bias, float eps,
                                             int64_t n, int64_t d) {
  const int64_t d32 = d & ~(int64_t)31, d8 = d & ~(int64_t)7;
  for (int64_t i = 0; i < n; i++) {
    const float *xr = x + i * d;
    float *yr = y + i * d;
    /* four accumulators: the adds' latency, not their count, bounds a row */
    ln_v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int64_t j = 0;
    for (; j < d32; j += 32) {
      a0 += ln_load8(xr + j);
      a1 += ln_load8(xr + j + 8);
      a2 += ln_load8(xr + j + 16);
      a3 += ln_load8(xr + j + 24);
    }
    for (; j < d8; j += 8) a0 += ln_load8(xr + j);
    double m = ln_hsum((a0 + a1) + (a2 + a3));
    for (; j < d; j++) m += xr[j];
    m /= (double)d;
    const ln_v8d vm = m - (ln_v8d){0};
    a0 = a1 = a2 = a3 = (ln_v8d){0};
    for (j = 0; j < d32; j += 32) {
      ln_v8d t0 = ln_load8(xr + j) - vm, t1 = ln_load8(xr + j + 8) - vm;
      ln_v8d t2 = ln_load8(xr + j + 16) - vm, t3 = ln_load8(xr + j + 24) - vm;
      a0 += t0 * t0;
      a1 += t1 * t1;
      a2 += t2 * t2;
      a3 += t3 * t3;
    }
    for (; j < d8; j += 8) {
      ln_v8d t = ln_load8(xr + j) - vm;
      a0 += t * t;
    }
    double v = ln_hsum((a0 + a1) + (a2 + a3));
    for (; j < d; j++) {
      double t = xr[j] - m;
      v += t * t;
    }
    v /= (double)d;
    double r = 1.0 / sqrt(v + (double)eps);
    const ln_v8d vr = r - (ln_v8d){0};
    for (j = 0; j < d8; j += 8) {
      ln_v8f nv = __builtin_convertvector((ln_load8(xr + j) - vm) * vr, ln_v8f), s, b, o;
      memcpy(&s, scale + j, sizeof s);
      if (bias) {
        memcpy(&b, bias + j, sizeof b);
        o = nv * s + b;
      } else {
        o = nv * s;
      }
      memcpy(yr + j, &o, sizeof o);
    }
    for (; j < d; j++) {
      float nv = (float)((xr[j] - m) * r);
      yr[j] = bias ? nv * scale[j] + bias[j] : nv * scale[j];
    }
    if (mean) mean[i] = (float)m;
    if (rstd) rstd[i] = (float)r;
  }
}

typedef struct ln_job_s {
  float *y, *mean, *rstd;
  const float *x, *scale, *bias;
  float eps;
  int64_t d;
} ln_job_t;

/* Rows [r0, r1): one thread's part. */
static void layernorm_part(void *arg, int64_t r0, int64_t r1, int thread) {
  const ln_job_t *j = arg;
  (void)thread;
  layernorm_forward(j->y + r0 * j->d, j->mean ? j->mean + r0 : NULL, j->rstd ? j->rstd + r0 : NULL,
                    j->x + r0 * j->d, j->scale, j->bias, j->eps, r1 - r0, j->d);
}

static oc_status_t layernorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int64_t n = 1, d = 1;
  for (int i = 0; i < x->rank; i++) {
    if (i < axis)
      n *= x->dims[i];
    else
      d *= x->dims[i];
  }
  if (n == 0 || d == 0) {
    /* Nothing to normalize; mean and inv_std_dev of an empty row are NaN. */
    for (int k = 1; k < c->n_out; k++) {
      float *p = c->out[k]->data;
      int64_t m = oc_tensor_numel(c->out[k]);
      for (int64_t i = 0; i < m; i++) p[i] = NAN;
    }
    return OC_OK;
  }
  const float *params[2] = {NULL, NULL};
  float *ws = c->workspace;
  for (int k = 1; k < c->n_in && k < 3; k++) {
    const oc_tensor_t *t = c->in[k];
    if (!t) continue;
    if (oc_tensor_numel(t) == d) {
      params[k - 1] = t->data;
    } else {
      ln_expand(ws, t, x->rank - axis, x->dims + axis, d);
      params[k - 1] = ws;
      ws += d;
    }
  }
  ln_job_t j = {c->out[0]->data, c->n_out > 1 ? c->out[1]->data : NULL,
               c->n_out > 2 ? c->out[2]->data : NULL, x->data, params[0], params[1],
               c->floats[0], d};
  /* three passes over a row, the statistics in double */
  oc_parallel_for(c->pool, n, oc_grain(4 * d), layernorm_part, &j);
  return OC_OK;
}

const oc_op_def_t oc_op_layernorm = {"LayerNormalization", 2, 3, 1, 3, layernorm_infer,
                                     layernorm_run};

/* --- LayerNormBwd (backward of LayerNormalization) ------------------
 *
 * LayerNormBwd: the gradients of LayerNormalization, with the mean
 * and 1/std recomputed from x in double exactly as the forward does.
 *   inputs:  x, scale (as the forward; the forward's bias is not needed);
 *            dy (dims of x), dmean, drstd (dims of the forward's Mean and
 *            InvStdDev outputs): each of the last three optional (absent
 *            when no gradient flows into that output; zero then)
 *   outputs: the subset of (dx: dims of x; dscale: the normalized dims
 *            d{axis}..d{r-1}; dbias: the normalized dims) chosen by ints[1],
 *            in that order. dscale and dbias are not reduced to the shape of
 *            a broadcast scale/bias: the compiler sums them (ReduceSum).
 *   ints:    [axis, outputs]: axis as the forward; outputs a bit mask in
 *            [1, 7]: 1 dx, 2 dscale, 4 dbias
 *   floats:  [epsilon]
 * Per row (xh = (x - mean) * rstd, g = dy * scale, D the row length):
 *   dx = rstd * (g - mean(g) - xh * mean(g * xh))
 *        + dmean / D - drstd * rstd^2 * xh / D
 *   dscale = sum over rows of dy * xh, dbias = sum over rows of dy
 * as PyTorch's layer_norm backward. Row sums and the dscale/dbias sums are
 * accumulated in double (workspace: 2 * D doubles when dscale or dbias is
 * asked for, plus D floats when scale must be expanded).
 */
static int lng_count(int64_t mask) { return (int)((mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1)); }

static oc_status_t layernorm_grad_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0], *scale = c->in[1];
  char b1[160], b2[160];
  if (c->n_ints != 2 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LayerNormBwd needs ints [axis, outputs] and floats [epsilon]");
  int64_t mask = c->ints[1];
  if (mask < 1 || mask > 7)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LayerNormBwd outputs mask is %lld; must be in [1, 7]",
                          (long long)mask);
  if (c->n_out != lng_count(mask))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LayerNormBwd outputs mask %lld names %d outputs, got %d",
                          (long long)mask, lng_count(mask), c->n_out);
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "LayerNormBwd x"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(scale, OC_DTYPE_FLOAT32, "LayerNormBwd scale"));
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int nrank = x->rank - axis;
  const int64_t *ndims = x->dims + axis;
  uint64_t du = 1;
  for (int i = axis; i < x->rank; i++)
    if (oc_mul_overflows(du, (uint64_t)x->dims[i], &du) || du > OC_MAX_TENSOR_BYTES / 4)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "LayerNormBwd: the normalized shape of %s is too large",
                            oc_type_str(x, b1, sizeof b1));
  if (!ln_broadcasts_to(scale, nrank, ndims))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LayerNormBwd scale %s does not broadcast to the normalized "
                          "shape of x %s at axis %d",
                          oc_type_str(scale, b1, sizeof b1), oc_type_str(x, b2, sizeof b2), axis);
  int64_t sdims[OC_MAX_RANK];
  for (int i = 0; i < x->rank; i++) sdims[i] = i < axis ? x->dims[i] : 1;
  for (int k = 2; k < c->n_in; k++) {
    const oc_tensor_t *t = c->in[k];
    if (!t) continue;
    OC_RETURN_IF_ERROR(oc_expect_dtype(t, OC_DTYPE_FLOAT32, "LayerNormBwd gradient"));
    const int64_t *want = k == 2 ? x->dims : sdims;
    int same = t->rank == x->rank;
    for (int i = 0; same && i < t->rank; i++) same = t->dims[i] == want[i];
    if (!same) {
      oc_tensor_t w = {.dtype = OC_DTYPE_FLOAT32, .rank = x->rank};
      memcpy(w.dims, want, sizeof(int64_t) * (size_t)x->rank);
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "LayerNormBwd input %d is %s; expected %s", k,
                            oc_type_str(t, b1, sizeof b1), oc_type_str(&w, b2, sizeof b2));
    }
  }
  int o = 0;
  if (mask & 1) oc_tensor_set_type(c->out[o++], OC_DTYPE_FLOAT32, x->rank, x->dims);
  if (mask & 2) oc_tensor_set_type(c->out[o++], OC_DTYPE_FLOAT32, nrank, ndims);
  if (mask & 4) oc_tensor_set_type(c->out[o++], OC_DTYPE_FLOAT32, nrank, ndims);
  /* d * 4 <= 2^40, so these stay far below SIZE_MAX. */
  uint64_t need = 0;
  if (mask & 6) need += 2 * du * sizeof(double);
  if (oc_tensor_numel(scale) != (int64_t)du) need += du * sizeof(float);
  *ws = (size_t)need;
  return OC_OK;
}

/* x, dy (or NULL: zero) and dx (or NULL) are (n, d); scale is (d); dmean,
 * drstd are (n) or NULL; acc_s, acc_b are (d) doubles or NULL. */
static void layernorm_backward(float *dx, double *acc_s, double *acc_b, const float *x,
                               const float *scale, const float *dy, const float *dmean,
                               const float *drstd, float eps, int64_t n, int64_t d) {
  if (acc_s)
    for (int64_t j = 0; j < d; j++) acc_s[j] = 0.0;
  if (acc_b)
    for (int64_t j = 0; j < d; j++) acc_b[j] = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float *xr = x + i * d;
    const float *dyr = dy ? dy + i * d : NULL;
    double m = 0.0;
    for (int64_t j = 0; j < d; j++) m += xr[j];
    m /= (double)d;
    double v = 0.0;
    for (int64_t j = 0; j < d; j++) {
      double t = xr[j] - m;
      v += t * t;
    }
    v /= (double)d;
    double r = 1.0 / sqrt(v + (double)eps);
    double mg = 0.0, mgx = 0.0;
    if (dyr) {
      for (int64_t j = 0; j < d; j++) {
        double xh = (xr[j] - m) * r, g = (double)dyr[j] * scale[j];
        mg += g;
        mgx += g * xh;
        if (acc_s) acc_s[j] += (double)dyr[j] * xh;
        if (acc_b) acc_b[j] += dyr[j];
      }
      mg /= (double)d;
      mgx /= (double)d;
    }
    if (!dx) continue;
    double cm = dmean ? (double)dmean[i] / (double)d : 0.0;
    double cr = drstd ? -(double)drstd[i] * r * r / (double)d : 0.0;
    float *dxr = dx + i * d;
    for (int64_t j = 0; j < d; j++) {
      double xh = (xr[j] - m) * r;
      double t = dyr ? r * ((double)dyr[j] * scale[j] - mg - xh * mgx) : 0.0;
      dxr[j] = (float)(t + cm + cr * xh);
    }
  }
}

static oc_status_t layernorm_grad_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0], *scale = c->in[1];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int64_t mask = c->ints[1], n = 1, d = 1;
  for (int i = 0; i < x->rank; i++) {
    if (i < axis)
      n *= x->dims[i];
    else
      d *= x->dims[i];
  }
  float *outs[3] = {NULL, NULL, NULL};
  int o = 0;
  for (int k = 0; k < 3; k++)
    if (mask & (1 << k)) outs[k] = c->out[o++]->data;
  if (d == 0) return OC_OK; /* every output is empty */
  double *acc_s = NULL, *acc_b = NULL;
  uint8_t *ws = c->workspace;
  if (mask & 6) {
    acc_s = (double *)ws;
    acc_b = acc_s + d;
    ws += 2 * (size_t)d * sizeof(double);
  }
  const float *sc = scale->data;
  if (oc_tensor_numel(scale) != d) {
    ln_expand((float *)ws, scale, x->rank - axis, x->dims + axis, d);
    sc = (const float *)ws;
  }
  const float *dy = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
  const float *dmean = c->n_in > 3 && c->in[3] ? c->in[3]->data : NULL;
  const float *drstd = c->n_in > 4 && c->in[4] ? c->in[4]->data : NULL;
  layernorm_backward(outs[0], acc_s, acc_b, x->data, sc, dy, dmean, drstd, c->floats[0], n, d);
  for (int64_t j = 0; j < d; j++) {
    if (outs[1]) outs[1][j] = (float)acc_s[j];
    if (outs[2]) outs[2][j] = (float)acc_b[j];
  }
  return OC_OK;
}

/* In place over x or dy: each row of both is read whole before that row of
 * dx is written; dscale and dbias are written after every read. */
const oc_op_def_t oc_op_layernorm_bwd = {"LayerNormBwd", 2, 5, 1, 3, layernorm_grad_infer,
                                         layernorm_grad_run, 0, (1u << 0) | (1u << 2)};
