/**
 * @file onnxc.h
 * @brief onnxc runtime: public C API.
 *
 * A plan (written by the `onnxc` compiler) holds one or more entry points,
 * such as `embed`. The runtime opens a plan, validates every id, offset and
 * size in it before anything runs, and executes entry points in contexts.
 *
 * - oc_plan_t: immutable once opened; share one between any number of
 *   threads (thread-safe for all const functions).
 * - oc_context_t: the mutable working memory for running a plan's entry
 *   points; one per thread (thread-compatible: never use one context from
 *   two threads at once).
 *
 * Errors are values: every fallible function returns an oc_status_t, which is
 * NULL (OC_OK) on success. A non-NULL status owns a code and a message and
 * must be released with oc_status_free(). Library code never prints or exits.
 *
 * Names: `oc_<type>_<verb>`; outputs are `out_*`; options structs are filled
 * with defaults by `oc_*_options_init()` so new fields keep working.
 *
 * Versions and compatibility: see onnxc/version.h (included here),
 * oc_version(), oc_plan_format_versions() and docs/compatibility.md.
 */
#ifndef ONNXC_ONNXC_H
#define ONNXC_ONNXC_H

#include <stddef.h>
#include <stdint.h>

#include "onnxc/version.h"

/**
 * @def OC_API
 * Marks a function of the public API. Building the onnxc library (which
 * defines OC_BUILDING_LIBRARY and compiles with -fvisibility=hidden) gives
 * these functions default visibility, so libonnxc.so exports them and nothing
 * else; for callers it expands to nothing.
 */
#ifndef OC_API
#if defined(OC_BUILDING_LIBRARY) && (defined(__GNUC__) || defined(__clang__))
#define OC_API __attribute__((visibility("default")))
#else
#define OC_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Status                                                                   */
/* ------------------------------------------------------------------------ */

/** Error codes carried by an oc_status_t. The numbers are stable. */
typedef enum oc_status_code_e {
  OC_STATUS_OK = 0,               /**< success (the code of OC_OK) */
  OC_STATUS_INVALID_ARGUMENT = 1, /**< caller passed something wrong */
  OC_STATUS_NOT_FOUND = 2,        /**< a named thing does not exist */
  OC_STATUS_IO = 3,               /**< open/read/write/rename failed */
  OC_STATUS_CORRUPT = 4,          /**< a file failed validation */
  OC_STATUS_VERSION = 5,          /**< a file of a format version we do not read */
  OC_STATUS_UNSUPPORTED = 6,      /**< valid input we do not handle (op, dtype) */
  OC_STATUS_OUT_OF_MEMORY = 7,    /**< an allocation failed */
  OC_STATUS_RESOURCE_LIMIT = 8,   /**< input exceeds a configured limit */
  OC_STATUS_NUMERIC = 9,          /**< NaN/Inf or an out-of-range index at run time */
  OC_STATUS_INTERNAL = 10,        /**< a bug in onnxc */
} oc_status_code_t;

/** The result of a fallible function: OC_OK (NULL) on success, else an owned
 * error with a code and a message, released with oc_status_free(). */
typedef struct oc_status_s *oc_status_t;
/** Success: the NULL status. */
#define OC_OK ((oc_status_t)0)

/** The code of |status| (OC_STATUS_OK for OC_OK). */
OC_API oc_status_code_t oc_status_code(oc_status_t status);
/** The message of |status|; "ok" for OC_OK. Valid until oc_status_free. */
OC_API const char *oc_status_message(oc_status_t status);
/** The name of a code, e.g. "CORRUPT". */
OC_API const char *oc_status_code_name(oc_status_code_t code);
/** Releases |status|; OC_OK is accepted and ignored. */
OC_API void oc_status_free(oc_status_t status);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                  */
/* ------------------------------------------------------------------------ */

/** Element types. The numbers are ONNX's TensorProto.DataType values and are
 * stored in plans: never renumber. */
typedef enum oc_dtype_e {
  OC_DTYPE_UNDEFINED = 0, /**< no type */
  OC_DTYPE_FLOAT32 = 1,   /**< float */
  OC_DTYPE_UINT8 = 2,     /**< uint8_t */
  OC_DTYPE_INT8 = 3,      /**< int8_t */
  OC_DTYPE_INT32 = 6,     /**< int32_t */
  OC_DTYPE_INT64 = 7,     /**< int64_t */
  OC_DTYPE_BOOL = 9,      /**< one byte, 0 or 1 */
  OC_DTYPE_FLOAT64 = 11,  /**< stored and cast only (PyTorch exports double constants) */
} oc_dtype_t;

/** Bytes per element, or 0 for a dtype the runtime does not compute. */
OC_API size_t oc_dtype_size(int dtype);
/** "float32", "int64", ... ; for any ONNX number, names the ONNX type. */
OC_API const char *oc_dtype_name(int dtype);

/** The largest tensor rank a plan may use. */
#define OC_MAX_RANK 8

/** A description of one tensor of an entry point's signature. Pointers are
 * owned by the plan and valid until oc_plan_release. */
typedef struct oc_tensor_info_s {
  const char *name;     /**< the tensor's name (the ONNX value name) */
  oc_dtype_t dtype;     /**< element type */
  int rank;             /**< number of dimensions, 0 for a scalar */
  const int64_t *dims;  /**< |rank| entries */
  size_t elements;      /**< product of the dimensions */
  size_t bytes;         /**< elements * oc_dtype_size(dtype) */
} oc_tensor_info_t;

/* ------------------------------------------------------------------------ */
/* Memory                                                                   */
/* ------------------------------------------------------------------------ */

/** Allocator hook. |alloc| returns memory aligned to |alignment| (a power of
 * two, at least 64) or NULL; |free| releases what |alloc| returned. */
typedef struct oc_allocator_s {
  /** Passed as the first argument of |alloc| and |free|. */
  void *self;
  /** Returns |bytes| bytes aligned to |alignment|, or NULL. */
  void *(*alloc)(void *self, size_t bytes, size_t alignment);
  /** Releases |ptr|, a pointer |alloc| returned. */
  void (*free)(void *self, void *ptr);
} oc_allocator_t;

/** The allocator used when options leave it zeroed (aligned_alloc/free). */
OC_API oc_allocator_t oc_allocator_system(void);

/* ------------------------------------------------------------------------ */
/* Plans                                                                    */
/* ------------------------------------------------------------------------ */

/** An opened, validated plan. Immutable: share it between threads. */
typedef struct oc_plan_s oc_plan_t;

/** Options of oc_plan_open_file() and oc_plan_open_memory(); fill with
 * oc_plan_options_init() first. */
typedef struct oc_plan_options_s {
  /** Verify the checksum of the weights section on open (default 1). The
   * header and metadata checksums are always verified. */
  int verify_weights;
  /** Host allocator for the plan's own bookkeeping (default: system). */
  oc_allocator_t allocator;
  /** Refuse (OC_STATUS_RESOURCE_LIMIT) a plan with an entry point whose
   * estimated work per run (oc_plan_run_cost()) exceeds this many
   * operations. 0 (the default) sets no limit: a valid plan may need any
   * amount of work. Services that run plans from others should set one. */
  uint64_t max_run_cost;
} oc_plan_options_t;

/** Fills |options| with the defaults. */
OC_API void oc_plan_options_init(oc_plan_options_t *options);

/** Opens the plan file at |path| (mmapped read-only) and validates it fully.
 * On success |*out_plan| must be released with oc_plan_release. |options|
 * may be NULL for defaults. */
OC_API oc_status_t oc_plan_open_file(const char *path, const oc_plan_options_t *options,
                                     oc_plan_t **out_plan);

/** Like oc_plan_open_file, from memory. The plan copies |data|: the caller may
 * free it when this returns. */
OC_API oc_status_t oc_plan_open_memory(const void *data, size_t bytes,
                                       const oc_plan_options_t *options, oc_plan_t **out_plan);

/** Releases |plan|. All contexts made from it must be released first. */
OC_API void oc_plan_release(oc_plan_t *plan);

/** Plan format versions this build reads (inclusive range). */
OC_API void oc_plan_format_versions(uint32_t *out_min, uint32_t *out_max);
/** The format version of an opened plan. */
OC_API uint32_t oc_plan_format_version(const oc_plan_t *plan);

/** The number of entry points. Entry points are numbered 0..count-1. */
OC_API int oc_plan_entry_count(const oc_plan_t *plan);
/** The name of entry point |entry|, or NULL when out of range. */
OC_API const char *oc_plan_entry_name(const oc_plan_t *plan, int entry);
/** Finds an entry point by name ("embed"); OC_STATUS_NOT_FOUND if absent. */
OC_API oc_status_t oc_plan_find_entry(const oc_plan_t *plan, const char *name, int *out_entry);

/** The number of inputs of |entry| (0 when out of range). */
OC_API int oc_plan_input_count(const oc_plan_t *plan, int entry);
/** The number of outputs of |entry| (0 when out of range). */
OC_API int oc_plan_output_count(const oc_plan_t *plan, int entry);
/** Signature of input |index| of |entry|; OC_STATUS_INVALID_ARGUMENT
 * when out of range. */
OC_API oc_status_t oc_plan_input_info(const oc_plan_t *plan, int entry, int index,
                                      oc_tensor_info_t *out_info);
/** Signature of output |index| of |entry|; OC_STATUS_INVALID_ARGUMENT
 * when out of range. */
OC_API oc_status_t oc_plan_output_info(const oc_plan_t *plan, int entry, int index,
                                       oc_tensor_info_t *out_info);
/** Index of the input called |name| of |entry|, or -1. */
OC_API int oc_plan_input_index(const oc_plan_t *plan, int entry, const char *name);
/** Index of the output called |name| of |entry|, or -1. */
OC_API int oc_plan_output_index(const oc_plan_t *plan, int entry, const char *name);

/** Bytes of working memory a context needs for |entry| (its arena). */
OC_API size_t oc_plan_arena_bytes(const oc_plan_t *plan, int entry);

/** The estimated work of one run of |entry| (0 when out of range), in
 * operations: roughly one per multiply-add or element read or written,
 * summed over the instructions from their shapes (a bound up to a small
 * factor, not a timing). What oc_plan_options_t.max_run_cost limits. */
OC_API uint64_t oc_plan_run_cost(const oc_plan_t *plan, int entry);

/** The bytes oc_context_create() allocates for |plan|: the largest arena,
 * the state and the executor's bookkeeping (not the worker threads). What
 * oc_context_options_t.max_memory_bytes limits. */
OC_API uint64_t oc_plan_context_bytes(const oc_plan_t *plan);

/** Introspection (for tools): the number of instructions of |entry| (0 when
 * out of range). */
OC_API int oc_plan_instruction_count(const oc_plan_t *plan, int entry);
/** Introspection (for tools): the op number of instruction |index| of
 * |entry|, or -1 when out of range. */
OC_API int oc_plan_instruction_op(const oc_plan_t *plan, int entry, int index);
/** Introspection (for tools): the plan's constants (element count and
 * bytes); either pointer may be NULL. */
OC_API void oc_plan_constant_stats(const oc_plan_t *plan, uint64_t *out_elements,
                                   uint64_t *out_bytes);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                 */
/* ------------------------------------------------------------------------ */

/** The mutable working memory for running a plan's entry points; one per
 * thread. */
typedef struct oc_context_s oc_context_t;

/** Options of oc_context_create(); fill with oc_context_options_init()
 * first. */
typedef struct oc_context_options_s {
  /** Allocator for the context's arena and bookkeeping (default: system).
   * The context allocates everything in oc_context_create; running entry
   * points does not allocate. */
  oc_allocator_t allocator;
  /** Threads that run the context's entry points: the calling thread and
   * threads - 1 workers the context starts and owns. Kernels and matrix
   * products split their work over them. 0 (the default) uses every online
   * core; 1 runs everything on the calling thread. Contexts take over BLAS
   * threading: creating one sets OpenBLAS to one thread for the process,
   * since the context's own threads run the matrix products. */
  int threads;
  /** Refuse (OC_STATUS_RESOURCE_LIMIT, before allocating anything) to
   * create a context needing more than this many bytes
   * (oc_plan_context_bytes()). 0 (the default) sets no limit, as ONNX
   * Runtime's CPU arena has none: a valid plan may need up to 2^40 bytes of
   * arena and of state. Services that open plans from others should set
   * one. */
  uint64_t max_memory_bytes;
} oc_context_options_t;

/** Fills |options| with the defaults. */
OC_API void oc_context_options_init(oc_context_options_t *options);

/** Creates a context for |plan|. |plan| must outlive the context. |options|
 * may be NULL. Release with oc_context_release. */
OC_API oc_status_t oc_context_create(const oc_plan_t *plan, const oc_context_options_t *options,
                                     oc_context_t **out_context);
/** Releases |context| and all its memory; NULL is accepted and ignored. */
OC_API void oc_context_release(oc_context_t *context);

/** Copies |bytes| bytes from |data| into input |index| of |entry|. |bytes|
 * must equal the input's size (oc_plan_input_info). */
OC_API oc_status_t oc_context_set_input(oc_context_t *context, int entry, int index,
                                        const void *data, size_t bytes);

/** The context's own buffer for input |index| of |entry|, to fill in place
 * instead of oc_context_set_input. Valid until the context is released;
 * its contents are overwritten by running a different entry point, and
 * refilling it is then the caller's business: once asked for, the input
 * counts as set for good. */
OC_API oc_status_t oc_context_input_buffer(oc_context_t *context, int entry, int index,
                                           void **out_data, size_t *out_bytes);

/** Runs |entry| on its inputs. Inputs stay set across runs of the same
 * entry point, but the entry points of a context share its working memory:
 * running another entry point overwrites them. OC_STATUS_INVALID_ARGUMENT,
 * naming the input, if one was never set, or was set with
 * oc_context_set_input and overwritten that way. */
OC_API oc_status_t oc_context_run(oc_context_t *context, int entry);

/** Output |index| of the last run of |entry|: a borrowed pointer into the
 * context, valid until the next oc_context_run on this context. */
OC_API oc_status_t oc_context_output(const oc_context_t *context, int entry, int index,
                                     const void **out_data, size_t *out_bytes);

/* ------------------------------------------------------------------------ */
/* Persistent state and training                                            */
/* ------------------------------------------------------------------------ */

/** The number of state tensors of |plan|.
 *
 * State tensors live as long as a context and keep their values across runs:
 * in a training plan (onnxc --train) the trained parameters (by initializer
 * name), `"grad:<parameter>"` (the last step's gradient), optimizer state
 * (`"opt:<parameter>:momentum_buffer"`, `":exp_avg"`, `":exp_avg_sq"`), BatchNorm
 * running statistics, "opt:step" (int64), "opt:lr" and "opt:base_lr". A
 * context starts with the plan's initial values. */
OC_API int oc_plan_state_count(const oc_plan_t *plan);
/** Description of state tensor |index| (see oc_plan_state_count());
 * OC_STATUS_INVALID_ARGUMENT when out of range. */
OC_API oc_status_t oc_plan_state_info(const oc_plan_t *plan, int index,
                                      oc_tensor_info_t *out_info);
/** Index of the state tensor called |name|, or -1. */
OC_API int oc_plan_state_index(const oc_plan_t *plan, const char *name);

/** The context's own bytes of state tensor |index|: read them or overwrite
 * them in place, between runs (no copy). Valid until the context is
 * released. */
OC_API oc_status_t oc_context_state(oc_context_t *context, int index, void **out_data,
                                    size_t *out_bytes);

/** Training convenience: sets the state tensor "opt:base_lr" to |lr| (finite
 * and >= 0, else OC_STATUS_INVALID_ARGUMENT);
 * OC_STATUS_NOT_FOUND for a plan without a train step. The schedule compiled
 * into the plan scales the base rate each step. */
OC_API oc_status_t oc_context_set_learning_rate(oc_context_t *context, float lr);
/** Training convenience: the state tensor "opt:step" (the number of train
 * steps run); OC_STATUS_NOT_FOUND for a plan without a train step. */
OC_API oc_status_t oc_context_step_count(const oc_context_t *context, int64_t *out_steps);

/** Saves every state tensor of |context| to a checkpoint file at |path|.
 *
 * Checkpoints hold every state tensor (parameters, optimizer state, running
 * statistics, step, RNG): loading one into a fresh context and running on
 * gives the same bits as never having stopped. Written atomically (temp
 * file, rename) with a version and checksums; a checkpoint loads only into
 * a plan with the same state layout, and a damaged one is rejected without
 * touching the context. */
OC_API oc_status_t oc_context_save_checkpoint(const oc_context_t *context, const char *path);

/** A training plan keeps the ONNX model it was compiled from (a serialized
 * ModelProto) without the values of its state initializers, which are the
 * plan's state: filling them from a context's state gives the trained model
 * (what `onnxrun --export-onnx` does). Borrowed until oc_plan_release;
 * OC_STATUS_NOT_FOUND for other plans. */
OC_API oc_status_t oc_plan_source_model(const oc_plan_t *plan, const void **out_data,
                                        size_t *out_bytes);
/** Loads the checkpoint at |path| (see oc_context_save_checkpoint()) into
 * |context|'s state tensors. A checkpoint of a plan with another state layout
 * or a damaged one is an error and leaves the context untouched. */
OC_API oc_status_t oc_context_load_checkpoint(oc_context_t *context, const char *path);

/* ------------------------------------------------------------------------ */
/* Data-parallel training                                                   */
/* ------------------------------------------------------------------------ */

/** How the processes (ranks) of a data-parallel job talk to each other,
 * supplied by the caller (onnxrun implements it with MPI): the library
 * itself links no transport. Plans compiled with `onnxc --ranks N` hold
 * collective instructions (the gradient all-reduce, the embeddings'
 * all-gather of `--global-negatives`, the statistics of `--sync-bn`) that
 * call these functions; every rank must run the same entry points in the same
 * order. Each callback returns 0 on success and anything else on failure
 * (the instruction then fails with OC_STATUS_IO). See docs/distributed.md. */
typedef struct oc_communicator_s {
  /** Passed as the first argument of every callback. */
  void *self;
  /** This process's rank, in [0, size). */
  int rank;
  /** The number of ranks (>= 1). */
  int size;
  /** Replaces |count| elements of |data| (OC_DTYPE_FLOAT32 or
   * OC_DTYPE_FLOAT64) on every rank by their sum over the ranks, added in
   * the same order on every rank (so every rank gets the same bits). */
  int (*allreduce_sum)(void *self, void *data, size_t count, oc_dtype_t dtype);
  /** Gathers |bytes| bytes of |send| from every rank into |recv| (size *
   * bytes bytes), rank 0's first, on every rank. */
  int (*allgather)(void *self, const void *send, void *recv, size_t bytes);
  /** Copies |bytes| bytes of |data| on rank |root| into |data| on every rank. */
  int (*broadcast)(void *self, void *data, size_t bytes, int root);
  /** Returns when every rank has called it. */
  int (*barrier)(void *self);
} oc_communicator_t;

/** Makes |context| one rank of a data-parallel job: its collective
 * instructions call |communicator| (copied; what its |self| points to must
 * outlive the context). NULL, or never calling this, leaves the context
 * alone: collective instructions then act as on a job of one rank. A plan
 * compiled for N ranks (onnxc --ranks N with --global-negatives, whose
 * shapes depend on N) fails to run on another number of ranks
 * (OC_STATUS_INVALID_ARGUMENT). Errors: a rank outside [0, size), a size
 * below 1 or a missing callback (OC_STATUS_INVALID_ARGUMENT). */
OC_API oc_status_t oc_context_set_communicator(oc_context_t *context,
                                               const oc_communicator_t *communicator);

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

/** The version of the onnxc library in use, "MAJOR.MINOR.PATCH". With the
 * shared library this is the version that was loaded at run time, which may
 * be newer than the OC_VERSION_STRING the caller was compiled against. */
OC_API const char *oc_version_string(void);
/** The version of the onnxc library in use as numbers (see
 * oc_version_string()); any pointer may be NULL. */
OC_API void oc_version(int *out_major, int *out_minor, int *out_patch);

#ifdef __cplusplus
}
#endif

#endif /* ONNXC_ONNXC_H */
