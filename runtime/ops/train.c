/*
 * The train step's own ops: they update persistent state in place (the
 * `mutates` bits) and have no outputs.
 *
 * Assign:      in: dst (state, updated), src (same type).           dst = src
 * CheckFinite: in: any number of float32 tensors.  Fails with OC_STATUS_NUMERIC
 *              naming the first input holding NaN or Inf, so the optimizer
 *              instructions after it never run on bad numbers.
 * LrSchedule:  in: lr (state f32[1], updated), base_lr (f32[1]), step (i64[1]).
 *              ints [kind] (0 constant, 1 linear warmup then cosine);
 *              floats [warmup_steps, total_steps, final_fraction].
 *              With k completed steps: constant lr = base_lr; cosine:
 *              k < warmup: base_lr * (k + 1) / warmup, then
 *              base_lr * (f + (1 - f) * 0.5 * (1 + cos(pi * min(1, (k - warmup) / (total - warmup))))).
 * StepCount:   in: step (state i64[1], updated).                    step += 1
 * SgdUpdate:   in: param (updated), momentum_buffer (updated), grad, lr, step.
 *              floats [momentum, dampening, weight_decay, nesterov]. torch.optim.SGD:
 *              g = grad + wd * p; buf = g on the first step (step == 0), else
 *              momentum * buf + (1 - dampening) * g; g = nesterov ? g + momentum * buf
 *              : buf (when momentum != 0); p -= lr * g.
 * AdamUpdate:  in: param (updated), exp_avg (updated), exp_avg_sq (updated), grad, lr, step.
 *              floats [beta1, beta2, eps, weight_decay, decoupled]. torch.optim.Adam
 *              (decoupled = 0: g += wd * p) and AdamW (decoupled = 1: p *= 1 - lr * wd),
 *              bias corrections with t = step + 1, amsgrad off.
 * LarsUpdate:  in: param (updated), momentum_buffer (updated), grad, lr, step.
 *              floats [momentum, weight_decay, trust_coefficient, eps, adapt].
 *              SimCLR's LARS: with adapt (weights), g += wd * p and the local rate is
 *              trust * ||p|| / ||g|| (1 when either norm is 0); biases and
 *              normalization parameters use adapt = 0 (no decay, no trust ratio).
 *              buf = momentum * buf + lr * local * g; p -= buf.
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"

static int same_type(const oc_tensor_t *a, const oc_tensor_t *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

static oc_status_t expect_scalar(const oc_tensor_t *t, int dtype, const char *what) {
  if (t->dtype != dtype || oc_tensor_numel(t) != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s must be a one-element %s tensor", what,
                          oc_dtype_name(dtype));
  return OC_OK;
}

/* --- Assign ------------------------------------------------------------------ */

static oc_status_t assign_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  if (!same_type(c->in[0], c->in[1]))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "source and destination differ in type");
  return OC_OK;
}

/* Bytes [b0, b1) of the copy (the context's threads split large ones). */
static void assign_part(void *arg, int64_t b0, int64_t b1, int thread) {
  const oc_op_call_t *c = arg;
  memcpy((uint8_t *)c->in[0]->data + b0, (const uint8_t *)c->in[1]->data + b0, (size_t)(b1 - b0));
  (void)thread;
}

static oc_status_t assign_run(const oc_op_call_t *c) {
  if (c->in[0]->data == c->in[1]->data) return OC_OK;
  size_t bytes = oc_tensor_bytes(c->in[0]);
  uint8_t *d = c->in[0]->data;
  const uint8_t *s = c->in[1]->data;
  if (d + bytes <= s || s + bytes <= d) /* disjoint: split it */
    oc_parallel_for(c->pool, (int64_t)bytes, oc_grain(1) * 4, assign_part, (void *)c);
  else
    memmove(d, s, bytes);
  return OC_OK;
}

const oc_op_def_t oc_op_assign = {"Assign", 2, 2, 0, 0, assign_infer, assign_run, 1u << 0};

/* --- CheckFinite -------------------------------------------------------------- */

static oc_status_t check_finite_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  for (int i = 0; i < c->n_in; i++)
    if (c->in[i]) OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[i], OC_DTYPE_FLOAT32, "input"));
  return OC_OK;
}

/* 0 when x[0..n) is all finite: x * 0 is 0 for finite x and NaN for Inf
 * and NaN, and NaN survives the sum (vector loop, simd.h). */
OC_SIMD_CLONES static int any_nonfinite(const float *x, int64_t n) {
  oc_v16f acc = oc_v16_set(0.0f);
  int64_t i = 0;
  for (; i + OC_V16 <= n; i += OC_V16) acc += oc_v16_load(x + i) * 0.0f;
  float s = 0.0f;
  for (int k = 0; k < OC_V16; k++) s += acc[k];
  for (; i < n; i++) s += x[i] * 0.0f;
  return s != 0.0f;
}

static oc_status_t check_finite_run(const oc_op_call_t *c) {
  for (int i = 0; i < c->n_in; i++) {
    if (!c->in[i]) continue;
    const float *x = c->in[i]->data;
    int64_t n = oc_tensor_numel(c->in[i]);
    if (!any_nonfinite(x, n)) continue;
    for (int64_t k = 0; k < n; k++)
      if (!isfinite(x[k]))
        return oc_make_status(OC_STATUS_NUMERIC, "input %d holds %s at element %lld", i,
                              isnan(x[k]) ? "NaN" : "Inf", (long long)k);
  }
  return OC_OK;
}

const oc_op_def_t oc_op_check_finite = {"CheckFinite", 1, OC_MAX_OP_INPUTS, 0, 0,
                                        check_finite_infer, check_finite_run, 0};

/* --- LrSchedule / StepCount ------------------------------------------------------ */

static oc_status_t lr_schedule_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  OC_RETURN_IF_ERROR(expect_scalar(c->in[0], OC_DTYPE_FLOAT32, "lr"));
  OC_RETURN_IF_ERROR(expect_scalar(c->in[1], OC_DTYPE_FLOAT32, "base_lr"));
  OC_RETURN_IF_ERROR(expect_scalar(c->in[2], OC_DTYPE_INT64, "step"));
  if (c->n_ints != 1 || (c->ints[0] != 0 && c->ints[0] != 1) || c->n_floats != 3)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [kind] and floats [warmup, total, final]");
  if (!(c->floats[0] >= 0) || !(c->floats[1] >= c->floats[0]))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "warmup must be >= 0 and total >= warmup");
  return OC_OK;
}

static oc_status_t lr_schedule_run(const oc_op_call_t *c) {
  float *lr = c->in[0]->data;
  double base = *(const float *)c->in[1]->data;
  double k = (double)*(const int64_t *)c->in[2]->data;
  double warmup = c->floats[0], total = c->floats[1], final = c->floats[2];
  double v = base;
  if (c->ints[0] == 1) {
    if (k < warmup) {
      v = base * (k + 1) / warmup;
    } else {
      double span = total - warmup;
      double p = span > 0 ? (k - warmup) / span : 1.0;
      if (p > 1) p = 1;
      v = base * (final + (1 - final) * 0.5 * (1 + cos(M_PI * p)));
    }
  }
  *lr = (float)v;
  return OC_OK;
}

const oc_op_def_t oc_op_lr_schedule = {"LrSchedule", 3, 3, 0, 0, lr_schedule_infer,
                                       lr_schedule_run, 1u << 0};

static oc_status_t step_count_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  return expect_scalar(c->in[0], OC_DTYPE_INT64, "step");
}

static oc_status_t step_count_run(const oc_op_call_t *c) {
  int64_t *step = c->in[0]->data;
  if (*step < INT64_MAX) (*step)++;
  return OC_OK;
}

const oc_op_def_t oc_op_step_count = {"StepCount", 1, 1, 0, 0, step_count_infer, step_count_run,
                                      1u << 0};

/* --- optimizers ------------------------------------------------------------------ */

/* param, n_state state tensors, grad (all float32 of one shape), lr f32[1],
 * step i64[1]. */
static oc_status_t update_infer(const oc_op_call_t *c, int n_state, int n_floats) {
  const oc_tensor_t *p = c->in[0];
  OC_RETURN_IF_ERROR(oc_expect_dtype(p, OC_DTYPE_FLOAT32, "parameter"));
  for (int i = 1; i <= n_state + 1; i++)
    if (!same_type(p, c->in[i]))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %d differs in type from the parameter", i);
  OC_RETURN_IF_ERROR(expect_scalar(c->in[n_state + 2], OC_DTYPE_FLOAT32, "lr"));
  OC_RETURN_IF_ERROR(expect_scalar(c->in[n_state + 3], OC_DTYPE_INT64, "step"));
  if (c->n_floats != n_floats)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs %d floats", n_floats);
  return OC_OK;
}

static oc_status_t sgd_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  return update_infer(c, 1, 4);
}

/* p, buf, g are (n); elements [i0, i1) (the context's threads split them). */
static void sgd_part(void *arg, int64_t i0, int64_t i1, int thread) {
  const oc_op_call_t *c = arg;
  float *p = c->in[0]->data, *buf = c->in[1]->data;
  const float *grad = c->in[2]->data;
  float lr = *(const float *)c->in[3]->data;
  int first = *(const int64_t *)c->in[4]->data == 0;
  float momentum = c->floats[0], dampening = c->floats[1], wd = c->floats[2];
  int nesterov = c->floats[3] != 0;
  (void)thread;
  for (int64_t i = i0; i < i1; i++) {
    float g = grad[i];
    if (wd != 0) g = g + wd * p[i];
    if (momentum != 0) {
      buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
      g = nesterov ? g + momentum * buf[i] : buf[i];
    }
    p[i] = p[i] - lr * g;
  }
}

static oc_status_t sgd_run(const oc_op_call_t *c) {
  oc_parallel_for(c->pool, oc_tensor_numel(c->in[0]), oc_grain(4), sgd_part, (void *)c);
  return OC_OK;
}

const oc_op_def_t oc_op_sgd_update = {"SgdUpdate", 5, 5, 0, 0, sgd_infer, sgd_run,
                                      (1u << 0) | (1u << 1)};

static oc_status_t adam_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  return update_infer(c, 2, 5);
}

/* p, m, v, g are (n). PyTorch 1.13's single-tensor Adam, operation for operation. */
static oc_status_t adam_run(const oc_op_call_t *c) {
  float *p = c->in[0]->data, *m = c->in[1]->data, *v = c->in[2]->data;
  const float *grad = c->in[3]->data;
  float lr = *(const float *)c->in[4]->data;
  int64_t t = *(const int64_t *)c->in[5]->data + 1;
  float b1 = c->floats[0], b2 = c->floats[1], eps = c->floats[2], wd = c->floats[3];
  int decoupled = c->floats[4] != 0;
  /* Bias corrections in double, as PyTorch computes them in Python. */
  double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
  float step_size = (float)(lr / bc1);
  float bc2_sqrt = (float)sqrt(bc2);
  int64_t n = oc_tensor_numel(c->in[0]);
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i];
    if (decoupled)
      p[i] = p[i] * (1 - lr * wd);
    else if (wd != 0)
      g = g + wd * p[i];
    m[i] = m[i] * b1 + (1 - b1) * g;
    v[i] = v[i] * b2 + (1 - b2) * g * g;
    float denom = sqrtf(v[i]) / bc2_sqrt + eps;
    p[i] = p[i] - step_size * (m[i] / denom);
  }
  return OC_OK;
}

const oc_op_def_t oc_op_adam_update = {"AdamUpdate", 6, 6, 0, 0, adam_infer, adam_run,
                                       (1u << 0) | (1u << 1) | (1u << 2)};

static oc_status_t lars_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  return update_infer(c, 1, 5);
}

static oc_status_t lars_run(const oc_op_call_t *c) {
  float *p = c->in[0]->data, *buf = c->in[1]->data;
  const float *grad = c->in[2]->data;
  float lr = *(const float *)c->in[3]->data;
  float momentum = c->floats[0], wd = c->floats[1], trust = c->floats[2], eps = c->floats[3];
  int adapt = c->floats[4] != 0;
  int64_t n = oc_tensor_numel(c->in[0]);
  double local = 1.0;
  if (adapt) {
    double pn = 0, gn = 0;
    for (int64_t i = 0; i < n; i++) {
      double g = (double)grad[i] + (double)wd * p[i];
      pn += (double)p[i] * p[i];
      gn += g * g;
    }
    pn = sqrt(pn);
    gn = sqrt(gn);
    if (pn > 0 && gn > 0) local = trust * pn / (gn + eps);
  }
  float scaled = (float)(lr * local);
  for (int64_t i = 0; i < n; i++) {
    float g = adapt ? grad[i] + wd * p[i] : grad[i];
    buf[i] = momentum * buf[i] + scaled * g;
    p[i] = p[i] - buf[i];
  }
  return OC_OK;
}

const oc_op_def_t oc_op_lars_update = {"LarsUpdate", 5, 5, 0, 0, lars_infer, lars_run,
                                       (1u << 0) | (1u << 1)};

/* --- EmaUpdate, ClampState, QueuePush --------------------------------------------- */

/* EmaUpdate: in: dst (state, updated), src (same type); floats [m].
 * dst = m * dst + (1 - m) * src (MoCo's momentum encoder). */
static oc_status_t ema_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[0], OC_DTYPE_FLOAT32, "dst"));
  if (!same_type(c->in[0], c->in[1]))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "dst and src differ in type");
  if (c->n_floats != 1 || !(c->floats[0] >= 0 && c->floats[0] <= 1))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs floats [m] with m in [0, 1]");
  return OC_OK;
}

static oc_status_t ema_run(const oc_op_call_t *c) {
  float *dst = c->in[0]->data;
  const float *src = c->in[1]->data;
  float m = c->floats[0];
  int64_t n = oc_tensor_numel(c->in[0]);
  /* torch: param_k.data = param_k.data * m + param_q.data * (1. - m) */
  for (int64_t i = 0; i < n; i++) dst[i] = dst[i] * m + src[i] * (1.0f - m);
  return OC_OK;
}

const oc_op_def_t oc_op_ema_update = {"EmaUpdate", 2, 2, 0, 0, ema_infer, ema_run, 1u << 0};

/* ClampState: in: x (state, updated); floats [min, max]. */
static oc_status_t clamp_state_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[0], OC_DTYPE_FLOAT32, "x"));
  if (c->n_floats != 2 || !(c->floats[0] <= c->floats[1]))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs floats [min, max] with min <= max");
  return OC_OK;
}

static oc_status_t clamp_state_run(const oc_op_call_t *c) {
  float *x = c->in[0]->data;
  int64_t n = oc_tensor_numel(c->in[0]);
  for (int64_t i = 0; i < n; i++) {
    if (x[i] < c->floats[0]) x[i] = c->floats[0];
    if (x[i] > c->floats[1]) x[i] = c->floats[1];
  }
  return OC_OK;
}

const oc_op_def_t oc_op_clamp_state = {"ClampState", 1, 1, 0, 0, clamp_state_infer,
                                       clamp_state_run, 1u << 0};

/* QueuePush: in: queue (state, updated: dims (O..., K, I...) with K entries
 * along axis), ptr (state int64[1], updated), value (n, O..., I...): n
 * entries, each the queue's shape without the axis (a batch of embeddings
 * [n, D] for a [D, K] or [K, D] queue); ints [axis]. Entry j goes to index
 * (ptr + j) mod K, then ptr = (ptr + n) mod K: MoCo's _dequeue_and_enqueue
 * (queue[:, ptr:ptr + n] = keys.T for a [D, K] queue). */
static oc_status_t queue_push_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  const oc_tensor_t *q = c->in[0], *v = c->in[2];
  OC_RETURN_IF_ERROR(expect_scalar(c->in[1], OC_DTYPE_INT64, "ptr"));
  if (c->n_ints != 1) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [axis]");
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], q->rank, &axis));
  int ok = q->dtype == v->dtype && q->rank == v->rank && q->rank > 0 && q->dims[axis] > 0 &&
           v->dims[0] <= q->dims[axis];
  for (int d = 0, k = 1; ok && d < q->rank; d++)
    if (d != axis) ok = q->dims[d] == v->dims[k++];
  if (!ok) {
    char b1[160], b2[160];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "cannot push %s into queue %s along axis %d: the value must be (n, the "
                          "queue's other dims) with n <= the queue's length",
                          oc_type_str(v, b1, sizeof b1), oc_type_str(q, b2, sizeof b2), axis);
  }
  return OC_OK;
}

static oc_status_t queue_push_run(const oc_op_call_t *c) {
  const oc_tensor_t *q = c->in[0], *v = c->in[2];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + q->rank : c->ints[0]);
  int64_t outer = 1, inner = 1, K = q->dims[axis], n = v->dims[0];
  for (int d = 0; d < axis; d++) outer *= q->dims[d];
  for (int d = axis + 1; d < q->rank; d++) inner *= q->dims[d];
  size_t es = oc_dtype_size(q->dtype), row = (size_t)inner * es;
  int64_t *ptr = c->in[1]->data;
  int64_t p = *ptr % K;
  if (p < 0) p += K;
  /* queue[o, (p + j) % K, :] = value[j, o, :] */
  for (int64_t j = 0; j < n; j++)
    for (int64_t o = 0; o < outer; o++)
      memcpy((char *)q->data + (size_t)(o * K + (p + j) % K) * row,
             (const char *)v->data + (size_t)(j * outer + o) * row, row);
  *ptr = (p + n) % K;
  return OC_OK;
}

const oc_op_def_t oc_op_queue_push = {"QueuePush", 3, 3, 0, 0, queue_push_infer, queue_push_run,
                                      (1u << 0) | (1u << 1)};
