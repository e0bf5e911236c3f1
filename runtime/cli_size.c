/* Size arguments of the CLIs (see cli_size.h). */
#include "cli_size.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int oc_parse_size(const char *s, uint64_t *out) {
  char *end;
  if (!isdigit((unsigned char)s[0])) return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  int shift = 0;
  if (*end) {
    const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*end));
    if (!u || end[1]) return -1;
    shift = 10 * (int)(u - units + 1);
  }
  if (v == 0 || v > ((unsigned long long)1 << 62) >> shift) return -1;
  *out = (uint64_t)v << shift;
  return 0;
}
