/*
 * TEMPLATE for the compiler side of an ONNX op. Copy into the op family's
 * file in compiler/ops/ (or a new file), then:
 *   1. add OC_ONNX_OP("", "MyOp", oc_lower_my_op, FIRST_OPSET, "dtypes") to
 *      compiler/ops/onnx_ops.h;
 *   2. read attributes with oc_lower_attr_*, check opset differences
 *      (lw->opset), and refuse what the runtime op cannot do with a message
 *      naming the attribute (oc_lower_error names the node for you);
 *   3. emit the runtime op (runtime/ops/<op>.c) with oc_lower_emit: shapes are
 *      inferred and constants folded there.
 * Later (training): the op's gradient rule goes next to its lowering.
 */
#include "lower.h"

oc_status_t oc_lower_my_op(oc_lower_t *lw);

oc_status_t oc_lower_my_op(oc_lower_t *lw) {
  int64_t alpha;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "alpha", 1, &alpha));
  if (alpha != 1) return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "alpha=%lld", (long long)alpha);
  int in[1] = {oc_lower_in(lw, 0)};
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_COPY /* your op */, 1, in, 1, out, NULL, 0, NULL, 0);
}
