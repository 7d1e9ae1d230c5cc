#include "encore_kernels.h"

#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCORE_X86 1
#endif

/* ---- portable versions -------------------------------------------------------------------------------------- */

static float dot_generic(const float *a, const float *b, long n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void axpy_generic(float alpha, const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] += alpha * x[i];
}

static float sqdist_generic(const float *a, const float *b, long n) {
    float s = 0;
    for (long i = 0; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* ---- AVX2 + FMA versions ------------------------------------------------------------------------------------ */

#ifdef ENCORE_X86
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    __m128 sums = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, sums);
    sums = _mm_add_ss(sums, sh);
    return _mm_cvtss_f32(sums);
}

AVX2 static float dot_avx2(const float *a, const float *b, long n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    if (i + 8 <= n) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

AVX2 static void axpy_avx2(float alpha, const float *x, float *y, long n) {
    __m256 va = _mm256_set1_ps(alpha);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += alpha * x[i];
}

AVX2 static float sqdist_avx2(const float *a, const float *b, long n) {
    __m256 acc = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    float s = hsum256(acc);
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}
#endif

/* ---- 8-bit scalar quantization ---------------------------------------------------------------------------------- */

static float sq8_dot_generic(const float *q, const int8_t *c, long n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (long i = 0; i + 4 <= n; i += 4) {
        s0 += q[i] * (float)c[i];
        s1 += q[i + 1] * (float)c[i + 1];
        s2 += q[i + 2] * (float)c[i + 2];
        s3 += q[i + 3] * (float)c[i + 3];
    }
    return (s0 + s1) + (s2 + s3);
}

static float sq8_l2_generic(const float *q, float s, const int8_t *c, long n) {
    float s0 = 0, s1 = 0;
    for (long i = 0; i + 2 <= n; i += 2) {
        float t0 = q[i] - s * (float)c[i];
        float t1 = q[i + 1] - s * (float)c[i + 1];
        s0 += t0 * t0;
        s1 += t1 * t1;
    }
    return s0 + s1;
}

#ifdef ENCORE_X86
/* 16 codes per step: one 128-bit load, sign-extended to two vectors of 8 int32, converted to float. */
AVX2 static float sq8_dot_avx2(const float *q, const int8_t *c, long n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (long i = 0; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(c + i));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

AVX2 static float sq8_l2_avx2(const float *q, float s, const int8_t *c, long n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 vs = _mm256_set1_ps(s);
    for (long i = 0; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(c + i));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
        __m256 t0 = _mm256_fnmadd_ps(vs, lo, _mm256_loadu_ps(q + i));
        __m256 t1 = _mm256_fnmadd_ps(vs, hi, _mm256_loadu_ps(q + i + 8));
        acc0 = _mm256_fmadd_ps(t0, t0, acc0);
        acc1 = _mm256_fmadd_ps(t1, t1, acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}
#endif

/* ---- the CG update, written once over the selected dot/axpy ---------------------------------------------------- */

/* The first pass over a row's observed items touches factor rows scattered over a matrix far larger than the cache;
 * asking for the rows a few items ahead hides most of that latency. Later passes find them in cache. */
#define PREFETCH_AHEAD 4
static inline void prefetch_row(const float *row, long f) {
    for (long j = 0; j < f; j += 16) __builtin_prefetch(row + j, 0, 3);
}

#define CG_BODY(DOT, AXPY)                                                                                  \
    for (long j = 0; j < f; j++) r[j] = -DOT(gram + j * f, x, f);                                           \
    for (long t = 0; t < count; t++) {                                                                      \
        float c = vals[t];                                                                                  \
        const float *yi = y + (long)cols[t] * f;                                                            \
        if (t + PREFETCH_AHEAD < count) prefetch_row(y + (long)cols[t + PREFETCH_AHEAD] * f, f);            \
        float temp;                                                                                         \
        if (c > 0) {                                                                                        \
            temp = c;                                                                                       \
        } else {                                                                                            \
            temp = 0;                                                                                       \
            c = -c;                                                                                         \
        }                                                                                                   \
        temp -= (c - 1) * DOT(yi, x, f);                                                                    \
        AXPY(temp, yi, r, f);                                                                               \
    }                                                                                                       \
    for (long j = 0; j < f; j++) p[j] = r[j];                                                               \
    float rsold = DOT(r, r, f);                                                                             \
    if (rsold < 1e-20f) return;                                                                             \
    for (int it = 0; it < steps; it++) {                                                                    \
        for (long j = 0; j < f; j++) ap[j] = DOT(gram + j * f, p, f);                                       \
        for (long t = 0; t < count; t++) {                                                                  \
            float c = fabsf(vals[t]);                                                                       \
            const float *yi = y + (long)cols[t] * f;                                                        \
            AXPY((c - 1) * DOT(yi, p, f), yi, ap, f);                                                       \
        }                                                                                                   \
        float pap = DOT(p, ap, f);                                                                          \
        if (!(pap > 0)) return;                                                                             \
        float alpha = rsold / pap;                                                                          \
        AXPY(alpha, p, x, f);                                                                               \
        AXPY(-alpha, ap, r, f);                                                                             \
        float rsnew = DOT(r, r, f);                                                                         \
        if (rsnew < 1e-20f) return;                                                                         \
        float beta = rsnew / rsold;                                                                         \
        for (long j = 0; j < f; j++) p[j] = r[j] + beta * p[j];                                             \
        rsold = rsnew;                                                                                      \
    }

static void cg_generic(float *x, long f, const float *gram, const float *y, const int32_t *cols, const float *vals,
                       long count, int steps, float *r, float *p, float *ap) {
    CG_BODY(dot_generic, axpy_generic)
}

#ifdef ENCORE_X86
AVX2 static void cg_avx2(float *x, long f, const float *gram, const float *y, const int32_t *cols, const float *vals,
                         long count, int steps, float *r, float *p, float *ap) {
    CG_BODY(dot_avx2, axpy_avx2)
}
#endif

/* ---- the CG update with its accumulators in registers (AVX2, f a multiple of 8 up to 128) -------------------------
 *
 * The same arithmetic as CG_BODY, reorganised so that the two f-vectors every pass accumulates (the residual's start
 * and A p) stay in registers for the whole pass instead of being loaded and stored once per observed item:
 * - the Gram product is formed as a sum of Gram rows scaled by broadcast entries (the Gram matrix is symmetric),
 *   so it needs no horizontal sums;
 * - each observed item's row is read once per pass for its dot product and its update, which the compiler keeps in
 *   registers between the two.
 * NV is the number of 8-float registers per vector; the function is instantiated for each NV so its loops unroll. */

#ifdef ENCORE_X86
#define ALWAYS_INLINE __attribute__((always_inline)) inline

AVX2 static ALWAYS_INLINE void gram_times(int nv, const float *gram, const float *v, __m256 *acc, float sign) {
    long f = nv * 8;
    for (int k = 0; k < nv; k++) acc[k] = _mm256_setzero_ps();
    for (long j = 0; j < f; j++) {
        __m256 b = _mm256_set1_ps(sign * v[j]);
        const float *g = gram + j * f;
        for (int k = 0; k < nv; k++) acc[k] = _mm256_fmadd_ps(b, _mm256_loadu_ps(g + 8 * k), acc[k]);
    }
}

AVX2 static ALWAYS_INLINE float row_dot(int nv, const float *a, const float *b) {
    __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
    __m256 s1 = _mm256_setzero_ps();
    for (int k = 1; k < nv; k++) {
        if (k & 1) s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 8 * k), _mm256_loadu_ps(b + 8 * k), s1);
        else s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 8 * k), _mm256_loadu_ps(b + 8 * k), s0);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

AVX2 static ALWAYS_INLINE void cg_registers(int nv, float *x, const float *gram, const float *y, const int32_t *cols,
                                            const float *vals, long count, int steps, float *r, float *p, float *ap) {
    long f = nv * 8;
    __m256 acc[16];
    /* r = b - A x = sum_{c>0} c y_i - gram x - sum (|c| - 1)(y_i . x) y_i */
    gram_times(nv, gram, x, acc, -1.0f);
    for (long t = 0; t < count; t++) {
        float c = vals[t];
        const float *yi = y + (long)cols[t] * f;
        if (t + PREFETCH_AHEAD < count) prefetch_row(y + (long)cols[t + PREFETCH_AHEAD] * f, f);
        float temp = c > 0 ? c : 0;
        c = fabsf(c);
        temp -= (c - 1) * row_dot(nv, yi, x);
        __m256 b = _mm256_set1_ps(temp);
        for (int k = 0; k < nv; k++) acc[k] = _mm256_fmadd_ps(b, _mm256_loadu_ps(yi + 8 * k), acc[k]);
    }
    for (int k = 0; k < nv; k++) {
        _mm256_storeu_ps(r + 8 * k, acc[k]);
        _mm256_storeu_ps(p + 8 * k, acc[k]);
    }
    float rsold = row_dot(nv, r, r);
    if (rsold < 1e-20f) return;
    for (int it = 0; it < steps; it++) {
        gram_times(nv, gram, p, acc, 1.0f);
        for (long t = 0; t < count; t++) {
            float c = fabsf(vals[t]) - 1;
            const float *yi = y + (long)cols[t] * f;
            __m256 b = _mm256_set1_ps(c * row_dot(nv, yi, p));
            for (int k = 0; k < nv; k++) acc[k] = _mm256_fmadd_ps(b, _mm256_loadu_ps(yi + 8 * k), acc[k]);
        }
        for (int k = 0; k < nv; k++) _mm256_storeu_ps(ap + 8 * k, acc[k]);
        float pap = row_dot(nv, p, ap);
        if (!(pap > 0)) return;
        float alpha = rsold / pap;
        __m256 va = _mm256_set1_ps(alpha), rs = _mm256_setzero_ps();
        for (int k = 0; k < nv; k++) {
            __m256 pk = _mm256_loadu_ps(p + 8 * k);
            _mm256_storeu_ps(x + 8 * k, _mm256_fmadd_ps(va, pk, _mm256_loadu_ps(x + 8 * k)));
            __m256 rk = _mm256_fnmadd_ps(va, acc[k], _mm256_loadu_ps(r + 8 * k));
            _mm256_storeu_ps(r + 8 * k, rk);
            rs = _mm256_fmadd_ps(rk, rk, rs);
        }
        float rsnew = hsum256(rs);
        if (rsnew < 1e-20f) return;
        __m256 vb = _mm256_set1_ps(rsnew / rsold);
        for (int k = 0; k < nv; k++) {
            _mm256_storeu_ps(p + 8 * k, _mm256_fmadd_ps(vb, _mm256_loadu_ps(p + 8 * k), _mm256_loadu_ps(r + 8 * k)));
        }
        rsold = rsnew;
    }
}

#define CG_REGISTERS(NV)                                                                                             \
    AVX2 static void cg_registers_##NV(float *x, const float *gram, const float *y, const int32_t *cols,              \
                                       const float *vals, long count, int steps, float *r, float *p, float *ap) {    \
        cg_registers(NV, x, gram, y, cols, vals, count, steps, r, p, ap);                                           \
    }
CG_REGISTERS(1)
CG_REGISTERS(2)
CG_REGISTERS(3)
CG_REGISTERS(4)
CG_REGISTERS(5)
CG_REGISTERS(6)
CG_REGISTERS(7)
CG_REGISTERS(8)
CG_REGISTERS(10)
CG_REGISTERS(12)
CG_REGISTERS(16)

typedef void (*cg_fn)(float *, const float *, const float *, const int32_t *, const float *, long, int, float *,
                      float *, float *);

static cg_fn cg_registers_for(long f) {
    if (f <= 0 || f % 8 != 0) return NULL;
    switch (f / 8) {
    case 1: return cg_registers_1;
    case 2: return cg_registers_2;
    case 3: return cg_registers_3;
    case 4: return cg_registers_4;
    case 5: return cg_registers_5;
    case 6: return cg_registers_6;
    case 7: return cg_registers_7;
    case 8: return cg_registers_8;
    case 10: return cg_registers_10;
    case 12: return cg_registers_12;
    case 16: return cg_registers_16;
    default: return NULL;
    }
}
#endif

/* ---- run-time dispatch ---------------------------------------------------------------------------------------- */

/* 0: portable; 1: AVX2+FMA with dot/axpy loops; 2: AVX2+FMA with the register-resident CG update. */
static int level = -1;

static int best_level = -1;

static int detect(void) {
    if (__builtin_expect(best_level >= 0, 1)) return best_level;
#ifdef ENCORE_X86
    __builtin_cpu_init();
    best_level = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 2 : 0;
#else
    best_level = 0;
#endif
    return best_level;
}

/* The best level the CPU has, lowered by the environment variable ENCORE_KERNEL_LEVEL when it is set (0, 1 or 2). */
static int initial_level(void) {
    int best = detect();
    const char *env = getenv("ENCORE_KERNEL_LEVEL");
    if (env && env[0] >= '0' && env[0] <= '9' && env[1] == 0) {
        int wanted = env[0] - '0';
        return wanted < best ? wanted : best;
    }
    return best;
}

static inline int kernel_level(void) {
    if (__builtin_expect(level < 0, 0)) level = initial_level();
    return level;
}

static inline int avx2(void) { return kernel_level() >= 1; }

int encore_kernels_use_avx2(void) { return avx2(); }

int encore_kernels_level(void) { return kernel_level(); }

int encore_kernels_best_level(void) { return detect(); }

float encore_dot(const float *a, const float *b, long n) {
#ifdef ENCORE_X86
    if (avx2()) return dot_avx2(a, b, n);
#endif
    return dot_generic(a, b, n);
}

void encore_axpy(float alpha, const float *x, float *y, long n) {
#ifdef ENCORE_X86
    if (avx2()) {
        axpy_avx2(alpha, x, y, n);
        return;
    }
#endif
    axpy_generic(alpha, x, y, n);
}

float encore_squared_distance(const float *a, const float *b, long n) {
#ifdef ENCORE_X86
    if (avx2()) return sqdist_avx2(a, b, n);
#endif
    return sqdist_generic(a, b, n);
}

float encore_sq8_dot_at(int use, const float *q, const int8_t *codes, long stride) {
    int best = detect();
    if (use > best) use = best;
#ifdef ENCORE_X86
    if (use >= 1) return sq8_dot_avx2(q, codes, stride);
#endif
    (void)use;
    return sq8_dot_generic(q, codes, stride);
}

float encore_sq8_l2_at(int use, const float *q, float s, const int8_t *codes, long stride) {
    int best = detect();
    if (use > best) use = best;
#ifdef ENCORE_X86
    if (use >= 1) return sq8_l2_avx2(q, s, codes, stride);
#endif
    (void)use;
    return sq8_l2_generic(q, s, codes, stride);
}

float encore_sq8_dot(const float *q, const int8_t *codes, long stride) {
#ifdef ENCORE_X86
    if (avx2()) return sq8_dot_avx2(q, codes, stride);
#endif
    return sq8_dot_generic(q, codes, stride);
}

float encore_sq8_l2(const float *q, float s, const int8_t *codes, long stride) {
#ifdef ENCORE_X86
    if (avx2()) return sq8_l2_avx2(q, s, codes, stride);
#endif
    return sq8_l2_generic(q, s, codes, stride);
}

void encore_cg_update_at(int use, float *x, long f, const float *gram, const float *y, const int32_t *cols,
                         const float *vals, long count, int steps, float *r, float *p, float *ap) {
    int best = detect();
    if (use > best) use = best;
#ifdef ENCORE_X86
    if (use >= 2) {
        cg_fn fn = cg_registers_for(f);
        if (fn) {
            fn(x, gram, y, cols, vals, count, steps, r, p, ap);
            return;
        }
    }
    if (use >= 1) {
        cg_avx2(x, f, gram, y, cols, vals, count, steps, r, p, ap);
        return;
    }
#endif
    cg_generic(x, f, gram, y, cols, vals, count, steps, r, p, ap);
}

void encore_cg_update(float *x, long f, const float *gram, const float *y, const int32_t *cols, const float *vals,
                      long count, int steps, float *r, float *p, float *ap) {
    encore_cg_update_at(kernel_level(), x, f, gram, y, cols, vals, count, steps, r, p, ap);
}

/* ---- sparse (CSR) x dense rows ------------------------------------------------------------------------------ */

static void spmm_row_generic(const int32_t *idx, const float *val, long nnz, const float *x, float *y, long l) {
    for (long j = 0; j < l; j++) y[j] = 0;
    for (long p = 0; p < nnz; p++) axpy_generic(val[p], x + (long)idx[p] * l, y, l);
}

#ifdef ENCORE_X86
/* The row's output stays in registers: 32 columns at a time over all of the row's entries, then 8, then a masked
 * tail. The first pass prefetches the whole x row of the entry 8 ahead, so the later passes read from cache.
 * A long row (a frequent term's, in a transposed documents x terms matrix) goes in runs of SPMM_RUN entries (an even
 * number): each run makes all the passes while its x rows are in cache, and the partial sums wait in `part` between
 * runs. Each output is still the same chain of fused multiply-adds over the entries in order (the 8-column blocks'
 * even and odd chains too), so the result is bit for bit the one of a single run. */
#define SPMM_RUN 128
#define SPMM_MAX_PART 512
AVX2 static void spmm_row_avx2_run(const int32_t *idx, const float *val, long lo, long hi, long nnz, const float *x,
                                   float *part, long l, int first_run) {
    long j = 0;
    int first = 1;
    for (; j + 32 <= l; j += 32) {
        __m256 a0, a1, a2, a3;
        if (first_run) {
            a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        } else {
            a0 = _mm256_loadu_ps(part + j), a1 = _mm256_loadu_ps(part + j + 8);
            a2 = _mm256_loadu_ps(part + j + 16), a3 = _mm256_loadu_ps(part + j + 24);
        }
        for (long p = lo; p < hi; p++) {
            if (first && p + 8 < nnz) {
                const char *ahead = (const char *)(x + (long)idx[p + 8] * l);
                for (long b = 0; b < l * 4; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
            }
            const float *xr = x + (long)idx[p] * l + j;
            __m256 v = _mm256_broadcast_ss(val + p);
            a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 24), a3);
        }
        first = 0;
        _mm256_storeu_ps(part + j, a0);
        _mm256_storeu_ps(part + j + 8, a1);
        _mm256_storeu_ps(part + j + 16, a2);
        _mm256_storeu_ps(part + j + 24, a3);
    }
    /* The 8-column blocks keep their even chain at part[j..] and their odd chain at part[l + j..]. */
    for (; j + 8 <= l; j += 8) {
        __m256 a0, a1;
        if (first_run) {
            a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        } else {
            a0 = _mm256_loadu_ps(part + j), a1 = _mm256_loadu_ps(part + l + j);
        }
        long p = lo;
        for (; p + 2 <= hi; p += 2) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p), _mm256_loadu_ps(x + (long)idx[p] * l + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p + 1), _mm256_loadu_ps(x + (long)idx[p + 1] * l + j), a1);
        }
        if (p < hi) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p), _mm256_loadu_ps(x + (long)idx[p] * l + j), a0);
        _mm256_storeu_ps(part + j, a0);
        _mm256_storeu_ps(part + l + j, a1);
    }
    if (j < l) {
        long rest = l - j;
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 a0 = first_run ? _mm256_setzero_ps() : _mm256_maskload_ps(part + j, mask);
        for (long p = lo; p < hi; p++) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p), _mm256_maskload_ps(x + (long)idx[p] * l + j, mask), a0);
        }
        _mm256_maskstore_ps(part + j, mask, a0);
    }
}

AVX2 static void spmm_row_avx2(const int32_t *idx, const float *val, long nnz, const float *x, float *y, long l) {
    if (nnz > SPMM_RUN && 2 * l <= SPMM_MAX_PART) {
        float part[SPMM_MAX_PART];
        for (long lo = 0; lo < nnz; lo += SPMM_RUN) {
            long hi = lo + SPMM_RUN < nnz ? lo + SPMM_RUN : nnz;
            spmm_row_avx2_run(idx, val, lo, hi, nnz, x, part, l, lo == 0);
        }
        /* Close the 8-column blocks (even chain + odd chain) and copy out. */
        long j = l - l % 32;
        for (long c = 0; c < j; c++) y[c] = part[c];
        for (; j + 8 <= l; j += 8)
            _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_loadu_ps(part + j), _mm256_loadu_ps(part + l + j)));
        for (; j < l; j++) y[j] = part[j];
        return;
    }
    long j = 0;
    int first = 1;
    for (; j + 32 <= l; j += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (long p = 0; p < nnz; p++) {
            if (first && p + 8 < nnz) {
                const char *ahead = (const char *)(x + (long)idx[p + 8] * l);
                for (long b = 0; b < l * 4; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
            }
            const float *xr = x + (long)idx[p] * l + j;
            __m256 v = _mm256_broadcast_ss(val + p);
            a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 24), a3);
        }
        first = 0;
        _mm256_storeu_ps(y + j, a0);
        _mm256_storeu_ps(y + j + 8, a1);
        _mm256_storeu_ps(y + j + 16, a2);
        _mm256_storeu_ps(y + j + 24, a3);
    }
    for (; j + 8 <= l; j += 8) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        long p = 0;
        for (; p + 2 <= nnz; p += 2) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p), _mm256_loadu_ps(x + (long)idx[p] * l + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p + 1), _mm256_loadu_ps(x + (long)idx[p + 1] * l + j), a1);
        }
        if (p < nnz) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p), _mm256_loadu_ps(x + (long)idx[p] * l + j), a0);
        _mm256_storeu_ps(y + j, _mm256_add_ps(a0, a1));
    }
    if (j < l) {
        long rest = l - j;
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 a0 = _mm256_setzero_ps();
        for (long p = 0; p < nnz; p++) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + p), _mm256_maskload_ps(x + (long)idx[p] * l + j, mask), a0);
        }
        _mm256_maskstore_ps(y + j, mask, a0);
    }
}
#endif

void encore_spmm_rows(const long *indptr, const int32_t *indices, const float *values, const float *x, float *y,
                      long l, long row_begin, long row_end) {
    for (long r = row_begin; r < row_end; r++) {
        long lo = indptr[r], n = indptr[r + 1] - lo;
#ifdef ENCORE_X86
        if (avx2()) {
            spmm_row_avx2(indices + lo, values + lo, n, x, y + r * l, l);
            continue;
        }
#endif
        spmm_row_generic(indices + lo, values + lo, n, x, y + r * l, l);
    }
}

/* ---- Transposed sparse x dense product and dense transposes (the randomized SVD's) ----------------------------- */

static long first_at_least(const int32_t *idx, long lo, long hi, int32_t c) {
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (idx[mid] < c) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static void spmm_t_row_generic(const int32_t *idx, const float *val, long lo, long hi, const float *xr, float *y, long l) {
    for (long p = lo; p < hi; p++) axpy_generic(val[p], xr, y + (long)idx[p] * l, l);
}

#ifdef ENCORE_X86
/* One row of A: its x row is read from cache for every entry; the y row of the entry 4 ahead is prefetched. */
AVX2 static void spmm_t_row_avx2(const int32_t *idx, const float *val, long lo, long hi, const float *xr, float *y,
                                 long l) {
    long rest = l % 8, full = l - rest;
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (long p = lo; p < hi; p++) {
        if (p + 4 < hi) {
            const char *ahead = (const char *)(y + (long)idx[p + 4] * l);
            for (long b = 0; b < l * 4; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
        }
        float *yr = y + (long)idx[p] * l;
        __m256 v = _mm256_broadcast_ss(val + p);
        long j = 0;
        for (; j < full; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + j), _mm256_loadu_ps(yr + j)));
        if (rest) {
            __m256 t = _mm256_fmadd_ps(v, _mm256_maskload_ps(xr + j, mask), _mm256_maskload_ps(yr + j, mask));
            _mm256_maskstore_ps(yr + j, mask, t);
        }
    }
}
#endif

void encore_spmm_t_rows(const long *indptr, const int32_t *indices, const float *values, const float *x, float *y,
                        long l, long row_begin, long row_end, int32_t col_begin, int32_t col_end) {
    for (long r = row_begin; r < row_end; r++) {
        long lo = indptr[r], hi = indptr[r + 1];
        if (lo == hi) continue;
        if (indices[lo] < col_begin) lo = first_at_least(indices, lo, hi, col_begin);
        if (lo < hi && indices[hi - 1] >= col_end) hi = first_at_least(indices, lo, hi, col_end);
        if (lo == hi) continue;
#ifdef ENCORE_X86
        if (avx2()) {
            spmm_t_row_avx2(indices, values, lo, hi, x + r * l, y, l);
            continue;
        }
#endif
        spmm_t_row_generic(indices, values, lo, hi, x + r * l, y, l);
    }
}

void encore_transpose_rows(const float *src, long rows, long cols, float *dst, long row_begin, long row_end) {
    enum { T = 16 };
    for (long i0 = row_begin; i0 < row_end; i0 += T) {
        long i1 = i0 + T < row_end ? i0 + T : row_end;
        for (long j0 = 0; j0 < cols; j0 += T) {
            long j1 = j0 + T < cols ? j0 + T : cols;
            for (long j = j0; j < j1; j++) {
                float *d = dst + j * rows;
                for (long i = i0; i < i1; i++) d[i] = src[i * cols + j];
            }
        }
    }
}

/* ---- HNSW helpers ---------------------------------------------------------------------------------------------- */

void encore_spin_yield(void) { sched_yield(); }

#define ENCORE_HUGE_PAGE (2L << 20)

void *encore_alloc_table(long bytes) {
    if (bytes <= 0) return NULL;
    if (bytes < ENCORE_HUGE_PAGE) {
        void *p = NULL;
        if (posix_memalign(&p, 64, (size_t)bytes) != 0) return NULL;
        memset(p, 0, (size_t)bytes);
        return p;
    }
    /* Anonymous mappings are zeroed. Map 2 MiB more than needed, keep a 2 MiB-aligned range of `bytes` rounded up to
     * whole 4 KiB pages: the kernel backs each aligned 2 MiB stretch inside it with a huge page and the tail with small
     * pages, so nothing is rounded up to 2 MiB. */
    size_t size = ((size_t)bytes + 4095) & ~(size_t)4095;
    char *raw = mmap(NULL, size + ENCORE_HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *aligned = (char *)(((uintptr_t)raw + ENCORE_HUGE_PAGE - 1) & ~(uintptr_t)(ENCORE_HUGE_PAGE - 1));
    if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
    size_t tail = (size_t)(raw + size + ENCORE_HUGE_PAGE - (aligned + size));
    if (tail > 0) munmap(aligned + size, tail);
#ifdef MADV_HUGEPAGE
    madvise(aligned, size, MADV_HUGEPAGE);
#endif
    return aligned;
}

void encore_free_table(void *p, long bytes) {
    if (p == NULL) return;
    if (bytes < ENCORE_HUGE_PAGE) {
        free(p);
        return;
    }
    munmap(p, ((size_t)bytes + 4095) & ~(size_t)4095);
}

/* Two passes: the first marks the unvisited neighbors and prefetches their records and vectors all at once (the
 * loads overlap instead of waiting one behind the other), the second computes the distances. */
#define HNSW_EXPAND_BODY(DOT, SQDIST)                                                                            \
    long out = 0;                                                                                                \
    long vector_bytes = dim * 4 < 512 ? dim * 4 : 512;                                                           \
    if (count <= 0) return 0;                                                                                    \
    for (long j = 0; j < count; j++) {                                                                           \
        int32_t slot = __atomic_load_n(links + j, __ATOMIC_ACQUIRE);                                             \
        if (slot < 0 || slot >= visited_cap || visited[slot] == tag) continue;                                   \
        visited[slot] = tag;                                                                                     \
        const char *r = (const char *)chunks[slot >> chunk_shift] + (long)(slot & chunk_mask) * record_size;     \
        if (kind >= 2) __builtin_prefetch(r + 8, 0, 3);                                                          \
        for (long o = 0; o < vector_bytes; o += 64) __builtin_prefetch(r + vector_offset + o, 0, 3);            \
        out_slots[out++] = slot;                                                                                 \
    }                                                                                                            \
    for (long i = 0; i < out; i++) {                                                                             \
        int32_t slot = out_slots[i];                                                                             \
        const char *r = (const char *)chunks[slot >> chunk_shift] + (long)(slot & chunk_mask) * record_size;     \
        const float *x = (const float *)(r + vector_offset);                                                     \
        float d;                                                                                                 \
        switch (kind) {                                                                                          \
        case 0: d = SQDIST(query, x, dim); break;                                                                \
        case 1: d = offset - DOT(query, x, dim); break;                                                          \
        case 2: d = -DOT(query, x, dim) - qs * *(const float *)(r + 8); break;                                   \
        default: {                                                                                               \
            float xs = *(const float *)(r + 8);                                                                  \
            d = qs + xs - 2 * DOT(query, x, dim) * qs * xs;                                                      \
        }                                                                                                        \
        }                                                                                                        \
        out_dist[i] = d;                                                                                         \
    }                                                                                                            \
    return out;

static long hnsw_expand_generic(const int32_t *links, long count, uint16_t *visited, long visited_cap, uint16_t tag,
                                void *const *chunks, int chunk_shift, long chunk_mask, long record_size,
                                long vector_offset, const float *query, long dim, int kind, float offset, float qs,
                                int32_t *out_slots, float *out_dist) {
    HNSW_EXPAND_BODY(dot_generic, sqdist_generic)
}

#ifdef ENCORE_X86
AVX2 static long hnsw_expand_avx2(const int32_t *links, long count, uint16_t *visited, long visited_cap, uint16_t tag,
                                  void *const *chunks, int chunk_shift, long chunk_mask, long record_size,
                                  long vector_offset, const float *query, long dim, int kind, float offset, float qs,
                                  int32_t *out_slots, float *out_dist) {
    HNSW_EXPAND_BODY(dot_avx2, sqdist_avx2)
}
#endif

long encore_hnsw_expand(const int32_t *links, long count, uint16_t *visited, long visited_cap, uint16_t tag,
                        void *const *chunks, int chunk_shift, long chunk_mask, long record_size, long vector_offset,
                        const float *query, long dim, int kind, float offset, float qs, int32_t *out_slots,
                        float *out_dist) {
#ifdef ENCORE_X86
    if (avx2())
        return hnsw_expand_avx2(links, count, visited, visited_cap, tag, chunks, chunk_shift, chunk_mask, record_size,
                                vector_offset, query, dim, kind, offset, qs, out_slots, out_dist);
#endif
    return hnsw_expand_generic(links, count, visited, visited_cap, tag, chunks, chunk_shift, chunk_mask, record_size,
                               vector_offset, query, dim, kind, offset, qs, out_slots, out_dist);
}

/* As HNSW_EXPAND_BODY over the 8-bit codes: each vector's codes are `stride` contiguous bytes (one cache line for
 * d <= 64); its scale is in the chunk's scale array after the codes. Both are prefetched in the first pass. */
#define HNSW_EXPAND_SQ8_BODY(SQDOT, SQL2)                                                                        \
    long out = 0;                                                                                                \
    if (count <= 0) return 0;                                                                                    \
    long scales_at = (chunk_mask + 1) * stride;                                                                  \
    for (long j = 0; j < count; j++) {                                                                           \
        int32_t slot = __atomic_load_n(links + j, __ATOMIC_ACQUIRE);                                             \
        if (slot < 0 || slot >= visited_cap || visited[slot] == tag) continue;                                   \
        visited[slot] = tag;                                                                                     \
        const char *chunk = (const char *)code_chunks[slot >> chunk_shift];                                      \
        long k = slot & chunk_mask;                                                                              \
        for (long o = 0; o < stride; o += 64) __builtin_prefetch(chunk + k * stride + o, 0, 3);                  \
        __builtin_prefetch(chunk + scales_at + 4 * k, 0, 3);                                                     \
        out_slots[out++] = slot;                                                                                 \
    }                                                                                                            \
    for (long i = 0; i < out; i++) {                                                                             \
        int32_t slot = out_slots[i];                                                                             \
        const char *chunk = (const char *)code_chunks[slot >> chunk_shift];                                      \
        long k = slot & chunk_mask;                                                                              \
        const int8_t *c = (const int8_t *)(chunk + k * stride);                                                  \
        float scale = *(const float *)(chunk + scales_at + 4 * k);                                               \
        out_dist[i] = kind == 0 ? SQL2(q, scale, c, stride) : offset - scale * SQDOT(q, c, stride);              \
    }                                                                                                            \
    return out;

static long hnsw_expand_sq8_generic(const int32_t *links, long count, uint16_t *visited, long visited_cap,
                                    uint16_t tag, void *const *code_chunks, int chunk_shift, long chunk_mask,
                                    long stride, const float *q, int kind, float offset, int32_t *out_slots,
                                    float *out_dist) {
    HNSW_EXPAND_SQ8_BODY(sq8_dot_generic, sq8_l2_generic)
}

#ifdef ENCORE_X86
AVX2 static long hnsw_expand_sq8_avx2(const int32_t *links, long count, uint16_t *visited, long visited_cap,
                                      uint16_t tag, void *const *code_chunks, int chunk_shift, long chunk_mask,
                                      long stride, const float *q, int kind, float offset, int32_t *out_slots,
                                      float *out_dist) {
    HNSW_EXPAND_SQ8_BODY(sq8_dot_avx2, sq8_l2_avx2)
}
#endif

long encore_hnsw_expand_sq8(const int32_t *links, long count, uint16_t *visited, long visited_cap, uint16_t tag,
                            void *const *code_chunks, int chunk_shift, long chunk_mask, long stride, const float *q,
                            int kind, float offset, int32_t *out_slots, float *out_dist) {
#ifdef ENCORE_X86
    if (avx2())
        return hnsw_expand_sq8_avx2(links, count, visited, visited_cap, tag, code_chunks, chunk_shift, chunk_mask,
                                    stride, q, kind, offset, out_slots, out_dist);
#endif
    return hnsw_expand_sq8_generic(links, count, visited, visited_cap, tag, code_chunks, chunk_shift, chunk_mask,
                                   stride, q, kind, offset, out_slots, out_dist);
}
