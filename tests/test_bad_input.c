/*
 * Bad input to both tools: corrupted and hostile models fed to `onnxc`, and
 * corrupted or tampered plans fed to `onnxrun`. Every case must end with exit
 * status 1, exactly one line on stderr ("onnxc: error: ..." / "onnxrun:
 * error: ..."), no output file left behind, and no crash or sanitizer report
 * (sanitizers are told to exit with other codes, so they cannot pass as 1).
 *
 * Models are made from a valid model by byte-level damage (truncation,
 * flipped bytes, random bytes) and by structural edits through protobuf-c
 * (missing initializers, cycles, huge dims, undefined values, ...). Plans are
 * made from a valid plan by byte-level damage and by metadata edits that keep
 * every checksum valid, so the validator behind the checksums is exercised.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oc_ops.h"
#include "onnx/onnx.pb-c.h"
#include "plan.pb-c.h"
#include "plan_format.h"
#include "tensor_file.h"

extern char **environ;

#define BASE_MODEL ONNXC_TEST_DATA "/reference/a2_simclr_smallcnn/embed/model.onnx"
#define BASE_INPUTS ONNXC_TEST_DATA "/reference/a2_simclr_smallcnn/embed/test_data_set_0"

static char workdir[256];

/* --- running a tool ------------------------------------------------------- */

typedef struct run_result_s {
  int exited, code, signaled, sig;
  char err[4096];
  int err_lines;
} run_result_t;

static run_result_t run_tool(char *const argv[]) {
  run_result_t r = {0};
  char errpath[512];
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", workdir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  /* Sanitizer findings must not look like a clean error exit (1). */
  setenv("ASAN_OPTIONS", "exitcode=86:detect_leaks=1", 1);
  setenv("UBSAN_OPTIONS", "halt_on_error=1:exitcode=87:print_stacktrace=1", 1);
  setenv("LSAN_OPTIONS", "exitcode=88", 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ck_assert_msg(rc == 0, "spawn %s: %s", argv[0], strerror(rc));
  int st;
  waitpid(pid, &st, 0);
  r.exited = WIFEXITED(st);
  r.code = r.exited ? WEXITSTATUS(st) : -1;
  r.signaled = WIFSIGNALED(st);
  r.sig = r.signaled ? WTERMSIG(st) : 0;
  FILE *f = fopen(errpath, "r");
  if (f) {
    size_t n = fread(r.err, 1, sizeof r.err - 1, f);
    r.err[n] = 0;
    fclose(f);
  }
  for (char *p = r.err; *p; p++) r.err_lines += *p == '\n';
  return r;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Nothing but the tool's known files may be in |dir| after a failed run. */
static int stray_files(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -v -x -e stderr.txt -e model.onnx -e plan.bin "
           "-e good.plan -e inputs | grep -q .", dir);
  return system(cmd) == 0;
}

static void expect_clean_failure(const run_result_t *r, const char *tool, const char *what) {
  ck_assert_msg(!r->signaled, "%s: %s crashed with signal %d; stderr: %s", what, tool, r->sig, r->err);
  ck_assert_msg(r->code == 1, "%s: %s exited %d (want 1); stderr: %s", what, tool, r->code, r->err);
  ck_assert_msg(r->err_lines == 1, "%s: %s printed %d lines on stderr: %s", what, tool, r->err_lines,
                r->err);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s: error: ", tool);
  ck_assert_msg(strncmp(r->err, prefix, strlen(prefix)) == 0, "%s: stderr is not '%s...': %s", what,
                prefix, r->err);
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  if (n) ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void *read_file(const char *path, size_t *n) {
  void *buf = NULL;
  oc_status_t s = oc_file_read_all(path, &buf, n);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  return buf;
}

/* Unpacked messages are edited with pointers to static data, so they are
 * allocated from a pool that frees everything at once instead of through
 * protobuf-c's per-field free. */
static void *pool_ptrs[1 << 16];
static int pool_n;
static void *pool_alloc(void *data, size_t size) {
  (void)data;
  void *p = malloc(size ? size : 1);
  ck_assert_int_lt(pool_n, 1 << 16);
  pool_ptrs[pool_n++] = p;
  return p;
}
static void pool_free(void *data, void *p) {
  (void)data;
  (void)p;
}
static ProtobufCAllocator pool = {pool_alloc, pool_free, NULL};
static void pool_release(void) {
  for (int i = 0; i < pool_n; i++) free(pool_ptrs[i]);
  pool_n = 0;
}

/* --- corrupted models --------------------------------------------------------- */

/* Compiles |data| as a model with onnxc and |extra| arguments (NULL
 * terminated; may be NULL). */
static run_result_t run_onnxc(const void *data, size_t n, const char *const *extra) {
  char model[512], plan[512];
  snprintf(model, sizeof model, "%s/model.onnx", workdir);
  snprintf(plan, sizeof plan, "%s/plan.bin", workdir);
  unlink(plan);
  write_file(model, data, n);
  char *argv[16] = {ONNXC_BIN_DIR "/onnxc", model, "-o", plan};
  int argc = 4;
  for (int i = 0; extra && extra[i] && argc < 15; i++) argv[argc++] = (char *)extra[i];
  argv[argc] = NULL;
  return run_tool(argv);
}

/* onnxc fails cleanly on |data| (with |extra| arguments): exit 1, one line
 * containing |expect| (NULL: anything), no plan written. */
static void check_model_fails(const void *data, size_t n, const char *const *extra,
                              const char *expect, const char *what) {
  char plan[512];
  snprintf(plan, sizeof plan, "%s/plan.bin", workdir);
  run_result_t r = run_onnxc(data, n, extra);
  expect_clean_failure(&r, "onnxc", what);
  ck_assert_msg(!expect || strstr(r.err, expect), "%s: the message does not say '%s': %s", what,
                expect, r.err);
  ck_assert_msg(!file_exists(plan), "%s: a plan was written", what);
  ck_assert_msg(!stray_files(workdir), "%s: a temporary file was left behind", what);
}

static void check_model_bytes(const void *data, size_t n, const char *what) {
  check_model_fails(data, n, NULL, NULL, what);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Byte-level damage: truncation, overwritten bytes, random files. */
START_TEST(models_damaged_bytes) {
  size_t n;
  uint8_t *base = read_file(BASE_MODEL, &n);
  int cases = 0;
  size_t cuts[] = {0, 1, 2, 5, 16, 100, n / 4, n / 2, n - 100, n - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    char what[64];
    snprintf(what, sizeof what, "model truncated to %zu bytes", cuts[i]);
    check_model_bytes(base, cuts[i], what);
    cases++;
  }
  uint8_t *rnd = malloc(4096);
  for (int k = 0; k < 6; k++) {
    for (int i = 0; i < 4096; i++) rnd[i] = (uint8_t)rng();
    char what[64];
    snprintf(what, sizeof what, "random bytes #%d", k);
    check_model_bytes(rnd, (size_t)(64 << k) > 4096 ? 4096 : (size_t)(64 << k), what);
    cases++;
  }
  /* 0xFF over tags and lengths at the start of the file (bytes 4-10 and
   * 13-18 hold the producer's name, where any byte is valid). */
  uint8_t *copy = malloc(n);
  size_t flip_at[] = {0, 1, 2, 3, 11, 12, 19, 20, 24, 30};
  for (int k = 0; k < 10; k++) {
    memcpy(copy, base, n);
    size_t at = flip_at[k];
    copy[at] = 0xFF;
    char what[64];
    snprintf(what, sizeof what, "byte %zu set to 0xFF", at);
    check_model_bytes(copy, n, what);
    cases++;
  }
  printf("damaged models: %d cases\n", cases);
  free(rnd);
  free(copy);
  free(base);
}
END_TEST

typedef void (*model_edit_fn)(Onnx__ModelProto *m);

static void check_model_edit(model_edit_fn edit, const char *what) {
  size_t n;
  uint8_t *base = read_file(BASE_MODEL, &n);
  Onnx__ModelProto *m = onnx__model_proto__unpack(&pool, n, base);
  ck_assert_ptr_nonnull(m);
  edit(m);
  size_t len = onnx__model_proto__get_packed_size(m);
  uint8_t *out = malloc(len + 1);
  onnx__model_proto__pack(m, out);
  check_model_bytes(out, len, what);
  free(out);
  pool_release();
  free(base);
}

static Onnx__GraphProto *G(Onnx__ModelProto *m) { return m->graph; }

/* Edits that make the model invalid or hostile. Each keeps the protobuf
 * well-formed so the compiler's own checks are what catch it. */
static void drop_first_initializer(Onnx__ModelProto *m) { G(m)->n_initializer = 0; }
static void drop_graph(Onnx__ModelProto *m) { m->graph = NULL; }
static void no_opset(Onnx__ModelProto *m) { m->n_opset_import = 0; }
static void unknown_op(Onnx__ModelProto *m) { G(m)->node[0]->op_type = "FancyConv"; }
static void custom_domain(Onnx__ModelProto *m) { G(m)->node[0]->domain = "com.example"; }
static void undefined_input(Onnx__ModelProto *m) { G(m)->node[1]->input[0] = "nowhere"; }
static void cycle(Onnx__ModelProto *m) {
  /* node0 reads node1's output; node1 reads node0's. */
  G(m)->node[0]->input[0] = G(m)->node[1]->output[0];
}
static void self_loop(Onnx__ModelProto *m) { G(m)->node[1]->input[0] = G(m)->node[1]->output[0]; }
static void two_producers(Onnx__ModelProto *m) { G(m)->node[1]->output[0] = G(m)->node[0]->output[0]; }
static void output_unproduced(Onnx__ModelProto *m) { G(m)->output[0]->name = "ghost"; }
static void no_outputs(Onnx__ModelProto *m) { G(m)->n_output = 0; }
static int64_t huge_dims[4] = {(int64_t)1 << 40, 3, 3, 3};
static void huge_initializer_dims(Onnx__ModelProto *m) {
  G(m)->initializer[0]->dims = huge_dims;
  G(m)->initializer[0]->n_dims = 4;
}
static int64_t overflow_dims[4] = {(int64_t)1 << 40, (int64_t)1 << 40, 1 << 20, 3};
static void overflowing_initializer_dims(Onnx__ModelProto *m) {
  G(m)->initializer[0]->dims = overflow_dims;
  G(m)->initializer[0]->n_dims = 4;
}
static int64_t neg_dims[1] = {-5};
static void negative_initializer_dim(Onnx__ModelProto *m) {
  G(m)->initializer[0]->dims = neg_dims;
  G(m)->initializer[0]->n_dims = 1;
}
static void raw_data_short(Onnx__ModelProto *m) { G(m)->initializer[0]->raw_data.len -= 4; }
static void wrong_dtype_initializer(Onnx__ModelProto *m) { G(m)->initializer[0]->data_type = 11; }
static void string_initializer(Onnx__ModelProto *m) { G(m)->initializer[0]->data_type = 8; }
static void undefined_dtype_initializer(Onnx__ModelProto *m) { G(m)->initializer[0]->data_type = 0; }
static void duplicate_initializer(Onnx__ModelProto *m) {
  G(m)->initializer[1]->name = G(m)->initializer[0]->name;
}
static Onnx__TensorShapeProto__Dimension huge_dim = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
static Onnx__TensorShapeProto__Dimension *huge_dim_list[4];
static void huge_input_dim(Onnx__ModelProto *m) {
  Onnx__TensorShapeProto *sh = G(m)->input[0]->type->tensor_type->shape;
  for (size_t i = 0; i < sh->n_dim; i++) huge_dim_list[i] = sh->dim[i];
  huge_dim.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
  huge_dim.dim_value = (int64_t)1 << 40;
  huge_dim_list[0] = &huge_dim;
  sh->dim = huge_dim_list;
}
/* Holds nothing, but the stride of axis 0 would be 2^80 elements. */
static Onnx__TensorShapeProto__Dimension empty_dims[4] = {
    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT,
    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT};
static void empty_input_huge_strides(Onnx__ModelProto *m) {
  Onnx__TensorShapeProto *sh = G(m)->input[0]->type->tensor_type->shape;
  const int64_t v[4] = {0, 3, (int64_t)1 << 40, (int64_t)1 << 40};
  for (int i = 0; i < 4; i++) {
    empty_dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    empty_dims[i].dim_value = v[i];
    huge_dim_list[i] = &empty_dims[i];
  }
  sh->dim = huge_dim_list;
  sh->n_dim = 4;
}
static void symbolic_input_dim(Onnx__ModelProto *m) {
  Onnx__TensorShapeProto *sh = G(m)->input[0]->type->tensor_type->shape;
  for (size_t i = 0; i < sh->n_dim; i++) huge_dim_list[i] = sh->dim[i];
  huge_dim.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
  huge_dim.dim_param = "batch";
  huge_dim_list[0] = &huge_dim;
  sh->dim = huge_dim_list;
}
static void input_wrong_rank(Onnx__ModelProto *m) {
  G(m)->input[0]->type->tensor_type->shape->n_dim = 2;
}
static void input_double(Onnx__ModelProto *m) { G(m)->input[0]->type->tensor_type->elem_type = 11; }
static void input_no_shape(Onnx__ModelProto *m) { G(m)->input[0]->type->tensor_type->shape = NULL; }
static void input_no_type(Onnx__ModelProto *m) { G(m)->input[0]->type = NULL; }
static void node_no_op_type(Onnx__ModelProto *m) { G(m)->node[0]->op_type = ""; }
static void conv_missing_weight(Onnx__ModelProto *m) { G(m)->node[0]->n_input = 1; }
static void writes_initializer(Onnx__ModelProto *m) {
  G(m)->node[0]->output[0] = G(m)->initializer[0]->name;
}
static void writes_input(Onnx__ModelProto *m) { G(m)->node[0]->output[0] = G(m)->input[0]->name; }
static Onnx__StringStringEntryProto ext_loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
static Onnx__StringStringEntryProto *ext_list[1] = {&ext_loc};
static void external_traversal(Onnx__ModelProto *m) {
  Onnx__TensorProto *t = G(m)->initializer[0];
  t->has_raw_data = 0;
  t->raw_data.len = 0;
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  ext_loc.key = "location";
  ext_loc.value = "../../../etc/passwd";
  t->external_data = ext_list;
  t->n_external_data = 1;
}
static void external_absolute(Onnx__ModelProto *m) {
  external_traversal(m);
  ext_loc.value = "/etc/passwd";
}
static void external_missing(Onnx__ModelProto *m) {
  external_traversal(m);
  ext_loc.value = "weights_that_do_not_exist.bin";
}
static Onnx__AttributeProto bad_attr = ONNX__ATTRIBUTE_PROTO__INIT;
static Onnx__AttributeProto *attrs_buf[16];
static void add_attr(Onnx__NodeProto *n, Onnx__AttributeProto *a) {
  for (size_t i = 0; i < n->n_attribute && i < 15; i++) attrs_buf[i] = n->attribute[i];
  attrs_buf[n->n_attribute < 15 ? n->n_attribute : 15] = a;
  n->attribute = attrs_buf;
  n->n_attribute = n->n_attribute < 15 ? n->n_attribute + 1 : 16;
}
/* Replaces the first attribute named |name| of node 0 with |a|. */
static void set_attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto *a) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (strcmp(n->attribute[i]->name, name) == 0) {
      n->attribute[i] = a;
      return;
    }
  add_attr(n, a);
}
static int64_t bad_ints[8];
static void conv_strides_zero(Onnx__ModelProto *m) {
  bad_attr.name = "strides";
  bad_attr.has_type = 1;
  bad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  bad_ints[0] = 0;
  bad_ints[1] = 0;
  bad_attr.ints = bad_ints;
  bad_attr.n_ints = 2;
  set_attr(G(m)->node[0], "strides", &bad_attr);
}
static void conv_pads_huge(Onnx__ModelProto *m) {
  bad_attr.name = "pads";
  bad_attr.has_type = 1;
  bad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  for (int i = 0; i < 4; i++) bad_ints[i] = (int64_t)1 << 40;
  bad_attr.ints = bad_ints;
  bad_attr.n_ints = 4;
  set_attr(G(m)->node[0], "pads", &bad_attr);
}
static void conv_pads_negative(Onnx__ModelProto *m) {
  conv_pads_huge(m);
  for (int i = 0; i < 4; i++) bad_ints[i] = -100;
}
static void conv_group_wrong(Onnx__ModelProto *m) {
  bad_attr.name = "group";
  bad_attr.has_type = 1;
  bad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  bad_attr.has_i = 1;
  bad_attr.i = 7;
  set_attr(G(m)->node[0], "group", &bad_attr);
}
static void conv_attr_wrong_type(Onnx__ModelProto *m) {
  bad_attr.name = "strides";
  bad_attr.has_type = 1;
  bad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  bad_attr.has_f = 1;
  bad_attr.f = 1.5f;
  set_attr(G(m)->node[0], "strides", &bad_attr);
}
static void conv_dilations_huge(Onnx__ModelProto *m) {
  bad_attr.name = "dilations";
  bad_attr.has_type = 1;
  bad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  bad_ints[0] = INT64_MAX;
  bad_ints[1] = INT64_MAX;
  bad_attr.ints = bad_ints;
  bad_attr.n_ints = 2;
  set_attr(G(m)->node[0], "dilations", &bad_attr);
}
static void opset_future(Onnx__ModelProto *m) { m->opset_import[0]->version = 99; }
static void weight_shape_mismatch(Onnx__ModelProto *m) {
  /* Swap the two convolution weights: channel counts no longer match. */
  for (size_t i = 0; i < G(m)->n_initializer; i++)
    if (G(m)->initializer[i]->n_dims == 4) {
      for (size_t j = i + 1; j < G(m)->n_initializer; j++)
        if (G(m)->initializer[j]->n_dims == 4) {
          char *t = G(m)->initializer[i]->name;
          G(m)->initializer[i]->name = G(m)->initializer[j]->name;
          G(m)->initializer[j]->name = t;
          return;
        }
    }
}

static const struct {
  model_edit_fn fn;
  const char *what;
} model_edits[] = {
    {drop_first_initializer, "initializers missing"},
    {drop_graph, "no graph"},
    {no_opset, "no opset import"},
    {unknown_op, "unknown op"},
    {custom_domain, "op in an unknown domain"},
    {undefined_input, "node reads an undefined value"},
    {cycle, "cycle between two nodes"},
    {self_loop, "node reads its own output"},
    {two_producers, "two nodes produce one value"},
    {output_unproduced, "graph output not produced"},
    {no_outputs, "graph without outputs"},
    {huge_initializer_dims, "initializer dims 2^40 with small raw_data"},
    {overflowing_initializer_dims, "initializer dims overflow"},
    {negative_initializer_dim, "negative initializer dim"},
    {raw_data_short, "raw_data shorter than dims"},
    {wrong_dtype_initializer, "double initializer"},
    {string_initializer, "string initializer"},
    {undefined_dtype_initializer, "initializer without dtype"},
    {duplicate_initializer, "initializer defined twice"},
    {huge_input_dim, "graph input dim 2^40"},
    {symbolic_input_dim, "symbolic input dim without --dim"},
    {empty_input_huge_strides, "empty graph input [0,3,2^40,2^40]"},
    {input_wrong_rank, "graph input of the wrong rank for Conv"},
    {input_double, "double graph input"},
    {input_no_shape, "graph input without shape"},
    {input_no_type, "graph input without type"},
    {node_no_op_type, "node without op_type"},
    {conv_missing_weight, "Conv without weight"},
    {writes_initializer, "node overwrites an initializer"},
    {writes_input, "node overwrites a graph input"},
    {external_traversal, "external data path with .."},
    {external_absolute, "external data absolute path"},
    {external_missing, "external data file missing"},
    {conv_strides_zero, "Conv strides 0"},
    {conv_pads_huge, "Conv pads 2^40"},
    {conv_pads_negative, "Conv pads negative"},
    {conv_group_wrong, "Conv group not dividing channels"},
    {conv_attr_wrong_type, "Conv strides of the wrong attribute type"},
    {conv_dilations_huge, "Conv dilations INT64_MAX"},
    {opset_future, "opset 99"},
    {weight_shape_mismatch, "weights swapped between layers"},
};

START_TEST(models_structural_edits) {
  int n = (int)(sizeof model_edits / sizeof model_edits[0]);
  for (int i = 0; i < n; i++) check_model_edit(model_edits[i].fn, model_edits[i].what);
  printf("edited models: %d cases\n", n);
}
END_TEST

/* --- resource limits of the compiler ------------------------------------------------ */

/* Appends the protobuf varint |v| to |b| at |*n|. */
static void put_varint(uint8_t *b, size_t *n, uint64_t v) {
  do {
    b[(*n)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
}

/* Wraps |*buf| (|*n| bytes) as length-delimited field |field| after
 * |head_n| bytes of other fields |head|. */
static void wrap_field(uint8_t **buf, size_t *n, const uint8_t *head, size_t head_n, int field) {
  uint8_t *out = malloc(*n + head_n + 16);
  size_t m = head_n;
  if (head_n) memcpy(out, head, head_n);
  put_varint(out, &m, (uint64_t)field << 3 | 2);
  put_varint(out, &m, *n);
  memcpy(out + m, *buf, *n);
  free(*buf);
  *buf = out;
  *n = m + *n;
}

/* A ModelProto whose graph holds an If node whose then_branch holds an If
 * node ... |levels| deep, written as wire bytes (protobuf-c's own recursive
 * packer is not used: the point is a nesting that recursion cannot take). */
static uint8_t *nested_if_model(int levels, size_t *out_n) {
  uint8_t *buf = malloc(1);
  size_t n = 0;
  static const uint8_t attr_head[] = {0x0a, 11, 't', 'h', 'e', 'n', '_', 'b', 'r', 'a', 'n', 'c',
                                      'h', 0xa0, 0x01, 5}; /* name, type = GRAPH */
  static const uint8_t node_head[] = {0x22, 2, 'I', 'f'}; /* op_type */
  static const uint8_t model_head[] = {0x08, 8, 0x42, 2, 0x10, 13}; /* ir_version 8, opset 13 */
  for (int i = 0; i < levels; i++) {
    wrap_field(&buf, &n, attr_head, sizeof attr_head, 6); /* AttributeProto.g */
    wrap_field(&buf, &n, node_head, sizeof node_head, 5); /* NodeProto.attribute */
    wrap_field(&buf, &n, NULL, 0, 1);                     /* GraphProto.node */
  }
  wrap_field(&buf, &n, model_head, sizeof model_head, 7); /* ModelProto.graph */
  *out_n = n;
  return buf;
}

START_TEST(limits_model_nesting) {
  size_t n;
  /* 3,000 If levels (about 60 KB) overflowed the stack inside protobuf-c. */
  uint8_t *deep = nested_if_model(3000, &n);
  check_model_fails(deep, n, NULL, "the limit is 100 (raise it with --max-depth)",
                    "3,000 nested If subgraphs");
  const char *cap[] = {"--max-depth", "1000", NULL};
  check_model_fails(deep, n, cap, "the limit is 1000", "3,000 nested If subgraphs, --max-depth 1000");
  free(deep);
  /* 40 levels (121 messages deep): refused by default, decoded with a raised
   * limit (and then refused for what it is: If is not supported). */
  uint8_t *mid = nested_if_model(40, &n);
  check_model_fails(mid, n, NULL, "--max-depth", "40 nested If subgraphs");
  const char *raised[] = {"--max-depth", "200", NULL};
  run_result_t r = run_onnxc(mid, n, raised);
  expect_clean_failure(&r, "onnxc", "40 nested If subgraphs, --max-depth 200");
  ck_assert_msg(!strstr(r.err, "nested"), "--max-depth 200 did not raise the limit: %s", r.err);
  free(mid);
}
END_TEST

/* Small models built with protobuf-c; everything comes from the pool. */
static void *pzalloc(size_t n) {
  void *p = pool_alloc(NULL, n);
  memset(p, 0, n);
  return p;
}

static Onnx__ModelProto *mini_model(void) {
  Onnx__ModelProto *m = pzalloc(sizeof *m);
  onnx__model_proto__init(m);
  m->has_ir_version = 1;
  m->ir_version = 8;
  Onnx__OperatorSetIdProto *op = pzalloc(sizeof *op);
  onnx__operator_set_id_proto__init(op);
  op->domain = "";
  op->has_version = 1;
  op->version = 13;
  m->opset_import = pzalloc(sizeof(void *));
  m->opset_import[0] = op;
  m->n_opset_import = 1;
  Onnx__GraphProto *g = pzalloc(sizeof *g);
  onnx__graph_proto__init(g);
  g->name = "g";
  g->node = pzalloc(sizeof(void *) * 16);
  g->initializer = pzalloc(sizeof(void *) * 4);
  g->input = pzalloc(sizeof(void *) * 4);
  g->output = pzalloc(sizeof(void *) * 4);
  m->graph = g;
  return m;
}

static Onnx__NodeProto *mini_node(Onnx__GraphProto *g, const char *op, const char *const *in,
                                  int n_in, const char *out) {
  Onnx__NodeProto *nd = pzalloc(sizeof *nd);
  onnx__node_proto__init(nd);
  nd->op_type = (char *)op;
  nd->input = (char **)in;
  nd->n_input = (size_t)n_in;
  nd->output = pzalloc(sizeof(char *));
  nd->output[0] = (char *)out;
  nd->n_output = 1;
  nd->attribute = pzalloc(sizeof(void *) * 4);
  g->node[g->n_node++] = nd;
  return nd;
}

static Onnx__AttributeProto *mini_attr(Onnx__NodeProto *nd, const char *name, int type) {
  Onnx__AttributeProto *a = pzalloc(sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = (char *)name;
  a->has_type = 1;
  a->type = type;
  nd->attribute[nd->n_attribute++] = a;
  return a;
}

/* A tensor of |dtype| with zeroed raw_data (NULL |data|) or |data|. */
static Onnx__TensorProto *mini_tensor(const char *name, int dtype, int rank, const int64_t *dims,
                                      const void *data) {
  Onnx__TensorProto *t = pzalloc(sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = (char *)name;
  t->has_data_type = 1;
  t->data_type = dtype;
  t->dims = (int64_t *)dims;
  t->n_dims = (size_t)rank;
  size_t bytes = oc_dtype_size(dtype);
  for (int i = 0; i < rank; i++) bytes *= (size_t)dims[i];
  t->has_raw_data = 1;
  t->raw_data.len = bytes;
  t->raw_data.data = pzalloc(bytes + 1);
  if (data) memcpy(t->raw_data.data, data, bytes);
  return t;
}

/* A graph input (float32 of |dims|) or output (no type). */
static void mini_io(Onnx__ValueInfoProto **list, size_t *n, const char *name, int rank,
                    const int64_t *dims) {
  Onnx__ValueInfoProto *vi = pzalloc(sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = (char *)name;
  if (dims) {
    Onnx__TypeProto *tp = pzalloc(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = pzalloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = OC_DTYPE_FLOAT32;
    Onnx__TensorShapeProto *sh = pzalloc(sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->dim = pzalloc(sizeof(void *) * (size_t)(rank + 1));
    for (int i = 0; i < rank; i++) {
      Onnx__TensorShapeProto__Dimension *d = pzalloc(sizeof *d);
      onnx__tensor_shape_proto__dimension__init(d);
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i];
      sh->dim[i] = d;
    }
    sh->n_dim = (size_t)rank;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
  }
  list[(*n)++] = vi;
}

/* Packs |m| (then frees the pool); free() the result. */
static uint8_t *mini_pack(Onnx__ModelProto *m, size_t *n) {
  *n = onnx__model_proto__get_packed_size(m);
  uint8_t *out = malloc(*n + 1);
  onnx__model_proto__pack(m, out);
  pool_release();
  return out;
}

/* y = Constant(value = int64[1024]): 8 KB made by lowering. */
static uint8_t *constant_model(size_t *n) {
  Onnx__ModelProto *m = mini_model();
  Onnx__NodeProto *nd = mini_node(m->graph, "Constant", NULL, 0, "y");
  static const int64_t dims[1] = {1024};
  Onnx__AttributeProto *a = mini_attr(nd, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  a->t = mini_tensor("v", OC_DTYPE_INT64, 1, dims, NULL);
  mini_io(m->graph->output, &m->graph->n_output, "y", 0, NULL);
  return mini_pack(m, n);
}

/* y = MaxPool(X, kernel 32x32) of a constant X (1,1,64,64): 1,089 windows of
 * 1,024 taps when folded. */
static uint8_t *maxpool_model(size_t *n) {
  Onnx__ModelProto *m = mini_model();
  static const int64_t xdims[4] = {1, 1, 64, 64}, kernel[2] = {32, 32};
  m->graph->initializer[m->graph->n_initializer++] =
      mini_tensor("X", OC_DTYPE_FLOAT32, 4, xdims, NULL);
  static const char *const in[1] = {"X"};
  Onnx__NodeProto *nd = mini_node(m->graph, "MaxPool", in, 1, "y");
  Onnx__AttributeProto *a = mini_attr(nd, "kernel_shape", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->ints = (int64_t *)kernel;
  a->n_ints = 2;
  mini_io(m->graph->output, &m->graph->n_output, "y", 0, NULL);
  return mini_pack(m, n);
}

/* Six Expands of a [1] input to [2^36] floats, all live at once (one Sum):
 * a 1.5 TB arena. */
static uint8_t *huge_arena_model(size_t *n) {
  Onnx__ModelProto *m = mini_model();
  Onnx__GraphProto *g = m->graph;
  static const int64_t one[1] = {1}, shape[1] = {(int64_t)1 << 36};
  g->initializer[g->n_initializer++] = mini_tensor("shape", OC_DTYPE_INT64, 1, one, shape);
  mini_io(g->input, &g->n_input, "x", 1, one);
  static const char *const ex_in[2] = {"x", "shape"};
  static const char *const names[6] = {"e0", "e1", "e2", "e3", "e4", "e5"};
  for (int i = 0; i < 6; i++) mini_node(g, "Expand", ex_in, 2, names[i]);
  mini_node(g, "Sum", names, 6, "y");
  mini_io(g->output, &g->n_output, "y", 0, NULL);
  return mini_pack(m, n);
}

/* Compiles |data| with |extra| arguments, which must succeed; returns the
 * instruction count of the plan's entry point 0. */
static int compiled_instructions(const void *data, size_t n, const char *const *extra,
                                 const char *what) {
  run_result_t r = run_onnxc(data, n, extra);
  ck_assert_msg(r.code == 0, "%s: onnxc failed: %s", what, r.err);
  char plan[512];
  snprintf(plan, sizeof plan, "%s/plan.bin", workdir);
  oc_plan_t *p = NULL;
  oc_status_t s = oc_plan_open_file(plan, NULL, &p);
  ck_assert_msg(s == OC_OK, "%s: %s", what, oc_status_message(s));
  int k = oc_plan_instruction_count(p, 0);
  oc_plan_release(p);
  unlink(plan);
  return k;
}

START_TEST(limits_folding) {
  size_t n;
  uint8_t *model = constant_model(&n);
  /* The 8 KB constant fits the defaults; each limit refuses it, naming its
   * flag. */
  compiled_instructions(model, n, NULL, "Constant of 8 KB");
  const char *limit[] = {"--fold-limit", "4K", NULL};
  check_model_fails(model, n, limit, "(--fold-limit)", "Constant of 8 KB, --fold-limit 4K");
  const char *total[] = {"--max-fold", "4k", NULL};
  check_model_fails(model, n, total, "(--max-fold)", "Constant of 8 KB, --max-fold 4k");
  const char *memory[] = {"--max-memory", "12K", NULL};
  check_model_fails(model, n, memory, "(--max-memory)", "Constant of 8 KB, --max-memory 12K");
  free(model);

  /* Folding that is over a limit leaves the op to run at run time. */
  model = maxpool_model(&n);
  ck_assert_int_eq(compiled_instructions(model, n, NULL, "MaxPool of a constant"), 0);
  const char *cost[] = {"--max-fold-cost", "1000", NULL};
  ck_assert_int_eq(compiled_instructions(model, n, cost, "MaxPool, --max-fold-cost 1000"), 1);
  const char *small[] = {"--fold-limit", "1K", NULL};
  ck_assert_int_eq(compiled_instructions(model, n, small, "MaxPool, --fold-limit 1K"), 1);
  const char *little[] = {"--max-fold", "1K", NULL};
  ck_assert_int_eq(compiled_instructions(model, n, little, "MaxPool, --max-fold 1K"), 1);
  free(model);
}
END_TEST

START_TEST(limits_import_and_plan) {
  size_t n;
  uint8_t *base = read_file(BASE_MODEL, &n);
  const char *memory[] = {"--max-memory", "1K", NULL};
  check_model_fails(base, n, memory, "raise the limit with --max-memory", "--max-memory 1K");
  const char *nodes[] = {"--max-nodes", "1", NULL};
  check_model_fails(base, n, nodes, "(--max-nodes)", "--max-nodes 1");
  const char *raised[] = {"--max-memory", "1G", "--max-nodes", "1000", NULL};
  ck_assert_int_gt(compiled_instructions(base, n, raised, "--max-memory 1G --max-nodes 1000"), 0);
  free(base);
  /* The runtime opens no arena over 2^40 bytes: onnxc says so instead of
   * writing the plan. */
  uint8_t *huge = huge_arena_model(&n);
  check_model_fails(huge, n, NULL, "the runtime accepts at most 1099511627776 bytes (2^40)",
                    "arena of 1.5 TB");
  free(huge);
}
END_TEST

/* --- corrupted plans ----------------------------------------------------------- */

static char good_plan[512], inputs_dir[512];

static void make_good_plan(void) {
  snprintf(good_plan, sizeof good_plan, "%s/good.plan", workdir);
  snprintf(inputs_dir, sizeof inputs_dir, "%s", BASE_INPUTS);
  char *argv[] = {ONNXC_BIN_DIR "/onnxc", BASE_MODEL, "-o", good_plan, NULL};
  run_result_t r = run_tool(argv);
  ck_assert_msg(r.code == 0, "compiling the base model failed: %s", r.err);
}

static void check_plan_bytes(const void *data, size_t n, const char *what) {
  char plan[512], out[512];
  snprintf(plan, sizeof plan, "%s/plan.bin", workdir);
  snprintf(out, sizeof out, "%s/outputs", workdir);
  write_file(plan, data, n);
  char *argv[] = {ONNXC_BIN_DIR "/onnxrun", plan, "--inputs", inputs_dir, "--outputs", out, NULL};
  run_result_t r = run_tool(argv);
  expect_clean_failure(&r, "onnxrun", what);
  ck_assert_msg(!file_exists(out), "%s: outputs were written", what);
}


START_TEST(plans_damaged_bytes) {
  make_good_plan();
  size_t n;
  uint8_t *base = read_file(good_plan, &n);
  uint8_t *copy = malloc(n);
  int cases = 0;
  size_t cuts[] = {0, 7, 64, 127, 128, 200, n / 2, n - 64, n - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    char what[64];
    snprintf(what, sizeof what, "plan truncated to %zu bytes", cuts[i]);
    check_plan_bytes(base, cuts[i], what);
    cases++;
  }
  /* A flipped bit in every header field, in the metadata, in the weights. */
  size_t flips[] = {0, 7, 8, 12, 16, 24, 32, 40, 48, 56, 64, 72, 80, 127,
                    128, 129, 150, 200, 300, n / 2, n - 10, n - 1};
  for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
    memcpy(copy, base, n);
    copy[flips[i]] ^= 0x10;
    char what[64];
    snprintf(what, sizeof what, "bit flipped at byte %zu", flips[i]);
    check_plan_bytes(copy, n, what);
    cases++;
  }
  /* Other format versions, with a consistent header checksum. */
  uint32_t versions[] = {0, OC_PLAN_FORMAT_VERSION + 1, 0xFFFFFFFFu};
  for (size_t i = 0; i < 3; i++) {
    memcpy(copy, base, n);
    for (int b = 0; b < 4; b++) copy[OC_PLAN_OFF_VERSION + b] = (uint8_t)(versions[i] >> (8 * b));
    oc_store_le64(copy + OC_PLAN_OFF_HEADER_HASH, oc_hash64(copy, OC_PLAN_OFF_HEADER_HASH, OC_PLAN_HASH_SEED));
    char what[64];
    snprintf(what, sizeof what, "format version %u", versions[i]);
    check_plan_bytes(copy, n, what);
    cases++;
  }
  /* Appended garbage. */
  uint8_t *longer = malloc(n + 100);
  memcpy(longer, base, n);
  memset(longer + n, 0xAB, 100);
  check_plan_bytes(longer, n + 100, "100 bytes appended");
  cases++;
  printf("damaged plans: %d cases\n", cases);
  free(longer);
  free(copy);
  free(base);
}
END_TEST

/* Edits the metadata and re-seals the file with valid checksums. */
typedef void (*plan_edit_fn)(Ocplan__Plan *p);

/* The good plan with |edit| applied to its metadata, checksums valid. */
static uint8_t *edited_plan(plan_edit_fn edit, size_t *out_n) {
  size_t n;
  uint8_t *base = read_file(good_plan, &n);
  uint64_t mo = oc_load_le64(base + OC_PLAN_OFF_META_OFFSET), ml = oc_load_le64(base + OC_PLAN_OFF_META_BYTES);
  uint64_t dof = oc_load_le64(base + OC_PLAN_OFF_DATA_OFFSET), dl = oc_load_le64(base + OC_PLAN_OFF_DATA_BYTES);
  Ocplan__Plan *p = ocplan__plan__unpack(&pool, ml, base + mo);
  ck_assert_ptr_nonnull(p);
  edit(p);
  size_t nml = ocplan__plan__get_packed_size(p);
  uint64_t ndof = (OC_PLAN_HEADER_BYTES + nml + 63) / 64 * 64;
  size_t total = ndof + dl;
  uint8_t *out = calloc(1, total);
  memcpy(out, base, OC_PLAN_HEADER_BYTES);
  ocplan__plan__pack(p, out + OC_PLAN_HEADER_BYTES);
  memcpy(out + ndof, base + dof, dl);
  oc_store_le64(out + OC_PLAN_OFF_FILE_BYTES, total);
  oc_store_le64(out + OC_PLAN_OFF_META_BYTES, nml);
  oc_store_le64(out + OC_PLAN_OFF_DATA_OFFSET, ndof);
  oc_store_le64(out + OC_PLAN_OFF_META_HASH, oc_hash64(out + OC_PLAN_HEADER_BYTES, nml, OC_PLAN_HASH_SEED));
  oc_store_le64(out + OC_PLAN_OFF_HEADER_HASH, oc_hash64(out, OC_PLAN_OFF_HEADER_HASH, OC_PLAN_HASH_SEED));
  pool_release();
  free(base);
  *out_n = total;
  return out;
}

static void check_plan_edit(plan_edit_fn edit, const char *what) {
  size_t n;
  uint8_t *plan = edited_plan(edit, &n);
  check_plan_bytes(plan, n, what);
  free(plan);
}

static Ocplan__EntryPoint *E(Ocplan__Plan *p) { return p->entries[0]; }
static Ocplan__Instruction *I(Ocplan__Plan *p, int k) { return E(p)->instructions[k]; }
static int first_op(Ocplan__Plan *p, int op) {
  for (size_t i = 0; i < E(p)->n_instructions; i++)
    if (I(p, (int)i)->op == op) return (int)i;
  return 0;
}
static int first_const(Ocplan__Plan *p) {
  for (size_t i = 0; i < p->n_tensors; i++)
    if (p->tensors[i]->region == OCPLAN__REGION__REGION_CONSTANT) return (int)i;
  return 0;
}
static int first_arena(Ocplan__Plan *p) {
  for (size_t i = 0; i < p->n_tensors; i++)
    if (p->tensors[i]->region == OCPLAN__REGION__REGION_ARENA) return (int)i;
  return 0;
}

static void p_no_entries(Ocplan__Plan *p) { p->n_entries = 0; }
static void p_const_offset_oob(Ocplan__Plan *p) { p->tensors[first_const(p)]->offset = 1u << 30; }
static void p_const_offset_misaligned(Ocplan__Plan *p) { p->tensors[first_const(p)]->offset += 4; }
static void p_arena_offset_oob(Ocplan__Plan *p) { E(p)->arena_offsets[0] = E(p)->arena_bytes; }
static void p_arena_offset_huge(Ocplan__Plan *p) { E(p)->arena_offsets[0] = UINT64_MAX - 63; }
static void p_arena_too_small(Ocplan__Plan *p) { E(p)->arena_bytes = 64; }
static void p_arena_count_mismatch(Ocplan__Plan *p) { E(p)->n_arena_offsets--; }
static void p_arena_tensor_id_bad(Ocplan__Plan *p) { E(p)->arena_tensors[0] = 1 << 20; }
static void p_arena_places_const(Ocplan__Plan *p) { E(p)->arena_tensors[0] = first_const(p); }
static void p_input_id_bad(Ocplan__Plan *p) { I(p, 0)->inputs[0] = 99999; }
static void p_input_id_negative(Ocplan__Plan *p) { I(p, 0)->inputs[0] = -7; }
static void p_output_id_bad(Ocplan__Plan *p) { I(p, 0)->outputs[0] = (int32_t)p->n_tensors; }
static void p_output_is_const(Ocplan__Plan *p) { I(p, 0)->outputs[0] = first_const(p); }
static void p_unknown_op(Ocplan__Plan *p) { I(p, 0)->op = 9999; }
static void p_negative_op(Ocplan__Plan *p) { I(p, 0)->op = -1; }
static void p_op_swapped(Ocplan__Plan *p) { I(p, 0)->op = OC_OP_COPY; /* its shape rule disagrees */ }
static void p_too_few_inputs(Ocplan__Plan *p) { I(p, 0)->n_inputs = 1; }
static void p_no_outputs(Ocplan__Plan *p) { I(p, 0)->n_outputs = 0; }
static void p_ints_changed(Ocplan__Plan *p) {
  int k = first_op(p, OC_OP_CONV);
  for (size_t i = 0; i < I(p, k)->n_ints; i++) I(p, k)->ints[i] = (int64_t)1 << 40;
}
static void p_ints_dropped(Ocplan__Plan *p) { I(p, first_op(p, OC_OP_CONV))->n_ints = 1; }
static void p_ints_negative(Ocplan__Plan *p) {
  int k = first_op(p, OC_OP_CONV);
  for (size_t i = 0; i < I(p, k)->n_ints; i++) I(p, k)->ints[i] = -3;
}
/* The first Conv's weight layout (its ints' last, runtime/ops/conv.c) set to
 * |layout|: ints [group, strides, pads, dilations, activation, layout]. */
static int64_t layout_ints[3 + 4 * 3];
static void conv_layout(Ocplan__Plan *p, int64_t layout) {
  Ocplan__Instruction *ins = I(p, first_op(p, OC_OP_CONV));
  size_t n = ins->n_ints;
  ck_assert(n == 9 || n == 10 || n == 11); /* 2-D: 1 + 4 * 2, then activation, layout */
  memcpy(layout_ints, ins->ints, n * sizeof(int64_t));
  if (n == 9) layout_ints[9] = 0;
  layout_ints[10] = layout;
  ins->ints = layout_ints;
  ins->n_ints = 11;
}
static void p_conv_layout_2(Ocplan__Plan *p) { conv_layout(p, 2); }
static void p_conv_layout_negative(Ocplan__Plan *p) { conv_layout(p, -1); }
static void p_conv_layout_huge(Ocplan__Plan *p) { conv_layout(p, (int64_t)1 << 40); }
static void p_dims_changed(Ocplan__Plan *p) { p->tensors[first_arena(p)]->dims[0] += 1; }
static int64_t big_dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
static void p_rank_too_big(Ocplan__Plan *p) {
  p->tensors[first_arena(p)]->dims = big_dims;
  p->tensors[first_arena(p)]->n_dims = 9;
}
static void p_dim_huge(Ocplan__Plan *p) { p->tensors[first_arena(p)]->dims[0] = (int64_t)1 << 50; }
static void p_dim_negative(Ocplan__Plan *p) { p->tensors[first_const(p)]->dims[0] = -1; }
static void p_dtype_bad(Ocplan__Plan *p) { p->tensors[first_const(p)]->dtype = 11; }
static void p_dtype_unknown(Ocplan__Plan *p) { p->tensors[first_arena(p)]->dtype = 12345; }
static void p_region_bad(Ocplan__Plan *p) { p->tensors[first_arena(p)]->region = 7; }
static void p_state_without_bytes(Ocplan__Plan *p) {
  p->tensors[first_arena(p)]->region = OCPLAN__REGION__REGION_STATE;
}
static void p_workspace_bad(Ocplan__Plan *p) { I(p, first_op(p, OC_OP_CONV))->workspace = 1 << 24; }
static void p_workspace_const(Ocplan__Plan *p) { I(p, first_op(p, OC_OP_CONV))->workspace = first_const(p); }
static void p_entry_input_const(Ocplan__Plan *p) { E(p)->inputs[0] = first_const(p); }
static void p_entry_output_bad(Ocplan__Plan *p) { E(p)->outputs[0] = -1; }
static void p_entry_duplicate(Ocplan__Plan *p) {
  static Ocplan__EntryPoint *two[2];
  two[0] = two[1] = E(p);
  p->entries = two;
  p->n_entries = 2;
}
static void p_entry_unnamed(Ocplan__Plan *p) { E(p)->name = ""; }
static void p_wrong_entry_name(Ocplan__Plan *p) { E(p)->name = "train_step"; }
static int32_t four_inputs[4];
static void p_many_instr_inputs(Ocplan__Plan *p) {
  /* Conv takes at most 3 inputs. */
  int k = first_op(p, OC_OP_CONV);
  for (size_t i = 0; i < 3; i++) four_inputs[i] = I(p, k)->inputs[i];
  four_inputs[3] = four_inputs[0];
  I(p, k)->inputs = four_inputs;
  I(p, k)->n_inputs = 4;
}

static int64_t tensor_elements(const Ocplan__Tensor *t) {
  int64_t n = 1;
  for (size_t d = 0; d < t->n_dims; d++) n *= t->dims[d];
  return n;
}
/* The arena slot of tensor |id| in the first entry, or -1. */
static int arena_slot(Ocplan__Plan *p, int32_t id) {
  for (size_t i = 0; i < E(p)->n_arena_tensors; i++)
    if (E(p)->arena_tensors[i] == id) return (int)i;
  return -1;
}
/* The first Conv's output moved onto the first byte of its input: a kernel
 * would read what it has just written (and copy between overlapping
 * ranges). The smaller of the two is moved, so both stay inside the arena. */
static void p_output_overlaps_input(Ocplan__Plan *p) {
  Ocplan__Instruction *ins = I(p, first_op(p, OC_OP_CONV));
  int in = arena_slot(p, ins->inputs[0]), out = arena_slot(p, ins->outputs[0]);
  ck_assert(in >= 0 && out >= 0);
  if (tensor_elements(p->tensors[ins->outputs[0]]) <= tensor_elements(p->tensors[ins->inputs[0]]))
    E(p)->arena_offsets[out] = E(p)->arena_offsets[in];
  else
    E(p)->arena_offsets[in] = E(p)->arena_offsets[out];
}

static const struct {
  plan_edit_fn fn;
  const char *what;
} plan_edits[] = {
    {p_no_entries, "no entry points"},
    {p_const_offset_oob, "constant offset out of range"},
    {p_const_offset_misaligned, "constant offset misaligned"},
    {p_arena_offset_oob, "arena offset at the arena's end"},
    {p_arena_offset_huge, "arena offset near 2^64"},
    {p_arena_too_small, "arena smaller than its tensors"},
    {p_arena_count_mismatch, "arena tensors and offsets differ in count"},
    {p_arena_tensor_id_bad, "arena placement of a nonexistent tensor"},
    {p_arena_places_const, "arena placement of a constant"},
    {p_input_id_bad, "instruction input id out of range"},
    {p_input_id_negative, "instruction input id negative"},
    {p_output_id_bad, "instruction output id out of range"},
    {p_output_is_const, "instruction writes a constant"},
    {p_unknown_op, "unknown op number"},
    {p_negative_op, "negative op number"},
    {p_op_swapped, "op replaced by another"},
    {p_too_few_inputs, "instruction with too few inputs"},
    {p_no_outputs, "instruction without outputs"},
    {p_ints_changed, "Conv ints set to 2^40"},
    {p_ints_dropped, "Conv ints truncated"},
    {p_ints_negative, "Conv ints negative"},
    {p_conv_layout_2, "Conv weight layout 2"},
    {p_conv_layout_negative, "Conv weight layout -1"},
    {p_conv_layout_huge, "Conv weight layout 2^40"},
    {p_dims_changed, "tensor dims changed"},
    {p_rank_too_big, "tensor of rank 9"},
    {p_dim_huge, "tensor dim 2^50"},
    {p_dim_negative, "constant with a negative dim"},
    {p_dtype_bad, "constant of dtype double"},
    {p_dtype_unknown, "tensor of an unknown dtype"},
    {p_region_bad, "unknown region"},
    {p_state_without_bytes, "state tensor outside the state region"},
    {p_workspace_bad, "workspace id out of range"},
    {p_workspace_const, "workspace is a constant"},
    {p_entry_input_const, "entry input is a constant"},
    {p_entry_output_bad, "entry output id -1"},
    {p_entry_duplicate, "entry point listed twice"},
    {p_entry_unnamed, "entry point without a name"},
    {p_wrong_entry_name, "no 'embed' entry point"},
    {p_many_instr_inputs, "Conv with a fourth input"},
    {p_output_overlaps_input, "Conv output placed over its input"},
};

START_TEST(plans_tampered_metadata) {
  make_good_plan();
  int n = (int)(sizeof plan_edits / sizeof plan_edits[0]);
  for (int i = 0; i < n; i++) check_plan_edit(plan_edits[i].fn, plan_edits[i].what);
  printf("tampered plans: %d cases\n", n);
}
END_TEST

/* Runs onnxrun on |plan| with the base inputs and |extra| arguments. */
static run_result_t run_onnxrun(const char *plan, const char *const *extra) {
  char out[512];
  snprintf(out, sizeof out, "%s/outputs", workdir);
  char *argv[16] = {ONNXC_BIN_DIR "/onnxrun", (char *)plan, "--inputs", inputs_dir, "--outputs",
                    out};
  int argc = 6;
  for (int i = 0; extra && extra[i] && argc < 15; i++) argv[argc++] = (char *)extra[i];
  argv[argc] = NULL;
  run_result_t r = run_tool(argv);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
  ck_assert_int_eq(system(cmd), 0);
  return r;
}

static void expect_onnxrun_fails(const char *const *extra, const char *expect, const char *what) {
  run_result_t r = run_onnxrun(good_plan, extra);
  expect_clean_failure(&r, "onnxrun", what);
  ck_assert_msg(strstr(r.err, expect), "%s: the message does not say '%s': %s", what, expect,
                r.err);
}

static void expect_onnxrun_runs(const char *plan, const char *const *extra, const char *what) {
  run_result_t r = run_onnxrun(plan, extra);
  ck_assert_msg(r.code == 0, "%s: onnxrun failed: %s", what, r.err);
}

/* The caller's limits: a context's memory and a run's estimated work. */
START_TEST(limits_runtime) {
  make_good_plan();
  const char *memory[] = {"--max-memory", "1K", NULL};
  expect_onnxrun_fails(memory, "onnxrun --max-memory", "--max-memory 1K");
  const char *cost[] = {"--max-cost", "100", NULL};
  expect_onnxrun_fails(cost, "onnxrun --max-cost", "--max-cost 100");
  const char *raised[] = {"--max-memory", "64M", "--max-cost", "1G", NULL};
  expect_onnxrun_runs(good_plan, raised, "--max-memory 64M --max-cost 1G");
}
END_TEST

/* 100,000 more tensors and 64 entry points: a context's bookkeeping follows
 * what each entry uses, not tensors x entries (which was 8 B per tensor per
 * entry in the plan and 80 B in each context: 600 MB here). */
static void p_many_tensors_and_entries(Ocplan__Plan *p) {
  enum { EXTRA = 100000, ENTRIES = 64 };
  static int64_t one[1] = {1};
  static char names[ENTRIES][8];
  Ocplan__Tensor *ts = pool_alloc(NULL, sizeof(Ocplan__Tensor) * EXTRA);
  Ocplan__Tensor **tp = pool_alloc(NULL, sizeof(void *) * (p->n_tensors + EXTRA));
  memcpy(tp, p->tensors, sizeof(void *) * p->n_tensors);
  for (int i = 0; i < EXTRA; i++) {
    ocplan__tensor__init(&ts[i]);
    ts[i].name = "unused";
    ts[i].has_dtype = 1;
    ts[i].dtype = OC_DTYPE_FLOAT32;
    ts[i].dims = one;
    ts[i].n_dims = 1;
    tp[p->n_tensors + (size_t)i] = &ts[i];
  }
  p->tensors = tp;
  p->n_tensors += EXTRA;
  Ocplan__EntryPoint *es = pool_alloc(NULL, sizeof(Ocplan__EntryPoint) * ENTRIES);
  Ocplan__EntryPoint **ep = pool_alloc(NULL, sizeof(void *) * ENTRIES);
  for (int k = 0; k < ENTRIES; k++) {
    es[k] = *E(p);
    snprintf(names[k], sizeof names[k], "e%d", k);
    if (k) es[k].name = names[k];
    ep[k] = &es[k];
  }
  p->entries = ep;
  p->n_entries = ENTRIES;
}

START_TEST(plan_bookkeeping_bounded) {
  make_good_plan();
  size_t n;
  uint8_t *plan = edited_plan(p_many_tensors_and_entries, &n);
  char path[512];
  snprintf(path, sizeof path, "%s/plan.bin", workdir);
  write_file(path, plan, n);
  free(plan);
  const char *memory[] = {"--max-memory", "64M", NULL};
  expect_onnxrun_runs(path, memory, "100,000 tensors x 64 entry points, --max-memory 64M");
}
END_TEST

/* The good plan runs: the harness itself would notice a broken tool. */
START_TEST(good_plan_runs) {
  make_good_plan();
  char out[512];
  snprintf(out, sizeof out, "%s/outputs", workdir);
  char *argv[] = {ONNXC_BIN_DIR "/onnxrun", good_plan, "--inputs", inputs_dir, "--outputs", out, NULL};
  run_result_t r = run_tool(argv);
  ck_assert_msg(r.code == 0, "onnxrun on the good plan failed: %s", r.err);
  char o0[600];
  snprintf(o0, sizeof o0, "%s/output_0.pb", out);
  ck_assert(file_exists(o0));
  unlink(o0);
  rmdir(out);
}
END_TEST

/* A failed compile leaves an existing plan untouched. */
START_TEST(failed_compile_keeps_old_plan) {
  char model[512], plan[512];
  snprintf(model, sizeof model, "%s/model.onnx", workdir);
  snprintf(plan, sizeof plan, "%s/plan.bin", workdir);
  write_file(plan, "precious", 8);
  write_file(model, "garbage", 7);
  char *argv[] = {ONNXC_BIN_DIR "/onnxc", model, "-o", plan, NULL};
  run_result_t r = run_tool(argv);
  expect_clean_failure(&r, "onnxc", "garbage model over an existing plan");
  size_t n;
  char *kept = read_file(plan, &n);
  ck_assert_uint_eq(n, 8);
  ck_assert(memcmp(kept, "precious", 8) == 0);
  free(kept);
  unlink(plan);
}
END_TEST

static void setup(void) {
  snprintf(workdir, sizeof workdir, "/tmp/onnxc-badinput-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(workdir));
}

static void teardown(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", workdir);
}

int main(void) {
  Suite *s = suite_create("bad_input");
  TCase *tm = tcase_create("models");
  tcase_add_checked_fixture(tm, setup, teardown);
  tcase_set_timeout(tm, 900);
  tcase_add_test(tm, models_damaged_bytes);
  tcase_add_test(tm, models_structural_edits);
  tcase_add_test(tm, failed_compile_keeps_old_plan);
  tcase_add_test(tm, limits_model_nesting);
  tcase_add_test(tm, limits_folding);
  tcase_add_test(tm, limits_import_and_plan);
  suite_add_tcase(s, tm);
  TCase *tp = tcase_create("plans");
  tcase_add_checked_fixture(tp, setup, teardown);
  tcase_set_timeout(tp, 900);
  tcase_add_test(tp, good_plan_runs);
  tcase_add_test(tp, plans_damaged_bytes);
  tcase_add_test(tp, plans_tampered_metadata);
  tcase_add_test(tp, limits_runtime);
  tcase_add_test(tp, plan_bookkeeping_bounded);
  suite_add_tcase(s, tp);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
