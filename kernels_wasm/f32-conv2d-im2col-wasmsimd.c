/* 2-D convolution, NCHW, any groups/strides/dilations/padding, as im2col + GEMM per (image, group).
 * Weights are OIHW, which is already the [Cout, Cin/group * KH * KW] GEMM A operand.
 * pad_top/pad_left position the window; bottom/right padding is implied by the output size.
 * x_plane / y_plane are the element strides between channel planes of x and y (H*W and OH*OW for a whole
 * tensor). A plan split over output rows runs this kernel per row band: y, residual (and x on the direct
 * path) advanced to the band, OH = band height, PT lowered by band start * SH, the planes unchanged.
 * workspace: the GEMM's B operand packed in 8-column panels (f32_gemm_packed), written straight by im2col:
 * (Cin/group * KH * KW) * (OH * OW rounded up to 8) floats. A 1x1 kernel with stride 1 and no padding
 * packs the input (f32_pack_b) into it, or, with workspace == 0, multiplies the input in place (no copy).
 * mr: rows of the GEMM's register tile (4 unless --tune measured another faster).
 * Epilogue (in the GEMM): + bias, + residual (a tensor shaped like y, or 0), then activation act/p0/p1. */
#include "gemm.h"

/* The im2col matrix [K, P] in f32_gemm_packed's layout: element (k, p) at (p / 8) * 8K + k * 8 + p % 8; one
 * matrix row runs over consecutive floats until a panel ends, then jumps to the next panel's row k. */
static void im2col(const float* x, long x_plane, int C, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW,
                   int PT, int PL, int DH, int DW, int K, float* col) {
    int k = 0;
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < KH; ky++) {
            for (int kx = 0; kx < KW; kx++, k++) {
                /* output columns whose input column lies inside the image: iw = ow*SW - PL + kx*DW in [0, W) */
                int off = kx * DW - PL;
                int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int ow1 = (W - off + SW - 1) / SW; /* first ow with iw >= W */
                ow0 = imin(ow0, OW);
                ow1 = imax(ow0, imin(ow1, OW));
                int p = 0;
                float* d = col + k * 8;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * SH - PT + ky * DH;
                    int inside = ih >= 0 && ih < H;
                    const float* row = x + c * x_plane + ih * W + off;
                    for (int ow = 0; ow < OW;) {
                        /* a whole panel row of 8 inside the image (its loads too: stride 2 reads 16 floats):
                         * two vector stores; the rest, element by element */
                        if (inside && (p & 7) == 0 && ow >= ow0 && ow + 8 <= OW && (SW == 1 || SW == 2) &&
                            ow * SW + off + 8 * SW <= W) {
                            const float* s = row + ow * SW;
                            v128_t v0 = VLOAD(s), v1 = VLOAD(s + 4);
                            if (SW == 2) {
                                v0 = wasm_i32x4_shuffle(v0, v1, 0, 2, 4, 6);
                                v1 = wasm_i32x4_shuffle(VLOAD(s + 8), VLOAD(s + 12), 0, 2, 4, 6);
                            }
                            VSTORE(d, v0);
                            VSTORE(d + 4, v1);
                            d += 8 * K;
                            p += 8;
                            ow += 8;
                            continue;
                        }
                        *d = inside && ow >= ow0 && ow < ow1 ? row[ow * SW] : 0.0f;
                        d += (p & 7) == 7 ? 8 * K - 7 : 1;
                        p++;
                        ow++;
                    }
                }
            }
        }
    }
}

KERNEL void f32_conv2d(int N, int C, int H, int W, int M, int OH, int OW, int KH, int KW, int SH, int SW, int PT,
                       int PL, int DH, int DW, int group, const float* x, const float* w, const float* bias, float* y,
                       float* workspace, int act, float p0, float p1, const float* residual, int x_plane, int y_plane,
                       int mr) {
    int cg = C / group, mg = M / group;
    int K = cg * KH * KW, P = OH * OW;
    int direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < group; g++) {
            const float* xg = x + ((long)n * C + g * cg) * x_plane;
            long out = ((long)n * M + g * mg) * y_plane;
            const float* wg = w + (long)g * mg * K;
            const float* bg = bias ? bias + g * mg : 0;
            const float* rg = residual ? residual + out : 0;
            if (!workspace) {
                f32_gemm(mg, P, K, wg, K, xg, x_plane, y + out, y_plane, 1.0f, bg, 1, 0, 1.0f, act, p0, p1, rg, y_plane);
                continue;
            }
            if (direct)
                f32_pack_b(K, P, xg, x_plane, workspace);
            else
                im2col(xg, x_plane, cg, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, K, workspace);
            f32_gemm_packed(mg, P, K, wg, K, workspace, y + out, y_plane, 1.0f, bg, 1, 0, 1.0f, act, p0, p1, rg, y_plane,
                            mr);
        }
    }
}
