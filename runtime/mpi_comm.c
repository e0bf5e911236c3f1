/* The MPI communicator of onnxrun and examples/simclr_mnist (mpi_comm.h). */
#include "mpi_comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ONNXC_HAVE_MPI
#include <limits.h>
#include <mpi.h>

static int joined;
static char last_error[MPI_MAX_ERROR_STRING + 64];

/* Records what MPI said about |rc|; returns |rc|. */
static int check(int rc, const char *call) {
  if (rc == MPI_SUCCESS) return 0;
  char text[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", rc);
  snprintf(last_error, sizeof last_error, "%s: %s", call, text);
  return rc;
}

/* MPI counts are ints: big buffers go in pieces of 2^30 elements. */
enum { PIECE = 1 << 30 };

static int mpi_allreduce_sum(void *self, void *data, size_t count, oc_dtype_t dtype) {
  (void)self;
  MPI_Datatype t = dtype == OC_DTYPE_FLOAT64 ? MPI_DOUBLE : MPI_FLOAT;
  size_t size = dtype == OC_DTYPE_FLOAT64 ? 8 : 4;
  if (dtype != OC_DTYPE_FLOAT64 && dtype != OC_DTYPE_FLOAT32) return -1;
  for (size_t k = 0; k < count; k += PIECE) {
    int n = (int)(count - k < PIECE ? count - k : PIECE);
    int rc = check(MPI_Allreduce(MPI_IN_PLACE, (char *)data + k * size, n, t, MPI_SUM,
                                 MPI_COMM_WORLD), "MPI_Allreduce");
    if (rc) return rc;
  }
  return 0;
}

static int mpi_allgather(void *self, const void *send, void *recv, size_t bytes) {
  (void)self;
  if (bytes > INT_MAX) {
    snprintf(last_error, sizeof last_error, "MPI_Allgather: %zu bytes per rank is over 2^31", bytes);
    return -1;
  }
  return check(MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD),
               "MPI_Allgather");
}

static int mpi_broadcast(void *self, void *data, size_t bytes, int root) {
  (void)self;
  for (size_t k = 0; k < bytes; k += PIECE) {
    int n = (int)(bytes - k < PIECE ? bytes - k : PIECE);
    int rc = check(MPI_Bcast((char *)data + k, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    if (rc) return rc;
  }
  return 0;
}

static int mpi_barrier(void *self) {
  (void)self;
  return check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

int oc_mpi_gatherv(const oc_communicator_t *comm, const void *send, size_t bytes, void *recv,
                   const size_t *counts, int root) {
  if (!joined || comm->size == 1) {
    if (bytes) memcpy(recv, send, bytes);
    return 0;
  }
  int *ints = malloc(sizeof(int) * 2 * (size_t)comm->size);
  if (!ints) {
    snprintf(last_error, sizeof last_error, "MPI_Gatherv: out of memory");
    return -1;
  }
  int *displs = ints + comm->size;
  size_t total = 0;
  for (int r = 0; r < comm->size; r++) {
    if (counts[r] > (size_t)INT_MAX - total) {
      snprintf(last_error, sizeof last_error, "MPI_Gatherv: more than 2^31 bytes in one call");
      free(ints);
      return -1;
    }
    ints[r] = (int)counts[r];
    displs[r] = (int)total;
    total += counts[r];
  }
  int rc = check(MPI_Gatherv(send, (int)bytes, MPI_BYTE, recv, ints, displs, MPI_BYTE, root,
                             MPI_COMM_WORLD), "MPI_Gatherv");
  free(ints);
  return rc;
}

int oc_mpi_available(void) { return 1; }

int oc_mpi_join(int *argc, char ***argv, oc_communicator_t *out, char *err, size_t err_bytes) {
  memset(out, 0, sizeof *out);
  out->size = 1;
  if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK")) return 0;
  if (MPI_Init(argc, argv) != MPI_SUCCESS) {
    snprintf(err, err_bytes, "MPI_Init failed");
    return -1;
  }
  joined = 1;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &out->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &out->size);
  out->allreduce_sum = mpi_allreduce_sum;
  out->allgather = mpi_allgather;
  out->broadcast = mpi_broadcast;
  out->barrier = mpi_barrier;
  return 0;
}

const char *oc_mpi_last_error(void) { return last_error; }

void oc_mpi_abort(const oc_communicator_t *comm, int code) {
  if (joined && comm->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void oc_mpi_leave(void) {
  if (joined) MPI_Finalize();
  joined = 0;
}

#else /* no MPI: every process is a job of one rank */

int oc_mpi_gatherv(const oc_communicator_t *comm, const void *send, size_t bytes, void *recv,
                   const size_t *counts, int root) {
  (void)comm;
  (void)counts;
  (void)root;
  if (bytes) memcpy(recv, send, bytes);
  return 0;
}

int oc_mpi_available(void) { return 0; }

int oc_mpi_join(int *argc, char ***argv, oc_communicator_t *out, char *err, size_t err_bytes) {
  (void)argc;
  (void)argv;
  (void)err;
  (void)err_bytes;
  memset(out, 0, sizeof *out);
  out->size = 1;
  return 0;
}

const char *oc_mpi_last_error(void) { return ""; }
void oc_mpi_abort(const oc_communicator_t *comm, int code) {
  (void)comm;
  (void)code;
}
void oc_mpi_leave(void) {}

#endif
