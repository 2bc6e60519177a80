/* Cast between float32, the integer types and bool: one kernel per destination type, the source type a
 * code (wasm_runtime/ops/binary.py CAST_CODES) switched on once per call:
 *     0 float32  1 int8  2 uint8 (and bool)  3 int16  4 uint16  5 int32  6 uint32  7 int64  8 uint64
 * Integer -> integer keeps the low bits (two's complement wrap), integer -> float rounds to nearest,
 * anything -> bool is "nonzero" (NaN is true), bool -> anything is 0/1. Float -> integer truncates toward
 * zero, saturates to the range of int64 (uint64 for uint64) and gives 0 for NaN; narrower integer types
 * then keep the low bits of that, as C's conversion through int64 does. */
#include "common.h"

INLINE int64_t f2i64(float x) {
    if (x != x) return 0;
    if (x >= 9223372036854775808.0f) return INT64_MAX;
    if (x < -9223372036854775808.0f) return INT64_MIN;
    return (int64_t)x;
}

INLINE uint64_t f2u64(float x) {
    if (x >= 18446744073709551616.0f) return UINT64_MAX;
    if (x >= 9223372036854775808.0f) return (uint64_t)(x - 9223372036854775808.0f) + 0x8000000000000000ull;
    return (uint64_t)f2i64(x);
}

INLINE int32_t f2i32(float x) {
    if (x != x) return 0;
    if (x >= 2147483648.0f) return INT32_MAX;
    if (x < -2147483648.0f) return INT32_MIN;
    return (int32_t)x;
}

#define CAST_LOOP(TX, CONV)                                                                              \
    {                                                                                                  \
        const TX* xs = (const TX*)x;                                                                   \
        for (int i = 0; i < n; i++) y[i] = CONV(xs[i]);                                                \
    }                                                                                                  \
    break;

/* FROM_F: float -> TY; FROM_I: any integer (already the source C type) -> TY */
#define CAST_KERNEL(name, TY, FROM_F, FROM_I)                                                            \
    KERNEL void name(int src, const void* x, TY* y, int n) {                                          \
        switch (src) {                                                                                 \
        case 0: CAST_LOOP(float, FROM_F)                                                               \
        case 1: CAST_LOOP(int8_t, FROM_I)                                                              \
        case 2: CAST_LOOP(uint8_t, FROM_I)                                                             \
        case 3: CAST_LOOP(int16_t, FROM_I)                                                             \
        case 4: CAST_LOOP(uint16_t, FROM_I)                                                            \
        case 5: CAST_LOOP(int32_t, FROM_I)                                                             \
        case 6: CAST_LOOP(uint32_t, FROM_I)                                                            \
        case 7: CAST_LOOP(int64_t, FROM_I)                                                             \
        case 8: CAST_LOOP(uint64_t, FROM_I)                                                            \
        default: break;                                                                                \
        }                                                                                              \
    }

#define TO_F32(v) ((float)(v))
#define TO_BOOL(v) ((uint8_t)((v) != 0))
#define F_TO_I8(v) ((int8_t)f2i64(v))
#define F_TO_U8(v) ((uint8_t)f2i64(v))
#define F_TO_I16(v) ((int16_t)f2i64(v))
#define F_TO_U16(v) ((uint16_t)f2i64(v))
#define F_TO_U32(v) ((uint32_t)f2i64(v))
#define I_TO_I8(v) ((int8_t)(v))
#define I_TO_U8(v) ((uint8_t)(v))
#define I_TO_I16(v) ((int16_t)(v))
#define I_TO_U16(v) ((uint16_t)(v))
#define I_TO_I32(v) ((int32_t)(v))
#define I_TO_U32(v) ((uint32_t)(v))
#define I_TO_I64(v) ((int64_t)(v))
#define I_TO_U64(v) ((uint64_t)(v))

CAST_KERNEL(x_cast_f32, float, TO_F32, TO_F32)
CAST_KERNEL(x_cast_bool, uint8_t, TO_BOOL, TO_BOOL)
CAST_KERNEL(x_cast_i8, int8_t, F_TO_I8, I_TO_I8)
CAST_KERNEL(x_cast_u8, uint8_t, F_TO_U8, I_TO_U8)
CAST_KERNEL(x_cast_i16, int16_t, F_TO_I16, I_TO_I16)
CAST_KERNEL(x_cast_u16, uint16_t, F_TO_U16, I_TO_U16)
CAST_KERNEL(x_cast_i32, int32_t, f2i32, I_TO_I32)
CAST_KERNEL(x_cast_u32, uint32_t, F_TO_U32, I_TO_U32)
CAST_KERNEL(x_cast_i64, int64_t, f2i64, I_TO_I64)
CAST_KERNEL(x_cast_u64, uint64_t, f2u64, I_TO_U64)
