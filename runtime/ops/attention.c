/*
 * Attention: o = softmax(scale * q @ k^T) @ v for a batch of matrices (no
 * mask), each of q, k, v and o addressed through strides into its buffer.
 * The compiler (compiler/fuse.c) makes it from MatMul, [Div|Mul,] Softmax,
 * MatMul, [Transpose] and finds the strides by following the Slice /
 * reshape / Transpose chains that cut the heads out of a packed product, so
 * the heads are read in place and o is written in the layout its reader
 * wants, without transposing copies.
 *   inputs:  q, k, v float32 buffers (any shapes; may be one tensor)
 *   outputs: o float32 with dims o_dims
 *   ints:    [nb, (n, q_stride, k_stride, v_stride, o_stride) x nb,
 *             tq, tk, dk, dv, q_off, q_row, k_off, k_row, v_off, v_row, o_row,
 *             o_rank, o_dims...]
 *            nb in [0, 8] batch dims of sizes n (>= 1) and strides >= 0; per
 *            batch index: q is (tq, dk) at q_off with rows q_row apart, k is
 *            (tk, dk) at k_off (rows k_row), v is (tk, dv) at v_off (rows
 *            v_row), o is (tq, dv) with rows o_row apart; columns are
 *            contiguous. tq, dv >= 0; tk, dk >= 1; every row stride >= the
 *            row's length and >= 1, everything below 2^31 (BLAS). Every
 *            element of q, k, v must lie inside its buffer; the elements of o
 *            must cover o exactly once (a permutation of a dense layout).
 *   floats:  [scale], finite
 * Per batch index and block of up to 64 query rows: the scores
 * scale * q @ k^T (sgemm) into the workspace, one Softmax row kernel per row
 * (runtime/ops/softmax.c), then o = scores @ v (sgemm) written in place.
 * The blocks are spread over the context's threads; workspace: up to
 * AT_SLOTS blocks of scores, each 64 x tk floats.
 */
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"
#include "softmax.h"

#define AT_MAX_BATCH 8
#define AT_ROWS 64  /* query rows per block */
#define AT_SLOTS 32 /* blocks in flight: score buffers in the workspace */
#define AT_MAX_BLAS ((int64_t)INT32_MAX)

typedef struct at_geom_s {
  int nb;
  int64_t n[AT_MAX_BATCH], qs[AT_MAX_BATCH], ks[AT_MAX_BATCH], vs[AT_MAX_BATCH],
      os[AT_MAX_BATCH];
  int64_t tq, tk, dk, dv;
  int64_t q_off, q_row, k_off, k_row, v_off, v_row, o_row;
  int o_rank;
  const int64_t *o_dims;
  int64_t batch; /* product of n */
} at_geom_t;

/* The largest element index a view reads: off + sum (size - 1) * stride, or
 * -1 on overflow. */
static int64_t at_extent(int64_t off, int nb, const int64_t *n, const int64_t *s, int64_t rows,
                         int64_t row, int64_t cols) {
  int64_t e = off, t;
  for (int i = 0; i < nb; i++) {
    if (__builtin_mul_overflow(n[i] - 1, s[i], &t) || __builtin_add_overflow(e, t, &e)) return -1;
  }
  if (__builtin_mul_overflow(rows - 1, row, &t) || __builtin_add_overflow(e, t, &e) ||
      __builtin_add_overflow(e, cols - 1, &e))
    return -1;
  return e;
}

static oc_status_t at_bad(const char *what) {
  return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Attention: %s", what);
}

/* Reads and checks ints/floats against the input types. */
static oc_status_t at_geometry(const oc_op_call_t *c, at_geom_t *g) {
  const int64_t *p = c->ints;
  int left = c->n_ints;
  if (c->n_floats != 1 || !(c->floats[0] - c->floats[0] == 0.0f))
    return at_bad("needs floats [scale], finite");
  if (left < 1 || p[0] < 0 || p[0] > AT_MAX_BATCH) return at_bad("nb must be in [0, 8]");
  g->nb = (int)p[0];
  if (left < 1 + 5 * g->nb + 12) return at_bad("too few ints");
  p++;
  g->batch = 1;
  for (int i = 0; i < g->nb; i++, p += 5) {
    if (p[0] < 1 || p[0] > OC_MAX_DIM) return at_bad("a batch dim is out of [1, 2^40]");
    for (int k = 1; k < 5; k++)
      if (p[k] < 0 || p[k] > OC_MAX_DIM) return at_bad("a batch stride is out of [0, 2^40]");
    g->n[i] = p[0];
    g->qs[i] = p[1];
    g->ks[i] = p[2];
    g->vs[i] = p[3];
    g->os[i] = p[4];
    if (__builtin_mul_overflow(g->batch, g->n[i], &g->batch) || g->batch > OC_MAX_DIM)
      return at_bad("the batch is too large");
  }
  g->tq = p[0];
  g->tk = p[1];
  g->dk = p[2];
  g->dv = p[3];
  g->q_off = p[4];
  g->q_row = p[5];
  g->k_off = p[6];
  g->k_row = p[7];
  g->v_off = p[8];
  g->v_row = p[9];
  g->o_row = p[10];
  g->o_rank = (int)p[11];
  if (p[11] < 0 || p[11] > OC_MAX_RANK || c->n_ints != 1 + 5 * g->nb + 12 + g->o_rank)
    return at_bad("o_rank does not match the number of ints");
  g->o_dims = p + 12;
  if (g->tq < 0 || g->dv < 0 || g->tk < 1 || g->dk < 1)
    return at_bad("tq and dv must be >= 0, tk and dk >= 1");
  const int64_t *lim[] = {&g->tq, &g->tk, &g->dk, &g->dv, &g->q_row, &g->k_row, &g->v_row,
                          &g->o_row};
  for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
    if (*lim[i] > AT_MAX_BLAS) return at_bad("a matrix dim or row stride exceeds 2^31-1");
  if (g->q_row < g->dk || g->k_row < g->dk || g->v_row < g->dv || g->o_row < g->dv ||
      g->q_row < 1 || g->k_row < 1 || g->v_row < 1 || g->o_row < 1)
    return at_bad("a row stride is shorter than its row");
  if (g->q_off < 0 || g->k_off < 0 || g->v_off < 0) return at_bad("a negative offset");
  return OC_OK;
}

/* Whether (sizes, strides) is a permutation of a dense layout of exactly
 * |numel| elements (sizes-1 dims aside). */
static int at_dense(int n, const int64_t *size, const int64_t *stride, int64_t numel) {
  int used[AT_MAX_BATCH + 2] = {0};
  int64_t want = 1;
  for (;;) {
    int pick = -1;
    for (int i = 0; i < n; i++)
      if (!used[i] && size[i] > 1 && stride[i] == want) pick = i;
    if (pick < 0) break;
    used[pick] = 1;
    want *= size[pick];
  }
  for (int i = 0; i < n; i++)
    if (!used[i] && size[i] > 1) return 0;
  return want == numel;
}

static oc_status_t attention_infer(const oc_op_call_t *c, size_t *ws) {
  at_geom_t g;
  OC_RETURN_IF_ERROR(at_geometry(c, &g));
  const char *names[3] = {"q", "k", "v"};
  for (int k = 0; k < 3; k++)
    OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[k], OC_DTYPE_FLOAT32, names[k]));
  oc_tensor_t o = {.dtype = OC_DTYPE_FLOAT32, .rank = g.o_rank};
  for (int i = 0; i < g.o_rank; i++) {
    if (g.o_dims[i] < 0 || g.o_dims[i] > OC_MAX_DIM) return at_bad("an output dim is out of range");
    o.dims[i] = g.o_dims[i];
  }
  OC_RETURN_IF_ERROR(oc_check_type(&o, "Attention output"));
  int64_t numel = oc_tensor_numel(&o);
  uint64_t want = (uint64_t)g.batch;
  if (oc_mul_overflows(want, (uint64_t)g.tq, &want) || oc_mul_overflows(want, (uint64_t)g.dv, &want) ||
      want != (uint64_t)numel)
    return at_bad("the output dims do not hold batch x tq x dv elements");
  if (numel > 0) {
    /* every input element read lies in its buffer */
    int64_t ext[3] = {at_extent(g.q_off, g.nb, g.n, g.qs, g.tq, g.q_row, g.dk),
                      at_extent(g.k_off, g.nb, g.n, g.ks, g.tk, g.k_row, g.dk),
                      at_extent(g.v_off, g.nb, g.n, g.vs, g.tk, g.v_row, g.dv)};
    for (int k = 0; k < 3; k++)
      if (ext[k] < 0 || ext[k] >= oc_tensor_numel(c->in[k])) {
        char b[160];
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                              "Attention: the %s view reaches element %lld of %s", names[k],
                              (long long)ext[k], oc_type_str(c->in[k], b, sizeof b));
      }
    /* o: batch dims, rows and contiguous columns tile it exactly */
    int64_t size[AT_MAX_BATCH + 2], stride[AT_MAX_BATCH + 2];
    for (int i = 0; i < g.nb; i++) {
      size[i] = g.n[i];
      stride[i] = g.os[i];
    }
    size[g.nb] = g.tq;
    stride[g.nb] = g.o_row;
    size[g.nb + 1] = g.dv;
    stride[g.nb + 1] = 1;
    if (!at_dense(g.nb + 2, size, stride, numel))
      return at_bad("the output strides do not cover the output exactly once");
  }
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, o.rank, o.dims);
  int64_t rb = g.tq < AT_ROWS ? g.tq : AT_ROWS, blocks = 0;
  if (rb > 0) blocks = g.batch * ((g.tq + rb - 1) / rb);
  int64_t slots = blocks < AT_SLOTS ? blocks : AT_SLOTS;
  /* slots * 64 * tk floats, tk < 2^31: far below SIZE_MAX */
  *ws = (size_t)slots * (size_t)rb * (size_t)g.tk * sizeof(float);
  return OC_OK;
}

typedef struct at_job_s {
  const at_geom_t *g;
  const float *q, *k, *v;
  float *o;
  float *scores; /* slots x rb x tk */
  float scale;
  int64_t rb, blocks_per, blocks, slots;
} at_job_t;

/* Block |b|: batch index b / blocks_per, query rows from (b % blocks_per) * rb. */
static void at_block(const at_job_t *j, int64_t b, float *s) {
  const at_geom_t *g = j->g;
  int64_t t = b / j->blocks_per, r0 = (b % j->blocks_per) * j->rb;
  int64_t rows = g->tq - r0 < j->rb ? g->tq - r0 : j->rb;
  int64_t qo = g->q_off + r0 * g->q_row, ko = g->k_off, vo = g->v_off, oo = r0 * g->o_row;
  for (int i = g->nb - 1; i >= 0; i--) {
    int64_t idx = t % g->n[i];
    t /= g->n[i];
    qo += idx * g->qs[i];
    ko += idx * g->ks[i];
    vo += idx * g->vs[i];
    oo += idx * g->os[i];
  }
  oc_sgemm(NULL, 0, 1, rows, g->tk, g->dk, j->scale, j->q + qo, g->q_row, j->k + ko, g->k_row,
           0.0f, s, g->tk);
  for (int64_t r = 0; r < rows; r++) oc_softmax_row(s + r * g->tk, s + r * g->tk, g->tk);
  if (g->dv > 0)
    oc_sgemm(NULL, 0, 0, rows, g->dv, g->tk, 1.0f, s, g->tk, j->v + vo, g->v_row, 0.0f, j->o + oo,
             g->o_row);
}

/* Slots [s0, s1): slot s runs blocks s, s + slots, ... with its own scores. */
static void at_part(void *arg, int64_t s0, int64_t s1, int thread) {
  const at_job_t *j = arg;
  (void)thread;
  for (int64_t s = s0; s < s1; s++)
    for (int64_t b = s; b < j->blocks; b += j->slots)
      at_block(j, b, j->scores + s * j->rb * j->g->tk);
}

static oc_status_t attention_run(const oc_op_call_t *c) {
  at_geom_t g;
  OC_RETURN_IF_ERROR(at_geometry(c, &g));
  if (g.batch == 0 || g.tq == 0 || g.dv == 0) return OC_OK;
  at_job_t j = {&g, c->in[0]->data, c->in[1]->data, c->in[2]->data, c->out[0]->data,
                c->workspace, c->floats[0]};
  j.rb = g.tq < AT_ROWS ? g.tq : AT_ROWS;
  j.blocks_per = (g.tq + j.rb - 1) / j.rb;
  j.blocks = g.batch * j.blocks_per;
  j.slots = j.blocks < AT_SLOTS ? j.blocks : AT_SLOTS;
  /* a slot's blocks: two products and rb Softmax rows each */
  int64_t per_slot = (j.blocks / j.slots) * j.rb * g.tk * (g.dk + g.dv + 16) / 16;
  oc_parallel_for(c->pool, j.slots, oc_grain(per_slot), at_part, &j);
  return OC_OK;
}

const oc_op_def_t oc_op_attention = {"Attention", 3, 3, 1, 1, attention_infer, attention_run};
