#include <soxr.h>

/* soxr's quality recipes are macros; librosa's default resampler is soxr_hq (SOXR_HQ). */
static inline unsigned long encore_SOXR_HQ(void) { return SOXR_HQ; }
