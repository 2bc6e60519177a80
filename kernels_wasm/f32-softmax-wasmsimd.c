/* Softmax over the middle axis of a [outer, axis, inner] view: y = exp(x - max) / sum(exp(x - max)).
 * inner == 1 (the usual last-axis case) runs 4-wide along the axis. */
#include "vmath.h"

/* one row of the usual last-axis case, 4 wide: max, exp and sum, scale */
INLINE void softmax_row(int n, const float* x, float* y) {
    int i = 0;
    v128_t vmax = VSPLAT(-__builtin_inff());
    for (; i + 4 <= n; i += 4) vmax = wasm_f32x4_pmax(vmax, VLOAD(x + i));
    float lanes[4];
    VSTORE(lanes, vmax);
    float m = lanes[0];
    for (int l = 1; l < 4; l++) m = lanes[l] > m ? lanes[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    v128_t vm = VSPLAT(m), acc = VSPLAT(0.0f);
    for (i = 0; i + 4 <= n; i += 4) {
        v128_t e = v_exp(wasm_f32x4_sub(VLOAD(x + i), vm));
        VSTORE(y + i, e);
        acc = wasm_f32x4_add(acc, e);
    }
    float s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) + wasm_f32x4_extract_lane(acc, 2) +
              wasm_f32x4_extract_lane(acc, 3);
    for (; i < n; i++) {
        float e = s_exp(x[i] - m);
        y[i] = e;
        s += e;
    }
    float r = 1.0f / s;
    v128_t vr = VSPLAT(r);
    for (i = 0; i + 4 <= n; i += 4) VSTORE(y + i, wasm_f32x4_mul(VLOAD(y + i), vr));
    for (; i < n; i++) y[i] *= r;
}

/* Rows (outer) are independent: threads split them. */
KERNEL void f32_softmax(int outer, int axis, int inner, const float* x, float* y) {
    if (inner == 1) {
        for (int o = 0; o < outer; o++) softmax_row(axis, x + (long)o * axis, y + (long)o * axis);
        return;
    }
    for (int o = 0; o < outer; o++) {
        for (int in = 0; in < inner; in++) {
            const float* xs = x + (long)o * axis * inner + in;
            float* ys = y + (long)o * axis * inner + in;
            float m = -__builtin_inff();
            for (int i = 0; i < axis; i++) m = xs[i * inner] > m ? xs[i * inner] : m;
            float s = 0.0f;
            for (int i = 0; i < axis; i++) {
                float e = s_exp(xs[i * inner] - m);
                ys[i * inner] = e;
                s += e;
            }
            float r = 1.0f / s;
            for (int i = 0; i < axis; i++) ys[i * inner] *= r;
        }
    }
}
