/*
 * The runtime's op list: X(ENUM, "Name", def) for every op a plan can hold.
 *
 * APPEND ONLY. The position of an op is its number, and plans store that
 * number: never reorder, remove or insert in the middle. A retired op keeps
 * its slot. Each op is defined in one file under runtime/ops/ (its shape
 * rule and its kernels); see runtime/ops/TEMPLATE.c.
 */
OC_OP(COPY, "Copy", oc_op_copy)                  /* reshape family: same bytes, new dims */
OC_OP(ADD, "Add", oc_op_add)
OC_OP(SUB, "Sub", oc_op_sub)
OC_OP(MUL, "Mul", oc_op_mul)
OC_OP(DIV, "Div", oc_op_div)
OC_OP(POW, "Pow", oc_op_pow)
OC_OP(EQUAL, "Equal", oc_op_equal)
OC_OP(LESS, "Less", oc_op_less)
OC_OP(GREATER, "Greater", oc_op_greater)
OC_OP(WHERE, "Where", oc_op_where)
OC_OP(RELU, "Relu", oc_op_relu)
OC_OP(EXP, "Exp", oc_op_exp)
OC_OP(SQRT, "Sqrt", oc_op_sqrt)
OC_OP(ERF, "Erf", oc_op_erf)
OC_OP(NEG, "Neg", oc_op_neg)
OC_OP(CLIP, "Clip", oc_op_clip)
OC_OP(CAST, "Cast", oc_op_cast)
OC_OP(MATMUL, "MatMul", oc_op_matmul)
OC_OP(GEMM, "Gemm", oc_op_gemm)
OC_OP(CONV, "Conv", oc_op_conv)
OC_OP(BATCHNORM, "BatchNormalization", oc_op_batchnorm)
OC_OP(MAXPOOL, "MaxPool", oc_op_maxpool)
OC_OP(AVGPOOL, "AveragePool", oc_op_avgpool)
OC_OP(TRANSPOSE, "Transpose", oc_op_transpose)
OC_OP(CONCAT, "Concat", oc_op_concat)
OC_OP(SPLIT, "Split", oc_op_split)
OC_OP(SLICE, "Slice", oc_op_slice)
OC_OP(SOFTMAX, "Softmax", oc_op_softmax)
OC_OP(LAYERNORM, "LayerNormalization", oc_op_layernorm)
OC_OP(GATHER, "Gather", oc_op_gather)
OC_OP(REDUCE_MEAN, "ReduceMean", oc_op_reduce_mean)
OC_OP(REDUCE_SUM, "ReduceSum", oc_op_reduce_sum)
OC_OP(REDUCE_L2, "ReduceL2", oc_op_reduce_l2)
OC_OP(EXPAND, "Expand", oc_op_expand)
OC_OP(GLOBAL_AVGPOOL, "GlobalAveragePool", oc_op_global_avgpool)
OC_OP(GLOBAL_MAXPOOL, "GlobalMaxPool", oc_op_global_maxpool)
OC_OP(LOG_SOFTMAX, "LogSoftmax", oc_op_log_softmax)
OC_OP(REDUCE_MAX, "ReduceMax", oc_op_reduce_max)
OC_OP(REDUCE_MIN, "ReduceMin", oc_op_reduce_min)
OC_OP(REDUCE_PROD, "ReduceProd", oc_op_reduce_prod)
OC_OP(REDUCE_L1, "ReduceL1", oc_op_reduce_l1)
OC_OP(REDUCE_SUM_SQUARE, "ReduceSumSquare", oc_op_reduce_sum_square)
OC_OP(REDUCE_LOG_SUM, "ReduceLogSum", oc_op_reduce_log_sum)
OC_OP(REDUCE_LOG_SUM_EXP, "ReduceLogSumExp", oc_op_reduce_log_sum_exp)
OC_OP(NLL_LOSS, "NegativeLogLikelihoodLoss", oc_op_nll_loss)
OC_OP(EINSUM_DIAGONAL, "EinsumDiagonal", oc_op_einsum_diagonal)
OC_OP(ASSIGN, "Assign", oc_op_assign)
OC_OP(CHECK_FINITE, "CheckFinite", oc_op_check_finite)
OC_OP(LR_SCHEDULE, "LrSchedule", oc_op_lr_schedule)
OC_OP(STEP_COUNT, "StepCount", oc_op_step_count)
OC_OP(SGD_UPDATE, "SgdUpdate", oc_op_sgd_update)
OC_OP(ADAM_UPDATE, "AdamUpdate", oc_op_adam_update)
OC_OP(LARS_UPDATE, "LarsUpdate", oc_op_lars_update)
OC_OP(UNARY, "Unary", oc_op_unary)              /* ints [function, ...]: runtime/ops/elementwise.c */
OC_OP(VARIADIC, "Variadic", oc_op_variadic)     /* ints [function]: Max Min Sum Mean */
OC_OP(LESS_EQUAL, "LessOrEqual", oc_op_less_equal)
OC_OP(GREATER_EQUAL, "GreaterOrEqual", oc_op_greater_equal)
OC_OP(AND, "And", oc_op_and)
OC_OP(OR, "Or", oc_op_or)
OC_OP(XOR, "Xor", oc_op_xor)
OC_OP(MOD, "Mod", oc_op_mod)
OC_OP(PRELU, "PRelu", oc_op_prelu)
OC_OP(ONEHOT, "OneHot", oc_op_onehot)
OC_OP(TRILU, "Trilu", oc_op_trilu)
OC_OP(TILE, "Tile", oc_op_tile)
OC_OP(GATHER_ELEMENTS, "GatherElements", oc_op_gather_elements)
OC_OP(GATHER_ND, "GatherND", oc_op_gather_nd)
OC_OP(SCATTER_ELEMENTS, "ScatterElements", oc_op_scatter_elements)
OC_OP(SCATTER_ND, "ScatterND", oc_op_scatter_nd)
OC_OP(ARGMAX, "ArgMax", oc_op_argmax)
OC_OP(ARGMIN, "ArgMin", oc_op_argmin)
OC_OP(TOPK, "TopK", oc_op_topk)
OC_OP(HARDMAX, "Hardmax", oc_op_hardmax)
OC_OP(CUMSUM, "CumSum", oc_op_cumsum)
OC_OP(PAD, "Pad", oc_op_pad)
OC_OP(DEPTH_TO_SPACE, "DepthToSpace", oc_op_depth_to_space)
OC_OP(SPACE_TO_DEPTH, "SpaceToDepth", oc_op_space_to_depth)
OC_OP(RESIZE, "Resize", oc_op_resize)
OC_OP(INSTANCENORM, "InstanceNormalization", oc_op_instancenorm)
OC_OP(LPNORM, "LpNormalization", oc_op_lpnorm)
OC_OP(LPPOOL, "LpPool", oc_op_lppool)
OC_OP(CONVTRANSPOSE, "ConvTranspose", oc_op_convtranspose)
OC_OP(DROPOUT, "Dropout", oc_op_dropout)
OC_OP(SLICE_BWD, "SliceBwd", oc_op_slice_bwd)       /* the gradient of Slice: runtime/ops/slice.c */
OC_OP(CONV_BWD_DATA, "ConvBwdData", oc_op_conv_bwd_data)          /* runtime/ops/conv.c */
OC_OP(CONV_BWD_FILTER, "ConvBwdFilter", oc_op_conv_bwd_filter)
OC_OP(MAXPOOL_BWD, "MaxPoolBwd", oc_op_maxpool_bwd)                /* runtime/ops/pool.c */
OC_OP(AVGPOOL_BWD, "AvgPoolBwd", oc_op_avgpool_bwd)
OC_OP(GLOBAL_AVGPOOL_BWD, "GlobalAvgPoolBwd", oc_op_global_avgpool_bwd)
OC_OP(GLOBAL_MAXPOOL_BWD, "GlobalMaxPoolBwd", oc_op_global_maxpool_bwd)
OC_OP(MATMUL_BWD, "MatMulBwd", oc_op_matmul_bwd)      /* ints [which, operand dims...]: matmul.c */
OC_OP(SOFTMAX_BWD, "SoftmaxBwd", oc_op_softmax_bwd)   /* ints [axis, flatten, log] */
OC_OP(LAYERNORM_BWD, "LayerNormBwd", oc_op_layernorm_bwd) /* ints [axis, outputs mask] */
OC_OP(REDUCE_BWD, "ReduceBwd", oc_op_reduce_bwd)      /* ints [op, rank, dims..., keepdims, axes...] */
OC_OP(GATHER_BWD, "GatherBwd", oc_op_gather_bwd)      /* ints [axis, data dims...] */
OC_OP(NLL_LOSS_BWD, "NegativeLogLikelihoodLossBwd", oc_op_nll_loss_bwd) /* ints [reduction, has_ignore, ignore_index, C]: loss.c */
OC_OP(EINSUM_DIAGONAL_BWD, "EinsumDiagonalBwd", oc_op_einsum_diagonal_bwd) /* ints [r, map...]: einsum.c */
OC_OP(TILE_BWD, "TileBwd", oc_op_tile_bwd)            /* ints [x dims...]: indexing.c */
OC_OP(GATHER_ELEMENTS_BWD, "GatherElementsBwd", oc_op_gather_elements_bwd) /* ints [axis, data dims...] */
OC_OP(GATHER_ND_BWD, "GatherNDBwd", oc_op_gather_nd_bwd) /* ints [batch_dims, data dims...] */
OC_OP(UNARY_BWD, "UnaryBwd", oc_op_unary_bwd)          /* ints [op, fn], floats the forward's: elementwise.c */
OC_OP(BROADCAST_BWD, "BroadcastBwd", oc_op_broadcast_bwd) /* ints [op, which, fn, rank, dims...]: elementwise.c */
OC_OP(BATCHNORM_BWD, "BatchNormalizationBwd", oc_op_batchnorm_bwd) /* runtime/ops/batchnorm.c */
OC_OP(EMA_UPDATE, "EmaUpdate", oc_op_ema_update)      /* runtime/ops/train.c */
OC_OP(CLAMP_STATE, "ClampState", oc_op_clamp_state)
OC_OP(QUEUE_PUSH, "QueuePush", oc_op_queue_push)
OC_OP(PAD_BWD, "PadBwd", oc_op_pad_bwd)                /* ints Pad's [mode, pads...]: pad.c */
OC_OP(RESIZE_BWD, "ResizeBwd", oc_op_resize_bwd)       /* ints Resize's + x dims, floats Resize's: resize.c */
OC_OP(INSTANCENORM_BWD, "InstanceNormalizationBwd", oc_op_instancenorm_bwd) /* ints [mask], floats [eps]: norm.c */
OC_OP(LPNORM_BWD, "LpNormalizationBwd", oc_op_lpnorm_bwd) /* ints [axis, p]: norm.c */
OC_OP(LPPOOL_BWD, "LpPoolBwd", oc_op_lppool_bwd)       /* ints/floats LpPool's: pool.c */
OC_OP(CONVTRANSPOSE_BWD_FILTER, "ConvTransposeBwdFilter", oc_op_convtranspose_bwd_filter) /* ints ConvTranspose's + k dims: convtranspose.c */
OC_OP(DROPOUT_BWD, "DropoutBwd", oc_op_dropout_bwd)    /* floats [ratio]: dropout.c */
OC_OP(GELU, "Gelu", oc_op_gelu)                  /* x [, bias]: runtime/ops/gelu.c (made by compiler/fuse.c) */
OC_OP(ATTENTION, "Attention", oc_op_attention)   /* q, k, v through strides: runtime/ops/attention.c (made by compiler/fuse.c) */
OC_OP(ALLREDUCE, "AllReduce", oc_op_allreduce)   /* ints [mean]: runtime/ops/collective.c (onnxc --ranks) */
OC_OP(ALLGATHER, "AllGather", oc_op_allgather)   /* ints [ranks] */
OC_OP(REDUCE_SCATTER, "ReduceScatter", oc_op_reduce_scatter) /* ints [ranks]: the gradient of AllGather */
OC_OP(SYNC_BATCHNORM, "SyncBatchNormalization", oc_op_sync_batchnorm) /* BatchNormalization's training ints/floats */
OC_OP(SYNC_BATCHNORM_BWD, "SyncBatchNormalizationBwd", oc_op_sync_batchnorm_bwd)
