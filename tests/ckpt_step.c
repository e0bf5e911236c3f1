/*
 * ckpt_step PLAN CHECKPOINT: opens a training plan, loads the checkpoint into
 * a fresh context and prints its step count ("opt:step") on stdout.
 *
 * Exit status: 0 and the count on success; 1 and one line
 * "ckpt_step: error: ..." when the plan or the checkpoint does not load (a
 * damaged checkpoint included); 2 on bad usage. Used by tests/test_kill9.sh
 * (public API only).
 */
#include <inttypes.h>
#include <stdio.h>

#include "onnxc/onnxc.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ckpt_step PLAN CHECKPOINT\n");
    return 2;
  }
  oc_plan_t *plan = NULL;
  oc_context_t *ctx = NULL;
  int64_t steps = -1;
  oc_status_t s = oc_plan_open_file(argv[1], NULL, &plan);
  if (!s) s = oc_context_create(plan, NULL, &ctx);
  if (!s) s = oc_context_load_checkpoint(ctx, argv[2]);
  if (!s) s = oc_context_step_count(ctx, &steps);
  oc_context_release(ctx);
  oc_plan_release(plan);
  if (s) {
    fprintf(stderr, "ckpt_step: error: %s\n", oc_status_message(s));
    oc_status_free(s);
    return 1;
  }
  printf("%" PRId64 "\n", steps);
  return 0;
}
