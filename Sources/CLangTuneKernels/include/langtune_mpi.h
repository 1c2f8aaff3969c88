#pragma once
#include <stdint.h>

// MPI (Open MPI's ABI, libmpi.so.40) bound at run time: see mpi.c. Every call but
// lt_mpi_load returns an MPI error code (0: success), or -1 when libmpi is not loaded.

/// Loads libmpi once; 1 when it is there. `path_out` gets the library name, or
/// NULL; `error_out` the loader's message when it is not there.
int lt_mpi_load(const char **path_out, const char **error_out);
/// MPI_Init_thread (serialized: one thread at a time calls MPI), errors returned rather than
/// fatal on MPI_COMM_WORLD, then its rank and size.
int lt_mpi_init(int *rank, int *size);
/// In-place sums over MPI_COMM_WORLD (split into pieces that fit MPI's int counts).
int lt_mpi_allreduce_sum_f32(float *values, int64_t count);
int lt_mpi_allreduce_sum_f64(double *values, int64_t count);
/// `bytes` bytes of `root`'s buffer copied into everyone's.
int lt_mpi_bcast(void *buffer, int64_t bytes, int root);
int lt_mpi_barrier(void);
int lt_mpi_finalize(void);
/// MPI_Abort on MPI_COMM_WORLD: the launcher stops every process of the job.
void lt_mpi_abort(int code);
/// MPI_Error_string of `code` into `out` (NUL-terminated).
void lt_mpi_error_string(int code, char *out, int capacity);
