/*
 * `onnxc --inspect FILE`: a text summary of a model or a plan (inputs,
 * outputs, op histogram, parameter count and sizes). Returns the text; the
 * CLI prints it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "import.h"
#include "train.h"
#include "inspect.h"
#include "plan_format.h"
#include "tensor_file.h"

typedef struct sb_s {
  char *buf;
  size_t len, cap;
  int failed;
} sb_t;

static void sb_printf(sb_t *sb, const char *fmt, ...) OC_PRINTF(2, 3);
static void sb_printf(sb_t *sb, const char *fmt, ...) {
  if (sb->failed) return;
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  if (sb->len + (size_t)n + 1 > sb->cap) {
    size_t cap = (sb->cap + (size_t)n + 1) * 2;
    char *nb = realloc(sb->buf, cap);
    if (!nb) {
      sb->failed = 1;
      va_end(ap);
      return;
    }
    sb->buf = nb;
    sb->cap = cap;
  }
  vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
  sb->len += (size_t)n;
  va_end(ap);
}

static void sb_type(sb_t *sb, const char *name, int dtype, int rank, const int64_t *dims,
                    char *const *params) {
  sb_printf(sb, "  %-32s %s[", name, oc_dtype_name(dtype));
  for (int d = 0; d < rank; d++) {
    if (params && params[d])
      sb_printf(sb, d ? ",%s" : "%s", params[d]);
    else
      sb_printf(sb, d ? ",%lld" : "%lld", (long long)dims[d]);
  }
  sb_printf(sb, "]\n");
}

static void human_bytes(sb_t *sb, uint64_t b) {
  if (b >= (1u << 20))
    sb_printf(sb, "%.1f MiB", (double)b / (1 << 20));
  else if (b >= 1024)
    sb_printf(sb, "%.1f KiB", (double)b / 1024);
  else
    sb_printf(sb, "%llu B", (unsigned long long)b);
}

typedef struct count_s {
  const char *name;
  int n;
} count_t;

static int by_count(const void *a, const void *b) {
  const count_t *x = a, *y = b;
  if (x->n != y->n) return y->n - x->n;
  return strcmp(x->name, y->name);
}

static void histogram(sb_t *sb, const char **names, int n) {
  count_t *c = calloc((size_t)n + 1, sizeof(count_t));
  if (!c) {
    sb->failed = 1;
    return;
  }
  int m = 0;
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < m && strcmp(c[j].name, names[i]) != 0) j++;
    if (j == m) c[m++].name = names[i];
    c[j].n++;
  }
  qsort(c, (size_t)m, sizeof(count_t), by_count);
  for (int j = 0; j < m; j++) sb_printf(sb, "  %-32s %d\n", c[j].name, c[j].n);
  free(c);
}

static oc_status_t inspect_model(const char *path, const void *data, size_t n, const char *dir,
                                 sb_t *sb) {
  oc_graph_t *g = NULL;
  OC_RETURN_IF_ERROR(oc_import_model(data, n, dir, NULL, &g));
  sb_printf(sb, "model: %s\n", path);
  sb_printf(sb, "producer: %s, ir_version %lld, opset %lld\n", g->producer ? g->producer : "",
            (long long)g->ir_version, (long long)g->opset);
  sb_printf(sb, "inputs (%d):\n", g->n_inputs);
  for (int i = 0; i < g->n_inputs; i++) {
    const oc_value_t *v = &g->values[g->inputs[i]];
    sb_type(sb, v->name, v->type.dtype, v->type.rank, v->type.dims, v->dim_params);
  }
  sb_printf(sb, "outputs (%d):\n", g->n_outputs);
  for (int i = 0; i < g->n_outputs; i++) sb_printf(sb, "  %s\n", g->values[g->outputs[i]].name);
  uint64_t n_values = 0, bytes = 0;
  int n_init = 0;
  for (int v = 0; v < g->n_values; v++) {
    if (!g->values[v].is_initializer) continue;
    n_init++;
    n_values += (uint64_t)oc_tensor_numel(&g->values[v].type);
    bytes += oc_tensor_bytes(&g->values[v].type);
  }
  sb_printf(sb, "initializers: %d, %llu parameters, ", n_init, (unsigned long long)n_values);
  human_bytes(sb, bytes);
  sb_printf(sb, "\nnodes: %d\nop histogram:\n", g->n_nodes);
  const char **names = malloc(sizeof(char *) * (size_t)(g->n_nodes + 1));
  if (names) {
    for (int i = 0; i < g->n_nodes; i++) names[i] = g->nodes[i].op_type;
    histogram(sb, names, g->n_nodes);
    free(names);
  }
  /* What --train would train by default. */
  oc_train_options_t topt;
  memset(&topt, 0, sizeof topt);
  oc_name_set_t trained = {0}, state = {0};
  oc_status_t s = oc_train_select(g, &topt, &trained, &state);
  if (!s) {
    uint64_t n_params = 0;
    for (int i = 0; i < trained.n; i++)
      n_params += (uint64_t)oc_tensor_numel(&g->values[oc_graph_find(g, trained.names[i])].type);
    sb_printf(sb, "trainable with --train (%d initializers, %llu parameters; adjust with --freeze / "
              "--trainable):\n", trained.n, (unsigned long long)n_params);
    for (int i = 0; i < trained.n; i++) sb_printf(sb, "  %s\n", trained.names[i]);
    int n_stats = state.n - trained.n;
    if (n_stats > 0) {
      sb_printf(sb, "BatchNorm running statistics (state, not trained): %d\n", n_stats);
      for (int i = 0; i < state.n; i++)
        if (!oc_name_set_has(&trained, state.names[i])) sb_printf(sb, "  %s\n", state.names[i]);
    }
  } else {
    sb_printf(sb, "trainable with --train: none (%s)\n", oc_status_message(s));
    oc_status_free(s);
  }
  oc_name_set_free(&trained);
  oc_name_set_free(&state);
  oc_graph_free(g);

  /* Values worth naming for --output / --embed-output: 2-D float values
   * made by the ops that end encoders and projection heads. */
  oc_compiled_t *c = NULL;
  s = oc_compile_memory(data, n, dir, path, NULL, &c);
  if (s) {
    sb_printf(sb, "embedding candidates: unavailable (%s)\n", oc_status_message(s));
    oc_status_free(s);
    return OC_OK;
  }
  const oc_graph_t *lg = c->entries[0].graph;
  sb_printf(sb, "embedding candidates (2-D float values from Gemm, MatMul, Flatten, pooling or "
            "normalization; name one with --output or --embed-output):\n");
  int shown = 0;
  for (int i = 0; i < lg->n_nodes && shown < 40; i++) {
    const oc_node_t *nd = &lg->nodes[i];
    static const char *const ops[] = {"Gemm", "MatMul", "Flatten", "GlobalAveragePool",
                                      "ReduceMean", "Div", "LpNormalization", "Reshape"};
    int op_ok = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) op_ok |= !strcmp(nd->op_type, ops[k]);
    if (!op_ok || nd->n_out < 1 || nd->out[0] < 0) continue;
    const oc_value_t *v = &lg->values[nd->out[0]];
    if (!v->known || v->type.dtype != OC_DTYPE_FLOAT32 || v->type.rank != 2) continue;
    sb_printf(sb, "  %-48s float32[%lld,%lld]  (%s)\n", v->name, (long long)v->type.dims[0],
              (long long)v->type.dims[1], nd->op_type);
    shown++;
  }
  oc_compiled_free(c);
  return OC_OK;
}

static oc_status_t inspect_plan(const char *path, sb_t *sb) {
  oc_plan_t *plan = NULL;
  OC_RETURN_IF_ERROR(oc_plan_open_file(path, NULL, &plan));
  sb_printf(sb, "plan: %s (format version %u)\n", path, oc_plan_format_version(plan));
  for (int e = 0; e < oc_plan_entry_count(plan); e++) {
    sb_printf(sb, "entry point '%s':\n", oc_plan_entry_name(plan, e));
    sb_printf(sb, " inputs (%d):\n", oc_plan_input_count(plan, e));
    for (int i = 0; i < oc_plan_input_count(plan, e); i++) {
      oc_tensor_info_t info;
      if (oc_plan_input_info(plan, e, i, &info) == OC_OK)
        sb_type(sb, info.name, info.dtype, info.rank, info.dims, NULL);
    }
    sb_printf(sb, " outputs (%d):\n", oc_plan_output_count(plan, e));
    for (int i = 0; i < oc_plan_output_count(plan, e); i++) {
      oc_tensor_info_t info;
      if (oc_plan_output_info(plan, e, i, &info) == OC_OK)
        sb_type(sb, info.name, info.dtype, info.rank, info.dims, NULL);
    }
    sb_printf(sb, " arena: ");
    human_bytes(sb, oc_plan_arena_bytes(plan, e));
    sb_printf(sb, " (%zu bytes)\n", oc_plan_arena_bytes(plan, e));
    int n = oc_plan_instruction_count(plan, e);
    sb_printf(sb, " instructions: %d\n op histogram:\n", n);
    const char **names = malloc(sizeof(char *) * (size_t)(n + 1));
    if (names) {
      for (int i = 0; i < n; i++) names[i] = oc_op_get(oc_plan_instruction_op(plan, e, i))->name;
      histogram(sb, names, n);
      free(names);
    }
  }
  uint64_t params = 0, bytes = 0;
  oc_plan_constant_stats(plan, &params, &bytes);
  sb_printf(sb, "constants: %llu values, ", (unsigned long long)params);
  human_bytes(sb, bytes);
  sb_printf(sb, "\n");
  oc_plan_release(plan);
  return OC_OK;
}

oc_status_t oc_inspect_file(const char *path, char **out_text) {
  *out_text = NULL;
  void *data = NULL;
  size_t n = 0;
  OC_RETURN_IF_ERROR(oc_file_read_all(path, &data, &n));
  sb_t sb = {0};
  oc_status_t s;
  if (n >= 8 && memcmp(data, OC_PLAN_MAGIC, 8) == 0) {
    free(data);
    s = inspect_plan(path, &sb);
  } else {
    char *dir = oc_strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
      *slash = 0;
    else if (dir)
      strcpy(dir, ".");
    s = inspect_model(path, data, n, dir, &sb);
    free(dir);
    free(data);
    if (s) s = oc_status_wrap(s, "%s: ", path);
  }
  if (!s && sb.failed) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  if (s) {
    free(sb.buf);
    return s;
  }
  *out_text = sb.buf;
  return OC_OK;
}
