// Umbrella header: listing the headers here (rather than an umbrella directory)
// makes Clang notice when one changes.
#include "langtune_kernels.h"
#include "langtune_train.h"
#include "langtune_quant.h"
#include "langtune_mpi.h"
