/* Elementwise activations, y[i] = f(x[i]) for n elements; x == y (in place) is allowed.
 * Each kernel is generated from one template: a 4-wide body and a scalar tail that reuses the vector
 * function on a splat, so both paths round identically. */
#include "common.h"

#define UNARY_KERNEL(name, PARAMS, SETUP, EXPR)                                 \
    KERNEL void name(const float* x, float* y, int n PARAMS) {                  \
        SETUP;                                                                  \
        int i = 0;                                                              \
        for (; i + 4 <= n; i += 4) {                                            \
            v128_t v = VLOAD(x + i);                                            \
            VSTORE(y + i, EXPR);                                                \
        }                                                                       \
        for (; i < n; i++) {                                                    \
            v128_t v = VSPLAT(x[i]);                                            \
            y[i] = wasm_f32x4_extract_lane(EXPR, 0);                            \
        }                                                                       \
    }

#define NOTHING
#define COMMA ,

UNARY_KERNEL(f32_relu, NOTHING, v128_t zero = VSPLAT(0.0f), wasm_f32x4_max(v, zero))
UNARY_KERNEL(f32_clip, COMMA float lo COMMA float hi, v128_t vlo = VSPLAT(lo); v128_t vhi = VSPLAT(hi),
             wasm_f32x4_min(wasm_f32x4_max(v, vlo), vhi))
UNARY_KERNEL(f32_leaky_relu, COMMA float alpha, v128_t va = VSPLAT(alpha),
             wasm_v128_bitselect(v, wasm_f32x4_mul(v, va), wasm_f32x4_ge(v, VSPLAT(0.0f))))
UNARY_KERNEL(f32_hard_sigmoid, COMMA float alpha COMMA float beta, v128_t va = VSPLAT(alpha); v128_t vb = VSPLAT(beta),
             wasm_f32x4_min(wasm_f32x4_max(VMADD(v, va, vb), VSPLAT(0.0f)), VSPLAT(1.0f)))
/* HardSwish(x) = x * HardSigmoid(x; alpha = 1/6, beta = 0.5) */
UNARY_KERNEL(f32_hard_swish, NOTHING, v128_t va = VSPLAT(1.0f / 6.0f),
             wasm_f32x4_mul(v, wasm_f32x4_min(wasm_f32x4_max(VMADD(v, va, VSPLAT(0.5f)), VSPLAT(0.0f)), VSPLAT(1.0f))))
UNARY_KERNEL(f32_sigmoid, NOTHING, (void)0, v_sigmoid(v))
UNARY_KERNEL(f32_tanh, NOTHING, (void)0, v_tanh(v))
