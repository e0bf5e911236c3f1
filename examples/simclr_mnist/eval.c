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
static double probe_eval(probe_t *P, const double *theta, double *grad) {
  const int n = P->n, dim = P->dim, C = MNIST_CLASSES;
  const double *b = theta + (size_t)dim * C;
  memset(P->wf, 0, (size_t)dim * C_PAD * sizeof(float));
  for (int k = 0; k < dim; k++)
    for (int c = 0; c < C; c++) P->wf[(size_t)k * C_PAD + c] = (float)theta[(size_t)k * C + c];
  double loss = 0;
  double gb[MNIST_CLASSES] = {0};
  memset(P->grad_acc, 0, (size_t)dim * C_PAD * sizeof(double));
  /* Blocks of rows: float accumulation within a block, double across. */
  enum { BLOCK = 256 };
  float *gblock = P->scratch;
  for (int i0 = 0; i0 < n; i0 += BLOCK) {
    int i1 = i0 + BLOCK < n ? i0 + BLOCK : n;
    memset(gblock, 0, (size_t)dim * C_PAD * sizeof(float));
    for (int i = i0; i < i1; i++) {
      const float *xi = P->x + (size_t)i * dim;
      float z[C_PAD];
      for (int c = 0; c < C_PAD; c++) z[c] = 0;
      for (int k = 0; k < dim; k++) {
        const float xv = xi[k];
        const float *w = P->wf + (size_t)k * C_PAD;
        for (int c = 0; c < C_PAD; c++) z[c] += xv * w[c];
      }
      double m = -INFINITY, zs[MNIST_CLASSES];
      for (int c = 0; c < C; c++) {
        zs[c] = (double)z[c] + b[c];
        if (zs[c] > m) m = zs[c];
      }
      double se = 0;
      for (int c = 0; c < C; c++) se += exp(zs[c] - m);
      double lse = m + log(se);
      loss += lse - zs[P->y[i]];
      float r[C_PAD];
      for (int c = 0; c < C_PAD; c++) r[c] = 0;
      for (int c = 0; c < C; c++) {
        double p = exp(zs[c] - lse) - (c == P->y[i]);
        r[c] = (float)p;
        gb[c] += p;
      }
      for (int k = 0; k < dim; k++) {
        const float xv = xi[k];
        float *g = gblock + (size_t)k * C_PAD;
        for (int c = 0; c < C_PAD; c++) g[c] += xv * r[c];
      }
    }
    for (size_t q = 0; q < (size_t)dim * C_PAD; q++) P->grad_acc[q] += gblock[q];
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

/* Minimizes the probe objective from theta = 0 by L-BFGS (memory 10) with a
 * backtracking (Armijo) line search. */
static int probe_fit(probe_t *P, double *theta, int max_iter) {
  const size_t np = (size_t)P->dim * MNIST_CLASSES + MNIST_CLASSES;
  enum { M = 10 };
  double *mem = calloc(np * (2 * M + 4), sizeof(double));
  if (!mem) return -1;
  double *S = mem, *Y = S + np * M, *g = Y + np * M, *d = g + np, *xn = d + np, *gn = xn + np;
  double rho[M], alpha[M];
  memset(theta, 0, np * sizeof(double));
  double f = probe_eval(P, theta, g);
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
    if (rel < 1e-10) break;
  }
  free(mem);
  return 0;
}

static double probe_accuracy(const float *x, const int *y, int n, int dim, const double *theta) {
  int correct = 0;
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
  }
  return (double)correct / n;
}

double eval_linear_probe(const float *train, const int *train_labels, int n_train,
                         const float *test, const int *test_labels, int n_test, int dim,
                         double l2, double *out_train_acc) {
  double acc = -1;
  size_t np = (size_t)dim * MNIST_CLASSES + MNIST_CLASSES;
  float *xs = malloc((size_t)n_train * dim * sizeof(float));
  float *xt = malloc((size_t)n_test * dim * sizeof(float));
  double *mean = calloc((size_t)dim, sizeof(double)), *sd = calloc((size_t)dim, sizeof(double));
  double *theta = malloc(np * sizeof(double));
  probe_t P = {0};
  P.wf = malloc((size_t)dim * C_PAD * sizeof(float));
  P.scratch = malloc((size_t)dim * C_PAD * sizeof(float));
  P.grad_acc = malloc((size_t)dim * C_PAD * sizeof(double));
  if (!xs || !xt || !mean || !sd || !theta || !P.wf || !P.scratch || !P.grad_acc) goto out;
  /* Standardize with the train rows' statistics (constant features -> 0). */
  for (int i = 0; i < n_train; i++)
    for (int k = 0; k < dim; k++) mean[k] += train[(size_t)i * dim + k];
  for (int k = 0; k < dim; k++) mean[k] /= n_train;
  for (int i = 0; i < n_train; i++)
    for (int k = 0; k < dim; k++) {
      double v = train[(size_t)i * dim + k] - mean[k];
      sd[k] += v * v;
    }
  for (int k = 0; k < dim; k++) {
    sd[k] = sqrt(sd[k] / n_train);
    sd[k] = sd[k] > 1e-6 ? 1.0 / sd[k] : 0.0;
  }
  for (int i = 0; i < n_train; i++)
    for (int k = 0; k < dim; k++)
      xs[(size_t)i * dim + k] = (float)((train[(size_t)i * dim + k] - mean[k]) * sd[k]);
  for (int i = 0; i < n_test; i++)
    for (int k = 0; k < dim; k++)
      xt[(size_t)i * dim + k] = (float)((test[(size_t)i * dim + k] - mean[k]) * sd[k]);
  P.x = xs;
  P.y = train_labels;
  P.n = n_train;
  P.dim = dim;
  P.l2 = l2;
  if (probe_fit(&P, theta, 500) != 0) goto out;
  if (out_train_acc) *out_train_acc = probe_accuracy(xs, train_labels, n_train, dim, theta);
  acc = probe_accuracy(xt, test_labels, n_test, dim, theta);
out:
  free(xs);
  free(xt);
  free(mean);
  free(sd);
  free(theta);
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
