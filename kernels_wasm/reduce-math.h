/* Math shared by the reduction kernels (f32-reduce-wasmsimd.c): a 4-lane log with IEEE special cases, and
 * lane-wise helpers. */
#pragma once
#include "common.h"

#define F32_INF __builtin_inff()

/* log(x) for 4 lanes, the Cephes logf polynomial as in common.h's s_log (~1 ulp), plus what a reduction can
 * feed it: subnormals (scaled by 2^23 first), 0 -> -inf, x < 0 -> NaN, +inf -> +inf, NaN -> NaN. */
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

/* all ones in the lanes holding a finite value */
INLINE v128_t v_isfinite(v128_t x) { return wasm_f32x4_lt(wasm_f32x4_abs(x), VSPLAT(F32_INF)); }
