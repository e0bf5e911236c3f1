/*
 * The binary layout of a plan file (the metadata schema is schemas/plan.proto).
 *
 *   offset  size  field
 *        0     8  magic "ONNXCPLN"
 *        8     4  format version (u32)
 *       12     4  header bytes (u32, = OC_PLAN_HEADER_BYTES)
 *       16     8  file bytes
 *       24     8  metadata offset
 *       32     8  metadata bytes
 *       40     8  constant section offset (64-byte aligned)
 *       48     8  constant section bytes
 *       56     8  metadata hash (oc_hash64 of the metadata bytes)
 *       64     8  constant section hash (oc_hash64 of the section)
 *       72     8  header hash (oc_hash64 of bytes [0, 72))
 *       80    48  reserved, zero
 *
 * All integers little-endian. The header hash makes a flipped byte anywhere
 * in the header an error that names the header; the two section hashes name
 * the section. Weights can be checked lazily (oc_plan_options_t.verify_weights)
 * because the constant section is the bulk of the file.
 */
#ifndef ONNXC_PLAN_FORMAT_H
#define ONNXC_PLAN_FORMAT_H

#include <stdint.h>

#define OC_PLAN_MAGIC "ONNXCPLN"
#define OC_PLAN_HEADER_BYTES 128
/* The format version this build writes, and the oldest one it reads. */
#define OC_PLAN_FORMAT_VERSION 1
#define OC_PLAN_FORMAT_MIN_VERSION 1

enum {
  OC_PLAN_OFF_MAGIC = 0,
  OC_PLAN_OFF_VERSION = 8,
  OC_PLAN_OFF_HEADER_BYTES = 12,
  OC_PLAN_OFF_FILE_BYTES = 16,
  OC_PLAN_OFF_META_OFFSET = 24,
  OC_PLAN_OFF_META_BYTES = 32,
  OC_PLAN_OFF_DATA_OFFSET = 40,
  OC_PLAN_OFF_DATA_BYTES = 48,
  OC_PLAN_OFF_META_HASH = 56,
  OC_PLAN_OFF_DATA_HASH = 64,
  OC_PLAN_OFF_HEADER_HASH = 72,
  OC_PLAN_OFF_RESERVED = 80,
};

#define OC_PLAN_HASH_SEED 0x6f6e6e7863ULL /* "onnxc" */
#define OC_PLAN_HASH_SEED_CKPT 0x636b707463ULL

/* Limits on what a plan may declare; checked at load. */
#define OC_PLAN_MAX_TENSORS (1 << 22)
#define OC_PLAN_MAX_INSTRUCTIONS (1 << 22)
#define OC_PLAN_MAX_ENTRIES 64
#define OC_PLAN_MAX_ARENA_BYTES ((uint64_t)1 << 40)

#endif
