/* Float32 elementary functions, for every kernel that needs one (no libm in a freestanding module, so each
 * is ours). Two families, side by side:
 *
 * - v_exp, v_log, v_tanh, v_sigmoid (4 lanes) and s_exp, s_log (scalar): what softmax, the reductions, LRN,
 *   LpPool, the fused activations and the recurrent gates compute with. Cephes polynomials, ~1 ulp for normal
 *   inputs and results; v_exp clamps to the normal range (exp(-87.3) ~ 1e-38 stands in for underflow).
 * - vm_* (4 lanes): the elementwise math ops' (f32-vmath-wasmsimd.c), a few ulp over the whole float range.
 *
 * The two exps and logs are not one function: they round differently (v_exp ends in one multiply-add and
 * scales by a normal 2^n, vm_exp adds in two steps and scales into the subnormals; v_log and vm_log use
 * different polynomials), so one in the other's place would change kernel outputs in the last bits. They share
 * the range reduction's constants and the Cephes exp polynomial.
 *
 * vm_*: range reduction to a small interval, then a polynomial fitted (minimax, coefficients rounded to float
 * one at a time) on that interval. Targets are a few ulp against the correctly rounded result over the whole
 * float range, with IEEE special values (inf, nan, signed zero where it matters) handled by selects at the end
 * rather than branches.
 *
 * Where float arithmetic cannot hold the needed precision the lanes go through f64x2: the argument reduction
 * of sin/cos/tan (x mod pi/2 with a 3-part pi/2; a scalar Payne-Hanek reduction with the bits of 2/pi for
 * |x| >= 1.6e6 and non-finite lanes) and pow (log and exp in double, rounded to float once at the end). */
#pragma once
#include "common.h"

#define VI32(x) wasm_i32x4_splat(x)
#define VF64(x) wasm_f64x2_splat(x)
#define F32_INF __builtin_inff()
#define VM_NAN __builtin_nanf("")
#define VM_SIGN_MASK VI32((int32_t)0x80000000)

/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros) */
INLINE v128_t vm_sel(v128_t mask, v128_t a, v128_t b) { return wasm_v128_bitselect(a, b, mask); }
/* |m| with the sign bit of s */
INLINE v128_t vm_copysign(v128_t m, v128_t s) {
    return wasm_v128_or(wasm_f32x4_abs(m), wasm_v128_and(s, VM_SIGN_MASK));
}
INLINE v128_t vm_isnan(v128_t x) { return wasm_f32x4_ne(x, x); }
/* all ones in the lanes holding a finite value */
INLINE v128_t v_isfinite(v128_t x) { return wasm_f32x4_lt(wasm_f32x4_abs(x), VSPLAT(F32_INF)); }
/* two f64x2 halves <-> one f32x4 */
INLINE v128_t vm_lo64(v128_t x) { return wasm_f64x2_promote_low_f32x4(x); }
INLINE v128_t vm_hi64(v128_t x) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(x, x, 2, 3, 2, 3)); }
INLINE v128_t vm_join32(v128_t lo, v128_t hi) {
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/* p * 2^n for integer lanes n in [-252, 254], in two exact steps so that 2^n need not be a normal float:
 * results past FLT_MAX become inf, results below FLT_MIN are rounded once to a subnormal (or zero). */
INLINE v128_t vm_ldexp(v128_t p, v128_t n) {
    v128_t h = wasm_i32x4_shr(n, 1);
    v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_sub(n, h), VI32(127)), 23);
    v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(h, VI32(127)), 23);
    return wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
}

/* ---------------------------------------------------------------------------------------------------------
 * exp, expm1 */

#define VM_LN2_HI 0.693359375f       /* 9 significant bits: n * LN2_HI is exact for |n| < 2^15 */
#define VM_LN2_LO -2.12194440e-4f    /* ln 2 - LN2_HI */
#define VM_LOG2E 1.44269504088896341f

/* p(r) of e^r = 1 + r + r^2 p(r) for |r| <= ln2/2 (Cephes expf polynomial, < 1 ulp) */
INLINE v128_t cephes_expf_p(v128_t r) {
    v128_t p = VSPLAT(1.9875691500e-4f);
    p = VMADD(p, r, VSPLAT(1.3981999507e-3f));
    p = VMADD(p, r, VSPLAT(8.3334519073e-3f));
    p = VMADD(p, r, VSPLAT(4.1665795894e-2f));
    p = VMADD(p, r, VSPLAT(1.6666665459e-1f));
    return VMADD(p, r, VSPLAT(5.0000001201e-1f));
}

/* exp(x) for 4 lanes: Cody-Waite range reduction x = n*ln2 + r, |r| <= ln2/2, then the Cephes polynomial
 * scaled by 2^n built in the exponent bits. Inputs are clamped so that 2^n stays a normal float:
 * exp(-87.3) ~ 1e-38 stands in for underflow, exp(88.3) ~ 2e38 for overflow. */
INLINE v128_t v_exp(v128_t x) {
    x = wasm_f32x4_max(wasm_f32x4_min(x, VSPLAT(88.3762626647949f)), VSPLAT(-87.3365447504f));
    v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, VSPLAT(VM_LOG2E)));
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, VSPLAT(VM_LN2_HI)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, VSPLAT(VM_LN2_LO)));
    v128_t p = VMADD(cephes_expf_p(r), wasm_f32x4_mul(r, r), wasm_f32x4_add(r, VSPLAT(1.0f)));
    v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
    return wasm_f32x4_mul(p, scale);
}

INLINE float s_exp(float x) { return wasm_f32x4_extract_lane(v_exp(VSPLAT(x)), 0); }

INLINE v128_t v_sigmoid(v128_t x) {
    return wasm_f32x4_div(VSPLAT(1.0f), wasm_f32x4_add(VSPLAT(1.0f), v_exp(wasm_f32x4_neg(x))));
}

/* tanh: odd Taylor series below |x| = 0.5 (where 1 - 2/(e^2x + 1) would cancel), that formula above. */
INLINE v128_t v_tanh(v128_t x) {
    v128_t ax = wasm_f32x4_abs(x);
    v128_t x2 = wasm_f32x4_mul(x, x);
    v128_t p = VSPLAT(-1382.0f / 155925.0f);
    p = VMADD(p, x2, VSPLAT(62.0f / 2835.0f));
    p = VMADD(p, x2, VSPLAT(-17.0f / 315.0f));
    p = VMADD(p, x2, VSPLAT(2.0f / 15.0f));
    p = VMADD(p, x2, VSPLAT(-1.0f / 3.0f));
    v128_t small = VMADD(wasm_f32x4_mul(p, x2), x, x);
    v128_t e = v_exp(wasm_f32x4_add(ax, ax));
    v128_t big = wasm_f32x4_sub(VSPLAT(1.0f), wasm_f32x4_div(VSPLAT(2.0f), wasm_f32x4_add(e, VSPLAT(1.0f))));
    big = wasm_v128_or(big, wasm_v128_and(x, wasm_i32x4_splat((int32_t)0x80000000))); /* copy sign */
    return wasm_v128_bitselect(small, big, wasm_f32x4_lt(ax, VSPLAT(0.5f)));
}

/* e^r - 1 - r for |r| <= ln2/2, as r^2 * p(r) */
INLINE v128_t vm_expm1_poly(v128_t r) { return wasm_f32x4_mul(cephes_expf_p(r), wasm_f32x4_mul(r, r)); }

/* e^(hi + lo) * 2^k, where lo is a small correction to hi (|lo| < 1): x = n ln2 + r with hi - n*LN2_HI exact,
 * so an argument carried as hi + lo (erfc's -x^2) keeps its low bits. Overflow gives inf, underflow 0 or a
 * correctly scaled subnormal, nan stays nan. */
INLINE v128_t vm_exp_hl(v128_t hi, v128_t lo, int k) {
    hi = wasm_f32x4_max(wasm_f32x4_min(hi, VSPLAT(90.0f)), VSPLAT(-104.0f));
    v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_add(hi, lo), VSPLAT(VM_LOG2E)));
    v128_t r = wasm_f32x4_sub(hi, wasm_f32x4_mul(n, VSPLAT(VM_LN2_HI)));
    r = wasm_f32x4_add(r, lo);
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, VSPLAT(VM_LN2_LO)));
    v128_t p = wasm_f32x4_add(wasm_f32x4_add(vm_expm1_poly(r), r), VSPLAT(1.0f));
    return vm_ldexp(p, wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), VI32(k)));
}

INLINE v128_t vm_exp(v128_t x) { return vm_exp_hl(x, VSPLAT(0.0f), 0); }

/* e^x - 1 without the cancellation near 0: with x = n ln2 + r and q = e^r - 1 (no constant term),
 * e^x - 1 = (q + (1 - 2^-n)) * 2^n, where 1 - 2^-n is exact for the n that matter. */
INLINE v128_t vm_expm1(v128_t x) {
    x = wasm_f32x4_max(wasm_f32x4_min(x, VSPLAT(90.0f)), VSPLAT(-30.0f));
    v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, VSPLAT(VM_LOG2E)));
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, VSPLAT(VM_LN2_HI)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, VSPLAT(VM_LN2_LO)));
    v128_t q = wasm_f32x4_add(vm_expm1_poly(r), r);
    v128_t ni = wasm_i32x4_trunc_sat_f32x4(n);
    v128_t inv = wasm_i32x4_shl(wasm_i32x4_sub(VI32(127), wasm_i32x4_min(ni, VI32(64))), 23); /* 2^-n */
    return vm_ldexp(wasm_f32x4_add(q, wasm_f32x4_sub(VSPLAT(1.0f), inv)), ni);
}

/* ---------------------------------------------------------------------------------------------------------
 * log, log1p */

/* log(x) for 4 lanes, the Cephes logf polynomial as in s_log (~1 ulp), plus the IEEE special cases that
 * reductions feed it: subnormals (scaled by 2^23 first), 0 -> -inf, x < 0 -> NaN, +inf -> +inf, NaN -> NaN. */
INLINE v128_t v_log(v128_t x) {
    v128_t tiny = wasm_f32x4_lt(x, VSPLAT(1.17549435e-38f));
    v128_t xs = wasm_v128_bitselect(wasm_f32x4_mul(x, VSPLAT(8388608.0f)), x, tiny);
    v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(xs, 23),
                              wasm_v128_bitselect(wasm_i32x4_splat(126 + 23), wasm_i32x4_splat(126), tiny));
    v128_t m = wasm_v128_or(wasm_v128_and(xs, wasm_i32x4_splat(0x007fffff)), wasm_i32x4_splat(0x3f000000));
    v128_t small = wasm_f32x4_lt(m, VSPLAT(0.707106781186547524f));
    e = wasm_i32x4_add(e, small); /* small lanes are all ones: e - 1 */
    m = wasm_f32x4_sub(wasm_f32x4_add(m, wasm_v128_and(m, small)), VSPLAT(1.0f));
    v128_t z = wasm_f32x4_mul(m, m);
    v128_t y = VSPLAT(7.0376836292e-2f);
    y = VMADD(y, m, VSPLAT(-1.1514610310e-1f));
    y = VMADD(y, m, VSPLAT(1.1676998740e-1f));
    y = VMADD(y, m, VSPLAT(-1.2420140846e-1f));
    y = VMADD(y, m, VSPLAT(1.4249322787e-1f));
    y = VMADD(y, m, VSPLAT(-1.6668057665e-1f));
    y = VMADD(y, m, VSPLAT(2.0000714765e-1f));
    y = VMADD(y, m, VSPLAT(-2.4999993993e-1f));
    y = VMADD(y, m, VSPLAT(3.3333331174e-1f));
    y = wasm_f32x4_mul(wasm_f32x4_mul(y, m), z);
    v128_t fe = wasm_f32x4_convert_i32x4(e);
    y = VMADD(fe, VSPLAT(VM_LN2_LO), y);
    y = VMADD(z, VSPLAT(-0.5f), y);
    v128_t r = VMADD(fe, VSPLAT(VM_LN2_HI), wasm_f32x4_add(m, y));
    r = wasm_v128_bitselect(VSPLAT(-F32_INF), r, wasm_f32x4_eq(x, VSPLAT(0.0f)));
    r = wasm_v128_bitselect(VSPLAT(VM_NAN), r, wasm_f32x4_lt(x, VSPLAT(0.0f)));
    /* +inf and NaN come out as themselves */
    return wasm_v128_bitselect(x, r, wasm_v128_or(wasm_f32x4_eq(x, VSPLAT(F32_INF)), wasm_f32x4_ne(x, x)));
}

/* log(x) for positive normal x: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by the Cephes logf
 * polynomial in (m - 1). Used by LRN's and LpPool's pow, so a scalar version suffices. */
INLINE float s_log(float x) {
    union { float f; int32_t i; } u = {x};
    int e = ((u.i >> 23) & 0xff) - 126;
    u.i = (u.i & 0x007fffff) | 0x3f000000; /* m in [0.5, 1) */
    float m = u.f;
    if (m < 0.707106781186547524f) {
        e -= 1;
        m = m + m - 1.0f;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = (float)e;
    y += fe * VM_LN2_LO;
    y += -0.5f * z;
    return m + y + fe * VM_LN2_HI;
}

/* ln x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = f - f^2/2 + f^3 L(f) for f = m - 1 (exact).
 * Subnormals are scaled up first; 0 -> -inf, inf -> inf, negative or nan -> nan. */
INLINE v128_t vm_log(v128_t x) {
    v128_t sub = wasm_f32x4_lt(x, VSPLAT(1.17549435e-38f));
    v128_t xs = vm_sel(sub, wasm_f32x4_mul(x, VSPLAT(8388608.0f)), x);
    v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(xs, 23), VI32(127));
    e = wasm_i32x4_sub(e, wasm_v128_and(sub, VI32(23)));
    v128_t m = wasm_v128_or(wasm_v128_and(xs, VI32(0x007fffff)), VI32(0x3f800000));
    v128_t big = wasm_f32x4_gt(m, VSPLAT(1.41421356f));
    m = vm_sel(big, wasm_f32x4_mul(m, VSPLAT(0.5f)), m);
    e = wasm_i32x4_sub(e, big);
    v128_t f = wasm_f32x4_sub(m, VSPLAT(1.0f));
    v128_t fe = wasm_f32x4_convert_i32x4(e);
    v128_t z = wasm_f32x4_mul(f, f);
    v128_t p = VSPLAT(0.06750956f);
    p = VMADD(p, f, VSPLAT(-0.11671449f));
    p = VMADD(p, f, VSPLAT(0.11883568f));
    p = VMADD(p, f, VSPLAT(-0.12406032f));
    p = VMADD(p, f, VSPLAT(0.14220327f));
    p = VMADD(p, f, VSPLAT(-0.16667996f));
    p = VMADD(p, f, VSPLAT(0.20002073f));
    p = VMADD(p, f, VSPLAT(-0.2500001f));
    p = VMADD(p, f, VSPLAT(0.33333313f));
    v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(p, f), z);
    y = VMADD(fe, VSPLAT(VM_LN2_LO), y);
    y = VMADD(z, VSPLAT(-0.5f), y);
    v128_t r = VMADD(fe, VSPLAT(VM_LN2_HI), wasm_f32x4_add(f, y));
    r = vm_sel(wasm_f32x4_eq(x, VSPLAT(F32_INF)), VSPLAT(F32_INF), r);
    r = vm_sel(wasm_f32x4_eq(x, VSPLAT(0.0f)), VSPLAT(-F32_INF), r);
    return vm_sel(wasm_f32x4_ge(x, VSPLAT(0.0f)), r, VSPLAT(VM_NAN));
}

/* ln(1 + u) for u >= -1: w = 1 + u rounds, (u - (w - 1)) / w puts back what the rounding lost. */
INLINE v128_t vm_log1p(v128_t u) {
    v128_t w = wasm_f32x4_add(u, VSPLAT(1.0f));
    v128_t c = wasm_f32x4_div(wasm_f32x4_sub(u, wasm_f32x4_sub(w, VSPLAT(1.0f))), w);
    v128_t odd = wasm_v128_or(wasm_f32x4_eq(w, VSPLAT(F32_INF)), wasm_f32x4_eq(w, VSPLAT(0.0f)));
    return wasm_f32x4_add(vm_log(w), wasm_v128_andnot(c, odd));
}

/* ---------------------------------------------------------------------------------------------------------
 * sin, cos, tan */

#define VM_PIO2_1 1.5707963267341256      /* first 33 bits of pi/2: j * PIO2_1 exact for j < 2^20 */
#define VM_PIO2_2 6.077100506303966e-11   /* next 33 bits */
#define VM_PIO2_3 2.0222662487959506e-21  /* pi/2 - PIO2_1 - PIO2_2 */
#define VM_REDUCE_FAST 1.6e6f             /* |x| below this: j = round(x 2/pi) < 2^20 */

/* bits of 2/pi after the binary point, 32 a word, behind one zero word (bits -31..0) */
static const uint32_t vm_two_over_pi[9] = {
    0x00000000, 0xa2f9836e, 0x4e441529, 0xfc2757d1, 0xf534ddc0, 0xdb629599, 0x3c439041, 0xfe5163ab, 0xdebbc561,
};

INLINE uint32_t vm_bits32(int p) { /* the 32 bits of the table starting at bit position p */
    uint64_t w = ((uint64_t)vm_two_over_pi[p >> 5] << 32) | vm_two_over_pi[(p >> 5) + 1];
    return (uint32_t)((w << (p & 31)) >> 32);
}

/* Payne-Hanek for one float with |x| >= 2^20: x = m 2^e (m a 24-bit integer, e >= -3), and x 2/pi mod 4 is
 * m times the 96 bits of 2/pi from bit e - 1 on, mod 2^96 (earlier bits give multiples of 4). Returns r in
 * [-pi/4, pi/4] and the quadrant in *q; inf and nan give nan. */
static double vm_reduce_big(float x, int* q) {
    union { float f; uint32_t u; } v = {x};
    uint32_t ux = v.u & 0x7fffffff;
    if (ux >= 0x7f800000) {
        *q = 0;
        return (double)(x - x);
    }
    int e = (int)(ux >> 23) - 150;
    uint64_t m = (ux & 0x007fffff) | 0x00800000;
    int p = e + 30;
    uint64_t p0 = m * vm_bits32(p + 64), p1 = m * vm_bits32(p + 32);
    uint32_t p2 = (uint32_t)m * vm_bits32(p);
    uint64_t lo = p0 + (p1 << 32);
    uint32_t hi = p2 + (uint32_t)(p1 >> 32) + (lo < p0);
    int quadrant = (int)(hi >> 30);
    int64_t frac = (int64_t)(((uint64_t)(hi & 0x3fffffff) << 32) | (lo >> 32)); /* [0, 1) in units of 2^-62 */
    if (frac >= (int64_t)1 << 61) {
        frac -= (int64_t)1 << 62;
        quadrant += 1;
    }
    double r = (double)frac * 3.4061215800865545e-19; /* pi/2 * 2^-62 */
    if (v.u >> 31) {
        r = -r;
        quadrant = -quadrant;
    }
    *q = quadrant & 3;
    return r;
}

/* x = j pi/2 + r: returns r (|r| <~ pi/4) as float, *q = j mod 4 in int lanes */
INLINE v128_t vm_reduce_pio2(v128_t x, v128_t* q) {
    v128_t xs[2] = {vm_lo64(x), vm_hi64(x)}, rs[2], js[2];
    for (int h = 0; h < 2; h++) {
        v128_t j = wasm_f64x2_nearest(wasm_f64x2_mul(xs[h], VF64(0.6366197723675814)));
        v128_t r = wasm_f64x2_sub(xs[h], wasm_f64x2_mul(j, VF64(VM_PIO2_1)));
        r = wasm_f64x2_sub(r, wasm_f64x2_mul(j, VF64(VM_PIO2_2)));
        rs[h] = wasm_f64x2_sub(r, wasm_f64x2_mul(j, VF64(VM_PIO2_3)));
        js[h] = wasm_i32x4_trunc_sat_f64x2_zero(j);
    }
    v128_t r = vm_join32(rs[0], rs[1]);
    v128_t j = wasm_i32x4_shuffle(js[0], js[1], 0, 1, 4, 5);
    v128_t slow = wasm_f32x4_ge(wasm_f32x4_abs(x), VSPLAT(VM_REDUCE_FAST));
    slow = wasm_v128_or(slow, vm_isnan(x));
    if (wasm_v128_any_true(slow)) {
        float xv[4], rv[4];
        int32_t jv[4], sv[4];
        wasm_v128_store(xv, x);
        wasm_v128_store(rv, r);
        wasm_v128_store(jv, j);
        wasm_v128_store(sv, slow);
        for (int i = 0; i < 4; i++)
            if (sv[i]) rv[i] = (float)vm_reduce_big(xv[i], &jv[i]);
        r = wasm_v128_load(rv);
        j = wasm_v128_load(jv);
    }
    *q = j;
    return r;
}

/* sin r and cos r for |r| <= pi/4 (minimax fits, < 1e-9 relative before rounding) */
INLINE v128_t vm_sin_poly(v128_t r, v128_t z) {
    v128_t p = VSPLAT(2.832806e-06f);
    p = VMADD(p, z, VSPLAT(-0.00019853079f));
    p = VMADD(p, z, VSPLAT(0.008333379f));
    p = VMADD(p, z, VSPLAT(-0.16666667f));
    return VMADD(wasm_f32x4_mul(r, z), p, r);
}
INLINE v128_t vm_cos_poly(v128_t z) {
    v128_t p = VSPLAT(-2.8878452e-07f);
    p = VMADD(p, z, VSPLAT(2.4822008e-05f));
    p = VMADD(p, z, VSPLAT(-0.001388898f));
    p = VMADD(p, z, VSPLAT(0.041666668f));
    return VMADD(wasm_f32x4_mul(z, z), p, VMADD(z, VSPLAT(-0.5f), VSPLAT(1.0f)));
}

/* sin x (shift = 0) or cos x = sin(x + pi/2) (shift = 1): quadrant j picks +-sin r or +-cos r */
INLINE v128_t vm_sin_shifted(v128_t x, int shift) {
    v128_t q;
    v128_t r = vm_reduce_pio2(x, &q);
    q = wasm_i32x4_add(q, VI32(shift));
    v128_t z = wasm_f32x4_mul(r, r);
    v128_t s = vm_sin_poly(r, z), c = vm_cos_poly(z);
    v128_t odd = wasm_i32x4_eq(wasm_v128_and(q, VI32(1)), VI32(1));
    v128_t y = vm_sel(odd, c, s);
    return wasm_v128_xor(y, wasm_i32x4_shl(wasm_v128_and(q, VI32(2)), 30));
}
INLINE v128_t vm_sin(v128_t x) { return vm_sin_shifted(x, 0); }
INLINE v128_t vm_cos(v128_t x) { return vm_sin_shifted(x, 1); }

/* tan x = tan r for even j, -1/tan r for odd j */
INLINE v128_t vm_tan(v128_t x) {
    v128_t q;
    v128_t r = vm_reduce_pio2(x, &q);
    v128_t z = wasm_f32x4_mul(r, r);
    v128_t p = VSPLAT(0.00437985f);
    p = VMADD(p, z, VSPLAT(8.471305e-05f));
    p = VMADD(p, z, VSPLAT(0.010837198f));
    p = VMADD(p, z, VSPLAT(0.021282896f));
    p = VMADD(p, z, VSPLAT(0.054059435f));
    p = VMADD(p, z, VSPLAT(0.13332672f));
    p = VMADD(p, z, VSPLAT(0.3333335f));
    v128_t t = VMADD(wasm_f32x4_mul(r, z), p, r);
    v128_t odd = wasm_i32x4_eq(wasm_v128_and(q, VI32(1)), VI32(1));
    return vm_sel(odd, wasm_f32x4_div(VSPLAT(-1.0f), t), t);
}

/* ---------------------------------------------------------------------------------------------------------
 * asin, acos, atan */

#define VM_PIO2_HI 1.5707963705062866f   /* float(pi/2) */
#define VM_PIO2_LO -4.3711390001862426e-08f
#define VM_PI_HI 3.1415927410125732f
#define VM_PI_LO -8.742278000372485e-08f
#define VM_PIO4_HI 0.7853981852531433f
#define VM_PIO4_LO -2.1855695000931213e-08f

/* asin s for |s| <= 0.5, with z = s^2 */
INLINE v128_t vm_asin_poly(v128_t s, v128_t z) {
    v128_t p = VSPLAT(0.037662905f);
    p = VMADD(p, z, VSPLAT(0.014336625f));
    p = VMADD(p, z, VSPLAT(0.031834137f));
    p = VMADD(p, z, VSPLAT(0.04451384f));
    p = VMADD(p, z, VSPLAT(0.0750052f));
    p = VMADD(p, z, VSPLAT(0.1666666f));
    return VMADD(wasm_f32x4_mul(s, z), p, s);
}

/* |x| > 1/2: asin |x| = pi/2 - 2 asin(sqrt((1 - |x|)/2)), the argument exact and <= 1/2 */
INLINE v128_t vm_asin(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t big = wasm_f32x4_gt(a, VSPLAT(0.5f));
    v128_t z = vm_sel(big, wasm_f32x4_mul(wasm_f32x4_sub(VSPLAT(1.0f), a), VSPLAT(0.5f)), wasm_f32x4_mul(a, a));
    v128_t s = vm_sel(big, wasm_f32x4_sqrt(z), a);
    v128_t p = vm_asin_poly(s, z);
    v128_t pb = wasm_f32x4_add(wasm_f32x4_sub(VSPLAT(VM_PIO2_HI), wasm_f32x4_add(p, p)), VSPLAT(VM_PIO2_LO));
    return vm_copysign(vm_sel(big, pb, p), x);
}

INLINE v128_t vm_acos(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t big = wasm_f32x4_gt(a, VSPLAT(0.5f));
    v128_t z = vm_sel(big, wasm_f32x4_mul(wasm_f32x4_sub(VSPLAT(1.0f), a), VSPLAT(0.5f)), wasm_f32x4_mul(x, x));
    v128_t s = vm_sel(big, wasm_f32x4_sqrt(z), x);
    v128_t p = vm_asin_poly(s, z);
    /* |x| <= 1/2: pi/2 - asin x; x > 1/2: 2 asin s; x < -1/2: pi - 2 asin s */
    v128_t mid = wasm_f32x4_sub(VSPLAT(VM_PIO2_HI), wasm_f32x4_sub(p, VSPLAT(VM_PIO2_LO)));
    v128_t p2 = wasm_f32x4_add(p, p);
    v128_t neg = wasm_f32x4_add(wasm_f32x4_sub(VSPLAT(VM_PI_HI), p2), VSPLAT(VM_PI_LO));
    v128_t b = vm_sel(wasm_f32x4_lt(x, VSPLAT(0.0f)), neg, p2);
    return vm_sel(big, b, mid);
}

/* atan |x| = base + atan t with t = |x| (below tan pi/8), (|x|-1)/(|x|+1) (base pi/4) or -1/|x| (above
 * tan 3pi/8, base pi/2) */
INLINE v128_t vm_atan(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t b1 = wasm_f32x4_gt(a, VSPLAT(2.41421356f));
    v128_t b2 = wasm_f32x4_gt(a, VSPLAT(0.41421356f));
    v128_t t = vm_sel(b2, wasm_f32x4_div(wasm_f32x4_sub(a, VSPLAT(1.0f)), wasm_f32x4_add(a, VSPLAT(1.0f))), a);
    t = vm_sel(b1, wasm_f32x4_div(VSPLAT(-1.0f), a), t);
    v128_t hi = vm_sel(b1, VSPLAT(VM_PIO2_HI), vm_sel(b2, VSPLAT(VM_PIO4_HI), VSPLAT(0.0f)));
    v128_t lo = vm_sel(b1, VSPLAT(VM_PIO2_LO), vm_sel(b2, VSPLAT(VM_PIO4_LO), VSPLAT(0.0f)));
    v128_t z = wasm_f32x4_mul(t, t);
    v128_t p = VSPLAT(0.043514963f);
    p = VMADD(p, z, VSPLAT(-0.0828326f));
    p = VMADD(p, z, VSPLAT(0.110095896f));
    p = VMADD(p, z, VSPLAT(-0.14279132f));
    p = VMADD(p, z, VSPLAT(0.19999802f));
    p = VMADD(p, z, VSPLAT(-0.3333333f));
    p = VMADD(wasm_f32x4_mul(t, z), p, t);
    return vm_copysign(wasm_f32x4_add(hi, wasm_f32x4_add(p, lo)), x);
}

/* ---------------------------------------------------------------------------------------------------------
 * hyperbolic functions and their inverses */

INLINE v128_t vm_sinh(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t z = wasm_f32x4_mul(x, x);
    v128_t p = VSPLAT(2.7822132e-06f);
    p = VMADD(p, z, VSPLAT(0.00019842896f));
    p = VMADD(p, z, VSPLAT(0.0083333105f));
    p = VMADD(p, z, VSPLAT(0.16666667f));
    v128_t small = VMADD(wasm_f32x4_mul(x, z), p, x);
    v128_t h = vm_exp_hl(a, VSPLAT(0.0f), -1); /* e^|x| / 2, finite up to |x| = 89.4 */
    v128_t big = vm_copysign(wasm_f32x4_sub(h, wasm_f32x4_div(VSPLAT(0.25f), h)), x);
    return vm_sel(wasm_f32x4_lt(a, VSPLAT(1.0f)), small, big);
}

INLINE v128_t vm_cosh(v128_t x) {
    v128_t h = vm_exp_hl(wasm_f32x4_abs(x), VSPLAT(0.0f), -1);
    return wasm_f32x4_add(h, wasm_f32x4_div(VSPLAT(0.25f), h));
}

/* asinh |x| = log1p(|x| + x^2 / (1 + sqrt(1 + x^2))); past 2^24 (where 1 + |x| rounds to |x|),
 * log(2|x|) = log1p(|x|) + ln 2 */
INLINE v128_t vm_asinh(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t huge = wasm_f32x4_gt(a, VSPLAT(16777216.0f));
    v128_t z = wasm_f32x4_mul(a, a);
    v128_t u = wasm_f32x4_add(a, wasm_f32x4_div(z, wasm_f32x4_add(VSPLAT(1.0f), wasm_f32x4_sqrt(wasm_f32x4_add(z, VSPLAT(1.0f))))));
    u = vm_sel(huge, a, u);
    v128_t r = wasm_f32x4_add(vm_log1p(u), wasm_v128_and(huge, VSPLAT(0.69314718f)));
    return vm_copysign(r, x);
}

/* acosh x = log1p(t + sqrt(t (t + 2))) with t = x - 1 (exact near 1); past 2^24, log(2x) */
INLINE v128_t vm_acosh(v128_t x) {
    v128_t huge = wasm_f32x4_gt(x, VSPLAT(16777216.0f));
    v128_t t = wasm_f32x4_sub(x, VSPLAT(1.0f));
    v128_t u = wasm_f32x4_add(t, wasm_f32x4_sqrt(wasm_f32x4_mul(t, wasm_f32x4_add(t, VSPLAT(2.0f)))));
    u = vm_sel(huge, x, u);
    v128_t r = wasm_f32x4_add(vm_log1p(u), wasm_v128_and(huge, VSPLAT(0.69314718f)));
    return vm_sel(wasm_f32x4_lt(x, VSPLAT(1.0f)), VSPLAT(VM_NAN), r);
}

/* atanh |x| = log1p(2|x| / (1 - |x|)) / 2, the argument as 2|x| + 2|x| |x| / (1 - |x|) below 1/2 */
INLINE v128_t vm_atanh(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t t = wasm_f32x4_add(a, a), d = wasm_f32x4_sub(VSPLAT(1.0f), a);
    v128_t u = vm_sel(wasm_f32x4_lt(a, VSPLAT(0.5f)), VMADD(t, wasm_f32x4_div(a, d), t), wasm_f32x4_div(t, d));
    u = vm_sel(wasm_f32x4_gt(a, VSPLAT(1.0f)), VSPLAT(VM_NAN), u);
    return vm_copysign(wasm_f32x4_mul(vm_log1p(u), VSPLAT(0.5f)), x);
}

/* ---------------------------------------------------------------------------------------------------------
 * erf, erfc */

/* erf x - x for |x| < 1, as x P(x^2) */
INLINE v128_t vm_erf_small(v128_t x) {
    v128_t z = wasm_f32x4_mul(x, x);
    v128_t p = VSPLAT(7.806903e-05f);
    p = VMADD(p, z, VSPLAT(-0.0007997853f));
    p = VMADD(p, z, VSPLAT(0.005187162f));
    p = VMADD(p, z, VSPLAT(-0.026853347f));
    p = VMADD(p, z, VSPLAT(0.11283579f));
    p = VMADD(p, z, VSPLAT(-0.37612626f));
    p = VMADD(p, z, VSPLAT(0.12837917f));
    return wasm_f32x4_mul(x, p);
}

/* -x^2 as hi + lo: x split into 12 + 12 bits, so hi = -xh^2 is exact */
INLINE v128_t vm_neg_square(v128_t x, v128_t* lo) {
    v128_t xh = wasm_v128_and(x, VI32((int32_t)0xfffff000));
    v128_t xl = wasm_f32x4_sub(x, xh);
    *lo = wasm_f32x4_neg(wasm_f32x4_mul(xl, wasm_f32x4_add(x, xh)));
    return wasm_f32x4_neg(wasm_f32x4_mul(xh, xh));
}

/* erfc a for a >= 1/2 (0 past 10, where it is below the smallest subnormal) given hi + lo = -a^2:
 * erfc a = t e^(-a^2 + Q(t)) with t = 1/(1 + a/2) and Q fitted on a in [1/2, 10]. Carrying a^2 in two parts
 * keeps e^(-a^2) accurate to the last bit where a^2 is large. */
INLINE v128_t vm_erfc_core(v128_t a, v128_t hi, v128_t lo) {
    v128_t ac = wasm_f32x4_max(wasm_f32x4_min(a, VSPLAT(10.0f)), VSPLAT(0.5f));
    v128_t t = wasm_f32x4_div(VSPLAT(1.0f), VMADD(ac, VSPLAT(0.5f), VSPLAT(1.0f)));
    v128_t q = VSPLAT(0.25680843f);
    q = VMADD(q, t, VSPLAT(-1.2070107f));
    q = VMADD(q, t, VSPLAT(2.2251709f));
    q = VMADD(q, t, VSPLAT(-1.9220109f));
    q = VMADD(q, t, VSPLAT(0.79260993f));
    q = VMADD(q, t, VSPLAT(-0.39760786f));
    q = VMADD(q, t, VSPLAT(0.15120676f));
    q = VMADD(q, t, VSPLAT(0.36566943f));
    q = VMADD(q, t, VSPLAT(1.000734f));
    q = VMADD(q, t, VSPLAT(-1.2655373f));
    v128_t r = wasm_f32x4_mul(t, vm_exp_hl(hi, wasm_f32x4_add(lo, q), 0));
    return vm_sel(wasm_f32x4_gt(a, VSPLAT(10.0f)), VSPLAT(0.0f), r);
}

/* erf x = 1 - erfc |x| (sign of x) for 1 <= |x| < 3.92, with erfc a degree-14 polynomial in t = |x| - 2.46,
 * fitted (near-minimax, float64) for absolute error < 2.3e-8: 1.2 ulp at most in float32, with or without
 * fused multiply-adds. No division and no exp: 2.2-2.8x faster in V8 than 1 - vm_erfc_core, whose relative
 * accuracy in erfc's tail erf does not need (it rounds to 1 there). erfc 3.92 = 2.96e-8 is below half an ulp
 * of 1, so from 3.92 on erf is +-1. */
INLINE v128_t vm_erf_big(v128_t a) {
    v128_t t = wasm_f32x4_sub(wasm_f32x4_min(a, VSPLAT(3.92f)), VSPLAT(2.46f));
    v128_t p = VSPLAT(-1.09083226e-06f);
    p = VMADD(p, t, VSPLAT(-1.06316769e-07f));
    p = VMADD(p, t, VSPLAT(1.73069930e-05f));
    p = VMADD(p, t, VSPLAT(-2.46269137e-05f));
    p = VMADD(p, t, VSPLAT(-7.57607631e-05f));
    p = VMADD(p, t, VSPLAT(2.99406238e-04f));
    p = VMADD(p, t, VSPLAT(-3.55984434e-04f));
    p = VMADD(p, t, VSPLAT(-4.59063478e-04f));
    p = VMADD(p, t, VSPLAT(2.93722632e-03f));
    p = VMADD(p, t, VSPLAT(-6.79971091e-03f));
    p = VMADD(p, t, VSPLAT(9.91416816e-03f));
    p = VMADD(p, t, VSPLAT(-9.83241294e-03f));
    p = VMADD(p, t, VSPLAT(6.53452193e-03f));
    p = VMADD(p, t, VSPLAT(-2.65624025e-03f));
    p = VMADD(p, t, VSPLAT(5.03353600e-04f));
    return vm_sel(wasm_f32x4_ge(a, VSPLAT(3.92f)), VSPLAT(1.0f), wasm_f32x4_sub(VSPLAT(1.0f), p));
}

INLINE v128_t vm_erf(v128_t x) {
    v128_t a = wasm_f32x4_abs(x);
    v128_t small = wasm_f32x4_add(x, vm_erf_small(x));
    return vm_sel(wasm_f32x4_lt(a, VSPLAT(1.0f)), small, vm_copysign(vm_erf_big(a), x));
}

/* ---------------------------------------------------------------------------------------------------------
 * pow */

/* 2^n for integral f64x2 lanes n in [-1022, 1023] */
INLINE v128_t vm_exp2i64(v128_t n) {
    v128_t ni = wasm_i64x2_extend_low_i32x4(wasm_i32x4_trunc_sat_f64x2_zero(n));
    return wasm_i64x2_shl(wasm_i64x2_add(ni, wasm_i64x2_splat(1023)), 52);
}

/* |x|^y for finite x > 0 (other x are the caller's): ln x and y ln x in double (ln m = 2 atanh s with
 * s = (m-1)/(m+1), |s| < 0.172, 8 terms), e^(y ln x) in double, rounded to float once. */
INLINE v128_t vm_pow_core(v128_t x, v128_t y) {
    v128_t sub = wasm_f32x4_lt(x, VSPLAT(1.17549435e-38f));
    v128_t xs = vm_sel(sub, wasm_f32x4_mul(x, VSPLAT(8388608.0f)), x);
    v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(xs, 23), VI32(127));
    e = wasm_i32x4_sub(e, wasm_v128_and(sub, VI32(23)));
    v128_t m = wasm_v128_or(wasm_v128_and(xs, VI32(0x007fffff)), VI32(0x3f800000));
    v128_t big = wasm_f32x4_gt(m, VSPLAT(1.41421356f));
    m = vm_sel(big, wasm_f32x4_mul(m, VSPLAT(0.5f)), m);
    e = wasm_i32x4_sub(e, big);
    v128_t ms[2] = {vm_lo64(m), vm_hi64(m)};
    v128_t ys[2] = {vm_lo64(y), vm_hi64(y)};
    v128_t es[2] = {wasm_f64x2_convert_low_i32x4(e), wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(e, e, 2, 3, 2, 3))};
    v128_t out[2];
    for (int h = 0; h < 2; h++) {
        v128_t s = wasm_f64x2_div(wasm_f64x2_sub(ms[h], VF64(1.0)), wasm_f64x2_add(ms[h], VF64(1.0)));
        v128_t z = wasm_f64x2_mul(s, s);
        v128_t p = VF64(2.0 / 15);
        p = wasm_f64x2_add(wasm_f64x2_mul(p, z), VF64(2.0 / 13));
        p = wasm_f64x2_add(wasm_f64x2_mul(p, z), VF64(2.0 / 11));
        p = wasm_f64x2_add(wasm_f64x2_mul(p, z), VF64(2.0 / 9));
        p = wasm_f64x2_add(wasm_f64x2_mul(p, z), VF64(2.0 / 7));
        p = wasm_f64x2_add(wasm_f64x2_mul(p, z), VF64(2.0 / 5));
        p = wasm_f64x2_add(wasm_f64x2_mul(p, z), VF64(2.0 / 3));
        v128_t lg = wasm_f64x2_add(wasm_f64x2_add(s, s), wasm_f64x2_mul(wasm_f64x2_mul(s, z), p));
        lg = wasm_f64x2_add(wasm_f64x2_mul(es[h], VF64(0.6931471805599453)), lg);
        v128_t t = wasm_f64x2_mul(ys[h], lg);
        t = wasm_f64x2_max(wasm_f64x2_min(t, VF64(100.0)), VF64(-110.0));
        v128_t n = wasm_f64x2_nearest(wasm_f64x2_mul(t, VF64(1.4426950408889634)));
        v128_t r = wasm_f64x2_sub(t, wasm_f64x2_mul(n, VF64(6.93147180369123816490e-01)));
        r = wasm_f64x2_sub(r, wasm_f64x2_mul(n, VF64(1.90821492927058770002e-10)));
        v128_t q = VF64(1.0 / 362880);
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0 / 40320));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0 / 5040));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0 / 720));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0 / 120));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0 / 24));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0 / 6));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(0.5));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0));
        q = wasm_f64x2_add(wasm_f64x2_mul(q, r), VF64(1.0));
        out[h] = wasm_f64x2_mul(q, vm_exp2i64(n));
    }
    return vm_join32(out[0], out[1]);
}

/* x^y with C's pow special cases (pow(x, 0) = pow(1, y) = 1, negative x needs an integral y, ...) */
INLINE v128_t vm_pow(v128_t x, v128_t y) {
    v128_t ax = wasm_f32x4_abs(x);
    v128_t r = vm_pow_core(ax, y);
    /* |x| 0 or inf: 0 or inf by the sign of y ln|x| */
    v128_t edge = wasm_v128_or(wasm_f32x4_eq(ax, VSPLAT(0.0f)), wasm_f32x4_eq(ax, VSPLAT(F32_INF)));
    v128_t up = wasm_i32x4_eq(wasm_f32x4_eq(ax, VSPLAT(F32_INF)), wasm_f32x4_gt(y, VSPLAT(0.0f)));
    r = vm_sel(edge, vm_sel(up, VSPLAT(F32_INF), VSPLAT(0.0f)), r);
    r = vm_sel(wasm_f32x4_eq(ax, VSPLAT(1.0f)), VSPLAT(1.0f), r);
    r = vm_sel(wasm_v128_or(vm_isnan(x), vm_isnan(y)), VSPLAT(VM_NAN), r);
    /* negative base: nan unless y is an integer, sign flipped for odd y (every float >= 2^24 is even) */
    v128_t yint = wasm_f32x4_eq(wasm_f32x4_nearest(y), y);
    v128_t finite_neg = wasm_v128_and(wasm_f32x4_lt(x, VSPLAT(0.0f)), wasm_f32x4_gt(x, VSPLAT(-F32_INF)));
    r = vm_sel(wasm_v128_andnot(finite_neg, yint), VSPLAT(VM_NAN), r);
    v128_t small = wasm_f32x4_lt(wasm_f32x4_abs(y), VSPLAT(16777216.0f));
    v128_t odd = wasm_i32x4_shl(wasm_i32x4_trunc_sat_f32x4(y), 31);
    odd = wasm_v128_and(odd, wasm_v128_and(yint, small));
    r = wasm_v128_xor(r, wasm_v128_and(odd, wasm_v128_and(x, VM_SIGN_MASK)));
    v128_t one = wasm_v128_or(wasm_f32x4_eq(y, VSPLAT(0.0f)), wasm_f32x4_eq(x, VSPLAT(1.0f)));
    return vm_sel(one, VSPLAT(1.0f), r);
}
