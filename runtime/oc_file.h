/* Files (runtime/file.c): whole-file reads and atomic writes. Internal. */
#ifndef ONNXC_OC_FILE_H
#define ONNXC_OC_FILE_H

#include "oc_base.h"

/* Largest file the readers accept: 2^40 bytes. */
#define OC_FILE_MAX_BYTES ((uint64_t)1 << 40)

/* Reads a whole regular file into a malloc'd buffer (non-NULL even when
 * empty); *out must be free()d. Files over OC_FILE_MAX_BYTES are
 * RESOURCE_LIMIT. */
oc_status_t oc_file_read_all(const char *path, void **out, size_t *out_bytes);

/* oc_file_read_all for files that cannot be longer than |max_bytes|: the size
 * is checked with fstat before anything is allocated or read, so a huge file
 * costs nothing to reject (RESOURCE_LIMIT, naming both sizes). */
oc_status_t oc_file_read_at_most(const char *path, uint64_t max_bytes, void **out,
                                 size_t *out_bytes);

/* Writes |bytes| bytes to |path| atomically: a temp file "<path>.tmp.<pid>"
 * in the same folder, fsync, rename. On failure the temp file is removed and
 * an existing file at |path| is left as it was. */
oc_status_t oc_file_write_atomic(const char *path, const void *data, size_t bytes);

/* A file written in pieces that appears at its path only when complete:
 * open, pwrite anywhere, finish, commit (or discard at any point). Until it
 * is finished the file has no name (Linux's O_TMPFILE, in |path|'s folder),
 * so a process killed while writing leaves nothing behind; where O_TMPFILE
 * is missing it is "<path>.tmp.<pid>" from the start. finish fsyncs it and
 * names it "<path>.tmp.<pid>"; commit renames that to |path| (replacing what
 * was there). Several files can be finished first and committed one after
 * the other, so that a failure on the way leaves none of them. */
typedef struct oc_atomic_file_s {
  int fd;     /* -1 once closed */
  char *path; /* the destination */
  char *tmp;  /* "<path>.tmp.<pid>" */
  int named;  /* whether |tmp| exists on disk */
} oc_atomic_file_t;

oc_status_t oc_atomic_file_open(oc_atomic_file_t *f, const char *path);
oc_status_t oc_atomic_file_pwrite(oc_atomic_file_t *f, const void *data, size_t bytes,
                                  uint64_t offset);
oc_status_t oc_atomic_file_finish(oc_atomic_file_t *f);
/* Renames the finished file to its path and frees |f| (also on failure). */
oc_status_t oc_atomic_file_commit(oc_atomic_file_t *f);
/* Closes and removes the temp file and frees |f|; nothing to do on a zeroed
 * or committed |f|. */
void oc_atomic_file_discard(oc_atomic_file_t *f);

/* "dir/file" -> "dir"; "file" -> "."; "/file" -> "/". Caller frees. */
char *oc_dir_of(const char *path);

/* Reads exactly |bytes| bytes at |offset| of |fd|. Returns 0, or an errno
 * value (EIO for an unexpected end of file). */
int oc_pread_full(int fd, void *dst, size_t bytes, uint64_t offset);

#endif
