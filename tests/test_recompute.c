/*
 * --memory-budget (compiler/recompute.c) on the reference training cases:
 *   - at 60% of the unbudgeted train step arena (a2, a6; a1, a4 and a5 at
 *     the smallest budget that works, which is above 60% for them), the
 *     plan fits the budget, recomputes something (FLOPs > 0), and three SGD
 *     steps from the same state give bit-identical losses, gradients (every
 *     grad:<param>, each step) and final state to the unbudgeted plan's;
 *   - a budget too small fails with RESOURCE_LIMIT naming the smallest
 *     budget that works, and that budget then works;
 *   - onnxc prints the extra FLOPs on stderr and in --memory-report.
 */
#include <check.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compile.h"
#include "json.h"
#include "memplan.h"
#include "tensor_file.h"

extern char **environ;

#define REF ONNXC_TEST_DATA "/reference"
#define ONNXC ONNXC_BIN_DIR "/onnxc"

static const char *const cases[] = {"a2_simclr_smallcnn", "a6_audio_cpc", "a1_mlp_triplet",
                                    "a4_clip_dual", "a5_moco_v2"};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static void train_options(oc_compile_options_t *o, const char *c, uint64_t budget) {
  oc_compile_options_init(o);
  o->train.enabled = 1;
  o->train.lr = 0.05f;
  o->train.momentum = 0.9f;
  o->train.weight_decay = 1e-4f;
  if (!strcmp(c, "a5_moco_v2")) {
    o->train.freeze[0] = "encoder_k\\..*";
    o->train.n_freeze = 1;
  }
  o->memory_budget_bytes = budget;
}

static const oc_entry_t *train_entry(const oc_compiled_t *comp) {
  for (int k = 0; k < comp->n_entries; k++)
    if (!strcmp(comp->entries[k].name, "train_step")) return &comp->entries[k];
  ck_abort_msg("no train_step entry");
  return NULL;
}

static oc_status_t compile_case(const char *c, uint64_t budget, oc_compiled_t **out) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/model.onnx", REF, c);
  oc_compile_options_t o;
  train_options(&o, c, budget);
  return oc_compile_file(path, &o, out);
}

static oc_plan_t *open_plan(const oc_compiled_t *comp) {
  uint8_t *bytes;
  size_t n;
  oc_status_t s = oc_plan_serialize(comp, &bytes, &n);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  oc_plan_t *plan = NULL;
  s = oc_plan_open_memory(bytes, n, NULL, &plan);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  free(bytes);
  return plan;
}

static void bind_inputs(const char *c, oc_plan_t *plan, oc_context_t *ctx, int entry) {
  for (int k = 0;; k++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", REF, c, k);
    if (access(path, R_OK) != 0) break;
    oc_host_tensor_t t;
    oc_status_t s = oc_tensor_file_read(path, &t);
    ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
    int idx = oc_plan_input_index(plan, entry, t.name);
    if (idx >= 0) {
      s = oc_context_set_input(ctx, entry, idx, t.data, t.bytes);
      ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
    }
    oc_host_tensor_free(&t);
  }
}

/* Compares the state tensors of two contexts of plans with the same state
 * (by name); |grads_only| limits it to grad:*. Returns how many matched. */
static int same_state(const char *c, int step, oc_plan_t *pa, oc_context_t *a, oc_plan_t *pb,
                      oc_context_t *b, int grads_only) {
  int n = 0;
  ck_assert_int_eq(oc_plan_state_count(pa), oc_plan_state_count(pb));
  for (int i = 0; i < oc_plan_state_count(pa); i++) {
    oc_tensor_info_t info;
    ck_assert(oc_plan_state_info(pa, i, &info) == OC_OK);
    if (grads_only && strncmp(info.name, "grad:", 5)) continue;
    int j = oc_plan_state_index(pb, info.name);
    ck_assert_msg(j >= 0, "%s: state '%s' missing from the budgeted plan", c, info.name);
    void *x, *y;
    size_t nx, ny;
    ck_assert(oc_context_state(a, i, &x, &nx) == OC_OK);
    ck_assert(oc_context_state(b, j, &y, &ny) == OC_OK);
    ck_assert_uint_eq(nx, ny);
    ck_assert_msg(memcmp(x, y, nx) == 0, "%s: step %d: '%s' differs under the budget", c, step,
                  info.name);
    n++;
  }
  return n;
}

START_TEST(budget_60_percent_is_bit_identical) {
  const char *c = cases[_i];
  oc_compiled_t *full = NULL, *budgeted = NULL;
  oc_status_t s = compile_case(c, 0, &full);
  ck_assert_msg(s == OC_OK, "%s: %s", c, oc_status_message(s));
  uint64_t arena = train_entry(full)->arena_bytes, budget = arena * 6 / 10;
  s = compile_case(c, budget, &budgeted);
  if (s && oc_status_code(s) == OC_STATUS_RESOURCE_LIMIT && _i >= 2) {
    /* a1, a4, a5 do not go down to 60%: the same checks at the smallest
     * budget that works. */
    const char *at = strstr(oc_status_message(s), "the smallest budget that works is ");
    ck_assert_ptr_nonnull(at);
    budget = strtoull(at + strlen("the smallest budget that works is "), NULL, 10);
    printf("%s: 60%% of %llu is out of reach; %llu (%.0f%%) instead\n", c,
           (unsigned long long)arena, (unsigned long long)budget, 100.0 * budget / arena);
    oc_status_free(s);
    s = compile_case(c, budget, &budgeted);
  }
  ck_assert_msg(s == OC_OK, "%s: budget %llu: %s", c, (unsigned long long)budget,
                oc_status_message(s));
  const oc_entry_t *e = train_entry(budgeted);
  printf("%s: arena %llu -> %llu (budget %llu, bound %llu); %d instructions recomputed, "
         "+%llu FLOPs per step (+%.1f%% of %llu), %s; Chen et al.'s cheapest fit: %lld\n",
         c, (unsigned long long)arena, (unsigned long long)e->arena_bytes,
         (unsigned long long)budget, (unsigned long long)e->lower_bound_bytes, e->n_recomputed,
         (unsigned long long)e->recompute_flops,
         100.0 * (double)e->recompute_flops / (double)e->step_flops,
         (unsigned long long)e->step_flops, e->recompute_strategy,
         (long long)e->chen_recompute_flops);
  /* No more than the best of Chen et al.'s choices. */
  ck_assert(e->chen_recompute_flops < 0 || e->recompute_flops <= (uint64_t)e->chen_recompute_flops);
  ck_assert_uint_le(e->arena_bytes, budget);
  ck_assert_uint_eq(e->unbudgeted_arena_bytes, arena);
  ck_assert_uint_gt(e->recompute_flops, 0);
  ck_assert_int_gt(e->n_recomputed, 0);
  ck_assert(oc_memplan_validate(e) == OC_OK);
  oc_plan_t *pa = open_plan(full), *pb = open_plan(budgeted);
  oc_compiled_free(full);
  oc_compiled_free(budgeted);
  int ta, tb;
  ck_assert(oc_plan_find_entry(pa, "train_step", &ta) == OC_OK);
  ck_assert(oc_plan_find_entry(pb, "train_step", &tb) == OC_OK);
  oc_context_t *a, *b;
  ck_assert(oc_context_create(pa, NULL, &a) == OC_OK);
  ck_assert(oc_context_create(pb, NULL, &b) == OC_OK);
  bind_inputs(c, pa, a, ta);
  bind_inputs(c, pb, b, tb);
  for (int step = 1; step <= 3; step++) {
    s = oc_context_run(a, ta);
    ck_assert_msg(s == OC_OK, "%s: %s", c, oc_status_message(s));
    s = oc_context_run(b, tb);
    ck_assert_msg(s == OC_OK, "%s: budgeted: %s", c, oc_status_message(s));
    const void *la, *lb;
    size_t na, nb;
    ck_assert(oc_context_output(a, ta, 0, &la, &na) == OC_OK);
    ck_assert(oc_context_output(b, tb, 0, &lb, &nb) == OC_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(la, lb, na) == 0, "%s: step %d: the loss differs under the budget", c,
                  step);
    int grads = same_state(c, step, pa, a, pb, b, 1);
    ck_assert_int_gt(grads, 0);
    float loss;
    memcpy(&loss, la, sizeof loss);
    printf("%s: step %d: loss %.9g and %d gradients bit-identical\n", c, step, loss, grads);
  }
  int all = same_state(c, 3, pa, a, pb, b, 0);
  printf("%s: after 3 steps all %d state tensors bit-identical\n", c, all);
  oc_context_release(a);
  oc_context_release(b);
  oc_plan_release(pa);
  oc_plan_release(pb);
}
END_TEST

START_TEST(too_small_names_the_smallest_budget) {
  const char *c = cases[_i];
  oc_compiled_t *comp = NULL;
  ck_assert(compile_case(c, 0, &comp) == OC_OK);
  uint64_t arena = train_entry(comp)->arena_bytes;
  oc_compiled_free(comp);
  oc_status_t s = compile_case(c, arena / 10, &comp);
  ck_assert_msg(s != OC_OK, "%s: %llu bytes fit", c, (unsigned long long)(arena / 10));
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_RESOURCE_LIMIT);
  const char *msg = oc_status_message(s), *at = strstr(msg, "the smallest budget that works is ");
  ck_assert_msg(at != NULL, "%s: %s", c, msg);
  unsigned long long smallest = strtoull(at + strlen("the smallest budget that works is "), NULL, 10);
  printf("%s: %s\n", c, msg);
  ck_assert_uint_gt(smallest, arena / 10);
  ck_assert_uint_le(smallest, arena);
  oc_status_free(s);
  s = compile_case(c, smallest, &comp);
  ck_assert_msg(s == OC_OK, "%s: the named budget %llu fails: %s", c, smallest,
                oc_status_message(s));
  ck_assert_uint_le(train_entry(comp)->arena_bytes, smallest);
  oc_compiled_free(comp);
}
END_TEST

static char dir[256];

static int run(char *const argv[], char *err, size_t cap) {
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
  size_t n = f ? fread(err, 1, cap - 1, f) : 0;
  err[n] = 0;
  if (f) fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(cli_reports_the_extra_flops) {
  snprintf(dir, sizeof dir, "/tmp/onnxc-recompute-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char plan[300], report[300], err[4096];
  snprintf(plan, sizeof plan, "%s/plan.bin", dir);
  snprintf(report, sizeof report, "%s/memory.json", dir);
  char *model = REF "/a6_audio_cpc/model.onnx";
  char *argv[] = {ONNXC, model, "-o", plan, "--train", "--lr", "0.05", "--memory-budget", "880K",
                  "--memory-report", report, NULL};
  ck_assert_msg(run(argv, err, sizeof err) == 0, "onnxc --memory-budget: %s", err);
  printf("onnxc said: %s", err);
  ck_assert_msg(strstr(err, "extra FLOPs per step") && strstr(err, "budget of 901120"), "%s", err);
  void *buf;
  size_t n;
  ck_assert(oc_file_read_all(report, &buf, &n) == OC_OK);
  json_t *j = json_parse(buf, n);
  free(buf);
  ck_assert_ptr_nonnull(j);
  ck_assert_uint_eq((uint64_t)json_num(json_get(j, "budget_bytes"), 0), 901120);
  ck_assert(json_num(json_get(j, "arena_bytes"), 1e30) <= 901120);
  ck_assert(json_num(json_get(j, "recompute_flops"), 0) > 0);
  ck_assert(json_num(json_get(j, "step_flops"), 0) > json_num(json_get(j, "recompute_flops"), 0) / 10);
  ck_assert(json_num(json_get(j, "unbudgeted_arena_bytes"), 0) > 901120);
  json_free(j);
  /* Bad values are usage errors; a budget without --train too. */
  char *bad[] = {ONNXC, model, "-o", plan, "--train", "--memory-budget", "12Q", NULL};
  ck_assert_int_eq(run(bad, err, sizeof err), 2);
  char *untrained[] = {ONNXC, model, "-o", plan, "--memory-budget", "1M", NULL};
  ck_assert_int_eq(run(untrained, err, sizeof err), 2);
  char *tiny[] = {ONNXC, model, "-o", plan, "--train", "--memory-budget", "64K", NULL};
  ck_assert_int_eq(run(tiny, err, sizeof err), 1);
  ck_assert_msg(strstr(err, "smallest budget that works") != NULL, "%s", err);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("recompute");
  TCase *tc = tcase_create("budget");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, budget_60_percent_is_bit_identical, 0, N_CASES);
  tcase_add_loop_test(tc, too_small_names_the_smallest_budget, 0, 2);
  tcase_add_test(tc, cli_reports_the_extra_flops);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
