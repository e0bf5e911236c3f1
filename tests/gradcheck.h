/*
 * Gradient checks against finite differences of a double-precision
 * reference (header-only; include it in one test file).
 *
 * gc_check builds a one-instruction program around runtime op |op| (inputs
 * marked differentiable become trained parameters), takes the loss
 * sum(output0 * W) for a fixed random W (seeding the backward pass with W, so
 * no other op's rule is involved), runs the compiler's autodiff, runs
 * forward + backward with the real kernels, and compares each parameter's
 * gradient with central differences of the same loss computed with |ref|, a
 * double-precision implementation of the op written in the test.
 *
 * Tolerance: |g - fd| <= tol * max(max|fd|, 1e-3) elementwise per input.
 */
#ifndef ONNXC_TESTS_GRADCHECK_H
#define ONNXC_TESTS_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"

typedef struct gc_input_s {
  int dtype; /* float32 for differentiable inputs; any for others */
  int rank;
  int64_t dims[OC_MAX_RANK];
  const void *data;
  int differentiable;
} gc_input_t;

/* out[i] for the output type |out_type| from inputs converted to double
 * (non-float inputs are converted too: int64 indices arrive as doubles). */
typedef void (*gc_ref_fn)(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                          const oc_tensor_t *out_type, const void *user);

static int64_t gc_numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  return n;
}

static double gc_load(const void *p, int dtype, int64_t i) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32: return ((const float *)p)[i];
    case OC_DTYPE_INT64: return (double)((const int64_t *)p)[i];
    case OC_DTYPE_INT32: return ((const int32_t *)p)[i];
    case OC_DTYPE_BOOL: return ((const uint8_t *)p)[i];
  }
  return 0;
}

/* Runs every instruction of |g| with freshly allocated buffers. */
static oc_status_t gc_execute(oc_graph_t *g, void **buf) {
  for (int v = 0; v < g->n_values; v++) {
    oc_value_t *val = &g->values[v];
    if (!val->known || buf[v]) continue;
    size_t bytes = oc_tensor_bytes(&val->type);
    buf[v] = calloc(1, bytes + 64);
    if (val->type.data) memcpy(buf[v], val->type.data, bytes);
  }
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    oc_tensor_t tin[OC_MAX_OP_INPUTS], tout[OC_MAX_OP_OUTPUTS];
    oc_tensor_t *pin[OC_MAX_OP_INPUTS], *pout[OC_MAX_OP_OUTPUTS];
    for (int k = 0; k < ins->n_in; k++) {
      pin[k] = NULL;
      if (ins->in[k] < 0) continue;
      tin[k] = g->values[ins->in[k]].type;
      tin[k].data = buf[ins->in[k]];
      pin[k] = &tin[k];
    }
    for (int k = 0; k < ins->n_out; k++) {
      tout[k] = g->values[ins->out[k]].type;
      tout[k].data = buf[ins->out[k]];
      pout[k] = &tout[k];
    }
    void *ws = ins->workspace_bytes ? calloc(1, ins->workspace_bytes) : NULL;
    oc_op_call_t call = {.ints = ins->ints, .n_ints = ins->n_ints, .floats = ins->floats,
                         .n_floats = ins->n_floats, .n_in = ins->n_in, .in = pin,
                         .n_out = ins->n_out, .out = pout, .workspace = ws,
                         .workspace_bytes = ins->workspace_bytes};
    oc_status_t s = oc_op_get(ins->op)->run(&call);
    free(ws);
    if (s) return s;
  }
  return OC_OK;
}

static uint64_t gc_rng = 88172645463325252ULL;
static double gc_uniform(void) {
  gc_rng ^= gc_rng << 13;
  gc_rng ^= gc_rng >> 7;
  gc_rng ^= gc_rng << 17;
  return (double)(gc_rng >> 11) / 9007199254740992.0 * 2 - 1;
}

/* Returns 0 when every gradient matches; otherwise 1 with a message. */
static int gc_check(int op, const int64_t *ints, int n_ints, const float *floats, int n_floats,
                    const gc_input_t *inputs, int n_in, gc_ref_fn ref, const void *user,
                    double tol, char *msg, size_t msg_size) {
  oc_graph_t *g = oc_graph_new();
  int in_v[OC_MAX_OP_INPUTS], params[OC_MAX_OP_INPUTS], grads[OC_MAX_OP_INPUTS], n_params = 0;
  int rc = 1;
  void **buf = NULL;
  double **din = NULL, *dout = NULL, *w = NULL;
  msg[0] = 0;
  for (int i = 0; i < n_in; i++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", i);
    in_v[i] = -1;
    if (!inputs[i].data) continue;
    in_v[i] = oc_graph_value(g, name);
    oc_status_t s = oc_value_set_const(g, in_v[i], inputs[i].dtype, inputs[i].rank, inputs[i].dims,
                                       inputs[i].data);
    if (s) {
      snprintf(msg, msg_size, "%s", oc_status_message(s));
      oc_status_free(s);
      goto out;
    }
    if (inputs[i].differentiable) {
      g->values[in_v[i]].kind = OC_VALUE_STATE;
      g->values[in_v[i]].foldable = 0;
      params[n_params++] = in_v[i];
    }
  }
  /* y = op(inputs); loss = sum(y * W) */
  int y[OC_MAX_OP_OUTPUTS];
  const oc_op_def_t *def = oc_op_get(op);
  int n_out = def->min_outputs > 0 ? def->min_outputs : 1;
  for (int k = 0; k < n_out; k++) {
    char name[32];
    snprintf(name, sizeof name, "y%d", k);
    y[k] = oc_graph_value(g, name);
  }
  oc_status_t s = oc_emit_instr(g, "op", op, n_in, in_v, n_out, y, ints, n_ints, floats, n_floats);
  if (s) {
    snprintf(msg, msg_size, "forward: %s", oc_status_message(s));
    oc_status_free(s);
    goto out;
  }
  const oc_tensor_t yt = g->values[y[0]].type;
  int64_t ny = oc_tensor_numel(&yt);
  int wv = oc_graph_value(g, "W");
  s = oc_value_set_const(g, wv, OC_DTYPE_FLOAT32, yt.rank, yt.dims, NULL);
  w = malloc(sizeof(double) * (size_t)(ny + 1));
  for (int64_t k = 0; k < ny; k++) {
    float r = (float)gc_uniform();
    ((float *)g->values[wv].type.data)[k] = r;
    w[k] = r;
  }
  /* d(sum(y * W))/dy = W: seed the backward pass with W. */
  if (!s) s = oc_autodiff(g, y[0], wv, params, n_params, grads);
  if (s) {
    snprintf(msg, msg_size, "%s", oc_status_message(s));
    oc_status_free(s);
    goto out;
  }
  buf = calloc((size_t)g->n_values + 1, sizeof(void *));
  s = gc_execute(g, buf);
  if (s) {
    snprintf(msg, msg_size, "run: %s", oc_status_message(s));
    oc_status_free(s);
    goto out;
  }
  /* Finite differences of the double reference. */
  din = calloc((size_t)n_in + 1, sizeof(double *));
  dout = malloc(sizeof(double) * (size_t)(ny + 1));
  for (int i = 0; i < n_in; i++) {
    if (!inputs[i].data) continue;
    int64_t n = gc_numel(inputs[i].rank, inputs[i].dims);
    din[i] = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t k = 0; k < n; k++) din[i][k] = gc_load(inputs[i].data, inputs[i].dtype, k);
  }
  int p = 0;
  rc = 0;
  for (int i = 0; i < n_in && !rc; i++) {
    if (!inputs[i].data || !inputs[i].differentiable) continue;
    const float *grad = buf[grads[p++]];
    int64_t n = gc_numel(inputs[i].rank, inputs[i].dims);
    double *fd = malloc(sizeof(double) * (size_t)(n + 1)), max_fd = 1e-3;
    for (int64_t k = 0; k < n; k++) {
      double x0 = din[i][k], h = 1e-6 * (fabs(x0) > 1 ? fabs(x0) : 1), lp = 0, lm = 0;
      din[i][k] = x0 + h;
      ref((const double *const *)din, inputs, n_in, dout, &yt, user);
      for (int64_t j = 0; j < ny; j++) lp += dout[j] * w[j];
      din[i][k] = x0 - h;
      ref((const double *const *)din, inputs, n_in, dout, &yt, user);
      for (int64_t j = 0; j < ny; j++) lm += dout[j] * w[j];
      din[i][k] = x0;
      fd[k] = (lp - lm) / (2 * h);
      if (fabs(fd[k]) > max_fd) max_fd = fabs(fd[k]);
    }
    for (int64_t k = 0; k < n && !rc; k++)
      if (!(fabs(grad[k] - fd[k]) <= tol * max_fd)) {
        snprintf(msg, msg_size, "input %d element %lld: autodiff %.8g, finite differences %.8g "
                 "(max |fd| %.4g, tol %.2g)", i, (long long)k, grad[k], fd[k], max_fd, tol);
        rc = 1;
      }
    free(fd);
  }
out:
  if (buf)
    for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  if (din)
    for (int i = 0; i < n_in; i++) free(din[i]);
  free(din);
  free(dout);
  free(w);
  oc_graph_free(g);
  return rc;
}

#endif
