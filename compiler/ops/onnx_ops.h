/*
 * The ONNX ops the compiler imports: OC_ONNX_OP(domain, "OpType", lower_fn).
 * Each lowering function lives with its op family in compiler/ops/<family>.c
 * (see compiler/ops/TEMPLATE.c). Order does not matter here; nothing is
 * serialized by position.
 */
/* elementwise.c */
OC_ONNX_OP("", "Add", oc_lower_add)
OC_ONNX_OP("", "Sub", oc_lower_sub)
OC_ONNX_OP("", "Mul", oc_lower_mul)
OC_ONNX_OP("", "Div", oc_lower_div)
OC_ONNX_OP("", "Pow", oc_lower_pow)
OC_ONNX_OP("", "Equal", oc_lower_equal)
OC_ONNX_OP("", "Less", oc_lower_less)
OC_ONNX_OP("", "Greater", oc_lower_greater)
OC_ONNX_OP("", "Where", oc_lower_where)
OC_ONNX_OP("", "Relu", oc_lower_relu)
OC_ONNX_OP("", "Exp", oc_lower_exp)
OC_ONNX_OP("", "Sqrt", oc_lower_sqrt)
OC_ONNX_OP("", "Erf", oc_lower_erf)
OC_ONNX_OP("", "Neg", oc_lower_neg)
OC_ONNX_OP("", "Clip", oc_lower_clip)
OC_ONNX_OP("", "Cast", oc_lower_cast)
OC_ONNX_OP("", "CastLike", oc_lower_castlike)
OC_ONNX_OP("", "Identity", oc_lower_identity)
OC_ONNX_OP("", "Dropout", oc_lower_dropout)
