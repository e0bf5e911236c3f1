/* Tensor files: ONNX TensorProto (.pb) and NumPy .npy readers and writers,
 * plus the atomic file writer and whole-file reader they share. */
#include "tensor_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oc_base.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor_file.c assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

void oc_host_tensor_free(oc_host_tensor_t *t) {
  if (!t) return;
  free(t->name);
  free(t->data);
  memset(t, 0, sizeof(*t));
}

size_t oc_onnx_dtype_size(int dtype) {
  switch (dtype) {
    case 1: return 4;   /* float */
    case 2: return 1;   /* uint8 */
    case 3: return 1;   /* int8 */
    case 4: return 2;   /* uint16 */
    case 5: return 2;   /* int16 */
    case 6: return 4;   /* int32 */
    case 7: return 8;   /* int64 */
    case 9: return 1;   /* bool */
    case 10: return 2;  /* float16 */
    case 11: return 8;  /* double */
    case 12: return 4;  /* uint32 */
    case 13: return 8;  /* uint64 */
    case 14: return 8;  /* complex64 */
    case 15: return 16; /* complex128 */
    case 16: return 2;  /* bfloat16 */
    case 17: case 18: case 19: case 20: return 1; /* float8 variants */
    default: return 0;  /* undefined, string, 4-bit packed types, unknown */
  }
}

/* "[2,3,16,16]" */
typedef struct {
  char s[OC_MAX_RANK * 22 + 4];
} dims_str_t;

static const char *fmt_dims(dims_str_t *b, int rank, const int64_t *dims) {
  size_t n = 0;
  b->s[n++] = '[';
  for (int i = 0; i < rank && i < OC_MAX_RANK; ++i) {
    n += (size_t)snprintf(b->s + n, sizeof(b->s) - n, "%s%" PRId64, i ? "," : "", dims[i]);
  }
  snprintf(b->s + n, sizeof(b->s) - n, "]");
  return b->s;
}

/* Validates |dims| (rank <= OC_MAX_RANK assumed) and computes the element
 * count and byte size for |dtype|. The product of the non-zero dims must fit
 * in 64 bits even when some dim is 0, so no consumer's stride arithmetic can
 * overflow. */
static oc_status_t shape_size(int rank, const int64_t *dims, int dtype, size_t *out_elems,
                              size_t *out_bytes) {
  dims_str_t ds;
  size_t esize = oc_onnx_dtype_size(dtype);
  uint64_t nonzero = 1;
  bool empty = false;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0) {
      return oc_make_status(OC_STATUS_CORRUPT, "dim %d is %" PRId64 " (negative) in dims %s", i,
                            dims[i], fmt_dims(&ds, rank, dims));
    }
    if (dims[i] == 0) {
      empty = true;
    } else if (oc_mul_overflows(nonzero, (uint64_t)dims[i], &nonzero)) {
      return oc_make_status(OC_STATUS_CORRUPT, "dims %s: the element count overflows 64 bits",
                            fmt_dims(&ds, rank, dims));
    }
  }
  uint64_t elems = empty ? 0 : nonzero;
  uint64_t bytes;
  if (oc_mul_overflows(nonzero, esize, &bytes)) {
    return oc_make_status(OC_STATUS_CORRUPT, "dims %s of %s: the byte size overflows 64 bits",
                          fmt_dims(&ds, rank, dims), oc_dtype_name(dtype));
  }
  if (empty) bytes = 0;
  if (bytes > OC_TENSOR_FILE_MAX_BYTES || elems > SIZE_MAX) {
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "dims %s of %s need %" PRIu64 " bytes, over the limit of 2^40",
                          fmt_dims(&ds, rank, dims), oc_dtype_name(dtype), bytes);
  }
  *out_elems = (size_t)elems;
  *out_bytes = (size_t)bytes;
  return OC_OK;
}

/* 64-byte aligned payload buffer; never NULL on success, even for 0 bytes. */
static oc_status_t alloc_payload(size_t bytes, void **out) {
  size_t rounded = (size_t)oc_align_up(bytes ? bytes : 1, OC_ALIGNMENT);
  *out = aligned_alloc(OC_ALIGNMENT, rounded);
  if (!*out) {
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "cannot allocate %zu bytes for the payload",
                          bytes);
  }
  return OC_OK;
}

static oc_status_t check_bools(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] > 1) {
      return oc_make_status(OC_STATUS_CORRUPT, "bool element %zu has byte value %u (not 0 or 1)",
                            i, (unsigned)p[i]);
    }
  }
  return OC_OK;
}

/* ------------------------------------------------------------------------ */
/* TensorProto                                                              */
/* ------------------------------------------------------------------------ */

static bool parse_u64_dec(const char *s, uint64_t *out) {
  if (!s || !*s) return false;
  uint64_t v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
    if (oc_mul_overflows(v, 10, &v) || oc_add_overflows(v, (uint64_t)(*s - '0'), &v)) return false;
  }
  *out = v;
  return true;
}

/* A relative path with no '..' component. */
static bool external_location_ok(const char *loc) {
  if (!*loc || loc[0] == '/') return false;
  const char *c = loc;
  while (*c) {
    const char *e = strchr(c, '/');
    size_t n = e ? (size_t)(e - c) : strlen(c);
    if (n == 2 && c[0] == '.' && c[1] == '.') return false;
    if (!e) break;
    c = e + 1;
  }
  return true;
}

/* Validates the external data reference of |tp| (location, offset, length
 * against the file) and only then allocates |*out_data| (|bytes| bytes) and
 * reads the payload into it. On a read error |*out_data| stays allocated for
 * the caller to free. */
static oc_status_t read_external(const Onnx__TensorProto *tp, const char *base_dir, size_t bytes,
                                 void **out_data) {
  const char *location = NULL, *offset_s = NULL, *length_s = NULL;
  for (size_t i = 0; i < tp->n_external_data; ++i) {
    const Onnx__StringStringEntryProto *e = tp->external_data[i];
    if (!e || !e->key || !e->value) {
      return oc_make_status(OC_STATUS_CORRUPT, "external_data entry %zu lacks a key or value", i);
    }
    const char **slot = NULL;
    if (strcmp(e->key, "location") == 0) slot = &location;
    else if (strcmp(e->key, "offset") == 0) slot = &offset_s;
    else if (strcmp(e->key, "length") == 0) slot = &length_s;
    else continue; /* "checksum" and future keys */
    if (*slot) {
      return oc_make_status(OC_STATUS_CORRUPT, "external_data key '%s' appears twice", e->key);
    }
    *slot = e->value;
  }
  if (!location) {
    return oc_make_status(OC_STATUS_CORRUPT, "data_location is EXTERNAL but external_data has "
                                             "no 'location'");
  }
  if (!external_location_ok(location)) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "external data location '%.300s' is not a relative path inside the "
                          "model directory (absolute paths and '..' are rejected)",
                          location);
  }
  uint64_t offset = 0, length = 0;
  if (offset_s && !parse_u64_dec(offset_s, &offset)) {
    return oc_make_status(OC_STATUS_CORRUPT, "external data offset '%.64s' is not a decimal "
                                             "byte count", offset_s);
  }
  if (length_s && !parse_u64_dec(length_s, &length)) {
    return oc_make_status(OC_STATUS_CORRUPT, "external data length '%.64s' is not a decimal "
                                             "byte count", length_s);
  }
  if (!base_dir) {
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "uses external data '%.300s', which cannot be resolved without a base "
                          "directory (read the tensor from a file instead)",
                          location);
  }

  const size_t dlen = strlen(base_dir), llen = strlen(location);
  char *full = malloc(dlen + 1 + llen + 1);
  if (!full) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  memcpy(full, base_dir, dlen);
  full[dlen] = '/';
  memcpy(full + dlen + 1, location, llen + 1);

  oc_status_t s = OC_OK;
  int fd = open(full, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    s = oc_make_status(OC_STATUS_IO, "external data '%s': cannot open: %s", full, strerror(errno));
    goto done;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    s = oc_make_status(OC_STATUS_IO, "external data '%s': cannot stat: %s", full,
                       strerror(errno));
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    s = oc_make_status(OC_STATUS_IO, "external data '%s': not a regular file", full);
    goto done;
  }
  uint64_t fsize = (uint64_t)st.st_size;
  if (offset > fsize) {
    s = oc_make_status(OC_STATUS_CORRUPT,
                       "external data '%s': offset %" PRIu64 " is beyond the end of the file "
                       "(%" PRIu64 " bytes)",
                       full, offset, fsize);
    goto done;
  }
  if (!length_s) {
    length = fsize - offset;
  } else {
    uint64_t end;
    if (oc_add_overflows(offset, length, &end) || end > fsize) {
      s = oc_make_status(OC_STATUS_CORRUPT,
                         "external data '%s': offset %" PRIu64 " + length %" PRIu64
                         " exceeds the file size %" PRIu64,
                         full, offset, length, fsize);
      goto done;
    }
  }
  if (length != bytes) {
    s = oc_make_status(OC_STATUS_CORRUPT,
                       "external data '%s': %s %" PRIu64 " bytes at offset %" PRIu64
                       ", but the dims require %zu",
                       full, length_s ? "length is" : "the rest of the file is", length, offset,
                       bytes);
    goto done;
  }
  s = alloc_payload(bytes, out_data);
  if (s) goto done;
  int err = oc_pread_full(fd, *out_data, bytes, offset);
  if (err) {
    s = oc_make_status(OC_STATUS_IO, "external data '%s': read at offset %" PRIu64 " failed: %s",
                       full, offset,
                       err == EIO ? "unexpected end of file (file changed while reading?)"
                                  : strerror(err));
  }
done:
  if (fd >= 0) close(fd);
  free(full);
  return s;
}

/* The payload source of a TensorProto. */
typedef enum {
  SRC_NONE,
  SRC_RAW,
  SRC_EXTERNAL,
  SRC_FLOAT,
  SRC_INT32,
  SRC_STRING,
  SRC_INT64,
  SRC_DOUBLE,
  SRC_UINT64
} payload_src_t;

static const char *const src_names[] = {"none",        "raw_data",   "external data",
                                        "float_data",  "int32_data", "string_data",
                                        "int64_data",  "double_data", "uint64_data"};

/* Range of int32_data values for a dtype carried in int32_data; false when
 * the dtype is not carried there. */
static bool int32_field_range(int dtype, int64_t *lo, int64_t *hi) {
  switch (dtype) {
    case 6: *lo = INT32_MIN; *hi = INT32_MAX; return true;
    case 5: *lo = INT16_MIN; *hi = INT16_MAX; return true;
    case 3: *lo = INT8_MIN; *hi = INT8_MAX; return true;
    case 4: case 10: case 16: *lo = 0; *hi = UINT16_MAX; return true; /* uint16, f16 and bf16 bits */
    case 2: case 17: case 18: case 19: case 20: *lo = 0; *hi = UINT8_MAX; return true;
    case 9: *lo = 0; *hi = 1; return true;
    default: return false;
  }
}

/* Number of values typed field |src| must hold for |elems| elements of
 * |dtype| (complex types take two). */
static size_t typed_values_needed(int dtype, size_t elems) {
  return (dtype == 14 || dtype == 15) ? elems * 2 : elems; /* bytes <= 2^40: no overflow */
}

/* Checks, before anything is allocated, that typed field |src| may carry
 * |dtype| and holds exactly the number of values the dims require. */
static oc_status_t typed_check(const Onnx__TensorProto *tp, payload_src_t src, int dtype,
                               int rank, const int64_t *dims, size_t elems) {
  int64_t lo, hi;
  bool ok;
  size_t have;
  switch (src) {
    case SRC_FLOAT: ok = dtype == 1 || dtype == 14; have = tp->n_float_data; break;
    case SRC_INT32: ok = int32_field_range(dtype, &lo, &hi); have = tp->n_int32_data; break;
    case SRC_INT64: ok = dtype == 7; have = tp->n_int64_data; break;
    case SRC_DOUBLE: ok = dtype == 11 || dtype == 15; have = tp->n_double_data; break;
    case SRC_UINT64: ok = dtype == 12 || dtype == 13; have = tp->n_uint64_data; break;
    default: return oc_make_status(OC_STATUS_INTERNAL, "unexpected payload source");
  }
  if (!ok) {
    return oc_make_status(OC_STATUS_CORRUPT, "payload is in %s, which cannot carry %s",
                          src_names[src], oc_dtype_name(dtype));
  }
  const size_t need = typed_values_needed(dtype, elems);
  if (have != need) {
    dims_str_t ds;
    return oc_make_status(OC_STATUS_CORRUPT, "%s has %zu values, but dims %s of %s require %zu",
                          src_names[src], have, fmt_dims(&ds, rank, dims), oc_dtype_name(dtype),
                          need);
  }
  return OC_OK;
}

/* Converts the values of typed field |src| (already checked by typed_check)
 * into the little-endian payload |dst|, range-checking narrowed values. */
static oc_status_t typed_fill(const Onnx__TensorProto *tp, payload_src_t src, int dtype,
                              size_t elems, uint8_t *dst) {
  const size_t need = typed_values_needed(dtype, elems);
  switch (src) {
    case SRC_FLOAT:
      if (need) memcpy(dst, tp->float_data, need * sizeof(float));
      return OC_OK;
    case SRC_INT64:
      if (need) memcpy(dst, tp->int64_data, need * sizeof(int64_t));
      return OC_OK;
    case SRC_DOUBLE:
      if (need) memcpy(dst, tp->double_data, need * sizeof(double));
      return OC_OK;
    case SRC_UINT64:
      if (dtype == 13) {
        if (need) memcpy(dst, tp->uint64_data, need * sizeof(uint64_t));
        return OC_OK;
      }
      for (size_t i = 0; i < need; ++i) {
        uint64_t v = tp->uint64_data[i];
        if (v > UINT32_MAX) {
          return oc_make_status(OC_STATUS_CORRUPT,
                                "uint64_data[%zu] = %" PRIu64 " is out of range for uint32", i, v);
        }
        uint32_t u = (uint32_t)v;
        memcpy(dst + i * 4, &u, 4);
      }
      return OC_OK;
    case SRC_INT32: {
      int64_t lo = 0, hi = 0;
      (void)int32_field_range(dtype, &lo, &hi);
      const size_t esize = oc_onnx_dtype_size(dtype);
      for (size_t i = 0; i < need; ++i) {
        int32_t v = tp->int32_data[i];
        if (v < lo || v > hi) {
          return oc_make_status(OC_STATUS_CORRUPT,
                                "int32_data[%zu] = %" PRId32 " is out of range for %s", i, v,
                                oc_dtype_name(dtype));
        }
        if (esize == 1) {
          dst[i] = (uint8_t)(v & 0xff);
        } else if (esize == 2) {
          uint16_t u = (uint16_t)(v & 0xffff);
          memcpy(dst + i * 2, &u, 2);
        } else {
          memcpy(dst + i * 4, &v, 4);
        }
      }
      return OC_OK;
    }
    default:
      return oc_make_status(OC_STATUS_INTERNAL, "unexpected payload source");
  }
}

static oc_status_t proto_decode(const Onnx__TensorProto *tp, const char *base_dir,
                                oc_host_tensor_t *out) {
  dims_str_t ds;
  if (tp->segment) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "segmented tensors are not supported");
  }
  if (!tp->has_data_type || tp->data_type == 0) {
    return oc_make_status(OC_STATUS_CORRUPT, "data_type is %s",
                          tp->has_data_type ? "UNDEFINED (0)" : "missing");
  }
  const int dtype = tp->data_type;
  if (dtype == 8) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "string tensors are not supported");
  }
  if (oc_onnx_dtype_size(dtype) == 0) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "data_type %d (%s) is not supported", dtype,
                          oc_dtype_name(dtype));
  }
  if (tp->n_dims > OC_MAX_RANK) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "rank %zu exceeds the maximum rank %d",
                          tp->n_dims, OC_MAX_RANK);
  }
  const int rank = (int)tp->n_dims;
  size_t elems = 0, bytes = 0;
  OC_RETURN_IF_ERROR(shape_size(rank, tp->dims, dtype, &elems, &bytes));

  /* Exactly one payload source (or none for an empty tensor). */
  const bool external = tp->has_data_location &&
                        tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  if (tp->has_data_location && tp->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT &&
      !external) {
    return oc_make_status(OC_STATUS_CORRUPT, "data_location %d is not DEFAULT or EXTERNAL",
                          (int)tp->data_location);
  }
  if (!external && tp->n_external_data > 0) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "has external_data entries but data_location is not EXTERNAL");
  }
  const bool present[] = {
      [SRC_NONE] = false,
      [SRC_RAW] = tp->has_raw_data,
      [SRC_EXTERNAL] = external,
      [SRC_FLOAT] = tp->n_float_data > 0,
      [SRC_INT32] = tp->n_int32_data > 0,
      [SRC_STRING] = tp->n_string_data > 0,
      [SRC_INT64] = tp->n_int64_data > 0,
      [SRC_DOUBLE] = tp->n_double_data > 0,
      [SRC_UINT64] = tp->n_uint64_data > 0,
  };
  payload_src_t src = SRC_NONE;
  for (int i = SRC_RAW; i <= SRC_UINT64; ++i) {
    if (!present[i]) continue;
    if (src != SRC_NONE) {
      return oc_make_status(OC_STATUS_CORRUPT, "payload given in both %s and %s", src_names[src],
                            src_names[i]);
    }
    src = (payload_src_t)i;
  }
  if (src == SRC_STRING) {
    return oc_make_status(OC_STATUS_CORRUPT, "string_data given for a %s tensor",
                          oc_dtype_name(dtype));
  }
  if (src == SRC_NONE && bytes != 0) {
    return oc_make_status(OC_STATUS_CORRUPT, "has no payload, but dims %s of %s require %zu bytes",
                          fmt_dims(&ds, rank, tp->dims), oc_dtype_name(dtype), bytes);
  }
  if (src == SRC_RAW && tp->raw_data.len != bytes) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "raw_data has %zu bytes, but dims %s of %s require %zu",
                          tp->raw_data.len, fmt_dims(&ds, rank, tp->dims), oc_dtype_name(dtype),
                          bytes);
  }

  if (src >= SRC_FLOAT) OC_RETURN_IF_ERROR(typed_check(tp, src, dtype, rank, tp->dims, elems));

  /* The payload size is now known to be backed by the input (external data
   * is checked against its file before allocating), so a small file cannot
   * make us allocate a huge buffer. */
  if (src == SRC_EXTERNAL) {
    OC_RETURN_IF_ERROR(read_external(tp, base_dir, bytes, &out->data));
  } else {
    OC_RETURN_IF_ERROR(alloc_payload(bytes, &out->data));
    if (src == SRC_RAW && bytes) memcpy(out->data, tp->raw_data.data, bytes);
    if (src >= SRC_FLOAT) OC_RETURN_IF_ERROR(typed_fill(tp, src, dtype, elems, out->data));
  }
  out->bytes = bytes;
  out->dtype = dtype;
  out->rank = rank;
  for (int i = 0; i < rank; ++i) out->dims[i] = tp->dims[i];

  if (dtype == 9) OC_RETURN_IF_ERROR(check_bools(out->data, bytes));
  if (tp->name) {
    out->name = oc_strdup(tp->name);
    if (!out->name) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  return OC_OK;
}

oc_status_t oc_tensor_from_proto(const Onnx__TensorProto *tp, const char *base_dir,
                                 oc_host_tensor_t *out) {
  if (!out) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_from_proto: NULL output");
  }
  memset(out, 0, sizeof(*out));
  if (!tp) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_from_proto: NULL proto");
  oc_status_t s = proto_decode(tp, base_dir, out);
  if (s) {
    oc_host_tensor_free(out);
    if (tp->name) return oc_status_wrap(s, "tensor '%.200s': ", tp->name);
    return oc_status_wrap(s, "tensor (unnamed): ");
  }
  return OC_OK;
}

static oc_status_t read_pb(const void *data, size_t bytes, const char *base_dir,
                           oc_host_tensor_t *out) {
  static const uint8_t empty = 0;
  if (!data) data = &empty;
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, bytes, data);
  if (!tp) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "not a valid serialized TensorProto (%zu bytes; protobuf parse failed, "
                          "e.g. truncated)",
                          bytes);
  }
  oc_status_t s = oc_tensor_from_proto(tp, base_dir, out);
  onnx__tensor_proto__free_unpacked(tp, NULL);
  return s;
}

oc_status_t oc_tensor_read_pb_memory(const void *data, size_t bytes, oc_host_tensor_t *out) {
  if (!out) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_read_pb_memory: NULL output");
  }
  memset(out, 0, sizeof(*out));
  if (!data && bytes) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_read_pb_memory: NULL data");
  }
  return read_pb(data, bytes, NULL, out);
}

/* ------------------------------------------------------------------------ */
/* NumPy .npy                                                               */
/* ------------------------------------------------------------------------ */

/* NumPy type codes <-> ONNX dtypes. */
static const struct {
  char kind;
  unsigned size;
  int dtype;
} npy_types[] = {
    {'b', 1, 9},  {'u', 1, 2},  {'i', 1, 3},  {'u', 2, 4},  {'i', 2, 5},
    {'u', 4, 12}, {'i', 4, 6},  {'u', 8, 13}, {'i', 8, 7},  {'f', 2, 10},
    {'f', 4, 1},  {'f', 8, 11}, {'c', 8, 14}, {'c', 16, 15},
};

/* A cursor over the header text; offsets in messages are file offsets. */
typedef struct {
  const char *p;
  size_t n;      /* header length */
  size_t i;      /* position in the header */
  size_t origin; /* file offset of the header */
} npy_lex_t;

static oc_status_t npy_syntax(const npy_lex_t *l, const char *expected) {
  if (l->i >= l->n) {
    return oc_make_status(OC_STATUS_CORRUPT, "npy header: expected %s at byte %zu, found the end "
                                             "of the header",
                          expected, l->origin + l->i);
  }
  unsigned char c = (unsigned char)l->p[l->i];
  if (c >= 0x20 && c < 0x7f) {
    return oc_make_status(OC_STATUS_CORRUPT, "npy header: expected %s at byte %zu, found '%c'",
                          expected, l->origin + l->i, c);
  }
  return oc_make_status(OC_STATUS_CORRUPT, "npy header: expected %s at byte %zu, found byte 0x%02x",
                        expected, l->origin + l->i, c);
}

static void npy_ws(npy_lex_t *l) {
  while (l->i < l->n &&
         (l->p[l->i] == ' ' || l->p[l->i] == '\t' || l->p[l->i] == '\n' || l->p[l->i] == '\r')) {
    l->i++;
  }
}

static bool npy_peek(const npy_lex_t *l, char c) { return l->i < l->n && l->p[l->i] == c; }

static oc_status_t npy_expect(npy_lex_t *l, char c, const char *what) {
  if (!npy_peek(l, c)) return npy_syntax(l, what);
  l->i++;
  return OC_OK;
}

/* A plain Python string literal ('...' or "...") of printable ASCII with no
 * escapes, at most |cap|-1 characters. */
static oc_status_t npy_string(npy_lex_t *l, char *buf, size_t cap, const char *what) {
  if (!npy_peek(l, '\'') && !npy_peek(l, '"')) return npy_syntax(l, what);
  const size_t start = l->i;
  const char q = l->p[l->i++];
  size_t n = 0;
  for (;;) {
    if (l->i >= l->n) {
      return oc_make_status(OC_STATUS_CORRUPT,
                            "npy header: string at byte %zu is not terminated",
                            l->origin + start);
    }
    unsigned char c = (unsigned char)l->p[l->i];
    if (c == (unsigned char)q) break;
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      return oc_make_status(OC_STATUS_CORRUPT,
                            "npy header: unexpected byte 0x%02x in the string at byte %zu",
                            c, l->origin + start);
    }
    if (n + 1 >= cap) {
      return oc_make_status(OC_STATUS_CORRUPT, "npy header: string at byte %zu is too long for %s",
                            l->origin + start, what);
    }
    buf[n++] = (char)c;
    l->i++;
  }
  l->i++;
  buf[n] = '\0';
  return OC_OK;
}

static bool npy_is_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static oc_status_t npy_bool(npy_lex_t *l, bool *out) {
  static const char *const words[] = {"False", "True"};
  for (int w = 0; w < 2; ++w) {
    size_t len = strlen(words[w]);
    if (l->n - l->i >= len && memcmp(l->p + l->i, words[w], len) == 0 &&
        (l->i + len == l->n || !npy_is_ident_char(l->p[l->i + len]))) {
      l->i += len;
      *out = w == 1;
      return OC_OK;
    }
  }
  return npy_syntax(l, "True or False");
}

/* A non-negative decimal integer (Python 3 syntax: no leading zeros, no
 * underscores; a Python 2 'L' suffix is accepted). */
static oc_status_t npy_dim(npy_lex_t *l, int64_t *out) {
  const size_t start = l->i;
  if (npy_peek(l, '-')) {
    return oc_make_status(OC_STATUS_CORRUPT, "npy header: negative dimension at byte %zu",
                          l->origin + start);
  }
  uint64_t v = 0;
  size_t digits = 0;
  while (l->i < l->n && l->p[l->i] >= '0' && l->p[l->i] <= '9') {
    if (oc_mul_overflows(v, 10, &v) || oc_add_overflows(v, (uint64_t)(l->p[l->i] - '0'), &v) ||
        v > (uint64_t)INT64_MAX) {
      return oc_make_status(OC_STATUS_CORRUPT,
                            "npy header: dimension at byte %zu overflows 64 bits",
                            l->origin + start);
    }
    l->i++;
    digits++;
  }
  if (digits == 0) return npy_syntax(l, "a dimension");
  if (digits > 1 && l->p[start] == '0') {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "npy header: dimension at byte %zu has a leading zero",
                          l->origin + start);
  }
  if (npy_peek(l, 'L')) l->i++;
  if (l->i < l->n && (npy_is_ident_char(l->p[l->i]) || l->p[l->i] == '.')) {
    return npy_syntax(l, "',' or ')' after a dimension");
  }
  *out = (int64_t)v;
  return OC_OK;
}

/* (), (n,), (n, m), (n, m,) ... */
static oc_status_t npy_shape(npy_lex_t *l, int *out_rank, int64_t *dims) {
  const size_t start = l->i;
  OC_RETURN_IF_ERROR(npy_expect(l, '(', "'(' (the shape tuple)"));
  int rank = 0;
  npy_ws(l);
  if (npy_peek(l, ')')) {
    l->i++;
    *out_rank = 0;
    return OC_OK;
  }
  bool trailing_comma = false;
  for (;;) {
    if (rank == OC_MAX_RANK) {
      return oc_make_status(OC_STATUS_UNSUPPORTED,
                            "npy header: shape at byte %zu has more than %d dimensions",
                            l->origin + start, OC_MAX_RANK);
    }
    OC_RETURN_IF_ERROR(npy_dim(l, &dims[rank]));
    rank++;
    npy_ws(l);
    trailing_comma = false;
    if (npy_peek(l, ',')) {
      l->i++;
      trailing_comma = true;
      npy_ws(l);
    }
    if (npy_peek(l, ')')) {
      l->i++;
      break;
    }
    if (!trailing_comma) return npy_syntax(l, "',' or ')' in the shape");
  }
  if (rank == 1 && !trailing_comma) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "npy header: shape at byte %zu is a parenthesized number, not a tuple "
                          "(a 1-d shape is written (n,))",
                          l->origin + start);
  }
  *out_rank = rank;
  return OC_OK;
}

/* Maps a descr such as '<f4' to an ONNX dtype. */
static oc_status_t npy_descr_dtype(const char *descr, int *out) {
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "npy descr '%s' is not supported (expected a byte-order character "
                          "and a type code such as '<f4')",
                          descr);
  }
  const char kind = descr[1];
  if (kind == 'O') {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "npy descr '%s': object arrays are not supported",
                          descr);
  }
  uint64_t size = 0;
  if (kind == '\0' || !parse_u64_dec(descr + 2, &size) || descr[2] == '0') {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "npy descr '%s' is not a supported dtype",
                          descr);
  }
  int dtype = 0;
  for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); ++i) {
    if (npy_types[i].kind == kind && npy_types[i].size == size) dtype = npy_types[i].dtype;
  }
  if (!dtype) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "npy descr '%s' is not a supported dtype",
                          descr);
  }
  if (size > 1 && order != '<') {
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "npy descr '%s': %s byte order is not supported (only little-endian "
                          "'<')",
                          descr, order == '>' ? "big-endian" : "unspecified");
  }
  *out = dtype;
  return OC_OK;
}

/* The preamble of an .npy file of |bytes| bytes whose first bytes are at |b|
 * (at least min(bytes, 12) of them): checks the magic and the version;
 * *out_pre is the preamble's length, *out_hlen the header's. */
static oc_status_t npy_preamble(const uint8_t *b, size_t bytes, size_t *out_pre,
                                size_t *out_hlen) {
  if (bytes < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
    if (bytes >= NPY_MAGIC_LEN && memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
      return oc_make_status(OC_STATUS_CORRUPT, "npy: bad magic (expected \\x93NUMPY at byte 0)");
    }
    return oc_make_status(OC_STATUS_CORRUPT, "npy: truncated: %zu bytes, shorter than the preamble",
                          bytes);
  }
  const unsigned major = b[6], minor = b[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    return oc_make_status(OC_STATUS_VERSION, "npy: format version %u.%u is not supported "
                                             "(1.0, 2.0, 3.0 are)",
                          major, minor);
  }
  const size_t pre = major == 1 ? 10 : 12;
  if (bytes < pre) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "npy: truncated: %zu bytes, the version %u.0 preamble needs %zu", bytes,
                          major, pre);
  }
  size_t hlen = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                           : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                                 (size_t)b[11] << 24;
  if (hlen > bytes - pre) {
    return oc_make_status(OC_STATUS_CORRUPT,
                          "npy: truncated header: it declares %zu bytes at byte %zu, but the file "
                          "has %zu bytes",
                          hlen, pre, bytes);
  }
  *out_pre = pre;
  *out_hlen = hlen;
  return OC_OK;
}

/* What an .npy header says. */
typedef struct {
  int dtype;
  int rank;
  int64_t dims[OC_MAX_RANK];
  size_t data_at; /* file offset of the payload */
  size_t need;    /* payload bytes */
} npy_header_t;

/* Parses the preamble and header of an .npy file of |bytes| bytes whose
 * first bytes (the preamble and the whole header at least) are at |b|, and
 * checks that the payload has the size the shape requires. */
static oc_status_t npy_header(const uint8_t *b, size_t bytes, npy_header_t *h) {
  size_t pre = 0, hlen = 0;
  OC_RETURN_IF_ERROR(npy_preamble(b, bytes, &pre, &hlen));
  npy_lex_t l = {(const char *)b + pre, hlen, 0, pre};
  bool have_descr = false, have_fortran = false, have_shape = false;
  char descr[16] = {0};
  bool fortran = false;
  int rank = 0;
  int64_t dims[OC_MAX_RANK] = {0};

  npy_ws(&l);
  OC_RETURN_IF_ERROR(npy_expect(&l, '{', "'{' (the header dict)"));
  for (;;) {
    npy_ws(&l);
    if (npy_peek(&l, '}')) break;
    const size_t key_at = l.origin + l.i;
    char key[32];
    OC_RETURN_IF_ERROR(npy_string(&l, key, sizeof(key), "a dict key"));
    npy_ws(&l);
    OC_RETURN_IF_ERROR(npy_expect(&l, ':', "':'"));
    npy_ws(&l);
    bool *seen;
    if (strcmp(key, "descr") == 0) {
      seen = &have_descr;
      if (npy_peek(&l, '[')) {
        return oc_make_status(OC_STATUS_UNSUPPORTED,
                              "npy: structured dtypes (descr list at byte %zu) are not supported",
                              l.origin + l.i);
      }
      OC_RETURN_IF_ERROR(npy_string(&l, descr, sizeof(descr), "the descr string"));
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &have_fortran;
      OC_RETURN_IF_ERROR(npy_bool(&l, &fortran));
    } else if (strcmp(key, "shape") == 0) {
      seen = &have_shape;
      OC_RETURN_IF_ERROR(npy_shape(&l, &rank, dims));
    } else {
      return oc_make_status(OC_STATUS_CORRUPT, "npy header: unexpected key '%s' at byte %zu", key,
                            key_at);
    }
    if (*seen) {
      return oc_make_status(OC_STATUS_CORRUPT, "npy header: key '%s' at byte %zu appears twice",
                            key, key_at);
    }
    *seen = true;
    npy_ws(&l);
    if (npy_peek(&l, ',')) {
      l.i++;
      continue;
    }
    if (npy_peek(&l, '}')) break;
    return npy_syntax(&l, "',' or '}'");
  }
  l.i++; /* '}' */
  npy_ws(&l);
  if (l.i != l.n) return npy_syntax(&l, "only padding after the header dict");
  if (!have_descr || !have_fortran || !have_shape) {
    return oc_make_status(OC_STATUS_CORRUPT, "npy header: missing key '%s'",
                          !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
  }

  int dtype = 0;
  OC_RETURN_IF_ERROR(npy_descr_dtype(descr, &dtype));
  if (fortran) {
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "npy: fortran_order True is not supported (save a C-ordered array)");
  }
  size_t elems = 0, need = 0;
  oc_status_t s = shape_size(rank, dims, dtype, &elems, &need);
  if (s) return oc_status_wrap(s, "npy shape: ");
  const size_t data_at = pre + hlen;
  const size_t have = bytes - data_at;
  if (have != need) {
    dims_str_t ds;
    return oc_make_status(OC_STATUS_CORRUPT,
                          "npy: payload at byte %zu is %zu bytes, but shape %s of %s requires %zu",
                          data_at, have, fmt_dims(&ds, rank, dims), oc_dtype_name(dtype), need);
  }
  h->dtype = dtype;
  h->rank = rank;
  for (int i = 0; i < OC_MAX_RANK; ++i) h->dims[i] = i < rank ? dims[i] : 0;
  h->data_at = data_at;
  h->need = need;
  return OC_OK;
}

static oc_status_t npy_parse(const uint8_t *b, size_t bytes, oc_host_tensor_t *out) {
  npy_header_t h;
  OC_RETURN_IF_ERROR(npy_header(b, bytes, &h));
  if (h.dtype == 9) {
    oc_status_t s = check_bools(b + h.data_at, h.need);
    if (s) return oc_status_wrap(s, "npy: ");
  }
  OC_RETURN_IF_ERROR(alloc_payload(h.need, &out->data));
  if (h.need) memcpy(out->data, b + h.data_at, h.need);
  out->bytes = h.need;
  out->dtype = h.dtype;
  out->rank = h.rank;
  for (int i = 0; i < h.rank; ++i) out->dims[i] = h.dims[i];
  return OC_OK;
}

oc_status_t oc_tensor_read_npy_memory(const void *data, size_t bytes, oc_host_tensor_t *out) {
  if (!out) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_read_npy_memory: NULL output");
  }
  memset(out, 0, sizeof(*out));
  if (!data && bytes) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_read_npy_memory: NULL data");
  }
  static const uint8_t empty = 0;
  oc_status_t s = npy_parse(data ? data : &empty, bytes, out);
  if (s) oc_host_tensor_free(out);
  return s;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

oc_status_t oc_tensor_file_read(const char *path, oc_host_tensor_t *out) {
  if (!out) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_file_read: NULL output");
  memset(out, 0, sizeof(*out));
  if (!path) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_file_read: NULL path");
  void *buf;
  size_t bytes;
  OC_RETURN_IF_ERROR(oc_file_read_all(path, &buf, &bytes));
  oc_status_t s;
  if (bytes >= NPY_MAGIC_LEN && memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) == 0) {
    s = oc_tensor_read_npy_memory(buf, bytes, out);
  } else {
    char *dir = oc_dir_of(path);
    if (!dir) {
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    } else {
      s = read_pb(buf, bytes, dir, out);
      free(dir);
    }
  }
  free(buf);
  if (s) {
    oc_host_tensor_free(out);
    return oc_status_wrap(s, "%s: ", path);
  }
  return OC_OK;
}

oc_status_t oc_tensor_file_info(const char *path, oc_host_tensor_t *out) {
  if (!out) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_file_info: NULL output");
  memset(out, 0, sizeof(*out));
  if (!path) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_file_info: NULL path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return oc_make_status(OC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  oc_status_t s = OC_OK;
  if (fstat(fd, &st) != 0) {
    s = oc_make_status(OC_STATUS_IO, "%s: cannot stat: %s", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = oc_make_status(OC_STATUS_IO, "%s: not a regular file", path);
  } else if (st.st_size < 0 || (uint64_t)st.st_size > OC_TENSOR_FILE_MAX_BYTES) {
    s = oc_make_status(OC_STATUS_RESOURCE_LIMIT, "%s: file is %lld bytes, over the limit of %llu",
                       path, (long long)st.st_size, (unsigned long long)OC_TENSOR_FILE_MAX_BYTES);
  }
  const size_t size = s ? 0 : (size_t)st.st_size;
  uint8_t first[12] = {0};
  size_t n = size < sizeof first ? size : sizeof first;
  int err = s ? 0 : oc_pread_full(fd, first, n, 0);
  if (!s && err) s = oc_make_status(OC_STATUS_IO, "%s: read failed: %s", path, strerror(err));
  if (!s && n >= NPY_MAGIC_LEN && memcmp(first, NPY_MAGIC, NPY_MAGIC_LEN) == 0) {
    /* Only the header: the payload's size follows from the file's. */
    size_t pre = 0, hlen = 0;
    s = npy_preamble(first, size, &pre, &hlen);
    uint8_t *head = s ? NULL : malloc(pre + hlen);
    if (!s && !head) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    if (!s && (err = oc_pread_full(fd, head, pre + hlen, 0)) != 0)
      s = oc_make_status(OC_STATUS_IO, "%s: read failed: %s", path, strerror(err));
    /* The header is parsed from the bytes just read; if the file changed
     * since its preamble was read, the header length there may not be the
     * one this buffer was sized for. */
    if (!s && memcmp(head, first, pre) != 0)
      s = oc_make_status(OC_STATUS_IO, "the file changed while it was being read");
    npy_header_t h;
    if (!s) s = npy_header(head, size, &h); /* reads pre + hlen bytes; size: the payload's check */
    free(head);
    close(fd);
    if (s) return oc_status_wrap(s, "%s: ", path);
    out->dtype = h.dtype;
    out->rank = h.rank;
    for (int i = 0; i < h.rank; ++i) out->dims[i] = h.dims[i];
    out->bytes = h.need;
    return OC_OK;
  }
  close(fd);
  if (s) return s;
  /* A TensorProto: parsed whole, the payload dropped. */
  s = oc_tensor_file_read(path, out);
  if (s) return s;
  free(out->data);
  out->data = NULL;
  return OC_OK;
}

/* Checks that |t| is a consistent tensor before writing it. */
static oc_status_t validate_host_tensor(const oc_host_tensor_t *t) {
  if (!t) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "NULL tensor");
  if (oc_onnx_dtype_size(t->dtype) == 0) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "dtype %d (%s) has no fixed element size",
                          t->dtype, oc_dtype_name(t->dtype));
  }
  if (t->rank < 0 || t->rank > OC_MAX_RANK) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "rank %d is outside 0..%d", t->rank,
                          OC_MAX_RANK);
  }
  size_t elems = 0, bytes = 0;
  oc_status_t s = shape_size(t->rank, t->dims, t->dtype, &elems, &bytes);
  if (s) {
    oc_status_t r = oc_make_status(oc_status_code(s) == OC_STATUS_RESOURCE_LIMIT
                                       ? OC_STATUS_RESOURCE_LIMIT
                                       : OC_STATUS_INVALID_ARGUMENT,
                                   "%s", oc_status_message(s));
    oc_status_free(s);
    return r;
  }
  if (t->bytes != bytes) {
    dims_str_t ds;
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "tensor has %zu bytes, but dims %s of %s require %zu", t->bytes,
                          fmt_dims(&ds, t->rank, t->dims), oc_dtype_name(t->dtype), bytes);
  }
  if (bytes && !t->data) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "tensor data is NULL");
  }
  if (t->dtype == 9) {
    s = check_bools(t->data, bytes);
    if (s) {
      oc_status_t r = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s", oc_status_message(s));
      oc_status_free(s);
      return r;
    }
  }
  return OC_OK;
}

oc_status_t oc_tensor_file_write_pb(const char *path, const oc_host_tensor_t *t) {
  if (!path) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_file_write_pb: NULL path");
  oc_status_t s = validate_host_tensor(t);
  if (s) return oc_status_wrap(s, "%s: ", path);
  static uint8_t empty = 0;
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < t->rank; ++i) dims[i] = t->dims[i];
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.n_dims = (size_t)t->rank;
  tp.dims = dims;
  tp.has_data_type = 1;
  tp.data_type = t->dtype;
  tp.name = t->name;
  tp.has_raw_data = 1;
  tp.raw_data.len = t->bytes;
  tp.raw_data.data = t->data ? (uint8_t *)t->data : &empty;
  size_t size = onnx__tensor_proto__get_packed_size(&tp);
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, size);
  }
  size_t packed = onnx__tensor_proto__pack(&tp, buf);
  if (packed != size) {
    free(buf);
    return oc_make_status(OC_STATUS_INTERNAL, "%s: protobuf packed %zu bytes, expected %zu", path,
                          packed, size);
  }
  s = oc_file_write_atomic(path, buf, size);
  free(buf);
  return s;
}

oc_status_t oc_tensor_npy_header(int dtype, int rank, const int64_t *dims, uint8_t *buf,
                                 size_t cap, size_t *out_len) {
  if (rank < 0 || rank > OC_MAX_RANK) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "rank %d is outside 0..%d", rank,
                          OC_MAX_RANK);
  }
  const size_t esize = oc_onnx_dtype_size(dtype);
  char kind = 0;
  for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); ++i) {
    if (npy_types[i].dtype == dtype) kind = npy_types[i].kind;
  }
  if (!kind) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "NumPy has no dtype for %s",
                          oc_dtype_name(dtype));
  }

  /* {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
   * spaces and a final newline so the payload starts at a multiple of 64. */
  char header[512];
  int n = snprintf(header, sizeof(header), "{'descr': '%c%c%zu', 'fortran_order': False, 'shape': (",
                   esize == 1 ? '|' : '<', kind, esize);
  for (int i = 0; i < rank; ++i) {
    n += snprintf(header + n, sizeof(header) - (size_t)n, "%s%" PRId64, i ? ", " : "", dims[i]);
  }
  n += snprintf(header + n, sizeof(header) - (size_t)n, "%s), }", rank == 1 ? "," : "");
  const size_t pre = 10;
  size_t total = (size_t)oc_align_up(pre + (size_t)n + 1, 64);
  size_t hlen = total - pre;
  if (total > cap) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "npy header of %zu bytes is over %zu", total,
                          cap);
  }
  memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
  buf[6] = 1;
  buf[7] = 0;
  buf[8] = (uint8_t)(hlen & 0xff);
  buf[9] = (uint8_t)(hlen >> 8);
  memcpy(buf + pre, header, (size_t)n);
  memset(buf + pre + n, ' ', hlen - (size_t)n - 1);
  buf[total - 1] = '\n';
  *out_len = total;
  return OC_OK;
}

oc_status_t oc_tensor_file_write_npy(const char *path, const oc_host_tensor_t *t) {
  if (!path) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_tensor_file_write_npy: NULL path");
  }
  oc_status_t s = validate_host_tensor(t);
  if (s) return oc_status_wrap(s, "%s: ", path);
  uint8_t header[OC_NPY_HEADER_MAX];
  size_t total = 0;
  s = oc_tensor_npy_header(t->dtype, t->rank, t->dims, header, sizeof header, &total);
  if (s) return oc_status_wrap(s, "%s: ", path);
  size_t file_bytes = total + t->bytes;
  uint8_t *buf = malloc(file_bytes);
  if (!buf) {
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path,
                          file_bytes);
  }
  memcpy(buf, header, total);
  if (t->bytes) memcpy(buf + total, t->data, t->bytes);
  s = oc_file_write_atomic(path, buf, file_bytes);
  free(buf);
  return s;
}
