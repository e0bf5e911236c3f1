/*
 * onnxrun --embed-dir: embeddings of a folder of examples, sharded across the
 * ranks of a job (docs/distributed.md, "Embeddings at scale"). Used by
 * onnxrun only; like the library, it never prints or exits: errors come back
 * as a status, with what onnxrun needs to report them once for the job.
 *
 * The examples are the .npy and .pb tensor files of the folder in the byte
 * order of their names (hidden files, other names and subfolders ignored).
 * A file holds one example (the entry's input shape without its batch axis)
 * or several (that shape with any axis 0 in front). Examples are grouped into
 * batches of the plan's batch B in that order (the last batch padded with
 * zeros), rank r of N runs batches [nb*r/N, nb*(r+1)/N) of the nb batches,
 * and rank 0 gathers the outputs (oc_mpi_gatherv) and writes them, without
 * the padding rows, in the order of the examples: one .npy of shape
 * [examples, output dims without axis 0], and optionally a manifest
 * (tab-separated: row, file, index of the example in its file). Both are
 * written atomically (oc_atomic_file_t): on any error neither appears.
 */
#ifndef ONNXC_EMBED_DIR_H
#define ONNXC_EMBED_DIR_H

#include <stdint.h>

#include "onnxc/onnxc.h"

typedef struct oc_embed_dir_options_s {
  const char *dir;             /* the examples */
  const char *embeddings_path; /* the .npy written by rank 0 */
  const char *manifest_path;   /* NULL: no manifest */
  const char *output_name;     /* NULL: the entry's only output */
  int entry;                   /* the entry point that embeds (one input) */
  int64_t gather_every;        /* batches per rank between gathers; 0: outputs of about 8 MiB */
} oc_embed_dir_options_t;

typedef struct oc_embed_dir_report_s {
  /* On success (the same on every rank): */
  int64_t examples, files, batches, batch;
  int64_t my_batches; /* this rank's */
  double seconds;     /* from listing the folder to the files in place */
  char out_type[128]; /* "float32[examples,dims...]" */
  /* On failure: whether this rank should print its status (its own error,
   * not reported by a lower rank with the same message), and whether every
   * rank knows that the job failed (then no rank needs to abort it). */
  int print, known;
} oc_embed_dir_report_t;

/* Embeds the examples of o->dir with |entry| of |plan| on |ctx| (whose
 * state is set; no communicator on it: each rank runs its own batches), as
 * rank job->rank of job->size. Every rank must call it with the same
 * options. */
oc_status_t oc_embed_dir(oc_context_t *ctx, const oc_plan_t *plan, const oc_communicator_t *job,
                         const oc_embed_dir_options_t *o, oc_embed_dir_report_t *report);

#endif
