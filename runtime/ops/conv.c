/*
 * Conv: N-D convolution (1, 2 or 3 spatial axes) as im2col + cblas_sgemm.
 *
 *   inputs:  x (float32, (N, C, D1..Dn)), w (float32, (M, C/group, k1..kn)),
 *            b (optional, float32, (M))
 *   outputs: y (float32, (N, M, O1..On)) with
 *            Oi = (Di + pad_begin_i + pad_end_i - ((ki - 1) * dil_i + 1)) / stride_i + 1
 *   ints:    [group, strides[n], pads[2n], dilations[n]]   (n = rank(x) - 2, 1..3)
 *            pads are ONNX-ordered: [begin_1..begin_n, end_1..end_n]; the
 *            compiler resolves auto_pad into explicit pads.
 *   floats:  none
 *   workspace: the im2col matrix of one (batch, group): (C/group * k1..kn) x
 *            (O1..On) floats; 0 for 1x1 stride-1 unpadded convolutions, which
 *            multiply the input directly.
 *
 * Internally every convolution is 3-D: 1-D and 2-D ones get leading spatial
 * axes of size 1 (kernel 1, stride 1, no padding).
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "oc_ops.h"

typedef struct conv_geom_s {
  int64_t N, C, M, G, Cg, Mg;
  int64_t in[3], k[3], s[3], pb[3], pe[3], d[3], out[3];
  int64_t K;   /* rows of the im2col matrix: Cg * k[0]*k[1]*k[2] */
  int64_t P;   /* output positions: out[0]*out[1]*out[2] */
  int64_t Pin; /* input positions: in[0]*in[1]*in[2] */
  int direct;  /* 1x1, stride 1, no padding: the input is the im2col matrix */
} conv_geom_t;

static oc_status_t bad(const char *fmt, long long v) {
  return oc_make_status(OC_STATUS_INVALID_ARGUMENT, fmt, v);
}

/* Validates the call and fills |g|. Used by infer (which checks everything)
 * and by run (which trusts infer). */
static oc_status_t conv_geom(const oc_op_call_t *c, conv_geom_t *g) {
  const oc_tensor_t *x = c->in[0], *w = c->in[1];
  const oc_tensor_t *b = c->n_in > 2 ? c->in[2] : NULL;
  char buf[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "input W"));
  if (b) OC_RETURN_IF_ERROR(oc_expect_dtype(b, OC_DTYPE_FLOAT32, "input B"));
  if (x->rank < 3 || x->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input X is %s; Conv takes (N, C, D1..Dn) with 1 to 3 spatial axes",
                          oc_type_str(x, buf, sizeof buf));
  int n = x->rank - 2;
  if (c->n_floats != 0) return bad("Conv takes no floats, got %lld", c->n_floats);
  if (c->n_ints != 1 + 4 * n)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Conv with %d spatial axes takes %d ints, got %d", n, 1 + 4 * n,
                          c->n_ints);
  if (w->rank != x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input W is %s; expected rank %d",
                          oc_type_str(w, buf, sizeof buf), x->rank);
  const int64_t *strides = c->ints + 1, *pads = c->ints + 1 + n, *dil = c->ints + 1 + 3 * n;
  memset(g, 0, sizeof *g);
  g->N = x->dims[0];
  g->C = x->dims[1];
  g->M = w->dims[0];
  g->G = c->ints[0];
  if (g->G < 1 || g->G > OC_MAX_DIM) return bad("group is %lld; it must be positive", g->G);
  if (g->C % g->G != 0 || g->M % g->G != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "group %lld does not divide the %lld input and %lld output channels",
                          (long long)g->G, (long long)g->C, (long long)g->M);
  g->Cg = g->C / g->G;
  g->Mg = g->M / g->G;
  if (w->dims[1] != g->Cg)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input W is %s; expected %lld input channels per group (C=%lld, "
                          "group=%lld)",
                          oc_type_str(w, buf, sizeof buf), (long long)g->Cg, (long long)g->C,
                          (long long)g->G);
  if (b && (b->rank != 1 || b->dims[0] != g->M))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input B is %s; expected float32[%lld]",
                          oc_type_str(b, buf, sizeof buf), (long long)g->M);
  g->direct = 1;
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
    if (g->pb[a] < 0 || g->pb[a] > OC_MAX_DIM) return bad("pad %lld is out of range", g->pb[a]);
    if (g->pe[a] < 0 || g->pe[a] > OC_MAX_DIM) return bad("pad %lld is out of range", g->pe[a]);
    uint64_t span; /* (k - 1) * d + 1, at most 2^80: checked */
    if (oc_mul_overflows((uint64_t)(g->k[a] - 1), (uint64_t)g->d[a], &span) ||
        span >= (uint64_t)4 * OC_MAX_DIM)
      return bad("the dilated kernel is too large (kernel %lld)", g->k[a]);
    span += 1;
    uint64_t padded = (uint64_t)g->in[a] + (uint64_t)g->pb[a] + (uint64_t)g->pe[a];
    if (padded < span)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "spatial axis %d: the dilated kernel (%llu) is larger than the padded "
                            "input (%llu)",
                            i, (unsigned long long)span, (unsigned long long)padded);
    g->out[a] = (int64_t)((padded - span) / (uint64_t)g->s[a] + 1);
    if (g->k[a] != 1 || g->s[a] != 1 || g->pb[a] != 0 || g->pe[a] != 0) g->direct = 0;
  }
  for (int a = 0; a < 3; a++) {
    if (oc_mul_overflows(kvol, (uint64_t)g->k[a], &kvol) ||
        oc_mul_overflows(P, (uint64_t)g->out[a], &P) ||
        oc_mul_overflows(Pin, (uint64_t)g->in[a], &Pin))
      return bad("Conv sizes overflow (kernel axis %lld)", a);
  }
  uint64_t K;
  if (oc_mul_overflows(kvol, (uint64_t)g->Cg, &K) || K > (uint64_t)OC_MAX_DIM)
    return bad("the kernel is too large (%lld channels per group)", g->Cg);
  g->K = (int64_t)K;
  g->P = (int64_t)P;
  g->Pin = (int64_t)Pin;
  /* cblas takes int dimensions. */
  if (g->Mg > INT_MAX || g->K > INT_MAX || g->P > INT_MAX)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "Conv GEMM of %lld x %lld x %lld exceeds the BLAS int range",
                          (long long)g->Mg, (long long)g->P, (long long)g->K);
  return OC_OK;
}

static oc_status_t conv_infer(const oc_op_call_t *c, size_t *ws) {
  conv_geom_t g;
  OC_RETURN_IF_ERROR(conv_geom(c, &g));
  const oc_tensor_t *x = c->in[0];
  int n = x->rank - 2;
  int64_t dims[OC_MAX_RANK] = {g.N, g.M};
  for (int i = 0; i < n; i++) dims[2 + i] = g.out[3 - n + i];
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x->rank, dims);
  *ws = 0;
  if (!g.direct) {
    uint64_t bytes;
    if (oc_mul_overflows((uint64_t)g.K, (uint64_t)g.P, &bytes) ||
        oc_mul_overflows(bytes, sizeof(float), &bytes) || bytes > OC_MAX_TENSOR_BYTES)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "Conv im2col workspace (%lld x %lld floats) exceeds the limit",
                            (long long)g.K, (long long)g.P);
    *ws = (size_t)bytes;
  }
  return OC_OK;
}

/* The outputs o in [0, n_out) whose tap o * s + off lies in [0, n_in):
 * [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t *lo,
                        int64_t *hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = n_in - off <= 0 ? 0 : (n_in - off + s - 1) / s;
  if (l > n_out) l = n_out;
  if (h > n_out) h = n_out;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

/* col is (Cg*kD*kH*kW, oD*oH*oW) with rows |ld| floats apart (ld >= P); x
 * is (Cg, iD, iH, iW), one (batch, group). Row (c, kd, kh, kw) holds
 * x[c, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] for every
 * output position, 0 where that is padding. */
static void im2col(float *col, const float *x, const conv_geom_t *g, int64_t ld) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
  float *row = col;
  for (int64_t ch = 0; ch < g->Cg; ch++) {
    const float *xc = x + ch * iD * iH * iW;
    for (int64_t kd = 0; kd < g->k[0]; kd++) {
      for (int64_t kh = 0; kh < g->k[1]; kh++) {
        for (int64_t kw = 0; kw < g->k[2]; kw++, row += ld) {
          int64_t offd = kd * g->d[0] - g->pb[0], offh = kh * g->d[1] - g->pb[1];
          int64_t offw = kw * g->d[2] - g->pb[2];
          int64_t wlo, whi;
          valid_range(offw, g->s[2], iW, oW, &wlo, &whi);
          for (int64_t od = 0; od < oD; od++) {
            int64_t id = od * g->s[0] + offd;
            for (int64_t oh = 0; oh < oH; oh++) {
              int64_t ih = oh * g->s[1] + offh;
              float *dst = row + (od * oH + oh) * oW;
              if (id < 0 || id >= iD || ih < 0 || ih >= iH) {
                memset(dst, 0, (size_t)oW * sizeof(float));
                continue;
              }
              int64_t src = (id * iH + ih) * iW + offw; /* + ow * sw: valid for ow in [wlo, whi) */
              if (wlo > 0) memset(dst, 0, (size_t)wlo * sizeof(float));
              if (g->s[2] == 1) {
                if (whi > wlo) memcpy(dst + wlo, xc + src + wlo, (size_t)(whi - wlo) * sizeof(float));
              } else {
                const int64_t sw = g->s[2];
                for (int64_t ow = wlo; ow < whi; ow++) dst[ow] = xc[src + ow * sw];
              }
              if (whi < oW) memset(dst + whi, 0, (size_t)(oW - whi) * sizeof(float));
            }
          }
        }
      }
    }
  }
}

/* y is (N, M, P), x is (N, C, Pin), w is (M, K), b is (M) or NULL, ws holds
 * one (K, P) im2col matrix. Per (batch, group):
 *   y[n, g*Mg:(g+1)*Mg, :] = w[g*Mg:(g+1)*Mg, :] @ im2col(x[n, g*Cg:(g+1)*Cg]) + b */
static oc_status_t conv_run(const oc_op_call_t *c) {
  conv_geom_t g;
  OC_RETURN_IF_ERROR(conv_geom(c, &g));
  const float *x = c->in[0]->data, *w = c->in[1]->data;
  const float *b = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
  float *y = c->out[0]->data;
  float *col = c->workspace;
  if (g.N == 0 || g.Mg == 0 || g.P == 0) return OC_OK;
  for (int64_t n = 0; n < g.N; n++) {
    for (int64_t gi = 0; gi < g.G; gi++) {
      const float *xg = x + (n * g.C + gi * g.Cg) * g.Pin;
      const float *wg = w + gi * g.Mg * g.K;
      float *yg = y + (n * g.M + gi * g.Mg) * g.P;
      float beta = 0.0f;
      if (b) {
        for (int64_t m = 0; m < g.Mg; m++) {
          float bm = b[gi * g.Mg + m];
          float *yr = yg + m * g.P;
          for (int64_t p = 0; p < g.P; p++) yr[p] = bm;
        }
        beta = 1.0f;
      }
      if (g.K == 0) { /* no input channels: y is the bias */
        if (!b) memset(yg, 0, (size_t)(g.Mg * g.P) * sizeof(float));
        continue;
      }
      const float *B = xg;
      if (!g.direct) {
        im2col(col, xg, &g, g.P);
        B = col;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)g.Mg, (blasint)g.P,
                  (blasint)g.K, 1.0f, wg, (blasint)g.K, B, (blasint)g.P, beta, yg, (blasint)g.P);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_conv = {"Conv", 2, 3, 1, 1, conv_infer, conv_run};

/* --- backward kernels ----------------------------------------------------- */

/*
 * ConvBwdData: the gradient of Conv with respect to its input x.
 *   inputs:  dy (float32, (N, M, O1..On)), w (float32, (M, C/group, k1..kn))
 *   outputs: dx (float32, (N, C, D1..Dn)), C = group * w.dims[1]
 *   ints:    [group, strides[n], pads[2n], dilations[n], D1..Dn]: the forward
 *            Conv's ints followed by x's spatial dims (the output size alone
 *            does not determine them); the forward geometry of an x of that
 *            shape must give dy's dims.
 *   floats:  none
 *   workspace: the column matrices of nb batch elements side by side,
 *            (C/group * k1..kn) x (nb * O1..On) floats, plus dy's slices packed
 *            the same way, (M/group) x (nb * O1..On), when nb > 1; nb = 1
 *            unless O1..On < 256 (then enough for 256 columns, at most N).
 *            0 for the direct (1x1, stride 1, unpadded) case.
 *
 * ConvBwdFilter: the gradient of Conv with respect to its weight w.
 *   inputs:  x (float32, (N, C, D1..Dn)), dy (float32, (N, M, O1..On))
 *   outputs: dw (float32, (M, C/group, k1..kn))
 *   ints:    [group, strides[n], pads[2n], dilations[n], k1..kn]: the forward
 *            Conv's ints followed by the kernel's spatial dims.
 *   floats:  none
 *   workspace: as ConvBwdData.
 *
 * The bias gradient is a ReduceSum of dy over N and the spatial axes.
 */

/* Rebuilds the forward call (x type |xt|, w type |wt|, the first 1 + 4n ints
 * of |c|) and runs conv_geom on it, then requires |dy| to be the forward
 * output's type. */
static oc_status_t conv_bwd_geom(const oc_op_call_t *c, oc_tensor_t *xt, oc_tensor_t *wt,
                                 const oc_tensor_t *dy, conv_geom_t *g) {
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_check_type(xt, "input X (from the ints)"));
  OC_RETURN_IF_ERROR(oc_check_type(wt, "input W (from the ints)"));
  oc_tensor_t *ins[2] = {xt, wt};
  int n = xt->rank - 2;
  oc_op_call_t f = {.ints = c->ints, .n_ints = 1 + 4 * n, .n_in = 2, .in = ins};
  OC_RETURN_IF_ERROR(conv_geom(&f, g));
  int ok = dy->rank == xt->rank && dy->dims[0] == g->N && dy->dims[1] == g->M;
  for (int i = 0; i < n && ok; i++) ok = dy->dims[2 + i] == g->out[3 - n + i];
  if (!ok) {
    oc_tensor_t yt = *dy;
    yt.rank = xt->rank;
    yt.dims[0] = g->N;
    yt.dims[1] = g->M;
    for (int i = 0; i < n; i++) yt.dims[2 + i] = g->out[3 - n + i];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; the forward Conv gives %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(&yt, b2, sizeof b2));
  }
  return OC_OK;
}

/* Checks the rank of |t| (3..5) and the int count (1 + 5n); returns n. */
static oc_status_t conv_bwd_rank(const oc_op_call_t *c, const oc_tensor_t *t, const char *what,
                                 int *n) {
  char buf[160];
  if (t->rank < 3 || t->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input %s is %s; Conv gradients take 1 to 3 spatial axes", what,
                          oc_type_str(t, buf, sizeof buf));
  *n = t->rank - 2;
  if (c->n_floats != 0) return bad("Conv gradients take no floats, got %lld", c->n_floats);
  if (c->n_ints != 1 + 5 * *n)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Conv gradient with %d spatial axes takes %d ints, got %d", *n,
                          1 + 5 * *n, c->n_ints);
  return OC_OK;
}

/* Backward GEMMs over few output positions (deep layers: P = 1, 4, 16) are
 * thin and slow, so the backward kernels multiply a chunk of |nb| batch
 * elements at once: their column matrices side by side, (K, nb*P), and dy
 * packed alongside, (Mg, nb*P). Chunks aim at 256 columns; nb = 1 (no
 * packing) when P alone reaches that or for the direct case. */
static int64_t conv_bwd_chunk(const conv_geom_t *g) {
  if (g->direct || g->P >= 256 || g->N <= 1 || g->P == 0) return 1;
  int64_t nb = (256 + g->P - 1) / g->P;
  return nb < g->N ? nb : g->N;
}

/* Workspace: the (K, nb*P) column matrix, then (nb > 1) the packed (Mg, nb*P) dy. */
static oc_status_t conv_ws(const conv_geom_t *g, size_t *ws) {
  *ws = 0;
  if (g->direct) return OC_OK;
  int64_t nb = conv_bwd_chunk(g);
  uint64_t rows = (uint64_t)g->K + (nb > 1 ? (uint64_t)g->Mg : 0), bytes;
  if (oc_mul_overflows(rows, (uint64_t)g->P * (uint64_t)nb, &bytes) ||
      oc_mul_overflows(bytes, sizeof(float), &bytes) || bytes > OC_MAX_TENSOR_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "Conv gradient column workspace (%lld x %lld floats) exceeds the limit",
                          (long long)rows, (long long)(g->P * nb));
  *ws = (size_t)bytes;
  return OC_OK;
}

/* dyp (Mg, nb*P) = dy[n0..n0+nbj, g*Mg:(g+1)*Mg, :] side by side. */
static void pack_dy(float *dyp, const float *dy, const conv_geom_t *g, int64_t gi, int64_t n0,
                    int64_t nbj, int64_t ld) {
  for (int64_t m = 0; m < g->Mg; m++)
    for (int64_t j = 0; j < nbj; j++)
      memcpy(dyp + m * ld + j * g->P, dy + ((n0 + j) * g->M + gi * g->Mg + m) * g->P,
             (size_t)g->P * sizeof(float));
}

/* Fills |g| for ConvBwdData and the type of dx in |xt|. */
static oc_status_t conv_bwd_data_geom(const oc_op_call_t *c, oc_tensor_t *xt, conv_geom_t *g) {
  const oc_tensor_t *dy = c->in[0], *w = c->in[1];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "input W"));
  int n = 0;
  OC_RETURN_IF_ERROR(conv_bwd_rank(c, dy, "dY", &n));
  if (w->rank != dy->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input W has rank %d; expected %d",
                          w->rank, dy->rank);
  int64_t group = c->ints[0];
  if (group < 1 || group > OC_MAX_DIM) return bad("group is %lld; it must be positive", group);
  uint64_t C;
  if (oc_mul_overflows((uint64_t)group, (uint64_t)w->dims[1], &C) || C > (uint64_t)OC_MAX_DIM)
    return bad("group %lld times W's channels overflows", group);
  memset(xt, 0, sizeof *xt);
  xt->dtype = OC_DTYPE_FLOAT32;
  xt->rank = dy->rank;
  xt->dims[0] = dy->dims[0];
  xt->dims[1] = (int64_t)C;
  const int64_t *in_dims = c->ints + 1 + 4 * n;
  for (int i = 0; i < n; i++) {
    if (in_dims[i] < 0 || in_dims[i] > OC_MAX_DIM)
      return bad("input spatial dim %lld is out of range", in_dims[i]);
    xt->dims[2 + i] = in_dims[i];
  }
  oc_tensor_t wt = *w;
  return conv_bwd_geom(c, xt, &wt, dy, g);
}

static oc_status_t conv_bwd_data_infer(const oc_op_call_t *c, size_t *ws) {
  conv_geom_t g;
  oc_tensor_t xt;
  OC_RETURN_IF_ERROR(conv_bwd_data_geom(c, &xt, &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, xt.rank, xt.dims);
  return conv_ws(&g, ws);
}

/* Adds col, a (Cg*kD*kH*kW, oD*oH*oW) column matrix with rows |ld| floats
 * apart, into x, (Cg, iD, iH, iW): the adjoint of im2col (padding taps are
 * dropped). */
static void col2im_add(float *x, const float *col, const conv_geom_t *g, int64_t ld) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
  const float *row = col;
  for (int64_t ch = 0; ch < g->Cg; ch++) {
    float *xc = x + ch * iD * iH * iW;
    for (int64_t kd = 0; kd < g->k[0]; kd++) {
      for (int64_t kh = 0; kh < g->k[1]; kh++) {
        for (int64_t kw = 0; kw < g->k[2]; kw++, row += ld) {
          int64_t offd = kd * g->d[0] - g->pb[0], offh = kh * g->d[1] - g->pb[1];
          int64_t offw = kw * g->d[2] - g->pb[2];
          int64_t wlo, whi;
          valid_range(offw, g->s[2], iW, oW, &wlo, &whi);
          if (whi <= wlo) continue;
          for (int64_t od = 0; od < oD; od++) {
            int64_t id = od * g->s[0] + offd;
            if (id < 0 || id >= iD) continue;
            for (int64_t oh = 0; oh < oH; oh++) {
              int64_t ih = oh * g->s[1] + offh;
              if (ih < 0 || ih >= iH) continue;
              const float *src = row + (od * oH + oh) * oW;
              float *dst = xc + (id * iH + ih) * iW + offw; /* + ow * sw */
              if (g->s[2] == 1) {
                for (int64_t ow = wlo; ow < whi; ow++) dst[ow] += src[ow];
              } else {
                const int64_t sw = g->s[2];
                for (int64_t ow = wlo; ow < whi; ow++) dst[ow * sw] += src[ow];
              }
            }
          }
        }
      }
    }
  }
}

/* dx is (N, C, Pin), dy is (N, M, P), w is (M, K); ws holds the (K, nb*P)
 * column matrix and the packed dy (see conv_bwd_chunk). Per group and chunk
 * of nb batch elements:
 *   col = w[g*Mg:(g+1)*Mg, :]^T @ [dy[n, g*Mg:(g+1)*Mg, :] for n in chunk]
 *   dx[n, g*Cg:(g+1)*Cg] = col2im(col's block n)   (the GEMM writes dx itself
 *                                                     when direct) */
static oc_status_t conv_bwd_data_run(const oc_op_call_t *c) {
  conv_geom_t g;
  oc_tensor_t xt;
  OC_RETURN_IF_ERROR(conv_bwd_data_geom(c, &xt, &g));
  const float *dy = c->in[0]->data, *w = c->in[1]->data;
  float *dx = c->out[0]->data;
  int64_t numel = g.N * g.C * g.Pin;
  if (numel == 0) return OC_OK;
  if (g.Mg == 0 || g.P == 0 || g.K == 0) {
    memset(dx, 0, (size_t)numel * sizeof(float));
    return OC_OK;
  }
  if (g.direct) {
    for (int64_t n = 0; n < g.N; n++)
      for (int64_t gi = 0; gi < g.G; gi++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)g.K, (blasint)g.P,
                    (blasint)g.Mg, 1.0f, w + gi * g.Mg * g.K, (blasint)g.K,
                    dy + (n * g.M + gi * g.Mg) * g.P, (blasint)g.P, 0.0f,
                    dx + (n * g.C + gi * g.Cg) * g.Pin, (blasint)g.P);
    return OC_OK;
  }
  memset(dx, 0, (size_t)numel * sizeof(float));
  const int64_t nb = conv_bwd_chunk(&g), ld = nb * g.P;
  float *col = c->workspace, *dyp = col + g.K * ld;
  for (int64_t gi = 0; gi < g.G; gi++) {
    const float *wg = w + gi * g.Mg * g.K;
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      int64_t nbj = g.N - n0 < nb ? g.N - n0 : nb;
      const float *B = dy + (n0 * g.M + gi * g.Mg) * g.P;
      if (nb > 1) {
        pack_dy(dyp, dy, &g, gi, n0, nbj, ld);
        B = dyp;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)g.K, (blasint)(nbj * g.P),
                  (blasint)g.Mg, 1.0f, wg, (blasint)g.K, B, (blasint)ld, 0.0f, col, (blasint)ld);
      for (int64_t j = 0; j < nbj; j++)
        col2im_add(dx + ((n0 + j) * g.C + gi * g.Cg) * g.Pin, col + j * g.P, &g, ld);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_conv_bwd_data = {"ConvBwdData", 2, 2, 1, 1, conv_bwd_data_infer,
                                         conv_bwd_data_run};

/* Fills |g| for ConvBwdFilter and the type of dw in |wt|. */
static oc_status_t conv_bwd_filter_geom(const oc_op_call_t *c, oc_tensor_t *wt, conv_geom_t *g) {
  const oc_tensor_t *x = c->in[0], *dy = c->in[1];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int n = 0;
  OC_RETURN_IF_ERROR(conv_bwd_rank(c, x, "X", &n));
  if (dy->rank != x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY has rank %d; expected %d",
                          dy->rank, x->rank);
  int64_t group = c->ints[0];
  if (group < 1 || group > OC_MAX_DIM) return bad("group is %lld; it must be positive", group);
  if (x->dims[1] % group != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "group %lld does not divide the %lld input channels", (long long)group,
                          (long long)x->dims[1]);
  memset(wt, 0, sizeof *wt);
  wt->dtype = OC_DTYPE_FLOAT32;
  wt->rank = x->rank;
  wt->dims[0] = dy->dims[1];
  wt->dims[1] = x->dims[1] / group;
  const int64_t *kernel = c->ints + 1 + 4 * n;
  for (int i = 0; i < n; i++) {
    if (kernel[i] < 1 || kernel[i] > OC_MAX_DIM)
      return bad("kernel dim %lld is out of range", kernel[i]);
    wt->dims[2 + i] = kernel[i];
  }
  oc_tensor_t xt = *x;
  return conv_bwd_geom(c, &xt, wt, dy, g);
}

static oc_status_t conv_bwd_filter_infer(const oc_op_call_t *c, size_t *ws) {
  conv_geom_t g;
  oc_tensor_t wt;
  OC_RETURN_IF_ERROR(conv_bwd_filter_geom(c, &wt, &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, wt.rank, wt.dims);
  return conv_ws(&g, ws);
}

/* dw is (M, K), x is (N, C, Pin), dy is (N, M, P); ws holds the (K, nb*P)
 * column matrix and the packed dy (see conv_bwd_chunk). Per group:
 *   dw[g*Mg:(g+1)*Mg, :] = sum over chunks of
 *       [dy[n, g*Mg:(g+1)*Mg, :] for n in chunk] @ [im2col(x[n, g*Cg:(g+1)*Cg]) for n in chunk]^T
 * (x itself is the column matrix when direct). */
static oc_status_t conv_bwd_filter_run(const oc_op_call_t *c) {
  conv_geom_t g;
  oc_tensor_t wt;
  OC_RETURN_IF_ERROR(conv_bwd_filter_geom(c, &wt, &g));
  const float *x = c->in[0]->data, *dy = c->in[1]->data;
  float *dw = c->out[0]->data;
  int64_t numel = g.M * g.K;
  if (numel == 0) return OC_OK;
  if (g.N == 0 || g.P == 0) {
    memset(dw, 0, (size_t)numel * sizeof(float));
    return OC_OK;
  }
  const int64_t nb = conv_bwd_chunk(&g), ld = nb * g.P;
  float *col = c->workspace, *dyp = g.direct ? NULL : col + g.K * ld;
  for (int64_t gi = 0; gi < g.G; gi++) {
    float *dwg = dw + gi * g.Mg * g.K;
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      int64_t nbj = g.N - n0 < nb ? g.N - n0 : nb;
      const float *A = dy + (n0 * g.M + gi * g.Mg) * g.P;
      const float *B = x + (n0 * g.C + gi * g.Cg) * g.Pin;
      if (!g.direct) {
        for (int64_t j = 0; j < nbj; j++)
          im2col(col + j * g.P, x + ((n0 + j) * g.C + gi * g.Cg) * g.Pin, &g, ld);
        B = col;
      }
      if (nb > 1) {
        pack_dy(dyp, dy, &g, gi, n0, nbj, ld);
        A = dyp;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)g.Mg, (blasint)g.K,
                  (blasint)(nbj * g.P), 1.0f, A, (blasint)ld, B, (blasint)ld,
                  n0 == 0 ? 0.0f : 1.0f, dwg, (blasint)g.K);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_conv_bwd_filter = {"ConvBwdFilter", 2, 2, 1, 1, conv_bwd_filter_infer,
                                           conv_bwd_filter_run};
