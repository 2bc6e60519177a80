/* General pooling over up to 3 spatial dims (1-D and 2-D run with leading size-1 dims): max (with the
 * optional argmax indices), average (count_include_pad) and Lp, any strides, dilations and pads, plus
 * GlobalMaxPool and MaxUnpool. The fast 2-D max/average kernels are in f32-pool2d.c; this one serves 3-D,
 * dilated averages, Lp pooling and MaxPool's Indices output.
 *
 * geo (int32[23]): D H W, OD OH OW, KD KH KW, SD SH SW, pad begin PD PH PW, pad end ED EH EW,
 * dilations DD DH DW, count_include_pad, storage_order. A window position is read when it is inside the
 * input; for count_include_pad it counts when it is inside the padded input [-begin, size + end), so a
 * ceil_mode window running past the end padding never counts its overhang. */
#include "vmath.h"

enum { POOL_MAX = 0, POOL_AVG = 1, POOL_LP = 2 };

INLINE float powi(float v, int p) {
    float r = v;
    for (int i = 1; i < p; i++) r *= v;
    return r;
}

/* s^(1/p) for s >= 0: exp(log(s) / p) refined by two Newton steps on r^p = s */
static float root(float s, int p) {
    if (p == 1) return s;
    if (p == 2) return __builtin_sqrtf(s);
    if (!(s > 0.0f) || s == __builtin_inff()) return s;
    float r = s_exp(s_log(s) / (float)p);
    for (int it = 0; it < 2; it++) {
        float rp1 = powi(r, p - 1);
        r -= (rp1 * r - s) / ((float)p * rp1);
    }
    return r;
}

/* one spatial axis of a window: the taps [k0, k1) that read the input, and how many count */
typedef struct {
    int k0, k1, start, counted;
} Taps;

INLINE Taps taps(int o, int S, int P, int E, int K, int Dl, int size, int cip) {
    Taps t;
    t.start = o * S - P;
    t.k0 = 0;
    while (t.k0 < K && t.start + t.k0 * Dl < 0) t.k0++;
    t.k1 = t.k0;
    while (t.k1 < K && t.start + t.k1 * Dl < size) t.k1++;
    if (cip) {
        t.counted = 0;
        for (int k = 0; k < K; k++) {
            int i = t.start + k * Dl;
            t.counted += i >= -P && i < size + E;
        }
    } else {
        t.counted = t.k1 - t.k0;
    }
    return t;
}

KERNEL void f32_poolnd(int planes, int plane0, const int32_t* geo, int mode, int p, const float* x, float* y,
                       int64_t* indices) {
    const int32_t *in = geo, *out = geo + 3, *k = geo + 6, *s = geo + 9, *pb = geo + 12, *pe = geo + 15,
                  *dl = geo + 18;
    int cip = geo[21], col_major = geo[22];
    int D = in[0], H = in[1], W = in[2];
    long plane_in = (long)D * H * W;
    for (int pl = 0; pl < planes; pl++) {
        const float* xp = x + (long)pl * plane_in;
        long base = (long)(plane0 + pl) * plane_in;
        for (int od = 0; od < out[0]; od++) {
            Taps td = taps(od, s[0], pb[0], pe[0], k[0], dl[0], D, cip);
            for (int oh = 0; oh < out[1]; oh++) {
                Taps th = taps(oh, s[1], pb[1], pe[1], k[1], dl[1], H, cip);
                for (int ow = 0; ow < out[2]; ow++) {
                    Taps tw = taps(ow, s[2], pb[2], pe[2], k[2], dl[2], W, cip);
                    float acc = mode == POOL_MAX ? -__builtin_inff() : 0.0f;
                    long arg = -1;
                    for (int kd = td.k0; kd < td.k1; kd++) {
                        int id = td.start + kd * dl[0];
                        for (int kh = th.k0; kh < th.k1; kh++) {
                            int ih = th.start + kh * dl[1];
                            const float* row = xp + ((long)id * H + ih) * W;
                            for (int kw = tw.k0; kw < tw.k1; kw++) {
                                int iw = tw.start + kw * dl[2];
                                float v = row[iw];
                                if (mode == POOL_MAX) {
                                    if (v > acc || arg < 0) {
                                        acc = v;
                                        arg = col_major ? id + (long)ih * D + (long)iw * D * H
                                                        : ((long)id * H + ih) * W + iw;
                                    }
                                } else if (mode == POOL_AVG) {
                                    acc += v;
                                } else {
                                    acc += powi(__builtin_fabsf(v), p);
                                }
                            }
                        }
                    }
                    if (mode == POOL_AVG) {
                        int count = td.counted * th.counted * tw.counted;
                        acc = count > 0 ? acc / (float)count : 0.0f;
                    } else if (mode == POOL_LP) {
                        acc = root(acc, p);
                    }
                    *y++ = acc;
                    if (indices) *indices++ = arg < 0 ? -1 : base + arg;
                }
            }
        }
    }
}

/* y[p] = (sum |x|^p)^(1/p) over each plane of `size` elements (GlobalLpPool) */
KERNEL void f32_global_lppool(int planes, int size, int p, const float* x, float* y) {
    for (int pl = 0; pl < planes; pl++, x += size) {
        float acc = 0.0f;
        int i = 0;
        if (p == 1 || p == 2) {
            v128_t a = VSPLAT(0.0f);
            for (; i + 4 <= size; i += 4) {
                v128_t v = VLOAD(x + i);
                a = p == 1 ? wasm_f32x4_add(a, wasm_f32x4_abs(v)) : VMADD(v, v, a);
            }
            acc = (wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1)) +
                  (wasm_f32x4_extract_lane(a, 2) + wasm_f32x4_extract_lane(a, 3));
        }
        for (; i < size; i++) acc += powi(__builtin_fabsf(x[i]), p);
        y[pl] = root(acc, p);
    }
}

KERNEL void f32_global_maxpool(int planes, int size, const float* x, float* y) {
    for (int pl = 0; pl < planes; pl++, x += size) {
        float m = -__builtin_inff();
        int i = 0;
        if (size >= 4) {
            v128_t a = VLOAD(x);
            for (i = 4; i + 4 <= size; i += 4) a = wasm_f32x4_pmax(a, VLOAD(x + i));
            for (int l = 0; l < 4; l++) {
                float v = wasm_f32x4_extract_lane(a, 0);
                a = wasm_i32x4_shuffle(a, a, 1, 2, 3, 0);
                m = v > m ? v : m;
            }
        }
        for (; i < size; i++) m = x[i] > m ? x[i] : m;
        y[pl] = m;
    }
}

/* MaxUnpool: y = 0, then y[at(indices[i])] = x[i] for the n elements of x. An index addresses the tensor
 * shaped [planes, ID, IH, IW] (the unpooled shape inferred from the pooling attributes); at() places it
 * in y [planes, OD, OH, OW] at the same coordinates (output_shape may be larger: zeros past the inferred
 * extent). Indices outside the inferred tensor are skipped. layout = ID IH IW OD OH OW. */
KERNEL void f32_maxunpool(int n, int planes, const int32_t* layout, const float* x, const int64_t* indices, float* y) {
    long ID = layout[0], IH = layout[1], IW = layout[2], OD = layout[3], OH = layout[4], OW = layout[5];
    long in_plane = ID * IH * IW, out_plane = OD * OH * OW;
    __builtin_memset(y, 0, (unsigned long)(planes * out_plane) * sizeof(float));
    long total = planes * in_plane;
    for (int i = 0; i < n; i++) {
        int64_t idx = indices[i];
        if (idx < 0 || idx >= total) continue;
        long pl = (long)(idx / in_plane), r = (long)(idx % in_plane);
        long d = r / (IH * IW), h = (r / IW) % IH, w = r % IW;
        y[pl * out_plane + (d * OH + h) * OW + w] = x[i];
    }
}
