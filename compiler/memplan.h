/* Memory planning (compiler/memplan.c). */
#ifndef ONNXC_MEMPLAN_H
#define ONNXC_MEMPLAN_H

#include "compile.h"

/* Gives every run-time value of the program (inputs, temporaries, kernel
 * workspaces) an offset in one arena, so that no two values live at the same
 * time overlap: first the schedule moves each state update (a gradient
 * stored into grad:<name>) up to where its inputs are final, then liveness
 * over the schedule, greedy placements with gap filling and a bottom-up
 * search, 64-byte aligned. Fills e->arena_offset (per value; UINT64_MAX for
 * values not in the arena) and e->arena_bytes. Workspaces become values
 * named "<node>/workspace". */
oc_status_t oc_memplan_run(oc_entry_t *e);

/* oc_memplan_run for a program whose workspaces are values already: reads
 * e->graph, writes only the plan fields of |e|. */
oc_status_t oc_memplan_place(oc_entry_t *e);

/* The liveness lower bound of |e|'s program as it stands: the largest sum of
 * live arena bytes (in-place chains counted once, 64-byte aligned) at any
 * step, the first step that reaches it and, if |byte_steps| is not NULL,
 * the sum over steps of the live bytes. Workspaces count only where
 * instructions already name them (ins->workspace >= 0). Changes nothing. */
oc_status_t oc_memplan_lower_bound(const oc_entry_t *e, uint64_t *bytes, int *peak_step,
                                   double *byte_steps);

/* The step at which each arena value of |e| is first and last live
 * (INT32_MIN for values that are not in the arena or not used). Arrays hold
 * e->graph->n_values entries. */
void oc_memplan_lifetimes(const oc_entry_t *e, int *first, int *last);

/* Checks the memory plan of |e|: no two arena values whose lifetimes overlap share
 * a byte. Returns OC_STATUS_INTERNAL naming the pair otherwise. */
oc_status_t oc_memplan_validate(const oc_entry_t *e);

#endif
