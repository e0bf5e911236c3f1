/*
 * DepthToSpace and SpaceToDepth: move blocks of b x b pixels between the
 * channel axis and the two spatial axes of an (N, C, H, W) tensor.
 *
 * DepthToSpace:
 *   inputs:  x ((N, C, H, W), any computed dtype), C divisible by b * b
 *   outputs: y ((N, C / (b*b), H * b, W * b), dtype of x)
 *   ints:    [blocksize b >= 1, mode]: mode 0 = DCR, 1 = CRD
 *     DCR: y[n, c, h*b + i, w*b + j] = x[n, (i*b + j) * C/(b*b) + c, h, w]
 *     CRD: y[n, c, h*b + i, w*b + j] = x[n, c * b*b + i*b + j, h, w]
 * SpaceToDepth (the inverse of DepthToSpace):
 *   inputs:  x ((N, C, H, W), any computed dtype), H and W divisible by b
 *   outputs: y ((N, C * b*b, H / b, W / b))
 *   ints:    [blocksize b >= 1] or [b, mode]: mode 0 (the default; ONNX's
 *            SpaceToDepth) inverts DCR, 1 inverts CRD (the gradient of a CRD
 *            DepthToSpace)
 *     mode 0: y[n, (i*b + j) * C + c, h, w] = x[n, c, h*b + i, w*b + j]
 *     mode 1: y[n, c * b*b + i*b + j, h, w] = x[n, c, h*b + i, w*b + j]
 *   floats:  none (both)
 */
#include <string.h>

#include "oc_ops.h"

static oc_status_t check_x(const oc_tensor_t *x) {
  char buf[160];
  if (oc_dtype_size(x->dtype) == 0)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input has dtype %s", oc_dtype_name(x->dtype));
  if (x->rank != 4)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input is %s; expected (N, C, H, W)",
                          oc_type_str(x, buf, sizeof buf));
  return OC_OK;
}

/* Reads blocksize from ints[0] into *b and *bb = b * b. */
static oc_status_t read_block(const oc_op_call_t *c, int n_ints, int64_t *b, int64_t *bb) {
  if (c->n_ints != n_ints || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes %d ints and no floats, got %d and %d",
                          n_ints, c->n_ints, c->n_floats);
  *b = c->ints[0];
  if (*b < 1 || *b > ((int64_t)1 << 20))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "blocksize %lld is out of range",
                          (long long)*b);
  *bb = *b * *b;
  return OC_OK;
}

static oc_status_t d2s_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  int64_t b, bb;
  *ws = 0;
  OC_RETURN_IF_ERROR(check_x(x));
  OC_RETURN_IF_ERROR(read_block(c, 2, &b, &bb));
  if (c->ints[1] != 0 && c->ints[1] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "mode %lld is not 0 (DCR) or 1 (CRD)",
                          (long long)c->ints[1]);
  if (x->dims[1] % bb != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%lld channels are not divisible by blocksize^2 = %lld",
                          (long long)x->dims[1], (long long)bb);
  if (x->dims[2] > OC_MAX_DIM / b || x->dims[3] > OC_MAX_DIM / b)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "the output is too large");
  int64_t dims[4] = {x->dims[0], x->dims[1] / bb, x->dims[2] * b, x->dims[3] * b};
  oc_tensor_set_type(c->out[0], x->dtype, 4, dims);
  return OC_OK;
}

static oc_status_t s2d_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  int64_t b, bb;
  *ws = 0;
  OC_RETURN_IF_ERROR(check_x(x));
  OC_RETURN_IF_ERROR(read_block(c, c->n_ints == 2 ? 2 : 1, &b, &bb));
  if (c->n_ints == 2 && c->ints[1] != 0 && c->ints[1] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "mode %lld is not 0 (DCR) or 1 (CRD)",
                          (long long)c->ints[1]);
  if (x->dims[2] % b != 0 || x->dims[3] % b != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "spatial dims %lld x %lld are not divisible by blocksize %lld",
                          (long long)x->dims[2], (long long)x->dims[3], (long long)b);
  if (x->dims[1] > OC_MAX_DIM / bb)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "the output is too large");
  int64_t dims[4] = {x->dims[0], x->dims[1] * bb, x->dims[2] / b, x->dims[3] / b};
  oc_tensor_set_type(c->out[0], x->dtype, 4, dims);
  return OC_OK;
}

/* The big side is (N, Cs, Hs, Ws) = (N, Cd/(b*b), Hd*b, Wd*b) and the deep
 * side (N, Cd, Hd, Wd). For every big-side element, copies between it and
 * its deep-side element (to_space: deep -> big; else big -> deep). crd picks
 * the channel order c*b*b + i*b + j instead of (i*b + j)*Cs + c. */
static void block_move(char *big, char *deep, size_t es, int64_t N, int64_t Cs, int64_t Hd,
                       int64_t Wd, int64_t b, int crd, int to_space) {
  const int64_t Hs = Hd * b, Ws = Wd * b, Cd = Cs * b * b;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < Cs; c++)
      for (int64_t h = 0; h < Hs; h++) {
        int64_t hd = h / b, i = h % b;
        char *brow = big + (size_t)(((n * Cs + c) * Hs + h) * Ws) * es;
        for (int64_t w = 0; w < Ws; w++) {
          int64_t wd = w / b, j = w % b;
          int64_t cd = crd ? c * b * b + i * b + j : (i * b + j) * Cs + c;
          char *d = deep + (size_t)(((n * Cd + cd) * Hd + hd) * Wd + wd) * es;
          if (to_space)
            memcpy(brow + (size_t)w * es, d, es);
          else
            memcpy(d, brow + (size_t)w * es, es);
        }
      }
}

static oc_status_t d2s_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t b = c->ints[0];
  block_move(c->out[0]->data, x->data, oc_dtype_size(x->dtype), x->dims[0],
             x->dims[1] / (b * b), x->dims[2], x->dims[3], b, (int)c->ints[1], 1);
  return OC_OK;
}

static oc_status_t s2d_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t b = c->ints[0];
  block_move(x->data, c->out[0]->data, oc_dtype_size(x->dtype), x->dims[0], x->dims[1],
             x->dims[2] / b, x->dims[3] / b, b, c->n_ints == 2 ? (int)c->ints[1] : 0, 0);
  return OC_OK;
}

const oc_op_def_t oc_op_depth_to_space = {"DepthToSpace", 1, 1, 1, 1, d2s_infer, d2s_run};
const oc_op_def_t oc_op_space_to_depth = {"SpaceToDepth", 1, 1, 1, 1, s2d_infer, s2d_run};
