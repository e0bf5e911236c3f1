/* Status values: a code and a message, NULL meaning OK. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oc_base.h"

struct oc_status_s {
  oc_status_code_t code;
  char message[];
};

/* Returned when a status itself cannot be allocated; never freed. */
static struct {
  oc_status_code_t code;
  char message[32];
} oom_status = {OC_STATUS_OUT_OF_MEMORY, "out of memory"};

#define OOM_STATUS ((oc_status_t)(void *)&oom_status)

static oc_status_t status_vmake(oc_status_code_t code, const char *prefix, const char *fmt,
                                va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  size_t plen = prefix ? strlen(prefix) : 0;
  oc_status_t s = malloc(sizeof(*s) + (size_t)n + plen + 1);
  if (!s) return OOM_STATUS;
  s->code = code;
  vsnprintf(s->message, (size_t)n + 1, fmt, ap);
  if (prefix) memcpy(s->message + n, prefix, plen + 1);
  return s;
}

oc_status_t oc_make_status(oc_status_code_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  oc_status_t s = status_vmake(code, NULL, fmt, ap);
  va_end(ap);
  return s;
}

oc_status_t oc_status_wrap(oc_status_t status, const char *fmt, ...) {
  if (!status) return status;
  if (status == OOM_STATUS) return status;
  va_list ap;
  va_start(ap, fmt);
  oc_status_t s = status_vmake(status->code, status->message, fmt, ap);
  va_end(ap);
  if (s == OOM_STATUS) return status; /* keep the original message */
  free(status);
  return s;
}

oc_status_code_t oc_status_code(oc_status_t status) {
  return status ? status->code : OC_STATUS_OK;
}

const char *oc_status_message(oc_status_t status) { return status ? status->message : "ok"; }

const char *oc_status_code_name(oc_status_code_t code) {
  switch (code) {
    case OC_STATUS_OK: return "OK";
    case OC_STATUS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case OC_STATUS_NOT_FOUND: return "NOT_FOUND";
    case OC_STATUS_IO: return "IO";
    case OC_STATUS_CORRUPT: return "CORRUPT";
    case OC_STATUS_VERSION: return "VERSION";
    case OC_STATUS_UNSUPPORTED: return "UNSUPPORTED";
    case OC_STATUS_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case OC_STATUS_RESOURCE_LIMIT: return "RESOURCE_LIMIT";
    case OC_STATUS_NUMERIC: return "NUMERIC";
    case OC_STATUS_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

void oc_status_free(oc_status_t status) {
  if (status && status != OOM_STATUS) free(status);
}
