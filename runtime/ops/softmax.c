/*
 * Softmax and LogSoftmax.
 *   inputs:  x float32 (any shape)
 *   outputs: y, same type as x
 *   ints:    [axis, flatten]: axis in [-rank, rank) (0 for a scalar);
 *            flatten 0: normalize over the single axis `axis` (opset >= 13);
 *            flatten 1: normalize over the block of all axes from `axis` on,
 *            as if x were reshaped to 2-D at `axis` (opset < 13).
 *   floats:  none
 * Numerically stable (the row maximum is subtracted first). Like PyTorch, a
 * row whose entries are all -inf gives NaN, and -inf entries of a row that
 * has a finite entry give exactly 0 (Softmax) or -inf (LogSoftmax).
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"
#include "softmax.h"

/* x viewed as (outer, n, inner), normalized over n. */
typedef struct sm_geom_s {
  int64_t outer, n, inner;
} sm_geom_t;

/* x viewed at ints [axis, flatten] (the caller checked there are two). */
static oc_status_t sm_geometry_of(const oc_tensor_t *x, const int64_t *ints, sm_geom_t *g) {
  if (ints[1] != 0 && ints[1] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "flatten is %lld; must be 0 or 1",
                          (long long)ints[1]);
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(ints[0], x->rank, &axis));
  /* Checked: dims after a zero dim are unbounded by the tensor-size check. */
  uint64_t p[3] = {1, 1, 1};
  for (int i = 0; i < x->rank; i++) {
    int part = i < axis ? 0 : (i == axis || ints[1]) ? 1 : 2;
    if (oc_mul_overflows(p[part], (uint64_t)x->dims[i], &p[part]) ||
        p[part] > ((uint64_t)1 << 62))
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "input dims are too large");
  }
  g->outer = (int64_t)p[0];
  g->n = (int64_t)p[1];
  g->inner = (int64_t)p[2];
  return OC_OK;
}

static oc_status_t sm_geometry(const oc_op_call_t *c, sm_geom_t *g) {
  if (c->n_ints != 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [axis, flatten]");
  return sm_geometry_of(c->in[0], c->ints, g);
}

static oc_status_t softmax_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  sm_geom_t g;
  OC_RETURN_IF_ERROR(sm_geometry(c, &g));
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0;
  return OC_OK;
}

typedef float sm_v8f __attribute__((vector_size(32)));
typedef double sm_v8d __attribute__((vector_size(64)));

/* The low and high halves of a vector, widened to double. */
OC_VINLINE sm_v8d sm_lo(oc_v16f v) {
  sm_v8f h;
  memcpy(&h, &v, sizeof h);
  return __builtin_convertvector(h, sm_v8d);
}
OC_VINLINE sm_v8d sm_hi(oc_v16f v) {
  sm_v8f h;
  memcpy(&h, (const char *)&v + sizeof h, sizeof h);
  return __builtin_convertvector(h, sm_v8d);
}

/* A contiguous row of Softmax (vector loops, simd.h's exp): y may alias x.
 * The steps of softmax_row, with the sum in double lanes and each entry
 * scaled by the sum's reciprocal (in double, then rounded to float32: the
 * quotient's value up to one rounding of the reciprocal). A row's ragged
 * end is done as one full vector overlapping the one before it, loaded
 * before anything is written (y may be x), its repeated lanes left out of
 * the sum: the same values, without a partial load. */
OC_SIMD_CLONES static void softmax_row_kernel(float *y, const float *x, int64_t n) {
  const oc_v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const int64_t n16 = n & ~(int64_t)(OC_V16 - 1);
  const int overlap = n > OC_V16 && n16 < n;
  const oc_v16f xt = overlap ? oc_v16_load(x + n - OC_V16) : oc_v16_set(0.0f);
  oc_v16f vm = oc_v16_set(-INFINITY);
  int64_t i = 0;
  for (; i < n16; i += OC_V16) {
    oc_v16f v = oc_v16_load(x + i);
    vm = oc_v16_select(v > vm, v, vm);
  }
  if (overlap) vm = oc_v16_select(xt > vm, xt, vm);
  float mx = -INFINITY;
  for (int k = 0; k < OC_V16; k++) mx = vm[k] > mx ? vm[k] : mx;
  if (!overlap)
    for (int64_t k = i; k < n; k++) mx = x[k] > mx ? x[k] : mx;
  const oc_v16f vmx = oc_v16_set(mx);
  sm_v8d a0 = {0}, a1 = {0};
  for (i = 0; i < n16; i += OC_V16) {
    oc_v16f e = oc_exp16(oc_v16_load(x + i) - vmx);
    oc_v16_store(y + i, e);
    a0 += sm_lo(e);
    a1 += sm_hi(e);
  }
  if (i < n) { /* lanes from n - i on are padding (or were done above) */
    oc_v16f e;
    if (overlap) {
      e = oc_exp16(xt - vmx);
      oc_v16_store(y + n - OC_V16, e);
      e = oc_v16_select(lane >= (int32_t)(OC_V16 - (n - i)), e, oc_v16_set(0.0f));
    } else {
      e = oc_exp16(oc_v16_load_n(x + i, n - i) - vmx);
      oc_v16_store_n(y + i, e, n - i);
      e = oc_v16_select(lane < (int32_t)(n - i), e, oc_v16_set(0.0f));
    }
    a0 += sm_lo(e);
    a1 += sm_hi(e);
  }
  sm_v8d a = a0 + a1;
  double sum = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
  const double inv = 1.0 / sum;
  const int64_t n8 = n & ~(int64_t)7;
  sm_v8f t;
  if (n > 8 && n8 < n) { /* the ragged end, scaled before the loop rewrites it */
    memcpy(&t, y + n - 8, sizeof t);
    t = __builtin_convertvector(__builtin_convertvector(t, sm_v8d) * inv, sm_v8f);
  }
  for (i = 0; i < n8; i += 8) {
    sm_v8f v;
    memcpy(&v, y + i, sizeof v);
    v = __builtin_convertvector(__builtin_convertvector(v, sm_v8d) * inv, sm_v8f);
    memcpy(y + i, &v, sizeof v);
  }
  if (n > 8 && n8 < n)
    memcpy(y + n - 8, &t, sizeof t);
  else
    for (; i < n; i++) y[i] = (float)(y[i] * inv);
}

/* The kernel is cloned per instruction set; a static clone gets a local
 * resolver, whereas an extern one would export its resolver from the
 * library whatever the visibility preset. */
void oc_softmax_row(float *y, const float *x, int64_t n) { softmax_row_kernel(y, x, n); }

/* One row of n entries |stride| apart: x is (n), y is (n); y may alias x. */
static void softmax_row(float *y, const float *x, int64_t n, int64_t stride, int log_out) {
  if (n == 0) return;
  if (stride == 1 && !log_out) {
    oc_softmax_row(y, x, n);
    return;
  }
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i * stride];
    if (v > mx) mx = v;
  }
  /* mx == -inf (every entry -inf or NaN): x - mx is NaN, so the row is NaN. */
  double sum = 0.0;
  if (log_out) {
    for (int64_t i = 0; i < n; i++) sum += expf(x[i * stride] - mx);
    float lse = (float)log(sum);
    for (int64_t i = 0; i < n; i++) y[i * stride] = (x[i * stride] - mx) - lse;
  } else {
    for (int64_t i = 0; i < n; i++) {
      float e = expf(x[i * stride] - mx);
      y[i * stride] = e;
      sum += e;
    }
    for (int64_t i = 0; i < n; i++) y[i * stride] = (float)(y[i * stride] / sum);
  }
}

typedef struct sm_job_s {
  const float *x;
  float *y;
  sm_geom_t g;
  int log_out;
} sm_job_t;

/* Rows [r0, r1) of outer * inner (the context's threads split them). */
static void softmax_rows(void *arg, int64_t r0, int64_t r1, int thread) {
  const sm_job_t *j = arg;
  for (int64_t r = r0; r < r1; r++) {
    int64_t o = r / j->g.inner, i = r % j->g.inner, base = o * j->g.n * j->g.inner + i;
    softmax_row(j->y + base, j->x + base, j->g.n, j->g.inner, j->log_out);
  }
  (void)thread;
}

/* x is (outer, n, inner), y is (outer, n, inner). */
static oc_status_t softmax_run_kind(const oc_op_call_t *c, int log_out) {
  sm_job_t j = {c->in[0]->data, c->out[0]->data, {0, 0, 0}, log_out};
  OC_RETURN_IF_ERROR(sm_geometry(c, &j.g));
  oc_parallel_for(c->pool, j.g.outer * j.g.inner, oc_grain(j.g.n * 8), softmax_rows, &j);
  return OC_OK;
}

static oc_status_t softmax_run(const oc_op_call_t *c) { return softmax_run_kind(c, 0); }
static oc_status_t log_softmax_run(const oc_op_call_t *c) { return softmax_run_kind(c, 1); }

const oc_op_def_t oc_op_softmax = {"Softmax", 1, 1, 1, 1, softmax_infer, softmax_run};
const oc_op_def_t oc_op_log_softmax = {"LogSoftmax", 1, 1, 1, 1, softmax_infer, log_softmax_run};

/* --- SoftmaxBwd (backward of Softmax and LogSoftmax) ------------------------
 *
 * SoftmaxBwd: dx from the forward output y and the incoming gradient dy.
 *   inputs:  y float32 (the forward's output), dy float32 (same type)
 *   outputs: dx, same type
 *   ints:    [axis, flatten, log]: axis and flatten as the forward op; log 0
 *            for Softmax, 1 for LogSoftmax
 *   floats:  none
 * Softmax:    dx_i = y_i (dy_i - sum_j dy_j y_j)
 * LogSoftmax: dx_i = dy_i - exp(y_i) sum_j dy_j
 * sums in double over each normalized row. Masked entries (an input of -inf
 * in a row with a finite entry: y exactly 0 for Softmax, -inf for LogSoftmax)
 * are constants of the function, so they are left out of the row sums, and
 * their Softmax gradient is exactly 0 whatever dy holds there (a loss such
 * as -sum(t * log(softmax)) with t = 0 at a masked entry sends dy = NaN
 * there: it must not spread). A masked LogSoftmax entry gets dx = dy (the
 * partial derivative of x - logsumexp(x) with respect to x_i), as PyTorch.
 * A row that is NaN in y (all -inf, or a NaN input) gives NaN.
 */
static oc_status_t softmax_grad_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *y = c->in[0], *dy = c->in[1];
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(y, OC_DTYPE_FLOAT32, "SoftmaxBwd y"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "SoftmaxBwd dy"));
  if (c->n_ints != 3 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "SoftmaxBwd needs ints [axis, flatten, log]");
  if (c->ints[2] != 0 && c->ints[2] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "SoftmaxBwd log is %lld; must be 0 or 1",
                          (long long)c->ints[2]);
  int same = y->rank == dy->rank;
  for (int i = 0; same && i < y->rank; i++) same = y->dims[i] == dy->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "SoftmaxBwd y is %s but dy is %s",
                          oc_type_str(y, b1, sizeof b1), oc_type_str(dy, b2, sizeof b2));
  sm_geom_t g;
  OC_RETURN_IF_ERROR(sm_geometry_of(y, c->ints, &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, y->rank, y->dims);
  *ws = 0;
  return OC_OK;
}

/* One row of n entries |stride| apart: y, dy and dx are (n). */
static void softmax_grad_row(float *dx, const float *y, const float *dy, int64_t n,
                             int64_t stride, int log_out) {
  double s = 0.0;
  if (log_out) {
    for (int64_t i = 0; i < n; i++)
      if (y[i * stride] != -INFINITY) s += dy[i * stride];
    for (int64_t i = 0; i < n; i++) {
      float yi = y[i * stride];
      dx[i * stride] = yi == -INFINITY ? dy[i * stride]
                                       : (float)((double)dy[i * stride] - exp((double)yi) * s);
    }
  } else {
    for (int64_t i = 0; i < n; i++)
      if (y[i * stride] != 0.0f) s += (double)dy[i * stride] * y[i * stride];
    for (int64_t i = 0; i < n; i++) {
      float yi = y[i * stride];
      dx[i * stride] = yi == 0.0f ? 0.0f : (float)(yi * ((double)dy[i * stride] - s));
    }
  }
}

/* y, dy and dx are (outer, n, inner). */
static oc_status_t softmax_grad_run(const oc_op_call_t *c) {
  const float *y = c->in[0]->data, *dy = c->in[1]->data;
  float *dx = c->out[0]->data;
  sm_geom_t g;
  OC_RETURN_IF_ERROR(sm_geometry_of(c->in[0], c->ints, &g));
  int log_out = (int)c->ints[2];
  for (int64_t o = 0; o < g.outer; o++)
    for (int64_t i = 0; i < g.inner; i++) {
      int64_t base = o * g.n * g.inner + i;
      softmax_grad_row(dx + base, y + base, dy + base, g.n, g.inner, log_out);
    }
  return OC_OK;
}

/* In place over y or dy: each row is read whole before it is written. */
const oc_op_def_t oc_op_softmax_bwd = {"SoftmaxBwd", 2, 2, 1, 1, softmax_grad_infer,
                                       softmax_grad_run, 0, (1u << 0) | (1u << 1)};
