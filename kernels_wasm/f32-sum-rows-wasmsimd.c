/* y[r] = sum of the k contiguous elements of row r (Einsum's summed labels, gathered last). Rows are
 * independent, so threads split them. */
#include "common.h"

KERNEL void f32_sum_rows(int rows, int k, const float* x, float* y) {
    for (int r = 0; r < rows; r++) {
        const float* row = x + (long)r * k;
        int i = 0;
        float s = 0.0f;
        if (k >= 8) {
            v128_t a = VLOAD(row), b = VLOAD(row + 4);
            for (i = 8; i + 8 <= k; i += 8) {
                a = wasm_f32x4_add(a, VLOAD(row + i));
                b = wasm_f32x4_add(b, VLOAD(row + i + 4));
            }
            a = wasm_f32x4_add(a, b);
            s = (wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1)) +
                (wasm_f32x4_extract_lane(a, 2) + wasm_f32x4_extract_lane(a, 3));
        }
        for (; i < k; i++) s += row[i];
        y[r] = s;
    }
}
