/* The activation functions of ONNX's recurrent ops (RNN, GRU, LSTM), by the codes
 * wasm_runtime/ops/rnn.py passes (ACTIVATIONS there holds the same table). */
#pragma once
#include "activation.h"

enum {
    RNN_RELU = 1,
    RNN_TANH = 2,
    RNN_SIGMOID = 3,
    RNN_AFFINE = 4,           /* alpha * x + beta */
    RNN_LEAKY_RELU = 5,       /* x >= 0 ? x : alpha * x */
    RNN_THRESHOLDED_RELU = 6, /* x >= alpha ? x : 0 */
    RNN_SCALED_TANH = 7,      /* alpha * tanh(beta * x) */
    RNN_HARD_SIGMOID = 8,     /* min(max(alpha * x + beta, 0), 1) */
    RNN_ELU = 9,              /* x >= 0 ? x : alpha * (exp(x) - 1) */
    RNN_SOFTSIGN = 10,        /* x / (1 + |x|) */
    RNN_SOFTPLUS = 11,        /* log(1 + exp(x)) */
};

/* the less common activations, out of line: each gate's inlined code stays small */
__attribute__((noinline)) static v128_t rnn_activate_other(v128_t x, int code, float alpha, float beta) {
    v128_t zero = VSPLAT(0.0f);
    switch (code) {
    case RNN_RELU: return wasm_f32x4_max(x, zero);
    case RNN_AFFINE: return VMADD(x, VSPLAT(alpha), VSPLAT(beta));
    case RNN_LEAKY_RELU: return wasm_v128_bitselect(x, wasm_f32x4_mul(x, VSPLAT(alpha)), wasm_f32x4_ge(x, zero));
    case RNN_THRESHOLDED_RELU: return wasm_v128_and(x, wasm_f32x4_ge(x, VSPLAT(alpha)));
    case RNN_SCALED_TANH: return wasm_f32x4_mul(VSPLAT(alpha), v_tanh(wasm_f32x4_mul(x, VSPLAT(beta))));
    case RNN_HARD_SIGMOID: return v_hard_sigmoid(x, VSPLAT(alpha), VSPLAT(beta));
    case RNN_ELU: {
        v128_t neg = wasm_f32x4_mul(VSPLAT(alpha), wasm_f32x4_sub(v_exp(wasm_f32x4_min(x, zero)), VSPLAT(1.0f)));
        return wasm_v128_bitselect(x, neg, wasm_f32x4_ge(x, zero));
    }
    case RNN_SOFTSIGN: return wasm_f32x4_div(x, wasm_f32x4_add(VSPLAT(1.0f), wasm_f32x4_abs(x)));
    case RNN_SOFTPLUS: /* max(x, 0) + log(1 + exp(-|x|)): no overflow for large x */
        return wasm_f32x4_add(wasm_f32x4_max(x, zero),
                              v_log(wasm_f32x4_add(VSPLAT(1.0f), v_exp(wasm_f32x4_neg(wasm_f32x4_abs(x))))));
    default: return x;
    }
}

INLINE v128_t rnn_activate(v128_t x, int code, float alpha, float beta) {
    if (code == RNN_SIGMOID) return v_sigmoid(x);
    if (code == RNN_TANH) return v_tanh(x);
    return rnn_activate_other(x, code, alpha, beta);
}
