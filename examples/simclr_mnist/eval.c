/* Evaluation of embeddings: kNN by cosine similarity, a linear probe
 * (multinomial logistic regression fitted by L-BFGS) and a 2-D PCA. Plain C;
 * the loops are written so that a compiler vectorizes them (-O3). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simclr_mnist.h"

/* Copies |rows| (n x dim) with every row scaled to unit L2 norm. */
static float *normalized_rows(const float *rows, int n, int dim) {
  float *out = malloc((size_t)n * (size_t)dim * sizeof(float));
  if (!out) return NULL;
  for (int i = 0; i < n; i++) {
    const float *r = rows + (size_t)i * dim;
    double s = 0;
    for (int k = 0; k < dim; k++) s += (double)r[k] * r[k];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int k = 0; k < dim; k++) out[(size_t)i * dim + k] = r[k] * inv;
  }
  return out;
}

/* ---- kNN ------------------------------------------------------------------ */

#define KNN_TILE 512
#define KNN_MAX_K 64

double eval_knn(const float *train, const int *train_labels, int n_train, const float *test,
                const int *test_labels, int n_test, int dim, int k) {
  if (k > KNN_MAX_K) k = KNN_MAX_K;
  if (k > n_train) k = n_train;
  float *a = normalized_rows(test, n_test, dim);
  float *b = normalized_rows(train, n_train, dim);
  float *tile = malloc((size_t)dim * KNN_TILE * sizeof(float)); /* dim x KNN_TILE */
  float *best_sim = malloc((size_t)n_test * (size_t)k * sizeof(float));
  int *best_lab = malloc((size_t)n_test * (size_t)k * sizeof(int));
  int *have = calloc((size_t)n_test, sizeof(int));
  double acc = -1;
  if (!a || !b || !tile || !best_sim || !best_lab || !have) goto out;
  float sims[KNN_TILE];
  for (int j0 = 0; j0 < n_train; j0 += KNN_TILE) {
    int nj = n_train - j0 < KNN_TILE ? n_train - j0 : KNN_TILE;
    if (nj < KNN_TILE) memset(tile, 0, (size_t)dim * KNN_TILE * sizeof(float));
    for (int kk = 0; kk < dim; kk++) /* transpose the tile: unit-stride inner loops */
      for (int j = 0; j < nj; j++) tile[(size_t)kk * KNN_TILE + j] = b[(size_t)(j0 + j) * dim + kk];
    for (int i = 0; i < n_test; i++) {
      const float *ai = a + (size_t)i * dim;
      for (int j = 0; j < KNN_TILE; j++) sims[j] = 0;
      for (int kk = 0; kk < dim; kk++) {
        const float av = ai[kk];
        const float *t = tile + (size_t)kk * KNN_TILE;
        for (int j = 0; j < KNN_TILE; j++) sims[j] += av * t[j];
      }
      /* Keep the k largest, sorted descending (insertion). */
      float *bs = best_sim + (size_t)i * k;
      int *bl = best_lab + (size_t)i * k;
      for (int j = 0; j < nj; j++) {
        float s = sims[j];
        int m = have[i];
        if (m == k && s <= bs[k - 1]) continue;
        int p = m < k ? m : k - 1;
        while (p > 0 && bs[p - 1] < s) {
          bs[p] = bs[p - 1];
          bl[p] = bl[p - 1];
          p--;
        }
        bs[p] = s;
        bl[p] = train_labels[j0 + j];
        if (m < k) have[i] = m + 1;
      }
    }
  }
  int correct = 0;
  for (int i = 0; i < n_test; i++) {
    int votes[MNIST_CLASSES] = {0};
    double weight[MNIST_CLASSES] = {0};
    for (int j = 0; j < have[i]; j++) {
      int l = best_lab[(size_t)i * k + j];
      votes[l]++;
      weight[l] += best_sim[(size_t)i * k + j];
    }
    int arg = 0;
    for (int c = 1; c < MNIST_CLASSES; c++)
      if (votes[c] > votes[arg] || (votes[c] == votes[arg] && weight[c] > weight[arg])) arg = c;
    correct += arg == test_labels[i];
  }
  acc = (double)correct / n_test;
out:
  free(a);
  free(b);
  free(tile);
  free(best_sim);
  free(best_lab);
  free(have);
  return acc;
}

/* ---- linear probe --------------------------------------------------------- */

#define C_PAD 16 /* classes padded to 16 for unit-stride vector loops */

typedef struct {
  const float *x; /* n x dim, standardized */
  const int *y;
  int n, dim;
  double l2;
  float *wf;      /* dim x C_PAD float copy of the weights */
  float *scratch; /* dim x C_PAD floats */
  double *grad_acc; /* dim x C_PAD */
} probe_t;

/* theta = [W (dim x 10, row-major), b (10)]. Returns the objective and
 * writes its gradient. */
/* 4 floats: GCC/Clang vector extensions (SSE on x86-64, NEON on arm64). */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f v4_load(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void v4_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }

/* theta = [W (dim x 10, row-major), b (10)]. Returns the objective and
 * writes its gradient. Rows go 4 at a time (P->x has zero rows up to a
 * multiple of 4): logits Z = X W in 16 vector registers, then the gradient
 * X^T (softmax(Z) - Y) accumulated in float per 256 rows, in double across. */
static double probe_eval(probe_t *P, const double *theta, double *grad) {
  const int n = P->n, dim = P->dim, C = MNIST_CLASSES;
  const double *b = theta + (size_t)dim * C;
  memset(P->wf, 0, (size_t)dim * C_PAD * sizeof(float));
  for (int k = 0; k < dim; k++)
    for (int c = 0; c < C; c++) P->wf[(size_t)k * C_PAD + c] = (float)theta[(size_t)k * C + c];
  double loss = 0;
  double gb[MNIST_CLASSES] = {0};
  memset(P->grad_acc, 0, (size_t)dim * C_PAD * sizeof(double));
  float *gblock = P->scratch;
  memset(gblock, 0, (size_t)dim * C_PAD * sizeof(float));
  for (int i0 = 0; i0 < n; i0 += 4) {
    const float *x[4];
    for (int r = 0; r < 4; r++) x[r] = P->x + (size_t)(i0 + r) * dim;
    v4f z[4][4];
    for (int r = 0; r < 4; r++)
      for (int q = 0; q < 4; q++) z[r][q] = (v4f){0, 0, 0, 0};
    for (int k = 0; k < dim; k++) {
      const float *w = P->wf + (size_t)k * C_PAD;
      v4f w0 = v4_load(w), w1 = v4_load(w + 4), w2 = v4_load(w + 8), w3 = v4_load(w + 12);
      for (int r = 0; r < 4; r++) {
        v4f xv = {x[r][k], x[r][k], x[r][k], x[r][k]};
        z[r][0] += xv * w0;
        z[r][1] += xv * w1;
        z[r][2] += xv * w2;
        z[r][3] += xv * w3;
      }
    }
    float res[4][C_PAD];
    for (int r = 0; r < 4; r++) {
      float zr[C_PAD];
      for (int q = 0; q < 4; q++) v4_store(zr + 4 * q, z[r][q]);
      for (int c = 0; c < C_PAD; c++) res[r][c] = 0;
      int i = i0 + r;
      if (i >= n) continue; /* padding row */
      double m = -INFINITY, zs[MNIST_CLASSES];
      for (int c = 0; c < C; c++) {
        zs[c] = (double)zr[c] + b[c];
        if (zs[c] > m) m = zs[c];
      }
      double se = 0;
      for (int c = 0; c < C; c++) se += exp(zs[c] - m);
      double lse = m + log(se);
      loss += lse - zs[P->y[i]];
      for (int c = 0; c < C; c++) {
        double p = exp(zs[c] - lse) - (c == P->y[i]);
        res[r][c] = (float)p;
        gb[c] += p;
      }
    }
    v4f rv[4][4];
    for (int r = 0; r < 4; r++)
      for (int q = 0; q < 4; q++) rv[r][q] = v4_load(res[r] + 4 * q);
    for (int k = 0; k < dim; k++) {
      float *g = gblock + (size_t)k * C_PAD;
      v4f g0 = v4_load(g), g1 = v4_load(g + 4), g2 = v4_load(g + 8), g3 = v4_load(g + 12);
      for (int r = 0; r < 4; r++) {
        v4f xv = {x[r][k], x[r][k], x[r][k], x[r][k]};
        g0 += xv * rv[r][0];
        g1 += xv * rv[r][1];
        g2 += xv * rv[r][2];
        g3 += xv * rv[r][3];
      }
      v4_store(g, g0);
      v4_store(g + 4, g1);
      v4_store(g + 8, g2);
      v4_store(g + 12, g3);
    }
    if ((i0 / 4) % 64 == 63 || i0 + 4 >= n) { /* flush the float block into double */
      for (size_t q = 0; q < (size_t)dim * C_PAD; q++) P->grad_acc[q] += gblock[q];
      memset(gblock, 0, (size_t)dim * C_PAD * sizeof(float));
    }
  }
  double reg = 0;
  for (int k = 0; k < dim; k++)
    for (int c = 0; c < C; c++) {
      double w = theta[(size_t)k * C + c];
      reg += w * w;
      grad[(size_t)k * C + c] = P->grad_acc[(size_t)k * C_PAD + c] / n + P->l2 * w;
    }
  for (int c = 0; c < C; c++) grad[(size_t)dim * C + c] = gb[c] / n;
  return loss / n + 0.5 * P->l2 * reg;
}

static double dotd(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Minimizes the probe objective from |theta| by L-BFGS (memory 10) with a
 * backtracking (Armijo) line search. */
static int probe_fit(probe_t *P, double *theta, int max_iter) {
  const size_t np = (size_t)P->dim * MNIST_CLASSES + MNIST_CLASSES;
  enum { M = 10 };
  double *mem = calloc(np * (2 * M + 4), sizeof(double));
  if (!mem) return -1;
  double *S = mem, *Y = S + np * M, *g = Y + np * M, *d = g + np, *xn = d + np, *gn = xn + np;
  double rho[M], alpha[M];
  double f = probe_eval(P, theta, g); /* from the caller's theta (warm start) */
  int stored = 0, head = 0;
  for (int it = 0; it < max_iter; it++) {
    double gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(g[i]));
    if (gmax < 1e-6) break;
    /* Two-loop recursion: d = -H g. */
    for (size_t i = 0; i < np; i++) d[i] = -g[i];
    for (int j = 0; j < stored; j++) {
      int s = (head - 1 - j + M) % M;
      alpha[s] = rho[s] * dotd(S + s * np, d, np);
      for (size_t i = 0; i < np; i++) d[i] -= alpha[s] * Y[s * np + i];
    }
    double gamma = 1.0;
    if (stored) {
      int s = (head - 1 + M) % M;
      gamma = dotd(S + s * np, Y + s * np, np) / dotd(Y + s * np, Y + s * np, np);
    } else {
      gamma = 1.0 / fmax(1.0, sqrt(dotd(g, g, np)));
    }
    for (size_t i = 0; i < np; i++) d[i] *= gamma;
    for (int j = stored - 1; j >= 0; j--) {
      int s = (head - 1 - j + M) % M;
      double beta = rho[s] * dotd(Y + s * np, d, np);
      for (size_t i = 0; i < np; i++) d[i] += (alpha[s] - beta) * S[s * np + i];
    }
    double slope = dotd(g, d, np);
    if (slope >= 0) { /* not a descent direction: restart from steepest descent */
      for (size_t i = 0; i < np; i++) d[i] = -g[i];
      slope = dotd(g, d, np);
      stored = 0;
    }
    double step = 1.0, fn = f;
    int ok = 0;
    for (int ls = 0; ls < 30; ls++) {
      for (size_t i = 0; i < np; i++) xn[i] = theta[i] + step * d[i];
      fn = probe_eval(P, xn, gn);
      if (fn <= f + 1e-4 * step * slope) {
        ok = 1;
        break;
      }
      step *= 0.5;
    }
    if (!ok) break;
    double *s_new = S + (size_t)head * np, *y_new = Y + (size_t)head * np;
    for (size_t i = 0; i < np; i++) {
      s_new[i] = xn[i] - theta[i];
      y_new[i] = gn[i] - g[i];
    }
    double sy = dotd(s_new, y_new, np);
    if (sy > 1e-12) {
      rho[head] = 1.0 / sy;
      head = (head + 1) % M;
      if (stored < M) stored++;
    }
    memcpy(theta, xn, np * sizeof(double));
    memcpy(g, gn, np * sizeof(double));
    double rel = (f - fn) / fmax(fabs(f), 1e-12);
    f = fn;
    if (rel < 1e-7) break;
  }
  free(mem);
  return 0;
}

/* Accuracy of the probe |theta| on rows x; |out_xent| (may be NULL) gets the
 * mean cross-entropy. */
static double probe_score(const float *x, const int *y, int n, int dim, const double *theta,
                          double *out_xent) {
  int correct = 0;
  double xent = 0;
  const double *b = theta + (size_t)dim * MNIST_CLASSES;
  for (int i = 0; i < n; i++) {
    double z[MNIST_CLASSES];
    for (int c = 0; c < MNIST_CLASSES; c++) z[c] = b[c];
    for (int k = 0; k < dim; k++) {
      double xv = x[(size_t)i * dim + k];
      for (int c = 0; c < MNIST_CLASSES; c++) z[c] += xv * theta[(size_t)k * MNIST_CLASSES + c];
    }
    int arg = 0;
    for (int c = 1; c < MNIST_CLASSES; c++)
      if (z[c] > z[arg]) arg = c;
    correct += arg == y[i];
    double se = 0;
    for (int c = 0; c < MNIST_CLASSES; c++) se += exp(z[c] - z[arg]);
    xent += z[arg] + log(se) - z[y[i]];
  }
  if (out_xent) *out_xent = xent / n;
  return (double)correct / n;
}

/* Standardizes rows with the given per-feature mean and inverse deviation. */
static void standardize(const float *in, int n, int dim, const double *mean, const double *inv_sd,
                        float *out) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dim; k++)
      out[(size_t)i * dim + k] = (float)((in[(size_t)i * dim + k] - mean[k]) * inv_sd[k]);
}

static void moments(const float *x, int n, int dim, double *mean, double *inv_sd) {
  for (int k = 0; k < dim; k++) mean[k] = inv_sd[k] = 0;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dim; k++) mean[k] += x[(size_t)i * dim + k];
  for (int k = 0; k < dim; k++) mean[k] /= n;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dim; k++) {
      double v = x[(size_t)i * dim + k] - mean[k];
      inv_sd[k] += v * v;
    }
  for (int k = 0; k < dim; k++) {
    double sd = sqrt(inv_sd[k] / n);
    inv_sd[k] = sd > 1e-6 ? 1.0 / sd : 0.0; /* constant features -> 0 */
  }
}

/* The L2 penalties tried, strongest first (a regularization path: each fit
 * starts from the previous solution). */
static const double kL2Grid[] = {1e-2, 3e-3, 1e-3, 3e-4, 1e-4};
#define N_L2 ((int)(sizeof kL2Grid / sizeof kL2Grid[0]))
#define PROBE_MAX_ITER 300

double eval_linear_probe(const float *train, const int *train_labels, int n_train,
                         const float *test, const int *test_labels, int n_test, int dim,
                         double l2, double *out_l2, double *out_train_acc) {
  double acc = -1;
  size_t np = (size_t)dim * MNIST_CLASSES + MNIST_CLASSES;
  /* Rows padded with zeros to a multiple of 4 (probe_eval reads 4 at a time). */
  float *xs = calloc(((size_t)n_train + 4) * dim, sizeof(float));
  float *xt = malloc((size_t)n_test * dim * sizeof(float));
  double *mean = malloc((size_t)dim * sizeof(double)), *isd = malloc((size_t)dim * sizeof(double));
  double *theta = calloc(np, sizeof(double)), *best = calloc(np, sizeof(double));
  probe_t P = {0};
  P.wf = malloc((size_t)dim * C_PAD * sizeof(float));
  P.scratch = malloc((size_t)dim * C_PAD * sizeof(float));
  P.grad_acc = malloc((size_t)dim * C_PAD * sizeof(double));
  if (!xs || !xt || !mean || !isd || !theta || !best || !P.wf || !P.scratch || !P.grad_acc)
    goto out;
  P.dim = dim;
  if (l2 <= 0) {
    /* Choose the penalty on a validation split: the last fifth of the train
     * rows (the caller's order is random), standardized with the statistics
     * of the other four fifths; the criterion is the validation
     * cross-entropy, which is smoother than the accuracy of 1,600 rows. */
    int n_fit = n_train - n_train / 5, n_val = n_train - n_fit;
    moments(train, n_fit, dim, mean, isd);
    standardize(train, n_train, dim, mean, isd, xs);
    P.x = xs;
    P.y = train_labels;
    P.n = n_fit;
    double best_xent = INFINITY;
    l2 = kL2Grid[0];
    for (int j = 0; j < N_L2; j++) {
      P.l2 = kL2Grid[j];
      if (probe_fit(&P, theta, PROBE_MAX_ITER) != 0) goto out;
      double xent;
      probe_score(xs + (size_t)n_fit * dim, train_labels + n_fit, n_val, dim, theta, &xent);
      if (xent < best_xent) {
        best_xent = xent;
        l2 = kL2Grid[j];
        memcpy(best, theta, np * sizeof(double));
      }
    }
    memcpy(theta, best, np * sizeof(double));
  }
  moments(train, n_train, dim, mean, isd);
  standardize(train, n_train, dim, mean, isd, xs);
  standardize(test, n_test, dim, mean, isd, xt);
  P.x = xs;
  P.y = train_labels;
  P.n = n_train;
  P.l2 = l2;
  if (probe_fit(&P, theta, PROBE_MAX_ITER) != 0) goto out;
  if (out_train_acc) *out_train_acc = probe_score(xs, train_labels, n_train, dim, theta, NULL);
  acc = probe_score(xt, test_labels, n_test, dim, theta, NULL);
  if (out_l2) *out_l2 = l2;
out:
  free(xs);
  free(xt);
  free(mean);
  free(isd);
  free(theta);
  free(best);
  free(P.wf);
  free(P.scratch);
  free(P.grad_acc);
  return acc;
}

/* ---- PCA ------------------------------------------------------------------ */

/* The leading eigenvector of the symmetric dim x dim matrix |a| by power
 * iteration (deterministic start). Returns the eigenvalue. */
static double top_eigen(const double *a, int dim, double *v) {
  double *w = malloc((size_t)dim * sizeof(double));
  if (!w) return 0;
  for (int i = 0; i < dim; i++) v[i] = 1.0 + 0.01 * i;
  double lambda = 0;
  for (int it = 0; it < 1000; it++) {
    double norm = sqrt(dotd(v, v, (size_t)dim));
    for (int i = 0; i < dim; i++) v[i] /= norm;
    for (int i = 0; i < dim; i++) w[i] = dotd(a + (size_t)i * dim, v, (size_t)dim);
    double l = dotd(v, w, (size_t)dim);
    memcpy(v, w, (size_t)dim * sizeof(double));
    if (it > 10 && fabs(l - lambda) <= 1e-12 * fabs(l)) {
      lambda = l;
      break;
    }
    lambda = l;
  }
  double norm = sqrt(dotd(v, v, (size_t)dim));
  for (int i = 0; i < dim; i++) v[i] /= norm > 0 ? norm : 1;
  /* A fixed sign: the largest component positive. */
  int arg = 0;
  for (int i = 1; i < dim; i++)
    if (fabs(v[i]) > fabs(v[arg])) arg = i;
  if (v[arg] < 0)
    for (int i = 0; i < dim; i++) v[i] = -v[i];
  free(w);
  return lambda;
}

void eval_pca2(const float *rows, int n, int dim, float *out_xy, double *out_var) {
  float *x = normalized_rows(rows, n, dim);
  double *mean = calloc((size_t)dim, sizeof(double));
  double *cov = calloc((size_t)dim * dim, sizeof(double));
  double *v1 = malloc((size_t)dim * sizeof(double)), *v2 = malloc((size_t)dim * sizeof(double));
  if (!x || !mean || !cov || !v1 || !v2) goto out;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dim; k++) mean[k] += x[(size_t)i * dim + k];
  for (int k = 0; k < dim; k++) mean[k] /= n;
  for (int i = 0; i < n; i++) {
    const float *r = x + (size_t)i * dim;
    for (int p = 0; p < dim; p++) {
      double dp = r[p] - mean[p];
      for (int q = 0; q < dim; q++) cov[(size_t)p * dim + q] += dp * (r[q] - mean[q]);
    }
  }
  double total = 0;
  for (int p = 0; p < dim; p++) total += cov[(size_t)p * dim + p];
  double l1 = top_eigen(cov, dim, v1);
  for (int p = 0; p < dim; p++) /* deflate */
    for (int q = 0; q < dim; q++) cov[(size_t)p * dim + q] -= l1 * v1[p] * v1[q];
  double l2 = top_eigen(cov, dim, v2);
  out_var[0] = total > 0 ? l1 / total : 0;
  out_var[1] = total > 0 ? l2 / total : 0;
  for (int i = 0; i < n; i++) {
    double a = 0, b = 0;
    for (int k = 0; k < dim; k++) {
      double d = x[(size_t)i * dim + k] - mean[k];
      a += d * v1[k];
      b += d * v2[k];
    }
    out_xy[2 * i] = (float)a;
    out_xy[2 * i + 1] = (float)b;
  }
out:
  free(x);
  free(mean);
  free(cov);
  free(v1);
  free(v2);
}
