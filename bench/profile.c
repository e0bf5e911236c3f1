/*
 * Per-instruction profile of an entry point (a development tool of the speed
 * benchmark; it uses the runtime's internals).
 *
 *   profile PLAN ENTRY INPUT_DIR THREADS REPEAT
 *
 * Binds DIR/input_K.pb|npy by position, runs ENTRY once, then REPEAT times
 * with a clock around every instruction: prints the time per op type and the
 * 25 slowest instructions (mean ms per run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plan_internal.h"
#include "tensor_file.h"

/* PROFILE_CPU=1: this thread's CPU time instead of wall time (with THREADS
 * 1: steadier numbers on a loaded machine). */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(clock_id, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int die(oc_status_t s) {
  fprintf(stderr, "profile: %s\n", oc_status_message(s));
  return 1;
}

typedef struct {
  int i;
  double ms;
} item_t;

static int by_ms(const void *a, const void *b) {
  double x = ((const item_t *)a)->ms, y = ((const item_t *)b)->ms;
  return (x < y) - (x > y);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: profile PLAN ENTRY INPUT_DIR THREADS REPEAT\n");
    return 2;
  }
  oc_plan_t *plan;
  oc_context_t *ctx;
  int entry;
  if (getenv("PROFILE_CPU") && atoi(getenv("PROFILE_CPU"))) clock_id = CLOCK_THREAD_CPUTIME_ID;
  oc_status_t s = oc_plan_open_file(argv[1], NULL, &plan);
  if (s) return die(s);
  if ((s = oc_plan_find_entry(plan, argv[2], &entry))) return die(s);
  oc_context_options_t o;
  oc_context_options_init(&o);
  o.threads = atoi(argv[4]);
  if ((s = oc_context_create(plan, &o, &ctx))) return die(s);
  for (int k = 0; k < oc_plan_input_count(plan, entry); k++) {
    char path[4096];
    oc_host_tensor_t t;
    snprintf(path, sizeof path, "%s/input_%d.npy", argv[3], k);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    else snprintf(path, sizeof path, "%s/input_%d.pb", argv[3], k);
    if ((s = oc_tensor_file_read(path, &t))) return die(s);
    if ((s = oc_context_set_input(ctx, entry, k, t.data, t.bytes))) return die(s);
    oc_host_tensor_free(&t);
  }
  if ((s = oc_context_run(ctx, entry))) return die(s);
  const oc_plan_entry_t *e = &plan->entries[entry];
  const entry_exec_t *x = &ctx->exec[entry];
  int repeat = atoi(argv[5]);
  item_t *items = calloc((size_t)e->n_instrs + 1, sizeof(item_t));
  double total = 0;
  for (int r = 0; r < repeat; r++) {
    for (int i = 0; i < e->n_instrs; i++) {
      double t0 = now_ms();
      s = oc_op_get(e->instrs[i].op)->run(&x->calls[i]);
      double dt = now_ms() - t0;
      if (s) return die(s);
      items[i].i = i;
      items[i].ms += dt / repeat;
      total += dt / repeat;
    }
  }
  double per_op[OC_OP_COUNT] = {0};
  int count[OC_OP_COUNT] = {0};
  for (int i = 0; i < e->n_instrs; i++) {
    per_op[e->instrs[i].op] += items[i].ms;
    count[e->instrs[i].op]++;
  }
  printf("total %.3f ms per run, %d instructions\n\nby op:\n", total, e->n_instrs);
  item_t ops[OC_OP_COUNT];
  for (int k = 0; k < OC_OP_COUNT; k++) ops[k] = (item_t){k, per_op[k]};
  qsort(ops, OC_OP_COUNT, sizeof(item_t), by_ms);
  for (int k = 0; k < OC_OP_COUNT && ops[k].ms > 0; k++)
    printf("  %-22s %4d  %9.3f ms  %5.1f%%\n", oc_op_get(ops[k].i)->name, count[ops[k].i],
           ops[k].ms, 100 * ops[k].ms / total);
  qsort(items, (size_t)e->n_instrs, sizeof(item_t), by_ms);
  printf("\nslowest instructions:\n");
  for (int k = 0; k < e->n_instrs && k < 25; k++) {
    const oc_plan_instr_t *ins = &e->instrs[items[k].i];
    const oc_tensor_t *y = x->calls[items[k].i].n_out ? x->calls[items[k].i].out[0] : NULL;
    char shape[128] = "";
    if (y) {
      int n = 0;
      for (int d = 0; d < y->rank && n < 100; d++)
        n += snprintf(shape + n, sizeof shape - (size_t)n, d ? "x%lld" : "%lld",
                      (long long)y->dims[d]);
    }
    printf("  %9.3f ms  %-16s %-20s %s\n", items[k].ms, oc_op_get(ins->op)->name, shape, ins->node);
  }
  free(items);
  oc_context_release(ctx);
  oc_plan_release(plan);
  return 0;
}
