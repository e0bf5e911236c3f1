/*
 * Matrix products through OpenBLAS's sgemm (oc_sgemm: split over the context's threads).
 *
 * MatMul: y = a @ b with numpy semantics.
 *   inputs:  a float32 (..., M, K) or (K); b float32 (..., K, N) or (K)
 *   outputs: y float32, dims broadcast(batch(a), batch(b)) ++ (M, N); the M
 *            axis is absent when a is 1-D, the N axis when b is 1-D.
 *   ints:    none          floats: none
 * Gemm: y = alpha * op(A) @ op(B) + beta * C.
 *   inputs:  A float32 (M,K), or (K,M) when transA; B float32 (K,N), or (N,K)
 *            when transB; optional C float32 of rank <= 2, unidirectionally
 *            broadcastable to (M,N).
 *   outputs: y float32 (M,N)
 *   ints:    [transA, transB], each 0 or 1
 *   floats:  [alpha, beta]
 * M, K and N must fit in a 32-bit int (the BLAS interface).
 */
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"

#define MM_MAX_BLAS_DIM ((int64_t)INT32_MAX)

/* --- MatMul --------------------------------------------------------------- */

/* The shape of a (possibly batched) matrix product. */
typedef struct mm_geom_s {
  int64_t m, k, n;
  int brank;                     /* rank of the broadcast batch */
  int64_t bdims[OC_MAX_RANK];    /* broadcast batch dims */
  int64_t astride[OC_MAX_RANK];  /* per batch axis, in matrices of a (0: broadcast) */
  int64_t bstride[OC_MAX_RANK];  /* per batch axis, in matrices of b (0: broadcast) */
  int64_t batch, abatch, bbatch; /* matrices in y, a, b */
} mm_geom_t;

/* Strides, in whole matrices, of the batch dims |dims| (rank |r|) of one
 * operand seen through the broadcast batch |g->bdims| (rank |g->brank|). */
static void mm_batch_strides(const mm_geom_t *g, int r, const int64_t *dims, int64_t *strides) {
  /* Unsigned: with a zero batch dim the strides go unused and may wrap. */
  uint64_t s = 1;
  for (int i = g->brank - 1; i >= 0; i--) {
    int j = i - (g->brank - r);
    int64_t d = j >= 0 ? dims[j] : 1;
    strides[i] = (d == 1) ? 0 : (int64_t)s;
    s *= (uint64_t)d;
  }
}

static oc_status_t mm_geometry(const oc_tensor_t *a, const oc_tensor_t *b, mm_geom_t *g) {
  char b1[160], b2[160];
  if (a->rank < 1 || b->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "MatMul operands must have rank >= 1, got %s and %s",
                          oc_type_str(a, b1, sizeof b1), oc_type_str(b, b2, sizeof b2));
  int ra = a->rank, rb = b->rank;
  g->m = ra >= 2 ? a->dims[ra - 2] : 1;
  g->k = a->dims[ra - 1];
  int64_t kb = rb >= 2 ? b->dims[rb - 2] : b->dims[0];
  g->n = rb >= 2 ? b->dims[rb - 1] : 1;
  if (kb != g->k)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "MatMul inner dimensions differ: %s @ %s",
                          oc_type_str(a, b1, sizeof b1), oc_type_str(b, b2, sizeof b2));
  if (g->m > MM_MAX_BLAS_DIM || g->k > MM_MAX_BLAS_DIM || g->n > MM_MAX_BLAS_DIM)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "MatMul %s @ %s: a matrix dimension exceeds 2^31-1",
                          oc_type_str(a, b1, sizeof b1), oc_type_str(b, b2, sizeof b2));
  int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0;
  oc_tensor_t ta = {.dtype = a->dtype, .rank = bra}, tb = {.dtype = b->dtype, .rank = brb};
  memcpy(ta.dims, a->dims, sizeof(int64_t) * (size_t)bra);
  memcpy(tb.dims, b->dims, sizeof(int64_t) * (size_t)brb);
  oc_status_t s = oc_broadcast_shape(&ta, &tb, &g->brank, g->bdims);
  if (s) {
    oc_status_free(s);
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "MatMul batch dimensions do not broadcast: %s @ %s",
                          oc_type_str(a, b1, sizeof b1), oc_type_str(b, b2, sizeof b2));
  }
  mm_batch_strides(g, bra, a->dims, g->astride);
  mm_batch_strides(g, brb, b->dims, g->bstride);
  uint64_t batch = 1;
  for (int i = 0; i < g->brank; i++)
    if (oc_mul_overflows(batch, (uint64_t)g->bdims[i], &batch) || batch > (uint64_t)OC_MAX_DIM)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "MatMul %s @ %s: the batch is too large",
                            oc_type_str(a, b1, sizeof b1), oc_type_str(b, b2, sizeof b2));
  g->batch = (int64_t)batch;
  g->abatch = 1;
  for (int i = 0; i < bra; i++) g->abatch *= a->dims[i];
  g->bbatch = 1;
  for (int i = 0; i < brb; i++) g->bbatch *= b->dims[i];
  return OC_OK;
}

static oc_status_t matmul_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *a = c->in[0], *b = c->in[1];
  if (a->dtype != OC_DTYPE_FLOAT32 || b->dtype != OC_DTYPE_FLOAT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "MatMul computes float32 only; the inputs are %s and %s",
                          oc_dtype_name(a->dtype), oc_dtype_name(b->dtype));
  if (c->n_ints != 0 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "MatMul takes no attributes");
  mm_geom_t g;
  OC_RETURN_IF_ERROR(mm_geometry(a, b, &g));
  int64_t dims[OC_MAX_RANK];
  int r = g.brank;
  memcpy(dims, g.bdims, sizeof(int64_t) * (size_t)r);
  if (a->rank >= 2) dims[r++] = g.m;
  if (b->rank >= 2) dims[r++] = g.n;
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, r, dims);
  *ws = 0;
  return OC_OK;
}

/* y = a @ b for one matrix: a is (m,k), b is (k,n), y is (m,n); k may be 0. */
static void sgemm_nn(oc_pool_t *pool, float *y, const float *a, const float *b, int64_t m,
                     int64_t k, int64_t n) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    memset(y, 0, sizeof(float) * (size_t)(m * n));
    return;
  }
  oc_sgemm(pool, 0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, y, n);
}

/* The offsets (in matrices) into a and b of product |t| of the batch. */
static void mm_offsets(const mm_geom_t *g, int64_t t, int64_t *ia, int64_t *ib) {
  *ia = *ib = 0;
  for (int d = g->brank - 1; d >= 0; d--) {
    int64_t i = t % g->bdims[d];
    t /= g->bdims[d];
    *ia += i * g->astride[d];
    *ib += i * g->bstride[d];
  }
}

typedef struct mm_job_s {
  const mm_geom_t *g;
  const float *a, *b;
  float *y;
} mm_job_t;

/* Products [t0, t1) of the batch, one thread. */
static void mm_part(void *arg, int64_t t0, int64_t t1, int thread) {
  const mm_job_t *j = arg;
  const mm_geom_t *g = j->g;
  for (int64_t t = t0; t < t1; t++) {
    int64_t ia, ib;
    mm_offsets(g, t, &ia, &ib);
    sgemm_nn(NULL, j->y + t * g->m * g->n, j->a + ia * g->m * g->k, j->b + ib * g->k * g->n, g->m,
             g->k, g->n);
  }
}

/* a is (batch_a..., m, k), b is (batch_b..., k, n), y is (batch..., m, n). */
static oc_status_t matmul_run(const oc_op_call_t *c) {
  const float *a = c->in[0]->data, *b = c->in[1]->data;
  float *y = c->out[0]->data;
  mm_geom_t g;
  OC_RETURN_IF_ERROR(mm_geometry(c->in[0], c->in[1], &g));
  int64_t asz = g.m * g.k, bsz = g.k * g.n, ysz = g.m * g.n;
  if (g.batch == 0 || ysz == 0) return OC_OK;
  /* One b for every a, and a not broadcast: one tall product. */
  if (g.bbatch == 1 && g.abatch == g.batch && g.batch * g.m <= MM_MAX_BLAS_DIM) {
    sgemm_nn(c->pool, y, a, b, g.batch * g.m, g.k, g.n);
    return OC_OK;
  }
  int64_t grain = oc_grain(g.m * g.n * g.k / 16 + g.m * g.n);
  if (oc_parallel_parts(c->pool, g.batch, grain) > 1) {
    /* Many products: one thread per range of them. */
    mm_job_t j = {&g, a, b, y};
    oc_parallel_for(c->pool, g.batch, grain, mm_part, &j);
    return OC_OK;
  }
  int64_t idx[OC_MAX_RANK] = {0}, ia = 0, ib = 0;
  for (int64_t t = 0; t < g.batch; t++) {
    sgemm_nn(c->pool, y + t * ysz, a + ia * asz, b + ib * bsz, g.m, g.k, g.n);
    for (int d = g.brank - 1; d >= 0; d--) {
      idx[d]++;
      ia += g.astride[d];
      ib += g.bstride[d];
      if (idx[d] < g.bdims[d]) break;
      ia -= g.astride[d] * idx[d];
      ib -= g.bstride[d] * idx[d];
      idx[d] = 0;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_matmul = {"MatMul", 2, 2, 1, 1, matmul_infer, matmul_run};

/* --- Gemm ----------------------------------------------------------------- */

static oc_status_t gemm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *A = c->in[0], *B = c->in[1];
  const oc_tensor_t *C = c->n_in > 2 ? c->in[2] : NULL;
  char b1[160], b2[160];
  if (c->n_ints != 2 || c->n_floats != 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Gemm needs ints [transA, transB] and floats [alpha, beta]");
  for (int i = 0; i < 2; i++)
    if (c->ints[i] != 0 && c->ints[i] != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Gemm %s is %lld; must be 0 or 1",
                            i ? "transB" : "transA", (long long)c->ints[i]);
  OC_RETURN_IF_ERROR(oc_expect_dtype(A, OC_DTYPE_FLOAT32, "Gemm input A"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(B, OC_DTYPE_FLOAT32, "Gemm input B"));
  if (A->rank != 2 || B->rank != 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Gemm needs 2-D A and B, got %s and %s",
                          oc_type_str(A, b1, sizeof b1), oc_type_str(B, b2, sizeof b2));
  int ta = (int)c->ints[0], tb = (int)c->ints[1];
  int64_t m = ta ? A->dims[1] : A->dims[0], k = ta ? A->dims[0] : A->dims[1];
  int64_t kb = tb ? B->dims[1] : B->dims[0], n = tb ? B->dims[0] : B->dims[1];
  if (k != kb)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Gemm inner dimensions differ: A %s (transA=%d), B %s (transB=%d)",
                          oc_type_str(A, b1, sizeof b1), ta, oc_type_str(B, b2, sizeof b2), tb);
  if (m > MM_MAX_BLAS_DIM || k > MM_MAX_BLAS_DIM || n > MM_MAX_BLAS_DIM)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "Gemm: a matrix dimension exceeds 2^31-1");
  int64_t ydims[2] = {m, n};
  if (C) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(C, OC_DTYPE_FLOAT32, "Gemm input C"));
    int ok = C->rank <= 2;
    for (int i = 0; ok && i < C->rank; i++) {
      int64_t want = ydims[2 - C->rank + i];
      ok = C->dims[i] == want || C->dims[i] == 1;
    }
    if (!ok)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "Gemm input C %s does not broadcast to (%lld,%lld)",
                            oc_type_str(C, b1, sizeof b1), (long long)m, (long long)n);
  }
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, 2, ydims);
  *ws = 0;
  return OC_OK;
}

/* y is (m,n) = beta * C broadcast, C of rank <= 2 broadcastable to (m,n). */
static void gemm_fill_bias(float *y, const oc_tensor_t *C, float beta, int64_t m, int64_t n) {
  const float *pc = C->data;
  int64_t cm = C->rank == 2 ? C->dims[0] : 1;
  int64_t cn = C->rank >= 1 ? C->dims[C->rank - 1] : 1;
  for (int64_t i = 0; i < m; i++) {
    const float *row = pc + (cm == 1 ? 0 : i) * cn;
    float *yr = y + i * n;
    if (cn == 1) {
      for (int64_t j = 0; j < n; j++) yr[j] = beta * row[0];
    } else {
      for (int64_t j = 0; j < n; j++) yr[j] = beta * row[j];
    }
  }
}

/* A is (m,k) or (k,m), B is (k,n) or (n,k), C broadcasts to (m,n), y is (m,n). */
static oc_status_t gemm_run(const oc_op_call_t *c) {
  const oc_tensor_t *A = c->in[0], *B = c->in[1];
  const oc_tensor_t *C = c->n_in > 2 ? c->in[2] : NULL;
  float *y = c->out[0]->data;
  int ta = (int)c->ints[0], tb = (int)c->ints[1];
  float alpha = c->floats[0], beta = c->floats[1];
  int64_t m = c->out[0]->dims[0], n = c->out[0]->dims[1];
  int64_t k = ta ? A->dims[0] : A->dims[1];
  if (m == 0 || n == 0) return OC_OK;
  if (C)
    gemm_fill_bias(y, C, beta, m, n);
  else
    memset(y, 0, sizeof(float) * (size_t)(m * n));
  if (k == 0) return OC_OK;
  oc_sgemm(c->pool, ta, tb, m, n, k, alpha, A->data, A->dims[1], B->data, B->dims[1], 1.0f, y, n);
  return OC_OK;
}

const oc_op_def_t oc_op_gemm = {"Gemm", 2, 3, 1, 1, gemm_infer, gemm_run};

/* --- MatMulBwd (backward of MatMul) ------------------------------------------
 *
 * MatMulBwd: the gradient of y = a @ b (MatMul above) with respect to one
 * operand, summed over the batch axes along which that operand was broadcast.
 *   inputs:  dy float32, the dims of y; other float32: b when computing da,
 *            a when computing db
 *   outputs: g float32 with the operand's dims (ints[1..])
 *   ints:    [which, operand dims...]: which 0: g = da (other is b), which 1:
 *            g = db (other is a); 1 to OC_MAX_RANK dims (MatMul operands have
 *            rank >= 1). MatMul(a, b) must have exactly dy's dims.
 *   floats:  none
 * Per matrix, da = dy @ b^T and db = a^T @ dy, computed by sgemm with
 * its transpose flags (no transposed copies). A 1-D a is a (1,K) row and a
 * 1-D b a (K,1) column, as in the forward. Broadcast batches accumulate into
 * the same output matrix (beta = 1); an unbroadcast operand against an
 * unbatched one is one tall product.
 */

/* The operand (dims from ints) and the other input as MatMul's a and b. */
static oc_status_t mmg_operands(const oc_op_call_t *c, oc_tensor_t *a, oc_tensor_t *b) {
  oc_tensor_t t = {.dtype = OC_DTYPE_FLOAT32, .rank = c->n_ints - 1};
  for (int i = 0; i < t.rank; i++) t.dims[i] = c->ints[1 + i];
  if (c->ints[0] == 0) {
    *a = t;
    *b = *c->in[1];
  } else {
    *a = *c->in[1];
    *b = t;
  }
  return OC_OK;
}

static oc_status_t matmul_grad_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0], *other = c->in[1];
  char b1[160], b2[160];
  if (c->n_floats != 0 || c->n_ints < 2 || c->n_ints - 1 > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "MatMulBwd needs ints [which, operand dims...] with 1 to %d dims",
                          OC_MAX_RANK);
  if (c->ints[0] != 0 && c->ints[0] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "MatMulBwd which is %lld; must be 0 or 1",
                          (long long)c->ints[0]);
  oc_tensor_t t = {.dtype = OC_DTYPE_FLOAT32, .rank = c->n_ints - 1};
  for (int i = 0; i < t.rank; i++) {
    if (c->ints[1 + i] < 0 || c->ints[1 + i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "MatMulBwd operand dim %d is %lld", i,
                            (long long)c->ints[1 + i]);
    t.dims[i] = c->ints[1 + i];
  }
  OC_RETURN_IF_ERROR(oc_check_type(&t, "MatMulBwd operand"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "MatMulBwd dy"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(other, OC_DTYPE_FLOAT32, "MatMulBwd operand"));
  oc_tensor_t a, b;
  OC_RETURN_IF_ERROR(mmg_operands(c, &a, &b));
  mm_geom_t g;
  OC_RETURN_IF_ERROR(mm_geometry(&a, &b, &g));
  int64_t dims[OC_MAX_RANK];
  int r = g.brank;
  memcpy(dims, g.bdims, sizeof(int64_t) * (size_t)r);
  if (a.rank >= 2) dims[r++] = g.m;
  if (b.rank >= 2) dims[r++] = g.n;
  int same = dy->rank == r;
  for (int i = 0; same && i < r; i++) same = dy->dims[i] == dims[i];
  if (!same) {
    char b3[160];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "MatMulBwd dy is %s; MatMul of %s and %s has other dims",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(&a, b2, sizeof b2),
                          oc_type_str(&b, b3, sizeof b3));
  }
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, t.rank, t.dims);
  *ws = 0;
  return OC_OK;
}

/* dy is (batch..., m, n); which 0: b is (batch_b..., k, n), da is
 * (batch_a..., m, k); which 1: a is (batch_a..., m, k), db is
 * (batch_b..., k, n). */
static oc_status_t matmul_grad_run(const oc_op_call_t *c) {
  oc_tensor_t a, b;
  OC_RETURN_IF_ERROR(mmg_operands(c, &a, &b));
  mm_geom_t g;
  OC_RETURN_IF_ERROR(mm_geometry(&a, &b, &g));
  int which = (int)c->ints[0];
  const float *dy = c->in[0]->data, *pa = a.data, *pb = b.data;
  float *out = c->out[0]->data;
  int64_t onumel = oc_tensor_numel(c->out[0]);
  if (onumel == 0) return OC_OK;
  memset(out, 0, sizeof(float) * (size_t)onumel);
  /* The summed dimension: n for da, m for db; empty sums leave zeros. */
  if (g.batch == 0 || (which == 0 ? g.n : g.m) == 0) return OC_OK;
  int64_t asz = g.m * g.k, bsz = g.k * g.n, ysz = g.m * g.n;
  if (g.bbatch == 1 && g.abatch == g.batch && g.batch * g.m <= MM_MAX_BLAS_DIM) {
    /* b is one matrix and a is not broadcast: dy and a stack into tall
     * (batch*m, .) matrices. */
    int64_t bm = g.batch * g.m;
    if (which == 0)
      oc_sgemm(c->pool, 0, 1, bm, g.k, g.n, 1.0f, dy, g.n, pb, g.n, 0.0f, out, g.k);
    else
      oc_sgemm(c->pool, 1, 0, g.k, g.n, bm, 1.0f, pa, g.k, dy, g.n, 0.0f, out, g.n);
    return OC_OK;
  }
  int64_t idx[OC_MAX_RANK] = {0}, ia = 0, ib = 0;
  for (int64_t t = 0; t < g.batch; t++) {
    if (which == 0)
      oc_sgemm(c->pool, 0, 1, g.m, g.k, g.n, 1.0f, dy + t * ysz, g.n, pb + ib * bsz, g.n, 1.0f,
               out + ia * asz, g.k);
    else
      oc_sgemm(c->pool, 1, 0, g.k, g.n, g.m, 1.0f, pa + ia * asz, g.k, dy + t * ysz, g.n, 1.0f,
               out + ib * bsz, g.n);
    for (int d = g.brank - 1; d >= 0; d--) {
      idx[d]++;
      ia += g.astride[d];
      ib += g.bstride[d];
      if (idx[d] < g.bdims[d]) break;
      ia -= g.astride[d] * idx[d];
      ib -= g.bstride[d] * idx[d];
      idx[d] = 0;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_matmul_bwd = {"MatMulBwd", 2, 2, 1, 1, matmul_grad_infer,
                                       matmul_grad_run};
