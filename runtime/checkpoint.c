/*
 * State access and checkpoints.
 *
 * A checkpoint is the context's whole state region behind a header:
 *
 *   offset  size  field
 *        0     8  magic "ONNXCCKP"
 *        8     4  format version (u32)
 *       12     4  header bytes (u32, 64)
 *       16     8  file bytes
 *       24     8  state bytes
 *       32     8  state layout hash (names, types, offsets of the plan's state)
 *       40     8  state hash (oc_hash64 of the state bytes)
 *       48     8  header hash (oc_hash64 of bytes [0, 48))
 *       56     8  reserved, zero
 *       64     -  the state bytes
 *
 * Loading checks everything into a scratch buffer first, so a bad file
 * leaves the context untouched.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oc_file.h"
#include "plan_format.h"
#include "plan_internal.h"

#define CKPT_MAGIC "ONNXCCKP"
#define CKPT_VERSION 1
#define CKPT_HEADER 64


/* --- state tensors --------------------------------------------------------------- */

static int state_id(const oc_plan_t *plan, int index) {
  int k = 0;
  for (int id = 0; id < plan->n_tensors; id++)
    if (plan->tensors[id].region == OCPLAN__REGION__REGION_STATE && k++ == index) return id;
  return -1;
}

int oc_plan_state_count(const oc_plan_t *plan) {
  int n = 0;
  for (int id = 0; id < plan->n_tensors; id++) n += plan->tensors[id].region == OCPLAN__REGION__REGION_STATE;
  return n;
}

oc_status_t oc_plan_state_info(const oc_plan_t *plan, int index, oc_tensor_info_t *out_info) {
  int id = state_id(plan, index);
  if (id < 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "no state tensor %d", index);
  const oc_plan_tensor_t *t = &plan->tensors[id];
  out_info->name = t->name;
  out_info->dtype = (oc_dtype_t)t->dtype;
  out_info->rank = t->rank;
  out_info->dims = t->dims;
  out_info->bytes = t->bytes;
  out_info->elements = t->bytes / oc_dtype_size(t->dtype);
  return OC_OK;
}

int oc_plan_state_index(const oc_plan_t *plan, const char *name) {
  int k = 0;
  for (int id = 0; id < plan->n_tensors; id++) {
    if (plan->tensors[id].region != OCPLAN__REGION__REGION_STATE) continue;
    if (strcmp(plan->tensors[id].name, name) == 0) return k;
    k++;
  }
  return -1;
}

oc_status_t oc_context_state(oc_context_t *ctx, int index, void **out_data, size_t *out_bytes) {
  int id = state_id(ctx->plan, index);
  if (id < 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "no state tensor %d", index);
  *out_data = ctx->state + ctx->plan->tensors[id].offset;
  if (out_bytes) *out_bytes = (size_t)ctx->plan->tensors[id].bytes;
  return OC_OK;
}

static oc_status_t named_state(const oc_context_t *ctx, const char *name, int dtype, void **out) {
  int index = oc_plan_state_index(ctx->plan, name);
  if (index < 0)
    return oc_make_status(OC_STATUS_NOT_FOUND, "the plan has no state '%s' (compile with --train)",
                          name);
  int id = state_id(ctx->plan, index);
  if (ctx->plan->tensors[id].dtype != dtype || ctx->plan->tensors[id].bytes != oc_dtype_size(dtype))
    return oc_make_status(OC_STATUS_CORRUPT, "state '%s' is not a %s scalar", name,
                          oc_dtype_name(dtype));
  *out = ctx->state + ctx->plan->tensors[id].offset;
  return OC_OK;
}

oc_status_t oc_context_set_learning_rate(oc_context_t *ctx, float lr) {
  if (!(lr >= 0) || lr == (float)INFINITY)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "learning rate %g is not a finite value >= 0",
                          (double)lr);
  void *p;
  OC_RETURN_IF_ERROR(named_state(ctx, "opt:base_lr", OC_DTYPE_FLOAT32, &p));
  memcpy(p, &lr, sizeof lr);
  return OC_OK;
}

oc_status_t oc_context_step_count(const oc_context_t *ctx, int64_t *out_steps) {
  void *p;
  OC_RETURN_IF_ERROR(named_state(ctx, "opt:step", OC_DTYPE_INT64, &p));
  memcpy(out_steps, p, sizeof *out_steps);
  return OC_OK;
}

/* --- checkpoints ------------------------------------------------------------------- */

uint64_t oc_plan_state_layout_hash(const oc_plan_t *plan) {
  uint64_t h = 0x636b7074ULL; /* "ckpt" */
  for (int id = 0; id < plan->n_tensors; id++) {
    const oc_plan_tensor_t *t = &plan->tensors[id];
    if (t->region != OCPLAN__REGION__REGION_STATE) continue;
    int64_t rec[3 + OC_MAX_RANK] = {t->dtype, t->rank, (int64_t)t->offset};
    for (int d = 0; d < t->rank; d++) rec[3 + d] = t->dims[d];
    h = oc_hash64(t->name, strlen(t->name), h);
    h = oc_hash64(rec, sizeof(int64_t) * (size_t)(3 + t->rank), h);
  }
  return h;
}

oc_status_t oc_context_save_checkpoint(const oc_context_t *ctx, const char *path) {
  uint64_t bytes = ctx->plan->state_bytes;
  uint8_t *buf = malloc((size_t)(CKPT_HEADER + bytes));
  if (!buf) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory saving a checkpoint");
  memset(buf, 0, CKPT_HEADER);
  memcpy(buf, CKPT_MAGIC, 8);
  oc_store_le32(buf + 8, CKPT_VERSION);
  buf[12] = CKPT_HEADER;
  oc_store_le64(buf + 16, CKPT_HEADER + bytes);
  oc_store_le64(buf + 24, bytes);
  oc_store_le64(buf + 32, oc_plan_state_layout_hash(ctx->plan));
  memcpy(buf + CKPT_HEADER, ctx->state, (size_t)bytes);
  oc_store_le64(buf + 40, oc_hash64(buf + CKPT_HEADER, (size_t)bytes, OC_PLAN_HASH_SEED_CKPT));
  oc_store_le64(buf + 48, oc_hash64(buf, 48, OC_PLAN_HASH_SEED_CKPT));
  oc_status_t s = oc_file_write_atomic(path, buf, (size_t)(CKPT_HEADER + bytes));
  free(buf);
  return s;
}

oc_status_t oc_context_load_checkpoint(oc_context_t *ctx, const char *path) {
  void *data = NULL;
  size_t n = 0;
  uint64_t want = ctx->plan->state_bytes;
  /* A checkpoint of this plan is exactly CKPT_HEADER + state bytes: a longer
   * file is rejected from its size alone, before it is read. */
  oc_status_t s = oc_file_read_at_most(path, CKPT_HEADER + want, &data, &n);
  if (s) {
    if (oc_status_code(s) != OC_STATUS_RESOURCE_LIMIT) return s;
    oc_status_free(s);
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: the file is longer than a checkpoint "
                          "of this plan (%llu bytes: %d header + %llu state)", path,
                          (unsigned long long)(CKPT_HEADER + want), CKPT_HEADER,
                          (unsigned long long)want);
  }
  const uint8_t *b = data;
  if (n < CKPT_HEADER || memcmp(b, CKPT_MAGIC, 8) != 0) {
    s = oc_make_status(OC_STATUS_CORRUPT, "%s: byte 0: not an onnxc checkpoint", path);
  } else if (oc_load_le64(b + 48) != oc_hash64(b, 48, OC_PLAN_HASH_SEED_CKPT)) {
    s = oc_make_status(OC_STATUS_CORRUPT, "%s: byte 48: header checksum mismatch", path);
  } else if (oc_load_le32(b + 8) != CKPT_VERSION) {
    s = oc_make_status(OC_STATUS_VERSION, "%s: checkpoint format version %u; this build reads "
                       "version %d", path, (unsigned)oc_load_le32(b + 8),
                       CKPT_VERSION);
  } else if (oc_load_le64(b + 16) != n) {
    s = oc_make_status(OC_STATUS_CORRUPT, "%s: byte 16: header says %llu bytes, the file has %zu "
                       "(truncated?)", path, (unsigned long long)oc_load_le64(b + 16), n);
  } else if (oc_load_le64(b + 24) != want || n != CKPT_HEADER + want) {
    s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: the checkpoint holds %llu bytes of state; "
                       "this plan has %llu", path, (unsigned long long)oc_load_le64(b + 24),
                       (unsigned long long)want);
  } else if (oc_load_le64(b + 32) != oc_plan_state_layout_hash(ctx->plan)) {
    s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: the checkpoint was written by a plan with "
                       "a different state layout", path);
  } else if (oc_load_le64(b + 40) != oc_hash64(b + CKPT_HEADER, (size_t)want, OC_PLAN_HASH_SEED_CKPT)) {
    s = oc_make_status(OC_STATUS_CORRUPT, "%s: state bytes at [64, %llu): checksum mismatch",
                       path, (unsigned long long)(CKPT_HEADER + want));
  } else {
    memcpy(ctx->state, b + CKPT_HEADER, (size_t)want);
  }
  free(data);
  return s;
}
