/* Shared by every kernel: types, the FMA macro that differs between the SIMD128 and relaxed-SIMD builds,
 * and the elementary functions (no libc in a freestanding wasm module, so exp/log are ours).
 *
 * Calling convention of every exported kernel: pointers are byte addresses into the one imported memory,
 * sizes are int32 element counts, scalars are float32. Kernels never allocate; scratch space is a pointer
 * the planner reserved in the arena. */
#pragma once
#include <stdint.h>
#include <wasm_simd128.h>

#define KERNEL __attribute__((visibility("default")))
#define INLINE static inline __attribute__((always_inline))

#ifdef __wasm_relaxed_simd__
/* a*b + c in one rounding when the engine fuses; results may differ from the SIMD128 build in the last bit. */
#define VMADD(a, b, c) wasm_f32x4_relaxed_madd((a), (b), (c))
#else
#define VMADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul((a), (b)), (c))
#endif

#define VSPLAT(x) wasm_f32x4_splat(x)
#define VLOAD(p) wasm_v128_load(p)
#define VSTORE(p, v) wasm_v128_store((p), (v))

INLINE int imin(int a, int b) { return a < b ? a : b; }
INLINE int imax(int a, int b) { return a > b ? a : b; }

/* exp(x) for 4 lanes: Cody-Waite range reduction x = n*ln2 + r, |r| <= ln2/2, then a degree-6 polynomial
 * (Cephes expf coefficients, ~1 ulp) scaled by 2^n built in the exponent bits. Inputs are clamped so that
 * 2^n stays a normal float: exp(-87.3) ~ 1e-38 stands in for underflow, exp(88.3) ~ 2e38 for overflow. */
INLINE v128_t v_exp(v128_t x) {
    x = wasm_f32x4_max(wasm_f32x4_min(x, VSPLAT(88.3762626647949f)), VSPLAT(-87.3365447504f));
    v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, VSPLAT(1.44269504088896341f)));
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, VSPLAT(0.693359375f)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, VSPLAT(-2.12194440e-4f)));
    v128_t p = VSPLAT(1.9875691500e-4f);
    p = VMADD(p, r, VSPLAT(1.3981999507e-3f));
    p = VMADD(p, r, VSPLAT(8.3334519073e-3f));
    p = VMADD(p, r, VSPLAT(4.1665795894e-2f));
    p = VMADD(p, r, VSPLAT(1.6666665459e-1f));
    p = VMADD(p, r, VSPLAT(5.0000001201e-1f));
    p = VMADD(p, wasm_f32x4_mul(r, r), wasm_f32x4_add(r, VSPLAT(1.0f)));
    v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
    return wasm_f32x4_mul(p, scale);
}

INLINE float s_exp(float x) { return wasm_f32x4_extract_lane(v_exp(VSPLAT(x)), 0); }

/* log(x) for positive normal x: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by the Cephes logf
 * polynomial in (m - 1). Used by LRN's pow, so a scalar version suffices. */
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
    y += fe * -2.12194440e-4f;
    y += -0.5f * z;
    return m + y + fe * 0.693359375f;
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

#define F32_INF __builtin_inff()

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
    y = VMADD(fe, VSPLAT(-2.12194440e-4f), y);
    y = VMADD(z, VSPLAT(-0.5f), y);
    v128_t r = VMADD(fe, VSPLAT(0.693359375f), wasm_f32x4_add(m, y));
    r = wasm_v128_bitselect(VSPLAT(-F32_INF), r, wasm_f32x4_eq(x, VSPLAT(0.0f)));
    r = wasm_v128_bitselect(VSPLAT(__builtin_nanf("")), r, wasm_f32x4_lt(x, VSPLAT(0.0f)));
    /* +inf and NaN come out as themselves */
    return wasm_v128_bitselect(x, r, wasm_v128_or(wasm_f32x4_eq(x, VSPLAT(F32_INF)), wasm_f32x4_ne(x, x)));
}

INLINE v128_t v_sigmoid(v128_t x) {
    return wasm_f32x4_div(VSPLAT(1.0f), wasm_f32x4_add(VSPLAT(1.0f), v_exp(wasm_f32x4_neg(x))));
}

/* Activations, by the codes the plan passes (wasm_runtime/ops/activation.py holds the same table).
 * The standalone activation kernels and the GEMM/convolution epilogues both go through v_activate, so a
 * fused activation rounds exactly like the unfused one. */
enum {
    ACT_NONE = 0,
    ACT_RELU = 1,
    ACT_CLIP = 2,        /* p0 = min, p1 = max */
    ACT_LEAKY_RELU = 3,  /* p0 = alpha */
    ACT_SIGMOID = 4,
    ACT_HARD_SIGMOID = 5, /* p0 = alpha, p1 = beta */
    ACT_HARD_SWISH = 6,
    ACT_TANH = 7,
    ACT_SILU = 8,
};

INLINE v128_t v_hard_sigmoid(v128_t v, v128_t alpha, v128_t beta) {
    return wasm_f32x4_min(wasm_f32x4_max(VMADD(v, alpha, beta), VSPLAT(0.0f)), VSPLAT(1.0f));
}

INLINE v128_t v_activate(v128_t v, int act, float p0, float p1) {
    switch (act) {
    case ACT_RELU: return wasm_f32x4_max(v, VSPLAT(0.0f));
    case ACT_CLIP: return wasm_f32x4_min(wasm_f32x4_max(v, VSPLAT(p0)), VSPLAT(p1));
    case ACT_LEAKY_RELU: return wasm_v128_bitselect(v, wasm_f32x4_mul(v, VSPLAT(p0)), wasm_f32x4_ge(v, VSPLAT(0.0f)));
    case ACT_SIGMOID: return v_sigmoid(v);
    case ACT_HARD_SIGMOID: return v_hard_sigmoid(v, VSPLAT(p0), VSPLAT(p1));
    case ACT_HARD_SWISH: return wasm_f32x4_mul(v, v_hard_sigmoid(v, VSPLAT(1.0f / 6.0f), VSPLAT(0.5f)));
    case ACT_TANH: return v_tanh(v);
    case ACT_SILU: return wasm_f32x4_mul(v, v_sigmoid(v));
    default: return v;
    }
}

/* Epilogues unrolled over many registers (a GEMM tile, depthwise taps) apply in registers only the activations
 * that are one or two instructions (ReLU, Clip); the others run afterwards over the stored outputs, through
 * activate_row_outlined. Inlined at every register, each exp-based activation was one more copy of its code
 * per accumulator (83% of the GEMM's 200 KB), and calling it there would spill live accumulators. Same
 * operations either way, so the same bits. */
INLINE int act_in_registers(int act) { return act == ACT_NONE || act == ACT_RELU || act == ACT_CLIP; }

/* v_activate for the codes act_in_registers accepts; v itself for the others */
INLINE v128_t v_activate_in_registers(v128_t v, int act, float p0, float p1) {
    switch (act) {
    case ACT_RELU: return v_activate(v, ACT_RELU, p0, p1);
    case ACT_CLIP: return v_activate(v, ACT_CLIP, p0, p1);
    default: return v;
    }
}

/* activate_row (below), compiled once in f32-vunary-wasmsimd.c */
void activate_row_outlined(const float* x, float* y, const float* res, int n, int act, float p0, float p1);

/* activate_row's loop for one activation code (a constant after inlining) */
INLINE void activate_row_as(const float* x, float* y, const float* res, int n, int act, float p0, float p1) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t v = VLOAD(x + i);
        if (res) v = wasm_f32x4_add(v, VLOAD(res + i));
        VSTORE(y + i, v_activate(v, act, p0, p1));
    }
    for (; i < n; i++) {
        float v = x[i] + (res ? res[i] : 0.0f);
        y[i] = wasm_f32x4_extract_lane(v_activate(VSPLAT(v), act, p0, p1), 0);
    }
}

/* y[i] = act(x[i] + (res ? res[i] : 0)) for n contiguous elements; x == y allowed. One loop per code, so that
 * with a run-time code (activate_row_outlined) the switch runs once per row, not once per vector. */
INLINE void activate_row(const float* x, float* y, const float* res, int n, int act, float p0, float p1) {
    switch (act) {
    case ACT_RELU: activate_row_as(x, y, res, n, ACT_RELU, p0, p1); break;
    case ACT_CLIP: activate_row_as(x, y, res, n, ACT_CLIP, p0, p1); break;
    case ACT_LEAKY_RELU: activate_row_as(x, y, res, n, ACT_LEAKY_RELU, p0, p1); break;
    case ACT_SIGMOID: activate_row_as(x, y, res, n, ACT_SIGMOID, p0, p1); break;
    case ACT_HARD_SIGMOID: activate_row_as(x, y, res, n, ACT_HARD_SIGMOID, p0, p1); break;
    case ACT_HARD_SWISH: activate_row_as(x, y, res, n, ACT_HARD_SWISH, p0, p1); break;
    case ACT_TANH: activate_row_as(x, y, res, n, ACT_TANH, p0, p1); break;
    case ACT_SILU: activate_row_as(x, y, res, n, ACT_SILU, p0, p1); break;
    default: activate_row_as(x, y, res, n, ACT_NONE, p0, p1); break;
    }
}
