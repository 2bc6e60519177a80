/* Elementwise binary ops with numpy broadcasting. The planner folds the broadcast into at most 6 dims
 * and passes a layout block of int32: dims[6], a_strides[6], b_strides[6] (element strides, 0 where an
 * input is broadcast), outermost first, for a contiguous output. The innermost dim gets a 4-wide loop
 * for the three stride patterns that occur after folding: both contiguous, b broadcast, a broadcast. */
#include "common.h"

#define BINARY_KERNEL(name, OP)                                                                        \
    INLINE v128_t name##_v(v128_t a, v128_t b) { return OP(a, b); }                                   \
    INLINE float name##_s(float a, float b) { return wasm_f32x4_extract_lane(OP(VSPLAT(a), VSPLAT(b)), 0); } \
    static void name##_inner(const float* a, int sa, const float* b, int sb, float* y, int n) {       \
        int i = 0;                                                                                     \
        if (sa == 1 && sb == 1) {                                                                      \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, name##_v(VLOAD(a + i), VLOAD(b + i)));            \
        } else if (sa == 1 && sb == 0) {                                                               \
            v128_t vb = VSPLAT(*b);                                                                    \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, name##_v(VLOAD(a + i), vb));                      \
        } else if (sa == 0 && sb == 1) {                                                               \
            v128_t va = VSPLAT(*a);                                                                    \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, name##_v(va, VLOAD(b + i)));                      \
        }                                                                                              \
        for (; i < n; i++) y[i] = name##_s(a[i * sa], b[i * sb]);                                      \
    }                                                                                                  \
    KERNEL void name(const int32_t* layout, const float* a, const float* b, float* y) {                \
        const int32_t *d = layout, *as = layout + 6, *bs = layout + 12;                                \
        for (int i0 = 0; i0 < d[0]; i0++)                                                              \
            for (int i1 = 0; i1 < d[1]; i1++)                                                          \
                for (int i2 = 0; i2 < d[2]; i2++)                                                      \
                    for (int i3 = 0; i3 < d[3]; i3++)                                                  \
                        for (int i4 = 0; i4 < d[4]; i4++) {                                            \
                            long ao = (long)i0 * as[0] + i1 * as[1] + i2 * as[2] + i3 * as[3] + i4 * as[4]; \
                            long bo = (long)i0 * bs[0] + i1 * bs[1] + i2 * bs[2] + i3 * bs[3] + i4 * bs[4]; \
                            name##_inner(a + ao, as[5], b + bo, bs[5], y, d[5]);                       \
                            y += d[5];                                                                 \
                        }                                                                              \
    }

BINARY_KERNEL(f32_add, wasm_f32x4_add)
BINARY_KERNEL(f32_sub, wasm_f32x4_sub)
BINARY_KERNEL(f32_mul, wasm_f32x4_mul)
BINARY_KERNEL(f32_div, wasm_f32x4_div)
