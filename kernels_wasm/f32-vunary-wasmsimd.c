/* Elementwise activations, y[i] = f(x[i]) for n elements; x == y (in place) is allowed.
 * Each kernel is the shared activate_row (activation.h) with its activation code fixed, the same code the
 * GEMM and convolution epilogues run. */
#include "activation.h"

KERNEL void f32_relu(const float* x, float* y, int n) { activate_row(x, y, 0, n, ACT_RELU, 0, 0); }
KERNEL void f32_clip(const float* x, float* y, int n, float lo, float hi) { activate_row(x, y, 0, n, ACT_CLIP, lo, hi); }
KERNEL void f32_leaky_relu(const float* x, float* y, int n, float alpha) {
    activate_row(x, y, 0, n, ACT_LEAKY_RELU, alpha, 0);
}
KERNEL void f32_hard_sigmoid(const float* x, float* y, int n, float alpha, float beta) {
    activate_row(x, y, 0, n, ACT_HARD_SIGMOID, alpha, beta);
}
KERNEL void f32_hard_swish(const float* x, float* y, int n) { activate_row(x, y, 0, n, ACT_HARD_SWISH, 0, 0); }
KERNEL void f32_sigmoid(const float* x, float* y, int n) { activate_row(x, y, 0, n, ACT_SIGMOID, 0, 0); }
KERNEL void f32_tanh(const float* x, float* y, int n) { activate_row(x, y, 0, n, ACT_TANH, 0, 0); }

/* Clip whose bounds are run-time scalars in memory (null: unbounded on that side). */
KERNEL void f32_clip_dynamic(const float* x, float* y, int n, const float* lo, const float* hi) {
    activate_row(x, y, 0, n, ACT_CLIP, lo ? *lo : -__builtin_inff(), hi ? *hi : __builtin_inff());
}

/* activation.h's activate_row out of line, for epilogues whose activation code is a run-time argument */
void activate_row_outlined(const float* x, float* y, const float* res, int n, int act, float p0, float p1) {
    activate_row(x, y, res, n, act, p0, p1);
}
