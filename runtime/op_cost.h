/*
 * The estimated work of one instruction, used to bound what a hostile model
 * or plan can make onnxc compute: the compiler's constant folding
 * (oc_compile_options_t.max_fold_cost) and the runtime's plan loader
 * (oc_plan_options_t.max_run_cost).
 *
 * The unit is an "operation": roughly one multiply-add or one element read
 * or written. The estimate is an upper bound of the kernel's loop counts up
 * to a small constant factor, computed from the types and ints alone (after
 * the op's shape rule accepted them), never from the data.
 */
#ifndef ONNXC_OP_COST_H
#define ONNXC_OP_COST_H

#include "oc_ops.h"

/* The estimated operations of running |op| on |call| (whose input and output
 * types are set, as after oc_op_infer succeeded), saturating at UINT64_MAX. */
uint64_t oc_op_cost(int op, const oc_op_call_t *call);

/* a + b and a * b, saturating at UINT64_MAX. */
static inline uint64_t oc_sat_add(uint64_t a, uint64_t b) {
  return a + b < a ? UINT64_MAX : a + b;
}
static inline uint64_t oc_sat_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return oc_mul_overflows(a, b, &r) ? UINT64_MAX : r;
}

#endif
