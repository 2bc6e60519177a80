/* Local response normalization across channels (ONNX LRN):
 * y = x / (bias + alpha / size * sum_{c' in window(c)} x[c']^2) ^ beta,
 * window(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C). */
#include "vmath.h"

KERNEL void f32_lrn(int N, int C, int HW, int size, float alpha, float beta, float bias, const float* x, float* y) {
    int lo = (size - 1) / 2, hi = size - 1 - lo;
    float a = alpha / (float)size;
    for (int n = 0; n < N; n++) {
        const float* xn = x + (long)n * C * HW;
        float* yn = y + (long)n * C * HW;
        for (int c = 0; c < C; c++) {
            int c0 = imax(c - lo, 0), c1 = imin(c + hi, C - 1);
            for (int p = 0; p < HW; p++) {
                float s = 0.0f;
                for (int k = c0; k <= c1; k++) {
                    float v = xn[k * HW + p];
                    s += v * v;
                }
                float base = bias + a * s;
                yn[c * HW + p] = xn[c * HW + p] * s_exp(-beta * s_log(base));
            }
        }
    }
}
