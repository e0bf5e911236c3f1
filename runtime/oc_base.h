/*
 * Internal base layer shared by the runtime and the compiler: status
 * construction, checked arithmetic, small helpers. Not part of the public API.
 */
#ifndef ONNXC_OC_BASE_H
#define ONNXC_OC_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxc/onnxc.h"

#if defined(__GNUC__)
#define OC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define OC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define OC_PRINTF(f, a)
#define OC_UNLIKELY(x) (x)
#endif

/* Makes a status with a formatted message. Never returns NULL: when memory is
 * short it returns a static out-of-memory status. */
oc_status_t oc_make_status(oc_status_code_t code, const char *fmt, ...) OC_PRINTF(2, 3);

/* Prefixes the message of |status| with a formatted context ("node 'x': ")
 * and returns it (a new status; |status| is consumed). OC_OK passes through. */
oc_status_t oc_status_wrap(oc_status_t status, const char *fmt, ...) OC_PRINTF(2, 3);

#define OC_RETURN_IF_ERROR(expr)          \
  do {                                    \
    oc_status_t oc_status_tmp_ = (expr);  \
    if (oc_status_tmp_) return oc_status_tmp_; \
  } while (0)

#define OC_ALIGNMENT 64
static inline uint64_t oc_align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* Checked size arithmetic: return false on overflow. */
static inline bool oc_mul_overflows(uint64_t a, uint64_t b, uint64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}
static inline bool oc_add_overflows(uint64_t a, uint64_t b, uint64_t *out) {
  return __builtin_add_overflow(a, b, out);
}

/* Little-endian integers in file formats (plans, checkpoints). */
static inline void oc_store_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void oc_store_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t oc_load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t oc_load_le64(const uint8_t *p) {
  return (uint64_t)oc_load_le32(p) | (uint64_t)oc_load_le32(p + 4) << 32;
}

/* 64-bit hash of a byte range (XXH64 construction). Used for plan and
 * checkpoint checksums. */
uint64_t oc_hash64(const void *data, size_t bytes, uint64_t seed);

/* Allocator helpers: a zeroed allocator struct means the system allocator. */
oc_allocator_t oc_allocator_or_default(const oc_allocator_t *a);
void *oc_alloc(const oc_allocator_t *a, size_t bytes);  /* 64-byte aligned, zeroed */
void oc_free(const oc_allocator_t *a, void *p);

/* strdup that returns NULL on NULL. */
char *oc_strdup(const char *s);

#endif
