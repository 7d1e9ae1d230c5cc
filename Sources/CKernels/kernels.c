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

/* ---- run-time dispatch ---------------------------------------------------------------------------------------- */

static int use_avx2 = -1;

static int detect(void) {
#ifdef ENCORE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static inline int avx2(void) {
    if (__builtin_expect(use_avx2 < 0, 0)) use_avx2 = detect();
    return use_avx2;
}

int encore_kernels_use_avx2(void) { return avx2(); }

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

void encore_cg_update(float *x, long f, const float *gram, const float *y, const int32_t *cols, const float *vals,
                      long count, int steps, float *r, float *p, float *ap) {
#ifdef ENCORE_X86
    if (avx2()) {
        cg_avx2(x, f, gram, y, cols, vals, count, steps, r, p, ap);
        return;
    }
#endif
    cg_generic(x, f, gram, y, cols, vals, count, steps, r, p, ap);
}

/* ---- sparse (CSR) x dense rows ------------------------------------------------------------------------------ */

static void spmm_row_generic(const int32_t *idx, const float *val, long nnz, const float *x, float *y, long l) {
    for (long j = 0; j < l; j++) y[j] = 0;
    for (long p = 0; p < nnz; p++) axpy_generic(val[p], x + (long)idx[p] * l, y, l);
}

#ifdef ENCORE_X86
/* The row's output stays in registers: 32 columns at a time over all of the row's entries, then 8, then a masked
 * tail. The first pass prefetches the whole x row of the entry 8 ahead, so the later passes read from cache. */
AVX2 static void spmm_row_avx2(const int32_t *idx, const float *val, long nnz, const float *x, float *y, long l) {
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
