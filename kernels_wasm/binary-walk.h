/* Broadcast walks for elementwise kernels of any dtype (wasm_runtime/ops/binary.py).
 *
 * A layout block (wasm_runtime/ops/layout.py broadcast_layout) is int32 dims[6], then one strides[6] per
 * input (element strides, 0 where the input is broadcast), outermost first, for a contiguous output.
 * Walking kernels take (layout, start, count, inputs..., y) and compute output elements [start, start +
 * count) into y, which points at element `start`: one call splits into independent chunks by element
 * range (the plan gives start a delta of 1 and y a delta of its element size per unit).
 *
 * The innermost dim runs in a row function; the stride patterns that occur after folding (contiguous,
 * broadcast scalar) get loops with constant strides, which clang vectorizes for the integer and bool
 * types. Float ops that must round like the SIMD kernels use explicit SIMD rows instead (F32_VROW). */
#pragma once
#include "common.h"

/* the multi-index of flat element `start` */
INLINE void walk_init(const int32_t* d, int start, int* idx) {
    for (int k = 5; k >= 0; k--) {
        idx[k] = start % d[k];
        start /= d[k];
    }
}

INLINE long walk_offset(const int32_t* s, const int* idx) {
    long o = 0;
    for (int k = 0; k < 6; k++) o += (long)idx[k] * s[k];
    return o;
}

/* to the start of the next innermost run */
INLINE void walk_next_row(const int32_t* d, int* idx) {
    idx[5] = 0;
    for (int k = 4; k >= 0; k--) {
        if (++idx[k] < d[k]) return;
        idx[k] = 0;
    }
}

/* row function: y[i] = OP(a[i * sa], b[i * sb]) for i < n */
#define WALK2_ROW(row, TA, TB, TY, OP)                                                                  \
    static void row(const TA* a, int sa, const TB* b, int sb, TY* y, int n) {                         \
        if (sa == 1 && sb == 1) {                                                                      \
            for (int i = 0; i < n; i++) y[i] = OP(a[i], b[i]);                                         \
        } else if (sa == 1 && sb == 0) {                                                               \
            TB bv = *b;                                                                                \
            for (int i = 0; i < n; i++) y[i] = OP(a[i], bv);                                           \
        } else if (sa == 0 && sb == 1) {                                                               \
            TA av = *a;                                                                                \
            for (int i = 0; i < n; i++) y[i] = OP(av, b[i]);                                           \
        } else {                                                                                       \
            for (int i = 0; i < n; i++) y[i] = OP(a[(long)i * sa], b[(long)i * sb]);                  \
        }                                                                                              \
    }

/* the exported walk over a two-input layout, calling `row` per innermost run */
#define WALK2_EXPORT(name, TA, TB, TY, row)                                                             \
    KERNEL void name(const int32_t* layout, int start, int count, const TA* a, const TB* b, TY* y) {  \
        const int32_t *d = layout, *as = layout + 6, *bs = layout + 12;                               \
        int idx[6];                                                                                    \
        walk_init(d, start, idx);                                                                      \
        while (count > 0) {                                                                            \
            int n = imin(d[5] - idx[5], count);                                                        \
            row(a + walk_offset(as, idx), as[5], b + walk_offset(bs, idx), bs[5], y, n);               \
            y += n;                                                                                    \
            count -= n;                                                                                \
            walk_next_row(d, idx);                                                                     \
        }                                                                                              \
    }

/* float rows through a 4-lane op, the scalar tail through lane 0 of the same op (identical rounding) */
#define F32_VROW(row, VOP)                                                                              \
    static void row(const float* a, int sa, const float* b, int sb, float* y, int n) {                \
        int i = 0;                                                                                     \
        if (sa == 1 && sb == 1) {                                                                      \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, VOP(VLOAD(a + i), VLOAD(b + i)));                 \
        } else if (sa == 1 && sb == 0) {                                                               \
            v128_t vb = VSPLAT(*b);                                                                    \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, VOP(VLOAD(a + i), vb));                           \
        } else if (sa == 0 && sb == 1) {                                                               \
            v128_t va = VSPLAT(*a);                                                                    \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, VOP(va, VLOAD(b + i)));                           \
        }                                                                                              \
        for (; i < n; i++)                                                                             \
            y[i] = wasm_f32x4_extract_lane(VOP(VSPLAT(a[(long)i * sa]), VSPLAT(b[(long)i * sb])), 0);  \
    }
