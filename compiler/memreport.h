/* Memory report and picture of a compiled plan (compiler/memreport.c). */
#ifndef ONNXC_MEMREPORT_H
#define ONNXC_MEMREPORT_H

#include "compile.h"

/* JSON: "regions" (name -> bytes), "arena_bytes", "lower_bound_bytes",
 * "peak_step", and "tensors" (one object per arena tensor: "name", "bytes",
 * "offset", "first_step", "last_step" inclusive, and "inplace_of" where it
 * reuses another tensor's bytes in place), for the largest entry point;
 * with --memory-budget also "budget_bytes", "unbudgeted_arena_bytes",
 * "recompute_flops" (extra per step), "step_flops" (before recomputing),
 * "recomputed_instructions", "recompute_strategy" and, for comparison,
 * "chen_recompute_flops" (the cheapest of Chen et al.'s choices that fits
 * by the bound; -1: none). */
oc_status_t oc_memory_report_json(const oc_compiled_t *c, char **out);
/* SVG: x = step, y = offset, a rectangle per tensor coloured forward /
 * backward / optimizer / recomputed, the peak marked. */
oc_status_t oc_memory_report_svg(const oc_compiled_t *c, char **out);

#endif
