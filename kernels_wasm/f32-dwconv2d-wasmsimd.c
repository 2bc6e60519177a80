/* Depthwise 2-D convolution (group == C == M), NCHW, weights [C, 1, KH, KW], then the epilogue:
 * + residual (a tensor shaped like y, or 0), then activation act/p0/p1 (codes in common.h).
 *
 * 3x3 kernels without dilation (MobileNet's case, stride 1 or 2) take a register path: 4 outputs at a time
 * accumulate all 9 taps before one store; for stride 2 the even/odd input columns are split with shuffles.
 * Only columns whose window leaves the image, and rows outside it, go through the scalar edge code.
 * Every other geometry runs the general path: each output row accumulates KH*KW shifted input rows
 * scaled by one weight, over the range of columns whose input lies inside the image. */
#include "common.h"

/* p[0], p[S], p[2S], p[3S] for S in {1, 2}; reads p[0..3] or p[0..7] */
INLINE v128_t load_strided4(const float* p, int S) {
    if (S == 1) return VLOAD(p);
    return wasm_i32x4_shuffle(VLOAD(p), VLOAD(p + 4), 0, 2, 4, 6);
}

/* one output (oh, ow) of a 3x3 window, with bounds checks: the edge path */
INLINE float dw3x3_point(const float* xc, int H, int W, const float* w, int ih0, int iw0, float b) {
    float s = b;
    for (int ky = 0; ky < 3; ky++) {
        int ih = ih0 + ky;
        if (ih < 0 || ih >= H) continue;
        for (int kx = 0; kx < 3; kx++) {
            int iw = iw0 + kx;
            if (iw >= 0 && iw < W) s += w[ky * 3 + kx] * xc[ih * W + iw];
        }
    }
    return s;
}

static void dw3x3(const float* xc, int H, int W, int OH, int OW, int S, int PT, int PL, const float* w, float b,
                  float* yc, const float* rc, int act, float p0, float p1) {
    /* columns [ow_lo, ow_hi) read only inside the row: iw0 = ow*S - PL >= 0 and the last loaded element
     * (4 outputs need iw0 .. iw0 + 3S + 2; the stride-2 loads read one more) < W */
    int ow_lo = imin(OW, (PL + S - 1) / S);
    int span = S == 1 ? 6 : 10; /* elements loaded from iw0 for a group of 4 outputs */
    int ow_hi = ow_lo;
    while (ow_hi + 4 <= OW && (ow_hi * S - PL) + span <= W) ow_hi += 4;
    v128_t vb = VSPLAT(b);
    v128_t w0 = VSPLAT(w[0]), w1 = VSPLAT(w[1]), w2 = VSPLAT(w[2]), w3 = VSPLAT(w[3]), w4 = VSPLAT(w[4]),
           w5 = VSPLAT(w[5]), w6 = VSPLAT(w[6]), w7 = VSPLAT(w[7]), w8 = VSPLAT(w[8]);
    for (int oh = 0; oh < OH; oh++) {
        int ih0 = oh * S - PT;
        float* out = yc + oh * OW;
        int rows_inside = ih0 >= 0 && ih0 + 2 < H;
        int ow = 0;
        for (; ow < ow_lo; ow++) out[ow] = dw3x3_point(xc, H, W, w, ih0, ow * S - PL, b);
        if (rows_inside) {
            const float* r0 = xc + ih0 * W - PL;
            const float* r1 = r0 + W;
            const float* r2 = r1 + W;
            for (; ow < ow_hi; ow += 4) {
                int i = ow * S;
                v128_t acc = vb;
                acc = VMADD(w0, load_strided4(r0 + i, S), acc);
                acc = VMADD(w1, load_strided4(r0 + i + 1, S), acc);
                acc = VMADD(w2, load_strided4(r0 + i + 2, S), acc);
                acc = VMADD(w3, load_strided4(r1 + i, S), acc);
                acc = VMADD(w4, load_strided4(r1 + i + 1, S), acc);
                acc = VMADD(w5, load_strided4(r1 + i + 2, S), acc);
                acc = VMADD(w6, load_strided4(r2 + i, S), acc);
                acc = VMADD(w7, load_strided4(r2 + i + 1, S), acc);
                acc = VMADD(w8, load_strided4(r2 + i + 2, S), acc);
                VSTORE(out + ow, acc);
            }
        }
        for (; ow < OW; ow++) out[ow] = dw3x3_point(xc, H, W, w, ih0, ow * S - PL, b);
        if (act != ACT_NONE || rc) activate_row(out, out, rc ? rc + oh * OW : 0, OW, act, p0, p1);
    }
}

static void dw_general(const float* xc, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                       int DH, int DW, const float* wc, float b, float* yc, const float* rc, int act, float p0,
                       float p1) {
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
        if (act != ACT_NONE || rc) activate_row(out, out, rc ? rc + oh * OW : 0, OW, act, p0, p1);
    }
}

KERNEL void f32_dwconv2d(int N, int C, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                         int DH, int DW, const float* x, const float* w, const float* bias, float* y, int act, float p0,
                         float p1, const float* residual) {
    int fast = KH == 3 && KW == 3 && DH == 1 && DW == 1 && SH == SW && (SH == 1 || SH == 2);
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            long plane = (long)n * C + c;
            const float* xc = x + plane * H * W;
            float* yc = y + plane * OH * OW;
            const float* rc = residual ? residual + plane * OH * OW : 0;
            float b = bias ? bias[c] : 0.0f;
            if (fast)
                dw3x3(xc, H, W, OH, OW, SH, PT, PL, w + c * 9, b, yc, rc, act, p0, p1);
            else
                dw_general(xc, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, w + c * KH * KW, b, yc, rc, act, p0, p1);
        }
    }
}
