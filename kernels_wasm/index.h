/* Shared by the index kernels (x-gather.c, x-scatter.c, x-index.c): reading index tensors that are int32 or
 * int64, wrapping negative indices, walking a 6-d index space, and failing loudly.
 *
 * A kernel that meets a value it cannot honour (an index out of range, a run-time count that differs from the
 * output shape the plan was made for) traps: the call aborts with a wasm `unreachable` trap that the host
 * reports as "kernel <name> trapped at node <node>", instead of reading or writing memory it does not own. */
#pragma once
#include <stddef.h>

#include "common.h"

#define FAIL() __builtin_trap()

/* index tensors: kind 0 = int32, 1 = int64, 2 = float32 (OneHot's indices/depth, truncated toward zero) */
INLINE int64_t ld_index(const void* p, int kind, int i) {
    if (kind == 1) return ((const int64_t*)p)[i];
    if (kind == 0) return ((const int32_t*)p)[i];
    float f = ((const float*)p)[i];
    if (!(f > -9.2e18f && f < 9.2e18f)) return INT64_MIN; /* nan / huge: out of any range */
    return (int64_t)f;
}

/* k in [-n, n) -> k mod n; anything else is an error (ONNX's Gather/Scatter family reject it too) */
INLINE int32_t wrap_index(int64_t k, int32_t n) {
    if (k < 0) k += n;
    if ((uint64_t)k >= (uint64_t)(uint32_t)n) FAIL();
    return (int32_t)k;
}

/* a 6-d index space: dims d[6] (each >= 1), element strides s[6] of another tensor; `off` is that tensor's
 * offset of the current coordinate. walk_init starts at linear element e (row-major over d). */
typedef struct {
    int32_t c[6];
    int32_t off;
} walk_t;

INLINE void walk_init(walk_t* w, const int32_t* d, const int32_t* s, int e) {
    w->off = 0;
    for (int k = 5; k >= 0; k--) {
        int32_t c = e % d[k];
        e /= d[k];
        w->c[k] = c;
        w->off += c * s[k];
    }
}

INLINE void walk_next(walk_t* w, const int32_t* d, const int32_t* s) {
    for (int k = 5; k >= 0; k--) {
        w->off += s[k];
        if (++w->c[k] < d[k]) return;
        w->off -= s[k] * d[k];
        w->c[k] = 0;
    }
}
