/* 2-D pooling over NC planes of H x W (NCHW with N*C folded into planes).
 * Pads: PT/PL top/left, PB/PR bottom/right (ONNX pads). Windows may run past the padded input when
 * ceil_mode rounded the output size up; those positions never count. */
#include "common.h"

/* p[0], p[S], p[2S], p[3S] for S in {1, 2}; reads p[0..3] or p[0..7] */
INLINE v128_t load_strided4(const float* p, int S) {
    if (S == 1) return VLOAD(p);
    return wasm_i32x4_shuffle(VLOAD(p), VLOAD(p + 4), 0, 2, 4, 6);
}

/* 3x3 windows, stride S in {1, 2} (SqueezeNet's and ResNet's pools): 4 outputs at a time take the max of the
 * window's rows inside the image, 3 column taps each, in registers, with one store (the row-wise loop below
 * reads and writes each output row 9 times: 1.7-2.8x slower in V8 on SqueezeNet's and ResNet-18's pools).
 * Taps run in the same order, so the results are the same bits, NaN and signed zeros included. Columns
 * whose loads would leave the row run one at a time. */
static void maxpool3x3(const float* xp, int H, int W, int OH, int OW, int S, int PT, int PL, float* y) {
    int ow_lo = imin(OW, (PL + S - 1) / S); /* first column whose window starts inside the row */
    int span = S == 1 ? 6 : 10;             /* floats a group of 4 loads from its first tap */
    int ow_hi = ow_lo;
    while (ow_hi + 4 <= OW && ow_hi * S - PL + span <= W) ow_hi += 4;
    for (int oh = 0; oh < OH; oh++, y += OW) {
        int ih0 = oh * S - PT, ky0 = imax(0, -ih0), ky1 = imin(3, H - ih0);
        for (int ow = 0; ow < OW; ow++) {
            if (ow == ow_lo && ow < ow_hi) {
                for (; ow < ow_hi; ow += 4) {
                    v128_t m = VSPLAT(-__builtin_inff());
                    for (int ky = ky0; ky < ky1; ky++) {
                        const float* r = xp + (ih0 + ky) * W + ow * S - PL;
                        m = wasm_f32x4_pmax(m, load_strided4(r, S));
                        m = wasm_f32x4_pmax(m, load_strided4(r + 1, S));
                        m = wasm_f32x4_pmax(m, load_strided4(r + 2, S));
                    }
                    VSTORE(y + ow, m);
                }
                if (ow >= OW) break;
            }
            int iw0 = ow * S - PL;
            float m = -__builtin_inff();
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = imax(0, -iw0); kx < imin(3, W - iw0); kx++) {
                    float v = xp[(ih0 + ky) * W + iw0 + kx];
                    m = v > m ? v : m;
                }
            y[ow] = m;
        }
    }
}

/* Otherwise row-wise: each output row is the max over the window's input rows and columns; per (ky, kx) the
 * range of output columns whose input is inside the image is computed once, and that range runs 4-wide for
 * strides 1 and 2 (stride 2 splits even/odd columns with a shuffle). */
KERNEL void f32_maxpool2d(int planes, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                          int DH, int DW, const float* x, float* y) {
    int fast = KH == 3 && KW == 3 && DH == 1 && DW == 1 && SH == SW && (SH == 1 || SH == 2);
    for (int p = 0; p < planes; p++) {
        const float* xp = x + (long)p * H * W;
        if (fast) {
            maxpool3x3(xp, H, W, OH, OW, SH, PT, PL, y);
            y += (long)OH * OW;
            continue;
        }
        for (int oh = 0; oh < OH; oh++, y += OW) {
            for (int ow = 0; ow < OW; ow++) y[ow] = -__builtin_inff();
            for (int ky = 0; ky < KH; ky++) {
                int ih = oh * SH - PT + ky * DH;
                if (ih < 0 || ih >= H) continue;
                const float* row = xp + ih * W;
                for (int kx = 0; kx < KW; kx++) {
                    int off = kx * DW - PL;
                    int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                    int ow1 = (W - off + SW - 1) / SW;
                    ow0 = imin(ow0, OW);
                    ow1 = imax(ow0, imin(ow1, OW));
                    const float* in = row + off;
                    int ow = ow0;
                    if (SW == 1) {
                        for (; ow + 4 <= ow1; ow += 4) VSTORE(y + ow, wasm_f32x4_pmax(VLOAD(y + ow), VLOAD(in + ow)));
                    } else if (SW == 2) {
                        /* the pair load reads in[2ow .. 2ow + 7]: stay inside the row */
                        for (; ow + 4 <= ow1 && off + 2 * ow + 8 <= W; ow += 4) {
                            v128_t v = wasm_i32x4_shuffle(VLOAD(in + 2 * ow), VLOAD(in + 2 * ow + 4), 0, 2, 4, 6);
                            VSTORE(y + ow, wasm_f32x4_pmax(VLOAD(y + ow), v));
                        }
                    }
                    for (; ow < ow1; ow++) {
                        float v = in[ow * SW];
                        y[ow] = v > y[ow] ? v : y[ow];
                    }
                }
            }
        }
    }
}

/* count_include_pad: divide by the window clipped to the padded input (H + PT + PB) instead of the input. */
KERNEL void f32_avgpool2d(int planes, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                          int PB, int PR, int count_include_pad, const float* x, float* y) {
    for (int p = 0; p < planes; p++) {
        const float* xp = x + (long)p * H * W;
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * SH - PT, h1 = h0 + KH;
            int ch = count_include_pad ? imin(h1, H + PB) - imax(h0, -PT) : imin(h1, H) - imax(h0, 0);
            h0 = imax(h0, 0);
            h1 = imin(h1, H);
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * SW - PL, w1 = w0 + KW;
                int cw = count_include_pad ? imin(w1, W + PR) - imax(w0, -PL) : imin(w1, W) - imax(w0, 0);
                w0 = imax(w0, 0);
                w1 = imin(w1, W);
                float s = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) s += xp[ih * W + iw];
                *y++ = ch > 0 && cw > 0 ? s / (float)(ch * cw) : 0.0f;
            }
        }
    }
}

KERNEL void f32_global_avgpool(int planes, int size, const float* x, float* y) {
    for (int p = 0; p < planes; p++, x += size) {
        v128_t acc = wasm_f32x4_splat(0.0f);
        int i = 0;
        for (; i + 4 <= size; i += 4) acc = wasm_f32x4_add(acc, VLOAD(x + i));
        float s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) +
                  wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
        for (; i < size; i++) s += x[i];
        y[p] = s / (float)size;
    }
}
