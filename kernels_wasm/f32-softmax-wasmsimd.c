/* Softmax over the middle axis of a [outer, axis, inner] view: y = exp(x - max) / sum(exp(x - max)).
 * inner == 1 (the usual last-axis case) runs 4-wide along the axis. */
#include "common.h"

KERNEL void f32_softmax(int outer, int axis, int inner, const float* x, float* y) {
    for (int o = 0; o < outer; o++) {
        for (int in = 0; in < inner; in++) {
            const float* xs = x + (long)o * axis * inner + in;
            float* ys = y + (long)o * axis * inner + in;
            float m = -__builtin_inff();
            for (int i = 0; i < axis; i++) m = xs[i * inner] > m ? xs[i * inner] : m;
            float s = 0.0f;
            int i = 0;
            if (inner == 1) {
                v128_t vm = VSPLAT(m), acc = VSPLAT(0.0f);
                for (; i + 4 <= axis; i += 4) {
                    v128_t e = v_exp(wasm_f32x4_sub(VLOAD(xs + i), vm));
                    VSTORE(ys + i, e);
                    acc = wasm_f32x4_add(acc, e);
                }
                s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) +
                    wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
            }
            for (; i < axis; i++) {
                float e = s_exp(xs[i * inner] - m);
                ys[i * inner] = e;
                s += e;
            }
            float r = 1.0f / s;
            for (i = 0; i < axis; i++) ys[i * inner] *= r;
        }
    }
}
