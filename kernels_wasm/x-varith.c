/* Broadcasting arithmetic beyond f32 Add/Sub/Mul/Div (f32-vbinary-wasmsimd.c): float Max/Min/Mod, integer
 * Add/Sub/Mul/Div/Mod/Max/Min, BitShift. Layouts and the (layout, start, count, ...) convention:
 * binary-walk.h. Integer arithmetic wraps (two's complement) and never traps: x / 0 and x % 0 give 0,
 * INT_MIN / -1 gives INT_MIN. */
#include "binary-walk.h"

#define BINOP_KERNEL(name, T, OP)                                                                        \
    WALK2_ROW(name##_row, T, T, T, OP)                                                                 \
    WALK2_EXPORT(name, T, T, T, name##_row)

#define VOP_KERNEL(name, VOP)                                                                            \
    F32_VROW(name##_row, VOP)                                                                          \
    WALK2_EXPORT(name, float, float, float, name##_row)

/* ---- float: Max/Min propagate NaN (wasm min/max are IEEE 754-2019 minimum/maximum) ---- */
VOP_KERNEL(f32_max, wasm_f32x4_max)
VOP_KERNEL(f32_min, wasm_f32x4_min)

/* fmod(x, y), exact (the result is always representable): x = mx * 2^ex, y = my * 2^ey with integer
 * mantissas below 2^24; mx * 2^(ex - ey) mod my by shifting at most 39 bits at a time in 64-bit integers,
 * then scaled back by 2^ey (exact in double) with the sign of x. */
static float s_fmod(float x, float y) {
    union { float f; uint32_t i; } ux = {x}, uy = {y};
    uint32_t ax = ux.i & 0x7fffffff, ay = uy.i & 0x7fffffff;
    if (ay == 0 || ay > 0x7f800000 || ax >= 0x7f800000) return (x * y) / (x * y); /* NaN */
    if (ax < ay) return x; /* also y = +-inf */
    int ex = (int)(ax >> 23), ey = (int)(ay >> 23);
    uint64_t mx = ax & 0x7fffff, my = ay & 0x7fffff;
    if (ex) mx |= 0x800000; else ex = 1; /* subnormals: exponent of the smallest normal, no implicit bit */
    if (ey) my |= 0x800000; else ey = 1;
    uint64_t r = mx % my;
    for (int d = ex - ey; d > 0;) {
        int s = d > 39 ? 39 : d;
        r = (r << s) % my;
        d -= s;
    }
    union { double f; uint64_t i; } scale = {.i = (uint64_t)(ey - 150 + 1023) << 52};
    float m = (float)((double)r * scale.f);
    return (ux.i >> 31) ? -m : m;
}

/* numpy's mod (the result takes the sign of the divisor): fmod, then + y when the signs differ */
static float s_mod(float x, float y) {
    float m = s_fmod(x, y);
    if (y == 0.0f) return m;
    if (m != 0.0f) {
        if ((y < 0.0f) != (m < 0.0f)) m += y;
        return m;
    }
    return y < 0.0f ? -0.0f : 0.0f;
}

#define OP_FMOD(a, b) s_fmod(a, b)
#define OP_MOD(a, b) s_mod(a, b)
BINOP_KERNEL(f32_fmod, float, OP_FMOD)
BINOP_KERNEL(f32_mod, float, OP_MOD)

/* ---- integers ---- */
#define OP_ADD(U, a, b) (U)((U)(a) + (U)(b))
#define OP_SUB(U, a, b) (U)((U)(a) - (U)(b))
#define OP_MUL(U, a, b) (U)((U)(a) * (U)(b))
#define OP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define OP_MIN(a, b) ((a) < (b) ? (a) : (b))

/* Integer division or remainder by zero stops the run (`unreachable`), as onnxruntime fails the run ("Integer
 * division by zero") rather than make up a value. */
INLINE int32_t i32_sdiv(int32_t a, int32_t b) {
    if (b == 0) __builtin_trap();
    if (b == -1) return (int32_t)(0u - (uint32_t)a);
    return a / b;
}
INLINE int64_t i64_sdiv(int64_t a, int64_t b) {
    if (b == 0) __builtin_trap();
    if (b == -1) return (int64_t)(0ull - (uint64_t)a);
    return a / b;
}
/* C remainder (sign of the dividend) */
INLINE int32_t i32_srem(int32_t a, int32_t b) {
    if (b == 0) __builtin_trap();
    return b == -1 ? 0 : a % b;
}
INLINE int64_t i64_srem(int64_t a, int64_t b) {
    if (b == 0) __builtin_trap();
    return b == -1 ? 0 : a % b;
}
/* Python's modulo (sign of the divisor) */
INLINE int32_t i32_smod(int32_t a, int32_t b) {
    int32_t r = i32_srem(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
INLINE int64_t i64_smod(int64_t a, int64_t b) {
    int64_t r = i64_srem(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

#define OP_ADD32(a, b) OP_ADD(uint32_t, a, b)
#define OP_SUB32(a, b) OP_SUB(uint32_t, a, b)
#define OP_MUL32(a, b) OP_MUL(uint32_t, a, b)
#define OP_ADD64(a, b) OP_ADD(uint64_t, a, b)
#define OP_SUB64(a, b) OP_SUB(uint64_t, a, b)
#define OP_MUL64(a, b) OP_MUL(uint64_t, a, b)

BINOP_KERNEL(i32_add, int32_t, OP_ADD32)
BINOP_KERNEL(i32_sub, int32_t, OP_SUB32)
BINOP_KERNEL(i32_mul, int32_t, OP_MUL32)
BINOP_KERNEL(i32_div, int32_t, i32_sdiv)
BINOP_KERNEL(i32_fmod, int32_t, i32_srem)
BINOP_KERNEL(i32_mod, int32_t, i32_smod)
BINOP_KERNEL(i32_max, int32_t, OP_MAX)
BINOP_KERNEL(i32_min, int32_t, OP_MIN)
BINOP_KERNEL(i64_add, int64_t, OP_ADD64)
BINOP_KERNEL(i64_sub, int64_t, OP_SUB64)
BINOP_KERNEL(i64_mul, int64_t, OP_MUL64)
BINOP_KERNEL(i64_div, int64_t, i64_sdiv)
BINOP_KERNEL(i64_fmod, int64_t, i64_srem)
BINOP_KERNEL(i64_mod, int64_t, i64_smod)
BINOP_KERNEL(i64_max, int64_t, OP_MAX)
BINOP_KERNEL(i64_min, int64_t, OP_MIN)

/* ---- BitShift: a shift count outside [0, bits) (negative counts read as huge unsigned ones) shifts every
 * bit out: LEFT and unsigned RIGHT give 0, signed RIGHT gives the sign (0 or -1). ---- */
#define OP_SHL(U, BITS, a, b) ((U)(b) < (BITS) ? (U)((U)(a) << (U)(b)) : (U)0)
#define OP_SHR_U(U, BITS, a, b) ((U)(b) < (BITS) ? (U)((U)(a) >> (U)(b)) : (U)0)
#define OP_SHR_S(U, BITS, a, b) ((a) >> ((U)(b) < (BITS) ? (U)(b) : (U)((BITS) - 1)))

#define OP_SHL8(a, b) OP_SHL(uint8_t, 8, a, b)
#define OP_SHL16(a, b) OP_SHL(uint16_t, 16, a, b)
#define OP_SHL32(a, b) OP_SHL(uint32_t, 32, a, b)
#define OP_SHL64(a, b) OP_SHL(uint64_t, 64, a, b)
#define OP_SHRU8(a, b) OP_SHR_U(uint8_t, 8, a, b)
#define OP_SHRU16(a, b) OP_SHR_U(uint16_t, 16, a, b)
#define OP_SHRU32(a, b) OP_SHR_U(uint32_t, 32, a, b)
#define OP_SHRU64(a, b) OP_SHR_U(uint64_t, 64, a, b)
#define OP_SHRS8(a, b) (int8_t)OP_SHR_S(uint8_t, 8, a, b)
#define OP_SHRS16(a, b) (int16_t)OP_SHR_S(uint16_t, 16, a, b)
#define OP_SHRS32(a, b) OP_SHR_S(uint32_t, 32, a, b)
#define OP_SHRS64(a, b) OP_SHR_S(uint64_t, 64, a, b)

BINOP_KERNEL(x8_shl, uint8_t, OP_SHL8)
BINOP_KERNEL(x16_shl, uint16_t, OP_SHL16)
BINOP_KERNEL(x32_shl, uint32_t, OP_SHL32)
BINOP_KERNEL(x64_shl, uint64_t, OP_SHL64)
BINOP_KERNEL(u8_shr, uint8_t, OP_SHRU8)
BINOP_KERNEL(u16_shr, uint16_t, OP_SHRU16)
BINOP_KERNEL(u32_shr, uint32_t, OP_SHRU32)
BINOP_KERNEL(u64_shr, uint64_t, OP_SHRU64)
BINOP_KERNEL(i8_shr, int8_t, OP_SHRS8)
BINOP_KERNEL(i16_shr, int16_t, OP_SHRS16)
BINOP_KERNEL(i32_shr, int32_t, OP_SHRS32)
BINOP_KERNEL(i64_shr, int64_t, OP_SHRS64)
