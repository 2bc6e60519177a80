/* Scatters into an output that already holds a copy of `data` (the lowering copies first): ScatterElements
 * (and the old Scatter) and ScatterND, with reduction 0 none, 1 add, 2 mul, 3 max, 4 min. Updates are applied
 * in index order, so with duplicate indices the last one wins (none) or all of them combine (reductions), as
 * the ONNX reference does. They do not split for threads: two chunks could hit the same output element. */
#include "index.h"

INLINE float f32_add(float a, float b) { return a + b; }
INLINE float f32_mul(float a, float b) { return a * b; }
/* integer wrap-around, as onnxruntime's int arithmetic does in practice (unsigned: no undefined behaviour) */
INLINE int32_t i32_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
INLINE int32_t i32_mul(int32_t a, int32_t b) { return (int32_t)((uint32_t)a * (uint32_t)b); }
INLINE int64_t i64_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
INLINE int64_t i64_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
/* bool: add is or, mul is and, max is or, min is and */
INLINE uint8_t u8_add(uint8_t a, uint8_t b) { return a | b; }
INLINE uint8_t u8_mul(uint8_t a, uint8_t b) { return a & b; }

#define REDUCE(P, red, dst, v)                       \
    do {                                             \
        switch (red) {                               \
            case 0: (dst) = (v); break;              \
            case 1: (dst) = P##_add((dst), (v)); break; \
            case 2: (dst) = P##_mul((dst), (v)); break; \
            case 3: if ((v) > (dst)) (dst) = (v); break; \
            default: if ((v) < (dst)) (dst) = (v); break; \
        }                                            \
    } while (0)

/* ScatterElements: for every element e of the indices' shape, out[base(e) + wrap(idx[e]) * astride] (op)=
 * upd[e]. layout = dims[6] of that shape, then out strides[6] (elements) with the axis' stride zeroed. */
#define SCATTER_ELEMENTS_KERNEL(name, T, P)                                                                   \
    KERNEL void name(int count, const int32_t* layout, int n, int astride, const void* idx, int idx64,        \
                     const T* upd, T* out, int red) {                                                         \
        const int32_t *d = layout, *s = layout + 6;                                                           \
        walk_t w;                                                                                             \
        walk_init(&w, d, s, 0);                                                                               \
        for (int e = 0; e < count; e++) {                                                                     \
            T* dst = out + w.off + wrap_index(ld_index(idx, idx64, e), n) * astride;                          \
            REDUCE(P, red, *dst, upd[e]);                                                                     \
            walk_next(&w, d, s);                                                                              \
        }                                                                                                     \
    }

SCATTER_ELEMENTS_KERNEL(f32_scatter_elements, float, f32)
SCATTER_ELEMENTS_KERNEL(i32_scatter_elements, int32_t, i32)
SCATTER_ELEMENTS_KERNEL(i64_scatter_elements, int64_t, i64)
SCATTER_ELEMENTS_KERNEL(u8_scatter_elements, uint8_t, u8)

/* ScatterND: tuple t (k indices at idx + t * k) addresses the slice of `slice` elements at
 * sum_j wrap(i_j, dims[j]) * strides[j] (elements); it combines with upd[t * slice ...].
 * dims_strides = dims[k], strides[k]. */
#define SCATTERND_KERNEL(name, T, P)                                                                          \
    KERNEL void name(int count, int k, const int32_t* dims_strides, int slice, const void* idx, int idx64,   \
                     const T* upd, T* out, int red) {                                                         \
        const int32_t *dims = dims_strides, *strides = dims_strides + k;                                      \
        for (int t = 0; t < count; t++) {                                                                     \
            int32_t off = 0;                                                                                  \
            for (int j = 0; j < k; j++) off += wrap_index(ld_index(idx, idx64, t * k + j), dims[j]) * strides[j]; \
            T* dst = out + off;                                                                               \
            const T* src = upd + (size_t)t * slice;                                                           \
            if (red == 0) {                                                                                   \
                __builtin_memcpy(dst, src, (size_t)slice * sizeof(T));                                        \
            } else {                                                                                          \
                for (int i = 0; i < slice; i++) REDUCE(P, red, dst[i], src[i]);                               \
            }                                                                                                 \
        }                                                                                                     \
    }

SCATTERND_KERNEL(f32_scatternd, float, f32)
SCATTERND_KERNEL(i32_scatternd, int32_t, i32)
SCATTERND_KERNEL(i64_scatternd, int64_t, i64)
SCATTERND_KERNEL(u8_scatternd, uint8_t, u8)
