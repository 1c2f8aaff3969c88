// MPI is loaded with dlopen rather than linked, as oneDNN is (dnnl.c): LangTune then builds and
// runs single-process on machines without MPI, and one binary serves both. The handles an MPI
// program names (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are, in Open MPI's ABI, addresses of
// global objects in libmpi (ompi_mpi_comm_world, ...), which dlsym returns; MPICH's ABI uses
// integer constants instead and is not bound here (docs/DECISIONS.md).
#include "langtune_mpi.h"
#include <stddef.h>
#include <string.h>
#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>
#define LT_HAVE_DLOPEN 1
#endif

typedef void *handle;
typedef int (*init_thread_fn)(int *, char ***, int, int *);
typedef int (*comm_int_fn)(handle, int *);
typedef int (*set_errhandler_fn)(handle, handle);
typedef int (*allreduce_fn)(const void *, void *, int, handle, handle, handle);
typedef int (*bcast_fn)(void *, int, handle, int, handle);
typedef int (*comm_fn)(handle);
typedef int (*void_fn)(void);
typedef int (*abort_fn)(handle, int);
typedef int (*error_string_fn)(int, char *, int *);

static struct {
    init_thread_fn init_thread;
    comm_int_fn comm_rank, comm_size;
    set_errhandler_fn set_errhandler;
    allreduce_fn allreduce;
    bcast_fn bcast;
    comm_fn barrier;
    void_fn finalize;
    abort_fn abort;
    error_string_fn error_string;
    handle world, f32, f64, byte, sum, errors_return;
} mpi;
static const char *loaded_name = NULL;
static char load_error[512] = "";

// Open MPI's MPI_IN_PLACE and MPI_THREAD_SERIALIZED (mpi.h).
#define OMPI_IN_PLACE ((void *)1)
#define OMPI_THREAD_SERIALIZED 2
// MPI counts are int: larger buffers go in pieces of this many elements.
#define PIECE (1 << 28)

#ifdef LT_HAVE_DLOPEN
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int bind_symbols(void *h) {
#define SYM(field, name) if (!(*(void **)&mpi.field = dlsym(h, name))) return 0
    SYM(init_thread, "MPI_Init_thread"); SYM(comm_rank, "MPI_Comm_rank"); SYM(comm_size, "MPI_Comm_size");
    SYM(set_errhandler, "MPI_Comm_set_errhandler"); SYM(allreduce, "MPI_Allreduce"); SYM(bcast, "MPI_Bcast");
    SYM(barrier, "MPI_Barrier"); SYM(finalize, "MPI_Finalize"); SYM(abort, "MPI_Abort");
    SYM(error_string, "MPI_Error_string");
    SYM(world, "ompi_mpi_comm_world"); SYM(f32, "ompi_mpi_float"); SYM(f64, "ompi_mpi_double");
    SYM(byte, "ompi_mpi_byte"); SYM(sum, "ompi_mpi_op_sum"); SYM(errors_return, "ompi_mpi_errors_return");
#undef SYM
    return 1;
}

static void load(void) {
    // RTLD_GLOBAL: Open MPI's components (dlopened by libmpi itself) resolve libmpi's symbols.
    const char *names[] = {"libmpi.so.40", "libmpi.so", NULL};
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
        if (!h) {
            const char *e = dlerror();
            if (i == 0 && e) strncpy(load_error, e, sizeof load_error - 1);
            continue;
        }
        if (bind_symbols(h)) { loaded_name = names[i]; return; }
        strncpy(load_error, "libmpi has no Open MPI symbols (ompi_mpi_comm_world); only Open MPI's ABI is bound",
                sizeof load_error - 1);
        memset(&mpi, 0, sizeof mpi);
        dlclose(h);
    }
}
#endif

int lt_mpi_load(const char **path_out, const char **error_out) {
#ifdef LT_HAVE_DLOPEN
    pthread_once(&once, load);
#else
    strncpy(load_error, "MPI is bound only on Linux", sizeof load_error - 1);
#endif
    if (path_out) *path_out = loaded_name;
    if (error_out) *error_out = loaded_name ? NULL : load_error;
    return loaded_name != NULL;
}

int lt_mpi_init(int *rank, int *size) {
    if (!lt_mpi_load(NULL, NULL)) return -1;
    int provided = 0, rc = mpi.init_thread(NULL, NULL, OMPI_THREAD_SERIALIZED, &provided);
    if (rc) return rc;
    // A failed peer then surfaces as an error code (and a message) instead of an abort inside libmpi.
    if ((rc = mpi.set_errhandler(mpi.world, mpi.errors_return))) return rc;
    if ((rc = mpi.comm_rank(mpi.world, rank))) return rc;
    return mpi.comm_size(mpi.world, size);
}

static int allreduce_sum(void *values, int64_t count, size_t elem, handle type) {
    if (!loaded_name) return -1;
    for (int64_t done = 0; done < count; done += PIECE) {
        int n = (int)(count - done < PIECE ? count - done : PIECE);
        int rc = mpi.allreduce(OMPI_IN_PLACE, (char *)values + done * elem, n, type, mpi.sum, mpi.world);
        if (rc) return rc;
    }
    return 0;
}

int lt_mpi_allreduce_sum_f32(float *values, int64_t count) { return allreduce_sum(values, count, 4, mpi.f32); }
int lt_mpi_allreduce_sum_f64(double *values, int64_t count) { return allreduce_sum(values, count, 8, mpi.f64); }

int lt_mpi_bcast(void *buffer, int64_t bytes, int root) {
    if (!loaded_name) return -1;
    for (int64_t done = 0; done < bytes; done += PIECE) {
        int n = (int)(bytes - done < PIECE ? bytes - done : PIECE);
        int rc = mpi.bcast((char *)buffer + done, n, mpi.byte, root, mpi.world);
        if (rc) return rc;
    }
    return 0;
}

int lt_mpi_barrier(void) { return loaded_name ? mpi.barrier(mpi.world) : -1; }
int lt_mpi_finalize(void) { return loaded_name ? mpi.finalize() : -1; }
void lt_mpi_abort(int code) { if (loaded_name) mpi.abort(mpi.world, code); }

void lt_mpi_error_string(int code, char *out, int capacity) {
    if (capacity <= 0) return;
    out[0] = 0;
    if (code == -1 || !loaded_name) { strncpy(out, "libmpi is not loaded", (size_t)capacity - 1); out[capacity - 1] = 0; return; }
    char buf[512];  // MPI_MAX_ERROR_STRING is 256 in Open MPI
    int len = 0;
    if (mpi.error_string(code, buf, &len) != 0) len = 0;
    buf[len < (int)sizeof buf ? len : (int)sizeof buf - 1] = 0;
    strncpy(out, len ? buf : "unknown MPI error", (size_t)capacity - 1);
    out[capacity - 1] = 0;
}
