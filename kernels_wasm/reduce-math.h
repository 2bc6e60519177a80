/* Lane-wise helpers shared by the reduction kernels (f32-reduce-wasmsimd.c); their 4-lane log, v_log, is in
 * common.h. */
#pragma once
#include "common.h"

/* all ones in the lanes holding a finite value */
INLINE v128_t v_isfinite(v128_t x) { return wasm_f32x4_lt(wasm_f32x4_abs(x), VSPLAT(F32_INF)); }
