/*
 * The communicator (onnxc.h oc_communicator_t) over MPI of the programs that
 * join data-parallel jobs (onnxrun, examples/simclr_mnist): the internal
 * static library onnxc_mpi, built with MPI when CMake finds it
 * (ONNXC_HAVE_MPI); otherwise every process is a job of one rank. The
 * library itself (libonnxc) links no transport.
 */
#ifndef ONNXC_MPI_COMM_H
#define ONNXC_MPI_COMM_H

#include <stddef.h>

#include "onnxc/onnxc.h"

/* Joins the MPI job when the process was started by mpirun (Open MPI's
 * OMPI_COMM_WORLD_SIZE, or PMIX_RANK / PMI_RANK, in the environment) and
 * fills |out| (errors return instead of aborting: MPI_ERRORS_RETURN);
 * otherwise, or without MPI, |out| is a job of one rank (size 1, no
 * callbacks). Returns 0, or -1 with a message in |err| (MPI built in but
 * its start failed). */
int oc_mpi_join(int *argc, char ***argv, oc_communicator_t *out, char *err, size_t err_bytes);
/* The last MPI error as text ("" if none). */
const char *oc_mpi_last_error(void);
/* Ends the whole job with |code| (MPI_Abort) when it has several ranks. */
void oc_mpi_abort(const oc_communicator_t *comm, int code);
/* Leaves the MPI job (MPI_Finalize) if oc_mpi_join joined one. */
void oc_mpi_leave(void);
/* Gathers |bytes| bytes of |send| from every rank of |comm| into |recv| on
 * rank |root|, one after the other in rank order; |counts| (on every rank)
 * holds each rank's number of bytes (counts[rank] == bytes), and |recv| is
 * the sum of them long (ignored on the other ranks). A job of one rank
 * copies |send|. Each call moves less than 2^31 bytes in all (MPI_Gatherv's
 * int counts). Returns 0, or non-zero with oc_mpi_last_error() set. */
int oc_mpi_gatherv(const oc_communicator_t *comm, const void *send, size_t bytes, void *recv,
                   const size_t *counts, int root);
/* Whether this onnxrun was built with MPI. */
int oc_mpi_available(void);

#endif
