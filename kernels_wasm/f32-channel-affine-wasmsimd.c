/* y[n, c, p] = x[n, c, p] * scale[c] + shift[c]: inference BatchNormalization after the package step
 * folded (gamma, beta, mean, var, epsilon) into one scale and shift per channel. */
#include "common.h"

KERNEL void f32_channel_affine(int N, int C, int HW, const float* x, const float* scale, const float* shift, float* y) {
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++, x += HW, y += HW) {
            v128_t s = VSPLAT(scale[c]), t = VSPLAT(shift[c]);
            int p = 0;
            for (; p + 4 <= HW; p += 4) VSTORE(y + p, VMADD(VLOAD(x + p), s, t));
            for (; p < HW; p++) y[p] = x[p] * scale[c] + shift[c];
        }
    }
}
