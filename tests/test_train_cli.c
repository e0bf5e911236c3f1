/*
 * Training through the command line, in separate processes:
 *   resume:  4 steps straight, and 2 steps + checkpoint + 2 steps in a new
 *            process, end in bit-identical checkpoints and logs;
 *   nan:     a batch holding NaN stops at step 1 with an error naming the step
 *            and the first node that made NaN, and writes no checkpoint;
 *   export:  the trained model exported to ONNX, compiled again, embeds what
 *            the training plan's embed entry does with the same state;
 *   micro-batch: --micro-batch/--cut (GradCache) train like the full batch in
 *            a third of its arena; an indivisible batch is an error and
 *            BatchNorm in the encoders a warning.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "tensor_file.h"

extern char **environ;

#define CASE ONNXC_TEST_DATA "/reference/a2_simclr_smallcnn"
#define ONNXC ONNXC_BIN_DIR "/onnxc"
#define ONNXRUN ONNXC_BIN_DIR "/onnxrun"

static char dir[256];
static char err[8192];

static int run(char *const argv[]) {
  char errpath[300];
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int st;
  waitpid(pid, &st, 0);
  FILE *f = fopen(errpath, "r");
  size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
  err[n] = 0;
  if (f) fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *path(const char *name) {
  static char buf[8][400];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void *slurp(const char *p, size_t *n) {
  void *b;
  oc_status_t s = oc_file_read_all(p, &b, n);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  return b;
}

static void compile_train_plan(void) {
  char *argv[] = {ONNXC, CASE "/model.onnx", "-o", path("plan.bin"), "--train", "--lr", "0.05",
                  "--momentum", "0.9", "--weight-decay", "1e-4", NULL};
  ck_assert_msg(run(argv) == 0, "onnxc --train: %s", err);
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/onnxc-train-cli-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

START_TEST(resume_is_bit_exact) {
  compile_train_plan();
  char *straight[] = {ONNXRUN, path("plan.bin"), "--inputs", CASE "/test_data_set_0", "--steps",
                      "4", "--log", path("log4.txt"), "--save-checkpoint", path("ck4"), NULL};
  ck_assert_msg(run(straight) == 0, "%s", err);
  char *first[] = {ONNXRUN, path("plan.bin"), "--inputs", CASE "/test_data_set_0", "--steps", "2",
                   "--log", path("log2a.txt"), "--save-checkpoint", path("ck2"), NULL};
  ck_assert_msg(run(first) == 0, "%s", err);
  char *second[] = {ONNXRUN, path("plan.bin"), "--inputs", CASE "/test_data_set_0",
                    "--load-checkpoint", path("ck2"), "--steps", "2", "--log", path("log2b.txt"),
                    "--save-checkpoint", path("ck2b"), NULL};
  ck_assert_msg(run(second) == 0, "%s", err);
  size_t n4, n2;
  char *c4 = slurp(path("ck4"), &n4), *c2 = slurp(path("ck2b"), &n2);
  ck_assert_uint_eq(n4, n2);
  ck_assert_msg(memcmp(c4, c2, n4) == 0, "the resumed run's state differs from the straight run's");
  free(c4);
  free(c2);
  /* The logs agree line for line, to the printed bit. */
  char *l4 = slurp(path("log4.txt"), &n4);
  size_t na, nb;
  char *la = slurp(path("log2a.txt"), &na), *lb = slurp(path("log2b.txt"), &nb);
  ck_assert_uint_eq(na + nb, n4);
  ck_assert(memcmp(l4, la, na) == 0 && memcmp(l4 + na, lb, nb) == 0);
  /* Losses fall on a repeated batch. */
  double v[4];
  ck_assert_int_eq(sscanf(l4, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]), 4);
  ck_assert(v[3] < v[0]);
  free(l4);
  free(la);
  free(lb);
}
END_TEST

START_TEST(nan_stops_training) {
  compile_train_plan();
  /* A batch with one NaN pixel in view 1. */
  mkdir(path("bad"), 0777);
  for (int k = 0; k < 2; k++) {
    char src[300], dst[300];
    snprintf(src, sizeof src, CASE "/test_data_set_0/input_%d.pb", k);
    snprintf(dst, sizeof dst, "%s/bad/input_%d.pb", dir, k);
    oc_host_tensor_t t;
    ck_assert(oc_tensor_file_read(src, &t) == OC_OK);
    if (k == 0) ((float *)t.data)[5] = NAN;
    ck_assert(oc_tensor_file_write_pb(dst, &t) == OC_OK);
    oc_host_tensor_free(&t);
  }
  char *argv[] = {ONNXRUN, path("plan.bin"), "--inputs", path("bad"), "--steps", "3",
                  "--save-checkpoint", path("ck"), NULL};
  ck_assert_int_eq(run(argv), 1);
  ck_assert_msg(strstr(err, "step 1") && strstr(err, "first NaN came from node"), "%s", err);
  struct stat st;
  ck_assert_msg(stat(path("ck"), &st) != 0, "a checkpoint was written");
}
END_TEST

START_TEST(export_matches_plan) {
  compile_train_plan();
  char *train[] = {ONNXRUN, path("plan.bin"), "--inputs", CASE "/test_data_set_0", "--steps", "3",
                   "--save-checkpoint", path("ck"), "--export-onnx", path("trained.onnx"), NULL};
  ck_assert_msg(run(train) == 0, "%s", err);
  /* The plan's embed entry on the trained state ... */
  char *embed[] = {ONNXRUN, path("plan.bin"), "--inputs", CASE "/test_data_set_0",
                   "--load-checkpoint", path("ck"), "--outputs", path("plan_out"), NULL};
  ck_assert_msg(run(embed) == 0, "%s", err);
  /* ... equals the exported model's own forward, compiled anew. The export is
   * the training graph (training-mode BatchNorm): compile it cut at the
   * embedding with inference semantics through --train's embed entry. */
  char *compile[] = {ONNXC, path("trained.onnx"), "-o", path("trained.plan"), "--train", NULL};
  ck_assert_msg(run(compile) == 0, "%s", err);
  char *embed2[] = {ONNXRUN, path("trained.plan"), "--inputs", CASE "/test_data_set_0",
                    "--outputs", path("export_out"), NULL};
  ck_assert_msg(run(embed2) == 0, "%s", err);
  size_t n1, n2;
  char *a = slurp(path("plan_out/output_0.pb"), &n1), *b = slurp(path("export_out/output_0.pb"), &n2);
  ck_assert_uint_eq(n1, n2);
  ck_assert_msg(memcmp(a, b, n1) == 0, "the exported model embeds differently");
  free(a);
  free(b);
}
END_TEST

/* ONNX Runtime runs the exported (trained) model and gets the embeddings the
 * plan's embed entry computes. a1 (no BatchNorm) runs in ORT's inference
 * build as exported. */
START_TEST(export_runs_in_onnxruntime) {
  char ort[512];
  snprintf(ort, sizeof ort, "%s/node_modules/onnxruntime-node", ONNXC_ORT_DIR);
  struct stat st;
  if (stat(ort, &st) != 0) {
    ck_assert_msg(system("command -v npm >/dev/null 2>&1") != 0,
                  "onnxruntime-node is missing from %s but npm exists: run scripts/setup.sh",
                  ONNXC_ORT_DIR);
    printf("export_runs_in_onnxruntime: SKIPPED: npm is absent, so ONNX Runtime is not installed\n");
    return;
  }
#define A1 ONNXC_TEST_DATA "/reference/a1_mlp_triplet"
  char *compile[] = {ONNXC, A1 "/model.onnx", "-o", path("plan.bin"), "--train", "--lr", "0.05",
                     "--momentum", "0.9", NULL};
  ck_assert_msg(run(compile) == 0, "%s", err);
  char *train[] = {ONNXRUN, path("plan.bin"), "--inputs", A1 "/test_data_set_0", "--steps", "3",
                   "--export-onnx", path("trained.onnx"), "--save-checkpoint", path("ck"), NULL};
  ck_assert_msg(run(train) == 0, "%s", err);
  char *embed[] = {ONNXRUN, path("plan.bin"), "--inputs", A1 "/test_data_set_0", "--load-checkpoint",
                   path("ck"), "--outputs", path("plan_out"), "--npy", NULL};
  ck_assert_msg(run(embed) == 0, "%s", err);
  /* The batch as .npy for the ORT side. */
  char specs[3][400];
  const char *names[3] = {"anchor", "positive", "negative"};
  for (int k = 0; k < 3; k++) {
    char src[300];
    snprintf(src, sizeof src, A1 "/test_data_set_0/input_%d.pb", k);
    oc_host_tensor_t t;
    ck_assert(oc_tensor_file_read(src, &t) == OC_OK);
    ck_assert_str_eq(t.name, names[k]);
    snprintf(specs[k], sizeof specs[k], "%s=%s/%s.npy", names[k], dir, names[k]);
    ck_assert(oc_tensor_file_write_npy(strchr(specs[k], '=') + 1, &t) == OC_OK);
    oc_host_tensor_free(&t);
  }
  setenv("ONNXC_ORT_DIR", ONNXC_ORT_DIR, 1);
  char *node[] = {"/usr/bin/node", ONNXC_SOURCE_DIR "/tests/ort/run_model.js", path("trained.onnx"),
                  path("ort_out"), specs[0], specs[1], specs[2], NULL};
  ck_assert_msg(run(node) == 0, "ONNX Runtime: %s", err);
  oc_host_tensor_t a, b;
  ck_assert(oc_tensor_file_read(path("plan_out/output_0.npy"), &a) == OC_OK);
  ck_assert(oc_tensor_file_read(path("ort_out/embedding.npy"), &b) == OC_OK);
  ck_assert_uint_eq(a.bytes, b.bytes);
  double worst = 0;
  for (size_t i = 0; i < a.bytes / 4; i++) {
    double x = ((float *)a.data)[i], y = ((float *)b.data)[i];
    double e = fabs(x - y) / (1e-6 + 1e-5 * fabs(y));
    if (e > worst) worst = e;
  }
  printf("export_runs_in_onnxruntime: embeddings within %.3g of 1e-6 + 1e-5|ref|\n", worst);
  ck_assert_msg(worst <= 1, "ONNX Runtime's embeddings differ (%.3g x the tolerance)", worst);
  oc_host_tensor_free(&a);
  oc_host_tensor_free(&b);
}
END_TEST

#define GRADCACHE ONNXC_TEST_DATA "/gradcache"

/* arena_bytes of a --memory-report. */
static double report_arena(const char *file) {
  size_t n;
  char *text = slurp(file, &n);
  json_t *j = json_parse(text, n);
  ck_assert_ptr_nonnull(j);
  double bytes = json_num(json_get(j, "arena_bytes"), -1);
  json_free(j);
  free(text);
  return bytes;
}

START_TEST(micro_batch) {
  char *full[] = {ONNXC, GRADCACHE "/model.onnx", "-o", path("full.bin"), "--train",
                  "--memory-report", path("full.json"), NULL};
  ck_assert_msg(run(full) == 0, "%s", err);
  char *gc[] = {ONNXC, GRADCACHE "/model.onnx", "-o", path("gc.bin"), "--train", "--micro-batch",
                "8", "--cut", "embedding,/Add_7_output_0", "--memory-report", path("gc.json"), NULL};
  ck_assert_msg(run(gc) == 0, "%s", err);
  ck_assert_str_eq(err, "");
  double a_full = report_arena(path("full.json")), a_gc = report_arena(path("gc.json"));
  ck_assert_msg(a_gc > 0 && a_gc * 3 <= a_full, "arena %.0f bytes vs %.0f", a_gc, a_full);
  char *logs[2] = {path("full.txt"), path("gc.txt")}, *plans[2] = {path("full.bin"), path("gc.bin")};
  double loss[2][3];
  for (int k = 0; k < 2; k++) {
    char *argv[] = {ONNXRUN, plans[k], "--inputs", GRADCACHE "/test_data_set_0", "--steps", "3",
                    "--log", logs[k], NULL};
    ck_assert_msg(run(argv) == 0, "%s", err);
    size_t n;
    char *text = slurp(logs[k], &n);
    ck_assert_int_eq(sscanf(text, "%lf %lf %lf", &loss[k][0], &loss[k][1], &loss[k][2]), 3);
    free(text);
  }
  for (int i = 0; i < 3; i++)
    ck_assert_msg(fabs(loss[1][i] - loss[0][i]) <= 1e-5 * fabs(loss[0][i]), "step %d: %.9g vs %.9g",
                  i + 1, loss[1][i], loss[0][i]);
  char *odd[] = {ONNXC, GRADCACHE "/model.onnx", "-o", path("odd.bin"), "--train", "--micro-batch",
                 "7", NULL};
  ck_assert_int_eq(run(odd), 1);
  ck_assert_msg(strstr(err, "--micro-batch 7: the batch (64 rows"), "%s", err);
  struct stat st;
  ck_assert_msg(stat(path("odd.bin"), &st) != 0, "a plan was written");
  char *cut_alone[] = {ONNXC, GRADCACHE "/model.onnx", "-o", path("x.bin"), "--train", "--cut",
                       "embedding", NULL};
  ck_assert_int_eq(run(cut_alone), 2);
  char *bn[] = {ONNXC, CASE "/model.onnx", "-o", path("bn.bin"), "--train", "--micro-batch", "4",
                NULL};
  ck_assert_msg(run(bn) == 0, "%s", err);
  ck_assert_msg(strstr(err, "onnxc: warning: --micro-batch 4:") && strstr(err, "BatchNormalization"),
                "%s", err);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train_cli");
  TCase *tc = tcase_create("cli");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, resume_is_bit_exact);
  tcase_add_test(tc, nan_stops_training);
  tcase_add_test(tc, export_matches_plan);
  tcase_add_test(tc, export_runs_in_onnxruntime);
  tcase_add_test(tc, micro_batch);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
