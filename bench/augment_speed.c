/* The speed of the augmentation pipeline (include/onnxc/augment.h).
 *
 *   augment_speed [REPEATS]
 *
 * Times two views of a batch of 512 MNIST-sized images (1 x 28 x 28, float and
 * uint8) with the digits recipe, and, for reference, 256 CIFAR-sized
 * (3 x 32 x 32) and 32 ImageNet-sized (3 x 256 x 256 -> 224) images with
 * SimCLR's recipe. Prints, per line, the median and best wall time of the
 * two calls and their median thread CPU time (what a loaded machine does not
 * inflate), in milliseconds, and the CPU time per output pixel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxc/augment.h"

static double clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A digit-like image: a few thick bright strokes on a black background. */
static void fake_digits(float *f, uint8_t *u, int64_t n, int64_t h, int64_t w, oc_rng_t *rng) {
  for (int64_t i = 0; i < n; ++i) {
    float *img = f + i * h * w;
    memset(img, 0, (size_t)(h * w) * sizeof(float));
    for (int s = 0; s < 3; ++s) {
      double x0 = 6 + 16 * oc_rng_uniform(rng), y0 = 6 + 16 * oc_rng_uniform(rng);
      double x1 = 6 + 16 * oc_rng_uniform(rng), y1 = 6 + 16 * oc_rng_uniform(rng);
      for (int t = 0; t <= 40; ++t) {
        double x = x0 + (x1 - x0) * t / 40.0, y = y0 + (y1 - y0) * t / 40.0;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            int64_t yy = (int64_t)y + dy, xx = (int64_t)x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w) img[yy * w + xx] = 1.0f;
          }
      }
    }
  }
  for (int64_t i = 0; i < n * h * w; ++i) u[i] = (uint8_t)(f[i] * 255.0f + 0.5f);
}

typedef struct {
  const char *name;
  int u8;
  const oc_augment_options_t *o;
  int64_t n, c, h, w, oh, ow;
} bench_t;

static int run(const bench_t *b, int repeats) {
  size_t in_count = (size_t)(b->n * b->c * b->h * b->w);
  size_t out_count = (size_t)(b->n * b->c * b->oh * b->ow);
  float *in = malloc(in_count * sizeof(float));
  uint8_t *in8 = malloc(in_count);
  float *v1 = malloc(out_count * sizeof(float)), *v2 = malloc(out_count * sizeof(float));
  double *t = malloc((size_t)repeats * sizeof(double));
  double *cpu = malloc((size_t)repeats * sizeof(double));
  if (!in || !in8 || !v1 || !v2 || !t || !cpu) {
    fprintf(stderr, "augment_speed: out of memory\n");
    return 1;
  }
  oc_rng_t rng;
  oc_rng_seed(&rng, 1);
  if (b->c == 1 && b->h == 28) {
    fake_digits(in, in8, b->n, b->h, b->w, &rng);
  } else {
    for (size_t i = 0; i < in_count; ++i) {
      in[i] = (float)oc_rng_uniform(&rng);
      in8[i] = (uint8_t)(in[i] * 255.0f);
    }
  }
  oc_rng_seed(&rng, 42);
  for (int r = -2; r < repeats; ++r) { /* two warm-up rounds */
    double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    oc_status_t s = OC_OK;
    for (int view = 0; view < 2 && !s; ++view) {
      float *out = view ? v2 : v1;
      s = b->u8 ? oc_augment_batch_u8(b->o, &rng, in8, b->n, b->c, b->h, b->w, out, b->oh, b->ow)
                : oc_augment_batch(b->o, &rng, in, b->n, b->c, b->h, b->w, out, b->oh, b->ow);
    }
    if (s) {
      fprintf(stderr, "augment_speed: %s\n", oc_status_message(s));
      oc_status_free(s);
      return 1;
    }
    if (r >= 0) {
      t[r] = clock_ms(CLOCK_MONOTONIC) - t0;
      cpu[r] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
  }
  qsort(t, (size_t)repeats, sizeof(double), cmp_double);
  qsort(cpu, (size_t)repeats, sizeof(double), cmp_double);
  printf("%-56s wall median %7.2f ms best %7.2f ms | cpu median %7.2f ms (%.1f ns/px)\n",
         b->name, t[repeats / 2], t[0], cpu[repeats / 2],
         cpu[repeats / 2] * 1e6 / (2.0 * (double)(b->n * b->oh * b->ow)));
  free(in);
  free(in8);
  free(v1);
  free(v2);
  free(t);
  free(cpu);
  return 0;
}

int main(int argc, char **argv) {
  int repeats = argc > 1 ? atoi(argv[1]) : 21;
  if (repeats < 1) repeats = 1;
  oc_augment_options_t digits, simclr, simclr_no_blur;
  oc_augment_options_init_digits(&digits);
  oc_augment_options_init(&simclr);
  simclr_no_blur = simclr;
  simclr_no_blur.blur_p = 0.0;
  const bench_t benches[] = {
      {"512 x 1x28x28 float, digits recipe, two views", 0, &digits, 512, 1, 28, 28, 28, 28},
      {"512 x 1x28x28 uint8, digits recipe, two views", 1, &digits, 512, 1, 28, 28, 28, 28},
      {"256 x 3x32x32 uint8, SimCLR recipe (no blur), two views", 1, &simclr_no_blur, 256, 3, 32,
       32, 32, 32},
      {"32 x 3x256x256 uint8 -> 224, SimCLR recipe, two views", 1, &simclr, 32, 3, 256, 256, 224,
       224},
  };
  for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); ++i)
    if (run(&benches[i], repeats)) return 1;
  return 0;
}
