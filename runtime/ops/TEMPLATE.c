/*
 * TEMPLATE for a runtime op. Copy to runtime/ops/<op>.c, then:
 *   1. append OC_OP(MY_OP, "MyOp", oc_op_my_op) to ops/op_list.h (at the end!);
 *   2. document the meaning of ints[] and floats[] below;
 *   3. write infer (the shape rule; validate every int you read) and run;
 *   4. add the compiler side in compiler/ops/ (see compiler/ops/TEMPLATE.c).
 *
 * MyOp: y = f(x).
 *   inputs:  x (float32, any shape)
 *   outputs: y (same type as x)
 *   ints:    none          floats: none
 */
#include "oc_ops.h"

static oc_status_t my_op_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "x"));
  if (c->n_ints != 0 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no attributes");
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0; /* scratch bytes the kernel needs, planned by the compiler */
  return OC_OK;
}

/* x is (n), y is (n). */
static oc_status_t my_op_run(const oc_op_call_t *c) {
  const float *x = c->in[0]->data;
  float *y = c->out[0]->data;
  int64_t n = oc_tensor_numel(c->in[0]);
  for (int64_t i = 0; i < n; i++) y[i] = x[i];
  return OC_OK;
}

const oc_op_def_t oc_op_my_op = {"MyOp", 1, 1, 1, 1, my_op_infer, my_op_run};
