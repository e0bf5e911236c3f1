/*
 * BatchNormalization over axis 1.
 *
 *   inputs:  x (float32, (N, C, D1..Dn), rank >= 2; rank 1 is (C) in inference),
 *            scale, bias, mean, var (float32, (C) each)
 *   ints:    [mode] or [mode, unbiased]
 *   floats:  [epsilon] or [epsilon, momentum]
 *
 * mode 0 = inference: ints [0], floats [epsilon], one output
 *   y = scale * (x - mean) / sqrt(var + eps) + bias
 * mode 1 = training: ints [1, unbiased], floats [epsilon, momentum], 1 to 5
 *   outputs (y, running_mean, running_var, saved_mean, saved_var), rank >= 2.
 *   With the batch statistics over every axis but 1 (n = N * D1 * .. * Dn
 *   values per channel)
 *     bmean = sum(x) / n,  bvar = sum((x - bmean)^2) / n  (biased)
 *     y            = scale * (x - bmean) / sqrt(bvar + eps) + bias
 *     running_mean = momentum * mean + (1 - momentum) * bmean
 *     running_var  = momentum * var + (1 - momentum) * rvar
 *     saved_mean   = bmean,  saved_var = bvar
 *   where rvar is bvar (unbiased = 0: the ONNX definition, population
 *   variance) or bvar * n / (n - 1) (unbiased = 1: what PyTorch's BatchNorm
 *   puts into its running_var; with n = 1 it stays bvar, as n / 0 has no
 *   meaning). saved_* follow ONNX's reference implementation (BN-9 outputs 4
 *   and 5: the batch mean and the biased batch variance). An empty batch
 *   (n = 0) gives NaN statistics.
 *   workspace: 2 * C doubles (the batch mean and variance).
 *
 * The rank-1 case (inference) follows the ONNX reference implementation,
 * which reshapes the per-channel inputs to (C, 1, .., 1) over rank - 2
 * trailing axes: for a rank-1 x that is a plain (C) vector matched
 * elementwise.
 */
#include <math.h>
#include <stdio.h>

#include "batchnorm.h"
#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"

enum { BN_MODE_INFERENCE = 0, BN_MODE_TRAINING = 1 };

static oc_status_t batchnorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  static const char *const names[5] = {"X", "scale", "B", "input_mean", "input_var"};
  char buf[160];
  for (int i = 0; i < 5; i++) {
    char what[32];
    snprintf(what, sizeof what, "input %s", names[i]);
    OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[i], OC_DTYPE_FLOAT32, what));
  }
  if (c->n_ints < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "BatchNormalization takes ints [mode, ...], got none");
  int64_t mode = c->ints[0];
  if (mode == BN_MODE_INFERENCE) {
    if (c->n_ints != 1 || c->n_floats != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "inference BatchNormalization takes ints [0] and floats [epsilon], "
                            "got %d ints and %d floats",
                            c->n_ints, c->n_floats);
    if (c->n_out != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "inference BatchNormalization has 1 output, got %d", c->n_out);
  } else if (mode == BN_MODE_TRAINING) {
    if (c->n_ints != 2 || c->n_floats != 2)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "training BatchNormalization takes ints [1, unbiased] and floats "
                            "[epsilon, momentum], got %d ints and %d floats",
                            c->n_ints, c->n_floats);
    if (c->ints[1] != 0 && c->ints[1] != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "unbiased is %lld; expected 0 or 1",
                            (long long)c->ints[1]);
    if (x->rank < 2)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "training BatchNormalization needs X of rank >= 2 (N, C, ...), got %s",
                            oc_type_str(x, buf, sizeof buf));
  } else {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "BatchNormalization mode %lld is not supported",
                          (long long)mode);
  }
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input X is a scalar; expected (N, C, ...)");
  int64_t C = x->rank >= 2 ? x->dims[1] : x->dims[0];
  for (int i = 1; i < 5; i++) {
    const oc_tensor_t *t = c->in[i];
    if (t->rank != 1 || t->dims[0] != C)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %s is %s; expected float32[%lld]",
                            names[i], oc_type_str(t, buf, sizeof buf), (long long)C);
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  for (int i = 1; i < c->n_out; i++)
    if (c->out[i]) oc_tensor_set_type(c->out[i], OC_DTYPE_FLOAT32, 1, &C);
  /* C <= 2^40 and x fits in 2^40 bytes, so C <= 2^38: no overflow. */
  *ws = mode == BN_MODE_TRAINING ? (size_t)(2 * C) * sizeof(double) : 0;
  return OC_OK;
}

/* y and x are (N, C, S); scale, bias, mean, var are (C). */
static void batchnorm_forward(float *y, const float *x, const float *scale, const float *bias,
                              const float *mean, const float *var, float eps, int64_t N,
                              int64_t C, int64_t S, int64_t c0, int64_t c1) {
  for (int64_t ch = c0; ch < c1; ch++) {
    float a = (float)((double)scale[ch] / sqrt((double)var[ch] + (double)eps));
    float m = mean[ch], b = bias[ch];
    for (int64_t n = 0; n < N; n++) {
      const float *xr = x + (n * C + ch) * S;
      float *yr = y + (n * C + ch) * S;
      for (int64_t i = 0; i < S; i++) yr[i] = (xr[i] - m) * a + b;
    }
  }
}

/* Sums: 16 float lanes (simd.h) over runs of at most 1024 values, each run
 * added into a double; the error stays that of a 64-term float sum. */
enum { BN_RUN = 1024 };

OC_VINLINE double bn_lanes(oc_v16f v) {
  double s = 0.0;
  for (int k = 0; k < OC_V16; k++) s += (double)v[k];
  return s;
}

/* sum(x[0..S)) */
OC_SIMD_CLONES static double bn_sum_v(const float *x, int64_t S) {
  double total = 0.0;
  for (int64_t r = 0; r < S; r += BN_RUN) {
    int64_t e = r + BN_RUN < S ? r + BN_RUN : S, i = r;
    oc_v16f acc = oc_v16_set(0.0f);
    for (; i + OC_V16 <= e; i += OC_V16) acc += oc_v16_load(x + i);
    total += bn_lanes(acc);
    for (; i < e; i++) total += (double)x[i];
  }
  return total;
}

/* sum((x - m)^2), the deviation from the float mean */
OC_SIMD_CLONES static double bn_sum_sqdev_v(const float *x, int64_t S, double m) {
  const float mf = (float)m;
  const oc_v16f vm = oc_v16_set(mf);
  double total = 0.0;
  for (int64_t r = 0; r < S; r += BN_RUN) {
    int64_t e = r + BN_RUN < S ? r + BN_RUN : S, i = r;
    oc_v16f acc = oc_v16_set(0.0f);
    for (; i + OC_V16 <= e; i += OC_V16) {
      oc_v16f d = oc_v16_load(x + i) - vm;
      acc += d * d;
    }
    total += bn_lanes(acc);
    for (; i < e; i++) {
      double d = (double)(x[i] - mf);
      total += d * d;
    }
  }
  return total;
}

/* sum(g) and sum(g * (x - m)) */
OC_SIMD_CLONES static void bn_sum_dy_v(const float *g, const float *x, int64_t S, double m,
                                       double *sg, double *sgx) {
  const float mf = (float)m;
  const oc_v16f vm = oc_v16_set(mf);
  for (int64_t r = 0; r < S; r += BN_RUN) {
    int64_t e = r + BN_RUN < S ? r + BN_RUN : S, i = r;
    oc_v16f a = oc_v16_set(0.0f), b = oc_v16_set(0.0f);
    for (; i + OC_V16 <= e; i += OC_V16) {
      oc_v16f gv = oc_v16_load(g + i);
      a += gv;
      b += gv * (oc_v16_load(x + i) - vm);
    }
    *sg += bn_lanes(a);
    *sgx += bn_lanes(b);
    for (; i < e; i++) {
      *sg += (double)g[i];
      *sgx += (double)(g[i] * (x[i] - mf));
    }
  }
}

/* Rows shorter than a few vectors (deep layers of small images) in plain
 * loops: a vector call per row costs more than the row. */
enum { BN_SHORT = 64 };

static double bn_sum(const float *x, int64_t S) {
  if (S >= BN_SHORT) return bn_sum_v(x, S);
  double t = 0.0;
  for (int64_t i = 0; i < S; i++) t += (double)x[i];
  return t;
}

static double bn_sum_sqdev(const float *x, int64_t S, double m) {
  if (S >= BN_SHORT) return bn_sum_sqdev_v(x, S, m);
  const float mf = (float)m;
  double t = 0.0;
  for (int64_t i = 0; i < S; i++) {
    double d = (double)(x[i] - mf);
    t += d * d;
  }
  return t;
}

static void bn_sum_dy(const float *g, const float *x, int64_t S, double m, double *sg,
                      double *sgx) {
  if (S >= BN_SHORT) {
    bn_sum_dy_v(g, x, S, m, sg, sgx);
    return;
  }
  const float mf = (float)m;
  for (int64_t i = 0; i < S; i++) {
    *sg += (double)g[i];
    *sgx += (double)(g[i] * (x[i] - mf));
  }
}

/* y = (x - m) * a + b over n values (float, as PyTorch's kernel) */
OC_SIMD_CLONES static void bn_affine_v(float *y, const float *x, int64_t n, float m, float a,
                                       float b) {
  const oc_v16f vm = oc_v16_set(m), va = oc_v16_set(a), vb = oc_v16_set(b);
  int64_t i = 0;
  for (; i + OC_V16 <= n; i += OC_V16) oc_v16_store(y + i, (oc_v16_load(x + i) - vm) * va + vb);
  for (; i < n; i++) y[i] = (x[i] - m) * a + b;
}

/* dx = (g - mg - (x - m) * r * mgx) * f over n values: the training-mode
 * gradient with mg = sum(g) / count, mgx = sum(g * xhat) / count. */
OC_SIMD_CLONES static void bn_dx_v(float *dx, const float *g, const float *x, int64_t n, float m,
                                   float r, float mg, float mgx, float f) {
  const oc_v16f vm = oc_v16_set(m), vr = oc_v16_set(r), vmg = oc_v16_set(mg);
  const oc_v16f vmgx = oc_v16_set(mgx), vf = oc_v16_set(f);
  int64_t i = 0;
  for (; i + OC_V16 <= n; i += OC_V16) {
    oc_v16f xhat = (oc_v16_load(x + i) - vm) * vr;
    oc_v16_store(dx + i, (oc_v16_load(g + i) - vmg - xhat * vmgx) * vf);
  }
  for (; i < n; i++) dx[i] = (g[i] - mg - (x[i] - m) * r * mgx) * f;
}

static void bn_affine(float *y, const float *x, int64_t n, float m, float a, float b) {
  if (n >= BN_SHORT) {
    bn_affine_v(y, x, n, m, a, b);
    return;
  }
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * a + b;
}

static void bn_dx(float *dx, const float *g, const float *x, int64_t n, float m, float r, float mg,
                  float mgx, float f) {
  if (n >= BN_SHORT) {
    bn_dx_v(dx, g, x, n, m, r, mg, mgx, f);
    return;
  }
  for (int64_t i = 0; i < n; i++) dx[i] = (g[i] - mg - (x[i] - m) * r * mgx) * f;
}

/* The row kernels for SyncBatchNormalization (batchnorm.h): uncloned
 * wrappers, so that the library exports no resolver of the cloned ones. */
double oc_bn_sum(const float *x, int64_t n) { return bn_sum(x, n); }
double oc_bn_sum_sqdev(const float *x, int64_t n, double m) { return bn_sum_sqdev(x, n, m); }
void oc_bn_sum_dy(const float *g, const float *x, int64_t n, double m, double *sg, double *sgx) {
  bn_sum_dy(g, x, n, m, sg, sgx);
}
void oc_bn_affine(float *y, const float *x, int64_t n, float m, float a, float b) {
  bn_affine(y, x, n, m, a, b);
}
void oc_bn_dx(float *dx, const float *g, const float *x, int64_t n, float m, float r, float mg,
              float mgx, float f) {
  bn_dx(dx, g, x, n, m, r, mg, mgx, f);
}

/* bmean, bvar are (C); x is (N, C, S). Two passes in double: the mean, then
 * the mean squared deviation (biased). */
static void batchnorm_stats(double *bmean, double *bvar, const float *x, int64_t N, int64_t C,
                            int64_t S, int64_t c0, int64_t c1) {
  double count = (double)N * (double)S;
  for (int64_t ch = c0; ch < c1; ch++) {
    if (N == 0 || S == 0) { /* no values: skip the (possibly long) empty loops */
      bmean[ch] = bvar[ch] = NAN;
      continue;
    }
    double sum = 0.0;
    for (int64_t n = 0; n < N; n++) sum += bn_sum(x + (n * C + ch) * S, S);
    double m = sum / count; /* NaN for an empty batch */
    double sq = 0.0;
    for (int64_t n = 0; n < N; n++) sq += bn_sum_sqdev(x + (n * C + ch) * S, S, m);
    bmean[ch] = m;
    bvar[ch] = sq / count;
  }
}

/* y and x are (N, C, S); scale, bias (C); bmean, bvar (C) the batch
 * statistics: y = scale * (x - bmean) / sqrt(bvar + eps) + bias. */
static void batchnorm_train_forward(float *y, const float *x, const float *scale,
                                    const float *bias, const double *bmean, const double *bvar,
                                    float eps, int64_t N, int64_t C, int64_t S, int64_t c0,
                                    int64_t c1) {
  for (int64_t ch = c0; ch < c1; ch++) {
    float a = (float)((double)scale[ch] / sqrt(bvar[ch] + (double)eps));
    float m = (float)bmean[ch], b = bias[ch];
    for (int64_t n = 0; n < N; n++)
      bn_affine(y + (n * C + ch) * S, x + (n * C + ch) * S, S, m, a, b);
  }
}

/* The kernels split the channels over the context's threads. */
typedef struct bn_job_s {
  const oc_op_call_t *c;
  int64_t N, C, S;
  int empty;
} bn_job_t;

static void bn_forward_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const bn_job_t *j = arg;
  const oc_op_call_t *c = j->c;
  if (c->ints[0] == BN_MODE_INFERENCE) {
    batchnorm_forward(c->out[0]->data, c->in[0]->data, c->in[1]->data, c->in[2]->data,
                      c->in[3]->data, c->in[4]->data, c->floats[0], j->N, j->C, j->S, c0, c1);
    return;
  }
  double *bmean = c->workspace, *bvar = bmean + j->C;
  batchnorm_stats(bmean, bvar, c->in[0]->data, j->N, j->C, j->S, c0, c1);
  if (!j->empty)
    batchnorm_train_forward(c->out[0]->data, c->in[0]->data, c->in[1]->data, c->in[2]->data,
                            bmean, bvar, c->floats[0], j->N, j->C, j->S, c0, c1);
  (void)thread;
}

static oc_status_t batchnorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t N = 1, C, S = 1;
  if (x->rank >= 2) {
    N = x->dims[0];
    C = x->dims[1];
    for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  } else {
    C = x->dims[0];
  }
  int empty = N == 0 || S == 0; /* y is empty; the statistics are still written */
  if (c->ints[0] == BN_MODE_INFERENCE && empty) return OC_OK;
  bn_job_t j = {c, N, C, S, empty};
  oc_parallel_for(c->pool, C, oc_grain(3 * N * S), bn_forward_part, &j);
  if (c->ints[0] == BN_MODE_INFERENCE) return OC_OK;
  double *bmean = c->workspace, *bvar = bmean + C;
  double mom = c->floats[1];
  const float *rmean = c->in[3]->data, *rvar = c->in[4]->data;
  double n = (double)N * (double)S;
  double corr = c->ints[1] && n > 1.0 ? n / (n - 1.0) : 1.0;
  float *o_mean = c->n_out > 1 && c->out[1] ? c->out[1]->data : NULL;
  float *o_var = c->n_out > 2 && c->out[2] ? c->out[2]->data : NULL;
  float *o_smean = c->n_out > 3 && c->out[3] ? c->out[3]->data : NULL;
  float *o_svar = c->n_out > 4 && c->out[4] ? c->out[4]->data : NULL;
  for (int64_t ch = 0; ch < C; ch++) {
    if (o_mean) o_mean[ch] = (float)(mom * rmean[ch] + (1.0 - mom) * bmean[ch]);
    if (o_var) o_var[ch] = (float)(mom * rvar[ch] + (1.0 - mom) * bvar[ch] * corr);
    if (o_smean) o_smean[ch] = (float)bmean[ch];
    if (o_svar) o_svar[ch] = (float)bvar[ch];
  }
  return OC_OK;
}

const oc_op_def_t oc_op_batchnorm = {"BatchNormalization", 5, 5, 1, 5, batchnorm_infer,
                                     batchnorm_run};

/*
 * BatchNormalizationBwd: the gradient of BatchNormalization (either mode).
 *   inputs:  x (N, C, S...), scale (C), dy (as x), mean (C), var (C)
 *            (mean/var are read in inference mode; training mode recomputes
 *            the batch statistics from x)
 *   ints:    [mode, mask]: mask bit 1 = dx, 2 = dscale, 4 = dbias; the
 *            outputs are the set bits in that order
 *   floats:  [epsilon]
 * With xhat = (x - mean) * rstd per channel, sums over N and S:
 *   dbias = sum(dy), dscale = sum(dy * xhat),
 *   training:  dx = scale * rstd / n * (n * dy - sum(dy) - xhat * sum(dy * xhat))
 *   inference: dx = dy * scale * rstd
 * Accumulation in double. workspace: 4 * C doubles.
 */
static oc_status_t batchnorm_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  if (c->n_ints != 2 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes ints [mode, mask] and floats [eps]");
  int64_t mode = c->ints[0], mask = c->ints[1];
  if ((mode != BN_MODE_INFERENCE && mode != BN_MODE_TRAINING) || mask < 1 || mask > 7)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "bad mode %lld or mask %lld",
                          (long long)mode, (long long)mask);
  int n_out = (int)(mask & 1) + (int)(mask >> 1 & 1) + (int)(mask >> 2 & 1);
  if (c->n_out != n_out)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "mask %lld needs %d outputs, got %d",
                          (long long)mask, n_out, c->n_out);
  const oc_tensor_t *x = c->in[0], *dy = c->in[2];
  char buf[160];
  for (int i = 0; i < 5; i++) OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[i], OC_DTYPE_FLOAT32, "input"));
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "x must be (N, C, ...), got %s",
                          oc_type_str(x, buf, sizeof buf));
  int same = dy->rank == x->rank;
  for (int d = 0; same && d < x->rank; d++) same = dy->dims[d] == x->dims[d];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "dy is %s; x is %s",
                          oc_type_str(dy, buf, sizeof buf), oc_type_str(x, buf + 80, 80));
  int64_t C = x->dims[1];
  for (int i = 1; i < 5; i++)
    if (i != 2 && (c->in[i]->rank != 1 || c->in[i]->dims[0] != C))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %d must be float32[%lld]", i,
                            (long long)C);
  int k = 0;
  if (mask & 1) oc_tensor_set_type(c->out[k++], OC_DTYPE_FLOAT32, x->rank, x->dims);
  if (mask & 2) oc_tensor_set_type(c->out[k++], OC_DTYPE_FLOAT32, 1, &C);
  if (mask & 4) oc_tensor_set_type(c->out[k++], OC_DTYPE_FLOAT32, 1, &C);
  *ws = (size_t)(4 * C) * sizeof(double);
  return OC_OK;
}

/* Channels [c0, c1) of the gradient (see batchnorm_bwd_run). */
static void bn_bwd_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const bn_job_t *j = arg;
  const oc_op_call_t *c = j->c;
  const int64_t N = j->N, C = j->C, S = j->S;
  const float *xp = c->in[0]->data, *scale = c->in[1]->data, *dy = c->in[2]->data;
  int64_t mode = c->ints[0], mask = c->ints[1];
  double *mean = c->workspace, *var = mean + C, *sdy = var + C, *sdyx = sdy + C;
  float eps = c->floats[0];
  if (mode == BN_MODE_TRAINING) {
    batchnorm_stats(mean, var, xp, N, C, S, c0, c1);
  } else {
    for (int64_t ch = c0; ch < c1; ch++) {
      mean[ch] = ((const float *)c->in[3]->data)[ch];
      var[ch] = ((const float *)c->in[4]->data)[ch];
    }
  }
  for (int64_t ch = c0; ch < c1; ch++) {
    double rstd = 1.0 / sqrt(var[ch] + (double)eps), a = 0, b = 0;
    for (int64_t n = 0; n < N; n++)
      bn_sum_dy(dy + (n * C + ch) * S, xp + (n * C + ch) * S, S, mean[ch], &a, &b);
    sdy[ch] = a;
    sdyx[ch] = b * rstd;
  }
  if (!(mask & 1)) return;
  float *dx = c->out[0]->data;
  double count = (double)N * (double)S;
  for (int64_t ch = c0; ch < c1; ch++) {
    double rstd = 1.0 / sqrt(var[ch] + (double)eps);
    for (int64_t n = 0; n < N; n++) {
      const float *xr = xp + (n * C + ch) * S, *gr = dy + (n * C + ch) * S;
      float *dr = dx + (n * C + ch) * S;
      if (mode == BN_MODE_TRAINING) {
        /* dx = scale * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
        bn_dx(dr, gr, xr, S, (float)mean[ch], (float)rstd, (float)(sdy[ch] / count),
              (float)(sdyx[ch] / count), (float)(scale[ch] * rstd));
      } else {
        float f = (float)(scale[ch] * rstd);
        for (int64_t i = 0; i < S; i++) dr[i] = gr[i] * f;
      }
    }
  }
  (void)thread;
}

/* x, dy, dx are (N, C, S); scale, dscale, dbias (C). */
static oc_status_t batchnorm_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t N = x->dims[0], C = x->dims[1], S = 1;
  for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  int64_t mask = c->ints[1];
  bn_job_t j = {c, N, C, S, N == 0 || S == 0};
  oc_parallel_for(c->pool, C, oc_grain(4 * N * S), bn_bwd_part, &j);
  double *sdy = (double *)c->workspace + 2 * C, *sdyx = sdy + C;
  int k = (mask & 1) ? 1 : 0;
  if (mask & 2) {
    float *ds = c->out[k++]->data;
    for (int64_t ch = 0; ch < C; ch++) ds[ch] = (float)sdyx[ch];
  }
  if (mask & 4) {
    float *db = c->out[k++]->data;
    for (int64_t ch = 0; ch < C; ch++) db[ch] = (float)sdy[ch];
  }
  return OC_OK;
}

const oc_op_def_t oc_op_batchnorm_bwd = {"BatchNormalizationBwd", 5, 5, 1, 3, batchnorm_bwd_infer,
                                         batchnorm_bwd_run};
