/*
 * conformance: runs ONNX backend node tests through the compiler and the
 * runtime, each case isolated in a child process.
 *
 *   conformance DIR [--filter SUBSTR] [--verbose] [--table] [--timeout SEC]
 *
 * DIR holds one folder per case (model.onnx + test_data_set_N/input_K.pb,
 * output_K.pb), as ONNX ships them. For each case, in name order:
 *
 *   1. compile model.onnx in-process (default options), serialize the plan,
 *      open it from memory, create a context, find entry "embed";
 *   2. bind every test_data_set_N/input_K.pb (by TensorProto name, else by
 *      position; dtype and byte size must match), run, and compare every
 *      output_K.pb (by name, else position) the way ONNX's runner does: same
 *      shape and dtype, and |out - ref| <= atol + rtol*|ref| with rtol 1e-3,
 *      atol 1e-7 for float32 and double (NaN matches NaN, an infinity only
 *      itself); exact for ints and bool;
 *   3. if the compile with inputs bound at run time fails, retry once per
 *      data set with every graph input bound to that data set's value as a
 *      compile-time constant (node tests feed e.g. Reshape's shape as a
 *      graph input; onnxc needs such values at compile time).
 *
 * One exception to step 2: a model that is a single Dropout node in training
 * mode with ratio > 0 draws a random mask, which ONNX's expected outputs took
 * from numpy's generator and onnxc does not (and should not) reproduce. Such
 * cases get a property check instead: every element of y is 0 or
 * x / (1 - ratio) (rtol 1e-6), the mask output (if any) agrees with y, and
 * the kept fraction is within 5 standard deviations of 1 - ratio. They print
 * as "PASS name (property check: random dropout)".
 *
 * Outcomes: PASS; FAIL (compiled but wrong numbers, a run-time error, a
 * compile error other than UNSUPPORTED, a crash or a timeout); UNSUPPORTED
 * (the compiler refused with OC_STATUS_UNSUPPORTED). A case runs in a forked
 * child that reports one line on a pipe plus its exit code, so a crash or a
 * hang fails only that case.
 *
 * Prints one line per case, with --table a per-op table (a case counts under
 * every op type of its model), and last "N passed, N failed, N unsupported".
 * Exit status: 0 iff no case failed; 2 on a usage error or an unreadable DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compile.h"
#include "onnx/onnx.pb-c.h"
#include "onnxc/onnxc.h"
#include "tensor_file.h"

#define CONF_RTOL 1e-3
#define CONF_ATOL 1e-7
#define CONF_ENTRY "embed"
#define CONF_MSG_MAX 1024
#define CONF_MAX_FILES 64 /* input_K.pb / output_K.pb per data set */
#define ONNX_DOUBLE 11     /* TensorProto.DOUBLE: compared with the float32 rule */

enum { OUT_PASS = 0, OUT_FAIL = 1, OUT_UNSUPPORTED = 2 };

static int g_verbose;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Formats into msg (truncating) and returns OUT_FAIL, for `return fail(...)`. */
static int fail(char *msg, size_t n, const char *fmt, ...) OC_PRINTF(3, 4);
static int fail(char *msg, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, n, fmt, ap);
  va_end(ap);
  return OUT_FAIL;
}

/* "CODE: message" of |st| into buf; frees |st|. */
static const char *status_take(oc_status_t st, char *buf, size_t n) {
  snprintf(buf, n, "%s: %s", oc_status_code_name(oc_status_code(st)), oc_status_message(st));
  oc_status_free(st);
  return buf;
}

/* Replaces line breaks and tabs by spaces, so a message stays on one line. */
static void one_line(char *s) {
  for (; *s; s++)
    if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
}

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  if (!p) {
    perror("conformance: malloc");
    exit(2);
  }
  snprintf(p, n, "%s/%s", a, b);
  return p;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct strlist_s {
  char **v;
  int n, cap;
} strlist_t;

static void strlist_add(strlist_t *l, const char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
    if (!l->v) {
      perror("conformance: realloc");
      exit(2);
    }
  }
  l->v[l->n] = strdup(s);
  if (!l->v[l->n]) {
    perror("conformance: strdup");
    exit(2);
  }
  l->n++;
}

static int strlist_find(const strlist_t *l, const char *s) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0) return i;
  return -1;
}

static void strlist_free(strlist_t *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Sorted names of the entries of |dir| that are folders and start with
 * |prefix| (and, when |need| is non-NULL, contain the file |need|). */
static int list_dirs(const char *dir, const char *prefix, const char *need, strlist_t *out) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    char *p = path_join(dir, e->d_name);
    int ok = is_dir(p);
    if (ok && need) {
      char *f = path_join(p, need);
      ok = is_file(f);
      free(f);
    }
    free(p);
    if (ok) strlist_add(out, e->d_name);
  }
  closedir(d);
  if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The model: op types and graph inputs                                     */
/* ------------------------------------------------------------------------ */

/* The single Dropout node of a model that has nothing else (see the header):
 * its value names and, where the model fixes them, its ratio and mode. */
typedef struct dropout_info_s {
  int single;          /* the model is one default-domain Dropout node */
  int64_t opset;       /* default-domain opset */
  char *x, *y, *mask;  /* value names (mask NULL when absent) */
  char *ratio_in;      /* opset >= 12: the ratio / training_mode inputs (NULL: */
  char *training_in;   /* absent) */
  int has_ratio_init, has_training_init; /* those inputs are initializers: */
  double ratio_init, training_init;      /* their values */
  double ratio_attr;   /* opset < 12: attribute ratio (default 0.5) */
  int64_t is_test;     /* opset < 7: attribute is_test (default 0) */
} dropout_info_t;

typedef struct model_info_s {
  strlist_t ops;    /* distinct op types ("domain:Op" outside ONNX's domain) */
  strlist_t inputs; /* graph inputs that are not initializers, in order */
  dropout_info_t dropout;
} model_info_t;

static char *dup_or_null(const char *s) { return s && s[0] ? strdup(s) : NULL; }

/* The first value of a scalar initializer as a double (float, double, bool
 * and integer types); 0 when it holds none. */
static double initializer_scalar(const Onnx__TensorProto *t) {
  const uint8_t *raw = t->raw_data.data;
  size_t nraw = t->raw_data.len;
  switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
      if (t->n_float_data) return t->float_data[0];
      if (nraw >= 4) {
        float f;
        memcpy(&f, raw, 4);
        return f;
      }
      return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
      if (t->n_double_data) return t->double_data[0];
      if (nraw >= 8) {
        double d;
        memcpy(&d, raw, 8);
        return d;
      }
      return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
      if (t->n_int64_data) return (double)t->int64_data[0];
      if (nraw >= 8) {
        int64_t v;
        memcpy(&v, raw, 8);
        return (double)v;
      }
      return 0;
    default: /* bool and the small integer types */
      if (t->n_int32_data) return t->int32_data[0];
      if (nraw >= 1) return raw[0];
      return 0;
  }
}

/* Fills mi->dropout from a graph made of one Dropout node. */
static void dropout_info_read(const Onnx__ModelProto *m, dropout_info_t *di) {
  const Onnx__GraphProto *g = m->graph;
  if (g->n_node != 1) return;
  const Onnx__NodeProto *nd = g->node[0];
  const char *dom = nd->domain ? nd->domain : "";
  if ((dom[0] && strcmp(dom, "ai.onnx") != 0) || !nd->op_type || strcmp(nd->op_type, "Dropout"))
    return;
  di->opset = 0;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const char *d = m->opset_import[i]->domain ? m->opset_import[i]->domain : "";
    if (!d[0] || !strcmp(d, "ai.onnx")) di->opset = m->opset_import[i]->version;
  }
  if (nd->n_input < 1 || nd->n_output < 1) return;
  di->single = 1;
  di->x = dup_or_null(nd->input[0]);
  di->y = dup_or_null(nd->output[0]);
  di->mask = nd->n_output > 1 ? dup_or_null(nd->output[1]) : NULL;
  di->ratio_in = nd->n_input > 1 ? dup_or_null(nd->input[1]) : NULL;
  di->training_in = nd->n_input > 2 ? dup_or_null(nd->input[2]) : NULL;
  di->ratio_attr = 0.5;
  di->is_test = 0;
  for (size_t i = 0; i < nd->n_attribute; i++) {
    const Onnx__AttributeProto *a = nd->attribute[i];
    if (!a->name) continue;
    if (!strcmp(a->name, "ratio")) di->ratio_attr = a->f;
    if (!strcmp(a->name, "is_test")) di->is_test = a->i;
  }
  for (size_t j = 0; j < g->n_initializer; j++) {
    const Onnx__TensorProto *t = g->initializer[j];
    if (!t->name) continue;
    if (di->ratio_in && !strcmp(t->name, di->ratio_in)) {
      di->has_ratio_init = 1;
      di->ratio_init = initializer_scalar(t);
    }
    if (di->training_in && !strcmp(t->name, di->training_in)) {
      di->has_training_init = 1;
      di->training_init = initializer_scalar(t);
    }
  }
}

static void dropout_info_free(dropout_info_t *di) {
  free(di->x);
  free(di->y);
  free(di->mask);
  free(di->ratio_in);
  free(di->training_in);
  memset(di, 0, sizeof *di);
}

static int model_info_read(const char *path, model_info_t *mi, char *msg, size_t n) {
  void *data = NULL;
  size_t bytes = 0;
  char buf[CONF_MSG_MAX];
  oc_status_t st = oc_file_read_all(path, &data, &bytes);
  if (st) return fail(msg, n, "%s", status_take(st, buf, sizeof buf));
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, bytes, data);
  free(data);
  if (!m || !m->graph) {
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    return fail(msg, n, "%s: not a valid ModelProto", path);
  }
  const Onnx__GraphProto *g = m->graph;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *nd = g->node[i];
    char op[256];
    const char *dom = nd->domain ? nd->domain : "";
    if (dom[0] && strcmp(dom, "ai.onnx") != 0)
      snprintf(op, sizeof op, "%s:%s", dom, nd->op_type ? nd->op_type : "?");
    else
      snprintf(op, sizeof op, "%s", nd->op_type ? nd->op_type : "?");
    if (strlist_find(&mi->ops, op) < 0) strlist_add(&mi->ops, op);
  }
  for (size_t i = 0; i < g->n_input; i++) {
    const char *name = g->input[i]->name ? g->input[i]->name : "";
    int init = 0;
    for (size_t j = 0; j < g->n_initializer && !init; j++)
      init = g->initializer[j]->name && strcmp(g->initializer[j]->name, name) == 0;
    if (!init) strlist_add(&mi->inputs, name);
  }
  dropout_info_read(m, &mi->dropout);
  onnx__model_proto__free_unpacked(m, NULL);
  return OUT_PASS;
}

static void model_info_free(model_info_t *mi) {
  strlist_free(&mi->ops);
  strlist_free(&mi->inputs);
  dropout_info_free(&mi->dropout);
}

/* ------------------------------------------------------------------------ */
/* Data sets                                                                */
/* ------------------------------------------------------------------------ */

typedef struct dataset_s {
  char *name; /* "test_data_set_0" */
  oc_host_tensor_t in[CONF_MAX_FILES];
  int n_in;
  oc_host_tensor_t out[CONF_MAX_FILES];
  int n_out;
} dataset_t;

/* Reads PREFIX_0.pb, PREFIX_1.pb, ... until one is missing. */
static int read_tensors(const char *dir, const char *prefix, oc_host_tensor_t *t, int *count,
                        char *msg, size_t n) {
  char buf[CONF_MSG_MAX];
  *count = 0;
  for (int k = 0; k < CONF_MAX_FILES; k++) {
    char file[64];
    snprintf(file, sizeof file, "%s_%d.pb", prefix, k);
    char *p = path_join(dir, file);
    if (!is_file(p)) {
      free(p);
      return OUT_PASS;
    }
    oc_status_t st = oc_tensor_file_read(p, &t[k]);
    free(p);
    if (st) return fail(msg, n, "reading %s: %s", file, status_take(st, buf, sizeof buf));
    (*count)++;
  }
  return OUT_PASS;
}

static void datasets_free(dataset_t *ds, int nd) {
  for (int i = 0; i < nd; i++) {
    for (int k = 0; k < ds[i].n_in; k++) oc_host_tensor_free(&ds[i].in[k]);
    for (int k = 0; k < ds[i].n_out; k++) oc_host_tensor_free(&ds[i].out[k]);
    free(ds[i].name);
  }
  free(ds);
}

static int datasets_read(const char *case_dir, dataset_t **out, int *out_n, char *msg, size_t n) {
  strlist_t names = {0};
  *out = NULL;
  *out_n = 0;
  if (list_dirs(case_dir, "test_data_set_", NULL, &names) != 0)
    return fail(msg, n, "cannot list %s: %s", case_dir, strerror(errno));
  if (names.n == 0) {
    strlist_free(&names);
    return fail(msg, n, "no test_data_set_* folder");
  }
  dataset_t *ds = calloc((size_t)names.n, sizeof *ds);
  if (!ds) return fail(msg, n, "out of memory");
  int rc = OUT_PASS;
  for (int i = 0; i < names.n && rc == OUT_PASS; i++) {
    char *dir = path_join(case_dir, names.v[i]);
    ds[i].name = strdup(names.v[i]);
    char sub[CONF_MSG_MAX];
    rc = read_tensors(dir, "input", ds[i].in, &ds[i].n_in, sub, sizeof sub);
    if (rc == OUT_PASS) rc = read_tensors(dir, "output", ds[i].out, &ds[i].n_out, sub, sizeof sub);
    if (rc == OUT_PASS && ds[i].n_out == 0) {
      snprintf(sub, sizeof sub, "no output_0.pb");
      rc = OUT_FAIL;
    }
    if (rc != OUT_PASS) fail(msg, n, "%s: %s", names.v[i], sub);
    free(dir);
  }
  int count = names.n;
  strlist_free(&names);
  if (rc != OUT_PASS) {
    datasets_free(ds, count);
    return rc;
  }
  *out = ds;
  *out_n = count;
  return OUT_PASS;
}

/* ------------------------------------------------------------------------ */
/* Comparing                                                                */
/* ------------------------------------------------------------------------ */

static const char *shape_str(int rank, const int64_t *dims, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)dims[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* The multi-index of flat element |flat| of a tensor of shape |dims|. */
static const char *index_str(size_t flat, int rank, const int64_t *dims, char *buf, size_t n) {
  int64_t idx[OC_MAX_RANK] = {0};
  for (int i = rank - 1; i >= 0; i--) {
    if (dims[i] > 0) {
      idx[i] = (int64_t)(flat % (size_t)dims[i]);
      flat /= (size_t)dims[i];
    }
  }
  return shape_str(rank, idx, buf, n);
}

static int64_t int_at(int dtype, const void *p, size_t i) {
  switch (dtype) {
    case OC_DTYPE_INT8: return ((const int8_t *)p)[i];
    case OC_DTYPE_UINT8:
    case OC_DTYPE_BOOL: return ((const uint8_t *)p)[i];
    case OC_DTYPE_INT32: return ((const int32_t *)p)[i];
    case OC_DTYPE_INT64: return ((const int64_t *)p)[i];
    default: return 0;
  }
}

static double float_at(int dtype, const void *p, size_t i) {
  return dtype == ONNX_DOUBLE ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* Compares |out| with |ref| (same dtype, shape and size, checked by the
 * caller). */
static int compare_values(const char *what, const void *out, const oc_host_tensor_t *ref,
                          char *msg, size_t n) {
  size_t esize = oc_onnx_dtype_size(ref->dtype);
  size_t count = esize ? ref->bytes / esize : 0;
  size_t bad = 0, first = 0;
  char ib[128], sb[128];
  if (ref->dtype == OC_DTYPE_FLOAT32 || ref->dtype == ONNX_DOUBLE) {
    const char *dt = ref->dtype == OC_DTYPE_FLOAT32 ? "float32" : "double";
    double max_err = 0, worst_ratio = 0;
    size_t worst = 0;
    for (size_t i = 0; i < count; i++) {
      double ov = float_at(ref->dtype, out, i), rv = float_at(ref->dtype, ref->data, i);
      double bound = CONF_ATOL + CONF_RTOL * fabs(rv);
      int ok;
      if (isnan(rv))
        ok = isnan(ov);
      else if (isinf(rv))
        ok = ov == rv;
      else
        ok = !isnan(ov) && fabs(ov - rv) <= bound;
      if (!isnan(rv) && !isinf(rv) && !isnan(ov)) {
        double err = fabs(ov - rv);
        if (err > max_err) max_err = err;
        if (err / bound > worst_ratio) {
          worst_ratio = err / bound;
          worst = i;
        }
      }
      if (!ok) {
        if (bad == 0) first = i;
        bad++;
      }
    }
    if (g_verbose)
      printf("    %s: %s%s max |err| %.3g, worst err/bound %.3g at %s\n", what, dt,
             shape_str(ref->rank, ref->dims, sb, sizeof sb), max_err, worst_ratio,
             index_str(worst, ref->rank, ref->dims, ib, sizeof ib));
    if (bad)
      return fail(msg, n, "%s: %zu of %zu values differ; first at %s: got %.9g, want %.9g "
                  "(max |err| %.3g; rtol %g, atol %g)", what, bad, count,
                  index_str(first, ref->rank, ref->dims, ib, sizeof ib),
                  float_at(ref->dtype, out, first), float_at(ref->dtype, ref->data, first),
                  max_err, CONF_RTOL, CONF_ATOL);
    return OUT_PASS;
  }
  int known_int = ref->dtype == OC_DTYPE_INT8 || ref->dtype == OC_DTYPE_UINT8 ||
                  ref->dtype == OC_DTYPE_BOOL || ref->dtype == OC_DTYPE_INT32 ||
                  ref->dtype == OC_DTYPE_INT64;
  for (size_t i = 0; i < count; i++) {
    if (memcmp((const char *)out + i * esize, (const char *)ref->data + i * esize, esize) != 0) {
      if (bad == 0) first = i;
      bad++;
    }
  }
  if (g_verbose)
    printf("    %s: %s%s %zu of %zu values differ\n", what, oc_dtype_name(ref->dtype),
           shape_str(ref->rank, ref->dims, sb, sizeof sb), bad, count);
  if (!bad) return OUT_PASS;
  if (known_int)
    return fail(msg, n, "%s: %zu of %zu values differ; first at %s: got %lld, want %lld", what,
                bad, count, index_str(first, ref->rank, ref->dims, ib, sizeof ib),
                (long long)int_at(ref->dtype, out, first),
                (long long)int_at(ref->dtype, ref->data, first));
  return fail(msg, n, "%s: %zu of %zu values differ (first at %s)", what, bad, count,
              index_str(first, ref->rank, ref->dims, ib, sizeof ib));
}

/* ------------------------------------------------------------------------ */
/* Random dropout: a property check instead of a comparison                 */
/* ------------------------------------------------------------------------ */

/* Set in the child when a case passed by the property check. */
static int g_property_checked;

/* The data set's tensor for graph input |name| (by name, else by position). */
static const oc_host_tensor_t *dataset_input(const model_info_t *mi, const dataset_t *d,
                                             const char *name) {
  if (!name) return NULL;
  for (int k = 0; k < d->n_in; k++)
    if (d->in[k].name && strcmp(d->in[k].name, name) == 0) return &d->in[k];
  int pos = strlist_find(&mi->inputs, name);
  if (pos >= 0 && pos < d->n_in && !(d->in[pos].name && d->in[pos].name[0])) return &d->in[pos];
  return NULL;
}

/* The first element of |t| as a double. */
static double host_scalar(const oc_host_tensor_t *t) {
  if (!t->bytes) return 0;
  if (t->dtype == OC_DTYPE_FLOAT32 || t->dtype == ONNX_DOUBLE) return float_at(t->dtype, t->data, 0);
  return (double)int_at(t->dtype, t->data, 0);
}

/* Whether the case's model is one Dropout node that runs in training mode
 * with ratio > 0 on data set |d|; sets *ratio and *x (its input data). */
static int random_dropout(const model_info_t *mi, const dataset_t *d, double *ratio,
                          const oc_host_tensor_t **x) {
  const dropout_info_t *di = &mi->dropout;
  if (!di->single) return 0;
  double r;
  int training;
  if (di->opset >= 12) {
    r = 0.5;
    training = 0;
    if (di->ratio_in) {
      const oc_host_tensor_t *t = dataset_input(mi, d, di->ratio_in);
      if (t)
        r = host_scalar(t);
      else if (di->has_ratio_init)
        r = di->ratio_init;
    }
    if (di->training_in) {
      const oc_host_tensor_t *t = dataset_input(mi, d, di->training_in);
      if (t)
        training = host_scalar(t) != 0;
      else if (di->has_training_init)
        training = di->training_init != 0;
    }
  } else {
    r = di->ratio_attr;
    training = di->opset < 7 && di->is_test == 0;
  }
  if (!training || !(r > 0)) return 0;
  *x = dataset_input(mi, d, di->x);
  if (!*x || (*x)->dtype != OC_DTYPE_FLOAT32) return 0;
  *ratio = r;
  return 1;
}

/* Checks y (float32) and mask (may be NULL; same count; bool, or float32
 * 1 / 0 before opset 10) produced from x by dropout with |ratio|; see the
 * header. */
static int dropout_property_check(const float *y, const void *mask_data, int mask_dtype,
                                  const float *x, size_t count, double ratio, char *msg,
                                  size_t n) {
  size_t decided = 0, kept = 0;
  uint8_t mbuf[1], *mask = mask_data ? mbuf : NULL;
  for (size_t i = 0; i < count; i++) {
    if (mask) {
      if (mask_dtype == OC_DTYPE_BOOL) {
        mbuf[0] = ((const uint8_t *)mask_data)[i];
      } else {
        float f = ((const float *)mask_data)[i];
        mbuf[0] = f == 1.0f ? 1 : f == 0.0f ? 0 : 2;
      }
    }
    double want = ratio < 1 ? (double)x[i] / (1.0 - ratio) : 0.0;
    int is_zero = y[i] == 0.0f;
    int is_scaled = (isnan(want) && isnan(y[i])) || (isinf(want) && (double)y[i] == want) ||
                    fabs((double)y[i] - want) <= 1e-6 * fabs(want);
    if (!is_zero && !is_scaled)
      return fail(msg, n, "dropout element %zu: got %.9g; want 0 or x / (1 - ratio) = %.9g", i,
                  y[i], want);
    if (mask) {
      if (mask[0] > 1) return fail(msg, n, "dropout mask element %zu is not 0 or 1", i);
      if (mask[0] ? !is_scaled : !is_zero)
        return fail(msg, n, "dropout element %zu: mask %u but y = %.9g (x / (1 - ratio) = %.9g)",
                    i, mask[0], y[i], want);
    }
    /* Elements with x = 0 cannot tell kept from dropped without a mask. */
    if (mask || want != 0.0) {
      decided++;
      kept += mask ? mask[0] : !is_zero;
    }
  }
  if (decided > 0) {
    double p = 1.0 - ratio, mean = (double)decided * p;
    double sd = sqrt((double)decided * p * (1.0 - p));
    if (fabs((double)kept - mean) > 5.0 * sd + 1e-9)
      return fail(msg, n, "dropout kept %zu of %zu elements; expected %.1f +- 5 * %.2f (ratio %g)",
                  kept, decided, mean, sd, ratio);
  }
  return OUT_PASS;
}

/* ------------------------------------------------------------------------ */
/* Running one compiled model                                               */
/* ------------------------------------------------------------------------ */

/* Binds the inputs of |d|, runs and compares the outputs. */
static int run_dataset(const oc_plan_t *plan, oc_context_t *ctx, int entry,
                       const model_info_t *mi, const dataset_t *d, char *msg, size_t n) {
  char buf[CONF_MSG_MAX], sb[128], sb2[128], what[300];
  int n_plan_in = oc_plan_input_count(plan, entry);
  int bound[OC_COMPILE_MAX_OUTPUTS + CONF_MAX_FILES] = {0};
  if (n_plan_in < 0 || n_plan_in > (int)(sizeof bound / sizeof bound[0]))
    return fail(msg, n, "plan has %d inputs", n_plan_in);

  for (int k = 0; k < d->n_in; k++) {
    const oc_host_tensor_t *t = &d->in[k];
    const char *name = t->name && t->name[0] ? t->name : NULL;
    int idx = name ? oc_plan_input_index(plan, entry, name) : -1;
    if (idx < 0) {
      /* A graph input the plan does not take: unused, or bound at compile time. */
      if (name && strlist_find(&mi->inputs, name) >= 0) continue;
      if (k < n_plan_in) idx = k;
    }
    if (idx < 0)
      return fail(msg, n, "input_%d.pb ('%s') matches no input of the plan", k,
                  name ? name : "");
    if (bound[idx]) return fail(msg, n, "input_%d.pb binds plan input %d a second time", k, idx);
    oc_tensor_info_t info;
    oc_status_t st = oc_plan_input_info(plan, entry, idx, &info);
    if (st) return fail(msg, n, "plan input %d: %s", idx, status_take(st, buf, sizeof buf));
    if ((int)info.dtype != t->dtype)
      return fail(msg, n, "input '%s': the file is %s, the plan wants %s", info.name,
                  oc_dtype_name(t->dtype), oc_dtype_name(info.dtype));
    if (info.bytes != t->bytes)
      return fail(msg, n, "input '%s': the file has %zu bytes %s, the plan wants %zu bytes %s",
                  info.name, t->bytes, shape_str(t->rank, t->dims, sb, sizeof sb), info.bytes,
                  shape_str(info.rank, info.dims, sb2, sizeof sb2));
    st = oc_context_set_input(ctx, entry, idx, t->data, t->bytes);
    if (st) return fail(msg, n, "set input '%s': %s", info.name, status_take(st, buf, sizeof buf));
    bound[idx] = 1;
  }
  for (int i = 0; i < n_plan_in; i++) {
    if (bound[i]) continue;
    oc_tensor_info_t info;
    oc_status_t st = oc_plan_input_info(plan, entry, i, &info);
    if (st) return fail(msg, n, "plan input %d: %s", i, status_take(st, buf, sizeof buf));
    return fail(msg, n, "plan input '%s' has no input_K.pb", info.name);
  }

  oc_status_t st = oc_context_run(ctx, entry);
  if (st) return fail(msg, n, "run: %s", status_take(st, buf, sizeof buf));

  int n_plan_out = oc_plan_output_count(plan, entry);
  double drop_ratio = 0;
  const oc_host_tensor_t *drop_x = NULL;
  int drop = random_dropout(mi, d, &drop_ratio, &drop_x);
  const void *drop_y = NULL, *drop_mask = NULL;
  int drop_mask_dtype = OC_DTYPE_BOOL;
  for (int k = 0; k < d->n_out; k++) {
    const oc_host_tensor_t *r = &d->out[k];
    const char *name = r->name && r->name[0] ? r->name : NULL;
    int idx = name ? oc_plan_output_index(plan, entry, name) : -1;
    if (idx < 0 && k < n_plan_out) idx = k;
    if (idx < 0)
      return fail(msg, n, "output_%d.pb ('%s'): the plan has %d outputs", k, name ? name : "",
                  n_plan_out);
    oc_tensor_info_t info;
    st = oc_plan_output_info(plan, entry, idx, &info);
    if (st) return fail(msg, n, "plan output %d: %s", idx, status_take(st, buf, sizeof buf));
    snprintf(what, sizeof what, "output %d '%s'", idx, info.name ? info.name : "");
    if ((int)info.dtype != r->dtype)
      return fail(msg, n, "%s: dtype %s, want %s", what, oc_dtype_name(info.dtype),
                  oc_dtype_name(r->dtype));
    int same_shape = info.rank == r->rank;
    for (int i = 0; same_shape && i < r->rank; i++) same_shape = info.dims[i] == r->dims[i];
    if (!same_shape)
      return fail(msg, n, "%s: shape %s, want %s", what,
                  shape_str(info.rank, info.dims, sb, sizeof sb),
                  shape_str(r->rank, r->dims, sb2, sizeof sb2));
    const void *data = NULL;
    size_t bytes = 0;
    st = oc_context_output(ctx, entry, idx, &data, &bytes);
    if (st) return fail(msg, n, "%s: %s", what, status_take(st, buf, sizeof buf));
    if (bytes != r->bytes)
      return fail(msg, n, "%s: %zu bytes, want %zu", what, bytes, r->bytes);
    if (bytes && !data) return fail(msg, n, "%s: no data", what);
    if (drop && info.name && drop_x->bytes == bytes * (r->dtype == OC_DTYPE_BOOL ? 4 : 1)) {
      /* y, and the mask: bool, or (before opset 10) float32 1 / 0 */
      if (mi->dropout.y && !strcmp(info.name, mi->dropout.y) && r->dtype == OC_DTYPE_FLOAT32) {
        drop_y = data;
        continue;
      }
      if (mi->dropout.mask && !strcmp(info.name, mi->dropout.mask) &&
          (r->dtype == OC_DTYPE_BOOL || (r->dtype == OC_DTYPE_FLOAT32 && mi->dropout.opset < 10))) {
        drop_mask = data;
        drop_mask_dtype = r->dtype;
        continue;
      }
    }
    int rc = compare_values(what, data, r, msg, n);
    if (rc != OUT_PASS) return rc;
  }
  if (drop_y) {
    int rc = dropout_property_check(drop_y, drop_mask, drop_mask_dtype, drop_x->data,
                                    drop_x->bytes / 4, drop_ratio, msg, n);
    if (rc != OUT_PASS) return rc;
    g_property_checked = 1;
  } else if (drop_mask) {
    return fail(msg, n, "random dropout: the mask has no y to check against");
  }
  return OUT_PASS;
}

/* Serializes |c|, opens the plan from memory and runs |nd| data sets. */
static int run_compiled(const oc_compiled_t *c, const model_info_t *mi, const dataset_t *ds,
                        int nd, char *msg, size_t n) {
  char buf[CONF_MSG_MAX];
  uint8_t *bytes = NULL;
  size_t n_bytes = 0;
  oc_status_t st = oc_plan_serialize(c, &bytes, &n_bytes);
  if (st) {
    int unsupported = oc_status_code(st) == OC_STATUS_UNSUPPORTED;
    snprintf(msg, n, "serialize: %s", status_take(st, buf, sizeof buf));
    return unsupported ? OUT_UNSUPPORTED : OUT_FAIL;
  }
  oc_plan_t *plan = NULL;
  st = oc_plan_open_memory(bytes, n_bytes, NULL, &plan);
  free(bytes);
  if (st) return fail(msg, n, "plan open: %s", status_take(st, buf, sizeof buf));
  int rc = OUT_PASS, entry = -1;
  oc_context_t *ctx = NULL;
  st = oc_plan_find_entry(plan, CONF_ENTRY, &entry);
  if (st) rc = fail(msg, n, "entry '%s': %s", CONF_ENTRY, status_take(st, buf, sizeof buf));
  if (rc == OUT_PASS) {
    st = oc_context_create(plan, NULL, &ctx);
    if (st) rc = fail(msg, n, "context: %s", status_take(st, buf, sizeof buf));
  }
  for (int i = 0; i < nd && rc == OUT_PASS; i++) {
    if (g_verbose) printf("    %s\n", ds[i].name);
    char sub[CONF_MSG_MAX];
    rc = run_dataset(plan, ctx, entry, mi, &ds[i], sub, sizeof sub);
    if (rc != OUT_PASS) {
      if (nd > 1)
        fail(msg, n, "%s: %s", ds[i].name, sub);
      else
        snprintf(msg, n, "%s", sub);
    }
  }
  if (ctx) oc_context_release(ctx);
  oc_plan_release(plan);
  return rc;
}

/* Compiles the model at |path| with every graph input of |d| bound as a
 * compile-time constant (matched by name, else by position). */
static oc_status_t compile_with_const_inputs(const char *path, const model_info_t *mi,
                                             const dataset_t *d, oc_compiled_t **out) {
  static oc_tensor_t values[CONF_MAX_FILES];
  oc_compile_options_t opt;
  oc_compile_options_init(&opt);
  for (int k = 0; k < d->n_in && opt.n_const_inputs < OC_COMPILE_MAX_OUTPUTS; k++) {
    const oc_host_tensor_t *t = &d->in[k];
    const char *name = NULL;
    if (t->name && strlist_find(&mi->inputs, t->name) >= 0)
      name = t->name;
    else if (k < mi->inputs.n)
      name = mi->inputs.v[k];
    if (!name) continue;
    int dup = 0;
    for (int i = 0; i < opt.n_const_inputs && !dup; i++)
      dup = strcmp(opt.const_input_names[i], name) == 0;
    if (dup) continue;
    oc_tensor_t *v = &values[opt.n_const_inputs];
    memset(v, 0, sizeof *v);
    v->dtype = t->dtype;
    v->rank = t->rank;
    for (int i = 0; i < t->rank; i++) v->dims[i] = t->dims[i];
    v->data = t->data;
    opt.const_input_names[opt.n_const_inputs] = name;
    opt.const_input_values[opt.n_const_inputs] = v;
    opt.n_const_inputs++;
  }
  return oc_compile_file(path, &opt, out);
}

/* The whole of one case (run in the child). Returns an OUT_* code and a
 * one-line message. */
static int run_case(const char *case_dir, const model_info_t *mi, char *msg, size_t n) {
  char buf[CONF_MSG_MAX];
  char *model = path_join(case_dir, "model.onnx");
  dataset_t *ds = NULL;
  int nd = 0, rc;

  oc_compile_options_t opt;
  oc_compile_options_init(&opt);
  oc_compiled_t *c = NULL;
  oc_status_t st = oc_compile_file(model, &opt, &c);
  if (!st && !c) st = oc_make_status(OC_STATUS_INTERNAL, "oc_compile_file returned no result");

  if (!st) {
    if (g_verbose) printf("    compiled with inputs bound at run time\n");
    rc = datasets_read(case_dir, &ds, &nd, msg, n);
    if (rc == OUT_PASS) rc = run_compiled(c, mi, ds, nd, msg, n);
    oc_compiled_free(c);
    goto done;
  }

  /* The compile failed: retry with the graph inputs as constants, when the
   * model has inputs and the data can be read. */
  int first_code = oc_status_code(st);
  char first[CONF_MSG_MAX], first_msg[CONF_MSG_MAX];
  snprintf(first_msg, sizeof first_msg, "%s", oc_status_message(st));
  status_take(st, first, sizeof first);
  char data_err[CONF_MSG_MAX] = "";
  if (mi->inputs.n > 0 && datasets_read(case_dir, &ds, &nd, data_err, sizeof data_err) == OUT_PASS) {
    if (g_verbose)
      printf("    compile with run-time inputs: %s\n    retrying with inputs as constants\n",
             first);
    rc = OUT_PASS;
    for (int i = 0; i < nd && rc == OUT_PASS; i++) {
      oc_compiled_t *c2 = NULL;
      st = compile_with_const_inputs(model, mi, &ds[i], &c2);
      if (!st && !c2) st = oc_make_status(OC_STATUS_INTERNAL, "oc_compile_file returned no result");
      if (st) {
        if (oc_status_code(st) == OC_STATUS_UNSUPPORTED) {
          snprintf(msg, n, "%s", oc_status_message(st));
          oc_status_free(st);
          rc = OUT_UNSUPPORTED;
        } else {
          rc = fail(msg, n, "compile (inputs as constants): %s", status_take(st, buf, sizeof buf));
        }
        break;
      }
      if (g_verbose) printf("    compiled with inputs as constants (%s)\n", ds[i].name);
      rc = run_compiled(c2, mi, &ds[i], 1, buf, sizeof buf);
      oc_compiled_free(c2);
      if (rc != OUT_PASS) {
        if (nd > 1)
          snprintf(msg, n, "%s: %s", ds[i].name, buf);
        else
          snprintf(msg, n, "%s", buf);
      }
    }
    goto done;
  }
  if (g_verbose && data_err[0]) printf("    no retry: %s\n", data_err);
  if (first_code == OC_STATUS_UNSUPPORTED) {
    snprintf(msg, n, "%s", first_msg);
    rc = OUT_UNSUPPORTED;
  } else {
    rc = fail(msg, n, "compile: %s", first);
  }

done:
  if (ds) datasets_free(ds, nd);
  free(model);
  /* A pass reports how it passed only when it was not a plain comparison. */
  if (rc == OUT_PASS) snprintf(msg, n, "%s", g_property_checked ? "property check: random dropout" : "");
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Isolation: one forked child per case                                     */
/* ------------------------------------------------------------------------ */

static const char *signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGPIPE: return "SIGPIPE";
    default: return NULL;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static int run_isolated(const char *case_dir, const model_info_t *mi, double timeout_s,
                        char *msg, size_t n) {
  int fds[2];
  if (pipe(fds) != 0) return fail(msg, n, "pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return fail(msg, n, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    char m[CONF_MSG_MAX] = "";
    int rc = run_case(case_dir, mi, m, sizeof m);
    write_all(fds[1], m, strlen(m));
    close(fds[1]);
    /* exit, not _exit: flushes stdout, and lets a sanitizer build check the
     * child for leaks (LeakSanitizer then exits 23). */
    exit(rc);
  }
  close(fds[1]);

  char report[CONF_MSG_MAX];
  size_t got = 0;
  double deadline = now_s() + timeout_s;
  int timed_out = 0, status = 0;
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int pr = poll(&p, 1, (int)(left * 1000) + 1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue; /* the deadline check above ends the wait */
    char tmp[512];
    ssize_t r = read(fds[0], tmp, sizeof tmp);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* EOF: the child is done (or closed the pipe) */
    size_t take = (size_t)r;
    if (take > sizeof report - 1 - got) take = sizeof report - 1 - got;
    memcpy(report + got, tmp, take);
    got += take;
  }
  close(fds[0]);
  report[got] = '\0';

  /* Wait for the exit, within what is left of the deadline. */
  while (!timed_out) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return fail(msg, n, "waitpid: %s", strerror(errno));
    if (now_s() >= deadline) {
      timed_out = 1;
      break;
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (timed_out) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return fail(msg, n, "timeout after %g s", timeout_s);
  }
  if (WIFSIGNALED(status)) {
    const char *name = signal_name(WTERMSIG(status));
    if (name) return fail(msg, n, "crashed: %s", name);
    return fail(msg, n, "crashed: signal %d", WTERMSIG(status));
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == OUT_PASS || code == OUT_FAIL || code == OUT_UNSUPPORTED) {
    if (code != OUT_PASS && got == 0) return fail(msg, n, "the child exited %d with no report", code);
    snprintf(msg, n, "%s", report);
    return code;
  }
  return fail(msg, n, "the child exited with status %d%s%s%s", code,
              code == 23 ? " (LeakSanitizer's exit code)" : "", got ? ": " : "", report);
}

/* ------------------------------------------------------------------------ */
/* Per-op table                                                             */
/* ------------------------------------------------------------------------ */

typedef struct op_row_s {
  char *op;
  int count[3]; /* indexed by OUT_* */
} op_row_t;

typedef struct op_table_s {
  op_row_t *rows;
  int n, cap;
} op_table_t;

static void op_table_add(op_table_t *t, const char *op, int outcome) {
  for (int i = 0; i < t->n; i++) {
    if (strcmp(t->rows[i].op, op) == 0) {
      t->rows[i].count[outcome]++;
      return;
    }
  }
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 32;
    t->rows = realloc(t->rows, (size_t)t->cap * sizeof *t->rows);
    if (!t->rows) {
      perror("conformance: realloc");
      exit(2);
    }
  }
  op_row_t *r = &t->rows[t->n++];
  memset(r, 0, sizeof *r);
  r->op = strdup(op);
  r->count[outcome] = 1;
}

static int cmp_row(const void *a, const void *b) {
  return strcmp(((const op_row_t *)a)->op, ((const op_row_t *)b)->op);
}

static void op_table_print(op_table_t *t) {
  if (t->n > 1) qsort(t->rows, (size_t)t->n, sizeof *t->rows, cmp_row);
  printf("\n%-28s %7s %7s %12s\n", "op", "passed", "failed", "unsupported");
  for (int i = 0; i < t->n; i++)
    printf("%-28s %7d %7d %12d\n", t->rows[i].op, t->rows[i].count[OUT_PASS],
           t->rows[i].count[OUT_FAIL], t->rows[i].count[OUT_UNSUPPORTED]);
  printf("\n");
}

static void op_table_free(op_table_t *t) {
  for (int i = 0; i < t->n; i++) free(t->rows[i].op);
  free(t->rows);
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "usage: conformance DIR [--filter SUBSTR] [--verbose] [--table] [--timeout SEC]\n"
          "  Runs every case folder of DIR (model.onnx + test_data_set_N/) through the\n"
          "  compiler and the runtime. Exit status 0 iff no case failed.\n");
}

int main(int argc, char **argv) {
  const char *dir = NULL, *filter = NULL;
  int table = 0;
  double timeout_s = 60;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      filter = argv[++i];
    } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
      g_verbose = 1;
    } else if (strcmp(argv[i], "--table") == 0) {
      table = 1;
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      char *end;
      timeout_s = strtod(argv[++i], &end);
      if (*end || !(timeout_s > 0)) {
        fprintf(stderr, "conformance: bad --timeout '%s'\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' || dir) {
      usage(stderr);
      return 2;
    } else {
      dir = argv[i];
    }
  }
  if (!dir) {
    usage(stderr);
    return 2;
  }

  strlist_t cases = {0};
  if (list_dirs(dir, "", "model.onnx", &cases) != 0) {
    fprintf(stderr, "conformance: cannot read %s: %s\n", dir, strerror(errno));
    return 2;
  }
  if (cases.n == 0) {
    fprintf(stderr, "conformance: no case folder (with model.onnx) in %s\n", dir);
    return 2;
  }

  int counts[3] = {0, 0, 0};
  op_table_t ops = {0};
  for (int i = 0; i < cases.n; i++) {
    const char *name = cases.v[i];
    if (filter && !strstr(name, filter)) continue;
    char *case_dir = path_join(dir, name);
    char *model = path_join(case_dir, "model.onnx");
    char msg[CONF_MSG_MAX] = "";
    model_info_t mi = {0};
    if (g_verbose) printf("%s\n", name);
    int rc = model_info_read(model, &mi, msg, sizeof msg);
    if (rc == OUT_PASS) rc = run_isolated(case_dir, &mi, timeout_s, msg, sizeof msg);
    one_line(msg);
    switch (rc) {
      case OUT_PASS:
        if (msg[0])
          printf("PASS %s (%s)\n", name, msg);
        else
          printf("PASS %s\n", name);
        break;
      case OUT_UNSUPPORTED: printf("UNSUPPORTED %s: %s\n", name, msg); break;
      default: printf("FAIL %s: %s\n", name, msg); rc = OUT_FAIL; break;
    }
    fflush(stdout);
    counts[rc]++;
    for (int k = 0; k < mi.ops.n; k++) op_table_add(&ops, mi.ops.v[k], rc);
    model_info_free(&mi);
    free(model);
    free(case_dir);
  }
  if (table) op_table_print(&ops);
  printf("%d passed, %d failed, %d unsupported\n", counts[OUT_PASS], counts[OUT_FAIL],
         counts[OUT_UNSUPPORTED]);
  op_table_free(&ops);
  strlist_free(&cases);
  return counts[OUT_FAIL] == 0 ? 0 : 1;
}
