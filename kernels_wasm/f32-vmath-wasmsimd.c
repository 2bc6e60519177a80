/* Elementwise math ops (ops/unary.py): y[i] = f(x[i]) for n elements (x == y allowed), and two-input ops
 * with numpy broadcasting (PRelu, Pow). The functions are in vmath.h.
 *
 * Every element, tail included, goes through the same 4-lane function (the last n % 4 through a padded
 * copy), so a result does not depend on where a thread's chunk starts. */
#include "vmath.h"

/* ---------------------------------------------------------------------------------------------------------
 * unary: F(v, p0, p1) on 4 lanes, p0/p1 the op's float attributes splatted */

#define UNARY_LOOP(F, x, y, n, P0, P1)                                        \
    do {                                                                      \
        int i = 0;                                                            \
        for (; i + 4 <= n; i += 4) VSTORE(y + i, F(VLOAD(x + i), P0, P1));    \
        if (i < n) {                                                          \
            float t[4] = {0, 0, 0, 0};                                        \
            for (int j = 0; j < n - i; j++) t[j] = x[i + j];                  \
            VSTORE(t, F(VLOAD(t), P0, P1));                                   \
            for (int j = 0; j < n - i; j++) y[i + j] = t[j];                  \
        }                                                                     \
    } while (0)

#define UNARY_KERNEL(name, F) \
    KERNEL void name(const float* x, float* y, int n) { UNARY_LOOP(F, x, y, n, VSPLAT(0.0f), VSPLAT(0.0f)); }
#define UNARY1_KERNEL(name, F)                                  \
    KERNEL void name(const float* x, float* y, int n, float a) { \
        v128_t va = VSPLAT(a);                                  \
        UNARY_LOOP(F, x, y, n, va, va);                         \
    }
#define UNARY2_KERNEL(name, F)                                           \
    KERNEL void name(const float* x, float* y, int n, float a, float b) { \
        v128_t va = VSPLAT(a), vb = VSPLAT(b);                           \
        UNARY_LOOP(F, x, y, n, va, vb);                                  \
    }

#define UNUSED(a, b) ((void)(a), (void)(b))
INLINE v128_t f_abs(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_abs(x); }
INLINE v128_t f_neg(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_neg(x); }
INLINE v128_t f_sqrt(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_sqrt(x); }
INLINE v128_t f_reciprocal(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_div(VSPLAT(1.0f), x); }
INLINE v128_t f_floor(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_floor(x); }
INLINE v128_t f_ceil(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_ceil(x); }
INLINE v128_t f_round(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_nearest(x); } /* half to even */
INLINE v128_t f_exp(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_exp(x); }
INLINE v128_t f_log(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_log(x); }
INLINE v128_t f_erf(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_erf(x); }
INLINE v128_t f_sin(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_sin(x); }
INLINE v128_t f_cos(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_cos(x); }
INLINE v128_t f_tan(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_tan(x); }
INLINE v128_t f_asin(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_asin(x); }
INLINE v128_t f_acos(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_acos(x); }
INLINE v128_t f_atan(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_atan(x); }
INLINE v128_t f_sinh(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_sinh(x); }
INLINE v128_t f_cosh(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_cosh(x); }
INLINE v128_t f_asinh(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_asinh(x); }
INLINE v128_t f_acosh(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_acosh(x); }
INLINE v128_t f_atanh(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_atanh(x); }

/* 1, -1, 0 (signed zero kept) or nan */
INLINE v128_t f_sign(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    v128_t s = vm_copysign(VSPLAT(1.0f), x);
    v128_t zero_or_nan = wasm_v128_not(wasm_f32x4_gt(wasm_f32x4_abs(x), VSPLAT(0.0f)));
    return vm_sel(zero_or_nan, x, s);
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
INLINE v128_t f_softplus(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    v128_t e = vm_exp(wasm_f32x4_neg(wasm_f32x4_abs(x)));
    return wasm_f32x4_add(wasm_f32x4_max(x, VSPLAT(0.0f)), vm_log1p(e));
}

INLINE v128_t f_softsign(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    return wasm_f32x4_div(x, wasm_f32x4_add(VSPLAT(1.0f), wasm_f32x4_abs(x)));
}

/* x < 0 ? alpha (e^x - 1) : x */
INLINE v128_t f_elu(v128_t x, v128_t alpha, v128_t b) {
    UNUSED(b, b);
    return vm_sel(wasm_f32x4_gt(x, VSPLAT(0.0f)), x, wasm_f32x4_mul(alpha, vm_expm1(x)));
}

/* gamma * (x > 0 ? x : alpha (e^x - 1)) */
INLINE v128_t f_selu(v128_t x, v128_t alpha, v128_t gamma) {
    return wasm_f32x4_mul(gamma, f_elu(x, alpha, alpha));
}

/* max(0, x) + min(0, alpha (e^(x/alpha) - 1)) */
INLINE v128_t f_celu(v128_t x, v128_t alpha, v128_t b) {
    UNUSED(b, b);
    v128_t neg = wasm_f32x4_mul(alpha, vm_expm1(wasm_f32x4_div(x, alpha)));
    return wasm_f32x4_add(wasm_f32x4_max(x, VSPLAT(0.0f)), wasm_f32x4_min(neg, VSPLAT(0.0f)));
}

/* x (1 + erf(x / sqrt 2)) / 2 = x erfc(z) / 2 with z = -x / sqrt 2: 1 - erf z for -1 < z < 1/2, the
 * erfc tail above (relative accuracy kept for x << 0, the exponent -x^2/2 taken from x itself, exactly
 * halved, not from the rounded z) and 2 - erfc |z| below. */
INLINE v128_t f_gelu(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    v128_t z = wasm_f32x4_mul(x, VSPLAT(-0.70710678118654752f));
    v128_t lo, hi = vm_neg_square(wasm_f32x4_max(wasm_f32x4_min(x, VSPLAT(15.0f)), VSPLAT(-15.0f)), &lo);
    v128_t tail = vm_erfc_core(wasm_f32x4_abs(z), wasm_f32x4_mul(hi, VSPLAT(0.5f)), wasm_f32x4_mul(lo, VSPLAT(0.5f)));
    tail = vm_sel(wasm_f32x4_lt(z, VSPLAT(0.0f)), wasm_f32x4_sub(VSPLAT(2.0f), tail), tail);
    v128_t mid = wasm_f32x4_sub(wasm_f32x4_sub(VSPLAT(1.0f), z), vm_erf_small(z));
    v128_t in_mid = wasm_v128_and(wasm_f32x4_gt(z, VSPLAT(-1.0f)), wasm_f32x4_lt(z, VSPLAT(0.5f)));
    return wasm_f32x4_mul(wasm_f32x4_mul(x, VSPLAT(0.5f)), vm_sel(in_mid, mid, tail));
}

/* x sigmoid(s), with e^-|s| so that neither side overflows: sigmoid s = 1/(1 + e^-s) for s >= 0, else
 * e^s/(1 + e^s) */
INLINE v128_t vm_x_sigmoid(v128_t x, v128_t s) {
    v128_t e = vm_exp(wasm_f32x4_neg(wasm_f32x4_abs(s)));
    v128_t num = vm_sel(wasm_f32x4_lt(s, VSPLAT(0.0f)), wasm_f32x4_mul(x, e), x);
    return wasm_f32x4_div(num, wasm_f32x4_add(VSPLAT(1.0f), e));
}

/* x (1 + tanh z) / 2 with z = sqrt(2/pi) (x + 0.044715 x^3), as x sigmoid(2z) (no cancellation for x < 0) */
INLINE v128_t f_gelu_tanh(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    v128_t x3 = wasm_f32x4_mul(wasm_f32x4_mul(x, x), x);
    v128_t z2 = wasm_f32x4_mul(VMADD(x3, VSPLAT(0.044715f), x), VSPLAT(1.5957691216057308f)); /* 2 sqrt(2/pi) */
    return vm_x_sigmoid(x, z2);
}

/* x tanh(log(1 + e^x)) = x n / (n + 2) with n = e^x (e^x + 2) */
INLINE v128_t f_mish(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    v128_t e = vm_exp(wasm_f32x4_min(x, VSPLAT(20.0f)));
    v128_t n = wasm_f32x4_mul(e, wasm_f32x4_add(e, VSPLAT(2.0f)));
    return wasm_f32x4_mul(x, wasm_f32x4_div(n, wasm_f32x4_add(n, VSPLAT(2.0f))));
}

/* x sigmoid(alpha x) */
INLINE v128_t f_swish(v128_t x, v128_t alpha, v128_t b) {
    UNUSED(b, b);
    return vm_x_sigmoid(x, wasm_f32x4_mul(alpha, x));
}

INLINE v128_t f_thresholded_relu(v128_t x, v128_t alpha, v128_t b) {
    UNUSED(b, b);
    return wasm_v128_and(x, wasm_f32x4_gt(x, alpha));
}

/* x < -lambd ? x + bias : x > lambd ? x - bias : 0 */
INLINE v128_t f_shrink(v128_t x, v128_t lambd, v128_t bias) {
    v128_t lo = wasm_v128_and(wasm_f32x4_add(x, bias), wasm_f32x4_lt(x, wasm_f32x4_neg(lambd)));
    return vm_sel(wasm_f32x4_gt(x, lambd), wasm_f32x4_sub(x, bias), lo);
}

INLINE v128_t f_pow(v128_t x, v128_t p, v128_t b) {
    UNUSED(b, b);
    return vm_pow(x, p);
}
INLINE v128_t f_copy(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return x; }
INLINE v128_t f_square(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_mul(x, x); }
INLINE v128_t f_cube(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return wasm_f32x4_mul(wasm_f32x4_mul(x, x), x); }
/* pow(x, 1/2) is sqrt x except pow(-0, 1/2) = +0 and pow(-inf, 1/2) = +inf */
INLINE v128_t f_pow_half(v128_t x, v128_t a, v128_t b) {
    UNUSED(a, b);
    v128_t r = wasm_f32x4_add(wasm_f32x4_sqrt(x), VSPLAT(0.0f));
    return vm_sel(wasm_f32x4_eq(x, VSPLAT(-F32_INF)), VSPLAT(F32_INF), r);
}

UNARY_KERNEL(f32_abs, f_abs)
UNARY_KERNEL(f32_neg, f_neg)
UNARY_KERNEL(f32_sqrt, f_sqrt)
UNARY_KERNEL(f32_reciprocal, f_reciprocal)
UNARY_KERNEL(f32_floor, f_floor)
UNARY_KERNEL(f32_ceil, f_ceil)
UNARY_KERNEL(f32_round, f_round)
UNARY_KERNEL(f32_sign, f_sign)
UNARY_KERNEL(f32_exp, f_exp)
UNARY_KERNEL(f32_log, f_log)
UNARY_KERNEL(f32_erf, f_erf)
UNARY_KERNEL(f32_sin, f_sin)
UNARY_KERNEL(f32_cos, f_cos)
UNARY_KERNEL(f32_tan, f_tan)
UNARY_KERNEL(f32_asin, f_asin)
UNARY_KERNEL(f32_acos, f_acos)
UNARY_KERNEL(f32_atan, f_atan)
UNARY_KERNEL(f32_sinh, f_sinh)
UNARY_KERNEL(f32_cosh, f_cosh)
UNARY_KERNEL(f32_asinh, f_asinh)
UNARY_KERNEL(f32_acosh, f_acosh)
UNARY_KERNEL(f32_atanh, f_atanh)
UNARY_KERNEL(f32_softplus, f_softplus)
UNARY_KERNEL(f32_softsign, f_softsign)
UNARY_KERNEL(f32_gelu, f_gelu)
UNARY_KERNEL(f32_gelu_tanh, f_gelu_tanh)
UNARY_KERNEL(f32_mish, f_mish)
UNARY1_KERNEL(f32_elu, f_elu)
UNARY1_KERNEL(f32_celu, f_celu)
UNARY1_KERNEL(f32_swish, f_swish)
UNARY1_KERNEL(f32_thresholded_relu, f_thresholded_relu)
UNARY2_KERNEL(f32_selu, f_selu)
UNARY2_KERNEL(f32_shrink, f_shrink)

/* x^p with one exponent for the whole tensor: p = 1, 2, 3, -1 and 1/2 take exact shortcuts (x*x*x rounds
 * twice, as onnxruntime's), every other p the general pow */
KERNEL void f32_pow_scalar(const float* x, float* y, int n, float p) {
    v128_t vp = VSPLAT(p);
    if (p == 1.0f) {
        UNARY_LOOP(f_copy, x, y, n, vp, vp);
    } else if (p == 2.0f) {
        UNARY_LOOP(f_square, x, y, n, vp, vp);
    } else if (p == 3.0f) {
        UNARY_LOOP(f_cube, x, y, n, vp, vp);
    } else if (p == -1.0f) {
        UNARY_LOOP(f_reciprocal, x, y, n, vp, vp);
    } else if (p == 0.5f) {
        UNARY_LOOP(f_pow_half, x, y, n, vp, vp);
    } else {
        UNARY_LOOP(f_pow, x, y, n, vp, vp);
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * float -> bool (1 byte): 16 lanes of compare masks narrowed to bytes and masked to 0/1 */

#define BOOL_KERNEL(name, M)                                                                      \
    KERNEL void name(const float* x, uint8_t* y, int n, int p0, int p1) {                         \
        v128_t m0 = VI32(p0 ? -1 : 0), m1 = VI32(p1 ? -1 : 0);                                    \
        int i = 0;                                                                                \
        for (; i + 16 <= n; i += 16) {                                                            \
            v128_t a = M(VLOAD(x + i), m0, m1), b = M(VLOAD(x + i + 4), m0, m1);                  \
            v128_t c = M(VLOAD(x + i + 8), m0, m1), d = M(VLOAD(x + i + 12), m0, m1);             \
            v128_t bytes = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d)); \
            VSTORE(y + i, wasm_v128_and(bytes, wasm_i8x16_splat(1)));                             \
        }                                                                                         \
        for (; i < n; i++) y[i] = (uint8_t)(wasm_i32x4_extract_lane(M(VSPLAT(x[i]), m0, m1), 0) & 1); \
    }

INLINE v128_t m_isnan(v128_t x, v128_t a, v128_t b) { UNUSED(a, b); return vm_isnan(x); }
/* a: detect +inf, b: detect -inf (all-ones lanes or zero) */
INLINE v128_t m_isinf(v128_t x, v128_t pos, v128_t neg) {
    return wasm_v128_or(wasm_v128_and(pos, wasm_f32x4_eq(x, VSPLAT(F32_INF))),
                        wasm_v128_and(neg, wasm_f32x4_eq(x, VSPLAT(-F32_INF))));
}

BOOL_KERNEL(f32_isnan, m_isnan)
BOOL_KERNEL(f32_isinf, m_isinf)

/* ---------------------------------------------------------------------------------------------------------
 * two inputs with numpy broadcasting. layout: dims[6], a_strides[6], b_strides[6] (elements, 0 where
 * broadcast), output contiguous; n0 replaces dims[0] (the lowering puts the outermost real dim there so
 * that threads split it). When dims[1..5] are all 1 the one dim is walked as a row with strides a_strides[0],
 * b_strides[0]. */

#define BINARY_BCAST_KERNEL(name, F)                                                                     \
    static void name##_row(const float* a, int sa, const float* b, int sb, float* y, int n) {            \
        int i = 0;                                                                                       \
        if (sa == 1 && sb == 1) {                                                                        \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, F(VLOAD(a + i), VLOAD(b + i)));                     \
        } else if (sa == 1 && sb == 0) {                                                                 \
            v128_t vb = VSPLAT(*b);                                                                      \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, F(VLOAD(a + i), vb));                               \
        } else if (sa == 0 && sb == 1) {                                                                 \
            v128_t va = VSPLAT(*a);                                                                      \
            for (; i + 4 <= n; i += 4) VSTORE(y + i, F(va, VLOAD(b + i)));                               \
        }                                                                                                \
        for (; i < n; i += 4) {                                                                          \
            float ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};                                            \
            int m = imin(4, n - i);                                                                      \
            for (int j = 0; j < m; j++) ta[j] = a[(long)(i + j) * sa], tb[j] = b[(long)(i + j) * sb];    \
            VSTORE(ta, F(VLOAD(ta), VLOAD(tb)));                                                         \
            for (int j = 0; j < m; j++) y[i + j] = ta[j];                                                \
        }                                                                                                \
    }                                                                                                    \
    KERNEL void name(const int32_t* layout, const float* a, const float* b, float* y, int n0) {          \
        const int32_t *d = layout, *as = layout + 6, *bs = layout + 12;                                  \
        if (d[1] * d[2] * d[3] * d[4] * d[5] == 1) {                                                     \
            name##_row(a, as[0], b, bs[0], y, n0);                                                       \
            return;                                                                                      \
        }                                                                                                \
        for (int i0 = 0; i0 < n0; i0++)                                                                  \
            for (int i1 = 0; i1 < d[1]; i1++)                                                            \
                for (int i2 = 0; i2 < d[2]; i2++)                                                        \
                    for (int i3 = 0; i3 < d[3]; i3++)                                                    \
                        for (int i4 = 0; i4 < d[4]; i4++) {                                              \
                            long ao = (long)i0 * as[0] + i1 * as[1] + i2 * as[2] + i3 * as[3] + i4 * as[4]; \
                            long bo = (long)i0 * bs[0] + i1 * bs[1] + i2 * bs[2] + i3 * bs[3] + i4 * bs[4]; \
                            name##_row(a + ao, as[5], b + bo, bs[5], y, d[5]);                           \
                            y += d[5];                                                                   \
                        }                                                                                \
    }

/* x < 0 ? slope x : x */
INLINE v128_t b_prelu(v128_t x, v128_t slope) {
    return vm_sel(wasm_f32x4_lt(x, VSPLAT(0.0f)), wasm_f32x4_mul(x, slope), x);
}

BINARY_BCAST_KERNEL(f32_prelu, b_prelu)
BINARY_BCAST_KERNEL(f32_pow, vm_pow)

/* ---------------------------------------------------------------------------------------------------------
 * Pow with an integer base or exponent (ta, tb: 0 float32, 1 int32, 2 int64, 3 uint32, 4 uint64; the base is
 * float32/int32/int64 and the output has its type). One element at a time: an integral exponent on an
 * integer base is exact (repeated squaring, wrapping like C's integer arithmetic); a fractional one goes
 * through float pow, truncated toward zero. */

enum { T_F32 = 0, T_I32 = 1, T_I64 = 2, T_U32 = 3, T_U64 = 4 };

/* float -> int64 toward zero without trapping (nan -> 0, out of range saturates) */
INLINE int64_t f2i64(float f) {
    if (!(f == f)) return 0;
    if (f >= 9.2233720e18f) return INT64_MAX;
    if (f <= -9.2233720e18f) return INT64_MIN;
    return (int64_t)f;
}

/* element i of p (type t) as a float; *n gets it as an integer and *exact whether that is its value (an
 * integral float in int64 range; uint64 past INT64_MAX keeps only its parity, which is what pow needs) */
INLINE float ld_num(const void* p, long i, int t, int64_t* n, int* exact) {
    *exact = 1;
    switch (t) {
    case T_I32: *n = ((const int32_t*)p)[i]; return (float)*n;
    case T_I64: *n = ((const int64_t*)p)[i]; return (float)*n;
    case T_U32: *n = ((const uint32_t*)p)[i]; return (float)*n;
    case T_U64: {
        uint64_t u = ((const uint64_t*)p)[i];
        *n = u > (uint64_t)INT64_MAX ? INT64_MAX - 1 + (int64_t)(u & 1) : (int64_t)u;
        return (float)u;
    }
    default: {
        float f = ((const float*)p)[i];
        *exact = f == __builtin_truncf(f) && __builtin_fabsf(f) < 9.2e18f;
        *n = *exact ? (int64_t)f : 0;
        return f;
    }
    }
}

static int64_t ipow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return (int64_t)r;
}

static float spow(float x, float y) { return wasm_f32x4_extract_lane(vm_pow(VSPLAT(x), VSPLAT(y)), 0); }

KERNEL void x_pow(const int32_t* layout, const void* a, const void* b, void* y, int n0, int ta, int tb) {
    const int32_t *d = layout, *as = layout + 6, *bs = layout + 12;
    long k = 0;
    for (int i0 = 0; i0 < n0; i0++)
        for (int i1 = 0; i1 < d[1]; i1++)
            for (int i2 = 0; i2 < d[2]; i2++)
                for (int i3 = 0; i3 < d[3]; i3++)
                    for (int i4 = 0; i4 < d[4]; i4++)
                        for (int i5 = 0; i5 < d[5]; i5++, k++) {
                            long ai = (long)i0 * as[0] + i1 * as[1] + i2 * as[2] + i3 * as[3] + i4 * as[4] + i5 * as[5];
                            long bi = (long)i0 * bs[0] + i1 * bs[1] + i2 * bs[2] + i3 * bs[3] + i4 * bs[4] + i5 * bs[5];
                            int64_t base, e;
                            int base_int, e_int;
                            float fb = ld_num(a, ai, ta, &base, &base_int), fe = ld_num(b, bi, tb, &e, &e_int);
                            if (ta == T_F32)
                                ((float*)y)[k] = spow(fb, fe);
                            else if (ta == T_I64)
                                ((int64_t*)y)[k] = e_int ? ipow(base, e) : f2i64(spow(fb, fe));
                            else
                                ((int32_t*)y)[k] = (int32_t)(e_int ? ipow(base, e) : f2i64(spow(fb, fe)));
                        }
}
