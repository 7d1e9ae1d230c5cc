#include <cblas.h>
/* OpenBLAS's run-time thread control (declared in its cblas.h). */
