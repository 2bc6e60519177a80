/* Index-shaped outputs: OneHot, NonZero, Trilu, ReverseSequence, EyeLike, Range. Data is moved by element
 * size; where a run-time value decides a size the plan fixed at package time (NonZero's count, Range's length,
 * OneHot's depth), the kernel checks it and traps on a mismatch (index.h). */
#include "index.h"

/* OneHot: out[o, d, i] = values[1] if wrap(idx[o, i]) == d else values[0], for d < depth; indices out of
 * [-depth, depth) give an all-off column, and so do float indices that are not whole numbers (onnxruntime
 * and the ONNX reference compare values). idx_kind: 0 int32, 1 int64, 2 float32. When depth_ptr is given
 * (a run-time depth tensor, same kinds), its value must equal `depth`. Splits over outer
 * (idx += inner * idx size, out += depth * inner * sizeof(T) per unit). */
#define ONEHOT_KERNEL(name, T)                                                                                \
    KERNEL void name(int outer, int depth, int inner, const void* idx, int idx_kind, const T* values, T* out,  \
                     const void* depth_ptr, int depth_kind) {                                                 \
        if (depth_ptr && ld_index(depth_ptr, depth_kind, 0) != depth) FAIL();                                 \
        T off = values[0], on = values[1];                                                                    \
        int block = depth * inner;                                                                            \
        for (int o = 0; o < outer; o++) {                                                                     \
            T* y = out + (size_t)o * block;                                                                   \
            for (int e = 0; e < block; e++) y[e] = off;                                                       \
            for (int i = 0; i < inner; i++) {                                                                 \
                int64_t k;                                                                                    \
                if (idx_kind == 2) { /* float: hot where the value equals d exactly */                        \
                    float f = ((const float*)idx)[o * inner + i];                                             \
                    if (f < 0) f += (float)depth;                                                             \
                    if (!(f >= 0 && f < (float)depth) || f != (float)(int32_t)f) continue;                    \
                    k = (int32_t)f;                                                                           \
                } else {                                                                                      \
                    k = ld_index(idx, idx_kind, o * inner + i);                                               \
                    if (k < 0) k += depth;                                                                    \
                }                                                                                             \
                if (k >= 0 && k < depth) y[(size_t)k * inner + i] = on;                                       \
            }                                                                                                 \
        }                                                                                                     \
    }

ONEHOT_KERNEL(x8_onehot, uint8_t)
ONEHOT_KERNEL(x32_onehot, uint32_t)
ONEHOT_KERNEL(x64_onehot, uint64_t)

/* NonZero: out (int64, [rank, expected]) holds the coordinates of the nonzero elements of x in row-major
 * order. The output shape was fixed at package time: another count of nonzeros traps. */
#define NONZERO_KERNEL(name, T)                                                                               \
    KERNEL void name(const T* x, int n, int rank, const int32_t* dims, int expected, int64_t* out) {          \
        int got = 0;                                                                                          \
        for (int e = 0; e < n; e++) got += x[e] != 0;                                                         \
        if (got != expected) FAIL();                                                                          \
        int32_t c[32] = {0};                                                                                  \
        int j = 0;                                                                                            \
        for (int e = 0; e < n; e++) {                                                                         \
            if (x[e] != 0) {                                                                                  \
                for (int r = 0; r < rank; r++) out[(size_t)r * expected + j] = c[r];                          \
                j++;                                                                                          \
            }                                                                                                 \
            for (int r = rank - 1; r >= 0; r--) {                                                             \
                if (++c[r] < dims[r]) break;                                                                  \
                c[r] = 0;                                                                                     \
            }                                                                                                 \
        }                                                                                                     \
    }

NONZERO_KERNEL(x8_nonzero, uint8_t)
NONZERO_KERNEL(x32_nonzero, uint32_t)
NONZERO_KERNEL(x64_nonzero, uint64_t)
NONZERO_KERNEL(f32_nonzero, float) /* -0.0 is zero */

/* Trilu over rows u = b * rows + i of [batch, rows, cols] matrices (row_bytes = cols * elem_bytes): upper
 * keeps columns j >= i + k, lower keeps j <= i + k, the rest is zero. k is `k`, or the int64 at k_ptr when
 * given (a run-time k). */
KERNEL void x_trilu(int first, int count, int rows, int cols, int elem_bytes, int k, const int64_t* k_ptr, int upper,
                    const uint8_t* x, uint8_t* y) {
    int64_t kk = k_ptr ? *k_ptr : k;
    kk = kk < -(1 << 30) ? -(1 << 30) : kk > (1 << 30) ? (1 << 30) : kk;
    size_t rb = (size_t)cols * elem_bytes;
    for (int u = first; u < first + count; u++) {
        int64_t edge = (u % rows) + kk + (upper ? 0 : 1); /* columns < edge: zero (upper) / kept (lower) */
        int c = edge < 0 ? 0 : edge > cols ? cols : (int)edge;
        size_t cb = (size_t)c * elem_bytes;
        const uint8_t* src = x + (size_t)u * rb;
        uint8_t* dst = y + (size_t)u * rb;
        if (upper) {
            __builtin_memset(dst, 0, cb);
            __builtin_memcpy(dst + cb, src + cb, rb - cb);
        } else {
            __builtin_memcpy(dst, src, cb);
            __builtin_memset(dst + cb, 0, rb - cb);
        }
    }
}

/* ReverseSequence: for batch b with length L = lens[b] (0 <= L <= steps, else trap), time step t < L of y is
 * step L-1-t of x, later steps are copied. Rows of row_bytes at x + t * t_stride + b * b_stride (bytes).
 * Splits over batches (lens += lens size, x and y += b_stride per unit). */
KERNEL void x_reverse_sequence(int batches, int steps, int row_bytes, int t_stride, int b_stride, const void* lens,
                               int lens64, const uint8_t* x, uint8_t* y) {
    for (int b = 0; b < batches; b++) {
        int64_t len = ld_index(lens, lens64, b);
        if (len < 0 || len > steps) FAIL();
        const uint8_t* xb = x + (size_t)b * b_stride;
        uint8_t* yb = y + (size_t)b * b_stride;
        for (int t = 0; t < steps; t++) {
            int from = t < len ? (int)len - 1 - t : t;
            __builtin_memcpy(yb + (size_t)t * t_stride, xb + (size_t)from * t_stride, (size_t)row_bytes);
        }
    }
}

/* EyeLike rows u of a [rows, cols] matrix: zeros, and `one` (the elem_bytes low bytes of one_lo, one_hi) at
 * column u + k. */
KERNEL void x_eyelike(int first, int count, int cols, int k, int elem_bytes, uint32_t one_lo, uint32_t one_hi,
                      uint8_t* y) {
    uint64_t one = ((uint64_t)one_hi << 32) | one_lo;
    size_t rb = (size_t)cols * elem_bytes;
    for (int u = first; u < first + count; u++) {
        uint8_t* row = y + (size_t)u * rb;
        __builtin_memset(row, 0, rb);
        int64_t j = (int64_t)u + k;
        if (j >= 0 && j < cols) __builtin_memcpy(row + (size_t)j * elem_bytes, &one, (size_t)elem_bytes);
    }
}

/* Range: y[i] = start + i * delta for i in [first, first + count) of `total`; the length the scalars give,
 * max(ceil((limit - start) / delta), 0), must be `total` (the planned output length) or the kernel traps. */
KERNEL void f32_range(int first, int count, const float* start, const float* limit, const float* delta, int total,
                      float* y) {
    float s = *start, d = *delta;
    double n = __builtin_ceil((double)(*limit - s) / (double)d); /* as onnxruntime counts */
    if (!(n > 0)) n = 0;
    if (d == 0 || n != (double)total) FAIL();
    for (int i = first; i < first + count; i++) y[i] = s + (float)i * d;
}

/* exact: ceil(|limit - start| / |delta|) in the unsigned type of the same width (no overflow), 0 when the
 * signs disagree */
#define INT_RANGE_KERNEL(name, T, U)                                                                          \
    KERNEL void name(int first, int count, const T* start, const T* limit, const T* delta, int total, T* y) {  \
        T s = *start, l = *limit, d = *delta;                                                                 \
        if (d == 0) FAIL();                                                                                   \
        U n = 0;                                                                                              \
        if (d > 0 ? l > s : l < s) {                                                                          \
            U span = d > 0 ? (U)l - (U)s : (U)s - (U)l, step = d > 0 ? (U)d : (U)0 - (U)d;                    \
            n = span / step + (span % step != 0);                                                             \
        }                                                                                                     \
        if (n != (U)total) FAIL();                                                                            \
        for (int i = first; i < first + count; i++) y[i] = (T)((U)s + (U)i * (U)d);                          \
    }

INT_RANGE_KERNEL(i32_range, int32_t, uint32_t)
INT_RANGE_KERNEL(i64_range, int64_t, uint64_t)
