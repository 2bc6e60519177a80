/* Comparisons (bool output), boolean logic and Where, with numpy broadcasting (layouts and the
 * (layout, start, count, ...) convention: binary-walk.h). Bools are bytes holding 0 or 1; inputs are read
 * as "nonzero is true". Less/LessOrEqual run as Greater/GreaterOrEqual with the operands swapped. */
#include "binary-walk.h"

/* a op b -> bool, for one input dtype */
#define COMPARE_KERNEL(name, T, OP)                                                                      \
    WALK2_ROW(name##_row, T, T, uint8_t, OP)                                                           \
    WALK2_EXPORT(name, T, T, uint8_t, name##_row)

#define OP_EQ(a, b) ((uint8_t)((a) == (b)))
#define OP_GT(a, b) ((uint8_t)((a) > (b)))
#define OP_GE(a, b) ((uint8_t)((a) >= (b)))
#define OP_BEQ(a, b) ((uint8_t)(((a) != 0) == ((b) != 0)))
#define OP_AND(a, b) ((uint8_t)(((a) != 0) & ((b) != 0)))
#define OP_OR(a, b) ((uint8_t)(((a) != 0) | ((b) != 0)))
#define OP_XOR(a, b) ((uint8_t)(((a) != 0) ^ ((b) != 0)))

COMPARE_KERNEL(f32_eq, float, OP_EQ)
COMPARE_KERNEL(f32_gt, float, OP_GT)
COMPARE_KERNEL(f32_ge, float, OP_GE)
COMPARE_KERNEL(i32_eq, int32_t, OP_EQ)
COMPARE_KERNEL(i32_gt, int32_t, OP_GT)
COMPARE_KERNEL(i32_ge, int32_t, OP_GE)
COMPARE_KERNEL(i64_eq, int64_t, OP_EQ)
COMPARE_KERNEL(i64_gt, int64_t, OP_GT)
COMPARE_KERNEL(i64_ge, int64_t, OP_GE)
COMPARE_KERNEL(b8_eq, uint8_t, OP_BEQ)
COMPARE_KERNEL(b8_and, uint8_t, OP_AND)
COMPARE_KERNEL(b8_or, uint8_t, OP_OR)
COMPARE_KERNEL(b8_xor, uint8_t, OP_XOR)

/* y = !x over n contiguous bools */
KERNEL void b8_not(const uint8_t* x, uint8_t* y, int n) {
    for (int i = 0; i < n; i++) y[i] = x[i] == 0;
}

/* out = cond ? x : y, three broadcast inputs: layout = dims[6], cond/x/y strides[6] */
#define WHERE_LOOP(SC, SX, SY)                                                                           \
    for (int i = 0; i < n; i++) o[i] = c[i * SC] ? x[i * SX] : y[i * SY]

#define WHERE_KERNEL(name, T)                                                                            \
    static void name##_row(const uint8_t* c, int sc, const T* x, int sx, const T* y, int sy, T* o, int n) { \
        if (sc <= 1 && sx <= 1 && sy <= 1) {                                                           \
            switch (sc * 4 + sx * 2 + sy) {                                                            \
            case 7: WHERE_LOOP(1, 1, 1); break;                                                        \
            case 6: WHERE_LOOP(1, 1, 0); break;                                                        \
            case 5: WHERE_LOOP(1, 0, 1); break;                                                        \
            case 4: WHERE_LOOP(1, 0, 0); break;                                                        \
            case 3: WHERE_LOOP(0, 1, 1); break;                                                        \
            case 2: WHERE_LOOP(0, 1, 0); break;                                                        \
            case 1: WHERE_LOOP(0, 0, 1); break;                                                        \
            default: WHERE_LOOP(0, 0, 0); break;                                                       \
            }                                                                                          \
        } else {                                                                                       \
            for (int i = 0; i < n; i++) o[i] = c[(long)i * sc] ? x[(long)i * sx] : y[(long)i * sy];   \
        }                                                                                              \
    }                                                                                                  \
    KERNEL void name(const int32_t* layout, int start, int count, const uint8_t* c, const T* x, const T* y, T* o) { \
        const int32_t *d = layout, *cs = layout + 6, *xs = layout + 12, *ys = layout + 18;            \
        int idx[6];                                                                                    \
        walk_init(d, start, idx);                                                                      \
        while (count > 0) {                                                                            \
            int n = imin(d[5] - idx[5], count);                                                        \
            name##_row(c + walk_offset(cs, idx), cs[5], x + walk_offset(xs, idx), xs[5],              \
                       y + walk_offset(ys, idx), ys[5], o, n);                                        \
            o += n;                                                                                    \
            count -= n;                                                                                \
            walk_next_row(d, idx);                                                                     \
        }                                                                                              \
    }

WHERE_KERNEL(x8_where, uint8_t)
WHERE_KERNEL(x16_where, uint16_t)
WHERE_KERNEL(x32_where, uint32_t)
WHERE_KERNEL(x64_where, uint64_t)
