/* Resize / Upsample, separable: one pass per resized axis over a [outer, n_in, inner] view, each output
 * row (outer index r, output coordinate o) a weighted sum of a few consecutive input rows.
 *
 * Per-axis table (int32 words), for n_out output coordinates and `taps` weights per coordinate:
 *     start[n_out]   first input coordinate read
 *     count[n_out]   how many consecutive input coordinates (0: extrapolate, the output is a constant)
 *     weight[n_out * taps] (float32 bits)
 * Edge clamping is folded in (taps that clamp to the same input coordinate add up), so the coordinates an
 * output reads are always start .. start + count - 1, inside the input.
 *
 * With constant scales the lowering (wasm_runtime/ops/resize.py) computes the tables at package time;
 * otherwise resize_table computes them at run time from the scales / sizes / roi tensors, with the same
 * float64 arithmetic as the ONNX reference implementation (so nearest-mode ties round the same way). */
#include "common.h"

/* ----------------------------------------------------------------------------------------------------- */
/* applying a table */

/* units [first, first + count) of the outer * n_out output rows (unit u = r * n_out + o). */
KERNEL void f32_resize_axis(int first, int count, int n_out, int inner, const float* x, int n_in, float* y,
                            const int32_t* table, int taps, float extrapolation) {
    const int32_t* start = table;
    const int32_t* cnt = table + n_out;
    const float* weights = (const float*)(table + 2 * n_out);
    if (inner == 1) { /* resizing the last axis: one element per unit */
        int r = first / n_out, o = first - r * n_out;
        const float* xr = x + (long)r * n_in;
        for (int u = first; u < first + count; u++, o++) {
            if (o == n_out) {
                o = 0;
                xr += n_in;
            }
            const int c = cnt[o];
            const float* src = xr + start[o];
            const float* w = weights + (long)o * taps;
            float s = c ? w[0] * src[0] : extrapolation;
            for (int t = 1; t < c; t++) s += w[t] * src[t];
            y[u] = s;
        }
        return;
    }
    for (int u = first; u < first + count; u++) {
        int r = u / n_out, o = u - r * n_out;
        float* dst = y + (long)u * inner;
        int c = cnt[o];
        if (c == 0) {
            int i = 0;
            for (; i + 4 <= inner; i += 4) VSTORE(dst + i, VSPLAT(extrapolation));
            for (; i < inner; i++) dst[i] = extrapolation;
            continue;
        }
        const float* src = x + ((long)r * n_in + start[o]) * inner;
        const float* w = weights + (long)o * taps;
        if (c == 1 && w[0] == 1.0f) {
            __builtin_memcpy(dst, src, (unsigned)inner * sizeof(float));
            continue;
        }
        int i = 0;
        for (; i + 8 <= inner; i += 8) {
            v128_t w0 = VSPLAT(w[0]);
            v128_t a = wasm_f32x4_mul(w0, VLOAD(src + i)), b = wasm_f32x4_mul(w0, VLOAD(src + i + 4));
            for (int t = 1; t < c; t++) {
                v128_t wt = VSPLAT(w[t]);
                const float* s = src + (long)t * inner + i;
                a = VMADD(wt, VLOAD(s), a);
                b = VMADD(wt, VLOAD(s + 4), b);
            }
            VSTORE(dst + i, a);
            VSTORE(dst + i + 4, b);
        }
        for (; i + 4 <= inner; i += 4) {
            v128_t a = wasm_f32x4_mul(VSPLAT(w[0]), VLOAD(src + i));
            for (int t = 1; t < c; t++) a = VMADD(VSPLAT(w[t]), VLOAD(src + (long)t * inner + i), a);
            VSTORE(dst + i, a);
        }
        for (; i < inner; i++) {
            float s = w[0] * src[i];
            for (int t = 1; t < c; t++) s += w[t] * src[(long)t * inner + i];
            dst[i] = s;
        }
    }
}

/* Nearest for any element type: copies whole rows of row_bytes (inner * element size); `extrapolation`
 * points to one element of esize bytes, written where the table's count is 0. */
KERNEL void x_resize_nearest_axis(int first, int count, int n_out, int row_bytes, const uint8_t* x, int n_in,
                                  uint8_t* y, const int32_t* table, const uint8_t* extrapolation, int esize) {
    const int32_t* start = table;
    const int32_t* cnt = table + n_out;
    for (int u = first; u < first + count; u++) {
        int r = u / n_out, o = u - r * n_out;
        uint8_t* dst = y + (long)u * row_bytes;
        if (cnt[o] == 0) {
            for (int i = 0; i < row_bytes; i += esize) __builtin_memcpy(dst + i, extrapolation, (unsigned)esize);
            continue;
        }
        __builtin_memcpy(dst, x + ((long)r * n_in + start[o]) * row_bytes, (unsigned)row_bytes);
    }
}

/* ----------------------------------------------------------------------------------------------------- */
/* computing a table at run time (scales, sizes or roi are tensors) */

enum { MODE_NEAREST = 0, MODE_LINEAR = 1, MODE_CUBIC = 2 };
enum {
    CT_HALF_PIXEL = 0,
    CT_ASYMMETRIC = 1,
    CT_PYTORCH_HALF_PIXEL = 2,
    CT_TF_HALF_PIXEL_FOR_NN = 3,
    CT_ALIGN_CORNERS = 4,
    CT_TF_CROP_AND_RESIZE = 5,
    CT_HALF_PIXEL_SYMMETRIC = 6,
};
enum { NEAR_ROUND_PREFER_FLOOR = 0, NEAR_ROUND_PREFER_CEIL = 1, NEAR_FLOOR = 2, NEAR_CEIL = 3, NEAR_SIMPLE = 4 };
enum { POLICY_STRETCH = 0, POLICY_NOT_LARGER = 1, POLICY_NOT_SMALLER = 2 };

/* cfg: the node's attributes and static shapes, written by the lowering */
enum {
    CFG_RANK = 0,
    CFG_MODE,
    CFG_CTM,
    CFG_NEAREST,
    CFG_EXCLUDE_OUTSIDE,
    CFG_ANTIALIAS,
    CFG_CUBIC_A, /* float32 bits */
    CFG_POLICY,
    CFG_LISTED, /* entries in scales / sizes (len(axes)); roi holds 2 * LISTED */
    CFG_POS,    /* rank entries: index of dim d in scales / sizes / roi, -1 when not listed */
};

INLINE double cubic_antialias_coeff(double x, double A) {
    x = __builtin_fabs(x);
    double x2 = x * x, x3 = x * x2;
    if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
    if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
    return 0.0;
}

/* raw weight of window tap i (input coordinate base + i) for ratio r in (0, 1] */
INLINE double tap_weight(int mode, int antialias, double A, double s, int i, double r) {
    if (antialias) {
        double arg = ((double)i - r) * s;
        if (mode == MODE_LINEAR) {
            double v = 1 - __builtin_fabs(arg);
            return v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        return cubic_antialias_coeff(arg, A);
    }
    if (mode == MODE_LINEAR) return i == 0 ? 1 - r : r;
    switch (i) {
    case -1: return ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
    case 0: return ((A + 2) * r - (A + 3)) * r * r + 1;
    case 1: return ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1;
    default: return ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A;
    }
}

INLINE long lclamp(long v, long lo, long hi) { return v < lo ? lo : (v > hi ? hi : v); }

KERNEL void resize_table(const int32_t* cfg, const float* scales, const int64_t* sizes, const float* roi, int axis,
                         int n_in, int n_out, int taps, int32_t* table) {
    const int rank = cfg[CFG_RANK], mode = cfg[CFG_MODE], ctm = cfg[CFG_CTM], nearest = cfg[CFG_NEAREST];
    const int exclude = cfg[CFG_EXCLUDE_OUTSIDE], antialias = cfg[CFG_ANTIALIAS], policy = cfg[CFG_POLICY];
    const int listed = cfg[CFG_LISTED];
    const int32_t* pos = cfg + CFG_POS;
    const int32_t* in_dims = pos + rank;
    union { int32_t i; float f; } bits = {cfg[CFG_CUBIC_A]};
    const double A = bits.f;
    const int p = pos[axis];

    double scale;
    if (sizes) {
        if (policy == POLICY_STRETCH) {
            scale = (double)sizes[p] / (double)n_in;
        } else {
            scale = 0;
            int seen = 0;
            for (int d = 0; d < rank; d++) {
                if (pos[d] < 0) continue;
                double s = (double)sizes[pos[d]] / (double)in_dims[d];
                if (!seen || (policy == POLICY_NOT_LARGER ? s < scale : s > scale)) scale = s;
                seen = 1;
            }
        }
    } else {
        scale = (double)scales[p];
    }
    float r0 = 0.0f, r1 = 1.0f;
    if (roi) {
        r0 = roi[p];
        r1 = roi[listed + p];
    }

    int32_t* start = table;
    int32_t* cnt = table + n_out;
    float* weights = (float*)(table + 2 * n_out);
    const double ow = scale * (double)n_in; /* the reference's output_width (not rounded) */
    const double s_aa = scale < 1 ? scale : 1;
    for (int o = 0; o < n_out; o++) {
        float* w = weights + (long)o * taps;
        for (int t = 0; t < taps; t++) w[t] = 0.0f;
        const double xr = (double)o;
        double xo;
        switch (ctm) {
        case CT_ASYMMETRIC: xo = xr / scale; break;
        case CT_PYTORCH_HALF_PIXEL: xo = n_out > 1 ? (xr + 0.5) / scale - 0.5 : 0.0; break;
        case CT_TF_HALF_PIXEL_FOR_NN: xo = (xr + 0.5) / scale; break;
        case CT_ALIGN_CORNERS: xo = ow == 1 ? 0.0 : xr * (double)(n_in - 1) / (ow - 1); break;
        case CT_TF_CROP_AND_RESIZE: {
            float span = r1 - r0, lead = r0 * (float)(n_in - 1);
            xo = ow == 1 ? (double)(span * (float)(n_in - 1) / 2.0f) : xr * (double)span * (double)(n_in - 1) / (ow - 1);
            xo += (double)lead;
            break;
        }
        case CT_HALF_PIXEL_SYMMETRIC: {
            double adjustment = (double)n_out / ow;
            double center = (double)n_in / 2;
            double offset = center * (1 - adjustment);
            xo = offset + (xr + 0.5) / scale - 0.5;
            break;
        }
        default: xo = (xr + 0.5) / scale - 0.5; break;
        }
        if (ctm == CT_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(n_in - 1))) {
            start[o] = 0;
            cnt[o] = 0;
            continue;
        }
        const double fl = __builtin_floor(xo);
        const double frac = xo - fl;
        if (mode == MODE_NEAREST) {
            long idx = (long)fl;
            if (frac != 0) {
                switch (nearest) {
                case NEAR_ROUND_PREFER_FLOOR: idx += frac > 0.5; break;
                case NEAR_ROUND_PREFER_CEIL: idx += frac >= 0.5; break;
                case NEAR_FLOOR: break;
                case NEAR_CEIL: idx += 1; break;
                default: idx += scale < 1; break; /* SIMPLE (opset <= 10): ceil when downsampling */
                }
            }
            start[o] = (int32_t)lclamp(idx, 0, n_in - 1);
            cnt[o] = 1;
            w[0] = 1.0f;
            continue;
        }
        /* the reference's window: ratio r in (0, 1], taps at base + i for i in [i0, i0 + n) */
        long base = (long)fl;
        double r = frac;
        if (frac == 0) {
            base -= 1;
            r = 1;
        }
        int i0, n;
        if (antialias) {
            i0 = (int)__builtin_floor((mode == MODE_LINEAR ? -1.0 : -2.0) / s_aa) + 1;
            n = 2 - 2 * i0;
        } else {
            i0 = mode == MODE_LINEAR ? 0 : -1;
            n = mode == MODE_LINEAR ? 2 : 4;
        }
        double sum = 0;
        for (int i = i0; i < i0 + n; i++) {
            long idx = base + i;
            if (exclude && (idx < 0 || idx >= n_in)) continue;
            sum += tap_weight(mode, antialias, A, s_aa, i, r);
        }
        const double norm = (antialias || exclude) && sum != 0 ? sum : 1.0;
        const long lo = lclamp(base + i0, 0, n_in - 1), hi = lclamp(base + i0 + n - 1, 0, n_in - 1);
        /* the first and last coordinates collect every tap clamped onto them: add those in float64 */
        double acc_lo = 0, acc_hi = 0;
        for (int i = i0; i < i0 + n; i++) {
            long idx = base + i;
            if (exclude && (idx < 0 || idx >= n_in)) continue;
            double v = tap_weight(mode, antialias, A, s_aa, i, r) / norm;
            long c = lclamp(idx, 0, n_in - 1);
            if (c == lo) acc_lo += v;
            else if (c == hi) acc_hi += v;
            else if (c - lo < taps) w[c - lo] = (float)v;
        }
        int count = (int)(hi - lo + 1);
        if (count > taps) count = taps; /* cannot happen: the lowering sizes taps for the smallest scale */
        w[0] = (float)acc_lo;
        if (count > 1) w[count - 1] = (float)acc_hi;
        /* drop zero weights at both ends */
        int j0 = 0, j1 = count - 1;
        while (j0 < j1 && w[j0] == 0.0f) j0++;
        while (j1 > j0 && w[j1] == 0.0f) j1--;
        if (j0 > 0)
            for (int j = j0; j <= j1; j++) w[j - j0] = w[j];
        for (int j = j1 - j0 + 1; j < taps; j++) w[j] = 0.0f;
        start[o] = (int32_t)(lo + j0);
        cnt[o] = j1 - j0 + 1;
    }
}
