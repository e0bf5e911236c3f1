/*
 * The ONNX ops the compiler imports:
 *   OC_ONNX_OP(domain, "OpType", lower_fn, first_opset, "dtypes")
 * first_opset is the oldest opset version the lowering handles (up to
 * OC_MAX_OPSET); dtypes lists the element types it computes. docs/ops.md is
 * generated from this list (onnxc --list-ops).
 * Each lowering function lives with its op family in compiler/ops/<family>.c
 * (see compiler/ops/TEMPLATE.c). Order does not matter here; nothing is
 * serialized by position.
 */
/* elementwise.c */
OC_ONNX_OP("", "Add", oc_lower_add, 1, "float32 int64 int32")
OC_ONNX_OP("", "Sub", oc_lower_sub, 1, "float32 int64 int32")
OC_ONNX_OP("", "Mul", oc_lower_mul, 1, "float32 int64 int32")
OC_ONNX_OP("", "Div", oc_lower_div, 1, "float32 int64 int32")
OC_ONNX_OP("", "Pow", oc_lower_pow, 1, "float32")
OC_ONNX_OP("", "Equal", oc_lower_equal, 1, "float32 int64 int32 bool")
OC_ONNX_OP("", "Less", oc_lower_less, 1, "float32 int64 int32")
OC_ONNX_OP("", "Greater", oc_lower_greater, 1, "float32 int64 int32")
OC_ONNX_OP("", "Where", oc_lower_where, 9, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Relu", oc_lower_relu, 1, "float32")
OC_ONNX_OP("", "Exp", oc_lower_exp, 1, "float32")
OC_ONNX_OP("", "Sqrt", oc_lower_sqrt, 1, "float32")
OC_ONNX_OP("", "Erf", oc_lower_erf, 9, "float32")
OC_ONNX_OP("", "Neg", oc_lower_neg, 1, "float32 int64 int32")
OC_ONNX_OP("", "Clip", oc_lower_clip, 1, "float32")
OC_ONNX_OP("", "Cast", oc_lower_cast, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "CastLike", oc_lower_castlike, 15, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Identity", oc_lower_identity, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Dropout", oc_lower_dropout, 1, "float32 float64 int64 int32 uint8 int8 bool")
/* conv.c, pool.c, batchnorm.c */
OC_ONNX_OP("", "Conv", oc_lower_conv, 1, "float32")
OC_ONNX_OP("", "BatchNormalization", oc_lower_batchnorm, 1, "float32")
OC_ONNX_OP("", "MaxPool", oc_lower_maxpool, 1, "float32 uint8 int8")
OC_ONNX_OP("", "AveragePool", oc_lower_avgpool, 1, "float32")
OC_ONNX_OP("", "GlobalAveragePool", oc_lower_global_avgpool, 1, "float32")
OC_ONNX_OP("", "GlobalMaxPool", oc_lower_global_maxpool, 1, "float32")
/* shape.c */
OC_ONNX_OP("", "Reshape", oc_lower_reshape_op, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Flatten", oc_lower_flatten, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Squeeze", oc_lower_squeeze, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Unsqueeze", oc_lower_unsqueeze, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Shape", oc_lower_shape, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Size", oc_lower_size, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "ConstantOfShape", oc_lower_constant_of_shape, 9, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Range", oc_lower_range, 11, "float32 float64 int64 int32")
OC_ONNX_OP("", "EyeLike", oc_lower_eyelike, 9, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Constant", oc_lower_constant, 1, "float32 float64 int64 int32 uint8 int8 bool")
/* movement.c */
OC_ONNX_OP("", "Transpose", oc_lower_transpose, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Concat", oc_lower_concat, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Split", oc_lower_split, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Slice", oc_lower_slice, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "Expand", oc_lower_expand, 8, "float32 float64 int64 int32 uint8 int8 bool")
/* matmul.c, softmax.c, layernorm.c, gather.c, reduce.c */
OC_ONNX_OP("", "MatMul", oc_lower_matmul, 1, "float32")
OC_ONNX_OP("", "Gemm", oc_lower_gemm, 1, "float32")
OC_ONNX_OP("", "Softmax", oc_lower_softmax, 1, "float32")
OC_ONNX_OP("", "LogSoftmax", oc_lower_logsoftmax, 1, "float32")
OC_ONNX_OP("", "LayerNormalization", oc_lower_layernormalization, 17, "float32")
OC_ONNX_OP("", "Gather", oc_lower_gather, 1, "float32 float64 int64 int32 uint8 int8 bool")
OC_ONNX_OP("", "ReduceSum", oc_lower_reduce_sum, 1, "float32 int64 int32")
OC_ONNX_OP("", "ReduceMean", oc_lower_reduce_mean, 1, "float32")
OC_ONNX_OP("", "ReduceMax", oc_lower_reduce_max, 1, "float32 int64 int32")
OC_ONNX_OP("", "ReduceMin", oc_lower_reduce_min, 1, "float32 int64 int32")
OC_ONNX_OP("", "ReduceProd", oc_lower_reduce_prod, 1, "float32 int64 int32")
OC_ONNX_OP("", "ReduceL1", oc_lower_reduce_l1, 1, "float32")
OC_ONNX_OP("", "ReduceL2", oc_lower_reduce_l2, 1, "float32")
OC_ONNX_OP("", "ReduceSumSquare", oc_lower_reduce_sum_square, 1, "float32")
OC_ONNX_OP("", "ReduceLogSum", oc_lower_reduce_log_sum, 1, "float32")
OC_ONNX_OP("", "ReduceLogSumExp", oc_lower_reduce_log_sum_exp, 1, "float32")
