/* What the compiler checks before it writes a plan: the limits the runtime's
 * loader enforces (runtime/plan_format.h), so onnxc never writes a plan that
 * no runtime opens (compiler/plan_limits.c). */
#ifndef ONNXC_PLAN_LIMITS_H
#define ONNXC_PLAN_LIMITS_H

#include "compile.h"

/* One planned entry point: its arena and instruction count. */
oc_status_t oc_check_entry_limits(const oc_entry_t *e);
/* The whole plan: its state (shared by name between entry points) and its
 * tensor count. */
oc_status_t oc_check_plan_limits(const oc_compiled_t *c);

#endif
