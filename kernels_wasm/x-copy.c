/* Data movement, dtype-agnostic (element size in bytes): strided row copies (Concat, Slice-like moves),
 * transposes, and fills (large uniform constants are filled at load time instead of shipped). */
#include "common.h"

/* rows x row_bytes block from src (row pitch src_stride bytes) to dst (pitch dst_stride bytes) */
KERNEL void x_copy2d(int rows, int row_bytes, const uint8_t* src, int src_stride, uint8_t* dst, int dst_stride) {
    for (int r = 0; r < rows; r++) __builtin_memcpy(dst + (long)r * dst_stride, src + (long)r * src_stride, (unsigned)row_bytes);
}

/* y = transpose(x): layout = out_dims[6], in_strides[6] (input element strides of each output dim,
 * outermost first, padded with 1-sized dims). */
#define TRANSPOSE_KERNEL(name, T)                                                                        \
    KERNEL void name(const int32_t* layout, const T* x, T* y) {                                        \
        const int32_t *d = layout, *s = layout + 6;                                                      \
        for (int i0 = 0; i0 < d[0]; i0++)                                                                \
            for (int i1 = 0; i1 < d[1]; i1++)                                                            \
                for (int i2 = 0; i2 < d[2]; i2++)                                                        \
                    for (int i3 = 0; i3 < d[3]; i3++)                                                    \
                        for (int i4 = 0; i4 < d[4]; i4++) {                                              \
                            const T* xp = x + (long)i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3] + i4 * s[4]; \
                            int n = d[5], st = s[5];                                                     \
                            for (int i5 = 0; i5 < n; i5++) *y++ = xp[(long)i5 * st];                     \
                        }                                                                                \
    }

TRANSPOSE_KERNEL(x32_transpose, uint32_t)
TRANSPOSE_KERNEL(x64_transpose, uint64_t)
TRANSPOSE_KERNEL(x16_transpose, uint16_t)
TRANSPOSE_KERNEL(x8_transpose, uint8_t)

KERNEL void x32_fill(uint32_t* y, int n, uint32_t bits) {
    v128_t v = wasm_i32x4_splat((int32_t)bits);
    int i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, v);
    for (; i < n; i++) y[i] = bits;
}
