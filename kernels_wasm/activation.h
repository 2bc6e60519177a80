/* The activations, by the codes of common.h: the standalone activation kernels and the GEMM/convolution
 * epilogues both go through v_activate, so a fused activation rounds exactly like the unfused one. */
#pragma once
#include "vmath.h"

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
