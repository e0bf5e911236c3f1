/*
 * Winograd F(4x4, 3x3) for 2-D 3x3 stride-1 undilated ungrouped convolutions
 * (runtime/ops/winograd.c): the forward Conv, with the weights transposed
 * and flipped the data gradient of one, and through the dual transform its
 * weight gradient. Internal to the kernels.
 */
#ifndef ONNXC_WINOGRAD_H
#define ONNXC_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "parallel.h"

/* One convolution: y (N, M, OH, OW) = act(conv(x (N, C, H, W), w) + b) with
 * begin pads ph, pw (the end pads follow from OH, OW). w is (M, C, 3, 3), or
 * (C, M, 3, 3) read transposed and flipped when |flip| (the data gradient:
 * x is dy, y is dx), or with |packed| (not with flip) conv.c's packed
 * panels: per panel of 32 output channels (the last one the M % 32 left,
 * M a multiple of 16), (C, 3, 3, panel width) with the output channel
 * fastest. act: 0 none, 1 relu, 2 clip to [lo, hi]. */
typedef struct oc_winograd_s {
  int64_t N, C, M, H, W, OH, OW, ph, pw;
  int flip, act, packed;
  float lo, hi;
} oc_winograd_t;

/* Whether F(4x4, 3x3) is worth using for |p| in oc_winograd_run (the
 * multiply-adds it saves repay the transforms and the partly used tiles),
 * and in oc_winograd_filter_run. */
int oc_winograd_applies(const oc_winograd_t *p);
int oc_winograd_filter_applies(const oc_winograd_t *p);

/* Workspace bytes of oc_winograd_run for |p|: the transformed weights (one
 * copy per part of a block's tiles), one block of transformed inputs and
 * products, and x in channel-minor order. */
uint64_t oc_winograd_workspace(const oc_winograd_t *p);

/* Runs |p| on the context's threads; |ws| holds oc_winograd_workspace bytes. */
void oc_winograd_run(oc_pool_t *pool, const oc_winograd_t *p, float *y, const float *x,
                     const float *w, const float *b, float *ws);

/* The weight gradient of the forward convolution |p| (flip 0, no
 * activation): dw (M, C, 3, 3) = sum over images and output positions of
 * dy (N, M, OH, OW) times the input x (N, C, H, W) under each tap, through the
 * dual transform F(3x3, 4x4): dw = G^T [sum over tiles (A dy A^T) . (B^T d B)] G.
 * |ws| holds oc_winograd_filter_workspace bytes. */
uint64_t oc_winograd_filter_workspace(const oc_winograd_t *p);
void oc_winograd_filter_run(oc_pool_t *pool, const oc_winograd_t *p, float *dw, const float *x,
                            const float *dy, float *ws);

#endif
