/*
 * Copy: the reshape family (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * inference Dropout). The bytes are unchanged; only the dims differ.
 *   inputs:  x (any dtype)
 *   outputs: y, same dtype and element count as x
 *   ints:    the dims of y
 */
#include <string.h>

#include "oc_ops.h"

static oc_status_t copy_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "rank %d exceeds %d", c->n_ints, OC_MAX_RANK);
  oc_tensor_t y = {.dtype = x->dtype, .rank = c->n_ints};
  for (int i = 0; i < c->n_ints; i++) y.dims[i] = c->ints[i];
  OC_RETURN_IF_ERROR(oc_check_type(&y, "output"));
  if (oc_tensor_numel(&y) != oc_tensor_numel(x)) {
    char b1[160], b2[160];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "cannot reshape %s to %s",
                          oc_type_str(x, b1, sizeof b1), oc_type_str(&y, b2, sizeof b2));
  }
  oc_tensor_set_type(c->out[0], y.dtype, y.rank, y.dims);
  *ws = 0;
  return OC_OK;
}

static oc_status_t copy_run(const oc_op_call_t *c) {
  if (c->out[0]->data != c->in[0]->data)
    memmove(c->out[0]->data, c->in[0]->data, oc_tensor_bytes(c->in[0]));
  return OC_OK;
}

const oc_op_def_t oc_op_copy = {"Copy", 1, 1, 1, 1, copy_infer, copy_run, 0, 1u << 0};
