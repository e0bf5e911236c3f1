/* Size arguments of the CLIs (onnxc and onnxrun --max-memory and friends). */
#ifndef ONNXC_CLI_SIZE_H
#define ONNXC_CLI_SIZE_H

#include <stdint.h>

/* Parses a count or byte size: decimal digits with an optional K, M, G or T
 * suffix (powers of 1024; lower case too) into [1, 2^62]. 0 on success. */
int oc_parse_size(const char *s, uint64_t *out);

#endif
