/* Whole-file reading and atomic writing, shared by the runtime (checkpoints),
 * the compiler (plans) and the tensor files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oc_file.h"

/* "dir/file" -> "dir"; "file" -> "."; "/file" -> "/". Caller frees. */
char *oc_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return oc_strdup(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, path, n);
  d[n] = '\0';
  return d;
}

/* Reads exactly |bytes| bytes at |offset| of |fd|. Returns 0, or an errno
 * value (EIO for an unexpected end of file). */
int oc_pread_full(int fd, void *dst, size_t bytes, uint64_t offset) {
  uint8_t *p = dst;
  while (bytes > 0) {
    size_t chunk = bytes > ((size_t)1 << 30) ? ((size_t)1 << 30) : bytes;
    ssize_t n = pread(fd, p, chunk, (off_t)offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    p += n;
    bytes -= (size_t)n;
    offset += (uint64_t)n;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Whole files                                                              */
/* ------------------------------------------------------------------------ */

oc_status_t oc_file_read_all(const char *path, void **out, size_t *out_bytes) {
  return oc_file_read_at_most(path, OC_FILE_MAX_BYTES, out, out_bytes);
}

oc_status_t oc_file_read_at_most(const char *path, uint64_t max_bytes, void **out,
                                 size_t *out_bytes) {
  if (!out || !out_bytes) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_file_read_all: NULL output argument");
  }
  *out = NULL;
  *out_bytes = 0;
  if (!path) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_file_read_all: NULL path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return oc_make_status(OC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return oc_make_status(OC_STATUS_IO, "%s: cannot stat: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return oc_make_status(OC_STATUS_IO, "%s: not a regular file", path);
  }
  if (max_bytes > OC_FILE_MAX_BYTES) max_bytes = OC_FILE_MAX_BYTES;
  if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
    close(fd);
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "%s: file is %lld bytes, over the limit of %llu bytes", path,
                          (long long)st.st_size, (unsigned long long)max_bytes);
  }
  size_t size = (size_t)st.st_size;
  void *buf = malloc(size ? size : 1);
  if (!buf) {
    close(fd);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, size);
  }
  int err = oc_pread_full(fd, buf, size, 0);
  close(fd);
  if (err) {
    free(buf);
    return oc_make_status(OC_STATUS_IO, "%s: read failed: %s", path,
                          err == EIO ? "unexpected end of file (file changed while reading?)"
                                     : strerror(err));
  }
  *out = buf;
  *out_bytes = size;
  return OC_OK;
}

/* Best effort: makes a rename in |path|'s directory durable. */
static void fsync_parent_dir(const char *path) {
  char *dir = oc_dir_of(path);
  if (!dir) return;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  free(dir);
}

oc_status_t oc_file_write_atomic(const char *path, const void *data, size_t bytes) {
  if (!path || !*path) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_file_write_atomic: empty path");
  }
  if (!data && bytes) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: NULL data for %zu bytes", path, bytes);
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  int fd = open(tmp, flags, 0666);
  if (fd < 0 && errno == EEXIST) {
    /* A stale temp file from an earlier process with the same pid. */
    if (unlink(tmp) == 0) fd = open(tmp, flags, 0666);
  }
  if (fd < 0) {
    oc_status_t s = oc_make_status(OC_STATUS_IO, "%s: cannot create temp file '%s': %s", path,
                                   tmp, strerror(errno));
    free(tmp);
    return s;
  }

  const char *what = NULL;
  int err = 0;
  const uint8_t *p = data;
  size_t left = bytes;
  while (left > 0) {
    size_t chunk = left > ((size_t)1 << 30) ? ((size_t)1 << 30) : left;
    ssize_t n = write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      what = "write";
      err = errno;
      break;
    }
    if (n == 0) {
      what = "write";
      err = EIO;
      break;
    }
    p += n;
    left -= (size_t)n;
  }
  if (!what && fsync(fd) != 0) {
    what = "fsync";
    err = errno;
  }
  if (close(fd) != 0 && !what) {
    what = "close";
    err = errno;
  }
  if (!what && rename(tmp, path) != 0) {
    what = "rename";
    err = errno;
  }
  if (what) {
    oc_status_t s = oc_make_status(OC_STATUS_IO, "%s: %s of temp file '%s' failed: %s", path, what,
                                   tmp, strerror(err));
    unlink(tmp);
    free(tmp);
    return s;
  }
  free(tmp);
  fsync_parent_dir(path);
  return OC_OK;
}

