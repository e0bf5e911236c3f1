/* The Softmax row kernel (runtime/ops/softmax.c), shared with the fused
 * attention kernel (runtime/ops/attention.c). Internal. */
#ifndef ONNXC_OPS_SOFTMAX_H
#define ONNXC_OPS_SOFTMAX_H

#include <stdint.h>

/* y = softmax(x) over one contiguous row of n > 0 entries; y may be x. A
 * row whose entries are all -inf (or hold a NaN) gives NaN. */
void oc_softmax_row(float *y, const float *x, int64_t n);

#endif
