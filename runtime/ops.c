/* The op table (from ops/op_list.h) and helpers shared by op files. */
#include <stdio.h>
#include <string.h>

#include "oc_ops.h"

static const oc_op_def_t *const op_table[] = {
#define OC_OP(e, name, def) &def,
#include "ops/op_list.h"
#undef OC_OP
};

_Static_assert(sizeof(op_table) / sizeof(op_table[0]) == OC_OP_COUNT, "op table size");

const oc_op_def_t *oc_op_get(int op) {
  if (op < 0 || op >= OC_OP_COUNT) return NULL;
  return op_table[op];
}

oc_status_t oc_op_infer(int op, const oc_op_call_t *call, size_t *out_workspace_bytes) {
  const oc_op_def_t *def = oc_op_get(op);
  if (!def) return oc_make_status(OC_STATUS_CORRUPT, "unknown op number %d", op);
  if (call->n_in < def->min_inputs || call->n_in > def->max_inputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s takes %d to %d inputs, got %d",
                          def->name, def->min_inputs, def->max_inputs, call->n_in);
  if (call->n_out < def->min_outputs || call->n_out > def->max_outputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s takes %d to %d outputs, got %d",
                          def->name, def->min_outputs, def->max_outputs, call->n_out);
  if (call->n_ints < 0 || call->n_ints > OC_MAX_OP_INTS || call->n_floats < 0 ||
      call->n_floats > OC_MAX_OP_FLOATS)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: too many attributes", def->name);
  for (int i = 0; i < def->min_inputs; i++)
    if (!call->in[i])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: input %d is required", def->name, i);
  for (int i = 0; i < call->n_in; i++)
    if (call->in[i]) OC_RETURN_IF_ERROR(oc_check_type(call->in[i], "input"));
  size_t ws = 0;
  OC_RETURN_IF_ERROR(def->infer(call, &ws));
  for (int i = 0; i < call->n_out; i++) OC_RETURN_IF_ERROR(oc_check_type(call->out[i], "output"));
  if (out_workspace_bytes) *out_workspace_bytes = ws;
  return OC_OK;
}

void oc_tensor_set_type(oc_tensor_t *t, int dtype, int rank, const int64_t *dims) {
  t->dtype = dtype;
  t->rank = rank;
  for (int i = 0; i < rank && i < OC_MAX_RANK; i++) t->dims[i] = dims[i];
}

oc_status_t oc_check_type(const oc_tensor_t *t, const char *what) {
  char buf[160];
  if (t->rank < 0 || t->rank > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "%s has rank %d; the limit is %d", what,
                          t->rank, OC_MAX_RANK);
  if (oc_dtype_size(t->dtype) == 0)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "%s has dtype %s, which onnxc does not compute",
                          what, oc_dtype_name(t->dtype));
  /* The bytes the tensor would have with every 0 dim read as 1: an empty
   * tensor must not have strides that overflow either ([0, 2^40, 2^40]
   * holds nothing, but the stride of its axis 0 is 2^80 elements). */
  uint64_t n = oc_dtype_size(t->dtype);
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0 || t->dims[i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "%s %s: dimension %d is %lld; dimensions must be in [0, 2^40]", what,
                            oc_type_str(t, buf, sizeof buf), i, (long long)t->dims[i]);
    uint64_t d = t->dims[i] ? (uint64_t)t->dims[i] : 1;
    if (oc_mul_overflows(n, d, &n) || n > OC_MAX_TENSOR_BYTES)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "%s %s is larger than the 2^40-byte limit (for an empty tensor: its "
                            "dims other than 0)",
                            what, oc_type_str(t, buf, sizeof buf));
  }
  return OC_OK;
}

const char *oc_type_str(const oc_tensor_t *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", oc_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && i < OC_MAX_RANK && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

oc_status_t oc_norm_axis(int64_t axis, int rank, int *out) {
  if (axis < -(int64_t)rank || axis >= (int64_t)rank) {
    if (!(rank == 0 && (axis == 0 || axis == -1)))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                            (long long)axis, rank);
    *out = 0;
    return OC_OK;
  }
  *out = (int)(axis < 0 ? axis + rank : axis);
  return OC_OK;
}

oc_status_t oc_broadcast_shape(const oc_tensor_t *a, const oc_tensor_t *b, int *out_rank,
                               int64_t *out_dims) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char b1[160], b2[160];
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "shapes %s and %s do not broadcast",
                            oc_type_str(a, b1, sizeof b1), oc_type_str(b, b2, sizeof b2));
    }
    out_dims[i] = da == 1 ? db : da;
  }
  *out_rank = r;
  return OC_OK;
}

oc_status_t oc_expect_dtype(const oc_tensor_t *t, int dtype, const char *what) {
  if (t->dtype != dtype)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "%s has dtype %s; expected %s", what,
                          oc_dtype_name(t->dtype), oc_dtype_name(dtype));
  return OC_OK;
}
