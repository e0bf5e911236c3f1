#!/bin/sh
# fuzz/make_seeds.sh: (re)writes the committed seed corpora fuzz/corpus/*/
# from the test fixtures, with the in-tree onnxc built by the fuzz build.
# Regression inputs (fuzz/corpus/*/regress-*) are kept; every other file in
# the corpus folders is replaced.
#
#   compile/     a flags byte (fuzz_compile.c) + model: the reference training
#                graphs (train flags: SGD, Adam, AdamW, LARS, momentum,
#                cosine), their embed models, tests/data/models, two tiny
#                hand-made training graphs (fuzz/tools/tiny_models.py) with
#                every train flag, and one node-test model per distinct op
#                set that compiles, plus a few that fail (unsupported op,
#                dtype, value type, runtime shape input)
#   plan/        plans compiled from the reference embed models, a1's
#                training plan (state, two entries, source model), the tiny
#                training graphs (SGD, Adam, LARS) and the node-test models
#   checkpoint/  a valid checkpoint of fuzz_checkpoint's plan, truncated
#                copies, a bad version, an empty file
#   tensor/      small node-test .pb tensors of every dtype, rank and payload
#                field seen, tests/data .pb files, and .npy files (every
#                descr, format 1/2/3, scalars, empty, fortran order)
set -eu
. "$(dirname "$0")/common.sh"

fuzz_build onnxc fuzz_checkpoint
onnxc=$BUILD/bin/onnxc
data=$ROOT/tests/data
out=$ROOT/fuzz/corpus
export ASAN_OPTIONS=detect_leaks=0

# One compiling node-test model per distinct op set (test_ prefix dropped).
NODE_COMPILE="
  sign isinf isnan round size exp_example log_example neg_example ceil_example sqrt_example
  tanh_example triu floor_example shape not_2d abs sigmoid_example relu softplus_example
  softsign_example dropout_default_old reciprocal_example clip_default_inbounds elu_default
  erf hardmax_example softmax_example mod_uint8 selu_default div_example hardswish
  mul_example pow_example sub_example eyelike_without_dtype max_one_input min_one_input
  sum_one_input logsoftmax_example_1 mean_one_input identity or2d leakyrelu_default
  flatten_default_axis and2d xor2d hardsigmoid_default matmul_2d celu globalmaxpool
  add_bcast equal_bcast gemm_default_no_bias less_bcast globalaveragepool
  cast_DOUBLE_to_FLOAT maxpool_1d_default prelu_broadcast spacetodepth transpose_default
  greater_bcast reduce_log_sum_default averagepool_1d_default sce_sum convtranspose_1d
  argmax_default_axis_example argmin_default_axis_example gather_negative_indices
  less_equal_bcast castlike_DOUBLE_to_FLOAT concat_1d_axis_0 gathernd_example_int32
  depthtospace_example where_example greater_equal_bcast gather_elements_0
  reduce_l1_default_axes_keepdims_random reduce_l2_default_axes_keepdims_random
  reduce_max_default_axes_keepdim_example reduce_min_default_axes_keepdims_random
  reduce_mean_default_axes_keepdims_random reduce_prod_default_axes_keepdims_random
  nllloss_NC split_equal_parts_2d instancenorm_example
  reduce_sum_square_default_axes_keepdims_random scatter_without_axis scatternd
  basic_conv_with_padding reduce_sum_default_axes_keepdims_random
  scatter_elements_without_axis constant batchnorm_example layer_normalization_2d_axis1
  hardswish_expanded less_equal_expanded greater_equal_expanded celu_expanded
  softmax_axis_0_expanded logsoftmax_axis_0_expanded sce_sum_expanded nllloss_NC_expanded
  sce_sum_log_prob_expanded nllloss_NCd1_expanded mvn_expanded
  nllloss_NCd1d2_reduction_sum_expanded nllloss_NCd1d2_with_weight_expanded
  nllloss_NCd1_weight_expanded nllloss_NCd1d2_with_weight_reduction_sum_expanded
  nllloss_NCd1_ii_expanded nllloss_NCd1_weight_ii_expanded
  nllloss_NCd1d2d3_sum_weight_high_ii_expanded
  nllloss_NCd1d2d3_none_no_weight_negative_ii_expanded
  layer_normalization_2d_axis1_expanded layer_normalization_default_axis_expanded"
# Node tests that fail to compile, for the error paths.
NODE_FAIL="tril_neg cumsum_2d_axis_0 cast_FLOAT_to_FLOAT16 nonmaxsuppression_center_point_box_format
  rnn_seq_length resize_upsample_scales_cubic einsum_inner_prod sequence_insert_at_back
  reshape_reordered_all_dims slice loop11 if"
# name:tensor of small node-test .pb tensors, one per (dtype, rank, payload field).
NODE_TENSOR="
  training_dropout:input_2 constantofshape_int_shape_zero:output_0
  strnormalizer_export_monday_empty_output:output_0 clip_default_int8_max:input_1
  adagrad:input_0 blackmanwindow:input_0 triu_zero:input_0 bitshift_left_uint8:input_0
  clip_default_int8_inbounds:input_0 reduce_sum_default_axes_keepdims_example:input_1
  adagrad:input_2 isnan:output_0 loop13_seq:input_2 slice_start_out_of_bounds:output_0
  tril_zero:input_0 castlike_DOUBLE_to_FLOAT16:input_1 castlike_FLOAT_to_BFLOAT16:input_1
  adagrad:input_1 einsum_inner_prod:output_0 qlinearconv:input_3 matmulinteger:input_1
  layer_normalization_2d_axis0:output_1 optional_has_element_empty:input_0
  convinteger_with_padding:input_2 globalaveragepool_precomputed:output_0
  castlike_FLOAT16_to_DOUBLE:input_1 max_int16:input_0 bitshift_left_uint32:input_0
  and2d:input_0 loop16_seq_none:input_2 qlinearmatmul_3D:output_0
  reduce_log_sum_exp_default_axes_keepdims_example:output_0 gathernd_example_int32:input_0
  convinteger_without_padding:output_0 bitshift_left_uint64:input_0
  optional_get_element_sequence:output_0 if_seq:output_0 and_bcast4v4d:input_0
  cast_BFLOAT16_to_FLOAT:input_0 cast_FLOAT16_to_DOUBLE:input_0 identity_opt:input_0
  optional_get_element:input_0 if_opt:output_0 optional_get_element_sequence:input_0
  maxpool_with_argmax_2d_precomputed_strides:output_1
  gathernd_example_int32_batch_dim1:input_0
  strnormalizer_export_monday_insensintive_upper_twodim:output_0
  sequence_map_identity_1_sequence_1_tensor:output_1 cumsum_2d_axis_0:input_0
  identity_sequence:input_0 and3d:input_0 clip_default_int8_max:input_0
  unsqueeze_negative_axes:output_0 sequence_insert_at_back:input_0 loop13_seq:output_0
  sequence_insert_at_back:output_0 unsqueeze_three_axes:output_0"

clean() {
  mkdir -p "$out/$1"
  find "$out/$1" -type f ! -name 'regress-*' -delete
}

# --- compile -----------------------------------------------------------------
clean compile
flagged() { # FLAGS_OCTAL SRC DST
  { printf "\\$1"; cat "$2"; } >"$out/compile/$3"
}
# flags: bit 0 --train, bits 1-2 optimizer (0 sgd, 1 adam, 2 adamw, 3 lars),
# bit 3 momentum/nesterov/weight decay, bit 4 cosine schedule, bit 5 --freeze
# '.*weight.*', bit 6 --trainable '.*(bias|running).*'.
set -- 001 003 045 007 031 113
for case in a1_mlp_triplet a2_simclr_smallcnn a2b_simclr_smallcnn_opset17 a4_clip_dual \
            a5_moco_v2 a6_audio_cpc; do
  flagged "$1" "$data/reference/$case/model.onnx" "ref-$case-train.onnx"
  shift
  for e in embed embed_text; do
    [ -f "$data/reference/$case/$e/model.onnx" ] &&
      flagged 000 "$data/reference/$case/$e/model.onnx" "ref-$case-$e.onnx"
  done
done
for m in "$data"/models/*/model.onnx; do
  flagged 000 "$m" "model-$(basename "$(dirname "$m")").onnx"
done
# Hand-made training graphs of a few hundred bytes (fuzz/tools/tiny_models.py):
# cheap --train compiles, every optimizer.
tiny=$BUILD/tiny-models
python3 "$ROOT/fuzz/tools/tiny_models.py" "$tiny"
for m in tiny_mlp_train tiny_cnn_bn_train; do
  for f in 001 003 005 007 013 031 041 103; do
    flagged "$f" "$tiny/$m.onnx" "$m-$f.onnx"
  done
done
for t in $NODE_COMPILE $NODE_FAIL; do
  if [ -f "$data/node/test_$t/model.onnx" ]; then
    flagged 000 "$data/node/test_$t/model.onnx" "node-$t.onnx"
  else
    echo "make_seeds.sh: no node test '$t' (skipped)" >&2
  fi
done

# --- plan --------------------------------------------------------------------
clean plan
plan() { # MODEL DST [onnxc options]  (sh has no locals: _-prefixed names)
  _model=$1 _dst=$2
  shift 2
  "$onnxc" "$_model" -o "$out/plan/$_dst" "$@" 2>/dev/null ||
    echo "make_seeds.sh: onnxc $_model $* failed (skipped)" >&2
}
for e in "$data"/reference/*/embed*/model.onnx; do
  case_dir=$(dirname "$(dirname "$e")")
  plan "$e" "ref-$(basename "$case_dir")-$(basename "$(dirname "$e")").plan"
done
plan "$data/reference/a1_mlp_triplet/model.onnx" ref-a1_mlp_triplet-train-adam.plan --train \
  --optimizer adam --schedule cosine --warmup-steps 2 --total-steps 10 \
  --freeze 'encoder\.net\.0\..*'
for m in tiny_mlp_train tiny_cnn_bn_train; do
  plan "$tiny/$m.onnx" "$m.plan"
  plan "$tiny/$m.onnx" "$m-train-sgd.plan" --train --momentum 0.9 --nesterov --weight-decay 1e-4
  plan "$tiny/$m.onnx" "$m-train-adam.plan" --train --optimizer adam --schedule cosine \
    --warmup-steps 2 --total-steps 10
  plan "$tiny/$m.onnx" "$m-train-lars.plan" --train --optimizer lars --momentum 0.9
done
plan "$data/models/dynamic_batch_mlp/model.onnx" model-dynamic_batch_mlp.plan --dim batch=2
plan "$data/models/shape_arithmetic/model.onnx" model-shape_arithmetic.plan
plan "$data/models/typed_fields_mlp/model.onnx" model-typed_fields_mlp.plan
for t in $NODE_COMPILE; do
  plan "$data/node/test_$t/model.onnx" "node-$t.plan"
done

# --- checkpoint ----------------------------------------------------------------
clean checkpoint
ck=$out/checkpoint
ONNXC_FUZZ_WRITE_CHECKPOINT=$ck/valid.ckpt "$BUILD/bin/fuzz_checkpoint" >/dev/null 2>&1
n=$(wc -c <"$ck/valid.ckpt")
for k in 8 48 63 64 65 $((n / 2)) $((n - 1)); do
  head -c "$k" "$ck/valid.ckpt" >"$ck/truncated-$k.ckpt"
done
: >"$ck/empty.ckpt"
{ head -c 8 "$ck/valid.ckpt"; printf '\002'; tail -c +10 "$ck/valid.ckpt"; } >"$ck/version2.ckpt"
{ cat "$ck/valid.ckpt"; printf 'trailing'; } >"$ck/trailing.ckpt"

# --- tensor --------------------------------------------------------------------
clean tensor
for nt in $NODE_TENSOR; do
  t=${nt%%:*} f=${nt#*:}
  src=$data/node/test_$t/test_data_set_0/$f.pb
  [ -f "$src" ] && cp "$src" "$out/tensor/node-$t-$f.pb"
done
cp "$data/tensor_file/input_0.pb" "$out/tensor/tensor_file-input_0.pb"
for m in typed_fields_mlp dynamic_batch_mlp; do
  cp "$data/models/$m/test_data_set_0/input_0.pb" "$out/tensor/model-$m-input_0.pb"
done
python3 - "$out/tensor" <<'PY'
import struct, sys, os
out = sys.argv[1]
def npy(name, descr, shape, payload, version=1, fortran=False, quote="'", extra=""):
    shp = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    hdr = "{%sdescr%s: %s%s%s, %sfortran_order%s: %s, %sshape%s: %s, %s}" % (
        quote, quote, quote, descr, quote, quote, quote, "True" if fortran else "False",
        quote, quote, shp, extra)
    pre = 10 if version == 1 else 12
    pad = (-(pre + len(hdr) + 1)) % 64
    hdr = (hdr + " " * pad + "\n").encode("latin1")
    size = struct.pack("<H", len(hdr)) if version == 1 else struct.pack("<I", len(hdr))
    data = b"\x93NUMPY" + bytes([version, 0]) + size + hdr + payload
    open(os.path.join(out, "npy-" + name + ".npy"), "wb").write(data)
def count(shape):
    n = 1
    for d in shape: n *= d
    return n
for descr, size in [("<f4", 4), ("<f8", 8), ("<f2", 2), ("<i8", 8), ("<i4", 4), ("<i2", 2),
                    ("|i1", 1), ("|u1", 1), ("<u2", 2), ("<u4", 4), ("<u8", 8), ("<c8", 8),
                    ("<c16", 16)]:
    shape = (2, 3)
    npy(descr.strip("<|"), descr, shape, bytes(range(count(shape) * size)))
npy("b1", "|b1", (4,), bytes([0, 1, 1, 0]))
npy("f4-scalar", "<f4", (), struct.pack("<f", 1.5))
npy("f4-empty", "<f4", (0, 3), b"")
npy("f4-rank8", "<f4", (1, 1, 1, 1, 1, 1, 1, 2), struct.pack("<2f", 1, 2))
npy("f4-v2", "<f4", (3,), struct.pack("<3f", 1, 2, 3), version=2)
npy("f4-v3", "<f4", (3,), struct.pack("<3f", 1, 2, 3), version=3)
npy("f4-dquote", "<f4", (2,), struct.pack("<2f", 1, 2), quote='"')
npy("f4-fortran", "<f4", (2, 2), struct.pack("<4f", 1, 2, 3, 4), fortran=True)
npy("f4-bigendian", ">f4", (2,), struct.pack(">2f", 1, 2))
npy("f4-short", "<f4", (4,), struct.pack("<3f", 1, 2, 3))
PY

du -sh "$out"/* >&2
