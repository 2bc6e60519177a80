/* Depthwise 2-D convolution (group == C == M), NCHW, weights [C, 1, KH, KW], any stride/dilation/padding.
 * Direct: each output row accumulates KH*KW shifted input rows scaled by one weight; the range of output
 * columns whose input lies inside the image is computed once per kernel column, so the inner loop has no
 * bounds checks and runs 4-wide when the stride is 1. Each finished row gets the epilogue: + residual
 * (a tensor shaped like y, or 0), then activation act/p0/p1. */
#include "common.h"

KERNEL void f32_dwconv2d(int N, int C, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                         int DH, int DW, const float* x, const float* w, const float* bias, float* y, int act, float p0,
                         float p1, const float* residual) {
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const float* xc = x + ((long)n * C + c) * H * W;
            const float* wc = w + c * KH * KW;
            float* yc = y + ((long)n * C + c) * OH * OW;
            float b = bias ? bias[c] : 0.0f;
            for (int oh = 0; oh < OH; oh++) {
                float* out = yc + oh * OW;
                for (int ow = 0; ow < OW; ow++) out[ow] = b;
                for (int ky = 0; ky < KH; ky++) {
                    int ih = oh * SH - PT + ky * DH;
                    if (ih < 0 || ih >= H) continue;
                    const float* row = xc + ih * W;
                    for (int kx = 0; kx < KW; kx++) {
                        float wv = wc[ky * KW + kx];
                        int off = kx * DW - PL;
                        int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                        int ow1 = (W - off + SW - 1) / SW;
                        ow0 = imin(ow0, OW);
                        ow1 = imax(ow0, imin(ow1, OW));
                        const float* in = row + off;
                        int ow = ow0;
                        if (SW == 1) {
                            v128_t vw = VSPLAT(wv);
                            for (; ow + 4 <= ow1; ow += 4) VSTORE(out + ow, VMADD(vw, VLOAD(in + ow), VLOAD(out + ow)));
                        }
                        for (; ow < ow1; ow++) out[ow] += wv * in[ow * SW];
                    }
                }
                if (act != ACT_NONE || residual)
                    activate_row(out, out, residual ? residual + (out - y) : 0, OW, act, p0, p1);
            }
        }
    }
}
