/*
 * The memory planner on random programs: over 1,000 random DAGs (random
 * sizes, fan-in, workspaces, in-place candidates, several entry outputs) the
 * validator finds no two simultaneously live tensors overlapping, and the
 * arena is never below the liveness lower bound. The validator itself must
 * catch a broken placement. Every entry point of the reference cases plans
 * within 1% of its lower bound, and their train steps store each gradient
 * as soon as it is final.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "memplan.h"

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A random program: |n| instructions over float32 vectors. Ops are Copy (in
 * place allowed) when the output has its input's size, else Concat of two
 * values (never in place); some instructions get a workspace. */
static void random_entry(oc_entry_t *e, int n) {
  oc_graph_t *g = oc_graph_new();
  e->graph = g;
  int n_in = 1 + (int)(next() % 3);
  e->inputs = malloc(sizeof(int) * (size_t)n_in);
  for (int k = 0; k < n_in; k++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", k);
    int v = oc_graph_value(g, name);
    g->values[v].kind = OC_VALUE_INPUT;
    g->values[v].known = 1;
    g->values[v].type = (oc_tensor_t){.dtype = OC_DTYPE_FLOAT32, .rank = 1,
                                      .dims = {1 + (int64_t)(next() % 5000)}};
    e->inputs[e->n_inputs++] = v;
  }
  for (int i = 0; i < n; i++) {
    int a = (int)(next() % (uint64_t)g->n_values), b = (int)(next() % (uint64_t)g->n_values);
    int64_t len = next() % 4 == 0 ? 0 : 1 + (int64_t)(next() % 20000);
    int same = next() % 2;
    if (same) len = g->values[a].type.dims[0];
    char name[32];
    snprintf(name, sizeof name, "v%d", i);
    int out = oc_graph_value(g, name);
    g->values[out].known = 1;
    g->values[out].type = (oc_tensor_t){.dtype = OC_DTYPE_FLOAT32, .rank = 1, .dims = {len}};
    int in[2] = {a, b};
    int idx = same ? oc_graph_add_instr(g, OC_OP_COPY, 1, in, 1, &out, &len, 1, NULL, 0, name)
                   : oc_graph_add_instr(g, OC_OP_CONCAT, 2, in, 1, &out, NULL, 0, NULL, 0, name);
    g->values[out].producer = idx;
    if (next() % 5 == 0) g->instrs[idx].workspace_bytes = 1 + next() % 30000;
  }
  int n_out = 1 + (int)(next() % 3);
  e->outputs = malloc(sizeof(int) * (size_t)n_out);
  for (int k = 0; k < n_out; k++) {
    int v = g->n_values - 1 - (int)(next() % (uint64_t)(n < 4 ? 1 : 4));
    int dup = 0;
    for (int j = 0; j < e->n_outputs; j++) dup |= e->outputs[j] == v;
    if (!dup) e->outputs[e->n_outputs++] = v;
  }
}

static void free_entry(oc_entry_t *e) {
  oc_graph_free(e->graph);
  free(e->arena_offset);
  free(e->inplace_of);
  free(e->inputs);
  free(e->outputs);
}

START_TEST(random_dags) {
  int inplace = 0, at_bound = 0;
  double worst = 1;
  for (int k = 0; k < 1200; k++) {
    oc_entry_t e = {0};
    random_entry(&e, 1 + (int)(next() % 60));
    oc_status_t s = oc_memplan_run(&e); /* runs the validator too */
    ck_assert_msg(s == OC_OK, "DAG %d: %s", k, oc_status_message(s));
    ck_assert_msg(e.arena_bytes >= e.lower_bound_bytes, "DAG %d: arena %llu below the bound %llu",
                  k, (unsigned long long)e.arena_bytes, (unsigned long long)e.lower_bound_bytes);
    for (int v = 0; v < e.graph->n_values; v++) inplace += e.inplace_of[v] >= 0;
    at_bound += e.arena_bytes == e.lower_bound_bytes;
    if (e.lower_bound_bytes && (double)e.arena_bytes / e.lower_bound_bytes > worst)
      worst = (double)e.arena_bytes / e.lower_bound_bytes;
    free_entry(&e);
  }
  printf("random DAGs: 1200 planned, %d at the lower bound, worst arena/bound %.3f, %d in place\n",
         at_bound, worst, inplace);
  ck_assert_int_gt(inplace, 0);
}
END_TEST

START_TEST(validator_catches_overlap) {
  for (int k = 0; k < 50; k++) {
    oc_entry_t e = {0};
    random_entry(&e, 10 + (int)(next() % 20));
    ck_assert(oc_memplan_run(&e) == OC_OK);
    /* Put every arena value at offset 0: any two live at once now collide. */
    int live_pairs = e.graph->n_values > 2;
    for (int v = 0; v < e.graph->n_values; v++)
      if (e.arena_offset[v] != UINT64_MAX) e.arena_offset[v] = 0;
    oc_status_t s = oc_memplan_validate(&e);
    if (live_pairs) {
      ck_assert_msg(s != OC_OK, "DAG %d: overlapping placement not caught", k);
      ck_assert_int_eq(oc_status_code(s), OC_STATUS_INTERNAL);
    }
    oc_status_free(s);
    free_entry(&e);
  }
}
END_TEST

/* The acceptance bar on the reference cases in tests/data/reference: every
 * entry point (as exported, and the train step and inference embed of
 * --train) plans within 1% of its liveness lower bound. */
START_TEST(reference_cases_near_bound) {
  static const char *const cases[] = {"a1_mlp_triplet", "a2_simclr_smallcnn",
                                      "a2b_simclr_smallcnn_opset17", "a4_clip_dual",
                                      "a5_moco_v2", "a6_audio_cpc"};
  double worst = 1;
  for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
    for (int train = 0; train < 2; train++) {
      char path[512];
      snprintf(path, sizeof path, "%s/reference/%s/model.onnx", ONNXC_TEST_DATA, cases[c]);
      oc_compile_options_t o;
      oc_compile_options_init(&o);
      o.train.enabled = train;
      if (!strcmp(cases[c], "a5_moco_v2")) {
        o.train.freeze[0] = "encoder_k\\..*";
        o.train.n_freeze = train;
      }
      oc_compiled_t *comp = NULL;
      oc_status_t s = oc_compile_file(path, &o, &comp);
      ck_assert_msg(s == OC_OK, "%s: %s", cases[c], oc_status_message(s));
      for (int k = 0; k < comp->n_entries; k++) {
        const oc_entry_t *e = &comp->entries[k];
        double r = (double)e->arena_bytes / (double)e->lower_bound_bytes;
        printf("%-28s %-5s %-10s arena %9llu  bound %9llu  %.4f (%s)\n", cases[c],
               train ? "train" : "plain", e->name, (unsigned long long)e->arena_bytes,
               (unsigned long long)e->lower_bound_bytes, r, e->strategy);
        ck_assert_msg(e->arena_bytes >= e->lower_bound_bytes && r <= 1.01,
                      "%s %s: arena %llu is %.4f x the bound %llu", cases[c], e->name,
                      (unsigned long long)e->arena_bytes, r,
                      (unsigned long long)e->lower_bound_bytes);
        ck_assert(oc_memplan_validate(e) == OC_OK);
        if (r > worst) worst = r;
        /* Each gradient is stored as soon as it is final: between the
         * instruction that makes it and its Assign into grad:<name>, only
         * other state updates. */
        const oc_graph_t *g = e->graph;
        for (int i = 0; i < g->n_instrs; i++) {
          const oc_instr_t *ins = &g->instrs[i];
          if (ins->op != OC_OP_ASSIGN || strncmp(g->values[ins->in[0]].name, "grad:", 5)) continue;
          int p = g->values[ins->in[1]].producer;
          for (int j = p + 1; p >= 0 && j < i; j++)
            ck_assert_msg(g->instrs[j].op == OC_OP_ASSIGN || g->instrs[j].n_out == 0,
                          "%s: '%s' is stored %d steps after it is final", cases[c],
                          g->values[ins->in[1]].name, i - p);
        }
      }
      oc_compiled_free(comp);
    }
  }
  printf("reference cases: worst arena / bound %.4f\n", worst);
}
END_TEST

int main(void) {
  Suite *s = suite_create("memplan");
  TCase *tc = tcase_create("plan");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, random_dags);
  tcase_add_test(tc, validator_catches_overlap);
  tcase_add_test(tc, reference_cases_near_bound);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
