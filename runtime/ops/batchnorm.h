/* The BatchNormalization row kernels (runtime/ops/batchnorm.c), shared with
 * SyncBatchNormalization (runtime/ops/collective.c), so that the data-parallel
 * kernels sum and normalize a rank's rows exactly as the one-process kernels
 * do. Internal. Sums run in 16 float lanes over runs of at most 1024 values,
 * each run added into a double. */
#ifndef ONNXC_OPS_BATCHNORM_H
#define ONNXC_OPS_BATCHNORM_H

#include <stdint.h>

/* sum(x[0..n)) */
double oc_bn_sum(const float *x, int64_t n);
/* sum((x - (float)m)^2) */
double oc_bn_sum_sqdev(const float *x, int64_t n, double m);
/* *sg += sum(g), *sgx += sum(g * (x - (float)m)) */
void oc_bn_sum_dy(const float *g, const float *x, int64_t n, double m, double *sg, double *sgx);
/* y = (x - m) * a + b */
void oc_bn_affine(float *y, const float *x, int64_t n, float m, float a, float b);
/* dx = (g - mg - (x - m) * r * mgx) * f: the training-mode gradient, with
 * mg = sum(g) / count and mgx = sum(g * xhat) / count. */
void oc_bn_dx(float *dx, const float *g, const float *x, int64_t n, float m, float r, float mg,
              float mgx, float f);

#endif
