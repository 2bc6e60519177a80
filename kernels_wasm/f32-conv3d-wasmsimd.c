/* 3-D convolution, NCDHW, any groups/strides/dilations/padding: im2col over blocks of output depth slices,
 * then f32_gemm with the fused epilogue (bias, residual, activation), per (image, group). 1-D and 2-D
 * convolutions have their own tuned kernels; this is the general path for volumes.
 *
 * geo (int32[19]): D H W, OD OH OW, KD KH KW, SD SH SW, PD PH PW (begin pads), DD DH DW, output depth
 * slices per block. Weights are OIDHW = the GEMM's A operand [M, Cg * K].
 * workspace: Cg * K * (slices per block * OH * OW) floats. */
#include "gemm.h"

KERNEL void f32_conv3d(int N, int C, int M, int group, const int32_t* geo, const float* x, const float* w,
                       const float* bias, float* y, float* workspace, int act, float p0, float p1,
                       const float* residual) {
    int D = geo[0], H = geo[1], W = geo[2], OD = geo[3], OH = geo[4], OW = geo[5];
    int KD = geo[6], KH = geo[7], KW = geo[8], SD = geo[9], SH = geo[10], SW = geo[11];
    int PD = geo[12], PH = geo[13], PW = geo[14], DD = geo[15], DH = geo[16], DW = geo[17], spb = geo[18];
    int cg = C / group, mg = M / group, K = KD * KH * KW, CK = cg * K;
    long P = (long)D * H * W, OP = (long)OD * OH * OW, plane = (long)OH * OW;
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < group; g++) {
            const float* xg = x + ((long)n * C + (long)g * cg) * P;
            long out = ((long)n * M + (long)g * mg) * OP;
            for (int od0 = 0; od0 < OD; od0 += spb) {
                int od1 = imin(OD, od0 + spb), nb = (int)((od1 - od0) * plane);
                float* col = workspace;
                for (int c = 0; c < cg; c++)
                    for (int kd = 0; kd < KD; kd++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++)
                                for (int od = od0; od < od1; od++) {
                                    int id = od * SD - PD + kd * DD;
                                    for (int oh = 0; oh < OH; oh++, col += OW) {
                                        int ih = oh * SH - PH + kh * DH;
                                        if (id < 0 || id >= D || ih < 0 || ih >= H) {
                                            __builtin_memset(col, 0, (unsigned)OW * sizeof(float));
                                            continue;
                                        }
                                        const float* row = xg + c * P + ((long)id * H + ih) * W;
                                        for (int ow = 0; ow < OW; ow++) {
                                            int iw = ow * SW - PW + kw * DW;
                                            col[ow] = iw >= 0 && iw < W ? row[iw] : 0.0f;
                                        }
                                    }
                                }
                long at = out + od0 * plane;
                f32_gemm(mg, nb, CK, w + (long)g * mg * CK, CK, workspace, nb, y + at, (int)OP, 1.0f,
                         bias ? bias + g * mg : 0, 1, 0, 1.0f, act, p0, p1, residual ? residual + at : 0, (int)OP);
            }
        }
    }
}
