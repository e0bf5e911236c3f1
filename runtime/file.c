/* Whole-file reading and atomic writing, shared by the runtime (checkpoints),
 * the compiler (plans) and the tensor files. */
#define _GNU_SOURCE /* O_TMPFILE */
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


/* ------------------------------------------------------------------------ */
/* Files written in pieces                                                  */
/* ------------------------------------------------------------------------ */

oc_status_t oc_atomic_file_open(oc_atomic_file_t *f, const char *path) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  if (!path || !*path) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "empty output path");
  size_t plen = strlen(path);
  f->path = oc_strdup(path);
  f->tmp = malloc(plen + 32);
  char *dir = oc_dir_of(path);
  if (!f->path || !f->tmp || !dir) {
    free(dir);
    oc_atomic_file_discard(f);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  snprintf(f->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
#ifdef O_TMPFILE
  /* Naming it later goes through /proc/self/fd. */
  if (access("/proc/self/fd", X_OK) == 0) f->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#endif
  free(dir);
  if (f->fd < 0) {
    /* No O_TMPFILE (an old kernel, a file system without it): a named temp. */
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    f->fd = open(f->tmp, flags, 0666);
    if (f->fd < 0 && errno == EEXIST && unlink(f->tmp) == 0) f->fd = open(f->tmp, flags, 0666);
    if (f->fd < 0) {
      oc_status_t s = oc_make_status(OC_STATUS_IO, "%s: cannot create temp file '%s': %s", path,
                                     f->tmp, strerror(errno));
      oc_atomic_file_discard(f);
      return s;
    }
    f->named = 1;
  }
  return OC_OK;
}

oc_status_t oc_atomic_file_pwrite(oc_atomic_file_t *f, const void *data, size_t bytes,
                                  uint64_t offset) {
  const uint8_t *p = data;
  while (bytes > 0) {
    size_t chunk = bytes > ((size_t)1 << 30) ? ((size_t)1 << 30) : bytes;
    ssize_t n = pwrite(f->fd, p, chunk, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return oc_make_status(OC_STATUS_IO, "%s: write failed: %s", f->path,
                            n < 0 ? strerror(errno) : "no progress");
    }
    p += n;
    bytes -= (size_t)n;
    offset += (uint64_t)n;
  }
  return OC_OK;
}

oc_status_t oc_atomic_file_finish(oc_atomic_file_t *f) {
  const char *what = NULL;
  int err = 0;
  if (fsync(f->fd) != 0) {
    what = "fsync";
    err = errno;
  }
  if (!what && !f->named) {
    /* Gives the unnamed file its temp name (linkat through /proc, as
     * open(2) describes for O_TMPFILE). */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
    int rc = linkat(AT_FDCWD, proc, AT_FDCWD, f->tmp, AT_SYMLINK_FOLLOW);
    /* A stale temp file from an earlier process with the same pid. */
    if (rc != 0 && errno == EEXIST && unlink(f->tmp) == 0)
      rc = linkat(AT_FDCWD, proc, AT_FDCWD, f->tmp, AT_SYMLINK_FOLLOW);
    if (rc != 0) {
      what = "link";
      err = errno;
    } else {
      f->named = 1;
    }
  }
  if (close(f->fd) != 0 && !what) {
    what = "close";
    err = errno;
  }
  f->fd = -1;
  if (what) {
    return oc_make_status(OC_STATUS_IO, "%s: %s of temp file '%s' failed: %s", f->path, what,
                          f->tmp, strerror(err));
  }
  return OC_OK;
}

oc_status_t oc_atomic_file_commit(oc_atomic_file_t *f) {
  oc_status_t s = OC_OK;
  if (rename(f->tmp, f->path) != 0) {
    s = oc_make_status(OC_STATUS_IO, "%s: rename of temp file '%s' failed: %s", f->path, f->tmp,
                       strerror(errno));
  } else {
    f->named = 0;
    fsync_parent_dir(f->path);
  }
  oc_atomic_file_discard(f);
  return s;
}

void oc_atomic_file_discard(oc_atomic_file_t *f) {
  if (!f) return;
  if (f->path && f->fd >= 0) close(f->fd);
  if (f->named && f->tmp) unlink(f->tmp);
  free(f->path);
  free(f->tmp);
  memset(f, 0, sizeof *f);
  f->fd = -1;
}
