/*
 * The compiler end to end on small hand-built models (tests/data/models,
 * made by make_models.py with expected values from numpy): symbolic dims,
 * external data, typed-field initializers, inputs that are initializers,
 * folding of exported shape arithmetic, --output cuts; the runtime API on the
 * resulting plans (signature, misuse, threads); and the CLIs' options.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compile.h"
#include "tensor_file.h"

#define MODELS ONNXC_TEST_DATA "/models"

extern char **environ;

static oc_host_tensor_t load(const char *path) {
  oc_host_tensor_t t;
  oc_status_t s = oc_tensor_file_read(path, &t);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  return t;
}

static void expect_ok(oc_status_t s) {
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
}

/* Compiles |model| with |o| into a plan in memory and opens it. */
static oc_plan_t *compile_open(const char *model, const oc_compile_options_t *o) {
  oc_compiled_t *c = NULL;
  expect_ok(oc_compile_file(model, o, &c));
  uint8_t *bytes;
  size_t n;
  expect_ok(oc_plan_serialize(c, &bytes, &n));
  oc_compiled_free(c);
  oc_plan_t *plan = NULL;
  expect_ok(oc_plan_open_memory(bytes, n, NULL, &plan));
  free(bytes);
  return plan;
}

/* Runs entry 'embed' on |input| and checks output 0 against |expected|. */
static void run_and_compare(oc_plan_t *plan, const char *input, const char *expected) {
  int e;
  expect_ok(oc_plan_find_entry(plan, "embed", &e));
  oc_context_t *ctx;
  expect_ok(oc_context_create(plan, NULL, &ctx));
  oc_host_tensor_t x = load(input), y = load(expected);
  expect_ok(oc_context_set_input(ctx, e, 0, x.data, x.bytes));
  expect_ok(oc_context_run(ctx, e));
  const void *out;
  size_t bytes;
  expect_ok(oc_context_output(ctx, e, 0, &out, &bytes));
  ck_assert_uint_eq(bytes, y.bytes);
  const float *a = out, *b = y.data;
  for (size_t i = 0; i < bytes / 4; i++)
    ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-5f + 1e-5f * fabsf(b[i]), "element %zu: %g vs %g", i,
                  a[i], b[i]);
  oc_host_tensor_free(&x);
  oc_host_tensor_free(&y);
  oc_context_release(ctx);
}

START_TEST(symbolic_dim_needs_value) {
  oc_compiled_t *c = NULL;
  oc_status_t s = oc_compile_file(MODELS "/dynamic_batch_mlp/model.onnx", NULL, &c);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_msg(strstr(oc_status_message(s), "--dim batch=N") != NULL, "%s", oc_status_message(s));
  oc_status_free(s);
  ck_assert_ptr_null(c);
}
END_TEST

START_TEST(symbolic_dim_from_option) {
  oc_compile_options_t o;
  oc_compile_options_init(&o);
  o.dim_names[0] = "batch";
  o.dim_values[0] = 3;
  o.n_dims = 1;
  oc_plan_t *plan = compile_open(MODELS "/dynamic_batch_mlp/model.onnx", &o);
  oc_tensor_info_t in;
  expect_ok(oc_plan_input_info(plan, 0, 0, &in));
  ck_assert_str_eq(in.name, "x");
  ck_assert_int_eq(in.rank, 2);
  ck_assert_int_eq(in.dims[0], 3);
  ck_assert_int_eq(in.dims[1], 8);
  run_and_compare(plan, MODELS "/dynamic_batch_mlp/test_data_set_0/input_0.pb",
                  MODELS "/dynamic_batch_mlp/test_data_set_0/output_0.pb");
  oc_plan_release(plan);
}
END_TEST

START_TEST(output_cut) {
  oc_compile_options_t o;
  oc_compile_options_init(&o);
  o.dim_names[0] = "batch";
  o.dim_values[0] = 3;
  o.n_dims = 1;
  o.outputs[0] = "hidden";
  o.n_outputs = 1;
  oc_plan_t *plan = compile_open(MODELS "/dynamic_batch_mlp/model.onnx", &o);
  ck_assert_int_eq(oc_plan_output_count(plan, 0), 1);
  ck_assert_int_eq(oc_plan_output_index(plan, 0, "hidden"), 0);
  /* Only fc1 and relu1 are needed. */
  ck_assert_int_eq(oc_plan_instruction_count(plan, 0), 2);
  run_and_compare(plan, MODELS "/dynamic_batch_mlp/test_data_set_0/input_0.pb",
                  MODELS "/dynamic_batch_mlp/hidden/output_0.pb");
  oc_plan_release(plan);

  o.outputs[0] = "no_such_value";
  oc_compiled_t *c = NULL;
  oc_status_t s = oc_compile_file(MODELS "/dynamic_batch_mlp/model.onnx", &o, &c);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_NOT_FOUND);
  oc_status_free(s);
}
END_TEST

START_TEST(external_data) {
  oc_plan_t *plan = compile_open(MODELS "/external_data_mlp/model.onnx", NULL);
  run_and_compare(plan, MODELS "/external_data_mlp/test_data_set_0/input_0.pb",
                  MODELS "/external_data_mlp/test_data_set_0/output_0.pb");
  oc_plan_release(plan);
  /* From memory without a base folder, external data is an error. */
  void *buf;
  size_t n;
  expect_ok(oc_file_read_all(MODELS "/external_data_mlp/model.onnx", &buf, &n));
  oc_compiled_t *c = NULL;
  oc_status_t s = oc_compile_memory(buf, n, NULL, "mem", NULL, &c);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  free(buf);
}
END_TEST

START_TEST(typed_fields_and_initializer_inputs) {
  oc_plan_t *plan = compile_open(MODELS "/typed_fields_mlp/model.onnx", NULL);
  /* Initializers listed as graph inputs are weights, not plan inputs. */
  ck_assert_int_eq(oc_plan_input_count(plan, 0), 1);
  run_and_compare(plan, MODELS "/typed_fields_mlp/test_data_set_0/input_0.pb",
                  MODELS "/typed_fields_mlp/test_data_set_0/output_0.pb");
  oc_plan_release(plan);
}
END_TEST

START_TEST(shape_arithmetic_folds) {
  oc_plan_t *plan = compile_open(MODELS "/shape_arithmetic/model.onnx", NULL);
  /* Shape/Gather/Unsqueeze/Concat fold away: a reshape and a multiply remain. */
  ck_assert_int_eq(oc_plan_instruction_count(plan, 0), 2);
  run_and_compare(plan, MODELS "/shape_arithmetic/test_data_set_0/input_0.pb",
                  MODELS "/shape_arithmetic/test_data_set_0/output_0.pb");
  oc_plan_release(plan);
}
END_TEST

/* --- runtime API ------------------------------------------------------------ */

START_TEST(api_misuse) {
  oc_plan_t *plan = compile_open(MODELS "/typed_fields_mlp/model.onnx", NULL);
  oc_context_t *ctx;
  expect_ok(oc_context_create(plan, NULL, &ctx));
  float small[2] = {0};
  oc_status_t s = oc_context_set_input(ctx, 0, 0, small, sizeof small);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_INVALID_ARGUMENT);
  oc_status_free(s);
  s = oc_context_run(ctx, 5);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_INVALID_ARGUMENT);
  oc_status_free(s);
  s = oc_context_set_input(ctx, 0, 3, small, sizeof small);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_INVALID_ARGUMENT);
  oc_status_free(s);
  int e;
  s = oc_plan_find_entry(plan, "train_step", &e);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_NOT_FOUND);
  oc_status_free(s);
  oc_tensor_info_t info;
  s = oc_plan_output_info(plan, 0, 9, &info);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_INVALID_ARGUMENT);
  oc_status_free(s);
  ck_assert_ptr_null(oc_plan_entry_name(plan, -1));
  oc_context_release(ctx);
  oc_plan_release(plan);

  s = oc_plan_open_file("/nonexistent/plan.bin", NULL, &plan);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_IO);
  ck_assert_ptr_null(plan);
  oc_status_free(s);
  uint32_t lo, hi;
  oc_plan_format_versions(&lo, &hi);
  ck_assert_uint_le(lo, hi);
  ck_assert_str_eq(oc_status_message(OC_OK), "ok");
}
END_TEST

/* Counts allocations through the context's allocator hook. */
static int n_allocs;
static void *count_alloc(void *self, size_t bytes, size_t alignment) {
  (void)self;
  n_allocs++;
  return aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
}
static void count_free(void *self, void *p) {
  (void)self;
  free(p);
}

START_TEST(run_does_not_allocate) {
  oc_plan_t *plan = compile_open(MODELS "/typed_fields_mlp/model.onnx", NULL);
  oc_context_options_t co;
  oc_context_options_init(&co);
  co.allocator = (oc_allocator_t){NULL, count_alloc, count_free};
  oc_context_t *ctx;
  expect_ok(oc_context_create(plan, &co, &ctx));
  int after_create = n_allocs;
  ck_assert_int_gt(after_create, 0);
  oc_host_tensor_t x = load(MODELS "/typed_fields_mlp/test_data_set_0/input_0.pb");
  for (int i = 0; i < 10; i++) {
    expect_ok(oc_context_set_input(ctx, 0, 0, x.data, x.bytes));
    expect_ok(oc_context_run(ctx, 0));
  }
  ck_assert_int_eq(n_allocs, after_create);
  oc_host_tensor_free(&x);
  oc_context_release(ctx);
  oc_plan_release(plan);
}
END_TEST

typedef struct thread_arg_s {
  const oc_plan_t *plan;
  const oc_host_tensor_t *x;
  float result[64];
  int ok;
} thread_arg_t;

static void *embed_thread(void *p) {
  thread_arg_t *a = p;
  oc_context_t *ctx;
  if (oc_context_create(a->plan, NULL, &ctx) != OC_OK) return NULL;
  const void *out = NULL;
  size_t bytes = 0;
  int ok = 1;
  for (int i = 0; i < 200 && ok; i++) {
    ok = oc_context_set_input(ctx, 0, 0, a->x->data, a->x->bytes) == OC_OK &&
         oc_context_run(ctx, 0) == OC_OK && oc_context_output(ctx, 0, 0, &out, &bytes) == OC_OK;
  }
  if (ok && bytes <= sizeof a->result) memcpy(a->result, out, bytes);
  a->ok = ok;
  oc_context_release(ctx);
  return NULL;
}

START_TEST(threads_share_a_plan) {
  oc_plan_t *plan = compile_open(MODELS "/typed_fields_mlp/model.onnx", NULL);
  oc_host_tensor_t x = load(MODELS "/typed_fields_mlp/test_data_set_0/input_0.pb");
  thread_arg_t args[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    memset(&args[i], 0, sizeof args[i]);
    args[i].plan = plan;
    args[i].x = &x;
    ck_assert_int_eq(pthread_create(&th[i], NULL, embed_thread, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) {
    ck_assert(args[i].ok);
    ck_assert(memcmp(args[i].result, args[0].result, sizeof args[0].result) == 0);
  }
  oc_host_tensor_free(&x);
  oc_plan_release(plan);
}
END_TEST

/* --- CLIs ---------------------------------------------------------------------- */

static int run_cli(char *const argv[], char *out, size_t out_size) {
  char path[] = "/tmp/onnxc-cli-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  pid_t pid;
  ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int st;
  waitpid(pid, &st, 0);
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, out, out_size - 1);
  out[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(cli_help_and_usage) {
  static char out[65536];
  char *h1[] = {ONNXC_BIN_DIR "/onnxc", "--help", NULL};
  ck_assert_int_eq(run_cli(h1, out, sizeof out), 0);
  ck_assert(strstr(out, "--dim NAME=V") && strstr(out, "--output NAME") && strstr(out, "--inspect"));
  char *h2[] = {ONNXC_BIN_DIR "/onnxrun", "--help", NULL};
  ck_assert_int_eq(run_cli(h2, out, sizeof out), 0);
  ck_assert(strstr(out, "--inputs DIR") && strstr(out, "--outputs DIR") && strstr(out, "--npy"));
  char *u1[] = {ONNXC_BIN_DIR "/onnxc", "--bogus", NULL};
  ck_assert_int_eq(run_cli(u1, out, sizeof out), 2);
  char *u2[] = {ONNXC_BIN_DIR "/onnxc", MODELS "/typed_fields_mlp/model.onnx", NULL};
  ck_assert_int_eq(run_cli(u2, out, sizeof out), 2);
  ck_assert_msg(strstr(out, "-o PLAN.bin") != NULL, "%s", out);
  char *u3[] = {ONNXC_BIN_DIR "/onnxc", "x.onnx", "--dim", "batch", NULL};
  ck_assert_int_eq(run_cli(u3, out, sizeof out), 2);
}
END_TEST

START_TEST(cli_compile_run_inspect) {
  static char out[65536];
  char dir[] = "/tmp/onnxc-cli-dir-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char plan[256], outdir[256], file[300];
  snprintf(plan, sizeof plan, "%s/plan.bin", dir);
  snprintf(outdir, sizeof outdir, "%s/out", dir);
  char *c[] = {ONNXC_BIN_DIR "/onnxc", MODELS "/dynamic_batch_mlp/model.onnx", "-o", plan,
               "--dim", "batch=3", NULL};
  ck_assert_msg(run_cli(c, out, sizeof out) == 0, "%s", out);
  char *r[] = {ONNXC_BIN_DIR "/onnxrun", plan, "--inputs",
               MODELS "/dynamic_batch_mlp/test_data_set_0", "--outputs", outdir, "--npy", NULL};
  ck_assert_msg(run_cli(r, out, sizeof out) == 0, "%s", out);
  snprintf(file, sizeof file, "%s/output_0.npy", outdir);
  oc_host_tensor_t y = load(file), ref = load(MODELS "/dynamic_batch_mlp/test_data_set_0/output_0.pb");
  ck_assert_int_eq(y.rank, 2);
  ck_assert_int_eq(y.dims[0], 3);
  for (size_t i = 0; i < ref.bytes / 4; i++)
    ck_assert(fabsf(((float *)y.data)[i] - ((float *)ref.data)[i]) < 1e-5f);
  oc_host_tensor_free(&y);
  oc_host_tensor_free(&ref);
  char *i1[] = {ONNXC_BIN_DIR "/onnxc", "--inspect", MODELS "/dynamic_batch_mlp/model.onnx", NULL};
  ck_assert_int_eq(run_cli(i1, out, sizeof out), 0);
  ck_assert_msg(strstr(out, "float32[batch,8]") && strstr(out, "212 parameters") &&
                    strstr(out, "Gemm") && strstr(out, "Relu"),
                "%s", out);
  char *i2[] = {ONNXC_BIN_DIR "/onnxc", "--inspect", plan, NULL};
  ck_assert_int_eq(run_cli(i2, out, sizeof out), 0);
  ck_assert_msg(strstr(out, "entry point 'embed'") && strstr(out, "float32[3,8]") &&
                    strstr(out, "float32[3,4]"),
                "%s", out);
  snprintf(file, sizeof file, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(file), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("compile");
  TCase *tc = tcase_create("models");
  tcase_add_test(tc, symbolic_dim_needs_value);
  tcase_add_test(tc, symbolic_dim_from_option);
  tcase_add_test(tc, output_cut);
  tcase_add_test(tc, external_data);
  tcase_add_test(tc, typed_fields_and_initializer_inputs);
  tcase_add_test(tc, shape_arithmetic_folds);
  suite_add_tcase(s, tc);
  TCase *ta = tcase_create("api");
  tcase_add_test(ta, api_misuse);
  tcase_add_test(ta, run_does_not_allocate);
  tcase_add_test(ta, threads_share_a_plan);
  suite_add_tcase(s, ta);
  TCase *tl = tcase_create("cli");
  tcase_add_test(tl, cli_help_and_usage);
  tcase_add_test(tl, cli_compile_run_inspect);
  suite_add_tcase(s, tl);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
