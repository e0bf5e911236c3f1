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
OC_GRAD_OP(OC_OP_MATMUL, oc_grad_matmul, "MatMul")
OC_GRAD_OP(OC_OP_GEMM, oc_grad_gemm, "Gemm")
OC_GRAD_OP(OC_OP_SOFTMAX, oc_grad_softmax, "Softmax")
OC_GRAD_OP(OC_OP_LOG_SOFTMAX, oc_grad_log_softmax, "LogSoftmax")
OC_GRAD_OP(OC_OP_LAYERNORM, oc_grad_layernorm, "LayerNormalization")
OC_GRAD_OP(OC_OP_GATHER, oc_grad_gather, "Gather")
OC_GRAD_OP(OC_OP_REDUCE_SUM, oc_grad_reduce, "ReduceSum")
OC_GRAD_OP(OC_OP_REDUCE_MEAN, oc_grad_reduce, "ReduceMean")
OC_GRAD_OP(OC_OP_REDUCE_MAX, oc_grad_reduce, "ReduceMax")
OC_GRAD_OP(OC_OP_REDUCE_MIN, oc_grad_reduce, "ReduceMin")
OC_GRAD_OP(OC_OP_REDUCE_PROD, oc_grad_reduce, "ReduceProd")
OC_GRAD_OP(OC_OP_REDUCE_L1, oc_grad_reduce, "ReduceL1")
OC_GRAD_OP(OC_OP_REDUCE_L2, oc_grad_reduce, "ReduceL2")
OC_GRAD_OP(OC_OP_REDUCE_SUM_SQUARE, oc_grad_reduce, "ReduceSumSquare")
OC_GRAD_OP(OC_OP_REDUCE_LOG_SUM, oc_grad_reduce, "ReduceLogSum")
OC_GRAD_OP(OC_OP_REDUCE_LOG_SUM_EXP, oc_grad_reduce, "ReduceLogSumExp")
