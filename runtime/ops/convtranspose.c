/*
 * ConvTranspose: N-D transposed convolution (1, 2 or 3 spatial axes) as
 * cblas_sgemm + col2im, the adjoint of Conv's im2col + GEMM.
 *
 *   inputs:  x (float32, (N, C, D1..Dn)), w (float32, (C, M/group, k1..kn)),
 *            b (optional, float32, (M))
 *   outputs: y (float32, (N, M, O1..On)) with
 *            Oi = stride_i * (Di - 1) + (ki - 1) * dil_i + 1 - begin_i - end_i
 *   ints:    [group, strides[n], pads[2n], dilations[n]]   (n = rank(x) - 2, 1..3)
 *            pads ONNX-ordered [begin_1..begin_n, end_1..end_n], each in
 *            [-2^40, 2^40]: the compiler folds output_padding, output_shape
 *            and auto_pad into them (output_padding is a negative end pad;
 *            an output_shape larger than the natural size gives negative
 *            pads, whose extra positions receive only the bias).
 *   floats:  none
 *   workspace: one (M/group * k1..kn) x (D1..Dn) float matrix (the columns
 *            of one (batch, group)).
 *
 * Input position i with kernel tap t lands on output position
 * i * stride - begin + t * dil; taps landing outside [0, O) are dropped.
 * Internally every ConvTranspose is 3-D: 1-D and 2-D ones get leading
 * spatial axes of size 1 (kernel 1, stride 1, no padding).
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "oc_ops.h"

typedef struct ct_geom_s {
  int64_t N, C, M, G, Cg, Mg;
  int64_t in[3], k[3], s[3], pb[3], pe[3], d[3], out[3];
  int64_t K;    /* rows of the column matrix: Mg * k[0]*k[1]*k[2] */
  int64_t P;    /* output positions: out[0]*out[1]*out[2] */
  int64_t Pin;  /* input positions: in[0]*in[1]*in[2] */
} ct_geom_t;

static oc_status_t bad(const char *fmt, long long v) {
  return oc_make_status(OC_STATUS_INVALID_ARGUMENT, fmt, v);
}

/* Validates the call and fills |g| (infer checks everything; run trusts it). */
static oc_status_t ct_geom(const oc_op_call_t *c, ct_geom_t *g) {
  const oc_tensor_t *x = c->in[0], *w = c->in[1];
  const oc_tensor_t *b = c->n_in > 2 ? c->in[2] : NULL;
  char buf[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "input W"));
  if (b) OC_RETURN_IF_ERROR(oc_expect_dtype(b, OC_DTYPE_FLOAT32, "input B"));
  if (x->rank < 3 || x->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input X is %s; ConvTranspose takes (N, C, D1..Dn) with 1 to 3 spatial "
                          "axes",
                          oc_type_str(x, buf, sizeof buf));
  int n = x->rank - 2;
  if (c->n_floats != 0) return bad("ConvTranspose takes no floats, got %lld", c->n_floats);
  if (c->n_ints != 1 + 4 * n)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ConvTranspose with %d spatial axes takes %d ints, got %d", n, 1 + 4 * n,
                          c->n_ints);
  if (w->rank != x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input W is %s; expected rank %d",
                          oc_type_str(w, buf, sizeof buf), x->rank);
  const int64_t *strides = c->ints + 1, *pads = c->ints + 1 + n, *dil = c->ints + 1 + 3 * n;
  memset(g, 0, sizeof *g);
  g->N = x->dims[0];
  g->C = x->dims[1];
  g->G = c->ints[0];
  if (g->G < 1 || g->G > OC_MAX_DIM) return bad("group is %lld; it must be positive", g->G);
  if (g->C % g->G != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "group %lld does not divide the %lld input channels", (long long)g->G,
                          (long long)g->C);
  if (w->dims[0] != g->C)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input W is %s; its first dim must be the %lld input channels",
                          oc_type_str(w, buf, sizeof buf), (long long)g->C);
  g->Cg = g->C / g->G;
  g->Mg = w->dims[1];
  uint64_t M;
  if (oc_mul_overflows((uint64_t)g->Mg, (uint64_t)g->G, &M) || M > (uint64_t)OC_MAX_DIM)
    return bad("the output has too many channels (%lld per group)", g->Mg);
  g->M = (int64_t)M;
  if (b && (b->rank != 1 || b->dims[0] != g->M))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input B is %s; expected float32[%lld]",
                          oc_type_str(b, buf, sizeof buf), (long long)g->M);
  uint64_t kvol = 1, P = 1, Pin = 1;
  for (int a = 0; a < 3; a++) {
    int i = a - (3 - n); /* ONNX spatial axis, or < 0 for a padding axis */
    if (i < 0) {
      g->in[a] = g->k[a] = g->s[a] = g->d[a] = g->out[a] = 1;
      continue;
    }
    g->in[a] = x->dims[2 + i];
    g->k[a] = w->dims[2 + i];
    g->s[a] = strides[i];
    g->pb[a] = pads[i];
    g->pe[a] = pads[n + i];
    g->d[a] = dil[i];
    if (g->k[a] < 1) return bad("the kernel has an empty axis (W dim %lld is 0)", 2 + i);
    if (g->s[a] < 1 || g->s[a] > OC_MAX_DIM) return bad("stride %lld is out of range", g->s[a]);
    if (g->d[a] < 1 || g->d[a] > OC_MAX_DIM) return bad("dilation %lld is out of range", g->d[a]);
    if (g->pb[a] < -OC_MAX_DIM || g->pb[a] > OC_MAX_DIM) return bad("pad %lld is out of range", g->pb[a]);
    if (g->pe[a] < -OC_MAX_DIM || g->pe[a] > OC_MAX_DIM) return bad("pad %lld is out of range", g->pe[a]);
    if (g->in[a] == 0) return bad("spatial axis %lld of X is empty", i);
    /* stride * (in - 1) and (k - 1) * dil are each below 2^80: check them. */
    uint64_t reach, span;
    if (oc_mul_overflows((uint64_t)g->s[a], (uint64_t)(g->in[a] - 1), &reach) ||
        reach > (uint64_t)4 * OC_MAX_DIM ||
        oc_mul_overflows((uint64_t)(g->k[a] - 1), (uint64_t)g->d[a], &span) ||
        span > (uint64_t)4 * OC_MAX_DIM)
      return bad("spatial axis %lld: the output is too large", i);
    int64_t o = (int64_t)reach + (int64_t)span + 1 - g->pb[a] - g->pe[a];
    if (o < 1 || o > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "spatial axis %d: the output size %lld is out of range (pads %lld, "
                            "%lld)",
                            i, (long long)o, (long long)g->pb[a], (long long)g->pe[a]);
    g->out[a] = o;
  }
  for (int a = 0; a < 3; a++) {
    if (oc_mul_overflows(kvol, (uint64_t)g->k[a], &kvol) ||
        oc_mul_overflows(P, (uint64_t)g->out[a], &P) ||
        oc_mul_overflows(Pin, (uint64_t)g->in[a], &Pin))
      return bad("ConvTranspose sizes overflow (axis %lld)", a);
  }
  uint64_t K;
  if (oc_mul_overflows(kvol, (uint64_t)g->Mg, &K) || K > (uint64_t)OC_MAX_DIM)
    return bad("the kernel is too large (%lld output channels per group)", g->Mg);
  g->K = (int64_t)K;
  g->P = (int64_t)P;
  g->Pin = (int64_t)Pin;
  if (g->Cg > INT_MAX || g->K > INT_MAX || g->Pin > INT_MAX)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "ConvTranspose GEMM of %lld x %lld x %lld exceeds the BLAS int range",
                          (long long)g->K, (long long)g->Pin, (long long)g->Cg);
  return OC_OK;
}

static oc_status_t ct_infer(const oc_op_call_t *c, size_t *ws) {
  ct_geom_t g;
  OC_RETURN_IF_ERROR(ct_geom(c, &g));
  const oc_tensor_t *x = c->in[0];
  int n = x->rank - 2;
  int64_t dims[OC_MAX_RANK] = {g.N, g.M};
  for (int i = 0; i < n; i++) dims[2 + i] = g.out[3 - n + i];
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x->rank, dims);
  uint64_t bytes;
  if (oc_mul_overflows((uint64_t)g.K, (uint64_t)g.Pin, &bytes) ||
      oc_mul_overflows(bytes, sizeof(float), &bytes) || bytes > OC_MAX_TENSOR_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "ConvTranspose column workspace (%lld x %lld floats) exceeds the limit",
                          (long long)g.K, (long long)g.Pin);
  *ws = g.N && g.C && g.P ? (size_t)bytes : 0;
  return OC_OK;
}

/* The inputs i in [0, n_in) whose tap i * s + off lies in [0, n_out):
 * [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t *lo,
                        int64_t *hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = n_out - off <= 0 ? 0 : (n_out - off + s - 1) / s;
  if (l > n_in) l = n_in;
  if (h > n_in) h = n_in;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

/* y is (Mg, oD, oH, oW), one (batch, group); col is (Mg*kD*kH*kW, iD*iH*iW).
 * Row (m, kd, kh, kw) of col adds into y[m, id*sd - pd + kd*dd,
 * ih*sh - ph + kh*dh, iw*sw - pw + kw*dw] for every input position whose
 * target lies inside y. */
static void col2im(float *y, const float *col, const ct_geom_t *g) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
  const float *row = col;
  for (int64_t m = 0; m < g->Mg; m++) {
    float *ym = y + m * oD * oH * oW;
    for (int64_t kd = 0; kd < g->k[0]; kd++)
      for (int64_t kh = 0; kh < g->k[1]; kh++)
        for (int64_t kw = 0; kw < g->k[2]; kw++, row += g->Pin) {
          int64_t offd = kd * g->d[0] - g->pb[0], offh = kh * g->d[1] - g->pb[1];
          int64_t offw = kw * g->d[2] - g->pb[2];
          int64_t dlo, dhi, hlo, hhi, wlo, whi;
          valid_range(offd, g->s[0], iD, oD, &dlo, &dhi);
          valid_range(offh, g->s[1], iH, oH, &hlo, &hhi);
          valid_range(offw, g->s[2], iW, oW, &wlo, &whi);
          const int64_t sw = g->s[2];
          for (int64_t id = dlo; id < dhi; id++) {
            int64_t od = id * g->s[0] + offd;
            for (int64_t ih = hlo; ih < hhi; ih++) {
              int64_t oh = ih * g->s[1] + offh;
              int64_t base = (od * oH + oh) * oW + offw; /* + iw * sw: inside for iw in range */
              const float *src = row + (id * iH + ih) * iW;
              for (int64_t iw = wlo; iw < whi; iw++) ym[base + iw * sw] += src[iw];
            }
          }
        }
  }
}

/* y is (N, M, P), x is (N, C, Pin), w is (C, K) = (C, Mg*kvol), b is (M) or
 * NULL; ws holds one (K, Pin) column matrix. Per (batch, group):
 *   col = w[g*Cg:(g+1)*Cg, :]^T @ x[n, g*Cg:(g+1)*Cg, :]
 *   y[n, g*Mg:(g+1)*Mg] = b + col2im(col) */
static oc_status_t ct_run(const oc_op_call_t *c) {
  ct_geom_t g;
  OC_RETURN_IF_ERROR(ct_geom(c, &g));
  const float *x = c->in[0]->data, *w = c->in[1]->data;
  const float *b = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
  float *y = c->out[0]->data;
  float *col = c->workspace;
  /* An empty output: nothing to do (and group may be huge when C is 0). */
  if (g.N == 0 || g.M == 0) return OC_OK;
  for (int64_t n = 0; n < g.N; n++) {
    for (int64_t gi = 0; gi < g.G; gi++) {
      float *yg = y + (n * g.M + gi * g.Mg) * g.P;
      for (int64_t m = 0; m < g.Mg; m++) {
        float bm = b ? b[gi * g.Mg + m] : 0.0f;
        float *yr = yg + m * g.P;
        for (int64_t p = 0; p < g.P; p++) yr[p] = bm;
      }
      if (g.Cg == 0 || g.K == 0) continue; /* no input channels: y is the bias */
      const float *xg = x + (n * g.C + gi * g.Cg) * g.Pin;
      const float *wg = w + gi * g.Cg * g.K;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)g.K, (blasint)g.Pin,
                  (blasint)g.Cg, 1.0f, wg, (blasint)g.K, xg, (blasint)g.Pin, 0.0f, col,
                  (blasint)g.Pin);
      col2im(yg, col, &g);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_convtranspose = {"ConvTranspose", 2, 3, 1, 1, ct_infer, ct_run};

/* --- backward --------------------------------------------------------------- */

/*
 * ConvTransposeBwdFilter: the gradient of ConvTranspose with respect to W.
 *   inputs:  x (float32, (N, C, D1..Dn)), dy (float32, ConvTranspose's output
 *            type (N, M, O1..On))
 *   outputs: dw (float32, (C, M/group, k1..kn))
 *   ints:    [group, strides[n], pads[2n], dilations[n], k1..kn]: the
 *            forward's ints followed by the kernel's spatial dims (each in
 *            [1, 2^40])
 *   floats:  none
 *   workspace: one (M/group * k1..kn) x (D1..Dn) float matrix.
 * Per group, summed over the batch:
 *   dw[g*Cg:(g+1)*Cg] (Cg, K) = x[n, group channels] (Cg, Pin) @ col^T
 * where col (K, Pin), the adjoint of the forward's col2im, holds at row
 * (m, kd, kh, kw) and input position (id, ih, iw) the dy element that tap
 * landed on (0 when it fell outside the output).
 * (The gradient with respect to x is a Conv of dy with W, the bias's a sum;
 * the compiler emits those with existing ops.)
 */
static oc_status_t ct_bwd_filter_geom(const oc_op_call_t *c, ct_geom_t *g, oc_tensor_t *wt) {
  const oc_tensor_t *x = c->in[0], *dy = c->in[1];
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  if (x->rank < 3 || x->rank > 5 || dy->rank != x->rank)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "inputs X %s and dY %s: ConvTransposeBwdFilter takes (N, C, D1..Dn) "
                          "and (N, M, O1..On) with 1 to 3 spatial axes",
                          oc_type_str(x, b1, sizeof b1), oc_type_str(dy, b2, sizeof b2));
  int n = x->rank - 2;
  if (c->n_ints != 1 + 5 * n || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ConvTransposeBwdFilter with %d spatial axes takes %d ints and no "
                          "floats, got %d and %d",
                          n, 1 + 5 * n, c->n_ints, c->n_floats);
  int64_t G = c->ints[0], M = dy->dims[1];
  if (G < 1 || G > OC_MAX_DIM) return bad("group is %lld; it must be positive", G);
  if (M % G != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "group %lld does not divide dY's %lld channels", (long long)G,
                          (long long)M);
  int64_t dims[OC_MAX_RANK] = {x->dims[1], M / G};
  for (int i = 0; i < n; i++) {
    int64_t k = c->ints[1 + 4 * n + i];
    if (k < 1 || k > OC_MAX_DIM) return bad("kernel dim %lld is out of range", k);
    dims[2 + i] = k;
  }
  memset(wt, 0, sizeof *wt);
  oc_tensor_set_type(wt, OC_DTYPE_FLOAT32, x->rank, dims);
  OC_RETURN_IF_ERROR(oc_check_type(wt, "output dW"));
  oc_tensor_t *ins[2] = {(oc_tensor_t *)x, wt};
  oc_op_call_t f = {.ints = c->ints, .n_ints = 1 + 4 * n, .n_in = 2, .in = ins};
  OC_RETURN_IF_ERROR(ct_geom(&f, g));
  int ok = dy->dims[0] == g->N && dy->dims[1] == g->M;
  for (int i = 0; i < n && ok; i++) ok = dy->dims[2 + i] == g->out[3 - n + i];
  if (!ok) {
    oc_tensor_t yt = *x;
    yt.dims[1] = g->M;
    for (int i = 0; i < n; i++) yt.dims[2 + i] = g->out[3 - n + i];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input dY is %s; the forward ConvTranspose gives %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(&yt, b2, sizeof b2));
  }
  return OC_OK;
}

static oc_status_t ct_bwd_filter_infer(const oc_op_call_t *c, size_t *ws) {
  ct_geom_t g;
  oc_tensor_t wt;
  *ws = 0;
  OC_RETURN_IF_ERROR(ct_bwd_filter_geom(c, &g, &wt));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, wt.rank, wt.dims);
  uint64_t bytes;
  if (oc_mul_overflows((uint64_t)g.K, (uint64_t)g.Pin, &bytes) ||
      oc_mul_overflows(bytes, sizeof(float), &bytes) || bytes > OC_MAX_TENSOR_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "ConvTransposeBwdFilter column workspace (%lld x %lld floats) exceeds "
                          "the limit",
                          (long long)g.K, (long long)g.Pin);
  *ws = g.N && g.Cg && g.K ? (size_t)bytes : 0;
  return OC_OK;
}

/* col is (Mg*kD*kH*kW, iD*iH*iW), dy is (Mg, oD, oH, oW), one (batch,
 * group): row (m, kd, kh, kw) holds dy[m, id*sd - pd + kd*dd, ih*sh - ph +
 * kh*dh, iw*sw - pw + kw*dw] at every input position, 0 outside dy. */
static void im2col_t(float *col, const float *dy, const ct_geom_t *g) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
  float *row = col;
  for (int64_t m = 0; m < g->Mg; m++) {
    const float *ym = dy + m * oD * oH * oW;
    for (int64_t kd = 0; kd < g->k[0]; kd++)
      for (int64_t kh = 0; kh < g->k[1]; kh++)
        for (int64_t kw = 0; kw < g->k[2]; kw++, row += g->Pin) {
          int64_t offd = kd * g->d[0] - g->pb[0], offh = kh * g->d[1] - g->pb[1];
          int64_t offw = kw * g->d[2] - g->pb[2];
          int64_t dlo, dhi, hlo, hhi, wlo, whi;
          valid_range(offd, g->s[0], iD, oD, &dlo, &dhi);
          valid_range(offh, g->s[1], iH, oH, &hlo, &hhi);
          valid_range(offw, g->s[2], iW, oW, &wlo, &whi);
          memset(row, 0, (size_t)g->Pin * sizeof(float));
          const int64_t sw = g->s[2];
          for (int64_t id = dlo; id < dhi; id++) {
            int64_t od = id * g->s[0] + offd;
            for (int64_t ih = hlo; ih < hhi; ih++) {
              int64_t oh = ih * g->s[1] + offh;
              int64_t base = (od * oH + oh) * oW + offw;
              float *dst = row + (id * iH + ih) * iW;
              for (int64_t iw = wlo; iw < whi; iw++) dst[iw] = ym[base + iw * sw];
            }
          }
        }
  }
}

static oc_status_t ct_bwd_filter_run(const oc_op_call_t *c) {
  ct_geom_t g;
  oc_tensor_t wt;
  OC_RETURN_IF_ERROR(ct_bwd_filter_geom(c, &g, &wt));
  const float *x = c->in[0]->data, *dy = c->in[1]->data;
  float *dw = c->out[0]->data, *col = c->workspace;
  if (oc_tensor_numel(&wt) == 0) return OC_OK;
  if (g.N == 0) {
    memset(dw, 0, oc_tensor_bytes(&wt));
    return OC_OK;
  }
  for (int64_t gi = 0; gi < g.G; gi++) {
    float *dwg = dw + gi * g.Cg * g.K;
    for (int64_t n = 0; n < g.N; n++) {
      const float *xg = x + (n * g.C + gi * g.Cg) * g.Pin;
      const float *dyg = dy + (n * g.M + gi * g.Mg) * g.P;
      im2col_t(col, dyg, &g);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)g.Cg, (blasint)g.K,
                  (blasint)g.Pin, 1.0f, xg, (blasint)g.Pin, col, (blasint)g.Pin,
                  n == 0 ? 0.0f : 1.0f, dwg, (blasint)g.K);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_convtranspose_bwd_filter = {"ConvTransposeBwdFilter", 2, 2, 1, 1,
                                                    ct_bwd_filter_infer, ct_bwd_filter_run};
