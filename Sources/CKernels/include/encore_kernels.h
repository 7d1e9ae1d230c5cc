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

/* One conjugate-gradient update of an implicit-ALS vector x (length f) in place, warm-started from x:
 * solves (gram + sum_i (|c_i| - 1) y_i y_i^T) x = sum_{c_i > 0} c_i y_i approximately with `steps` CG steps.
 * gram is f x f row-major (Y^T Y + lambda I); y is the fixed factors, row-major with f columns; cols/vals are
 * the observed indices and confidences (count of them). r, p, ap are scratch vectors of length f. */
void encore_cg_update(float *x, long f, const float *gram, const float *y, const int32_t *cols, const float *vals,
                      long count, int steps, float *r, float *p, float *ap);

/* encore_cg_update with the kernels of at most level `level` (see encore_kernels_level), for tests that compare the
 * versions. */
void encore_cg_update_at(int level, float *x, long f, const float *gram, const float *y, const int32_t *cols,
                         const float *vals, long count, int steps, float *r, float *p, float *ap);

/* Rows row_begin..<row_end of y = A x, A sparse in CSR (indptr, indices, values), x and y dense row-major with l
 * columns: y[r, :] = sum over p in indptr[r]..<indptr[r+1] of values[p] * x[indices[p], :]. Rows are overwritten. */
void encore_spmm_rows(const long *indptr, const int32_t *indices, const float *values, const float *x, float *y,
                      long l, long row_begin, long row_end);

/* The transposed product from A's own rows: y[c, :] += values[p] * x[r, :] for every entry p (column c) of rows
 * row_begin..<row_end of the CSR matrix A whose column is in col_begin..<col_end (column indices sorted within each
 * row). x has A's rows, y A's columns, both row-major with l columns; y is accumulated into, not cleared. Threads
 * that take disjoint column ranges write disjoint rows of y. */
void encore_spmm_t_rows(const long *indptr, const int32_t *indices, const float *values, const float *x, float *y,
                        long l, long row_begin, long row_end, int32_t col_begin, int32_t col_end);

/* Rows row_begin..<row_end of the rows x cols row-major src written transposed into dst (cols x rows, row-major):
 * dst[j * rows + i] = src[i * cols + j], in cache-sized tiles. Threads may take disjoint row ranges. */
void encore_transpose_rows(const float *src, long rows, long cols, float *dst, long row_begin, long row_end);

/* 1 when the AVX2+FMA versions are in use. */
int encore_kernels_use_avx2(void);

/* The kernels in use: 0 portable, 1 AVX2+FMA loops, 2 AVX2+FMA with the CG update's accumulators in registers
 * (f a multiple of 8 up to 64, or 80, 96, 128; other f use level 1). The environment variable
 * ENCORE_KERNEL_LEVEL, read once, lowers it (for benchmarks that compare the versions). */
int encore_kernels_level(void);

/* The best level this CPU supports (what encore_kernels_level gives unless ENCORE_KERNEL_LEVEL lowers it). */
int encore_kernels_best_level(void);

/* One step of an HNSW best-first search: for each slot in links[0..<count] (read with acquire loads) whose visit tag
 * is not `tag` (slots at or past visited_cap count as visited), marks it visited and computes its distance to
 * `query`; writes those slots and distances to out_slots / out_dist and returns how many. Prefetches the next
 * slot's vector and visit tag while computing the current one.
 * Storage: slot s's record is chunks[s >> chunk_shift] + (s & chunk_mask) * record_size; its vector (dim floats) is
 * at vector_offset, its extra scalar x_s (a float) at byte 8.
 * kind: 0 squared L2; 1 offset - q.x; 2 -q.x - qs * x_s (norm-augmented); 3 qs + x_s - 2 (q.x) qs x_s (Moebius). */
long encore_hnsw_expand(const int32_t *links, long count, uint16_t *visited, long visited_cap, uint16_t tag,
                        void *const *chunks, int chunk_shift, long chunk_mask, long record_size, long vector_offset,
                        const float *query, long dim, int kind, float offset, float qs, int32_t *out_slots,
                        float *out_dist);

/* ---- 8-bit scalar quantization (HNSW first-pass distances) ----------------------------------------------------
 * A vector x of dimension d is stored as `stride` signed bytes c (d <= stride, stride a multiple of 16, the bytes past
 * d zero) and one scale s: x_i ~ s c_i (s = max_i |x_i| / 127). The query q is padded with zeros to `stride`. */

/* sum_i q[i] * codes[i] over i < stride (so q.x ~ s times it). */
float encore_sq8_dot(const float *q, const int8_t *codes, long stride);

/* sum_i (q[i] - s * codes[i])^2 over i < stride (so |q - x|^2 ~ it). */
float encore_sq8_l2(const float *q, float s, const int8_t *codes, long stride);

/* The two kernels above with the versions of at most kernel level `level` (0 portable, 1 or more AVX2+FMA), for tests
 * that compare them. */
float encore_sq8_dot_at(int level, const float *q, const int8_t *codes, long stride);
float encore_sq8_l2_at(int level, const float *q, float s, const int8_t *codes, long stride);

/* encore_hnsw_expand over 8-bit codes: for each unvisited slot in links[0..<count] (as encore_hnsw_expand), marks it
 * visited and computes its quantized distance. Slot s's codes are at code_chunks[s >> chunk_shift] + (s & chunk_mask)
 * * stride, its scale (a float) at code_chunks[s >> chunk_shift] + (chunk_mask + 1) * stride + 4 (s & chunk_mask).
 * kind 0: encore_sq8_l2(q, scale, codes); kind 1: offset - scale * encore_sq8_dot(q, codes). */
long encore_hnsw_expand_sq8(const int32_t *links, long count, uint16_t *visited, long visited_cap, uint16_t tag,
                            void *const *code_chunks, int chunk_shift, long chunk_mask, long stride, const float *q,
                            int kind, float offset, int32_t *out_slots, float *out_dist);

/* ---- HNSW helpers ------------------------------------------------------------------------------------------------
 * Small atomics, a spin lock and a prefetch for the HNSW index's lock-free readers. They are `static inline` so Swift
 * inlines them into its loops (on x86-64 an acquire load and a release store are plain moves); being C atomics, the
 * thread sanitizer sees the synchronisation they create. */

static inline int32_t encore_load_acquire_i32(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int32_t encore_load_relaxed_i32(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void encore_store_release_i32(int32_t *p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int32_t encore_fetch_or_i32(int32_t *p, int32_t v) { return __atomic_fetch_or(p, v, __ATOMIC_ACQ_REL); }
static inline int64_t encore_load_acquire_i64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int64_t encore_load_seqcst_i64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void encore_store_release_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void encore_store_seqcst_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int64_t encore_fetch_add_i64(int64_t *p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

/* Prefetches the cache line holding `p` for reading. */
static inline void encore_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* A test-and-test-and-set spin lock on one int32 (0 free, 1 held), for locks held a few hundred nanoseconds. It
 * yields the CPU after a short spin so a preempted holder is not starved on a machine with few cores. */
void encore_spin_yield(void);

/* Memory for large, randomly accessed tables (the HNSW index's record chunks): `bytes` zeroed, aligned to 2 MiB when
 * `bytes` is at least 2 MiB, and marked for transparent huge pages (madvise MADV_HUGEPAGE, a hint the kernel may
 * ignore), so that random reads over hundreds of megabytes miss the TLB far less often. NULL when out of memory.
 * Free with encore_free_table (same `bytes`). */
void *encore_alloc_table(long bytes);
void encore_free_table(void *p, long bytes);
static inline void encore_spin_lock(int32_t *l) {
    for (int spins = 0;; spins++) {
        if (__atomic_load_n(l, __ATOMIC_RELAXED) == 0 && __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0) return;
        if (spins >= 64) encore_spin_yield();
#if defined(__x86_64__) || defined(__i386__)
        else __builtin_ia32_pause();
#endif
    }
}
static inline void encore_spin_unlock(int32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

#endif
