/* Builds tensor files for the shell tests from other tensor files (.npy or
 * TensorProto .pb, by the output's extension):
 *
 *   tensor_tool rows SRC START COUNT OUT     rows [START, START+COUNT) of SRC
 *   tensor_tool example SRC ROW OUT          row ROW of SRC without the batch axis
 *   tensor_tool cat OUT PART...              PART = FILE | FILE:START:COUNT | zeros:N
 *                                            (N zero rows shaped as the other parts)
 *   tensor_tool cast SRC OUT                 SRC's float32 values as float64
 *   tensor_tool shape FILE                   prints dtype[d0,d1,...]
 *
 * Exit status 0, or 1 with a message. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor_file.h"

static int die(const char *msg, const char *arg) {
  fprintf(stderr, "tensor_tool: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  return 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

static int write_file(const char *path, const oc_host_tensor_t *t) {
  oc_status_t s = ends_with(path, ".npy") ? oc_tensor_file_write_npy(path, t)
                                          : oc_tensor_file_write_pb(path, t);
  if (s) {
    fprintf(stderr, "tensor_tool: %s\n", oc_status_message(s));
    oc_status_free(s);
    return 1;
  }
  return 0;
}

static int read_file(const char *path, oc_host_tensor_t *t) {
  oc_status_t s = oc_tensor_file_read(path, t);
  if (s) {
    fprintf(stderr, "tensor_tool: %s\n", oc_status_message(s));
    oc_status_free(s);
    return 1;
  }
  if (t->rank < 1) {
    oc_host_tensor_free(t);
    return die("no batch axis", path);
  }
  return 0;
}

static size_t row_bytes(const oc_host_tensor_t *t) {
  return t->dims[0] ? t->bytes / (size_t)t->dims[0] : 0;
}

/* rows [start, start+count) of |t| as a new tensor in |out| (data borrowed). */
static int slice(const oc_host_tensor_t *t, long start, long count, oc_host_tensor_t *out) {
  if (start < 0 || count < 0 || start + count > t->dims[0]) return die("rows out of range", NULL);
  *out = *t;
  out->name = NULL;
  out->dims[0] = count;
  out->data = (uint8_t *)t->data + (size_t)start * row_bytes(t);
  out->bytes = (size_t)count * row_bytes(t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return die("usage: see tests/tensor_tool.c", NULL);
  const char *cmd = argv[1];
  oc_host_tensor_t t, v;
  if (!strcmp(cmd, "rows") && argc == 6) {
    if (read_file(argv[2], &t)) return 1;
    int rc = slice(&t, atol(argv[3]), atol(argv[4]), &v) || write_file(argv[5], &v);
    oc_host_tensor_free(&t);
    return rc;
  }
  if (!strcmp(cmd, "example") && argc == 5) {
    if (read_file(argv[2], &t)) return 1;
    int rc = slice(&t, atol(argv[3]), 1, &v);
    if (!rc) {
      v.rank--;
      memmove(v.dims, v.dims + 1, sizeof(int64_t) * (size_t)v.rank);
      v.dims[v.rank] = 0;
      rc = write_file(argv[4], &v);
    }
    oc_host_tensor_free(&t);
    return rc;
  }
  if (!strcmp(cmd, "shape") && argc == 3) {
    oc_status_t s = oc_tensor_file_read(argv[2], &t);
    if (s) return die(oc_status_message(s), NULL);
    printf("%s[", oc_dtype_name(t.dtype));
    for (int i = 0; i < t.rank; i++) printf(i ? ",%" PRId64 : "%" PRId64, t.dims[i]);
    printf("]\n");
    oc_host_tensor_free(&t);
    return 0;
  }
  if (!strcmp(cmd, "cast") && argc == 4) {
    if (read_file(argv[2], &t)) return 1;
    if (t.dtype != 1) return die("not float32", argv[2]);
    size_t n = t.bytes / 4;
    double *d = malloc(n * 8 + 8);
    for (size_t i = 0; i < n; i++) d[i] = ((const float *)t.data)[i];
    v = t;
    v.name = NULL;
    v.dtype = 11;
    v.data = d;
    v.bytes = n * 8;
    int rc = write_file(argv[3], &v);
    free(d);
    oc_host_tensor_free(&t);
    return rc;
  }
  if (!strcmp(cmd, "cat") && argc >= 4) {
    /* First pass: the row shape and the total rows. */
    oc_host_tensor_t *parts = calloc((size_t)argc, sizeof *parts);
    long *start = calloc((size_t)argc, sizeof(long)), *count = calloc((size_t)argc, sizeof(long));
    int have_shape = 0, rc = 0;
    oc_host_tensor_t shape = {0};
    long total = 0;
    for (int i = 3; i < argc && !rc; i++) {
      if (!strncmp(argv[i], "zeros:", 6)) {
        count[i] = atol(argv[i] + 6);
        start[i] = -1;
      } else {
        char path[4096];
        snprintf(path, sizeof path, "%s", argv[i]);
        char *c = strchr(path, ':');
        if (c) *c = 0;
        rc = read_file(path, &parts[i]);
        if (rc) break;
        start[i] = 0;
        count[i] = (long)parts[i].dims[0];
        if (c) {
          start[i] = atol(c + 1);
          char *c2 = strchr(c + 1, ':');
          if (!c2) rc = die("FILE:START:COUNT", argv[i]);
          else count[i] = atol(c2 + 1);
        }
        if (!have_shape) {
          shape = parts[i];
          have_shape = 1;
        }
      }
      total += count[i];
    }
    if (!rc && !have_shape) rc = die("cat needs a file", NULL);
    if (!rc) {
      size_t rb = row_bytes(&shape);
      uint8_t *data = calloc((size_t)total * rb + 1, 1);
      size_t at = 0;
      for (int i = 3; i < argc && !rc; i++) {
        if (start[i] >= 0) {
          if (row_bytes(&parts[i]) != rb || parts[i].dtype != shape.dtype)
            rc = die("parts of different shapes", argv[i]);
          else if (slice(&parts[i], start[i], count[i], &v))
            rc = 1;
          else
            memcpy(data + at, v.data, v.bytes);
        }
        at += (size_t)count[i] * rb;
      }
      v = shape;
      v.name = NULL;
      v.dims[0] = total;
      v.data = data;
      v.bytes = (size_t)total * rb;
      if (!rc) rc = write_file(argv[2], &v);
      free(data);
    }
    for (int i = 0; i < argc; i++) oc_host_tensor_free(&parts[i]);
    free(parts);
    free(start);
    free(count);
    return rc;
  }
  return die("usage: see tests/tensor_tool.c", NULL);
}
