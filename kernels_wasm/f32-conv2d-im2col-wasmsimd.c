/* 2-D convolution, NCHW, any groups/strides/dilations/padding, as im2col + GEMM per (image, group).
 * Weights are OIHW, which is already the [Cout, Cin/group * KH * KW] GEMM A operand.
 * pad_top/pad_left position the window; bottom/right padding is implied by the output size.
 * A 1x1 kernel with stride 1 and no padding multiplies the input directly (no copy).
 * x_plane / y_plane are the element strides between channel planes of x and y (H*W and OH*OW for a whole
 * tensor). A plan split over output rows runs this kernel per row band: y, residual (and x on the direct
 * path) advanced to the band, OH = band height, PT lowered by band start * SH, the planes unchanged.
 * workspace: (Cin/group * KH * KW) * (OH * OW) floats, unused for the 1x1 case.
 * Epilogue (in the GEMM): + bias, + residual (a tensor shaped like y, or 0), then activation act/p0/p1. */
#include "common.h"

void f32_gemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
              float alpha, const float* bias, int bias_rs, int bias_cs, float beta, int act, float p0, float p1,
              const float* residual, int res_ld);

static void im2col(const float* x, long x_plane, int C, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW,
                   int PT, int PL, int DH, int DW, float* col) {
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < KH; ky++) {
            for (int kx = 0; kx < KW; kx++) {
                /* output columns whose input column lies inside the image: iw = ow*SW - PL + kx*DW in [0, W) */
                int off = kx * DW - PL;
                int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int ow1 = (W - off + SW - 1) / SW; /* first ow with iw >= W */
                ow0 = imin(ow0, OW);
                ow1 = imax(ow0, imin(ow1, OW));
                for (int oh = 0; oh < OH; oh++, col += OW) {
                    int ih = oh * SH - PT + ky * DH;
                    if (ih < 0 || ih >= H) {
                        __builtin_memset(col, 0, (unsigned)OW * sizeof(float));
                        continue;
                    }
                    const float* row = x + c * x_plane + ih * W + off;
                    if (ow0 > 0) __builtin_memset(col, 0, (unsigned)ow0 * sizeof(float));
                    if (SW == 1) {
                        __builtin_memcpy(col + ow0, row + ow0, (unsigned)(ow1 - ow0) * sizeof(float));
                    } else {
                        for (int ow = ow0; ow < ow1; ow++) col[ow] = row[ow * SW];
                    }
                    if (ow1 < OW) __builtin_memset(col + ow1, 0, (unsigned)(OW - ow1) * sizeof(float));
                }
            }
        }
    }
}

KERNEL void f32_conv2d(int N, int C, int H, int W, int M, int OH, int OW, int KH, int KW, int SH, int SW, int PT,
                       int PL, int DH, int DW, int group, const float* x, const float* w, const float* bias, float* y,
                       float* workspace, int act, float p0, float p1, const float* residual, int x_plane, int y_plane) {
    int cg = C / group, mg = M / group;
    int K = cg * KH * KW, P = OH * OW;
    int direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < group; g++) {
            const float* xg = x + ((long)n * C + g * cg) * x_plane;
            const float* b = xg;
            if (!direct) {
                im2col(xg, x_plane, cg, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, workspace);
                b = workspace;
            }
            long out = ((long)n * M + g * mg) * y_plane;
            f32_gemm(mg, P, K, w + (long)g * mg * K, K, b, direct ? x_plane : P, y + out, y_plane, 1.0f,
                     bias ? bias + g * mg : 0, 1, 0, 1.0f, act, p0, p1, residual ? residual + out : 0, y_plane);
        }
    }
}
