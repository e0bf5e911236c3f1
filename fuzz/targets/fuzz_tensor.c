/*
 * fuzz_tensor: the tensor file readers.
 *
 * Every input goes to both oc_tensor_read_pb_memory (a serialized ONNX
 * TensorProto, as in the node tests' .pb files) and oc_tensor_read_npy_memory
 * (a NumPy .npy image). Either may fail with a status; when one succeeds the
 * target checks what the header promises: a name that is a string, a rank
 * within OC_MAX_RANK, dims >= 0 whose product times the element size is the
 * byte count, and a data buffer holding that many bytes (read in full, so
 * ASan sees a short one). The input is also written to an in-memory file
 * for oc_tensor_file_info, which must agree with the full read: it succeeds
 * whenever oc_tensor_file_read does, with the same dtype, shape and byte
 * count (it may succeed alone: of an .npy file it reads only the header, so
 * a payload the full read refuses, such as a bool of 0x11, passes).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "tensor_file.h"

static void check(const oc_host_tensor_t *t, const char *what) {
  if (t->rank < 0 || t->rank > OC_MAX_RANK) {
    fprintf(stderr, "fuzz_tensor: %s: rank %d\n", what, t->rank);
    abort();
  }
  uint64_t n = 1;
  for (int d = 0; d < t->rank; d++) {
    if (t->dims[d] < 0 || __builtin_mul_overflow(n, (uint64_t)t->dims[d], &n)) {
      fprintf(stderr, "fuzz_tensor: %s: dim %d is %lld\n", what, d, (long long)t->dims[d]);
      abort();
    }
  }
  size_t es = oc_onnx_dtype_size(t->dtype);
  uint64_t bytes;
  if (!es || __builtin_mul_overflow(n, (uint64_t)es, &bytes) || bytes != t->bytes) {
    fprintf(stderr, "fuzz_tensor: %s: dtype %d, %llu elements but %zu bytes\n", what, t->dtype,
            (unsigned long long)n, t->bytes);
    abort();
  }
  if (!t->data) {
    fprintf(stderr, "fuzz_tensor: %s: NULL data after a successful read\n", what);
    abort();
  }
  fuzz_touch(t->data, t->bytes);
  if (t->name) fuzz_touch(t->name, strlen(t->name) + 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_common();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* oc_tensor_file_info against oc_tensor_file_read on the same bytes. */
static void check_info(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz_tensor", 0);
    if (fd < 0) return;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) return;
  oc_host_tensor_t info, full;
  int info_ok = fuzz_ok(oc_tensor_file_info(path, &info));
  int full_ok = fuzz_ok(oc_tensor_file_read(path, &full));
  if (full_ok && !info_ok) {
    fprintf(stderr, "fuzz_tensor: oc_tensor_file_read succeeds but oc_tensor_file_info fails\n");
    abort();
  }
  if (full_ok) {
    int same = info.dtype == full.dtype && info.rank == full.rank && info.bytes == full.bytes;
    for (int d = 0; same && d < full.rank; d++) same = info.dims[d] == full.dims[d];
    if (!same) {
      fprintf(stderr, "fuzz_tensor: oc_tensor_file_info and oc_tensor_file_read disagree\n");
      abort();
    }
    check(&full, "file");
  }
  oc_host_tensor_free(&full);
  oc_host_tensor_free(&info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_info(data, size);
  oc_host_tensor_t t;
  if (fuzz_ok(oc_tensor_read_pb_memory(data, size, &t))) check(&t, "pb");
  oc_host_tensor_free(&t);
  if (fuzz_ok(oc_tensor_read_npy_memory(data, size, &t))) check(&t, "npy");
  oc_host_tensor_free(&t);
  return 0;
}
