/*
 * Gradient rules: OC_GRAD_OP(runtime op, rule, "ONNX ops"). The rule lives
 * next to the op's lowering in compiler/ops/<family>.c (see autodiff.h). The
 * string lists the ONNX ops that lower to this runtime op alone, for the
 * gradient column of docs/ops.md.
 */
OC_GRAD_OP(OC_OP_COPY, oc_grad_copy, "Reshape Flatten Squeeze Unsqueeze Identity")
OC_GRAD_OP(OC_OP_TRANSPOSE, oc_grad_transpose, "Transpose")
OC_GRAD_OP(OC_OP_CONCAT, oc_grad_concat, "Concat")
OC_GRAD_OP(OC_OP_SPLIT, oc_grad_split, "Split")
OC_GRAD_OP(OC_OP_SLICE, oc_grad_slice, "Slice")
OC_GRAD_OP(OC_OP_EXPAND, oc_grad_expand, "Expand")
OC_GRAD_OP(OC_OP_CONV, oc_grad_conv, "Conv")
OC_GRAD_OP(OC_OP_MAXPOOL, oc_grad_maxpool, "MaxPool")
OC_GRAD_OP(OC_OP_AVGPOOL, oc_grad_avgpool, "AveragePool")
OC_GRAD_OP(OC_OP_GLOBAL_AVGPOOL, oc_grad_global_avgpool, "GlobalAveragePool")
OC_GRAD_OP(OC_OP_GLOBAL_MAXPOOL, oc_grad_global_maxpool, "GlobalMaxPool")
