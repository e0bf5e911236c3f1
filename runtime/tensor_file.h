/*
 * Tensor files: ONNX TensorProto (.pb, as in ONNX test_data_set_N folders)
 * and NumPy .npy, read into and written from host tensors.
 *
 * Used by the CLIs and the tests; not part of the public runtime API. Every
 * function returns a status (OC_OK on success) whose message names the file
 * (or tensor) and the problem. Nothing here prints or exits.
 *
 * Byte order: payloads are little-endian, row-major (C order). The library
 * requires a little-endian host.
 */
#ifndef ONNXC_TENSOR_FILE_H
#define ONNXC_TENSOR_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "onnx/onnx.pb-c.h"
#include "oc_file.h"
#include "onnxc/onnxc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest payload (and largest file) the readers accept: 2^40 bytes. */
#define OC_TENSOR_FILE_MAX_BYTES ((uint64_t)1 << 40)

/* A tensor in host memory, owned by the struct. */
typedef struct oc_host_tensor_s {
  char *name;                /* malloc'd; NULL when the file names none */
  int dtype;                 /* ONNX TensorProto.DataType number */
  int rank;                  /* 0..OC_MAX_RANK */
  int64_t dims[OC_MAX_RANK]; /* |rank| entries, each >= 0; the rest are 0 */
  void *data;                /* aligned_alloc(64, ...): never NULL after a successful
                                read, even for an empty tensor; free with free() */
  size_t bytes;              /* product(dims) * oc_onnx_dtype_size(dtype) */
} oc_host_tensor_t;

/* Frees |t->name| and |t->data| and zeroes |*t|. Accepts NULL and a zeroed
 * struct. */
void oc_host_tensor_free(oc_host_tensor_t *t);

/* Bytes per element of any fixed-size ONNX dtype (float16, bfloat16, double,
 * uint16, uint32, uint64, complex64 = 8, complex128 = 16, the float8 types =
 * 1, ...). 0 for string, undefined, the packed 4-bit types and unknown
 * numbers. (oc_dtype_size covers only the dtypes the runtime computes.) */
size_t oc_onnx_dtype_size(int dtype);

/* Decodes the unpacked TensorProto |tp| into |*out|, which is overwritten
 * (not freed first) and is left zeroed on error.
 *
 * The payload comes from exactly one of: raw_data; the typed field ONNX
 * prescribes for the dtype (float_data: float32, complex64; int32_data:
 * int32, int16, int8, uint16, uint8, bool, float16, bfloat16, float8*, each
 * value range-checked; int64_data: int64; double_data: double, complex128;
 * uint64_data: uint32, uint64); or external data (data_location EXTERNAL with
 * keys "location", "offset", "length"; unknown keys such as "checksum" are
 * ignored). An external location is relative to |base_dir|; absolute paths,
 * empty components and '..' components are rejected, offset + length must lie
 * inside the file, and |base_dir| NULL makes external data an error. No
 * payload at all is accepted only for a tensor of 0 elements.
 *
 * Checks: data_type is set and not UNDEFINED; rank <= OC_MAX_RANK
 * (UNSUPPORTED otherwise); every dim >= 0; the element count and byte size do
 * not overflow (CORRUPT) and the size is <= OC_TENSOR_FILE_MAX_BYTES
 * (RESOURCE_LIMIT); the payload is exactly the size the dims require; bool
 * bytes are 0 or 1. Strings (dtype 8), dtypes without a fixed element size
 * and segmented tensors give OC_STATUS_UNSUPPORTED. The name is copied. */
oc_status_t oc_tensor_from_proto(const Onnx__TensorProto *tp, const char *base_dir,
                                 oc_host_tensor_t *out);

/* Parses a serialized TensorProto (the contents of a .pb file) of |bytes|
 * bytes at |data| into |*out| (overwritten; zeroed on error). External data
 * is an error here (there is no directory to resolve it against). */
oc_status_t oc_tensor_read_pb_memory(const void *data, size_t bytes, oc_host_tensor_t *out);

/* Parses a NumPy .npy file image (format 1.0, 2.0 or 3.0) into |*out|
 * (overwritten; zeroed on error; name NULL).
 *
 * The header must be a Python dict literal with exactly the keys 'descr',
 * 'fortran_order' and 'shape' (each once, any order, string keys in single or
 * double quotes, optional trailing comma), followed only by spaces and a
 * newline. descr maps to ONNX numbers: b1 bool, u1 uint8, i1 int8, u2
 * uint16, i2 int16, u4 uint32, i4 int32, u8 uint64, i8 int64, f2 float16, f4
 * float32, f8 double, c8 complex64, c16 complex128. Multi-byte types must be
 * little-endian ('<'); big-endian, native-order ('='), object, string,
 * datetime and structured dtypes and fortran_order True are UNSUPPORTED.
 * shape is a tuple of non-negative decimal integers: (), (n,), (n, m), ...
 * The payload after the header must be exactly product(shape) * itemsize
 * bytes. */
oc_status_t oc_tensor_read_npy_memory(const void *data, size_t bytes, oc_host_tensor_t *out);

/* Reads the tensor file at |path| into |*out| (overwritten; zeroed on
 * error): .npy when it starts with "\x93NUMPY", otherwise a TensorProto
 * whose external data, if any, is resolved against the file's directory.
 * Error messages start with |path|. */
oc_status_t oc_tensor_file_read(const char *path, oc_host_tensor_t *out);

/* The dtype, shape and payload size of the tensor file at |path|, as
 * oc_tensor_file_read would give them, in |*out| (overwritten; zeroed on
 * error) with data NULL and name NULL: for an .npy file only its header is
 * read (and the file's size checked against the shape); a TensorProto is
 * read and checked whole. Error messages start with |path|. */
oc_status_t oc_tensor_file_info(const char *path, oc_host_tensor_t *out);

/* Longest .npy header oc_tensor_npy_header writes (rank <= OC_MAX_RANK). */
#define OC_NPY_HEADER_MAX 512

/* Writes into |buf| (|cap| bytes) the .npy format 1.0 preamble and header of
 * an array of |dtype| and shape |dims| (|rank| entries), as
 * oc_tensor_file_write_npy writes them (the payload then starts at a
 * multiple of 64 bytes); *out_len gets their length. */
oc_status_t oc_tensor_npy_header(int dtype, int rank, const int64_t *dims, uint8_t *buf,
                                 size_t cap, size_t *out_len);

/* Writes |t| to |path| as a TensorProto: dims, data_type, name (when
 * non-NULL) and the payload in raw_data. |t| is validated first (known
 * fixed-size dtype, rank, dims >= 0, bytes == product(dims) * element size,
 * data non-NULL when bytes > 0). Atomic, as oc_file_write_atomic. */
oc_status_t oc_tensor_file_write_pb(const char *path, const oc_host_tensor_t *t);

/* Writes |t| to |path| as .npy format 1.0 (C order, little-endian descr,
 * header padded so the payload starts at a multiple of 64). Dtypes NumPy
 * lacks (bfloat16, float8*) are UNSUPPORTED. The name is not stored. Atomic,
 * as oc_file_write_atomic. */
oc_status_t oc_tensor_file_write_npy(const char *path, const oc_host_tensor_t *t);

/* oc_file_write_atomic and oc_file_read_all: see oc_file.h. */

#ifdef __cplusplus
}
#endif

#endif /* ONNXC_TENSOR_FILE_H */
