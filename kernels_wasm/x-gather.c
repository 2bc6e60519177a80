/* Gathers, dtype-agnostic (they move elements or rows of `row_bytes` bytes): Gather (the embedding lookup of
 * transformers: a constant table, run-time token ids, one row copy per id), GatherElements, GatherND, and
 * Compress with a run-time condition. Indices are int32 or int64 (idx64), negative ones count from the end,
 * out-of-range ones trap (index.h).
 *
 * Kernels that split for threads take `first`, the first unit of their chunk, and `count` units. */
#include "index.h"

/* Gather along an axis: data viewed as [outer, n, row_bytes], the m indices select rows, out is
 * [outer, m, row_bytes]. Units are output rows u = o * m + j, for j in [0, m). */
#define GATHER_LOOP(COPY)                                   \
    for (int u = 0; u < count; u++) {                       \
        int32_t k = wrap_index(ld_index(idx, idx64, j), n); \
        const uint8_t* src = base + (size_t)k * rb;         \
        COPY;                                               \
        dst += rb;                                          \
        if (++j == m) {                                     \
            j = 0;                                          \
            base += (size_t)n * rb;                         \
        }                                                   \
    }

KERNEL void x_gather(int first, int count, int m, int row_bytes, const uint8_t* data, int n, const void* idx, int idx64,
                     uint8_t* out) {
    size_t rb = (size_t)row_bytes;
    int j = first % m;
    const uint8_t* base = data + (size_t)(first / m) * n * rb;
    uint8_t* dst = out + (size_t)first * rb;
    switch (rb) {
        case 1: GATHER_LOOP(*dst = *src) break;
        case 2: GATHER_LOOP(__builtin_memcpy(dst, src, 2)) break;
        case 4: GATHER_LOOP(__builtin_memcpy(dst, src, 4)) break;
        case 8: GATHER_LOOP(__builtin_memcpy(dst, src, 8)) break;
        case 16: GATHER_LOOP(wasm_v128_store(dst, wasm_v128_load(src))) break;
        default: GATHER_LOOP(__builtin_memcpy(dst, src, rb)) break; /* memory.copy: the embedding-row path */
    }
}

/* GatherElements: out[e] = data[base(e) + wrap(idx[e]) * astride] over the elements e of the indices' shape.
 * layout = dims[6] of that shape, then data strides[6] (elements) with the axis' stride zeroed. */
#define GATHER_ELEMENTS_KERNEL(name, T)                                                                      \
    KERNEL void name(int first, int count, const int32_t* layout, const T* data, int n, int astride,         \
                     const void* idx, int idx64, T* out) {                                                   \
        const int32_t *d = layout, *s = layout + 6;                                                          \
        walk_t w;                                                                                            \
        walk_init(&w, d, s, first);                                                                          \
        for (int e = first; e < first + count; e++) {                                                        \
            out[e] = data[w.off + wrap_index(ld_index(idx, idx64, e), n) * astride];                         \
            walk_next(&w, d, s);                                                                             \
        }                                                                                                    \
    }

GATHER_ELEMENTS_KERNEL(x8_gather_elements, uint8_t)
GATHER_ELEMENTS_KERNEL(x16_gather_elements, uint16_t)
GATHER_ELEMENTS_KERNEL(x32_gather_elements, uint32_t)
GATHER_ELEMENTS_KERNEL(x64_gather_elements, uint64_t)

/* GatherND: units are index tuples u = b * per_batch + t; tuple u (k indices at idx + u * k) picks the slice
 * of slice_bytes at  data + b * batch_bytes + sum_j wrap(i_j, dims[j]) * strides[j] * slice_bytes.
 * dims_strides = dims[k], strides[k] (in slices). */
KERNEL void x_gathernd(int first, int count, int per_batch, int k, const int32_t* dims_strides, int batch_bytes,
                       int slice_bytes, const uint8_t* data, const void* idx, int idx64, uint8_t* out) {
    const int32_t *dims = dims_strides, *strides = dims_strides + k;
    size_t sb = (size_t)slice_bytes;
    for (int u = first; u < first + count; u++) {
        size_t off = 0;
        for (int j = 0; j < k; j++) off += (size_t)wrap_index(ld_index(idx, idx64, u * k + j), dims[j]) * strides[j];
        __builtin_memcpy(out + (size_t)u * sb, data + (size_t)(u / per_batch) * (size_t)batch_bytes + off * sb, sb);
    }
}

/* Compress with a run-time condition: x viewed as [outer, n, row_bytes]; rows j < min(clen, n) whose cond[j]
 * is true are kept, in order. The output was planned for `kept` rows per outer index: another count traps.
 * Splits over outer (x += n * row_bytes, y += kept * row_bytes per unit). */
KERNEL void x_compress(int outer, int n, int row_bytes, const uint8_t* cond, int clen, int kept, const uint8_t* x,
                       uint8_t* y) {
    int len = imin(clen, n), got = 0;
    for (int j = 0; j < len; j++) got += cond[j] != 0;
    if (got != kept) FAIL();
    size_t rb = (size_t)row_bytes;
    for (int o = 0; o < outer; o++) {
        const uint8_t* src = x + (size_t)o * n * rb;
        for (int j = 0; j < len; j++)
            if (cond[j]) {
                __builtin_memcpy(y, src + (size_t)j * rb, rb);
                y += rb;
            }
    }
}
