#ifndef ENCORE_KERNELS_H
#define ENCORE_KERNELS_H

#include <stdint.h>

/* Dense float kernels for Encore's hot loops. Each has an AVX2+FMA version chosen at run time when the CPU
 * supports it, and a portable version otherwise, so one binary runs everywhere and is fast where it can be. */

/* Sum of a[i] * b[i] for i < n. */
float encore_dot(const float *a, const float *b, long n);

/* y[i] += alpha * x[i] for i < n. */
void encore_axpy(float alpha, const float *x, float *y, long n);

/* Sum of (a[i] - b[i])^2 for i < n. */
float encore_squared_distance(const float *a, const float *b, long n);

/* y = A x for a row-major n x n matrix A. */
void encore_gemv_square(const float *a, const float *x, float *y, long n);

/* One conjugate-gradient update of an implicit-ALS vector x (length f) in place, warm-started from x:
 * solves (gram + sum_i (|c_i| - 1) y_i y_i^T) x = sum_{c_i > 0} c_i y_i approximately with `steps` CG steps.
 * gram is f x f row-major (Y^T Y + lambda I); y is the fixed factors, row-major with f columns; cols/vals are
 * the observed indices and confidences (count of them). r, p, ap are scratch vectors of length f. */
void encore_cg_update(float *x, long f, const float *gram, const float *y, const int32_t *cols, const float *vals,
                      long count, int steps, float *r, float *p, float *ap);

/* 1 when the AVX2+FMA versions are in use. */
int encore_kernels_use_avx2(void);

#endif
