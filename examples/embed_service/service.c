/*
 * embed_service: the shape of a production embedding service in C, on the
 * public API only (include/onnxc/onnxc.h).
 *
 *   embed_service PLAN DIR --out EMBEDDINGS.npy --csv FILES.csv [options]
 *
 * Opens one plan (mmapped and validated once) and embeds every image of DIR
 * with N worker threads that share it. Each worker owns one context (its
 * working memory) and takes the next batch of files from a shared counter:
 * it decodes them, fills the context's input buffer in place, runs the
 * `embed` entry point and copies the rows into the result. Nothing is
 * locked while a batch runs.
 *
 * Inputs, sorted by file name (bytewise):
 *   NAME.pgm   a binary PGM (P5; maxval <= 65535), values scaled to [0,1];
 *              its size must be the plan's input H x W, and the plan's
 *              input must have 1 channel
 *   NAME.npy   one image [H,W] / [C,H,W] / [1,C,H,W], or a stack [n,C,H,W]
 *              (a row per image), float32 (as is) or uint8 (scaled to
 *              [0,1]), C order
 * Outputs:
 *   EMBEDDINGS.npy  float32 [images, D], row i = image i of the CSV
 *   FILES.csv       header "row,file,index": the file of each row, and the
 *                   image's index inside a stacked .npy (0 otherwise)
 * Both are written to a temporary file and renamed: readers never see half
 * a file.
 *
 * Which rows a batch holds depends only on the sorted file list, never on
 * the number of threads, and a context with one thread computes each batch
 * the same way every time: the output of --threads 2 equals that of
 * --threads 1 bit for bit (examples/embed_service/test_threads.sh checks it).
 *
 * options:
 *   --threads N        worker threads (default 2), each with its own context
 *   --entry NAME       the entry point (default embed)
 *   --output NAME      the output of the entry to save (default: "embedding"
 *                      if it has one, else its first output)
 *   --quiet            no summary line
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxc/onnxc.h"

#define MAX_ERR 512

/* ---- the images ----------------------------------------------------------- */

typedef struct {
  char *name;    /* file name inside DIR */
  int npy;       /* 1: .npy, 0: .pgm */
  int64_t count; /* images in the file */
} file_t;

typedef struct {
  int file;      /* index into the file list */
  int64_t index; /* image inside that file */
} image_ref_t;

typedef struct {
  const char *dir;
  file_t *files;
  int n_files;
  image_ref_t *images;
  int64_t n_images;
  /* the plan's input image: channels, height, width */
  int64_t c, h, w;
} catalog_t;

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const file_t *)a)->name, ((const file_t *)b)->name);
}

static void set_err(char *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, MAX_ERR, fmt, ap);
  va_end(ap);
}

/* Reads a whole file. */
static unsigned char *slurp(const char *path, size_t *size, char *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    set_err(err, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      size_t nc = cap ? 2 * cap : 65536;
      unsigned char *nb = realloc(buf, nc);
      if (!nb) {
        free(buf);
        fclose(f);
        set_err(err, "out of memory reading %s", path);
        return NULL;
      }
      buf = nb;
      cap = nc;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    set_err(err, "cannot read %s", path);
    return NULL;
  }
  *size = n;
  return buf;
}

/* PGM (P5): "P5" whitespace W whitespace H whitespace MAXVAL one-whitespace
 * then W*H samples (1 byte, or 2 big-endian when MAXVAL > 255); '#' starts a
 * comment up to the end of the line in the header. */
static int pgm_header_int(const unsigned char *b, size_t n, size_t *p, long *out) {
  for (;;) {
    while (*p < n && (b[*p] == ' ' || b[*p] == '\t' || b[*p] == '\n' || b[*p] == '\r')) (*p)++;
    if (*p < n && b[*p] == '#') {
      while (*p < n && b[*p] != '\n') (*p)++;
      continue;
    }
    break;
  }
  long v = 0;
  int digits = 0;
  while (*p < n && b[*p] >= '0' && b[*p] <= '9' && digits < 9) {
    v = v * 10 + (b[*p] - '0');
    (*p)++;
    digits++;
  }
  if (!digits) return -1;
  *out = v;
  return 0;
}

static int pgm_decode(const unsigned char *b, size_t n, const catalog_t *cat, float *out,
                      const char *name, char *err) {
  size_t p = 2;
  long w, h, maxval;
  if (n < 2 || b[0] != 'P' || b[1] != '5' || pgm_header_int(b, n, &p, &w) ||
      pgm_header_int(b, n, &p, &h) || pgm_header_int(b, n, &p, &maxval) || p >= n ||
      maxval < 1 || maxval > 65535) {
    set_err(err, "%s: not a binary PGM (P5) file", name);
    return -1;
  }
  p++; /* the single whitespace after MAXVAL */
  if (cat->c != 1 || w != cat->w || h != cat->h) {
    set_err(err, "%s: a %ldx%ld grey image; the plan takes %lld channel(s) of %lldx%lld", name,
            w, h, (long long)cat->c, (long long)cat->w, (long long)cat->h);
    return -1;
  }
  size_t bps = maxval > 255 ? 2 : 1, need = (size_t)w * (size_t)h * bps;
  if (n - p < need) {
    set_err(err, "%s: truncated (%zu of %zu sample bytes)", name, n - p, need);
    return -1;
  }
  const unsigned char *s = b + p;
  const float scale = 1.0f / (float)maxval;
  for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
    unsigned v = bps == 1 ? s[i] : (unsigned)s[2 * i] << 8 | s[2 * i + 1];
    if (v > (unsigned)maxval) v = (unsigned)maxval;
    out[i] = (float)v * scale;
  }
  return 0;
}

/* .npy (versions 1-3): dtype '<f4' or '|u1', C order. Fills |dims|, |rank|
 * and the offset of the data; returns the element size, or -1. */
static int npy_header(const unsigned char *b, size_t n, int64_t *dims, int *rank,
                      size_t *data_off, const char *name, char *err) {
  if (n < 10 || memcmp(b, "\x93NUMPY", 6) != 0 || b[6] < 1 || b[6] > 3) {
    set_err(err, "%s: not a .npy file", name);
    return -1;
  }
  size_t hlen, pre;
  if (b[6] == 1) {
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
    pre = 10;
  } else {
    if (n < 12) goto bad;
    hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    pre = 12;
  }
  if (hlen > 65536 || n - pre < hlen) goto bad;
  char header[65537];
  memcpy(header, b + pre, hlen);
  header[hlen] = 0;
  int esize;
  if (strstr(header, "'descr': '<f4'")) esize = 4;
  else if (strstr(header, "'descr': '|u1'") || strstr(header, "'descr': '<u1'")) esize = 1;
  else {
    set_err(err, "%s: dtype must be float32 ('<f4') or uint8 ('|u1')", name);
    return -1;
  }
  if (!strstr(header, "'fortran_order': False")) {
    set_err(err, "%s: must be in C order", name);
    return -1;
  }
  const char *s = strstr(header, "'shape': (");
  if (!s) goto bad;
  s += strlen("'shape': (");
  *rank = 0;
  while (*s && *s != ')') {
    char *end;
    long long d = strtoll(s, &end, 10);
    if (end == s || d < 0 || *rank == OC_MAX_RANK) goto bad;
    dims[(*rank)++] = d;
    s = end;
    while (*s == ',' || *s == ' ') s++;
  }
  *data_off = pre + hlen;
  return esize;
bad:
  set_err(err, "%s: bad .npy header", name);
  return -1;
}

/* How many images a .npy holds, given the plan's image shape: [H,W] (C=1),
 * [C,H,W] and [1,C,H,W] are one image, [n,C,H,W] is n. */
static int64_t npy_images(const int64_t *d, int rank, const catalog_t *cat) {
  if (rank == 2 && cat->c == 1 && d[0] == cat->h && d[1] == cat->w) return 1;
  if (rank == 3 && d[0] == cat->c && d[1] == cat->h && d[2] == cat->w) return 1;
  if (rank == 3 && cat->c == 1 && d[1] == cat->h && d[2] == cat->w) return d[0];
  if (rank == 4 && d[1] == cat->c && d[2] == cat->h && d[3] == cat->w) return d[0];
  return -1;
}

/* Lists DIR: every .pgm and .npy, sorted; counts the images of each .npy. */
static int catalog_build(catalog_t *cat, char *err) {
  DIR *d = opendir(cat->dir);
  if (!d) {
    set_err(err, "cannot open the folder %s: %s", cat->dir, strerror(errno));
    return -1;
  }
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int npy = ends_with(e->d_name, ".npy");
    if (!npy && !ends_with(e->d_name, ".pgm")) continue;
    if (cat->n_files == cap) {
      cap = cap ? 2 * cap : 256;
      file_t *nf = realloc(cat->files, (size_t)cap * sizeof(file_t));
      if (!nf) {
        closedir(d);
        set_err(err, "out of memory");
        return -1;
      }
      cat->files = nf;
    }
    file_t *f = &cat->files[cat->n_files++];
    f->name = strdup(e->d_name);
    f->npy = npy;
    f->count = 1;
    if (!f->name) {
      closedir(d);
      set_err(err, "out of memory");
      return -1;
    }
  }
  closedir(d);
  if (cat->n_files == 0) {
    set_err(err, "%s holds no .pgm or .npy file", cat->dir);
    return -1;
  }
  qsort(cat->files, (size_t)cat->n_files, sizeof(file_t), by_name);
  cat->n_images = 0;
  for (int i = 0; i < cat->n_files; i++) {
    file_t *f = &cat->files[i];
    if (f->npy) { /* read the header now: the rows must be known up front */
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", cat->dir, f->name);
      FILE *fp = fopen(path, "rb");
      unsigned char head[1024];
      size_t got = fp ? fread(head, 1, sizeof head, fp) : 0;
      if (fp) fclose(fp);
      int64_t dims[OC_MAX_RANK];
      int rank;
      size_t off;
      if (!fp) {
        set_err(err, "cannot open %s", path);
        return -1;
      }
      if (npy_header(head, got, dims, &rank, &off, f->name, err) < 0) return -1;
      f->count = npy_images(dims, rank, cat);
      if (f->count < 0) {
        set_err(err, "%s: shape does not hold images of %lldx%lldx%lld", f->name,
                (long long)cat->c, (long long)cat->h, (long long)cat->w);
        return -1;
      }
    }
    cat->n_images += f->count;
  }
  cat->images = malloc((size_t)(cat->n_images ? cat->n_images : 1) * sizeof(image_ref_t));
  if (!cat->images) {
    set_err(err, "out of memory");
    return -1;
  }
  int64_t k = 0;
  for (int i = 0; i < cat->n_files; i++)
    for (int64_t j = 0; j < cat->files[i].count; j++) cat->images[k++] = (image_ref_t){i, j};
  return 0;
}

/* Decodes image |ref| into |out| (c*h*w floats). A worker keeps the last
 * .npy it read, since a stack's images come in order. */
typedef struct {
  int file;
  unsigned char *bytes;
  size_t size;
} file_cache_t;

static int load_image(const catalog_t *cat, image_ref_t ref, file_cache_t *cache, float *out,
                      char *err) {
  const file_t *f = &cat->files[ref.file];
  if (cache->file != ref.file) {
    free(cache->bytes);
    cache->bytes = NULL;
    cache->file = -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cat->dir, f->name);
    if (!(cache->bytes = slurp(path, &cache->size, err))) return -1;
    cache->file = ref.file;
  }
  const size_t pixels = (size_t)(cat->c * cat->h * cat->w);
  if (!f->npy) return pgm_decode(cache->bytes, cache->size, cat, out, f->name, err);
  int64_t dims[OC_MAX_RANK];
  int rank;
  size_t off;
  int esize = npy_header(cache->bytes, cache->size, dims, &rank, &off, f->name, err);
  if (esize < 0) return -1;
  if (npy_images(dims, rank, cat) != f->count) {
    set_err(err, "%s changed while being read", f->name);
    return -1;
  }
  size_t start = off + (size_t)ref.index * pixels * (size_t)esize;
  if (cache->size < off || (cache->size - off) / (size_t)esize / pixels < (size_t)f->count) {
    set_err(err, "%s: truncated data", f->name);
    return -1;
  }
  const unsigned char *s = cache->bytes + start;
  if (esize == 4) {
    memcpy(out, s, pixels * sizeof(float));
  } else {
    for (size_t i = 0; i < pixels; i++) out[i] = (float)s[i] * (1.0f / 255.0f);
  }
  return 0;
}

/* ---- the workers ----------------------------------------------------------- */

typedef struct {
  const oc_plan_t *plan;
  const catalog_t *cat;
  int entry, out_index;
  int64_t batch, dim;
  int64_t n_batches;
  float *result; /* n_images x dim */
  pthread_mutex_t mu;
  int64_t next_batch;
  int failed;
  char err[MAX_ERR];
} job_t;

static int64_t take_batch(job_t *j) {
  pthread_mutex_lock(&j->mu);
  int64_t b = !j->failed && j->next_batch < j->n_batches ? j->next_batch++ : -1;
  pthread_mutex_unlock(&j->mu);
  return b;
}

static void fail(job_t *j, const char *msg) {
  pthread_mutex_lock(&j->mu);
  if (!j->failed) {
    j->failed = 1;
    snprintf(j->err, sizeof j->err, "%s", msg);
  }
  pthread_mutex_unlock(&j->mu);
}

static void fail_status(job_t *j, oc_status_t s) {
  fail(j, oc_status_message(s));
  oc_status_free(s);
}

static void *worker_main(void *arg) {
  job_t *j = arg;
  const catalog_t *cat = j->cat;
  oc_context_t *ctx = NULL;
  file_cache_t cache = {-1, NULL, 0};
  char err[MAX_ERR];
  /* One context per worker, running on the worker's own thread only: the
   * workers are the parallelism. */
  oc_context_options_t copt;
  oc_context_options_init(&copt);
  copt.threads = 1;
  oc_status_t s = oc_context_create(j->plan, &copt, &ctx);
  if (s) {
    fail_status(j, s);
    return NULL;
  }
  void *in;
  size_t in_bytes;
  if ((s = oc_context_input_buffer(ctx, j->entry, 0, &in, &in_bytes))) {
    fail_status(j, s);
    goto out;
  }
  const size_t pixels = (size_t)(cat->c * cat->h * cat->w);
  for (int64_t b; (b = take_batch(j)) >= 0;) {
    int64_t first = b * j->batch;
    int64_t m = cat->n_images - first < j->batch ? cat->n_images - first : j->batch;
    for (int64_t i = 0; i < m; i++)
      if (load_image(cat, cat->images[first + i], &cache, (float *)in + (size_t)i * pixels, err)) {
        fail(j, err);
        goto out;
      }
    /* Pad a short last batch with zeros: rows do not see each other. */
    memset((float *)in + (size_t)m * pixels, 0, (size_t)(j->batch - m) * pixels * sizeof(float));
    if ((s = oc_context_run(ctx, j->entry))) {
      fail_status(j, s);
      goto out;
    }
    const void *y;
    size_t y_bytes;
    if ((s = oc_context_output(ctx, j->entry, j->out_index, &y, &y_bytes))) {
      fail_status(j, s);
      goto out;
    }
    memcpy(j->result + (size_t)first * (size_t)j->dim, y,
           (size_t)m * (size_t)j->dim * sizeof(float));
  }
out:
  free(cache.bytes);
  oc_context_release(ctx);
  return NULL;
}

/* ---- outputs ---------------------------------------------------------------- */

static int write_npy(const char *path, const float *data, int64_t rows, int64_t cols) {
  char header[256];
  int n = snprintf(header, sizeof header,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                   (long long)rows, (long long)cols);
  int pad = (64 - (10 + n + 1) % 64) % 64;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  unsigned hl = (unsigned)(n + pad + 1);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xFF),
                           (unsigned char)(hl >> 8)};
  int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
  for (int i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
  size_t count = (size_t)rows * (size_t)cols;
  ok = ok && fputc('\n', f) != EOF && fwrite(data, sizeof(float), count, f) == count;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static int write_csv(const char *path, const catalog_t *cat) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "row,file,index\n");
  for (int64_t i = 0; i < cat->n_images; i++) {
    fprintf(f, "%lld,", (long long)i);
    csv_field(f, cat->files[cat->images[i].file].name);
    fprintf(f, ",%lld\n", (long long)cat->images[i].index);
  }
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: embed_service PLAN DIR --out EMBEDDINGS.npy --csv FILES.csv [--threads N]\n"
          "                     [--entry NAME] [--output NAME] [--quiet]\n"
          "Embeds every .pgm (P5) and .npy (float32 or uint8) image of DIR, sorted by name,\n"
          "with N worker threads (default 2) sharing one plan; writes the embeddings as a\n"
          "float32 .npy [images, D] and the file of each row as CSV (row,file,index).\n");
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die_status(oc_status_t s) {
  fprintf(stderr, "embed_service: %s\n", oc_status_message(s));
  oc_status_free(s);
  return 1;
}

int main(int argc, char **argv) {
  const char *plan_path = NULL, *dir = NULL, *out_path = NULL, *csv_path = NULL;
  const char *entry_name = "embed", *output_name = NULL;
  int threads = 2, quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--out") && v) out_path = argv[++i];
    else if (!strcmp(a, "--csv") && v) csv_path = argv[++i];
    else if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
    else if (!strcmp(a, "--entry") && v) entry_name = argv[++i];
    else if (!strcmp(a, "--output") && v) output_name = argv[++i];
    else if (!strcmp(a, "--quiet")) quiet = 1;
    else if (a[0] == '-') usage();
    else if (!plan_path) plan_path = a;
    else if (!dir) dir = a;
    else usage();
  }
  if (!plan_path || !dir || !out_path || !csv_path || threads < 1 || threads > 256) usage();

  /* 1. One plan for the whole process, shared by every worker. */
  oc_plan_t *plan;
  oc_status_t s = oc_plan_open_file(plan_path, NULL, &plan);
  if (s) return die_status(s);
  int rc = 1;
  catalog_t cat = {.dir = dir};
  job_t job = {.plan = plan, .cat = &cat};
  pthread_t *tids = NULL;
  char err[MAX_ERR];
  if ((s = oc_plan_find_entry(plan, entry_name, &job.entry))) {
    rc = die_status(s);
    goto out;
  }
  oc_tensor_info_t in, outinfo;
  if ((s = oc_plan_input_info(plan, job.entry, 0, &in))) {
    rc = die_status(s);
    goto out;
  }
  if (oc_plan_input_count(plan, job.entry) != 1 || in.dtype != OC_DTYPE_FLOAT32 ||
      in.rank != 4) {
    fprintf(stderr, "embed_service: entry '%s' must take one float32 [N,C,H,W] input\n",
            entry_name);
    goto out;
  }
  job.out_index = output_name ? oc_plan_output_index(plan, job.entry, output_name)
                              : oc_plan_output_index(plan, job.entry, "embedding");
  if (job.out_index < 0 && !output_name) job.out_index = 0;
  if (job.out_index < 0) {
    fprintf(stderr, "embed_service: entry '%s' has no output '%s'\n", entry_name, output_name);
    goto out;
  }
  if ((s = oc_plan_output_info(plan, job.entry, job.out_index, &outinfo))) {
    rc = die_status(s);
    goto out;
  }
  if (outinfo.dtype != OC_DTYPE_FLOAT32 || outinfo.rank < 1 || outinfo.dims[0] != in.dims[0]) {
    fprintf(stderr, "embed_service: output '%s' is not a float32 row per input image\n",
            outinfo.name);
    goto out;
  }
  job.batch = in.dims[0];
  job.dim = (int64_t)(outinfo.elements / (size_t)job.batch);
  cat.c = in.dims[1];
  cat.h = in.dims[2];
  cat.w = in.dims[3];

  /* 2. The work: the sorted file list, cut into batches of the plan's size. */
  if (catalog_build(&cat, err) != 0) {
    fprintf(stderr, "embed_service: %s\n", err);
    goto out;
  }
  job.n_batches = (cat.n_images + job.batch - 1) / job.batch;
  job.result = malloc((size_t)(cat.n_images ? cat.n_images : 1) * (size_t)job.dim * sizeof(float));
  tids = malloc((size_t)threads * sizeof(pthread_t));
  if (!job.result || !tids) {
    fprintf(stderr, "embed_service: out of memory\n");
    goto out;
  }
  pthread_mutex_init(&job.mu, NULL);

  /* 3. N workers, each with its own context, sharing the plan. */
  double t0 = now_s();
  int started = 0;
  for (; started < threads; started++)
    if (pthread_create(&tids[started], NULL, worker_main, &job) != 0) {
      fail(&job, "cannot start a worker thread");
      break;
    }
  for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
  double dt = now_s() - t0;
  if (job.failed) {
    fprintf(stderr, "embed_service: %s\n", job.err);
    goto out;
  }

  /* 4. Results. */
  if (write_npy(out_path, job.result, cat.n_images, job.dim) != 0) {
    fprintf(stderr, "embed_service: cannot write %s\n", out_path);
    goto out;
  }
  if (write_csv(csv_path, &cat) != 0) {
    fprintf(stderr, "embed_service: cannot write %s\n", csv_path);
    goto out;
  }
  if (!quiet)
    printf("embedded %lld images from %d files with %d threads in %.2f s (%.0f images/s): "
           "%s [%lld, %lld], %s\n",
           (long long)cat.n_images, cat.n_files, threads, dt, dt > 0 ? cat.n_images / dt : 0.0,
           out_path, (long long)cat.n_images, (long long)job.dim, csv_path);
  rc = 0;
out:
  for (int i = 0; i < cat.n_files; i++) free(cat.files[i].name);
  free(cat.files);
  free(cat.images);
  free(job.result);
  free(tids);
  oc_plan_release(plan);
  return rc;
}
