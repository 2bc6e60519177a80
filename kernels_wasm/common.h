/* Shared by every kernel: types and the FMA macro that differs between the SIMD128 and relaxed-SIMD builds.
 * The elementary functions (exp, log, ...) are in vmath.h, the activations' code in activation.h.
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

/* Activations, by the codes the plan passes (wasm_runtime/ops/activation.py holds the same table).
 * Their functions are in activation.h. */
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
