/*
 * Loss heads -> runtime/ops/loss.c (OC_OP_NLL_LOSS) and
 * runtime/ops/softmax.c (OC_OP_LOG_SOFTMAX).
 *
 * NegativeLogLikelihoodLoss (opsets 12, 13): one NLL_LOSS instruction, ints
 * [reduction (0 none, 1 sum, 2 mean), has_ignore, ignore_index].
 * SoftmaxCrossEntropyLoss (opsets 12, 13): LogSoftmax over axis 1 (ints
 * [1, 0]) into the log_prob output (or a temporary when the node does not
 * ask for it), then NLL_LOSS on it: exactly PyTorch's F.cross_entropy =
 * nll_loss(log_softmax(x, 1)). The stable LogSoftmax gives -inf, never NaN,
 * for a -inf score in a row with a finite entry (masked logits), and such an
 * entry only matters when it is the target (loss +inf).
 * The two opset versions differ only in the types they admit (bfloat16 in
 * 13); onnxc computes float32, and refuses float16, bfloat16 and float64.
 */
#include <string.h>

#include "autodiff.h"
#include "lower.h"

/* Reads reduction and ignore_index into the NLL_LOSS ints. */
static oc_status_t loss_attrs(oc_lower_t *lw, int64_t ints[3]) {
  const char *reduction;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "reduction", "mean", &reduction));
  if (strcmp(reduction, "none") == 0)
    ints[0] = 0;
  else if (strcmp(reduction, "sum") == 0)
    ints[0] = 1;
  else if (strcmp(reduction, "mean") == 0)
    ints[0] = 2;
  else
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'reduction' is '%s'; must be 'none', 'sum' or 'mean'",
                          reduction);
  ints[1] = oc_node_attr(lw->node, "ignore_index") != NULL;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "ignore_index", 0, &ints[2]));
  if (!ints[1]) ints[2] = 0;
  return OC_OK;
}

/* Checks the inputs' presence and dtypes; names them as the ONNX op does. */
static oc_status_t loss_inputs(oc_lower_t *lw, const char *x_name, const char *t_name,
                               const char *w_name) {
  if (oc_lower_out(lw, 0) < 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "output 0 (the loss) is missing");
  const oc_tensor_t *x = oc_lower_input(lw, 0), *t = oc_lower_input(lw, 1);
  const oc_tensor_t *w = oc_lower_input(lw, 2);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", x_name);
  if (!t) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", t_name);
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input '%s' has dtype %s; float32 only",
                          x_name, oc_dtype_name(x->dtype));
  if (w && w->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input '%s' has dtype %s; float32 only",
                          w_name, oc_dtype_name(w->dtype));
  if (t->dtype != OC_DTYPE_INT64 && t->dtype != OC_DTYPE_INT32)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input '%s' has dtype %s; must be int64 or int32", t_name,
                          oc_dtype_name(t->dtype));
  if (x->rank < 2)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input '%s' has rank %d; must be (N, C) or (N, C, d1, ..., dk)",
                          x_name, x->rank);
  return OC_OK;
}

oc_status_t oc_lower_negative_log_likelihood_loss(oc_lower_t *lw);
oc_status_t oc_lower_negative_log_likelihood_loss(oc_lower_t *lw) {
  int64_t ints[3];
  OC_RETURN_IF_ERROR(loss_inputs(lw, "input", "target", "weight"));
  OC_RETURN_IF_ERROR(loss_attrs(lw, ints));
  int w = oc_lower_in(lw, 2);
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), w};
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_NLL_LOSS, w >= 0 ? 3 : 2, in, 1, out, ints, 3, NULL, 0);
}

oc_status_t oc_lower_softmax_cross_entropy_loss(oc_lower_t *lw);
oc_status_t oc_lower_softmax_cross_entropy_loss(oc_lower_t *lw) {
  int64_t ints[3];
  OC_RETURN_IF_ERROR(loss_inputs(lw, "scores", "labels", "weights"));
  OC_RETURN_IF_ERROR(loss_attrs(lw, ints));
  int log_prob = oc_lower_out(lw, 1);
  if (log_prob < 0) log_prob = oc_lower_temp(lw, "log_prob");
  if (log_prob < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int64_t sm_ints[2] = {1, 0}; /* axis 1, that axis alone */
  int x_in[1] = {oc_lower_in(lw, 0)}, lp_out[1] = {log_prob};
  OC_RETURN_IF_ERROR(oc_lower_emit(lw, OC_OP_LOG_SOFTMAX, 1, x_in, 1, lp_out, sm_ints, 2, NULL, 0));
  int w = oc_lower_in(lw, 2);
  int in[3] = {log_prob, oc_lower_in(lw, 1), w};
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_NLL_LOSS, w >= 0 ? 3 : 2, in, 1, out, ints, 3, NULL, 0);
}

/* --- gradients ---------------------------------------------------------------- */

/* NLL_LOSS: dx = NegativeLogLikelihoodLossBwd(dy, target[, weight]), ints the
 * forward's plus C: zero except -w[t] * dy at the target class (divided by
 * the total non-ignored weight for mean), zero for ignored labels. The target
 * is an index and the class weights get no gradient (PyTorch's cross_entropy
 * does not differentiate them by default), so only x is differentiated.
 * Masked logits (-inf) before LogSoftmax keep exactly 0 gradient as long as
 * the target is never a masked entry: this rule writes only target entries. */
oc_status_t oc_grad_nll_loss(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_nll_loss(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK; /* target, weight: no gradient */
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  int64_t ints[4] = {fwd->ints[0], fwd->ints[1], fwd->ints[2], x->dims[1]};
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int has_w = fwd->n_in > 2 && fwd->in[2] >= 0;
  int in[3] = {dy[0], fwd->in[1], has_w ? fwd->in[2] : -1};
  OC_RETURN_IF_ERROR(
      oc_grad_emit(gc, OC_OP_NLL_LOSS_BWD, has_w ? 3 : 2, in, 1, &dx, ints, 4, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
