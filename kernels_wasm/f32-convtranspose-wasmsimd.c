/* ConvTranspose (1-D/2-D/3-D as D x H x W with leading size-1 dims), NCHW, any groups, strides, dilations,
 * pads (negative ones too: an output larger than the transposed convolution's extent gets only the bias).
 *
 * Per image and group: cols[Mc * K, block] = W_g^T[Mc * K, Cg] @ x_g[Cg, block] (f32_gemm) over blocks of
 * whole input rows, then col2im scatter-adds every column into y (initialized to the bias):
 *   y[m, id*SD - PD + kd*DD, ih*SH - PH + kh*DH, iw*SW - PW + kw*DW] += cols[m*K + k, (id, ih, iw)].
 * W's element for (input channel c of the group, row r = m * K + k) is w[c * w_cs + r * w_rs]: the ONNX
 * layout [C, Mg, K] has w_cs = Mg * K, w_rs = 1 and is transposed into the workspace; weights packed at
 * package time as [group][Mg * K][Cg] (w_cs = 1, w_rs = Cg) are the GEMM's A operand as they are.
 *
 * geo (int32[19]): D H W, OD OH OW, KD KH KW, SD SH SW, PD PH PW, DD DH DW, rows per block.
 * Mc output channels of each group are computed, Mg is the group's full count (y and W strides); threads
 * split the output channels of a one-group layer (w, bias, y advanced to the chunk, workspace likewise).
 * workspace: Mc * K * (Cg (unless packed) + rows per block * W) floats. */
#include "gemm.h"

/* valid input columns [*i0, *i1) of one kernel tap: 0 <= i * S + off < O */
INLINE void tap_range(int off, int S, int I, int O, int* i0, int* i1) {
    int a = off >= 0 ? 0 : (-off + S - 1) / S;
    int b = O - off <= 0 ? 0 : (O - off + S - 1) / S;
    *i0 = imin(a, I);
    *i1 = imax(*i0, imin(b, I));
}

KERNEL void f32_convtranspose(int Mc, int N, int C, int group, int Mg, const int32_t* geo, const float* x,
                              const float* w, int w_cs, int w_rs, const float* bias, float* y, float* workspace) {
    int D = geo[0], H = geo[1], W = geo[2], OD = geo[3], OH = geo[4], OW = geo[5];
    int KD = geo[6], KH = geo[7], KW = geo[8], SD = geo[9], SH = geo[10], SW = geo[11];
    int PD = geo[12], PH = geo[13], PW = geo[14], DD = geo[15], DH = geo[16], DW = geo[17], rpb = geo[18];
    int Cg = C / group, K = KD * KH * KW;
    long P = (long)D * H * W, OP = (long)OD * OH * OW;
    int rows = D * H, R = Mc * K;
    int packed = w_cs == 1;
    float* cols = packed ? workspace : workspace + (long)R * Cg;
    for (int g = 0; g < group; g++) {
        const float* wg = w + (long)g * Cg * Mg * K;
        const float* A = wg;
        int lda = w_rs;
        if (!packed) {
            float* t = workspace;
            for (int r = 0; r < R; r++)
                for (int c = 0; c < Cg; c++) t[(long)r * Cg + c] = wg[(long)c * w_cs + (long)r * w_rs];
            A = t;
            lda = Cg;
        }
        for (int n = 0; n < N; n++) {
            const float* xg = x + ((long)n * C + (long)g * Cg) * P;
            float* yg = y + ((long)n * group * Mg + (long)g * Mg) * OP;
            for (int m = 0; m < Mc; m++) {
                float b = bias ? bias[g * Mg + m] : 0.0f;
                float* ym = yg + m * OP;
                v128_t vb = VSPLAT(b);
                long i = 0;
                for (; i + 4 <= OP; i += 4) VSTORE(ym + i, vb);
                for (; i < OP; i++) ym[i] = b;
            }
            for (int r0 = 0; r0 < rows; r0 += rpb) {
                int r1 = imin(rows, r0 + rpb), nb = (r1 - r0) * W;
                f32_gemm(R, nb, Cg, A, lda, xg + (long)r0 * W, (int)P, cols, nb, 1.0f, 0, 0, 0, 0.0f, ACT_NONE, 0, 0,
                         0, 0);
                for (int m = 0; m < Mc; m++) {
                    float* ym = yg + m * OP;
                    for (int kd = 0; kd < KD; kd++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int k = (kd * KH + kh) * KW + kw;
                                const float* cr = cols + (long)(m * K + k) * nb;
                                int iw0, iw1;
                                tap_range(kw * DW - PW, SW, W, OW, &iw0, &iw1);
                                if (iw0 >= iw1) continue;
                                for (int rr = r0; rr < r1; rr++) {
                                    int id = rr / H, ih = rr % H;
                                    int od = id * SD - PD + kd * DD, oh = ih * SH - PH + kh * DH;
                                    if (od < 0 || od >= OD || oh < 0 || oh >= OH) continue;
                                    float* yr = ym + ((long)od * OH + oh) * OW;
                                    long off = (long)kw * DW - PW;
                                    const float* src = cr + (long)(rr - r0) * W;
                                    int iw = iw0;
                                    if (SW == 1) {
                                        for (; iw + 4 <= iw1; iw += 4)
                                            VSTORE(yr + off + iw, wasm_f32x4_add(VLOAD(yr + off + iw), VLOAD(src + iw)));
                                    }
                                    for (; iw < iw1; iw++) yr[off + (long)iw * SW] += src[iw];
                                }
                            }
                }
            }
        }
    }
}
