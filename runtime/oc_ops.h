/*
 * The op interface shared by the runtime (validation, execution) and the
 * compiler (shape inference, constant folding).
 *
 * An op is a pair of functions:
 *   infer: checks the instruction's ints/floats and input types, and writes
 *          the output types (dtype, rank, dims) and the scratch bytes it needs.
 *          The compiler uses it to infer shapes; the runtime loader runs it on
 *          every instruction of a plan and requires the plan's recorded output
 *          types to match exactly, so kernels can trust every shape.
 *   run:   computes outputs from inputs. Only called after infer succeeded on
 *          the same types, so it checks only data-dependent things (indices).
 */
#ifndef ONNXC_OC_OPS_H
#define ONNXC_OC_OPS_H

#include "oc_base.h"

typedef enum oc_op_e {
#define OC_OP(e, name, def) OC_OP_##e,
#include "ops/op_list.h"
#undef OC_OP
  OC_OP_COUNT
} oc_op_t;

/* A tensor as kernels see it. */
typedef struct oc_tensor_s {
  int dtype;
  int rank;
  int64_t dims[OC_MAX_RANK];
  void *data;
} oc_tensor_t;

/* Limits that every plan and every compile respects. */
#define OC_MAX_OP_INPUTS 64
#define OC_MAX_OP_OUTPUTS 64
#define OC_MAX_OP_INTS 4096
#define OC_MAX_OP_FLOATS 256
#define OC_MAX_DIM ((int64_t)1 << 40)            /* one dimension */
#define OC_MAX_TENSOR_BYTES ((uint64_t)1 << 40)  /* one tensor */

typedef struct oc_op_call_s {
  const int64_t *ints;
  int n_ints;
  const float *floats;
  int n_floats;
  int n_in;
  oc_tensor_t *const *in; /* in[i] == NULL: absent optional input */
  int n_out;
  oc_tensor_t *const *out;
  void *workspace;
  size_t workspace_bytes;
  /* The context's thread pool (runtime/parallel.h), for oc_parallel_for and
   * oc_sgemm; NULL (run on the calling thread) when the compiler folds. */
  struct oc_pool_s *pool;
  /* The context's communicator (onnxc.h), for the collective ops of
   * runtime/ops/collective.c; NULL: a job of one rank. */
  const oc_communicator_t *comm;
} oc_op_call_t;

typedef struct oc_op_def_s {
  const char *name;
  int min_inputs, max_inputs;
  int min_outputs, max_outputs;
  oc_status_t (*infer)(const oc_op_call_t *call, size_t *out_workspace_bytes);
  oc_status_t (*run)(const oc_op_call_t *call);
  /* Bit i set: the kernel updates input i in place (running statistics, an
   * RNG counter, an optimizer's parameters). Such inputs must be persistent
   * state, never read-only constants, and the instruction is never pruned or
   * folded. */
  uint32_t mutates;
  /* Bit i set: output 0 may be written over input i (same byte size) while
   * the kernel runs: each output element depends only on the same element of
   * that input. The memory planner uses it to reuse a dying input's bytes. */
  uint32_t inplace;
} oc_op_def_t;

/* The definition of |op|, or NULL if |op| is out of range. */
const oc_op_def_t *oc_op_get(int op);

/* Runs the op's infer after checking the input/output counts. Output dims
 * and dtypes are written to call->out[i]. */
oc_status_t oc_op_infer(int op, const oc_op_call_t *call, size_t *out_workspace_bytes);

/* --- helpers for op files --- */

/* Element count of a tensor (dims validated to be small enough). */
static inline int64_t oc_tensor_numel(const oc_tensor_t *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}
static inline size_t oc_tensor_bytes(const oc_tensor_t *t) {
  return (size_t)oc_tensor_numel(t) * oc_dtype_size(t->dtype);
}
/* Sets the type of |t|. */
void oc_tensor_set_type(oc_tensor_t *t, int dtype, int rank, const int64_t *dims);
/* Checks rank <= OC_MAX_RANK, every dim in [0, OC_MAX_DIM], bytes in range
 * (also with every 0 dim read as 1, so strides of empty tensors fit). */
oc_status_t oc_check_type(const oc_tensor_t *t, const char *what);
/* Formats "float32[2,3]" into buf. */
const char *oc_type_str(const oc_tensor_t *t, char *buf, size_t n);

/* Normalizes axis in [-rank, rank) to [0, rank); error if out of range. */
oc_status_t oc_norm_axis(int64_t axis, int rank, int *out);

/* Multidirectional (numpy) broadcast of a and b into out (rank, dims). */
oc_status_t oc_broadcast_shape(const oc_tensor_t *a, const oc_tensor_t *b, int *out_rank,
                               int64_t *out_dims);

/* Requires |t| to have dtype |dtype|. */
oc_status_t oc_expect_dtype(const oc_tensor_t *t, int dtype, const char *what);

/* Conv's packed weight layout (ints layout 1, runtime/ops/conv.c): dst gets
 * w (M, K) (K = C/group * kernel volume) as panels of 32 output channels,
 * the last one M % 32 wide, each panel (K, width) with the output channel
 * fastest. The compiler packs constant weights with it. */
void oc_conv_pack_weights(float *dst, const float *w, int64_t M, int64_t K);

#define OC_OP_DECLARE(def) extern const oc_op_def_t def;
#define OC_OP(e, name, def) OC_OP_DECLARE(def)
#include "ops/op_list.h"
#undef OC_OP

#endif
