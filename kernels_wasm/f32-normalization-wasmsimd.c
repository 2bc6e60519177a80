/* Normalizations that compute statistics at run time: LayerNormalization / RMSNormalization (rows of a
 * [rows, cols] view), GroupNormalization / InstanceNormalization (groups of channel planes),
 * BatchNormalization with run-time parameters (and its training mode), LpNormalization along one axis and
 * MeanVarianceNormalization over any set of axes.
 *
 * Means and variances are two-pass (mean first, then the mean of squared deviations), summed 4 lanes wide
 * in float32. */
#include "common.h"

INLINE float hsum(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

static float sum_of(const float* x, int n) {
    v128_t a0 = VSPLAT(0.0f), a1 = VSPLAT(0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = wasm_f32x4_add(a0, VLOAD(x + i));
        a1 = wasm_f32x4_add(a1, VLOAD(x + i + 4));
    }
    if (i + 4 <= n) {
        a0 = wasm_f32x4_add(a0, VLOAD(x + i));
        i += 4;
    }
    float s = hsum(wasm_f32x4_add(a0, a1));
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum of (x - m)^2 */
static float sqdev_of(const float* x, int n, float m) {
    v128_t vm = VSPLAT(m), a0 = VSPLAT(0.0f), a1 = VSPLAT(0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        v128_t d0 = wasm_f32x4_sub(VLOAD(x + i), vm), d1 = wasm_f32x4_sub(VLOAD(x + i + 4), vm);
        a0 = VMADD(d0, d0, a0);
        a1 = VMADD(d1, d1, a1);
    }
    if (i + 4 <= n) {
        v128_t d0 = wasm_f32x4_sub(VLOAD(x + i), vm);
        a0 = VMADD(d0, d0, a0);
        i += 4;
    }
    float s = hsum(wasm_f32x4_add(a0, a1));
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

/* y = x * a + b over n elements */
static void affine(const float* x, float* y, int n, float a, float b) {
    v128_t va = VSPLAT(a), vb = VSPLAT(b);
    int i = 0;
    for (; i + 4 <= n; i += 4) VSTORE(y + i, VMADD(VLOAD(x + i), va, vb));
    for (; i < n; i++) y[i] = x[i] * a + b;
}

/* LayerNormalization (rms = 0) and RMSNormalization (rms = 1) of each row of a [rows, cols] view:
 *   y = (x - mean) * invstd * scale + bias      invstd = 1 / sqrt(var + eps)
 *   y = x * invstd * scale                      invstd = 1 / sqrt(mean(x^2) + eps)   (rms)
 * scale/bias broadcast over the row by `layout` = dims[6], scale strides[6], bias strides[6] (the row's
 * shape folded, ops/layout.py broadcast_layout; the innermost strides are 0 or 1). bias, mean, invstd may
 * be null; mean/invstd receive one value per row. Threads split rows. */
KERNEL void f32_layernorm(int rows, int cols, const float* x, float* y, const float* scale, const float* bias,
                          const int32_t* layout, float* mean_out, float* invstd_out, float eps, int rms) {
    const int32_t *d = layout, *ss = layout + 6, *bs = layout + 12;
    for (int r = 0; r < rows; r++, x += cols, y += cols) {
        float mean = 0.0f, var;
        if (rms) {
            var = sqdev_of(x, cols, 0.0f) / (float)cols;
        } else {
            mean = sum_of(x, cols) / (float)cols;
            var = sqdev_of(x, cols, mean) / (float)cols;
        }
        float inv = 1.0f / __builtin_sqrtf(var + eps);
        if (mean_out) mean_out[r] = mean;
        if (invstd_out) invstd_out[r] = inv;
        v128_t vm = VSPLAT(mean), vi = VSPLAT(inv);
        const float* xp = x;
        float* yp = y;
        for (int i0 = 0; i0 < d[0]; i0++)
            for (int i1 = 0; i1 < d[1]; i1++)
                for (int i2 = 0; i2 < d[2]; i2++)
                    for (int i3 = 0; i3 < d[3]; i3++)
                        for (int i4 = 0; i4 < d[4]; i4++) {
                            long so = (long)i0 * ss[0] + i1 * ss[1] + i2 * ss[2] + i3 * ss[3] + i4 * ss[4];
                            long bo = (long)i0 * bs[0] + i1 * bs[1] + i2 * bs[2] + i3 * bs[3] + i4 * bs[4];
                            const float* sp = scale + so;
                            const float* bp = bias ? bias + bo : 0;
                            int n = d[5], s1 = ss[5], b1 = bs[5];
                            int i = 0;
                            v128_t sv = VSPLAT(sp[0]), bv = VSPLAT(bp ? bp[0] : 0.0f);
                            for (; i + 4 <= n; i += 4) {
                                v128_t v = wasm_f32x4_mul(wasm_f32x4_sub(VLOAD(xp + i), vm), vi);
                                v128_t s = s1 ? VLOAD(sp + i) : sv;
                                v128_t b = bp && b1 ? VLOAD(bp + i) : bv;
                                VSTORE(yp + i, VMADD(v, s, b));
                            }
                            for (; i < n; i++) {
                                float v = (xp[i] - mean) * inv;
                                yp[i] = v * sp[i * s1] + (bp ? bp[i * b1] : 0.0f);
                            }
                            xp += n;
                            yp += n;
                        }
    }
}

/* GroupNormalization / InstanceNormalization over x [N, G * cpg, inner]: statistics per (n, g) over the
 * group's cpg * inner contiguous elements, then y = (x - mean) * invstd * scale + bias with scale/bias per
 * channel (per_group = 0) or per group (opset 18's GroupNormalization, per_group = 1). n_stride is the
 * element distance between images (C * inner), so that threads can split the groups (x, y, scale, bias
 * advanced to the chunk's first group, G its number of groups). */
KERNEL void f32_groupnorm(int G, int N, int cpg, int inner, int n_stride, const float* x, const float* scale,
                          const float* bias, float* y, float eps, int per_group) {
    int len = cpg * inner;
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < G; g++) {
            const float* xg = x + (long)n * n_stride + (long)g * len;
            float* yg = y + (long)n * n_stride + (long)g * len;
            float mean = sum_of(xg, len) / (float)len;
            float inv = 1.0f / __builtin_sqrtf(sqdev_of(xg, len, mean) / (float)len + eps);
            for (int c = 0; c < cpg; c++) {
                int k = per_group ? g : g * cpg + c;
                float a = scale[k] * inv;
                affine(xg + (long)c * inner, yg + (long)c * inner, inner, a, bias[k] - mean * a);
            }
        }
    }
}

/* BatchNormalization, inference, with scale/bias/mean/var tensors computed at run time (the constant case
 * is folded at package time into f32_channel_affine): y = (x - mean) / sqrt(var + eps) * scale + bias per
 * channel of x [N, C, inner]. Threads split the channels (n_stride = C * inner). */
KERNEL void f32_batchnorm(int C, int N, int inner, int n_stride, const float* x, const float* scale,
                          const float* bias, const float* mean, const float* var, float* y, float eps) {
    for (int c = 0; c < C; c++) {
        float a = scale[c] / __builtin_sqrtf(var[c] + eps);
        float b = bias[c] - mean[c] * a;
        for (int n = 0; n < N; n++) {
            long off = (long)n * n_stride + (long)c * inner;
            affine(x + off, y + off, inner, a, b);
        }
    }
}

/* BatchNormalization, training mode: the statistics are the batch's (mean and biased variance over N and
 * the spatial dims of each channel), y is normalized with them, and the running statistics are updated:
 * out_mean = in_mean * momentum + mean * (1 - momentum), out_var likewise with the variance (either output
 * may be null). */
KERNEL void f32_batchnorm_train(int C, int N, int inner, int n_stride, const float* x, const float* scale,
                                const float* bias, const float* in_mean, const float* in_var, float* y,
                                float* out_mean, float* out_var, float eps, float momentum) {
    float count = (float)N * (float)inner;
    for (int c = 0; c < C; c++) {
        float s = 0.0f;
        for (int n = 0; n < N; n++) s += sum_of(x + (long)n * n_stride + (long)c * inner, inner);
        float mean = s / count;
        float q = 0.0f;
        for (int n = 0; n < N; n++) q += sqdev_of(x + (long)n * n_stride + (long)c * inner, inner, mean);
        float var = q / count;
        float a = scale[c] / __builtin_sqrtf(var + eps);
        float b = bias[c] - mean * a;
        for (int n = 0; n < N; n++) {
            long off = (long)n * n_stride + (long)c * inner;
            affine(x + off, y + off, inner, a, b);
        }
        if (out_mean) out_mean[c] = in_mean[c] * momentum + mean * (1.0f - momentum);
        if (out_var) out_var[c] = in_var[c] * momentum + var * (1.0f - momentum);
    }
}

/* LpNormalization along the middle axis of x [outer, L, inner], p = 1 or 2: y = x / ||x||_p, and 0 where
 * the norm is 0. The norms of one outer slice are accumulated in y's first row (l = 0), which is written
 * last. Threads split `outer`. */
KERNEL void f32_lpnorm(int outer, int L, int inner, int p, const float* x, float* y) {
    for (int o = 0; o < outer; o++, x += (long)L * inner, y += (long)L * inner) {
        if (inner == 1) {
            float s;
            if (p == 1) {
                v128_t acc = VSPLAT(0.0f);
                int i = 0;
                for (; i + 4 <= L; i += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_abs(VLOAD(x + i)));
                s = hsum(acc);
                for (; i < L; i++) s += __builtin_fabsf(x[i]);
            } else {
                s = __builtin_sqrtf(sqdev_of(x, L, 0.0f));
            }
            v128_t vs = VSPLAT(s);
            int i = 0;
            if (s != 0.0f)
                for (; i + 4 <= L; i += 4) VSTORE(y + i, wasm_f32x4_div(VLOAD(x + i), vs));
            for (; i < L; i++) y[i] = s != 0.0f ? x[i] / s : 0.0f;
            continue;
        }
        /* y[0, :] = sum over l of |x|^p, vectorized across inner */
        for (int l = 0; l < L; l++) {
            const float* xl = x + (long)l * inner;
            int i = 0;
            for (; i + 4 <= inner; i += 4) {
                v128_t v = VLOAD(xl + i);
                v = p == 1 ? wasm_f32x4_abs(v) : wasm_f32x4_mul(v, v);
                VSTORE(y + i, l ? wasm_f32x4_add(VLOAD(y + i), v) : v);
            }
            for (; i < inner; i++) {
                float v = p == 1 ? __builtin_fabsf(xl[i]) : xl[i] * xl[i];
                y[i] = l ? y[i] + v : v;
            }
        }
        if (p != 1)
            for (int i = 0; i < inner; i++) y[i] = __builtin_sqrtf(y[i]);
        for (int l = L - 1; l >= 0; l--) {
            const float* xl = x + (long)l * inner;
            float* yl = y + (long)l * inner;
            for (int i = 0; i < inner; i++) yl[i] = y[i] != 0.0f ? xl[i] / y[i] : 0.0f;
        }
    }
}

/* MeanVarianceNormalization: y = (x - mean) / (sqrt(var) + 1e-9) with mean and (biased) variance over the
 * axes whose flag is set in layout = dims[6], reduced[6] (x's shape folded so that adjacent dims of the
 * same kind merge). work holds 2 floats per kept element (the kept dims' product). */
KERNEL void f32_mvn(const int32_t* layout, const float* x, float* y, float* work) {
    const int32_t *d = layout, *red = layout + 6;
    int ks[6];
    long kept = 1, total = 1;
    for (int i = 5; i >= 0; i--) {
        ks[i] = red[i] ? 0 : (int)kept;
        if (!red[i]) kept *= d[i];
        total *= d[i];
    }
    float count = (float)(total / kept);
    float *mean = work, *dev = work + kept;
    for (long k = 0; k < kept; k++) mean[k] = dev[k] = 0.0f;
#define MVN_WALK(BODY)                                                                                   \
    {                                                                                                    \
        const float* xp = x;                                                                             \
        float* yp = y;                                                                                   \
        (void)yp;                                                                                        \
        for (int i0 = 0; i0 < d[0]; i0++)                                                                \
            for (int i1 = 0; i1 < d[1]; i1++)                                                            \
                for (int i2 = 0; i2 < d[2]; i2++)                                                        \
                    for (int i3 = 0; i3 < d[3]; i3++)                                                    \
                        for (int i4 = 0; i4 < d[4]; i4++) {                                              \
                            long k = (long)i0 * ks[0] + i1 * ks[1] + i2 * ks[2] + i3 * ks[3] + i4 * ks[4]; \
                            int n = d[5];                                                                \
                            BODY;                                                                        \
                            xp += n;                                                                     \
                            yp += n;                                                                     \
                        }                                                                                \
    }
    if (red[5]) {
        MVN_WALK(mean[k] += sum_of(xp, n));
        for (long k = 0; k < kept; k++) mean[k] /= count;
        MVN_WALK(dev[k] += sqdev_of(xp, n, mean[k]));
        for (long k = 0; k < kept; k++) dev[k] = 1.0f / (__builtin_sqrtf(dev[k] / count) + 1e-9f);
        MVN_WALK(affine(xp, yp, n, dev[k], -mean[k] * dev[k]));
    } else {
        MVN_WALK(for (int i = 0; i < n; i++) mean[k + i] += xp[i]);
        for (long k = 0; k < kept; k++) mean[k] /= count;
        MVN_WALK(for (int i = 0; i < n; i++) dev[k + i] += (xp[i] - mean[k + i]) * (xp[i] - mean[k + i]));
        for (long k = 0; k < kept; k++) dev[k] = 1.0f / (__builtin_sqrtf(dev[k] / count) + 1e-9f);
        MVN_WALK(for (int i = 0; i < n; i++) yp[i] = (xp[i] - mean[k + i]) * dev[k + i]);
    }
#undef MVN_WALK
}
