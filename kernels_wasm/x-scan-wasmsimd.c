/* CumSum and TopK along one axis of an [outer, n, inner] view, for float32, int32 and int64.
 *
 * As in f32-argreduce-wasmsimd.c, `inner` columns are processed and `pitch` is the tensor's inner size:
 * element (o, r, i) is at x[(o * n + r) * pitch + i]. */
#include "common.h"

enum { CUM_EXCLUSIVE = 1, CUM_REVERSE = 2 };

/* y[r] = y[r-1] + x[r] (exclusive: y[r] = y[r-1] + x[r-1], y[0] = 0), r running backwards when reversed:
 * the sequential order of every other runtime, vectorized across the columns. Integers wrap. */
#define CUMSUM_KERNEL(name, T, VL, VADD)                                                                   \
    KERNEL void name(int outer, int n, int inner, int pitch, int flags, const T* x, T* y) {                \
        int excl = flags & CUM_EXCLUSIVE, rev = flags & CUM_REVERSE;                                       \
        for (int o = 0; o < outer; o++) {                                                                  \
            const T* xo = x + (long)o * n * pitch;                                                         \
            T* yo = y + (long)o * n * pitch;                                                               \
            for (int t = 0; t < n; t++) {                                                                  \
                int r = rev ? n - 1 - t : t, prev = rev ? r + 1 : r - 1;                                   \
                T* yr = yo + (long)r * pitch;                                                              \
                const T* xs = xo + (long)(excl ? prev : r) * pitch;                                        \
                const T* yp = yo + (long)prev * pitch;                                                     \
                int i = 0;                                                                                 \
                if (t == 0) {                                                                              \
                    for (; i < inner; i++) yr[i] = excl ? (T)0 : xs[i];                                    \
                    continue;                                                                              \
                }                                                                                          \
                for (; i + VL <= inner; i += VL) wasm_v128_store(yr + i, VADD(wasm_v128_load(yp + i), wasm_v128_load(xs + i))); \
                for (; i < inner; i++) yr[i] = yp[i] + xs[i];                                              \
            }                                                                                              \
        }                                                                                                  \
    }

CUMSUM_KERNEL(f32_cumsum, float, 4, wasm_f32x4_add)
CUMSUM_KERNEL(i32_cumsum, uint32_t, 4, wasm_i32x4_add)
CUMSUM_KERNEL(i64_cumsum, uint64_t, 2, wasm_i64x2_add)

/* the axis read at run time (a scalar, int32 or int64, negative counting from the end); dims: the shape */
INLINE void cumsum_axis(const int32_t* dims, int rank, const void* axis, int axis_i64, int* outer, int* n, int* inner) {
    long a = axis_i64 ? (long)*(const int64_t*)axis : (long)*(const int32_t*)axis;
    if (a < 0) a += rank;
    if (a < 0 || a >= rank) __builtin_trap();
    *outer = *inner = 1;
    for (int d = 0; d < rank; d++) {
        if (d < a) *outer *= dims[d];
        if (d > a) *inner *= dims[d];
    }
    *n = dims[a];
}

#define CUMSUM_DYN_KERNEL(name, base, T)                                                                   \
    KERNEL void name(const int32_t* dims, int rank, const void* axis, int axis_i64, int flags, const T* x, T* y) { \
        int outer, n, inner;                                                                               \
        cumsum_axis(dims, rank, axis, axis_i64, &outer, &n, &inner);                                       \
        base(outer, n, inner, inner, flags, x, y);                                                         \
    }

CUMSUM_DYN_KERNEL(f32_cumsum_dyn, f32_cumsum, float)
CUMSUM_DYN_KERNEL(i32_cumsum_dyn, i32_cumsum, uint32_t)
CUMSUM_DYN_KERNEL(i64_cumsum_dyn, i64_cumsum, uint64_t)

/* TopK: the k largest (smallest) of each column along the axis, best first; equal values keep the lower
 * index first. A binary heap of the k best so far, its root the worst of them, lives in the outputs
 * themselves (strided by pitch) and is heap-sorted at the end: O(n log k) per column, no workspace. */
#define TOPK_KERNEL(name, T)                                                                               \
    static inline int name##_better(int largest, T va, int64_t ia, T vb, int64_t ib) {                     \
        if (va == vb) return ia < ib;                                                                      \
        return largest ? va > vb : va < vb;                                                                \
    }                                                                                                      \
    static void name##_sift_down(int largest, T* hv, int64_t* hi, long pitch, int j, int m) {              \
        for (;;) {                                                                                         \
            int w = 2 * j + 1;                                                                             \
            if (w >= m) return;                                                                            \
            if (w + 1 < m && name##_better(largest, hv[w * pitch], hi[w * pitch], hv[(w + 1) * pitch], hi[(w + 1) * pitch])) w++; \
            if (!name##_better(largest, hv[j * pitch], hi[j * pitch], hv[w * pitch], hi[w * pitch])) return; \
            T tv = hv[j * pitch];                                                                          \
            int64_t ti = hi[j * pitch];                                                                    \
            hv[j * pitch] = hv[w * pitch], hi[j * pitch] = hi[w * pitch];                                  \
            hv[w * pitch] = tv, hi[w * pitch] = ti;                                                        \
            j = w;                                                                                         \
        }                                                                                                  \
    }                                                                                                      \
    KERNEL void name(int outer, int n, int k, int inner, int pitch, int largest, const T* x, T* yv, int64_t* yi) { \
        long p = pitch;                                                                                    \
        for (int o = 0; o < outer; o++)                                                                    \
            for (int i = 0; i < inner; i++) {                                                              \
                const T* xs = x + (long)o * n * p + i;                                                     \
                T* hv = yv + (long)o * k * p + i;                                                          \
                int64_t* hi = yi + (long)o * k * p + i;                                                    \
                for (int r = 0; r < n; r++) {                                                              \
                    T v = xs[r * p];                                                                       \
                    if (r < k) { /* insert at the end, sift up */                                          \
                        int j = r;                                                                         \
                        while (j > 0) {                                                                    \
                            int q = (j - 1) / 2;                                                           \
                            if (!name##_better(largest, hv[q * p], hi[q * p], v, r)) break;                \
                            hv[j * p] = hv[q * p], hi[j * p] = hi[q * p];                                  \
                            j = q;                                                                         \
                        }                                                                                  \
                        hv[j * p] = v, hi[j * p] = r;                                                      \
                    } else if (name##_better(largest, v, r, hv[0], hi[0])) {                               \
                        hv[0] = v, hi[0] = r;                                                              \
                        name##_sift_down(largest, hv, hi, p, 0, k);                                        \
                    }                                                                                      \
                }                                                                                          \
                for (int end = k - 1; end > 0; end--) { /* the worst left goes to the back */              \
                    T tv = hv[0];                                                                          \
                    int64_t ti = hi[0];                                                                    \
                    hv[0] = hv[end * p], hi[0] = hi[end * p];                                              \
                    hv[end * p] = tv, hi[end * p] = ti;                                                    \
                    name##_sift_down(largest, hv, hi, p, 0, end);                                          \
                }                                                                                          \
            }                                                                                              \
    }

TOPK_KERNEL(f32_topk, float)
TOPK_KERNEL(i32_topk, int32_t)
TOPK_KERNEL(i64_topk, int64_t)
