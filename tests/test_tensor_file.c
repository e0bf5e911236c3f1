/* Tests for runtime/tensor_file.c: TensorProto and .npy readers/writers, the
 * atomic writer and the whole-file reader. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx.pb-c.h"
#include "onnxc/onnxc.h"
#include "tensor_file.h"

#ifndef ONNXC_TEST_DATA
#error "ONNXC_TEST_DATA must be defined (tests/data)"
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static char g_dir[64];

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[1024];
        snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        rm_rf(child);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void setup_dir(void) {
  snprintf(g_dir, sizeof(g_dir), "/tmp/oc_tensor_file_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void teardown_dir(void) { rm_rf(g_dir); }

/* g_dir/name, in a static rotating buffer. */
static const char *tmp_path(const char *name) {
  static char bufs[4][512];
  static int k;
  char *b = bufs[k++ % 4];
  snprintf(b, sizeof(bufs[0]), "%s/%s", g_dir, name);
  return b;
}

static int file_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static int dir_entry_count(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  }
  closedir(d);
  return n;
}

static void write_raw(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

#define EXPECT_OK(expr)                                                      \
  do {                                                                       \
    oc_status_t s_ = (expr);                                                 \
    if (s_) {                                                                \
      char m_[1024];                                                         \
      snprintf(m_, sizeof(m_), "%s", oc_status_message(s_));                 \
      oc_status_free(s_);                                                    \
      ck_abort_msg("%s failed: %s", #expr, m_);                              \
    }                                                                        \
  } while (0)

/* Checks the code of |s| and that its message contains |needle| (if any);
 * frees |s|. */
static void expect_code_at(oc_status_t s, oc_status_code_t code, const char *needle,
                           const char *what, int line) {
  char msg[1024];
  snprintf(msg, sizeof(msg), "%s", oc_status_message(s));
  oc_status_code_t got = oc_status_code(s);
  oc_status_free(s);
  ck_assert_msg(got == code, "line %d: %s: expected %s, got %s: %s", line, what,
                oc_status_code_name(code), oc_status_code_name(got), msg);
  if (needle) {
    ck_assert_msg(strstr(msg, needle) != NULL, "line %d: %s: message '%s' lacks '%s'", line, what,
                  msg, needle);
  }
}
#define EXPECT_CODE(expr, code, needle) expect_code_at((expr), (code), (needle), #expr, __LINE__)

static int is_zeroed(const oc_host_tensor_t *t) {
  static const oc_host_tensor_t zero;
  return memcmp(t, &zero, sizeof(zero)) == 0;
}

/* Decodes |tp| with base_dir |dir| and expects |code| (tensor left zeroed). */
static void expect_proto_error_at(const Onnx__TensorProto *tp, const char *dir,
                                  oc_status_code_t code, const char *needle, int line) {
  oc_host_tensor_t t;
  memset(&t, 0x5a, sizeof(t));
  expect_code_at(oc_tensor_from_proto(tp, dir, &t), code, needle, "oc_tensor_from_proto", line);
  ck_assert_msg(is_zeroed(&t), "line %d: output not zeroed on error", line);
}
#define EXPECT_PROTO_ERROR(tp, dir, code, needle) \
  expect_proto_error_at((tp), (dir), (code), (needle), __LINE__)

static uint8_t *pack_proto(const Onnx__TensorProto *tp, size_t *n) {
  *n = onnx__tensor_proto__get_packed_size(tp);
  uint8_t *b = malloc(*n ? *n : 1);
  ck_assert_ptr_nonnull(b);
  ck_assert_uint_eq(onnx__tensor_proto__pack(tp, b), *n);
  return b;
}

static void make_tensor(oc_host_tensor_t *t, const char *name, int dtype, int rank,
                        const int64_t *dims, const void *data, size_t bytes) {
  memset(t, 0, sizeof(*t));
  t->name = name ? strdup(name) : NULL;
  t->dtype = dtype;
  t->rank = rank;
  for (int i = 0; i < rank; ++i) t->dims[i] = dims[i];
  t->data = malloc(bytes ? bytes : 1);
  ck_assert_ptr_nonnull(t->data);
  if (bytes) memcpy(t->data, data, bytes);
  t->bytes = bytes;
}

static void expect_tensor(const oc_host_tensor_t *t, const char *name, int dtype, int rank,
                          const int64_t *dims, const void *data, size_t bytes) {
  if (name) {
    ck_assert_ptr_nonnull(t->name);
    ck_assert_str_eq(t->name, name);
  } else {
    ck_assert_ptr_null(t->name);
  }
  ck_assert_int_eq(t->dtype, dtype);
  ck_assert_int_eq(t->rank, rank);
  for (int i = 0; i < rank; ++i) ck_assert_int_eq(t->dims[i], dims[i]);
  for (int i = rank; i < OC_MAX_RANK; ++i) ck_assert_int_eq(t->dims[i], 0);
  ck_assert_uint_eq(t->bytes, bytes);
  ck_assert_ptr_nonnull(t->data);
  ck_assert_uint_eq((uintptr_t)t->data % 64, 0);
  if (bytes) ck_assert_int_eq(memcmp(t->data, data, bytes), 0);
}

typedef oc_status_t (*writer_fn)(const char *, const oc_host_tensor_t *);

/* Writes a tensor with |writer|, reads it back with oc_tensor_file_read and
 * compares. npy does not store names. */
static void roundtrip(writer_fn writer, int keeps_name, const char *file, const char *name,
                      int dtype, int rank, const int64_t *dims, const void *data, size_t bytes) {
  oc_host_tensor_t t, r;
  make_tensor(&t, name, dtype, rank, dims, data, bytes);
  const char *path = tmp_path(file);
  EXPECT_OK(writer(path, &t));
  ck_assert_int_eq(dir_entry_count(g_dir), 1); /* no temp file left behind */
  EXPECT_OK(oc_tensor_file_read(path, &r));
  expect_tensor(&r, keeps_name ? name : NULL, dtype, rank, dims, data, bytes);
  oc_host_tensor_free(&r);
  ck_assert(is_zeroed(&r));
  oc_host_tensor_free(&t);
  unlink(path);
}

static const float k_f32[6] = {1.5f, -2.0f, 0.0f, 3.25f, -0.0f, 1e-30f};
static const int64_t k_i64[5] = {0, -1, INT64_MAX, INT64_MIN, 42};
static const uint8_t k_bool[7] = {1, 0, 0, 1, 1, 0, 1};

/* ------------------------------------------------------------------------ */
/* pb                                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(pb_roundtrip_float32) {
  const int64_t dims[] = {2, 3};
  roundtrip(oc_tensor_file_write_pb, 1, "f.pb", "x", 1, 2, dims, k_f32, sizeof(k_f32));
}
END_TEST

START_TEST(pb_roundtrip_int64) {
  const int64_t dims[] = {5};
  roundtrip(oc_tensor_file_write_pb, 1, "i.pb", "indices", 7, 1, dims, k_i64, sizeof(k_i64));
}
END_TEST

START_TEST(pb_roundtrip_bool) {
  const int64_t dims[] = {7, 1};
  roundtrip(oc_tensor_file_write_pb, 1, "b.pb", "mask", 9, 2, dims, k_bool, sizeof(k_bool));
}
END_TEST

START_TEST(pb_roundtrip_scalar_and_empty) {
  const float v = 7.0f;
  roundtrip(oc_tensor_file_write_pb, 1, "s.pb", "scalar", 1, 0, NULL, &v, sizeof(v));
  roundtrip(oc_tensor_file_write_pb, 0, "s2.pb", NULL, 1, 0, NULL, &v, sizeof(v));
  const int64_t dims0[] = {0, 3};
  roundtrip(oc_tensor_file_write_pb, 1, "e.pb", "empty", 1, 2, dims0, NULL, 0);
  const int64_t dims1[] = {4, 0};
  roundtrip(oc_tensor_file_write_pb, 1, "e2.pb", "empty64", 7, 2, dims1, NULL, 0);
}
END_TEST

/* The written file is a plain TensorProto that protobuf-c reads back. */
START_TEST(pb_written_fields) {
  const int64_t dims[] = {3, 2};
  oc_host_tensor_t t;
  make_tensor(&t, "weights", 1, 2, dims, k_f32, sizeof(k_f32));
  const char *path = tmp_path("w.pb");
  EXPECT_OK(oc_tensor_file_write_pb(path, &t));
  void *buf;
  size_t n;
  EXPECT_OK(oc_file_read_all(path, &buf, &n));
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, n, buf);
  ck_assert_ptr_nonnull(tp);
  ck_assert_uint_eq(tp->n_dims, 2);
  ck_assert_int_eq(tp->dims[0], 3);
  ck_assert_int_eq(tp->dims[1], 2);
  ck_assert(tp->has_data_type);
  ck_assert_int_eq(tp->data_type, 1);
  ck_assert_str_eq(tp->name, "weights");
  ck_assert(tp->has_raw_data);
  ck_assert_uint_eq(tp->raw_data.len, sizeof(k_f32));
  ck_assert_int_eq(memcmp(tp->raw_data.data, k_f32, sizeof(k_f32)), 0);
  onnx__tensor_proto__free_unpacked(tp, NULL);

  /* Also from memory. */
  oc_host_tensor_t r;
  EXPECT_OK(oc_tensor_read_pb_memory(buf, n, &r));
  expect_tensor(&r, "weights", 1, 2, dims, k_f32, sizeof(k_f32));
  oc_host_tensor_free(&r);
  free(buf);

  /* Overwriting an existing file works. */
  t.data = realloc(t.data, 4);
  t.bytes = 4;
  t.rank = 0;
  EXPECT_OK(oc_tensor_file_write_pb(path, &t));
  EXPECT_OK(oc_tensor_file_read(path, &r));
  ck_assert_int_eq(r.rank, 0);
  ck_assert_uint_eq(r.bytes, 4);
  oc_host_tensor_free(&r);
  oc_host_tensor_free(&t);
  ck_assert_int_eq(dir_entry_count(g_dir), 1);
}
END_TEST

START_TEST(pb_typed_float_data) {
  int64_t dims[] = {2, 3};
  float vals[6] = {1, 2, 3, 4, 5, 6};
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.n_dims = 2;
  tp.dims = dims;
  tp.has_data_type = 1;
  tp.data_type = 1;
  tp.n_float_data = 6;
  tp.float_data = vals;
  tp.name = "typed";
  size_t n;
  uint8_t *buf = pack_proto(&tp, &n);
  oc_host_tensor_t r;
  EXPECT_OK(oc_tensor_read_pb_memory(buf, n, &r));
  expect_tensor(&r, "typed", 1, 2, dims, vals, sizeof(vals));
  oc_host_tensor_free(&r);
  free(buf);
}
END_TEST

START_TEST(pb_typed_int64_data) {
  int64_t dims[] = {5};
  int64_t vals[5];
  memcpy(vals, k_i64, sizeof(vals));
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.n_dims = 1;
  tp.dims = dims;
  tp.has_data_type = 1;
  tp.data_type = 7;
  tp.n_int64_data = 5;
  tp.int64_data = vals;
  size_t n;
  uint8_t *buf = pack_proto(&tp, &n);
  oc_host_tensor_t r;
  EXPECT_OK(oc_tensor_read_pb_memory(buf, n, &r));
  expect_tensor(&r, NULL, 7, 1, dims, vals, sizeof(vals));
  oc_host_tensor_free(&r);
  free(buf);
}
END_TEST

START_TEST(pb_typed_int32_data_small_types) {
  int64_t dims[] = {2, 2};
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.n_dims = 2;
  tp.dims = dims;
  tp.has_data_type = 1;
  oc_host_tensor_t r;

  /* bool */
  int32_t b[4] = {1, 0, 0, 1};
  const uint8_t b_want[4] = {1, 0, 0, 1};
  tp.data_type = 9;
  tp.n_int32_data = 4;
  tp.int32_data = b;
  size_t n;
  uint8_t *buf = pack_proto(&tp, &n);
  EXPECT_OK(oc_tensor_read_pb_memory(buf, n, &r));
  expect_tensor(&r, NULL, 9, 2, dims, b_want, sizeof(b_want));
  oc_host_tensor_free(&r);
  free(buf);

  /* int8, uint8, int16, uint16, float16 bits, int32 */
  int32_t i8[4] = {-128, 127, 0, -1};
  const int8_t i8_want[4] = {-128, 127, 0, -1};
  tp.data_type = 3;
  tp.int32_data = i8;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 3, 2, dims, i8_want, sizeof(i8_want));
  oc_host_tensor_free(&r);

  int32_t u8[4] = {0, 255, 1, 128};
  const uint8_t u8_want[4] = {0, 255, 1, 128};
  tp.data_type = 2;
  tp.int32_data = u8;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 2, 2, dims, u8_want, sizeof(u8_want));
  oc_host_tensor_free(&r);

  int32_t i16[4] = {-32768, 32767, 5, -5};
  const int16_t i16_want[4] = {-32768, 32767, 5, -5};
  tp.data_type = 5;
  tp.int32_data = i16;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 5, 2, dims, i16_want, sizeof(i16_want));
  oc_host_tensor_free(&r);

  int32_t f16[4] = {0x3c00, 0xc000, 0x0000, 0x7bff}; /* 1, -2, 0, 65504 */
  const uint16_t f16_want[4] = {0x3c00, 0xc000, 0x0000, 0x7bff};
  tp.data_type = 10;
  tp.int32_data = f16;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 10, 2, dims, f16_want, sizeof(f16_want));
  oc_host_tensor_free(&r);
  tp.data_type = 4; /* uint16 uses the same encoding */
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 4, 2, dims, f16_want, sizeof(f16_want));
  oc_host_tensor_free(&r);

  int32_t i32[4] = {INT32_MIN, INT32_MAX, 0, -7};
  tp.data_type = 6;
  tp.int32_data = i32;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 6, 2, dims, i32, sizeof(i32));
  oc_host_tensor_free(&r);
}
END_TEST

START_TEST(pb_typed_double_uint64_complex) {
  int64_t dims[] = {2};
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.n_dims = 1;
  tp.dims = dims;
  tp.has_data_type = 1;
  oc_host_tensor_t r;

  double d[2] = {1.0 / 3.0, -1e300};
  tp.data_type = 11;
  tp.n_double_data = 2;
  tp.double_data = d;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 11, 1, dims, d, sizeof(d));
  oc_host_tensor_free(&r);
  tp.n_double_data = 0;

  uint64_t u[2] = {UINT64_MAX, 3};
  tp.data_type = 13;
  tp.n_uint64_data = 2;
  tp.uint64_data = u;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 13, 1, dims, u, sizeof(u));
  oc_host_tensor_free(&r);

  uint64_t u32[2] = {UINT32_MAX, 9};
  const uint32_t u32_want[2] = {UINT32_MAX, 9};
  tp.data_type = 12;
  tp.uint64_data = u32;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 12, 1, dims, u32_want, sizeof(u32_want));
  oc_host_tensor_free(&r);
  u32[0] = (uint64_t)UINT32_MAX + 1;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "uint64_data[0]");
  tp.n_uint64_data = 0;

  /* complex64: two floats per element */
  float c[4] = {1, 2, 3, 4};
  tp.data_type = 14;
  tp.n_float_data = 4;
  tp.float_data = c;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  expect_tensor(&r, NULL, 14, 1, dims, c, sizeof(c));
  oc_host_tensor_free(&r);
  tp.n_float_data = 2;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "float_data has 2 values");
}
END_TEST

/* Writes |payload| at |offset| of g_dir/|file| after |offset| junk bytes. */
static void write_data_file(const char *file, size_t offset, const void *payload, size_t n,
                            size_t trailing) {
  size_t total = offset + n + trailing;
  uint8_t *b = malloc(total ? total : 1);
  ck_assert_ptr_nonnull(b);
  memset(b, 0xee, total);
  memcpy(b + offset, payload, n);
  write_raw(tmp_path(file), b, total);
  free(b);
}

typedef struct {
  Onnx__TensorProto tp;
  int64_t dims[2];
  Onnx__StringStringEntryProto e[4];
  Onnx__StringStringEntryProto *ep[4];
} ext_proto_t;

/* A [2,3] float32 tensor stored externally. NULL values omit the key. */
static void make_ext_proto(ext_proto_t *x, const char *location, const char *offset,
                           const char *length) {
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  x->tp = tp;
  x->dims[0] = 2;
  x->dims[1] = 3;
  x->tp.n_dims = 2;
  x->tp.dims = x->dims;
  x->tp.has_data_type = 1;
  x->tp.data_type = 1;
  x->tp.name = "ext";
  x->tp.has_data_location = 1;
  x->tp.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  const char *keys[] = {"location", "offset", "length", "checksum"};
  const char *vals[] = {location, offset, length, "ignored"};
  size_t n = 0;
  for (int i = 0; i < 4; ++i) {
    if (!vals[i]) continue;
    Onnx__StringStringEntryProto e = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    x->e[n] = e;
    x->e[n].key = (char *)keys[i];
    x->e[n].value = (char *)vals[i];
    x->ep[n] = &x->e[n];
    n++;
  }
  x->tp.n_external_data = n;
  x->tp.external_data = x->ep;
}

START_TEST(pb_external_data) {
  const int64_t dims[] = {2, 3};
  write_data_file("weights.bin", 16, k_f32, sizeof(k_f32), 8);
  ck_assert_int_eq(mkdir(tmp_path("sub"), 0755), 0);
  write_data_file("sub/w2.bin", 0, k_f32, sizeof(k_f32), 0);

  ext_proto_t x;
  oc_host_tensor_t r;
  /* offset + length, read directly with a base_dir */
  make_ext_proto(&x, "weights.bin", "16", "24");
  EXPECT_OK(oc_tensor_from_proto(&x.tp, g_dir, &r));
  expect_tensor(&r, "ext", 1, 2, dims, k_f32, sizeof(k_f32));
  oc_host_tensor_free(&r);

  /* via a .pb file next to the data: resolved against the file's directory */
  size_t n;
  uint8_t *buf = pack_proto(&x.tp, &n);
  EXPECT_OK(oc_file_write_atomic(tmp_path("ext.pb"), buf, n));
  free(buf);
  EXPECT_OK(oc_tensor_file_read(tmp_path("ext.pb"), &r));
  expect_tensor(&r, "ext", 1, 2, dims, k_f32, sizeof(k_f32));
  oc_host_tensor_free(&r);

  /* no offset/length: the whole file; subdirectory locations are fine */
  make_ext_proto(&x, "sub/w2.bin", NULL, NULL);
  EXPECT_OK(oc_tensor_from_proto(&x.tp, g_dir, &r));
  expect_tensor(&r, "ext", 1, 2, dims, k_f32, sizeof(k_f32));
  oc_host_tensor_free(&r);
  make_ext_proto(&x, "./sub/w2.bin", "0", NULL);
  EXPECT_OK(oc_tensor_from_proto(&x.tp, g_dir, &r));
  oc_host_tensor_free(&r);

  /* errors */
  make_ext_proto(&x, "weights.bin", "16", NULL); /* rest of file is 32 bytes */
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "require 24");
  make_ext_proto(&x, "weights.bin", "32", "24"); /* past the end */
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "exceeds the file size");
  make_ext_proto(&x, "weights.bin", "100", "0");
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "beyond the end");
  make_ext_proto(&x, "weights.bin", "16", "20");
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "require 24");
  /* huge dims against a small file: rejected before allocating */
  make_ext_proto(&x, "weights.bin", "16", NULL);
  x.dims[0] = (int64_t)1 << 20;
  x.dims[1] = (int64_t)1 << 18;
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "the rest of the file is 32 bytes");
  make_ext_proto(&x, "weights.bin", "18446744073709551615", "24"); /* offset + length overflows */
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, NULL);
  make_ext_proto(&x, "weights.bin", "-1", "24");
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "offset");
  make_ext_proto(&x, "weights.bin", "16", "24x");
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "length");
  make_ext_proto(&x, "missing.bin", "0", "24");
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_IO, "missing.bin");
  make_ext_proto(&x, NULL, "0", "24");
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "location");
  make_ext_proto(&x, "sub", "0", "24"); /* a directory */
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_IO, "not a regular file");
  /* base_dir NULL: external data cannot be resolved */
  make_ext_proto(&x, "weights.bin", "16", "24");
  EXPECT_PROTO_ERROR(&x.tp, NULL, OC_STATUS_UNSUPPORTED, "external");
  buf = pack_proto(&x.tp, &n);
  EXPECT_CODE(oc_tensor_read_pb_memory(buf, n, &r), OC_STATUS_UNSUPPORTED, "tensor 'ext'");
  free(buf);
  /* raw_data as well as external data */
  uint8_t raw[24] = {0};
  x.tp.has_raw_data = 1;
  x.tp.raw_data.len = 24;
  x.tp.raw_data.data = raw;
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "both raw_data and external data");
  /* external_data entries without EXTERNAL location */
  make_ext_proto(&x, "weights.bin", "16", "24");
  x.tp.has_data_location = 0;
  x.tp.has_raw_data = 1;
  x.tp.raw_data.len = 24;
  x.tp.raw_data.data = raw;
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "data_location");
}
END_TEST

START_TEST(pb_fixture_input_0) {
  oc_host_tensor_t r;
  const char *path = ONNXC_TEST_DATA "/tensor_file/input_0.pb";
  EXPECT_OK(oc_tensor_file_read(path, &r));
  ck_assert_ptr_nonnull(r.name);
  ck_assert_str_eq(r.name, "x");
  ck_assert_int_eq(r.dtype, 1);
  ck_assert_int_eq(r.rank, 4);
  ck_assert_int_eq(r.dims[0], 2);
  ck_assert_int_eq(r.dims[1], 3);
  ck_assert_int_eq(r.dims[2], 16);
  ck_assert_int_eq(r.dims[3], 16);
  ck_assert_uint_eq(r.bytes, 2 * 3 * 16 * 16 * 4);
  ck_assert_uint_eq((uintptr_t)r.data % 64, 0);
  const float *f = r.data;
  for (size_t i = 0; i < r.bytes / 4; ++i) ck_assert_msg(f[i] == f[i], "NaN at %zu", i);

  /* A file the reader wrote round-trips to an identical tensor. */
  EXPECT_OK(oc_tensor_file_write_pb(tmp_path("copy.pb"), &r));
  oc_host_tensor_t c;
  EXPECT_OK(oc_tensor_file_read(tmp_path("copy.pb"), &c));
  expect_tensor(&c, "x", 1, 4, r.dims, r.data, r.bytes);
  oc_host_tensor_free(&c);
  EXPECT_OK(oc_tensor_file_write_npy(tmp_path("copy.npy"), &r));
  EXPECT_OK(oc_tensor_file_read(tmp_path("copy.npy"), &c));
  expect_tensor(&c, NULL, 1, 4, r.dims, r.data, r.bytes);
  oc_host_tensor_free(&c);
  oc_host_tensor_free(&r);
}
END_TEST

START_TEST(dtype_sizes) {
  ck_assert_uint_eq(oc_onnx_dtype_size(1), 4);
  ck_assert_uint_eq(oc_onnx_dtype_size(4), 2);
  ck_assert_uint_eq(oc_onnx_dtype_size(7), 8);
  ck_assert_uint_eq(oc_onnx_dtype_size(8), 0);
  ck_assert_uint_eq(oc_onnx_dtype_size(9), 1);
  ck_assert_uint_eq(oc_onnx_dtype_size(10), 2);
  ck_assert_uint_eq(oc_onnx_dtype_size(11), 8);
  ck_assert_uint_eq(oc_onnx_dtype_size(12), 4);
  ck_assert_uint_eq(oc_onnx_dtype_size(13), 8);
  ck_assert_uint_eq(oc_onnx_dtype_size(15), 16);
  ck_assert_uint_eq(oc_onnx_dtype_size(16), 2);
  ck_assert_uint_eq(oc_onnx_dtype_size(0), 0);
  ck_assert_uint_eq(oc_onnx_dtype_size(-1), 0);
  ck_assert_uint_eq(oc_onnx_dtype_size(1000), 0);
  oc_host_tensor_free(NULL);
  oc_host_tensor_t z = {0};
  oc_host_tensor_free(&z);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* npy                                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(npy_roundtrip) {
  const int64_t d23[] = {2, 3};
  roundtrip(oc_tensor_file_write_npy, 0, "f.npy", "ignored", 1, 2, d23, k_f32, sizeof(k_f32));
  const int64_t d5[] = {5};
  roundtrip(oc_tensor_file_write_npy, 0, "i.npy", NULL, 7, 1, d5, k_i64, sizeof(k_i64));
  const int64_t d7[] = {1, 7, 1};
  roundtrip(oc_tensor_file_write_npy, 0, "b.npy", NULL, 9, 3, d7, k_bool, sizeof(k_bool));
  const float v = -3.5f;
  roundtrip(oc_tensor_file_write_npy, 0, "s.npy", NULL, 1, 0, NULL, &v, sizeof(v));
  const int64_t d0[] = {0};
  roundtrip(oc_tensor_file_write_npy, 0, "e.npy", NULL, 1, 1, d0, NULL, 0);
  const int64_t d030[] = {3, 0, 2};
  roundtrip(oc_tensor_file_write_npy, 0, "e3.npy", NULL, 7, 3, d030, NULL, 0);
  const int64_t d8[] = {1, 1, 1, 1, 1, 2, 1, 3};
  roundtrip(oc_tensor_file_write_npy, 0, "r8.npy", NULL, 1, 8, d8, k_f32, sizeof(k_f32));
  const uint16_t h[3] = {0x3c00, 0, 0xffff};
  const int64_t d3[] = {3};
  roundtrip(oc_tensor_file_write_npy, 0, "h.npy", NULL, 10, 1, d3, h, sizeof(h));
}
END_TEST

/* The header is exactly what NumPy writes. */
START_TEST(npy_written_header) {
  const int64_t dims[] = {2, 3};
  oc_host_tensor_t t;
  make_tensor(&t, NULL, 1, 2, dims, k_f32, sizeof(k_f32));
  EXPECT_OK(oc_tensor_file_write_npy(tmp_path("a.npy"), &t));
  oc_host_tensor_free(&t);
  void *buf;
  size_t n;
  EXPECT_OK(oc_file_read_all(tmp_path("a.npy"), &buf, &n));
  const uint8_t *b = buf;
  ck_assert_uint_eq(n, 128 + sizeof(k_f32)); /* 10 + 60 + '\n' rounded up to 64 */
  ck_assert_int_eq(memcmp(b, "\x93NUMPY\x01\x00", 8), 0);
  ck_assert_uint_eq(b[8] | b[9] << 8, 118);
  const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ck_assert_int_eq(memcmp(b + 10, want, strlen(want)), 0);
  for (size_t i = 10 + strlen(want); i < 127; ++i) ck_assert_int_eq(b[i], ' ');
  ck_assert_int_eq(b[127], '\n');
  ck_assert_int_eq(memcmp(b + 128, k_f32, sizeof(k_f32)), 0);
  free(buf);

  /* 1-d and 0-d shapes, 1-byte descr */
  const int64_t d1[] = {7};
  make_tensor(&t, NULL, 9, 1, d1, k_bool, sizeof(k_bool));
  EXPECT_OK(oc_tensor_file_write_npy(tmp_path("b.npy"), &t));
  oc_host_tensor_free(&t);
  EXPECT_OK(oc_file_read_all(tmp_path("b.npy"), &buf, &n));
  want = "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }";
  ck_assert_int_eq(memcmp((char *)buf + 10, want, strlen(want)), 0);
  free(buf);
  const float v = 1;
  make_tensor(&t, NULL, 1, 0, NULL, &v, 4);
  EXPECT_OK(oc_tensor_file_write_npy(tmp_path("c.npy"), &t));
  oc_host_tensor_free(&t);
  EXPECT_OK(oc_file_read_all(tmp_path("c.npy"), &buf, &n));
  want = "'shape': (), }";
  ck_assert_ptr_nonnull(strstr((char *)buf + 10, want));
  free(buf);

  /* bfloat16 has no NumPy dtype */
  const uint16_t bf[1] = {0x3f80};
  const int64_t d1b[] = {1};
  make_tensor(&t, NULL, 16, 1, d1b, bf, 2);
  EXPECT_CODE(oc_tensor_file_write_npy(tmp_path("bf.npy"), &t), OC_STATUS_UNSUPPORTED, "bfloat16");
  ck_assert(!file_exists(tmp_path("bf.npy")));
  oc_host_tensor_free(&t);
}
END_TEST

/* Builds a .npy image: preamble of |version| (1..3), |header| (padded with
 * spaces and '\n' to a multiple of 64 unless |raw_header|), then |payload|. */
static uint8_t *make_npy(int version, const char *header, int raw_header, const void *payload,
                         size_t n, size_t *out_n) {
  size_t pre = version == 1 ? 10 : 12;
  size_t hl = strlen(header);
  size_t hlen = raw_header ? hl : (pre + hl + 1 + 63) / 64 * 64 - pre;
  *out_n = pre + hlen + n;
  uint8_t *b = malloc(*out_n);
  ck_assert_ptr_nonnull(b);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (uint8_t)version;
  b[7] = 0;
  b[8] = (uint8_t)(hlen & 0xff);
  b[9] = (uint8_t)(hlen >> 8);
  if (version != 1) {
    b[10] = (uint8_t)(hlen >> 16);
    b[11] = (uint8_t)(hlen >> 24);
  }
  memcpy(b + pre, header, hl);
  if (!raw_header) {
    memset(b + pre + hl, ' ', hlen - hl);
    b[pre + hlen - 1] = '\n';
  }
  if (n) memcpy(b + pre + hlen, payload, n);
  return b;
}

static void npy_expect_ok(int version, const char *header, const void *payload, size_t n,
                          int dtype, int rank, const int64_t *dims) {
  size_t bytes;
  uint8_t *b = make_npy(version, header, 0, payload, n, &bytes);
  oc_host_tensor_t r;
  oc_status_t s = oc_tensor_read_npy_memory(b, bytes, &r);
  free(b);
  if (s) {
    char m[1024];
    snprintf(m, sizeof(m), "%s", oc_status_message(s));
    oc_status_free(s);
    ck_abort_msg("header %s: %s", header, m);
  }
  expect_tensor(&r, NULL, dtype, rank, dims, payload, n);
  oc_host_tensor_free(&r);
}

static void npy_expect_err_at(int version, const char *header, int raw_header, const void *payload,
                              size_t n, oc_status_code_t code, const char *needle, int line) {
  size_t bytes;
  uint8_t *b = make_npy(version, header, raw_header, payload, n, &bytes);
  oc_host_tensor_t r;
  memset(&r, 0x5a, sizeof(r));
  expect_code_at(oc_tensor_read_npy_memory(b, bytes, &r), code, needle, header, line);
  ck_assert(is_zeroed(&r));
  free(b);
}
#define NPY_ERR(header, payload, n, code, needle) \
  npy_expect_err_at(1, (header), 0, (payload), (n), (code), (needle), __LINE__)

START_TEST(npy_header_variants) {
  const int64_t d23[] = {2, 3}, d6[] = {6}, d3[] = {3}, d32[] = {3, 2};
  npy_expect_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", k_f32,
                sizeof(k_f32), 1, 2, d23);
  /* key order, double quotes, no trailing comma, no spaces, Python 2 'L' */
  npy_expect_ok(1, "{\"shape\":(6,),\"fortran_order\":False,\"descr\":\"<f4\"}", k_f32,
                sizeof(k_f32), 1, 1, d6);
  npy_expect_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2L), }", k_f32,
                sizeof(k_f32), 1, 2, d32);
  npy_expect_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ( 3 , 2 , ) }", k_f32,
                sizeof(k_f32), 1, 2, d32);
  /* versions 2.0 and 3.0 */
  npy_expect_ok(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", k_f32,
                sizeof(k_f32), 1, 2, d23);
  npy_expect_ok(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", k_f32,
                sizeof(k_f32), 1, 1, d6);
  /* dtypes */
  const double f8[3] = {1, 2, 3};
  npy_expect_ok(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8, sizeof(f8),
                11, 1, d3);
  const uint8_t u1[3] = {0, 200, 255};
  npy_expect_ok(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", u1, 3, 2, 1, d3);
  npy_expect_ok(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }", u1, 3, 3, 1, d3);
  npy_expect_ok(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", k_bool, 3, 9, 1,
                d3);
  const uint16_t u2[3] = {1, 65535, 7};
  npy_expect_ok(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", u2, 6, 10, 1, d3);
  npy_expect_ok(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", u2, 6, 5, 1, d3);
  npy_expect_ok(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", u2, 6, 4, 1, d3);
  const int32_t i4[3] = {-1, 0, 1};
  npy_expect_ok(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", i4, 12, 6, 1, d3);
  npy_expect_ok(1, "{'descr': '<u4', 'fortran_order': False, 'shape': (3,), }", i4, 12, 12, 1, d3);
  npy_expect_ok(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", k_i64,
                sizeof(k_i64), 7, 1, (const int64_t[]){5});
  npy_expect_ok(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (5,), }", k_i64,
                sizeof(k_i64), 13, 1, (const int64_t[]){5});
  npy_expect_ok(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", k_f32,
                sizeof(k_f32), 14, 1, d3);
  /* 0-d and empty */
  npy_expect_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", k_f32, 4, 1, 0,
                NULL);
  npy_expect_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", NULL, 0, 1, 2,
                (const int64_t[]){0, 5});
}
END_TEST

/* ------------------------------------------------------------------------ */
/* errors                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(err_pb_truncated) {
  const int64_t dims[] = {2, 3};
  oc_host_tensor_t t, r;
  make_tensor(&t, "x", 1, 2, dims, k_f32, sizeof(k_f32));
  EXPECT_OK(oc_tensor_file_write_pb(tmp_path("t.pb"), &t));
  oc_host_tensor_free(&t);
  void *buf;
  size_t n;
  EXPECT_OK(oc_file_read_all(tmp_path("t.pb"), &buf, &n));
  /* every truncation point fails (the raw_data field is last) */
  for (size_t cut = 1; cut < n; ++cut) {
    memset(&r, 0x5a, sizeof(r));
    oc_status_t s = oc_tensor_read_pb_memory(buf, cut, &r);
    ck_assert_msg(s != OC_OK, "truncation at %zu of %zu accepted", cut, n);
    ck_assert_int_eq(oc_status_code(s), OC_STATUS_CORRUPT);
    oc_status_free(s);
    ck_assert(is_zeroed(&r));
  }
  write_raw(tmp_path("t.pb"), buf, n - 5);
  EXPECT_CODE(oc_tensor_file_read(tmp_path("t.pb"), &r), OC_STATUS_CORRUPT, tmp_path("t.pb"));
  free(buf);
  /* An empty file parses as a TensorProto without data_type. */
  write_raw(tmp_path("empty.pb"), "", 0);
  EXPECT_CODE(oc_tensor_file_read(tmp_path("empty.pb"), &r), OC_STATUS_CORRUPT, "data_type");
  /* Garbage. */
  write_raw(tmp_path("junk.pb"), "\xff\xff\xff\xff\xff\xff", 6);
  EXPECT_CODE(oc_tensor_file_read(tmp_path("junk.pb"), &r), OC_STATUS_CORRUPT, "junk.pb: ");
}
END_TEST

START_TEST(err_pb_payload_and_dims) {
  int64_t dims[OC_MAX_RANK + 1] = {2, 2};
  uint8_t raw[16] = {0};
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.name = "bad";
  tp.n_dims = 2;
  tp.dims = dims;
  tp.has_data_type = 1;
  tp.data_type = 1;
  tp.has_raw_data = 1;
  tp.raw_data.data = raw;
  tp.raw_data.len = 12;
  /* payload size mismatch, short and long */
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "tensor 'bad': raw_data has 12 bytes");
  tp.raw_data.len = 16;
  oc_host_tensor_t r;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  oc_host_tensor_free(&r);
  dims[1] = 1;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "require 8");
  /* via a file: message starts with the path */
  size_t n;
  uint8_t *buf = pack_proto(&tp, &n);
  write_raw(tmp_path("m.pb"), buf, n);
  free(buf);
  char want[600];
  snprintf(want, sizeof(want), "%s: tensor 'bad'", tmp_path("m.pb"));
  oc_status_t s = oc_tensor_file_read(tmp_path("m.pb"), &r);
  ck_assert_ptr_nonnull(s);
  ck_assert_msg(strncmp(oc_status_message(s), want, strlen(want)) == 0, "%s",
                oc_status_message(s));
  oc_status_free(s);
  /* negative dim */
  dims[1] = -2;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "negative");
  /* dims overflowing: 2^62 * 2^62 elements; also with a zero dim present */
  dims[0] = (int64_t)1 << 62;
  dims[1] = (int64_t)1 << 62;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "overflow");
  tp.n_dims = 3;
  dims[2] = 0;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "overflow");
  /* element count fits but bytes overflow */
  tp.n_dims = 1;
  dims[0] = (int64_t)1 << 62;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "overflow");
  /* over the 2^40-byte limit */
  tp.n_dims = 2;
  dims[0] = (int64_t)1 << 20;
  dims[1] = (int64_t)1 << 19;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_RESOURCE_LIMIT, "limit");
  /* rank 9 */
  for (int i = 0; i < OC_MAX_RANK + 1; ++i) dims[i] = 1;
  tp.n_dims = OC_MAX_RANK + 1;
  tp.raw_data.len = 4;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_UNSUPPORTED, "rank 9");
  tp.n_dims = OC_MAX_RANK;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  ck_assert_int_eq(r.rank, 8);
  oc_host_tensor_free(&r);
  /* no payload for a non-empty tensor */
  tp.has_raw_data = 0;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "no payload");
  tp.has_raw_data = 1;
  /* missing / undefined / string / unknown dtypes */
  tp.has_data_type = 0;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "data_type is missing");
  tp.has_data_type = 1;
  tp.data_type = 0;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "UNDEFINED");
  tp.data_type = 8;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_UNSUPPORTED, "string");
  tp.data_type = 99;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_UNSUPPORTED, "99");
  tp.data_type = 1;
  /* segments */
  Onnx__TensorProto__Segment seg = ONNX__TENSOR_PROTO__SEGMENT__INIT;
  tp.segment = &seg;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_UNSUPPORTED, "segment");
  tp.segment = NULL;
  /* raw_data and float_data together */
  float f = 1;
  tp.n_float_data = 1;
  tp.float_data = &f;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "both raw_data and float_data");
  tp.has_raw_data = 0;
  EXPECT_OK(oc_tensor_from_proto(&tp, NULL, &r));
  oc_host_tensor_free(&r);
  /* a typed field that cannot carry the dtype */
  tp.data_type = 7;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "float_data, which cannot carry int64");
}
END_TEST

START_TEST(err_pb_typed_values) {
  int64_t dims[] = {3};
  int32_t v[3] = {0, 1, 2};
  Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
  tp.n_dims = 1;
  tp.dims = dims;
  tp.has_data_type = 1;
  tp.data_type = 9;
  tp.n_int32_data = 3;
  tp.int32_data = v;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "int32_data[2] = 2 is out of range for bool");
  tp.data_type = 3;
  v[2] = 128;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "out of range for int8");
  tp.data_type = 2;
  v[2] = -1;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "out of range for uint8");
  tp.data_type = 10;
  v[2] = 65536;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "out of range for float16");
  tp.data_type = 6;
  tp.n_int32_data = 2;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "int32_data has 2 values");
  /* huge dims (exactly the 2^40-byte limit) backed by one value: rejected
   * before the payload is allocated */
  int64_t big[2] = {(int64_t)1 << 20, (int64_t)1 << 18};
  tp.dims = big;
  tp.n_dims = 2;
  tp.n_int32_data = 1;
  tp.data_type = 6;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "int32_data has 1 values");
  float f1 = 1;
  tp.n_int32_data = 0;
  tp.data_type = 1;
  tp.n_float_data = 1;
  tp.float_data = &f1;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "float_data has 1 values");
  tp.n_float_data = 0;
  tp.dims = dims;
  tp.n_dims = 1;
  /* raw bool bytes must be 0/1 */
  uint8_t raw[3] = {0, 1, 3};
  tp.n_int32_data = 0;
  tp.data_type = 9;
  tp.has_raw_data = 1;
  tp.raw_data.len = 3;
  tp.raw_data.data = raw;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "bool element 2");
  /* string_data for a numeric tensor */
  tp.has_raw_data = 0;
  ProtobufCBinaryData sd[3] = {{0, NULL}, {0, NULL}, {0, NULL}};
  tp.n_string_data = 3;
  tp.string_data = sd;
  EXPECT_PROTO_ERROR(&tp, NULL, OC_STATUS_CORRUPT, "string_data");
}
END_TEST

START_TEST(err_pb_external_paths) {
  write_data_file("weights.bin", 0, k_f32, sizeof(k_f32), 0);
  ext_proto_t x;
  const char *bad[] = {"/etc/passwd", "../weights.bin", "a/../../weights.bin", "..", "sub/..",
                       ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    make_ext_proto(&x, bad[i], "0", "24");
    EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "relative path");
  }
  /* names that merely contain dots are fine */
  write_data_file("..w.bin", 0, k_f32, sizeof(k_f32), 0);
  make_ext_proto(&x, "..w.bin", "0", "24");
  oc_host_tensor_t r;
  EXPECT_OK(oc_tensor_from_proto(&x.tp, g_dir, &r));
  oc_host_tensor_free(&r);
  /* duplicate key */
  make_ext_proto(&x, "weights.bin", "0", "24");
  x.e[1].key = "location";
  EXPECT_PROTO_ERROR(&x.tp, g_dir, OC_STATUS_CORRUPT, "twice");
}
END_TEST

START_TEST(err_npy) {
  const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  /* sanity */
  npy_expect_ok(1, good, k_f32, sizeof(k_f32), 1, 2, (const int64_t[]){2, 3});

  /* bad magic */
  size_t n;
  uint8_t *b = make_npy(1, good, 0, k_f32, sizeof(k_f32), &n);
  oc_host_tensor_t r;
  b[1] = 'n';
  EXPECT_CODE(oc_tensor_read_npy_memory(b, n, &r), OC_STATUS_CORRUPT, "magic");
  b[1] = 'N';
  /* unsupported version */
  b[6] = 4;
  EXPECT_CODE(oc_tensor_read_npy_memory(b, n, &r), OC_STATUS_VERSION, "4.0");
  b[6] = 1;
  b[7] = 1;
  EXPECT_CODE(oc_tensor_read_npy_memory(b, n, &r), OC_STATUS_VERSION, "1.1");
  b[7] = 0;
  /* truncated preamble and truncated header */
  EXPECT_CODE(oc_tensor_read_npy_memory(b, 7, &r), OC_STATUS_CORRUPT, "truncated");
  EXPECT_CODE(oc_tensor_read_npy_memory(b, 9, &r), OC_STATUS_CORRUPT, "truncated");
  EXPECT_CODE(oc_tensor_read_npy_memory(b, 40, &r), OC_STATUS_CORRUPT, "truncated header");
  EXPECT_CODE(oc_tensor_read_npy_memory(NULL, 0, &r), OC_STATUS_CORRUPT, "truncated");
  /* payload one byte short / long (shape mismatch) */
  EXPECT_CODE(oc_tensor_read_npy_memory(b, n - 1, &r), OC_STATUS_CORRUPT, "requires 24");
  free(b);
  NPY_ERR(good, k_f32, 20, OC_STATUS_CORRUPT, "payload at byte 128 is 20 bytes");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", k_f32, 24,
          OC_STATUS_CORRUPT, "requires 16");
  /* fortran order, big-endian, native order, object and structured dtypes */
  NPY_ERR("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "fortran_order");
  NPY_ERR("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "big-endian");
  NPY_ERR("{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "byte order");
  NPY_ERR("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "object");
  NPY_ERR("{'descr': '|O8', 'fortran_order': False, 'shape': (3,), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "object");
  NPY_ERR("{'descr': '<U5', 'fortran_order': False, 'shape': (3,), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "<U5");
  NPY_ERR("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", k_f32, 12,
          OC_STATUS_UNSUPPORTED, "structured");
  NPY_ERR("{'descr': 'f4', 'fortran_order': False, 'shape': (6,), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, NULL);
  NPY_ERR("{'descr': '<f04', 'fortran_order': False, 'shape': (6,), }", k_f32, 24,
          OC_STATUS_UNSUPPORTED, NULL);
  /* dict syntax */
  NPY_ERR("{'descr': '<f4', 'fortran_order': False}", k_f32, 24, OC_STATUS_CORRUPT,
          "missing key 'shape'");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", k_f32, 24,
          OC_STATUS_CORRUPT, "unexpected key 'x'");
  NPY_ERR("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", k_f32, 24,
          OC_STATUS_CORRUPT, "twice");
  NPY_ERR("{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", k_f32, 24, OC_STATUS_CORRUPT,
          "expected ',' or '}'");
  NPY_ERR("{'descr': '<f' '4', 'fortran_order': False, 'shape': (6,)}", k_f32, 24,
          OC_STATUS_CORRUPT, NULL);
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", k_f32, 24,
          OC_STATUS_CORRUPT, "padding");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", k_f32, 24, OC_STATUS_CORRUPT,
          "end of the header");
  NPY_ERR("'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", k_f32, 24, OC_STATUS_CORRUPT,
          "'{'");
  NPY_ERR("{'descr': '<f4', 'fortran_order': false, 'shape': (6,)}", k_f32, 24, OC_STATUS_CORRUPT,
          "True or False");
  NPY_ERR("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (6,)}", k_f32, 24,
          OC_STATUS_CORRUPT, "True or False");
  NPY_ERR("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", k_f32, 24, OC_STATUS_CORRUPT,
          "True or False");
  NPY_ERR("{'descr': '<f4\\x', 'fortran_order': False, 'shape': (6,)}", k_f32, 24,
          OC_STATUS_CORRUPT, NULL);
  NPY_ERR("{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", k_f32, 24, OC_STATUS_CORRUPT,
          NULL);
  NPY_ERR("{descr: '<f4', 'fortran_order': False, 'shape': (6,)}", k_f32, 24, OC_STATUS_CORRUPT,
          "dict key");
  /* shapes */
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", k_f32, 24, OC_STATUS_CORRUPT,
          "not a tuple");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': 6}", k_f32, 24, OC_STATUS_CORRUPT,
          "'('");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': [6]}", k_f32, 24, OC_STATUS_CORRUPT,
          "'('");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", k_f32, 24,
          OC_STATUS_CORRUPT, "negative");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (06,)}", k_f32, 24,
          OC_STATUS_CORRUPT, "leading zero");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,)}", k_f32, 24,
          OC_STATUS_CORRUPT, NULL);
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (2,,3)}", k_f32, 24,
          OC_STATUS_CORRUPT, "dimension");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (,)}", k_f32, 24, OC_STATUS_CORRUPT,
          "dimension");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", k_f32, 24,
          OC_STATUS_CORRUPT, "',' or ')'");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", k_f32, 24,
          OC_STATUS_CORRUPT, "overflows");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, "
          "4611686018427387904)}",
          k_f32, 24, OC_STATUS_CORRUPT, "overflows");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576)}", k_f32, 24,
          OC_STATUS_RESOURCE_LIMIT, "limit");
  NPY_ERR("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6)}", k_f32, 24,
          OC_STATUS_UNSUPPORTED, "more than 8");
  /* bool payload bytes must be 0/1 */
  const uint8_t bad_bool[3] = {1, 0, 2};
  NPY_ERR("{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}", bad_bool, 3,
          OC_STATUS_CORRUPT, "bool element 2");
  /* a NUL in the header (raw, declared length includes it) */
  npy_expect_err_at(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\0", 1, k_f32, 0,
                    OC_STATUS_CORRUPT, NULL, __LINE__);

  /* read through a file: message starts with the path */
  b = make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", 0, k_f32, 24, &n);
  write_raw(tmp_path("be.npy"), b, n);
  free(b);
  char want[600];
  snprintf(want, sizeof(want), "%s: npy descr '>f4'", tmp_path("be.npy"));
  oc_status_t s = oc_tensor_file_read(tmp_path("be.npy"), &r);
  ck_assert_int_eq(oc_status_code(s), OC_STATUS_UNSUPPORTED);
  ck_assert_msg(strncmp(oc_status_message(s), want, strlen(want)) == 0, "%s",
                oc_status_message(s));
  oc_status_free(s);
  ck_assert(is_zeroed(&r));
}
END_TEST

START_TEST(err_atomic_writer) {
  const int64_t dims[] = {2, 3};
  oc_host_tensor_t t;
  make_tensor(&t, "x", 1, 2, dims, k_f32, sizeof(k_f32));

  /* the directory does not exist: error, and no file */
  const char *nodir = tmp_path("no/such/dir/x.pb");
  EXPECT_CODE(oc_tensor_file_write_pb(nodir, &t), OC_STATUS_IO, nodir);
  ck_assert(!file_exists(nodir));
  EXPECT_CODE(oc_tensor_file_write_npy(nodir, &t), OC_STATUS_IO, NULL);
  EXPECT_CODE(oc_file_write_atomic(nodir, "abc", 3), OC_STATUS_IO, NULL);
  ck_assert(!file_exists(tmp_path("no")));
  ck_assert_int_eq(dir_entry_count(g_dir), 0);

  /* the target is a directory: the rename fails, the temp file is removed */
  ck_assert_int_eq(mkdir(tmp_path("d"), 0755), 0);
  EXPECT_CODE(oc_tensor_file_write_pb(tmp_path("d"), &t), OC_STATUS_IO, "rename");
  ck_assert_int_eq(dir_entry_count(g_dir), 1);
  ck_assert_int_eq(dir_entry_count(tmp_path("d")), 0);

  /* an invalid tensor never clobbers an existing file */
  write_raw(tmp_path("keep.pb"), "old", 3);
  t.bytes = 20; /* dims require 24 */
  EXPECT_CODE(oc_tensor_file_write_pb(tmp_path("keep.pb"), &t), OC_STATUS_INVALID_ARGUMENT,
              "require 24");
  EXPECT_CODE(oc_tensor_file_write_npy(tmp_path("keep.pb"), &t), OC_STATUS_INVALID_ARGUMENT,
              "require 24");
  t.bytes = 24;
  t.dims[0] = -2;
  EXPECT_CODE(oc_tensor_file_write_pb(tmp_path("keep.pb"), &t), OC_STATUS_INVALID_ARGUMENT,
              "negative");
  t.dims[0] = 2;
  t.dtype = 8;
  EXPECT_CODE(oc_tensor_file_write_pb(tmp_path("keep.pb"), &t), OC_STATUS_UNSUPPORTED, NULL);
  t.dtype = 1;
  t.rank = 9;
  EXPECT_CODE(oc_tensor_file_write_pb(tmp_path("keep.pb"), &t), OC_STATUS_INVALID_ARGUMENT,
              "rank");
  t.rank = 2;
  void *buf;
  size_t n;
  EXPECT_OK(oc_file_read_all(tmp_path("keep.pb"), &buf, &n));
  ck_assert_uint_eq(n, 3);
  ck_assert_int_eq(memcmp(buf, "old", 3), 0);
  free(buf);

  /* a stale temp file of our pid is replaced */
  char stale[600];
  snprintf(stale, sizeof(stale), "%s.tmp.%ld", tmp_path("s.pb"), (long)getpid());
  write_raw(stale, "stale", 5);
  EXPECT_OK(oc_tensor_file_write_pb(tmp_path("s.pb"), &t));
  ck_assert(!file_exists(stale));
  oc_host_tensor_t r;
  EXPECT_OK(oc_tensor_file_read(tmp_path("s.pb"), &r));
  expect_tensor(&r, "x", 1, 2, dims, k_f32, sizeof(k_f32));
  oc_host_tensor_free(&r);
  oc_host_tensor_free(&t);

  /* oc_file_write_atomic of an empty buffer */
  EXPECT_OK(oc_file_write_atomic(tmp_path("empty"), NULL, 0));
  EXPECT_OK(oc_file_read_all(tmp_path("empty"), &buf, &n));
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(n, 0);
  free(buf);
}
END_TEST

START_TEST(err_read_all) {
  void *buf = (void *)1;
  size_t n = 7;
  const char *missing = tmp_path("missing.pb");
  EXPECT_CODE(oc_file_read_all(missing, &buf, &n), OC_STATUS_IO, missing);
  ck_assert_ptr_null(buf);
  ck_assert_uint_eq(n, 0);
  EXPECT_CODE(oc_file_read_all(g_dir, &buf, &n), OC_STATUS_IO, "not a regular file");
  oc_host_tensor_t r;
  EXPECT_CODE(oc_tensor_file_read(missing, &r), OC_STATUS_IO, missing);
  ck_assert(is_zeroed(&r));
}
END_TEST

/* oc_tensor_file_info: the type and shape without the payload; an .npy's
 * header alone is read, and its size checked against the shape. */
START_TEST(file_info) {
  const int64_t dims[] = {2, 3};
  oc_host_tensor_t t, r;
  make_tensor(&t, "x", 1, 2, dims, k_f32, sizeof(k_f32));
  EXPECT_OK(oc_tensor_file_write_npy(tmp_path("a.npy"), &t));
  EXPECT_OK(oc_tensor_file_write_pb(tmp_path("a.pb"), &t));
  const char *names[] = {"a.npy", "a.pb"};
  for (int k = 0; k < 2; k++) {
    EXPECT_OK(oc_tensor_file_info(tmp_path(names[k]), &r));
    ck_assert_int_eq(r.dtype, 1);
    ck_assert_int_eq(r.rank, 2);
    ck_assert_int_eq(r.dims[0], 2);
    ck_assert_int_eq(r.dims[1], 3);
    ck_assert_uint_eq(r.bytes, sizeof(k_f32));
    ck_assert_ptr_null(r.data);
    oc_host_tensor_free(&r);
  }
  /* the header writer gives the bytes oc_tensor_file_write_npy starts with */
  uint8_t header[OC_NPY_HEADER_MAX];
  size_t len = 0;
  EXPECT_OK(oc_tensor_npy_header(1, 2, dims, header, sizeof header, &len));
  ck_assert_uint_eq(len % 64, 0);
  void *buf;
  size_t n;
  EXPECT_OK(oc_file_read_all(tmp_path("a.npy"), &buf, &n));
  ck_assert_uint_eq(n, len + sizeof(k_f32));
  ck_assert_int_eq(memcmp(buf, header, len), 0);
  /* a payload one byte short, a truncated header: errors naming the file */
  write_raw(tmp_path("short.npy"), buf, n - 1);
  EXPECT_CODE(oc_tensor_file_info(tmp_path("short.npy"), &r), OC_STATUS_CORRUPT, "short.npy: ");
  ck_assert(is_zeroed(&r));
  write_raw(tmp_path("head.npy"), buf, 20);
  EXPECT_CODE(oc_tensor_file_info(tmp_path("head.npy"), &r), OC_STATUS_CORRUPT, "truncated header");
  write_raw(tmp_path("tiny.npy"), buf, 4);
  EXPECT_CODE(oc_tensor_file_info(tmp_path("tiny.npy"), &r), OC_STATUS_CORRUPT, NULL);
  free(buf);
  EXPECT_CODE(oc_tensor_file_info(tmp_path("missing.npy"), &r), OC_STATUS_IO, "missing.npy");
  EXPECT_CODE(oc_tensor_file_info(g_dir, &r), OC_STATUS_IO, "not a regular file");
  EXPECT_CODE(oc_tensor_npy_header(16, 2, dims, header, sizeof header, &len),
              OC_STATUS_UNSUPPORTED, "NumPy");
  oc_host_tensor_free(&t);
}
END_TEST

/* oc_atomic_file_t: nameless while written, in place when committed; a
 * discarded one leaves nothing and never touches the target. */
START_TEST(atomic_file_pieces) {
  oc_atomic_file_t f;
  EXPECT_OK(oc_atomic_file_open(&f, tmp_path("out.bin")));
  EXPECT_OK(oc_atomic_file_pwrite(&f, "world", 5, 6));
  EXPECT_OK(oc_atomic_file_pwrite(&f, "hello ", 6, 0));
  ck_assert_int_eq(dir_entry_count(g_dir), f.named ? 1 : 0);
  EXPECT_OK(oc_atomic_file_finish(&f));
  ck_assert(!file_exists(tmp_path("out.bin")));
  EXPECT_OK(oc_atomic_file_commit(&f));
  void *buf;
  size_t n;
  EXPECT_OK(oc_file_read_all(tmp_path("out.bin"), &buf, &n));
  ck_assert_uint_eq(n, 11);
  ck_assert_int_eq(memcmp(buf, "hello world", 11), 0);
  free(buf);
  ck_assert_int_eq(dir_entry_count(g_dir), 1);

  /* discarded before or after finishing: the old file stays, no temp file */
  for (int finish = 0; finish < 2; finish++) {
    EXPECT_OK(oc_atomic_file_open(&f, tmp_path("out.bin")));
    EXPECT_OK(oc_atomic_file_pwrite(&f, "new", 3, 0));
    if (finish) EXPECT_OK(oc_atomic_file_finish(&f));
    oc_atomic_file_discard(&f);
    oc_atomic_file_discard(&f); /* twice is harmless */
    ck_assert_int_eq(dir_entry_count(g_dir), 1);
    EXPECT_OK(oc_file_read_all(tmp_path("out.bin"), &buf, &n));
    ck_assert_uint_eq(n, 11);
    free(buf);
  }
  /* a missing folder; a target that is a folder */
  EXPECT_CODE(oc_atomic_file_open(&f, tmp_path("no/x.bin")), OC_STATUS_IO, "no/x.bin");
  ck_assert_int_eq(mkdir(tmp_path("d"), 0755), 0);
  EXPECT_OK(oc_atomic_file_open(&f, tmp_path("d")));
  EXPECT_OK(oc_atomic_file_finish(&f));
  EXPECT_CODE(oc_atomic_file_commit(&f), OC_STATUS_IO, "rename");
  ck_assert_int_eq(dir_entry_count(g_dir), 2);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *tensor_file_suite(void) {
  Suite *s = suite_create("tensor_file");

  TCase *pb = tcase_create("pb");
  tcase_add_checked_fixture(pb, setup_dir, teardown_dir);
  tcase_add_test(pb, pb_roundtrip_float32);
  tcase_add_test(pb, pb_roundtrip_int64);
  tcase_add_test(pb, pb_roundtrip_bool);
  tcase_add_test(pb, pb_roundtrip_scalar_and_empty);
  tcase_add_test(pb, pb_written_fields);
  tcase_add_test(pb, pb_typed_float_data);
  tcase_add_test(pb, pb_typed_int64_data);
  tcase_add_test(pb, pb_typed_int32_data_small_types);
  tcase_add_test(pb, pb_typed_double_uint64_complex);
  tcase_add_test(pb, pb_external_data);
  tcase_add_test(pb, pb_fixture_input_0);
  tcase_add_test(pb, dtype_sizes);
  suite_add_tcase(s, pb);

  TCase *npy = tcase_create("npy");
  tcase_add_checked_fixture(npy, setup_dir, teardown_dir);
  tcase_add_test(npy, npy_roundtrip);
  tcase_add_test(npy, npy_written_header);
  tcase_add_test(npy, npy_header_variants);
  tcase_add_test(npy, file_info);
  tcase_add_test(npy, atomic_file_pieces);
  suite_add_tcase(s, npy);

  TCase *errors = tcase_create("errors");
  tcase_add_checked_fixture(errors, setup_dir, teardown_dir);
  tcase_add_test(errors, err_pb_truncated);
  tcase_add_test(errors, err_pb_payload_and_dims);
  tcase_add_test(errors, err_pb_typed_values);
  tcase_add_test(errors, err_pb_external_paths);
  tcase_add_test(errors, err_npy);
  tcase_add_test(errors, err_atomic_writer);
  tcase_add_test(errors, err_read_all);
  suite_add_tcase(s, errors);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(tensor_file_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
