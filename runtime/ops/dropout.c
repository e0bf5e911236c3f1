/*
 * Dropout in training mode: zeroes each element with probability ratio and
 * scales the kept ones by 1 / (1 - ratio). (Inference-mode Dropout is the
 * identity; the compiler emits a Copy for it.)
 *
 *   inputs:  x (float32, any shape), rng (int64[2] = {seed, counter}: a
 *            persistent state value, updated in place)
 *   outputs: y (float32, shape of x), mask (optional, bool, shape of x: 1 =
 *            kept)
 *   ints:    none          floats: [ratio] in [0, 1]
 *
 * Element i of the run with counter value k keeps x[i] when
 * u(seed, k, i) >= ratio, where u is a uniform double in [0, 1) made from
 * the top 53 bits of a counter-based hash (splitmix64's finalizer) of
 * (seed, k, i). After the run the counter is k + 1, so every run draws a
 * fresh mask, reproducibly from the seed and independent of how the work is
 * split. ratio 1 drops everything (y = 0).
 */
#include <math.h>

#include "oc_ops.h"

static oc_status_t dropout_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0], *rng = c->in[1];
  char buf[160];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input data"));
  if (rng->dtype != OC_DTYPE_INT64 || rng->rank != 1 || rng->dims[0] != 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "the RNG state is %s; expected int64[2] {seed, counter}",
                          oc_type_str(rng, buf, sizeof buf));
  if (c->n_ints != 0 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Dropout takes floats [ratio] and no ints, got %d ints and %d floats",
                          c->n_ints, c->n_floats);
  float ratio = c->floats[0];
  if (!(ratio >= 0.0f && ratio <= 1.0f))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ratio %g is not in [0, 1]", ratio);
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  if (c->n_out > 1) oc_tensor_set_type(c->out[1], OC_DTYPE_BOOL, x->rank, x->dims);
  return OC_OK;
}

/* splitmix64's output function: a bijective 64-bit mixer. */
static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* y, mask (may be NULL) and x are (n). The key (seed, counter) fixes the
 * stream; element i draws mix64(key + (i + 1) * golden). */
static void dropout_forward(float *y, uint8_t *mask, const float *x, int64_t n, float ratio,
                            uint64_t seed, uint64_t counter) {
  const uint64_t golden = 0x9e3779b97f4a7c15ull;
  uint64_t key = mix64(seed ^ mix64(counter + golden));
  double r = ratio;
  float scale = ratio < 1.0f ? (float)(1.0 / (1.0 - r)) : 0.0f;
  for (int64_t i = 0; i < n; i++) {
    uint64_t h = mix64(key + (uint64_t)(i + 1) * golden);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    int keep = u >= r;
    y[i] = keep ? x[i] * scale : 0.0f;
    if (mask) mask[i] = (uint8_t)keep;
  }
}

static oc_status_t dropout_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t *state = c->in[1]->data;
  dropout_forward(c->out[0]->data, c->n_out > 1 ? c->out[1]->data : NULL, x->data,
                  oc_tensor_numel(x), c->floats[0], (uint64_t)state[0], (uint64_t)state[1]);
  state[1] = (int64_t)((uint64_t)state[1] + 1u); /* wraps after 2^64 runs */
  return OC_OK;
}

const oc_op_def_t oc_op_dropout = {"Dropout", 2, 2, 1, 2, dropout_infer, dropout_run,
                                   1u << 1 /* rng */};

/* --- backward --------------------------------------------------------------- */

/*
 * DropoutBwd: the gradient of training-mode Dropout with respect to x.
 *   inputs:  dy (float32, any shape), mask (bool, dy's shape: the mask the
 *            forward drew, its second output)
 *   outputs: dx (float32, dy's shape)
 *   ints:    none          floats: the forward's [ratio] in [0, 1]
 * dx = mask ? dy * scale : 0 with the forward's scale (float)(1 / (1 - ratio))
 * (0 for ratio 1), so a kept element's gradient is exactly the factor its
 * value was multiplied by. The mask is read, never redrawn: the forward's RNG
 * counter has already moved on when the backward runs.
 */
static oc_status_t dropout_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0], *mask = c->in[1];
  char b1[160], b2[160];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(mask, OC_DTYPE_BOOL, "input mask"));
  int same = mask->rank == dy->rank;
  for (int i = 0; i < dy->rank && same; i++) same = mask->dims[i] == dy->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input mask is %s; dY is %s",
                          oc_type_str(mask, b1, sizeof b1), oc_type_str(dy, b2, sizeof b2));
  if (c->n_ints != 0 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "DropoutBwd takes floats [ratio] and no ints, got %d ints and %d floats",
                          c->n_ints, c->n_floats);
  float ratio = c->floats[0];
  if (!(ratio >= 0.0f && ratio <= 1.0f))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ratio %g is not in [0, 1]", ratio);
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, dy->rank, dy->dims);
  return OC_OK;
}

/* dx, dy and mask are (n). */
static oc_status_t dropout_bwd_run(const oc_op_call_t *c) {
  const float *dy = c->in[0]->data;
  const uint8_t *mask = c->in[1]->data;
  float *dx = c->out[0]->data;
  float ratio = c->floats[0];
  float scale = ratio < 1.0f ? (float)(1.0 / (1.0 - (double)ratio)) : 0.0f;
  int64_t n = oc_tensor_numel(c->in[0]);
  for (int64_t i = 0; i < n; i++) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
  return OC_OK;
}

const oc_op_def_t oc_op_dropout_bwd = {"DropoutBwd", 2, 2, 1, 1, dropout_bwd_infer,
                                       dropout_bwd_run, 0, 1u << 0 /* dx over dy */};
