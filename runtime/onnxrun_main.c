/* onnxrun: runs an entry point of a plan on tensors from a folder. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_size.h"
#include "embed_dir.h"
#include "mpi_comm.h"
#include "oc_ops.h"
#include "onnx_export.h"
#include "tensor_file.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: onnxrun PLAN.bin --inputs DIR --outputs DIR [options]\n"
          "       onnxrun PLAN.bin --inputs DIR --steps N [training options]\n"
          "       onnxrun PLAN.bin --embed-dir DIR --embeddings OUT.npy [--manifest OUT.tsv]\n"
          "\n"
          "Runs an entry point of an onnxc plan. Inputs are read from DIR/input_K.pb (ONNX\n"
          "TensorProto) or DIR/input_K.npy, matched to the entry point's inputs by the\n"
          "tensor's name when it has one (named files the entry does not take are\n"
          "skipped), else by position K. Outputs are written as DIR/output_K.pb\n"
          "(TensorProto, .name set), or .npy with --npy.\n"
          "\n"
          "options:\n"
          "  --inputs DIR             folder with input_K.pb / input_K.npy files\n"
          "  --outputs DIR            folder for output_K files (created if missing)\n"
          "  --npy                    write outputs as .npy instead of TensorProto\n"
          "  --entry NAME             entry point to run (default: embed, or train_step\n"
          "                           with --steps)\n"
          "  --repeat N               time the entry point: one warm-up run, then N timed\n"
          "                           runs; prints median_ms, min_ms and max_ms (one line\n"
          "                           each). --outputs gets the last run's outputs\n"
          "  --threads N              threads that run the plan (default: every core)\n"
          "  --max-memory BYTES       refuse a plan whose context (arena, state and\n"
          "                           bookkeeping) needs more than BYTES (K, M, G, T\n"
          "                           suffixes; default: no limit)\n"
          "  --max-cost N             refuse a plan with an entry point estimated at more\n"
          "                           than N operations (multiply-adds, element visits)\n"
          "                           per run (K, M, G, T suffixes; default: no limit)\n"
          "  --version                print the runtime version and the plan formats it reads\n"
          "  -h, --help               this text\n"
          "\n"
          "training (plans compiled with onnxc --train):\n"
          "  --steps N                run N train steps on the batch in --inputs\n"
          "  --log FILE               one line per step: that step's loss (computed before\n"
          "                           its update), as %%.9e\n"
          "  --grads DIR              write the first step's gradients, one TensorProto per\n"
          "                           trained initializer, .name = the initializer's name,\n"
          "                           file DIR/<name>.pb (characters outside [A-Za-z0-9._-]\n"
          "                           replaced by _)\n"
          "  --load-checkpoint FILE   start from a checkpoint (before the steps)\n"
          "  --save-checkpoint FILE   write a checkpoint after the steps (atomically)\n"
          "  --state-init NAME=FILE   set state tensor NAME (a queue, a parameter) from a\n"
          "                           tensor file before the steps (after --load-checkpoint);\n"
          "                           repeatable. A file in --inputs named like a state\n"
          "                           tensor (a MoCo queue) fills it on the first step only\n"
          "  --export-onnx FILE       write the original model with the trained\n"
          "                           initializers (running statistics included), after\n"
          "                           --load-checkpoint and any --steps\n"
          "\n"
          "data-parallel training (mpirun -np N onnxrun ...; docs/distributed.md):\n"
          "  Started by mpirun, onnxrun is one rank of the job%s. Plans compiled with\n"
          "  onnxc --train --ranks N hold the collectives (gradient all-reduce, --global-\n"
          "  negatives, --sync-bn). An input file whose axis 0 is N times the plan's is\n"
          "  split: rank r takes rows [r*n, (r+1)*n) (n the plan's rows); a file of the\n"
          "  plan's exact shape goes whole to every rank. Every rank starts from rank 0's\n"
          "  state (after --load-checkpoint / --state-init); the logged loss is the mean\n"
          "  over the ranks; rank 0 alone prints, writes --log, --grads, --outputs,\n"
          "  checkpoints and --export-onnx. A rank that fails ends the whole job.\n"
          "  --check-replicas K       every K steps, check that every rank holds the same\n"
          "                           state (a hash of every state tensor); a difference\n"
          "                           is an error naming the ranks and the first tensor\n"
          "  --checkpoint-every K     with --save-checkpoint FILE: also write it after\n"
          "                           every K steps (resume with --load-checkpoint FILE)\n"
          "\n"
          "embeddings of a folder of examples (docs/distributed.md, \"Embeddings at scale\";\n"
          "one process, or every rank of mpirun -np N sharing the work):\n"
          "  --embed-dir DIR          the examples: every .npy and .pb tensor file in DIR\n"
          "                           (not in subfolders; names starting with '.' skipped),\n"
          "                           in the byte order of their names. A file holds one\n"
          "                           example (the entry's input shape without its batch\n"
          "                           axis) or several (that shape with any axis 0 in\n"
          "                           front), of the input's dtype. Runs the entry point\n"
          "                           (--entry, default embed: for a training plan,\n"
          "                           BatchNorm in inference mode) on batches of the\n"
          "                           plan's batch size B, the last one padded with zeros;\n"
          "                           rank r of N runs batches [nb*r/N, nb*(r+1)/N) of the\n"
          "                           nb batches; rank 0 gathers the outputs and writes\n"
          "  --embeddings FILE        one .npy of shape [examples, output dims after axis\n"
          "                           0] in the order of the examples (padding dropped)\n"
          "  --manifest FILE          also a manifest, tab-separated with a header line:\n"
          "                           row (in --embeddings), file (name in DIR), index (of\n"
          "                           the example in its file, 0 for a one-example file)\n"
          "  --output NAME            the output to write (default: the entry's only one)\n"
          "  --gather-every K         gather to rank 0 every K batches of each rank\n"
          "                           (default: about 8 MiB of outputs per rank)\n"
          "  The files are written atomically, when complete: after an error on any\n"
          "  rank (a file of the wrong dtype or shape, named in the message) neither\n"
          "  exists. --load-checkpoint and --state-init apply (rank 0's state is sent to\n"
          "  every rank); every rank must see DIR (a shared file system). Prints one line:\n"
          "  the examples, batches, ranks and the time taken.\n"
          "\n"
          "A step whose loss or gradients are not finite stops the run with an error naming\n"
          "the step and the first node that produced NaN; that step updates nothing and\n"
          "no checkpoint is written.\n"
          "\n"
          "Exit status: 0 on success, 1 on an error (one line on stderr), 2 on bad usage.\n",
          oc_mpi_available() ? "" : " (this build has no MPI: a job of one rank)");
}

/* The job this process belongs to (one rank unless started by mpirun). */
static oc_communicator_t job;

/* Only rank 0 prints what a job prints once. */
static int leader(void) { return job.rank == 0; }

/* Reports |s| (if |print|); an error every rank does not know of ends the
 * whole job, since the others may be waiting in a collective for this one. */
static int fail_job(oc_status_t s, int print, int known) {
  const char *mpi = oc_mpi_last_error();
  if (print && job.size > 1)
    fprintf(stderr, "onnxrun: rank %d of %d: error: %s%s%s\n", job.rank, job.size,
            oc_status_message(s), mpi[0] && !known ? ": " : "", known ? "" : mpi);
  else if (print)
    fprintf(stderr, "onnxrun: error: %s\n", oc_status_message(s));
  oc_status_free(s);
  if (!known) oc_mpi_abort(&job, 1);
  return 1;
}

static int fail(oc_status_t s) { return fail_job(s, 1, 0); }

static int bad_usage(const char *msg, const char *arg) {
  fprintf(stderr, "onnxrun: %s%s%s (see onnxrun --help)\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

#define MAX_FILES 1024

typedef struct input_file_s {
  long k;
  char path[4096];
} input_file_t;

static int by_k(const void *a, const void *b) {
  const input_file_t *x = a, *y = b;
  return (x->k > y->k) - (x->k < y->k);
}

/* Lists DIR/input_K.pb|npy sorted by K. */
static oc_status_t list_inputs(const char *dir, input_file_t *files, int *out_n) {
  DIR *d = opendir(dir);
  if (!d) return oc_make_status(OC_STATUS_IO, "%s: cannot open folder: %s", dir, strerror(errno));
  int n = 0;
  struct dirent *de;
  oc_status_t s = OC_OK;
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    if (strncmp(name, "input_", 6) != 0) continue;
    char *end;
    long k = strtol(name + 6, &end, 10);
    if (end == name + 6 || k < 0 || (strcmp(end, ".pb") && strcmp(end, ".npy"))) continue;
    for (int j = 0; j < n; j++)
      if (files[j].k == k) s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                                              "%s: two files for input %ld", dir, k);
    if (s) break;
    if (n == MAX_FILES) {
      s = oc_make_status(OC_STATUS_RESOURCE_LIMIT, "%s: more than %d input files", dir, MAX_FILES);
      break;
    }
    files[n].k = k;
    snprintf(files[n].path, sizeof files[n].path, "%s/%s", dir, name);
    n++;
  }
  closedir(d);
  if (s) return s;
  qsort(files, (size_t)n, sizeof(input_file_t), by_k);
  *out_n = n;
  return OC_OK;
}

static const char *type_str(int dtype, int rank, const int64_t *dims, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", oc_dtype_name(dtype));
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)dims[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* Copies |t| into state tensor |name| (types must match exactly). */
static oc_status_t set_state(oc_context_t *ctx, const oc_plan_t *plan, const char *name,
                             const oc_host_tensor_t *t, const char *what) {
  int idx = oc_plan_state_index(plan, name);
  if (idx < 0) return oc_make_status(OC_STATUS_NOT_FOUND, "%s: the plan has no state '%s'", what, name);
  oc_tensor_info_t info;
  OC_RETURN_IF_ERROR(oc_plan_state_info(plan, idx, &info));
  int same = (int)info.dtype == t->dtype && info.rank == t->rank;
  for (int d = 0; same && d < t->rank; d++) same = info.dims[d] == t->dims[d];
  if (!same) {
    char b1[256], b2[256];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: state '%s' is %s, the file holds %s", what,
                          name, type_str(info.dtype, info.rank, info.dims, b1, sizeof b1),
                          type_str(t->dtype, t->rank, t->dims, b2, sizeof b2));
  }
  void *data;
  size_t bytes;
  OC_RETURN_IF_ERROR(oc_context_state(ctx, idx, &data, &bytes));
  memcpy(data, t->data, bytes);
  return OC_OK;
}

/* Whether file tensor |t| is the job's batch for plan input |info|: axis 0
 * holds job.size times the plan's rows, the other axes are the plan's. */
static int shards(const oc_tensor_info_t *info, const oc_host_tensor_t *t) {
  if ((int)info->dtype != t->dtype || info->rank != t->rank || t->rank < 1) return 0;
  for (int d = 1; d < t->rank; d++)
    if (info->dims[d] != t->dims[d]) return 0;
  return t->dims[0] == info->dims[0] * job.size;
}

static oc_status_t bind_inputs(oc_context_t *ctx, const oc_plan_t *plan, int entry,
                               const char *dir) {
  static input_file_t files[MAX_FILES];
  int n = 0;
  OC_RETURN_IF_ERROR(list_inputs(dir, files, &n));
  int n_inputs = oc_plan_input_count(plan, entry);
  char bound[MAX_FILES] = {0};
  if (n_inputs > MAX_FILES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "the plan has more than %d inputs", MAX_FILES);
  for (int f = 0; f < n; f++) {
    oc_host_tensor_t t;
    OC_RETURN_IF_ERROR(oc_tensor_file_read(files[f].path, &t));
    int named = t.name && t.name[0];
    int idx = named ? oc_plan_input_index(plan, entry, t.name) : (int)files[f].k;
    if (named && idx < 0 && oc_plan_state_index(plan, t.name) >= 0) {
      /* A state tensor fed like an input (a MoCo queue, onnxc --queue): its
       * first contents come from the first batch; later batches are ignored
       * for it, since the train step owns it from then on. */
      int64_t steps = 0;
      oc_status_t s = oc_context_step_count(ctx, &steps);
      if (s) {
        oc_status_free(s);
        steps = 0;
      }
      s = steps == 0 ? set_state(ctx, plan, t.name, &t, files[f].path) : OC_OK;
      oc_host_tensor_free(&t);
      if (s) return s;
      continue;
    }
    if (named && idx < 0) {
      /* A named tensor this entry point does not take (the embed entry of a
       * training plan reads one view of a two-view batch, say). */
      oc_host_tensor_free(&t);
      continue;
    }
    oc_tensor_info_t info;
    oc_status_t s = OC_OK;
    if (idx >= n_inputs)
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: entry point '%s' has %d inputs",
                         files[f].path, oc_plan_entry_name(plan, entry), n_inputs);
    if (!s) s = oc_plan_input_info(plan, entry, idx, &info);
    if (!s && bound[idx])
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: plan input '%s' is given twice",
                         files[f].path, info.name);
    int same = !s && (int)info.dtype == t.dtype && info.rank == t.rank;
    for (int d = 0; same && d < t.rank; d++) same = info.dims[d] == t.dims[d];
    if (!s && !same && job.size > 1 && shards(&info, &t)) {
      /* This rank's rows of a batch that every rank reads. */
      size_t part = t.bytes / (size_t)job.size;
      s = oc_context_set_input(ctx, entry, idx, (const uint8_t *)t.data + part * (size_t)job.rank, part);
      oc_host_tensor_free(&t);
      if (s) return s;
      bound[idx] = 1;
      continue;
    }
    if (!s && !same) {
      char b1[256], b2[256];
      /* A batch N times the plan's: a plan for N ranks (onnxc --ranks N). */
      int64_t n = t.rank > 0 && info.dims[0] > 0 && t.dims[0] % info.dims[0] == 0
                      ? t.dims[0] / info.dims[0] : 0;
      oc_tensor_info_t one = info;
      int64_t dims[OC_MAX_RANK];
      memcpy(dims, info.dims, sizeof(int64_t) * (size_t)info.rank);
      one.dims = dims;
      if (n > 1) dims[0] = t.dims[0];
      char hint[160] = "";
      if (n > 1 && n != job.size && shards(&one, &t))
        snprintf(hint, sizeof hint, " (the plan takes 1/%lld of this batch per rank: run it under "
                 "mpirun -np %lld)", (long long)n, (long long)n);
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: input '%s' is %s but the plan expects %s%s",
                         files[f].path, info.name, type_str(t.dtype, t.rank, t.dims, b1, sizeof b1),
                         type_str(info.dtype, info.rank, info.dims, b2, sizeof b2), hint);
    }
    if (!s) s = oc_context_set_input(ctx, entry, idx, t.data, t.bytes);
    oc_host_tensor_free(&t);
    if (s) return s;
    bound[idx] = 1;
  }
  for (int i = 0; i < n_inputs; i++)
    if (!bound[i]) {
      oc_tensor_info_t info;
      OC_RETURN_IF_ERROR(oc_plan_input_info(plan, entry, i, &info));
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s has no file for input '%s' (input %d)",
                            dir, info.name, i);
    }
  return OC_OK;
}

/* Writes each "grad:<name>" state tensor as DIR/<name>.pb named <name>. */
static oc_status_t write_grads(oc_context_t *ctx, const oc_plan_t *plan, const char *dir) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return oc_make_status(OC_STATUS_IO, "%s: cannot create folder: %s", dir, strerror(errno));
  for (int i = 0; i < oc_plan_state_count(plan); i++) {
    oc_tensor_info_t info;
    OC_RETURN_IF_ERROR(oc_plan_state_info(plan, i, &info));
    if (strncmp(info.name, "grad:", 5) != 0) continue;
    const char *name = info.name + 5;
    void *data;
    size_t bytes;
    OC_RETURN_IF_ERROR(oc_context_state(ctx, i, &data, &bytes));
    oc_host_tensor_t t = {.name = (char *)name, .dtype = info.dtype, .rank = info.rank,
                          .data = data, .bytes = bytes};
    memcpy(t.dims, info.dims, sizeof(int64_t) * (size_t)info.rank);
    char file[4096];
    int k = snprintf(file, sizeof file, "%s/", dir);
    for (const char *p = name; *p && k < (int)sizeof file - 4; p++)
      file[k++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-') ? *p : '_';
    snprintf(file + k, sizeof file - (size_t)k, ".pb");
    OC_RETURN_IF_ERROR(oc_tensor_file_write_pb(file, &t));
  }
  return OC_OK;
}

/* --- the job's ranks ------------------------------------------------------------------ */

static oc_status_t comm_error(const char *what) {
  return oc_make_status(OC_STATUS_IO, "%s across the ranks failed", what);
}

/* Every rank takes rank 0's state: identical replicas from the start. */
static oc_status_t broadcast_state(oc_context_t *ctx, const oc_plan_t *plan) {
  for (int i = 0; i < oc_plan_state_count(plan); i++) {
    void *data;
    size_t bytes;
    OC_RETURN_IF_ERROR(oc_context_state(ctx, i, &data, &bytes));
    if (job.broadcast(job.self, data, bytes, 0)) return comm_error("broadcasting the state");
  }
  return OC_OK;
}

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
  const uint8_t *p = data;
  for (size_t k = 0; k < n; k++) h = (h ^ p[k]) * 1099511628211ull;
  return h;
}

/* Whether every rank's |h| equals rank 0's; *out_rank gets the first rank
 * that differs. */
static oc_status_t same_everywhere(uint64_t h, uint64_t *all, int *out_rank) {
  if (job.allgather(job.self, &h, all, sizeof h)) return comm_error("gathering state hashes");
  *out_rank = -1;
  for (int r = 1; r < job.size && *out_rank < 0; r++)
    if (all[r] != all[0]) *out_rank = r;
  return OC_OK;
}

/* --check-replicas: every rank holds the same state after step |step|. */
static oc_status_t check_replicas(oc_context_t *ctx, const oc_plan_t *plan, long step) {
  uint64_t *all = malloc(sizeof(uint64_t) * (size_t)job.size), h = 14695981039346656037ull;
  if (!all) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_status_t s = OC_OK;
  int n = oc_plan_state_count(plan), bad = -1;
  for (int i = 0; i < n && !s; i++) {
    void *data;
    size_t bytes;
    s = oc_context_state(ctx, i, &data, &bytes);
    if (!s) h = hash_bytes(h, data, bytes);
  }
  if (!s) s = same_everywhere(h, all, &bad);
  /* Every rank sees the same hashes, so all of them look for the tensor. */
  for (int i = 0; i < n && !s && bad >= 0; i++) {
    void *data;
    size_t bytes;
    oc_tensor_info_t info;
    int r;
    s = oc_context_state(ctx, i, &data, &bytes);
    if (!s) s = oc_plan_state_info(plan, i, &info);
    if (!s) s = same_everywhere(hash_bytes(14695981039346656037ull, data, bytes), all, &r);
    if (!s && r >= 0)
      s = oc_make_status(OC_STATUS_INTERNAL,
                         "--check-replicas: after step %ld rank %d's state differs from rank "
                         "0's, first in '%s'", step, r, info.name);
  }
  if (!s && bad >= 0)
    s = oc_make_status(OC_STATUS_INTERNAL, "--check-replicas: after step %ld rank %d's state "
                       "differs from rank 0's", step, bad);
  free(all);
  return s;
}

typedef struct train_options_s {
  long steps;
  const char *log_path, *grads_dir;
  long check_every, ckpt_every; /* 0: never */
  const char *ckpt_path;
} train_options_t;

/* Runs the train steps; logs each step's loss (the mean over the ranks). */
static oc_status_t train(oc_context_t *ctx, const oc_plan_t *plan, int entry,
                         const train_options_t *o) {
  long steps = o->steps;
  const char *log_path = leader() ? o->log_path : NULL, *grads_dir = o->grads_dir;
  FILE *log = NULL;
  char *log_tmp = NULL;
  if (log_path) {
    log_tmp = malloc(strlen(log_path) + 32);
    if (!log_tmp) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    sprintf(log_tmp, "%s.tmp.%ld", log_path, (long)getpid());
    log = fopen(log_tmp, "w");
    if (!log) {
      oc_status_t s = oc_make_status(OC_STATUS_IO, "%s: cannot write: %s", log_path, strerror(errno));
      free(log_tmp);
      return s;
    }
  }
  oc_status_t s = OC_OK;
  for (long k = 0; k < steps && !s; k++) {
    s = oc_context_run(ctx, entry);
    const void *out;
    size_t bytes;
    if (!s) s = oc_context_output(ctx, entry, 0, &out, &bytes);
    if (!s && bytes != sizeof(float))
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "the train step's first output is not a scalar loss");
    if (s) break;
    float loss;
    memcpy(&loss, out, sizeof loss);
    if (job.size > 1) {
      if (job.allreduce_sum(job.self, &loss, 1, OC_DTYPE_FLOAT32)) {
        s = comm_error("averaging the loss");
        break;
      }
      loss /= (float)job.size;
    }
    if (leader()) printf("step %ld loss %.9e\n", k + 1, (double)loss);
    if (log) fprintf(log, "%.9e\n", (double)loss);
    if (k == 0 && grads_dir && leader()) s = write_grads(ctx, plan, grads_dir);
    if (!s && o->check_every && (k + 1) % o->check_every == 0 && job.size > 1)
      s = check_replicas(ctx, plan, k + 1);
    if (!s && o->ckpt_every && (k + 1) % o->ckpt_every == 0 && k + 1 < steps && leader())
      s = oc_context_save_checkpoint(ctx, o->ckpt_path);
  }
  if (log) {
    /* The log holds the steps that ran, even when a later one failed. */
    int bad = fclose(log) != 0;
    if (!bad && rename(log_tmp, log_path) != 0) bad = 1;
    if (bad) {
      remove(log_tmp);
      if (!s) s = oc_make_status(OC_STATUS_IO, "%s: cannot write: %s", log_path, strerror(errno));
    }
    free(log_tmp);
  }
  return s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* One warm-up run of |entry|, then |repeat| timed runs: prints the median,
 * min and max wall time in milliseconds. */
static oc_status_t time_runs(oc_context_t *ctx, int entry, long repeat) {
  double *ms = malloc(sizeof(double) * (size_t)repeat);
  if (!ms) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_status_t s = oc_context_run(ctx, entry);
  for (long k = 0; k < repeat && !s; k++) {
    double t0 = now_ms();
    s = oc_context_run(ctx, entry);
    ms[k] = now_ms() - t0;
  }
  if (!s) {
    qsort(ms, (size_t)repeat, sizeof(double), cmp_double);
    double med = repeat % 2 ? ms[repeat / 2] : 0.5 * (ms[repeat / 2 - 1] + ms[repeat / 2]);
    if (leader()) printf("median_ms: %.4f\nmin_ms: %.4f\nmax_ms: %.4f\n", med, ms[0], ms[repeat - 1]);
  }
  free(ms);
  return s;
}

static oc_status_t write_outputs(const oc_context_t *ctx, const oc_plan_t *plan, int entry,
                                 const char *dir, int npy) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return oc_make_status(OC_STATUS_IO, "%s: cannot create folder: %s", dir, strerror(errno));
  for (int i = 0; i < oc_plan_output_count(plan, entry); i++) {
    oc_tensor_info_t info;
    OC_RETURN_IF_ERROR(oc_plan_output_info(plan, entry, i, &info));
    const void *data;
    size_t bytes;
    OC_RETURN_IF_ERROR(oc_context_output(ctx, entry, i, &data, &bytes));
    oc_host_tensor_t t = {.name = (char *)info.name, .dtype = info.dtype, .rank = info.rank,
                          .data = (void *)data, .bytes = bytes};
    memcpy(t.dims, info.dims, sizeof(int64_t) * (size_t)info.rank);
    char path[4096];
    snprintf(path, sizeof path, "%s/output_%d.%s", dir, i, npy ? "npy" : "pb");
    OC_RETURN_IF_ERROR(npy ? oc_tensor_file_write_npy(path, &t) : oc_tensor_file_write_pb(path, &t));
  }
  return OC_OK;
}

/* Whether entry |entry| of |plan| holds op |op|. */
static int has_op(const oc_plan_t *plan, int entry, int op) {
  for (int i = 0; i < oc_plan_instruction_count(plan, entry); i++)
    if (oc_plan_instruction_op(plan, entry, i) == op) return 1;
  return 0;
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv) {
  char err[256];
  if (oc_mpi_join(&argc, &argv, &job, err, sizeof err)) {
    fprintf(stderr, "onnxrun: error: %s\n", err);
    return 1;
  }
  int rc = run_main(argc, argv);
  oc_mpi_leave();
  return rc;
}

static int run_main(int argc, char **argv) {
  const char *plan_path = NULL, *in_dir = NULL, *out_dir = NULL, *entry_name = NULL;
  const char *log_path = NULL, *grads_dir = NULL, *load_ckpt = NULL, *save_ckpt = NULL;
  const char *export_path = NULL;
  oc_embed_dir_options_t eo = {0};
  const char *state_init[64];
  int n_state_init = 0;
  long steps = 0, repeat = 0, threads = 0, check_every = 0, ckpt_every = 0;
  uint64_t max_memory = 0, max_cost = 0;
  int npy = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      uint32_t lo, hi;
      oc_plan_format_versions(&lo, &hi);
      printf("onnxrun %s (reads plan formats %u to %u)\n", ONNXC_VERSION_STRING, lo, hi);
      return 0;
    } else if (!strcmp(a, "--npy")) {
      npy = 1;
    } else if (!strcmp(a, "--max-memory") || !strcmp(a, "--max-cost")) {
      if (!has_next) return bad_usage("missing value for", a);
      if (oc_parse_size(argv[++i], !strcmp(a, "--max-memory") ? &max_memory : &max_cost))
        return bad_usage("bad value (a number >= 1, K/M/G/T suffixes) for", a);
    } else if (!strcmp(a, "--state-init")) {
      if (!has_next) return bad_usage("missing value for", a);
      if (n_state_init == 64 || !strchr(argv[i + 1], '=')) return bad_usage("--state-init takes NAME=FILE", argv[i + 1]);
      state_init[n_state_init++] = argv[++i];
    } else if (!strcmp(a, "--inputs") || !strcmp(a, "--outputs") || !strcmp(a, "--entry") ||
               !strcmp(a, "--log") || !strcmp(a, "--grads") || !strcmp(a, "--load-checkpoint") ||
               !strcmp(a, "--save-checkpoint") || !strcmp(a, "--steps") ||
               !strcmp(a, "--export-onnx") || !strcmp(a, "--repeat") ||
               !strcmp(a, "--threads") || !strcmp(a, "--check-replicas") ||
               !strcmp(a, "--checkpoint-every") || !strcmp(a, "--embed-dir") ||
               !strcmp(a, "--embeddings") || !strcmp(a, "--manifest") || !strcmp(a, "--output") ||
               !strcmp(a, "--gather-every")) {
      if (!has_next) return bad_usage("missing value for", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--inputs")) in_dir = v;
      else if (!strcmp(a, "--outputs")) out_dir = v;
      else if (!strcmp(a, "--entry")) entry_name = v;
      else if (!strcmp(a, "--log")) log_path = v;
      else if (!strcmp(a, "--grads")) grads_dir = v;
      else if (!strcmp(a, "--load-checkpoint")) load_ckpt = v;
      else if (!strcmp(a, "--save-checkpoint")) save_ckpt = v;
      else if (!strcmp(a, "--export-onnx")) export_path = v;
      else if (!strcmp(a, "--embed-dir")) eo.dir = v;
      else if (!strcmp(a, "--embeddings")) eo.embeddings_path = v;
      else if (!strcmp(a, "--manifest")) eo.manifest_path = v;
      else if (!strcmp(a, "--output")) eo.output_name = v;
      else if (!strcmp(a, "--repeat") || !strcmp(a, "--threads") ||
               !strcmp(a, "--check-replicas") || !strcmp(a, "--checkpoint-every") ||
               !strcmp(a, "--gather-every")) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || end == v || n < 1 || n > 1000000000)
          return bad_usage("takes a count >= 1", a);
        if (!strcmp(a, "--repeat")) repeat = n;
        else if (!strcmp(a, "--threads")) threads = n;
        else if (!strcmp(a, "--check-replicas")) check_every = n;
        else if (!strcmp(a, "--gather-every")) eo.gather_every = n;
        else ckpt_every = n;
      } else {
        char *end;
        errno = 0;
        steps = strtol(v, &end, 10);
        if (errno || *end || end == v || steps < 1) return bad_usage("--steps takes a count >= 1", v);
      }
    } else if (a[0] == '-' && a[1]) {
      return bad_usage("unknown option", a);
    } else {
      if (plan_path) return bad_usage("more than one plan given", a);
      plan_path = a;
    }
  }
  if (!plan_path) return bad_usage("no plan given", NULL);
  if (eo.dir) {
    if (!eo.embeddings_path) return bad_usage("--embed-dir needs --embeddings FILE", NULL);
    if (in_dir || out_dir || npy || steps || repeat || log_path || grads_dir || check_every ||
        ckpt_every || save_ckpt || export_path)
      return bad_usage("--embed-dir runs alone: not with --inputs, --outputs, --npy, --steps, "
                       "--repeat, --log, --grads, --check-replicas, --checkpoint-every, "
                       "--save-checkpoint or --export-onnx", NULL);
    if (eo.manifest_path && !strcmp(eo.manifest_path, eo.embeddings_path))
      return bad_usage("--manifest and --embeddings name the same file", eo.manifest_path);
  } else if (eo.embeddings_path || eo.manifest_path || eo.output_name || eo.gather_every) {
    return bad_usage("--embeddings, --manifest, --output and --gather-every need --embed-dir DIR",
                     NULL);
  }
  if (steps && repeat) return bad_usage("--steps and --repeat cannot be used together", NULL);
  int run = steps || out_dir || repeat || eo.dir;
  if (run && !in_dir && !eo.dir) return bad_usage("no --inputs DIR given", NULL);
  if (!run && !export_path && !save_ckpt)
    return bad_usage("nothing to do: give --outputs DIR, --repeat N, --steps N or --export-onnx FILE",
                     NULL);
  if (!steps && (log_path || grads_dir || check_every || ckpt_every))
    return bad_usage("--log, --grads, --check-replicas and --checkpoint-every need --steps", NULL);
  if (ckpt_every && !save_ckpt) return bad_usage("--checkpoint-every needs --save-checkpoint FILE", NULL);
  if (!entry_name) entry_name = steps ? "train_step" : "embed";
  oc_plan_t *plan = NULL;
  oc_context_t *ctx = NULL;
  int entry = -1;
  oc_plan_options_t popts;
  oc_plan_options_init(&popts);
  popts.max_run_cost = max_cost;
  oc_status_t s = oc_plan_open_file(plan_path, &popts, &plan);
  if (!s && run) {
    s = oc_plan_find_entry(plan, entry_name, &entry);
    if (s && steps && !strcmp(entry_name, "train_step"))
      s = oc_status_wrap(s, "compile the model with onnxc --train to train it: ");
  }
  oc_context_options_t copts;
  oc_context_options_init(&copts);
  copts.threads = (int)threads;
  copts.max_memory_bytes = max_memory;
  if (!s) s = oc_context_create(plan, &copts, &ctx);
  /* --embed-dir: each rank runs its own batches, with no collectives. */
  if (!s && job.size > 1 && !eo.dir) s = oc_context_set_communicator(ctx, &job);
  if (!s && job.size > 1 && steps && !has_op(plan, entry, OC_OP_ALLREDUCE))
    s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                       "%d ranks, but the plan's train step does not average its gradients "
                       "across ranks: compile it with onnxc --train --ranks %d",
                       job.size, job.size);
  if (!s && load_ckpt) s = oc_context_load_checkpoint(ctx, load_ckpt);
  for (int k = 0; k < n_state_init && !s; k++) {
    char name[512];
    const char *eq = strchr(state_init[k], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - state_init[k]), state_init[k]);
    oc_host_tensor_t t;
    s = oc_tensor_file_read(eq + 1, &t);
    if (!s) {
      s = set_state(ctx, plan, name, &t, eq + 1);
      oc_host_tensor_free(&t);
    }
  }
  if (!s && job.size > 1) s = broadcast_state(ctx, plan);
  if (!s && eo.dir) {
    eo.entry = entry;
    oc_embed_dir_report_t rep;
    s = oc_embed_dir(ctx, plan, &job, &eo, &rep);
    oc_context_release(ctx);
    oc_plan_release(plan);
    if (s) return fail_job(s, rep.print, rep.known);
    if (leader())
      printf("embeddings: %s -> %s%s%s; %lld examples from %lld file%s, %lld batch%s of %lld on "
             "%d rank%s, %.3f s (%.1f examples/s)\n", rep.out_type, eo.embeddings_path,
             eo.manifest_path ? ", manifest " : "", eo.manifest_path ? eo.manifest_path : "",
             (long long)rep.examples, (long long)rep.files, rep.files > 1 ? "s" : "",
             (long long)rep.batches, rep.batches > 1 ? "es" : "", (long long)rep.batch, job.size,
             job.size > 1 ? "s" : "", rep.seconds,
             rep.seconds > 0 ? (double)rep.examples / rep.seconds : 0.0);
    return 0;
  }
  if (!s && run) s = bind_inputs(ctx, plan, entry, in_dir);
  train_options_t to = {steps, log_path, grads_dir, check_every, ckpt_every, save_ckpt};
  if (!s && run)
    s = steps    ? train(ctx, plan, entry, &to)
        : repeat ? time_runs(ctx, entry, repeat)
                 : oc_context_run(ctx, entry);
  if (!s && out_dir && leader()) s = write_outputs(ctx, plan, entry, out_dir, npy);
  if (!s && save_ckpt && leader()) s = oc_context_save_checkpoint(ctx, save_ckpt);
  if (!s && export_path && leader()) s = oc_export_onnx(plan, ctx, export_path);
  /* Nobody leaves before rank 0 has written what the job writes. */
  if (!s && job.size > 1 && job.barrier(job.self)) s = comm_error("the final barrier");
  oc_context_release(ctx);
  oc_plan_release(plan);
  if (s) return fail(s);
  return 0;
}
