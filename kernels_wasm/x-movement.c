/* Data movement by element size (es bytes, any dtype): strided views (Slice, Expand, Tile, DepthToSpace,
 * SpaceToDepth), Slice and Pad whose parameters are run-time tensors read here from memory, and fills.
 *
 * Every kernel writes a contiguous output whose rows are its innermost dim; `r0, nrows` select the rows
 * [r0, r0 + nrows) (the split a thread runs) and `y` points at row r0. Run-time parameters are checked
 * against the output shape the plan was made for: a disagreement traps instead of reading out of bounds. */
#include "common.h"

#define MAXR 12

/* n copies of the es-byte element at src: one element, then doubling copies of what is already written */
INLINE void fill_elems(uint8_t* y, const uint8_t* src, int es, int n) {
    uint32_t total = (uint32_t)n * (uint32_t)es;
    if (!total) return;
    if (es == 4) {
        uint32_t bits;
        __builtin_memcpy(&bits, src, 4);
        v128_t v = wasm_i32x4_splat((int32_t)bits);
        int i = 0;
        for (; i + 4 <= n; i += 4) wasm_v128_store(y + 4 * i, v);
        for (; i < n; i++) __builtin_memcpy(y + 4 * i, &bits, 4);
        return;
    }
    __builtin_memcpy(y, src, (uint32_t)es);
    uint32_t done = (uint32_t)es;
    while (done < total) {
        uint32_t c = done < total - done ? done : total - done;
        __builtin_memcpy(y + done, y, c);
        done += c;
    }
}

/* n elements from src (element stride s, any sign) to contiguous y */
INLINE void copy_row(uint8_t* y, const uint8_t* x, int32_t s, int es, int n) {
    if (s == 1) {
        __builtin_memcpy(y, x, (uint32_t)n * (uint32_t)es);
    } else if (s == 0) {
        fill_elems(y, x, es, n);
    } else {
        int32_t sb = s * es;
        switch (es) {
        case 1:
            for (int i = 0; i < n; i++, x += sb) y[i] = *x;
            break;
        case 2:
            for (int i = 0; i < n; i++, x += sb) __builtin_memcpy(y + 2 * i, x, 2);
            break;
        case 4:
            for (int i = 0; i < n; i++, x += sb) __builtin_memcpy(y + 4 * i, x, 4);
            break;
        case 8:
            for (int i = 0; i < n; i++, x += sb) __builtin_memcpy(y + 8 * i, x, 8);
            break;
        default:
            for (int i = 0; i < n; i++, x += sb) __builtin_memcpy(y + (uint32_t)i * es, x, (uint32_t)es);
        }
    }
}

/* rows [r0, r0 + nrows) of the view with dims d[rank] and element strides s[rank] starting at x */
static void copy_view(int es, int rank, const int32_t* d, const int32_t* s, const uint8_t* x, uint8_t* y, int r0,
                      int nrows) {
    int idx[MAXR];
    int64_t off = 0; /* element offset of the current row's first element */
    int r = r0;
    for (int k = rank - 2; k >= 0; k--) {
        idx[k] = r % d[k];
        r /= d[k];
        off += (int64_t)idx[k] * s[k];
    }
    int n = d[rank - 1];
    int32_t sn = s[rank - 1];
    uint32_t row_bytes = (uint32_t)n * (uint32_t)es;
    for (int row = 0; row < nrows; row++) {
        copy_row(y, x + (int32_t)(off * es), sn, es, n);
        y += row_bytes;
        for (int k = rank - 2; k >= 0; k--) {
            off += s[k];
            if (++idx[k] < d[k]) break;
            off -= (int64_t)d[k] * s[k];
            idx[k] = 0;
        }
    }
}

/* y = the view of x with layout = dims[rank], strides[rank] (elements; 0 repeats, negative walks backwards) */
KERNEL void x_copy_view(int es, int rank, const int32_t* layout, const uint8_t* x, uint8_t* y, int r0, int nrows) {
    copy_view(es, rank, layout, layout + rank, x, y, r0, nrows);
}

INLINE int64_t read_index(const void* p, int i, int i64) {
    if (i64) {
        int64_t v;
        __builtin_memcpy(&v, (const uint8_t*)p + 8 * i, 8);
        return v;
    }
    int32_t v;
    __builtin_memcpy(&v, (const uint8_t*)p + 4 * i, 4);
    return v;
}

INLINE int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Slice with starts/ends (n entries) and optional axes/steps read at run time, all int64 if i64 else int32.
 * dims = in_dims[rank], out_dims[rank]. Each entry is normalized as ONNX specifies (negative axes and
 * indices count from the end, starts/ends clamp, steps may be negative); the resulting sizes must be the
 * planned out_dims. */
KERNEL void x_slice(int es, int rank, const int32_t* dims, const void* starts, const void* ends, const void* axes,
                    const void* steps, int n, int i64, const uint8_t* x, uint8_t* y, int r0, int nrows) {
    const int32_t *in = dims, *out = dims + rank;
    int64_t start[MAXR];
    int32_t step[MAXR], stride[MAXR];
    int seen = 0;
    for (int k = 0; k < rank; k++) start[k] = 0, step[k] = 1;
    for (int i = 0; i < n; i++) {
        int64_t a = axes ? read_index(axes, i, i64) : i;
        if (a < 0) a += rank;
        if (a < 0 || a >= rank || (seen >> a) & 1) __builtin_trap();
        seen |= 1 << a;
        int64_t dim = in[a], st = steps ? read_index(steps, i, i64) : 1;
        int64_t s = read_index(starts, i, i64), e = read_index(ends, i, i64), count;
        if (st == 0 || st > 0x7fffffff || st < -0x7fffffff) __builtin_trap();
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (st > 0) {
            s = clamp64(s, 0, dim);
            e = clamp64(e, 0, dim);
            count = e > s ? (e - s + st - 1) / st : 0;
        } else {
            s = clamp64(s, 0, dim - 1);
            e = clamp64(e, -1, dim - 1);
            count = s > e ? (s - e - st - 1) / -st : 0;
        }
        if (count != out[a]) __builtin_trap();
        start[a] = s;
        step[a] = (int32_t)st;
    }
    int64_t base = 0, acc = 1;
    for (int k = rank - 1; k >= 0; k--) {
        if (!((seen >> k) & 1) && out[k] != in[k]) __builtin_trap();
        if (out[k] == 0) return;
        stride[k] = (int32_t)(acc * step[k]);
        base += start[k] * acc;
        acc *= in[k];
    }
    copy_view(es, rank, out, stride, x + (int32_t)(base * es), y, r0, nrows);
}

enum { PAD_CONSTANT = 0, PAD_REFLECT = 1, PAD_EDGE = 2, PAD_WRAP = 3 };

/* input index of padded coordinate i in a dim of m elements, or -1 for the constant */
INLINE int64_t pad_source(int64_t i, int64_t m, int mode) {
    if (i >= 0 && i < m) return i;
    if (mode == PAD_CONSTANT) return -1;
    if (m <= 0) __builtin_trap();
    if (mode == PAD_EDGE) return i < 0 ? 0 : m - 1;
    if (mode == PAD_WRAP) {
        i %= m;
        return i < 0 ? i + m : i;
    }
    if (m == 1) return 0; /* reflect: period 2(m - 1), mirrored about both ends */
    int64_t p = 2 * (m - 1);
    i %= p;
    if (i < 0) i += p;
    return i < m ? i : p - i;
}

/* Pad (mode 0 constant, 1 reflect, 2 edge, 3 wrap). dims = in_dims[rank], out_dims[rank]; pads = int64
 * [begins(n), ends(n)] for the n axes listed in `axes` (int64 if axes64 else int32; null: 0..n-1), read
 * at run time. Negative pads crop first, and the cropped extent is what reflect/edge/wrap repeat (as
 * onnxruntime does). value: the es-byte constant. */
KERNEL void x_pad(int es, int rank, const int32_t* dims, const int64_t* pads, const void* axes, int n, int axes64,
                  int mode, const uint8_t* value, const uint8_t* x, uint8_t* y, int r0, int nrows) {
    const int32_t *in = dims, *out = dims + rank;
    int64_t pad[MAXR], crop[MAXR], extent[MAXR]; /* leading pad, leading crop, input extent after cropping */
    int32_t stride[MAXR];
    int idx[MAXR];
    int seen = 0;
    for (int k = 0; k < rank; k++) pad[k] = 0, crop[k] = 0, extent[k] = in[k];
    for (int i = 0; i < n; i++) {
        int64_t a = axes ? read_index(axes, i, axes64) : i;
        if (a < 0) a += rank;
        if (a < 0 || a >= rank || (seen >> a) & 1) __builtin_trap();
        seen |= 1 << a;
        int64_t b, e;
        __builtin_memcpy(&b, pads + i, 8);
        __builtin_memcpy(&e, pads + n + i, 8);
        if (b < -0x7fffffff || b > 0x7fffffff || e < -0x7fffffff || e > 0x7fffffff) __builtin_trap();
        if (in[a] + b + e != out[a]) __builtin_trap();
        pad[a] = b > 0 ? b : 0;
        crop[a] = b < 0 ? -b : 0;
        extent[a] = in[a] - crop[a] - (e < 0 ? -e : 0);
        if (extent[a] < 0) __builtin_trap();
    }
    int32_t acc = 1;
    for (int k = rank - 1; k >= 0; k--) {
        if (!((seen >> k) & 1) && out[k] != in[k]) __builtin_trap();
        if (out[k] == 0) return;
        stride[k] = acc;
        acc *= in[k];
    }
    int r = r0;
    for (int k = rank - 2; k >= 0; k--) {
        idx[k] = r % out[k];
        r /= out[k];
    }
    const int last = rank - 1;
    const int64_t m = extent[last], b = pad[last];
    const int w = out[last];
    /* output columns [lo, hi) read columns [lo - b, hi - b) of the cropped row */
    const int lo = (int)clamp64(b, 0, w), hi = (int)clamp64(b + m, lo, w);
    const uint32_t row_bytes = (uint32_t)w * (uint32_t)es;
    for (int row = 0; row < nrows; row++, y += row_bytes) {
        int64_t off = crop[last];
        int outside = 0;
        for (int k = 0; k < last; k++) {
            int64_t i = pad_source(idx[k] - pad[k], extent[k], mode);
            if (i < 0) outside = 1;
            off += (i + crop[k]) * stride[k];
        }
        for (int k = last - 1; k >= 0; k--) {
            if (++idx[k] < out[k]) break;
            idx[k] = 0;
        }
        if (outside) {
            fill_elems(y, value, es, w);
            continue;
        }
        const uint8_t* src = x + (int32_t)(off * es); /* the cropped row */
        if (hi > lo) __builtin_memcpy(y + (uint32_t)lo * es, src + (int32_t)((lo - b) * es), (uint32_t)(hi - lo) * es);
        if (mode == PAD_CONSTANT) {
            fill_elems(y, value, es, lo);
            fill_elems(y + (uint32_t)hi * es, value, es, w - hi);
            continue;
        }
        for (int o = 0; o < w; o++) {
            if (o == lo) o = hi;
            if (o >= w) break;
            int64_t i = pad_source(o - b, m, mode);
            __builtin_memcpy(y + (uint32_t)o * es, src + (int32_t)(i * es), (uint32_t)es);
        }
    }
}

/* y[0..n) = the es-byte value (ConstantOfShape whose shape is a run-time tensor) */
KERNEL void x_fill(int es, const uint8_t* value, uint8_t* y, int n) { fill_elems(y, value, es, n); }
