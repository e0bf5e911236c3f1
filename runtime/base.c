/* Small shared helpers: dtypes, allocators, hashing. */
#include <stdlib.h>
#include <string.h>

#include "oc_base.h"

size_t oc_dtype_size(int dtype) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32: return 4;
    case OC_DTYPE_INT32: return 4;
    case OC_DTYPE_INT64: return 8;
    case OC_DTYPE_BOOL: return 1;
    case OC_DTYPE_UINT8: return 1;
    case OC_DTYPE_INT8: return 1;
    case OC_DTYPE_FLOAT64: return 8;
    default: return 0;
  }
}

const char *oc_dtype_name(int dtype) {
  /* ONNX TensorProto.DataType numbering. */
  static const char *const names[] = {
      "undefined", "float32", "uint8",  "int8",      "uint16",     "int16",
      "int32",     "int64",   "string", "bool",      "float16",    "double",
      "uint32",    "uint64",  "complex64", "complex128", "bfloat16",
      "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
      "uint4", "int4"};
  if (dtype >= 0 && (size_t)dtype < sizeof(names) / sizeof(names[0])) return names[dtype];
  return "unknown-dtype";
}

/* --- allocators --- */

static void *system_alloc(void *self, size_t bytes, size_t alignment) {
  (void)self;
  if (bytes == 0) bytes = 1;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded < bytes) return NULL;
  return aligned_alloc(alignment, rounded);
}

static void system_free(void *self, void *p) {
  (void)self;
  free(p);
}

oc_allocator_t oc_allocator_system(void) {
  oc_allocator_t a = {NULL, system_alloc, system_free};
  return a;
}

oc_allocator_t oc_allocator_or_default(const oc_allocator_t *a) {
  if (a && a->alloc && a->free) return *a;
  return oc_allocator_system();
}

void *oc_alloc(const oc_allocator_t *a, size_t bytes) {
  void *p = a->alloc(a->self, bytes, OC_ALIGNMENT);
  if (p) memset(p, 0, bytes);
  return p;
}

void oc_free(const oc_allocator_t *a, void *p) {
  if (p) a->free(a->self, p);
}

char *oc_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* --- XXH64 hash (public-domain algorithm by Yann Collet, written here from
 * its specification). Fast enough to check a 100 MB plan at memory speed. */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t read64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline uint32_t read32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t round64(uint64_t acc, uint64_t in) {
  acc += in * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}
static inline uint64_t merge64(uint64_t acc, uint64_t v) {
  acc ^= round64(0, v);
  return acc * P1 + P4;
}

uint64_t oc_hash64(const void *data, size_t len, uint64_t seed) {
  const uint8_t *p = data;
  const uint8_t *end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    const uint8_t *limit = end - 32;
    do {
      v1 = round64(v1, read64(p));
      v2 = round64(v2, read64(p + 8));
      v3 = round64(v3, read64(p + 16));
      v4 = round64(v4, read64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = merge64(h, v1);
    h = merge64(h, v2);
    h = merge64(h, v3);
    h = merge64(h, v4);
  } else {
    h = seed + P5;
  }
  h += (uint64_t)len;
  while (p + 8 <= end) {
    h ^= round64(0, read64(p));
    h = rotl64(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= (uint64_t)read32(p) * P1;
    h = rotl64(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= (*p) * P5;
    h = rotl64(h, 11) * P1;
    p++;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}
