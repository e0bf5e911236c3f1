/* `onnxc --inspect` (compiler/inspect.c). */
#ifndef ONNXC_INSPECT_H
#define ONNXC_INSPECT_H

#include "ir.h"

/* Summarizes the model or plan in |path| (told apart by the plan magic) as
 * text; *out_text is malloc'd (free() it). */
oc_status_t oc_inspect_file(const char *path, char **out_text);

#endif
