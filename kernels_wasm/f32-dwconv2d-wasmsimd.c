/* Depthwise 2-D convolution (group == C == M), NCHW, weights [C, 1, KH, KW], then the epilogue:
 * + residual (a tensor shaped like y, or 0), then activation act/p0/p1 (codes in common.h).
 *
 * 3x3 kernels without dilation (MobileNet's case, stride 1 or 2) take a register path: 4 outputs at a time
 * accumulate all 9 taps before one store; for stride 2 the even/odd input columns are split with shuffles.
 * Only columns whose window leaves the image, and rows outside it, go through the scalar edge code.
 * Every other geometry runs the general path: each output row accumulates KH*KW shifted input rows
 * scaled by one weight, over the range of columns whose input lies inside the image. */
#include "activation.h"

/* p[0], p[S], p[2S], p[3S] for S in {1, 2}; reads p[0..3] or p[0..7] */
INLINE v128_t load_strided4(const float* p, int S) {
    if (S == 1) return VLOAD(p);
    return wasm_i32x4_shuffle(VLOAD(p), VLOAD(p + 4), 0, 2, 4, 6);
}

/* the 9 weights of a 3x3 kernel, each splatted */
INLINE void splat9(const float* w, v128_t* wv) {
    for (int k = 0; k < 9; k++) wv[k] = VSPLAT(w[k]);
}

/* acc + the 3x3 window of 4 outputs (stride S) whose first taps are r0[i], r1[i], r2[i], taps in row order */
INLINE v128_t taps3x3(const float* r0, const float* r1, const float* r2, int i, int S, const v128_t* wv, v128_t acc) {
    const float* r[3] = {r0 + i, r1 + i, r2 + i};
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) acc = VMADD(wv[ky * 3 + kx], load_strided4(r[ky] + kx, S), acc);
    return acc;
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
    v128_t wv[9];
    splat9(w, wv);
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
                VSTORE(out + ow, taps3x3(r0, r1, r2, i, S, wv, vb));
            }
        }
        for (; ow < OW; ow++) out[ow] = dw3x3_point(xc, H, W, w, ih0, ow * S - PL, b);
        if (act != ACT_NONE || rc) activate_row_outlined(out, out, rc ? rc + oh * OW : 0, OW, act, p0, p1);
    }
}

/* Small planes (MobileNet's 56x56 and below), where the edges of dw3x3 were most of the work: the plane is
 * copied into a zero-padded buffer of rows Wp floats long, so that every group of 4 outputs runs the same 9
 * vector taps, edges included; the rows are then copied out with the residual and activation. Stride 1 runs
 * as one 1-D convolution over the flat buffer (output q = oh * Wp + ow reads pad[q + ky * Wp + kx]; the
 * Wp - OW columns between rows are computed and dropped), stride 2 row by row (OW rounded up to 4 per row).
 * Both buffers live on the stack, DW_FLAT floats each. */
#define DW_FLAT 3840

typedef struct {
    int Wp, Wq;     /* floats per padded input row and per output row in the flat buffer */
    int rows, gpr;  /* passes (1 for stride 1, OH for 2) and groups of 4 outputs per pass */
    int in_step;    /* padded floats between passes */
    int len;        /* padded floats the passes read */
} FlatPlan;

static int flat_plan(int H, int W, int OH, int OW, int S, int PT, int PL, FlatPlan* f) {
    if (PT < 0 || PL < 0) return 0;
    int Wp = imax(PL + W, (OW - 1) * S + 3);
    if (S == 1) {
        f->Wq = Wp, f->rows = 1, f->gpr = ((OH - 1) * Wp + OW + 3) / 4, f->in_step = 0;
        f->len = 4 * (f->gpr - 1) + 6 + 2 * Wp;
    } else {
        f->Wq = (OW + 3) / 4 * 4, f->rows = OH, f->gpr = f->Wq / 4, f->in_step = 2 * Wp;
        f->len = (OH - 1) * f->in_step + 8 * (f->gpr - 1) + 10 + 2 * Wp; /* load_strided4 reads 8 */
    }
    f->Wp = Wp;
    /* the padded rows read, the flat outputs and the interior rows copied in all fit the buffers */
    long outs = f->rows == 1 ? 4L * f->gpr : (long)OH * f->Wq;
    return f->len <= DW_FLAT && outs <= DW_FLAT && (long)(PT + H) * Wp <= DW_FLAT;
}

/* dst[0, n) = src[0, n) (n >= 4: vectors, the last one overlapping) */
INLINE void copy_row(float* dst, const float* src, int n) {
    if (n < 4) {
        for (int i = 0; i < n; i++) dst[i] = src[i];
        return;
    }
    for (int i = 0; i + 4 <= n; i += 4) VSTORE(dst + i, VLOAD(src + i));
    VSTORE(dst + n - 4, VLOAD(src + n - 4));
}

static void dw3x3_flat(const FlatPlan* f, const float* xc, int H, int W, int OH, int OW, int S, int PT, int PL,
                       const float* w, float b, float* yc, const float* rc, int act, float p0, float p1, float* pad,
                       float* flat) {
    /* the interior rows (the padding around them stays zero from the caller) */
    for (int ih = 0; ih < H; ih++) copy_row(pad + (ih + PT) * f->Wp + PL, xc + (long)ih * W, W);
    v128_t vb = VSPLAT(b);
    v128_t wv[9];
    splat9(w, wv);
    /* with a residual the activation comes after it, and one that is not a register op runs on whole rows: both
     * in the copy out */
    int fused = rc == 0 && act_in_registers(act);
    for (int pass = 0; pass < f->rows; pass++) {
        const float* r0 = pad + pass * f->in_step;
        const float* r1 = r0 + f->Wp;
        const float* r2 = r1 + f->Wp;
        for (int g = 0; g < f->gpr; g++) {
            int i = 4 * S * g;
            v128_t acc = taps3x3(r0, r1, r2, i, S, wv, vb);
            VSTORE(flat + pass * f->Wq + 4 * g, fused ? v_activate_in_registers(acc, act, p0, p1) : acc);
        }
    }
    for (int oh = 0; oh < OH; oh++) {
        if (fused)
            copy_row(yc + oh * OW, flat + oh * f->Wq, OW);
        else
            activate_row_outlined(flat + oh * f->Wq, yc + oh * OW, rc ? rc + oh * OW : 0, OW, act, p0, p1);
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
        if (act != ACT_NONE || rc) activate_row_outlined(out, out, rc ? rc + oh * OW : 0, OW, act, p0, p1);
    }
}

KERNEL void f32_dwconv2d(int N, int C, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL,
                         int DH, int DW, const float* x, const float* w, const float* bias, float* y, int act, float p0,
                         float p1, const float* residual) {
    int fast = KH == 3 && KW == 3 && DH == 1 && DW == 1 && SH == SW && (SH == 1 || SH == 2);
    FlatPlan plan;
    float pad[DW_FLAT], flat[DW_FLAT];
    int small = fast && flat_plan(H, W, OH, OW, SH, PT, PL, &plan);
    if (small)
        for (int i = 0; i < plan.len; i++) pad[i] = 0.0f;
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            long plane = (long)n * C + c;
            const float* xc = x + plane * H * W;
            float* yc = y + plane * OH * OW;
            const float* rc = residual ? residual + plane * OH * OW : 0;
            float b = bias ? bias[c] : 0.0f;
            if (small)
                dw3x3_flat(&plan, xc, H, W, OH, OW, SH, PT, PL, w + c * 9, b, yc, rc, act, p0, p1, pad, flat);
            else if (fast)
                dw3x3(xc, H, W, OH, OW, SH, PT, PL, w + c * 9, b, yc, rc, act, p0, p1);
            else
                dw_general(xc, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, w + c * KH * KW, b, yc, rc, act, p0, p1);
        }
    }
}
