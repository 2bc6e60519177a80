/* MatMulInteger: C[i, j] = sum_k (A[i, k] - za[i]) * (B[k, j] - zb[j]) in int32, A and B 8-bit (uint8 or
 * int8, by `flags`: bit 0 A signed, bit 1 B signed), zero points of the same types.
 *
 * Work is counted in output rows of all `batch` products together (unit u = b * M + i) so threads can split
 * any shape. Product b reads A + b * stride_a, B + b * stride_b (element strides, 0 broadcasts); zero points
 * are optional (null: 0) and indexed za[b * za_batch + i * za_row], zb[b * zb_batch + j * zb_col].
 * Per row, 8 columns at a time: B's bytes widen to int16 and lose their zero points, the row value
 * (A - za, at most 255 in magnitude) multiplies them into two int32x4 accumulators. */
#include "common.h"

INLINE int load8(const uint8_t* p, int is_signed) { return is_signed ? (int)(int8_t)*p : (int)*p; }

INLINE v128_t widen8(const uint8_t* p, int is_signed) {
    v128_t v = wasm_v128_load64_zero(p);
    return is_signed ? wasm_i16x8_extend_low_i8x16(v) : wasm_u16x8_extend_low_u8x16(v);
}

KERNEL void x8_matmul_integer(int first, int count, int M, int N, int K, int flags, const uint8_t* A, int stride_a,
                              const uint8_t* za, int za_row, int za_batch, const uint8_t* B, int stride_b,
                              const uint8_t* zb, int zb_col, int zb_batch, int32_t* C) {
    const int a_signed = flags & 1, b_signed = (flags >> 1) & 1;
    for (int u = first; u < first + count; u++) {
        const int b = u / M, i = u - b * M;
        const uint8_t* a = A + (long)b * stride_a + (long)i * K;
        const uint8_t* bm = B + (long)b * stride_b;
        const int az = za ? load8(za + (long)b * za_batch + (long)i * za_row, a_signed) : 0;
        const uint8_t* zbp = zb ? zb + (long)b * zb_batch : 0;
        int32_t* c = C + (long)u * N;
        int j = 0;
        for (; j + 8 <= N; j += 8) {
            v128_t zbv = wasm_i16x8_splat(0);
            if (zbp) {
                if (zb_col == 0) {
                    zbv = wasm_i16x8_splat((int16_t)load8(zbp, b_signed));
                } else {
                    int16_t z[8];
                    for (int t = 0; t < 8; t++) z[t] = (int16_t)load8(zbp + (long)(j + t) * zb_col, b_signed);
                    zbv = wasm_v128_load(z);
                }
            }
            v128_t lo = wasm_i32x4_splat(0), hi = wasm_i32x4_splat(0);
            for (int k = 0; k < K; k++) {
                int av = load8(a + k, a_signed) - az;
                if (av == 0) continue;
                v128_t bv = wasm_i16x8_sub(widen8(bm + (long)k * N + j, b_signed), zbv);
                v128_t as = wasm_i16x8_splat((int16_t)av);
                lo = wasm_i32x4_add(lo, wasm_i32x4_extmul_low_i16x8(as, bv));
                hi = wasm_i32x4_add(hi, wasm_i32x4_extmul_high_i16x8(as, bv));
            }
            wasm_v128_store(c + j, lo);
            wasm_v128_store(c + j + 4, hi);
        }
        for (; j < N; j++) {
            const int bz = zbp ? load8(zbp + (long)j * zb_col, b_signed) : 0;
            int32_t s = 0;
            for (int k = 0; k < K; k++) s += (load8(a + k, a_signed) - az) * (load8(bm + (long)k * N + j, b_signed) - bz);
            c[j] = s;
        }
    }
}
