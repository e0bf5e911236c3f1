/* onnxrun --embed-dir (embed_dir.h). */
#include "embed_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mpi_comm.h"
#include "oc_file.h"
#include "oc_ops.h"
#include "tensor_file.h"

/* Outputs each rank holds between two gathers, by default. */
#define ROUND_BYTES ((size_t)8 << 20)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const uint8_t *p = data;
  for (size_t k = 0; k < n; k++) h = (h ^ p[k]) * 1099511628211ull;
  return h;
}
#define FNV0 14695981039346656037ull

static oc_status_t no_memory(void) { return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory"); }

static oc_status_t comm_error(const char *what) {
  const char *m = oc_mpi_last_error();
  return oc_make_status(OC_STATUS_IO, "%s across the ranks failed%s%s", what, m[0] ? ": " : "", m);
}

/* Every rank's |bytes| bytes of |send| into |recv|, rank 0's first. */
static int allgather(const oc_communicator_t *job, const void *send, void *recv, size_t bytes) {
  if (job->size == 1) {
    memcpy(recv, send, bytes);
    return 0;
  }
  return job->allgather(job->self, send, recv, bytes);
}

/* Whether any rank failed: every rank says so, with a hash of its message.
 * Returns OC_OK when none did. Otherwise a failed rank gets its own status
 * back (report->print unless a lower rank failed with the same message) and
 * the others a status naming the first rank that failed; report->known is
 * set. If the exchange itself fails, its error (or this rank's own) comes
 * back with report->known 0: the job must be aborted. */
static oc_status_t agree(const oc_communicator_t *job, oc_status_t s, oc_embed_dir_report_t *rep) {
  rep->print = 1;
  rep->known = 0;
  if (job->size == 1) {
    rep->known = 1;
    return s;
  }
  uint64_t mine[2] = {s != OC_OK, 0};
  if (s) {
    const char *m = oc_status_message(s);
    mine[1] = fnv(FNV0, m, strlen(m));
  }
  uint64_t *all = malloc(sizeof mine * (size_t)job->size);
  if (!all || allgather(job, mine, all, sizeof mine)) {
    free(all);
    if (s) return s;
    return all ? comm_error("exchanging the ranks' status") : no_memory();
  }
  int first = -1;
  for (int r = 0; r < job->size && first < 0; r++)
    if (all[2 * r]) first = r;
  if (first >= 0) {
    rep->known = 1;
    if (s) {
      for (int r = 0; r < job->rank; r++)
        if (all[2 * r] && all[2 * r + 1] == mine[1]) rep->print = 0;
    } else {
      rep->print = 0;
      s = oc_make_status(OC_STATUS_IO, "rank %d failed", first);
    }
  }
  free(all);
  return s;
}

static const char *type_str(int dtype, int rank, const int64_t *dims, int64_t first, char *buf,
                            size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", oc_dtype_name(dtype));
  for (int i = 0; i < rank && k < n; i++) {
    if (i == 0 && first == -1)
      k += (size_t)snprintf(buf + k, n - k, "n");
    else
      k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld",
                            (long long)(i == 0 && first >= 0 ? first : dims[i]));
  }
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* --- the folder ---------------------------------------------------------------------- */

typedef struct listing_s {
  char **names;
  int64_t n, cap;
} listing_t;

static void listing_free(listing_t *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
  memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && !strcmp(s + n - k, suffix);
}

/* The example files of |dir|, sorted by name (strcmp). */
static oc_status_t list_dir(const char *dir, listing_t *l) {
  DIR *d = opendir(dir);
  if (!d) return oc_make_status(OC_STATUS_IO, "%s: cannot open folder: %s", dir, strerror(errno));
  oc_status_t s = OC_OK;
  struct dirent *de;
  errno = 0;
  while (!s && (de = readdir(d))) {
    const char *name = de->d_name;
    if (name[0] == '.' || !(ends_with(name, ".npy") || ends_with(name, ".pb"))) continue;
    int regular = de->d_type == DT_REG;
    if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
      struct stat st;
      regular = fstatat(dirfd(d), name, &st, 0) == 0 && S_ISREG(st.st_mode);
    }
    if (!regular) continue;
    if (strpbrk(name, "\t\n\r")) {
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                         "%s: the file name '%s' holds a tab or a line break, which the "
                         "manifest cannot hold: rename it", dir, name);
      break;
    }
    if (l->n == l->cap) {
      int64_t cap = l->cap ? 2 * l->cap : 1024;
      char **names = realloc(l->names, sizeof(char *) * (size_t)cap);
      if (!names) {
        s = no_memory();
        break;
      }
      l->names = names;
      l->cap = cap;
    }
    if (!(l->names[l->n] = oc_strdup(name))) s = no_memory();
    else l->n++;
    errno = 0;
  }
  if (!s && errno)
    s = oc_make_status(OC_STATUS_IO, "%s: cannot read folder: %s", dir, strerror(errno));
  closedir(d);
  if (!s && l->n == 0)
    s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: no example files (.npy or .pb) in the folder",
                       dir);
  if (!s) qsort(l->names, (size_t)l->n, sizeof(char *), by_name);
  return s;
}

/* --- the job ------------------------------------------------------------------------- */

typedef struct job_s {
  const oc_communicator_t *comm;
  const oc_embed_dir_options_t *o;
  oc_context_t *ctx;
  int entry, out_index;
  oc_tensor_info_t in, out;
  int64_t batch;                 /* B */
  size_t in_row, out_row;        /* bytes of one example's input and output */
  listing_t files;
  int64_t *start;                /* start[f]: the first example of file f; start[n]: all */
  int64_t examples, batches;
  char path[8192];
  /* the file being read */
  int64_t cur;                   /* its index, or -1 */
  oc_host_tensor_t cur_t;
} job_t;

static const char *file_path(job_t *j, int64_t f) {
  snprintf(j->path, sizeof j->path, "%s/%s", j->o->dir, j->files.names[f]);
  return j->path;
}

/* How many examples tensor |t| (read from |path|) holds: 1 for one example
 * (the input without its batch axis), n for [n, ...]. */
static oc_status_t examples_in(const job_t *j, const char *path, const oc_host_tensor_t *t,
                               int64_t *out) {
  const oc_tensor_info_t *in = &j->in;
  char b1[256], b2[256], b3[256];
  if (t->dtype != (int)in->dtype)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s: holds %s, but input '%s' of the plan is %s", path,
                          type_str(t->dtype, t->rank, t->dims, -2, b1, sizeof b1), in->name,
                          type_str(in->dtype, in->rank, in->dims, -2, b2, sizeof b2));
  int one = t->rank == in->rank - 1, many = t->rank == in->rank;
  for (int d = 1; d < in->rank && (one || many); d++) {
    if (one && t->dims[d - 1] != in->dims[d]) one = 0;
    if (many && t->dims[d] != in->dims[d]) many = 0;
  }
  if (many && t->dims[0] == 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: holds no example (%s)", path,
                          type_str(t->dtype, t->rank, t->dims, -2, b1, sizeof b1));
  if (!one && !many)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s: holds %s, which is neither one example of input '%s' (%s) nor "
                          "several (%s)", path,
                          type_str(t->dtype, t->rank, t->dims, -2, b1, sizeof b1), in->name,
                          type_str(in->dtype, in->rank - 1, in->dims + 1, -2, b2, sizeof b2),
                          type_str(in->dtype, in->rank, in->dims, -1, b3, sizeof b3));
  *out = one ? 1 : t->dims[0];
  return OC_OK;
}

/* Fills |rows| examples from |first| on into |dst|. */
static oc_status_t read_examples(job_t *j, int64_t first, int64_t rows, uint8_t *dst) {
  int64_t f = j->cur;
  if (f < 0 || j->start[f] > first) {
    /* the last file that starts at or before |first| */
    int64_t lo = 0, hi = j->files.n - 1;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo + 1) / 2;
      if (j->start[mid] <= first) lo = mid;
      else hi = mid - 1;
    }
    f = lo;
  }
  for (int64_t g = first; g < first + rows; g++) {
    while (j->start[f + 1] <= g) f++;
    if (f != j->cur) {
      oc_host_tensor_free(&j->cur_t);
      j->cur = -1;
      const char *path = file_path(j, f);
      OC_RETURN_IF_ERROR(oc_tensor_file_read(path, &j->cur_t));
      int64_t n = 0;
      OC_RETURN_IF_ERROR(examples_in(j, path, &j->cur_t, &n));
      if (n != j->start[f + 1] - j->start[f])
        return oc_make_status(OC_STATUS_IO, "%s: changed while running: it held %lld examples, "
                              "now %lld", path, (long long)(j->start[f + 1] - j->start[f]),
                              (long long)n);
      j->cur = f;
    }
    memcpy(dst + (size_t)(g - first) * j->in_row,
           (const uint8_t *)j->cur_t.data + (size_t)(g - j->start[f]) * j->in_row, j->in_row);
  }
  return OC_OK;
}

/* Rank r's batches: [*b0, *b1). */
static void share(const job_t *j, int r, int64_t *b0, int64_t *b1) {
  int n = j->comm->size;
  *b0 = j->batches * r / n;
  *b1 = j->batches * (r + 1) / n;
}

/* Examples of batches [b0, b1). */
static int64_t examples_of(const job_t *j, int64_t b0, int64_t b1) {
  int64_t e0 = b0 * j->batch, e1 = b1 * j->batch;
  if (e1 > j->examples) e1 = j->examples;
  return e1 > e0 ? e1 - e0 : 0;
}

/* Checks the entry point and picks its output. */
static oc_status_t setup(job_t *j, const oc_plan_t *plan) {
  const oc_embed_dir_options_t *o = j->o;
  const char *ename = oc_plan_entry_name(plan, o->entry);
  int n_in = oc_plan_input_count(plan, o->entry);
  if (n_in != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--embed-dir feeds one input, but entry "
                          "point '%s' takes %d", ename, n_in);
  OC_RETURN_IF_ERROR(oc_plan_input_info(plan, o->entry, 0, &j->in));
  if (j->in.rank < 1 || j->in.dims[0] < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input '%s' of entry point '%s' has no "
                          "batch axis", j->in.name, ename);
  j->batch = j->in.dims[0];
  for (int i = 0; i < oc_plan_instruction_count(plan, o->entry); i++) {
    int op = oc_plan_instruction_op(plan, o->entry, i);
    if (op == OC_OP_ALLREDUCE || op == OC_OP_ALLGATHER || op == OC_OP_REDUCE_SCATTER ||
        op == OC_OP_SYNC_BATCHNORM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "entry point '%s' holds collective "
                            "instructions (a plan compiled with onnxc --ranks): --embed-dir runs "
                            "each rank on its own batches", ename);
  }
  int n_out = oc_plan_output_count(plan, o->entry);
  j->out_index = -1;
  char names[1024] = "";
  size_t k = 0;
  for (int i = 0; i < n_out; i++) {
    oc_tensor_info_t info;
    OC_RETURN_IF_ERROR(oc_plan_output_info(plan, o->entry, i, &info));
    if (o->output_name && !strcmp(info.name, o->output_name)) j->out_index = i;
    if (k < sizeof names)
      k += (size_t)snprintf(names + k, sizeof names - k, "%s'%s'", i ? ", " : "", info.name);
  }
  if (!o->output_name && n_out == 1) j->out_index = 0;
  if (j->out_index < 0) {
    if (o->output_name)
      return oc_make_status(OC_STATUS_NOT_FOUND, "entry point '%s' has no output '%s' (its "
                            "outputs: %s)", ename, o->output_name, names);
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "entry point '%s' has %d outputs (%s): "
                          "name one with --output", ename, n_out, names);
  }
  OC_RETURN_IF_ERROR(oc_plan_output_info(plan, o->entry, j->out_index, &j->out));
  if (j->out.rank < 1 || j->out.dims[0] != j->batch) {
    char b[256];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output '%s' is %s: its axis 0 is not the "
                          "batch of %lld examples of input '%s'", j->out.name,
                          type_str(j->out.dtype, j->out.rank, j->out.dims, -2, b, sizeof b),
                          (long long)j->batch, j->in.name);
  }
  j->in_row = j->in.bytes / (size_t)j->batch;
  j->out_row = j->out.bytes / (size_t)j->batch;
  return OC_OK;
}

/* Every rank counts the examples of its share of the files; all of them
 * then know every file's count. */
static oc_status_t count_examples(job_t *j, oc_embed_dir_report_t *rep) {
  int n = j->comm->size, r = j->comm->rank;
  int64_t files = j->files.n, per = (files + n - 1) / n;
  int64_t f0 = files * r / n, f1 = files * (r + 1) / n;
  int64_t *mine = calloc((size_t)per + 1, sizeof(int64_t));
  int64_t *all = calloc((size_t)per * (size_t)n + 1, sizeof(int64_t));
  j->start = calloc((size_t)files + 1, sizeof(int64_t));
  oc_status_t s = mine && all && j->start ? OC_OK : no_memory();
  for (int64_t f = f0; f < f1 && !s; f++) {
    oc_host_tensor_t t;
    const char *path = file_path(j, f);
    s = oc_tensor_file_info(path, &t);
    if (!s) s = examples_in(j, path, &t, &mine[f - f0]);
    oc_host_tensor_free(&t);
  }
  s = agree(j->comm, s, rep);
  if (!s && allgather(j->comm, mine, all, sizeof(int64_t) * (size_t)per)) {
    rep->known = 0;
    s = comm_error("gathering the examples' counts");
  }
  for (int q = 0; q < n && !s; q++) {
    int64_t g0 = files * q / n, g1 = files * (q + 1) / n;
    for (int64_t f = g0; f < g1; f++) j->start[f + 1] = j->start[f] + all[(int64_t)q * per + f - g0];
  }
  free(mine);
  free(all);
  return s;
}

/* The manifest: a header line, then "row<TAB>file<TAB>index" per example. */
static oc_status_t write_manifest(job_t *j, oc_atomic_file_t *f) {
  size_t cap = 1 << 16, len = 0;
  uint64_t at = 0;
  char *buf = malloc(cap + 8192);
  if (!buf) return no_memory();
  oc_status_t s = OC_OK;
  len = (size_t)snprintf(buf, cap, "row\tfile\tindex\n");
  for (int64_t fi = 0; fi < j->files.n && !s; fi++)
    for (int64_t i = 0; i < j->start[fi + 1] - j->start[fi] && !s; i++) {
      len += (size_t)snprintf(buf + len, 8192, "%lld\t%.4000s\t%lld\n",
                              (long long)(j->start[fi] + i), j->files.names[fi], (long long)i);
      if (len >= cap) {
        s = oc_atomic_file_pwrite(f, buf, len, at);
        at += len;
        len = 0;
      }
    }
  if (!s && len) s = oc_atomic_file_pwrite(f, buf, len, at);
  free(buf);
  return s;
}

/* The bytes of rank r's outputs in round k, and the first example they hold. */
static size_t round_part(const job_t *j, int r, int64_t per_round, int64_t k, int64_t *first) {
  int64_t ra, rb;
  share(j, r, &ra, &rb);
  int64_t x = ra + k * per_round, y = x + per_round > rb ? rb : x + per_round;
  *first = x * j->batch;
  return x < y ? (size_t)examples_of(j, x, y) * j->out_row : 0;
}

/* Every rank must see the same files (a folder on a shared file system). */
static oc_status_t same_listing(job_t *j, oc_embed_dir_report_t *rep) {
  const oc_communicator_t *comm = j->comm;
  uint64_t h = fnv(FNV0, &j->files.n, sizeof j->files.n);
  for (int64_t f = 0; f < j->files.n; f++)
    h = fnv(h, j->files.names[f], strlen(j->files.names[f]) + 1);
  uint64_t *all = malloc(sizeof h * (size_t)comm->size);
  rep->known = 0;
  rep->print = 1;
  if (!all) return no_memory();
  oc_status_t s = OC_OK;
  if (allgather(comm, &h, all, sizeof h)) {
    s = comm_error("comparing the folder's listings");
  } else {
    rep->known = 1;
    rep->print = comm->rank == 0; /* every rank finds the same difference */
    for (int r = 1; r < comm->size && !s; r++)
      if (all[r] != all[0])
        s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                           "%s: rank %d sees other files than rank 0: the folder must be the "
                           "same on every rank", j->o->dir, r);
  }
  free(all);
  return s;
}

oc_status_t oc_embed_dir(oc_context_t *ctx, const oc_plan_t *plan, const oc_communicator_t *comm,
                         const oc_embed_dir_options_t *o, oc_embed_dir_report_t *rep) {
  memset(rep, 0, sizeof *rep);
  double t0 = now_s();
  job_t j = {.comm = comm, .o = o, .ctx = ctx, .entry = o->entry, .cur = -1};
  int leader = comm->rank == 0;
  oc_atomic_file_t emb = {.fd = -1}, man = {.fd = -1};
  uint8_t *in_buf = NULL, *round = NULL, *gathered = NULL;
  size_t *counts = NULL, header_len = 0;
  int64_t b0 = 0, b1 = 0, per_round = 1, rounds = 0;

  /* 1. the entry point, the folder, rank 0's output files (nameless until
   * they are complete) */
  oc_status_t s = setup(&j, plan);
  if (!s) s = list_dir(o->dir, &j.files);
  if (!s && leader) s = oc_atomic_file_open(&emb, o->embeddings_path);
  if (!s && leader && o->manifest_path) s = oc_atomic_file_open(&man, o->manifest_path);
  if ((s = agree(comm, s, rep))) goto done;
  if (comm->size > 1 && (s = same_listing(&j, rep))) goto done;

  /* 2. how many examples each file holds */
  if ((s = count_examples(&j, rep))) goto done;
  j.examples = j.start[j.files.n];
  j.batches = (j.examples + j.batch - 1) / j.batch;

  /* 3. rounds: each rank runs up to |per_round| of its batches, then rank 0
   * gathers their outputs and writes them in place. */
  size_t batch_out = j.out_row * (size_t)j.batch;
  if (!batch_out) batch_out = 1;
  share(&j, comm->rank, &b0, &b1);
  per_round = o->gather_every > 0 ? o->gather_every : (int64_t)(ROUND_BYTES / batch_out);
  /* MPI_Gatherv moves less than 2^31 bytes per call. */
  int64_t most = (int64_t)((size_t)0x7fffffff / (size_t)comm->size / batch_out);
  if (per_round > most) per_round = most;
  if (per_round < 1)
    s = oc_make_status(OC_STATUS_RESOURCE_LIMIT, "output '%s' of one batch (%zu bytes) on %d "
                       "ranks is over 2^31 bytes, the most one gather moves", j.out.name,
                       batch_out, comm->size);
  for (int r = 0; r < comm->size && !s; r++) {
    int64_t a, b;
    share(&j, r, &a, &b);
    int64_t k = (b - a + per_round - 1) / per_round;
    if (k > rounds) rounds = k;
  }
  if (!s) {
    void *data;
    size_t bytes;
    s = oc_context_input_buffer(ctx, j.entry, 0, &data, &bytes);
    in_buf = data;
  }
  if (!s) {
    int64_t mine = b1 - b0 < per_round ? b1 - b0 : per_round;
    round = malloc(batch_out * (size_t)(mine > 0 ? mine : 1));
    counts = calloc((size_t)comm->size, sizeof(size_t));
    if (!round || !counts) s = no_memory();
  }
  if (!s && leader) {
    size_t total = 0;
    for (int r = 0; r < comm->size; r++) {
      int64_t first;
      total += round_part(&j, r, per_round, 0, &first);
    }
    if (!(gathered = malloc(total + 1))) s = no_memory();
    int64_t dims[OC_MAX_RANK];
    memcpy(dims, j.out.dims, sizeof(int64_t) * (size_t)j.out.rank);
    dims[0] = j.examples;
    type_str(j.out.dtype, j.out.rank, dims, -2, rep->out_type, sizeof rep->out_type);
    uint8_t header[OC_NPY_HEADER_MAX];
    if (!s) {
      s = oc_tensor_npy_header(j.out.dtype, j.out.rank, dims, header, sizeof header, &header_len);
      if (s) s = oc_status_wrap(s, "%s: ", o->embeddings_path);
    }
    if (!s) s = oc_atomic_file_pwrite(&emb, header, header_len, 0);
  }
  if ((s = agree(comm, s, rep))) goto done;

  for (int64_t k = 0; k < rounds; k++) {
    size_t have = 0;
    /* After a failed write on rank 0, nothing runs: the agreement ends the job. */
    for (int64_t bi = b0 + k * per_round; !s && bi < b1 && bi < b0 + (k + 1) * per_round; bi++) {
      int64_t rows = examples_of(&j, bi, bi + 1);
      s = read_examples(&j, bi * j.batch, rows, in_buf);
      if (!s && rows < j.batch)
        memset(in_buf + (size_t)rows * j.in_row, 0, (size_t)(j.batch - rows) * j.in_row);
      if (!s) s = oc_context_run(ctx, j.entry);
      const void *out;
      size_t bytes;
      if (!s) s = oc_context_output(ctx, j.entry, j.out_index, &out, &bytes);
      if (!s) {
        memcpy(round + have, out, (size_t)rows * j.out_row);
        have += (size_t)rows * j.out_row;
      }
    }
    if ((s = agree(comm, s, rep))) goto done;
    for (int r = 0; r < comm->size; r++) {
      int64_t first;
      counts[r] = round_part(&j, r, per_round, k, &first);
    }
    if (oc_mpi_gatherv(comm, round, have, gathered, counts, 0)) {
      s = comm_error("gathering the embeddings");
      rep->known = 0;
      rep->print = 1;
      goto done;
    }
    size_t at = 0;
    for (int r = 0; leader && r < comm->size && !s; r++) {
      int64_t first;
      round_part(&j, r, per_round, k, &first);
      if (counts[r])
        s = oc_atomic_file_pwrite(&emb, gathered + at, counts[r],
                                  header_len + (uint64_t)first * j.out_row);
      at += counts[r];
    }
  }

  /* 4. rank 0 puts the files in place; every rank learns whether it did. */
  if (!s && leader) {
    if (man.path) s = write_manifest(&j, &man);
    if (!s) s = oc_atomic_file_finish(&emb);
    if (!s && man.path) s = oc_atomic_file_finish(&man);
    if (!s) s = oc_atomic_file_commit(&emb);
    if (!s && man.path) {
      s = oc_atomic_file_commit(&man);
      if (s) remove(o->embeddings_path); /* not one without the other */
    }
  }
  if ((s = agree(comm, s, rep))) goto done;
  rep->examples = j.examples;
  rep->files = j.files.n;
  rep->batches = j.batches;
  rep->batch = j.batch;
  rep->my_batches = b1 - b0;
  rep->seconds = now_s() - t0;
done:
  oc_atomic_file_discard(&emb);
  oc_atomic_file_discard(&man);
  oc_host_tensor_free(&j.cur_t);
  listing_free(&j.files);
  free(j.start);
  free(round);
  free(gathered);
  free(counts);
  return s;
}
