/*
 * fuzz_tensor: the tensor file readers.
 *
 * Every input goes to both oc_tensor_read_pb_memory (a serialized ONNX
 * TensorProto, as in the node tests' .pb files) and oc_tensor_read_npy_memory
 * (a NumPy .npy image). Either may fail with a status; when one succeeds the
 * target checks what the header promises: a name that is a string, a rank
 * within OC_MAX_RANK, dims >= 0 whose product times the element size is the
 * byte count, and a data buffer holding that many bytes (read in full, so
 * ASan sees a short one).
 */
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
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  oc_host_tensor_t t;
  if (fuzz_ok(oc_tensor_read_pb_memory(data, size, &t))) check(&t, "pb");
  oc_host_tensor_free(&t);
  if (fuzz_ok(oc_tensor_read_npy_memory(data, size, &t))) check(&t, "npy");
  oc_host_tensor_free(&t);
  return 0;
}
