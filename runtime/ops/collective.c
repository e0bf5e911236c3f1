/*
 * Collective ops: data-parallel training across the ranks of a job (onnxc
 * --ranks N; docs/distributed.md). They call the context's communicator
 * (oc_context_set_communicator, call->comm); without one they act as on a
 * job of one rank. Every rank runs the same plan, so every rank reaches the
 * same collective instructions in the same order with the same shapes.
 *
 * AllReduce       x_1..x_k (float32) -> y_1..y_k, the sum over the ranks,
 *                 divided by the rank count when ints[0] = 1 (the mean).
 *                 The inputs travel as one buffer: one call per instruction
 *                 (a bucket of gradients). workspace: the packed inputs
 *                 (k > 1).
 * AllGather       x (n, ...) -> y (n * R, ...): every rank's x along axis 0,
 *                 rank 0's first. ints [R]: the plan's rank count; a job of
 *                 another size is an error.
 * ReduceScatter   dy (n * R, ...) -> dx (n, ...): rows [r * n, r * n + n) of
 *                 the sum of dy over the ranks: the gradient of AllGather.
 *                 ints [R]. workspace: dy's bytes.
 * SyncBatchNormalization      BatchNormalization in training mode (the same
 *                 inputs, ints [1, unbiased], floats [eps, momentum] and
 *                 outputs; runtime/ops/batchnorm.c) with the batch statistics
 *                 of every rank's batch: the per-channel sum, then the sum of
 *                 squared deviations from the global mean, are all-reduced
 *                 (in double). Each rank sums and normalizes its rows with
 *                 the one-process kernel's row functions (batchnorm.h), its
 *                 channels split over the context's threads, so that only
 *                 the order of adding the ranks' parts differs from one
 *                 process on the whole batch. workspace: 2 * C doubles.
 * SyncBatchNormalizationBwd   its gradient (BatchNormalizationBwd's inputs,
 *                 ints [1, mask], floats [eps]): the statistics again, then
 *                 sum(dy) and sum(dy * xhat) per channel all-reduced, so that
 *                 dx = scale * rstd * (dy - sum(dy) / n - xhat * sum(dy * xhat) / n)
 *                 with n the global count; dscale and dbias are this rank's
 *                 sums (the gradient all-reduce adds the ranks' parts).
 *                 workspace: 4 * C doubles.
 */
#include <math.h>
#include <string.h>

#include "batchnorm.h"
#include "oc_ops.h"
#include "parallel.h"

/* --- the communicator ---------------------------------------------------------------- */

static int comm_size(const oc_op_call_t *c) { return c->comm ? c->comm->size : 1; }
static int comm_rank(const oc_op_call_t *c) { return c->comm ? c->comm->rank : 0; }

static oc_status_t comm_failed(const oc_op_call_t *c, const char *what, int rc) {
  return oc_make_status(OC_STATUS_IO, "rank %d of %d: the communicator's %s failed (%d)",
                        comm_rank(c), comm_size(c), what, rc);
}

/* Sums |n| values of |data| over the ranks, in place. */
static oc_status_t allreduce(const oc_op_call_t *c, void *data, size_t n, oc_dtype_t dtype) {
  if (comm_size(c) == 1 || n == 0) return OC_OK;
  int rc = c->comm->allreduce_sum(c->comm->self, data, n, dtype);
  return rc ? comm_failed(c, "allreduce_sum", rc) : OC_OK;
}

/* A plan whose shapes depend on the rank count runs only on that many. */
static oc_status_t check_ranks(const oc_op_call_t *c, int64_t ranks) {
  if (comm_size(c) == ranks) return OC_OK;
  return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                        "the plan was compiled for %lld ranks (onnxc --ranks %lld), the job has %d",
                        (long long)ranks, (long long)ranks, comm_size(c));
}

/* --- AllReduce ----------------------------------------------------------------------- */

static oc_status_t allreduce_infer(const oc_op_call_t *c, size_t *ws) {
  if (c->n_ints != 1 || (c->ints[0] != 0 && c->ints[0] != 1))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "AllReduce takes ints [mean: 0 or 1]");
  if (c->n_out != c->n_in)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "AllReduce has %d inputs and %d outputs",
                          c->n_in, c->n_out);
  uint64_t total = 0;
  for (int i = 0; i < c->n_in; i++) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[i], OC_DTYPE_FLOAT32, "AllReduce input"));
    oc_tensor_set_type(c->out[i], OC_DTYPE_FLOAT32, c->in[i]->rank, c->in[i]->dims);
    total += oc_tensor_bytes(c->in[i]);
  }
  if (total > OC_MAX_TENSOR_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "AllReduce of %llu bytes; the limit is %llu",
                          (unsigned long long)total, (unsigned long long)OC_MAX_TENSOR_BYTES);
  *ws = c->n_in > 1 ? (size_t)total : 0;
  return OC_OK;
}

static oc_status_t allreduce_run(const oc_op_call_t *c) {
  for (int i = 0; i < c->n_in; i++)
    if (c->out[i]->data != c->in[i]->data)
      memcpy(c->out[i]->data, c->in[i]->data, oc_tensor_bytes(c->in[i]));
  int ranks = comm_size(c);
  if (ranks == 1) return OC_OK;
  float *buf = c->n_in > 1 ? c->workspace : c->out[0]->data;
  size_t n = 0;
  if (c->n_in > 1)
    for (int i = 0; i < c->n_in; i++) {
      size_t k = (size_t)oc_tensor_numel(c->in[i]);
      if (k) memcpy(buf + n, c->out[i]->data, k * sizeof(float));
      n += k;
    }
  else
    n = (size_t)oc_tensor_numel(c->in[0]);
  OC_RETURN_IF_ERROR(allreduce(c, buf, n, OC_DTYPE_FLOAT32));
  if (c->ints[0])
    for (size_t k = 0; k < n; k++) buf[k] /= (float)ranks;
  if (c->n_in > 1) {
    n = 0;
    for (int i = 0; i < c->n_in; i++) {
      size_t k = (size_t)oc_tensor_numel(c->in[i]);
      if (k) memcpy(c->out[i]->data, buf + n, k * sizeof(float));
      n += k;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_allreduce = {"AllReduce", 1, OC_MAX_OP_INPUTS, 1, OC_MAX_OP_OUTPUTS,
                                     allreduce_infer, allreduce_run, 0, 1};

/* --- AllGather and ReduceScatter ------------------------------------------------------ */

/* x (n, ...) and y (n * R, ...): checks ints [R] and the types; |gather|
 * says which of x and y is the input. */
static oc_status_t gather_types(const oc_op_call_t *c, int gather, const char *name) {
  if (c->n_ints != 1 || c->ints[0] < 1 || c->ints[0] > 65536)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s takes ints [ranks], ranks in [1, 65536]",
                          name);
  const oc_tensor_t *x = c->in[0];
  char b[160];
  if (x->rank < 1 || oc_dtype_size(x->dtype) == 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s input is %s; expected rank >= 1", name,
                          oc_type_str(x, b, sizeof b));
  int64_t dims[OC_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  if (gather) {
    if (dims[0] > OC_MAX_DIM / c->ints[0])
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "%s: %lld rows times %lld ranks is too many",
                            name, (long long)dims[0], (long long)c->ints[0]);
    dims[0] *= c->ints[0];
  } else {
    if (dims[0] % c->ints[0] != 0)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "%s input is %s: axis 0 is not a multiple of %lld ranks", name,
                            oc_type_str(x, b, sizeof b), (long long)c->ints[0]);
    dims[0] /= c->ints[0];
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  return oc_check_type(c->out[0], "output");
}

static oc_status_t allgather_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  return gather_types(c, 1, "AllGather");
}

static oc_status_t allgather_run(const oc_op_call_t *c) {
  OC_RETURN_IF_ERROR(check_ranks(c, c->ints[0]));
  size_t bytes = oc_tensor_bytes(c->in[0]);
  if (comm_size(c) == 1) {
    if (bytes) memcpy(c->out[0]->data, c->in[0]->data, bytes);
    return OC_OK;
  }
  int rc = c->comm->allgather(c->comm->self, c->in[0]->data, c->out[0]->data, bytes);
  return rc ? comm_failed(c, "allgather", rc) : OC_OK;
}

const oc_op_def_t oc_op_allgather = {"AllGather", 1, 1, 1, 1, allgather_infer, allgather_run};

static oc_status_t reduce_scatter_infer(const oc_op_call_t *c, size_t *ws) {
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[0], OC_DTYPE_FLOAT32, "ReduceScatter input"));
  OC_RETURN_IF_ERROR(gather_types(c, 0, "ReduceScatter"));
  *ws = oc_tensor_bytes(c->in[0]);
  return OC_OK;
}

static oc_status_t reduce_scatter_run(const oc_op_call_t *c) {
  OC_RETURN_IF_ERROR(check_ranks(c, c->ints[0]));
  size_t bytes = oc_tensor_bytes(c->in[0]), part = oc_tensor_bytes(c->out[0]);
  if (!bytes) return OC_OK;
  memcpy(c->workspace, c->in[0]->data, bytes);
  OC_RETURN_IF_ERROR(allreduce(c, c->workspace, (size_t)oc_tensor_numel(c->in[0]), OC_DTYPE_FLOAT32));
  memcpy(c->out[0]->data, (const uint8_t *)c->workspace + (size_t)comm_rank(c) * part, part);
  return OC_OK;
}

const oc_op_def_t oc_op_reduce_scatter = {"ReduceScatter", 1, 1, 1, 1, reduce_scatter_infer,
                                          reduce_scatter_run};

/* --- SyncBatchNormalization ---------------------------------------------------------- */

/* x viewed as (N, C, S). */
static void bn_shape(const oc_tensor_t *x, int64_t *N, int64_t *C, int64_t *S) {
  *N = x->dims[0];
  *C = x->dims[1];
  *S = 1;
  for (int d = 2; d < x->rank; d++) *S *= x->dims[d];
}

/* The passes over a rank's rows, split over the context's threads by channel;
 * the row kernels are the one-process BatchNormalization's (batchnorm.h). */
enum { SBN_SUM, SBN_SQDEV, SBN_AFFINE, SBN_SUM_DY, SBN_DX };

typedef struct sync_bn_job_s {
  const oc_op_call_t *c;
  int64_t N, C, S;
  int pass;
  double *mean, *var, *sums, count; /* sums: sum(dy), then sum(dy * xhat) (C each) */
} sync_bn_job_t;

static void sync_bn_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const sync_bn_job_t *j = arg;
  const oc_op_call_t *c = j->c;
  const int64_t N = j->N, C = j->C, S = j->S;
  const float *xp = c->in[0]->data, *scale = c->in[1]->data;
  const double eps = (double)c->floats[0];
  for (int64_t ch = c0; ch < c1; ch++) {
    double s = 0.0, rstd;
    switch (j->pass) {
      case SBN_SUM:
        for (int64_t n = 0; n < N; n++) s += oc_bn_sum(xp + (n * C + ch) * S, S);
        j->mean[ch] = s;
        break;
      case SBN_SQDEV:
        for (int64_t n = 0; n < N; n++) s += oc_bn_sum_sqdev(xp + (n * C + ch) * S, S, j->mean[ch]);
        j->var[ch] = s;
        break;
      case SBN_AFFINE: {
        const float *bias = c->in[2]->data;
        float *y = c->out[0]->data;
        float a = (float)((double)scale[ch] / sqrt(j->var[ch] + eps));
        float m = (float)j->mean[ch], b = bias[ch];
        for (int64_t n = 0; n < N; n++)
          oc_bn_affine(y + (n * C + ch) * S, xp + (n * C + ch) * S, S, m, a, b);
        break;
      }
      case SBN_SUM_DY: {
        const float *dy = c->in[2]->data;
        double b = 0.0;
        rstd = 1.0 / sqrt(j->var[ch] + eps);
        for (int64_t n = 0; n < N; n++)
          oc_bn_sum_dy(dy + (n * C + ch) * S, xp + (n * C + ch) * S, S, j->mean[ch], &s, &b);
        j->sums[ch] = s;
        j->sums[C + ch] = b * rstd;
        break;
      }
      case SBN_DX: {
        const float *dy = c->in[2]->data;
        float *dx = c->out[0]->data;
        rstd = 1.0 / sqrt(j->var[ch] + eps);
        float m = (float)j->mean[ch], r = (float)rstd, mg = (float)(j->sums[ch] / j->count);
        float mgx = (float)(j->sums[C + ch] / j->count), f = (float)(scale[ch] * rstd);
        for (int64_t n = 0; n < N; n++) {
          int64_t q = (n * C + ch) * S;
          oc_bn_dx(dx + q, dy + q, xp + q, S, m, r, mg, mgx, f);
        }
        break;
      }
    }
  }
  (void)thread;
}

/* Runs pass |pass| over every channel. */
static void sync_bn_pass(sync_bn_job_t *j, int pass) {
  j->pass = pass;
  int64_t cost = j->N * j->S * (pass == SBN_DX || pass == SBN_SUM_DY ? 3 : 2);
  oc_parallel_for(j->c->pool, j->C, oc_grain(cost), sync_bn_part, j);
}

/* The statistics over every rank's batch: mean and biased variance per
 * channel, in double (the sum, all-reduced; then the sum of squared
 * deviations from the global mean, all-reduced); j->count gets the values
 * per channel (all ranks). */
static oc_status_t global_stats(sync_bn_job_t *j) {
  const oc_op_call_t *c = j->c;
  double count = (double)j->N * (double)j->S * (double)comm_size(c);
  sync_bn_pass(j, SBN_SUM);
  OC_RETURN_IF_ERROR(allreduce(c, j->mean, (size_t)j->C, OC_DTYPE_FLOAT64));
  for (int64_t ch = 0; ch < j->C; ch++) j->mean[ch] /= count; /* NaN for an empty batch */
  sync_bn_pass(j, SBN_SQDEV);
  OC_RETURN_IF_ERROR(allreduce(c, j->var, (size_t)j->C, OC_DTYPE_FLOAT64));
  for (int64_t ch = 0; ch < j->C; ch++) j->var[ch] /= count;
  j->count = count;
  return OC_OK;
}

static oc_status_t sync_bn_infer(const oc_op_call_t *c, size_t *ws) {
  if (c->n_ints < 1 || c->ints[0] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "SyncBatchNormalization takes ints [1, unbiased] (training mode)");
  return oc_op_batchnorm.infer(c, ws);
}

static oc_status_t sync_bn_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t N, C, S;
  bn_shape(x, &N, &C, &S);
  double *mean = c->workspace, *var = mean + C;
  sync_bn_job_t j = {c, N, C, S, 0, mean, var, NULL, 0.0};
  OC_RETURN_IF_ERROR(global_stats(&j));
  if (N > 0 && S > 0) sync_bn_pass(&j, SBN_AFFINE);
  double count = j.count;
  double mom = c->floats[1], corr = c->ints[1] && count > 1.0 ? count / (count - 1.0) : 1.0;
  const float *rmean = c->in[3]->data, *rvar = c->in[4]->data;
  float *outs[4] = {0};
  for (int k = 1; k < c->n_out && k < 5; k++) outs[k - 1] = c->out[k] ? c->out[k]->data : NULL;
  for (int64_t ch = 0; ch < C; ch++) {
    if (outs[0]) outs[0][ch] = (float)(mom * rmean[ch] + (1.0 - mom) * mean[ch]);
    if (outs[1]) outs[1][ch] = (float)(mom * rvar[ch] + (1.0 - mom) * var[ch] * corr);
    if (outs[2]) outs[2][ch] = (float)mean[ch];
    if (outs[3]) outs[3][ch] = (float)var[ch];
  }
  return OC_OK;
}

const oc_op_def_t oc_op_sync_batchnorm = {"SyncBatchNormalization", 5, 5, 1, 5, sync_bn_infer,
                                          sync_bn_run};

static oc_status_t sync_bn_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  if (c->n_ints < 1 || c->ints[0] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "SyncBatchNormalizationBwd takes ints [1, mask] (training mode)");
  return oc_op_batchnorm_bwd.infer(c, ws);
}

static oc_status_t sync_bn_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t N, C, S;
  bn_shape(x, &N, &C, &S);
  double *mean = c->workspace, *var = mean + C, *sums = var + C; /* sums: sdy, sdyx */
  sync_bn_job_t j = {c, N, C, S, 0, mean, var, sums, 0.0};
  OC_RETURN_IF_ERROR(global_stats(&j));
  sync_bn_pass(&j, SBN_SUM_DY);
  int64_t mask = c->ints[1];
  int k = 0;
  float *ds = NULL, *db = NULL;
  int dx = mask & 1;
  if (mask & 1) k++;
  if (mask & 2) ds = c->out[k++]->data;
  if (mask & 4) db = c->out[k++]->data;
  for (int64_t ch = 0; ch < C; ch++) {
    if (ds) ds[ch] = (float)sums[C + ch];
    if (db) db[ch] = (float)sums[ch];
  }
  if (!dx) return OC_OK;
  /* dx needs the sums over every rank; dscale and dbias are this rank's. */
  OC_RETURN_IF_ERROR(allreduce(c, sums, (size_t)(2 * C), OC_DTYPE_FLOAT64));
  if (N > 0 && S > 0) sync_bn_pass(&j, SBN_DX);
  return OC_OK;
}

const oc_op_def_t oc_op_sync_batchnorm_bwd = {"SyncBatchNormalizationBwd", 5, 5, 1, 3,
                                              sync_bn_bwd_infer, sync_bn_bwd_run};
