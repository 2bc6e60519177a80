/* 2-D pooling over NC planes of H x W (NCHW with N*C folded into planes).
 * Pads: PT/PL top/left, PB/PR bottom/right (ONNX pads). Windows may run past the padded input when
 * ceil_mode rounded the output size up; those positions never count. */
#include "common.h"

/* Row-wise: each output row is the max over the window's input rows and columns; per (ky, kx) the range of
 * output columns whose input is inside the image is computed once, and that range runs 4-wide for strides
 * 1 and 2 (stride 2 splits even/odd columns with a shuffle). */
KERNEL void f32_maxpool2d(int planes, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                          int DH, int DW, const float* x, float* y) {
    for (int p = 0; p < planes; p++) {
        const float* xp = x + (long)p * H * W;
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
