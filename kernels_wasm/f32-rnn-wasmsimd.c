/* Recurrent layers: ONNX RNN, GRU and LSTM, one call per direction over the whole sequence.
 *
 * The input projection X W^T (+ biases) of every time step is one GEMM done before (f32_gemm), into
 * xw: the gates of batch row b at time t start at xw + t * xw_ts + b * xw_bs, gate g at + g * hidden.
 * Each time step then runs, per batch row, the recurrent product H_{t-1} R^T fused with the gates and
 * activations, writing the new state, Y, and at the end Y_h / Y_c.
 *
 * Recurrent weights come packed (f32_rnn_pack below, or the same layout made at package time by
 * wasm_runtime/ops/rnn.py): panels of U hidden units; panel p holds, for each k < hidden, the weights
 * R[g * hidden + p * U + u][k] of its gates g and units u (zero past hidden) contiguous, so one k step
 * loads G * U / 4 vectors and updates G * U / 4 accumulators per batch row:
 *   LSTM (gates i o f c)            one segment, 4 gates x 4 units
 *   RNN                             one segment, 1 gate x 16 units
 *   GRU linear_before_reset != 0    one segment, 3 gates (z r h) x 4 units
 *   GRU linear_before_reset == 0    z r: 2 gates x 8 units, then h: 1 gate x 16 units, as (r . H) R_h^T
 *                                   needs every unit of r first
 *
 * Batch rows are independent: a call may cover any subset of the rows (the plan splits batch over
 * threads); row pointers (xw, sequence_lens, initial state, Y, Y_h, Y_c, work) all move with the row.
 * Two active rows share each pass over the weights; every row's sums run in the same order either way,
 * so a row's result does not depend on which rows run with it.
 *
 * sequence_lens (int32 per row, null = all seq): row b runs len_b steps (forward: t = 0..len_b-1;
 * reverse: t = len_b-1..0); Y past len_b is zero; Y_h / Y_c hold the state after the last step (zero when
 * len_b is 0, as onnxruntime does).
 *
 * params: clip (<= 0: none), then (code, alpha, beta) of activations f, g, h (rnn-math.h codes), then
 * LSTM input_forget / GRU linear_before_reset. */
#include "rnn-math.h"

enum { KIND_RNN = 0, KIND_GRU = 1, KIND_LSTM = 2 };

/* per-row workspace: H (two, alternating by step), C, z, r . H_{t-1}; each padded to 16 units */
#define ROW_BUFS 5
INLINE int pad16(int n) { return (n + 15) & ~15; }
INLINE int cdiv(int a, int b) { return (a + b - 1) / b; }

INLINE v128_t load_n(const float* p, int n) {
    if (n >= 4) return wasm_v128_load(p);
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return wasm_v128_load(t);
}

INLINE void store_n(float* p, v128_t v, int n) {
    if (n >= 4) {
        wasm_v128_store(p, v);
        return;
    }
    float t[4];
    wasm_v128_store(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}

typedef struct {
    int code;
    float alpha, beta;
} Act;

typedef struct {
    int hidden;
    float clip;
    Act f, g, h;
    int flag; /* LSTM input_forget, GRU linear_before_reset */
    const float* rb;    /* recurrent bias per gate [G * hidden] added to the products, or null */
    const float* rpack; /* packed recurrent weights */
    const float* peep;  /* LSTM peepholes [3 * hidden] (i, o, f), or null */
} Cell;

typedef struct {
    const float* x; /* gate inputs at this row's time step */
    float* y;       /* Y at this row's time step, or null */
    const float* hp; /* H_{t-1} */
    float* hn;       /* H_t */
    float* c;        /* LSTM cell state, updated in place */
    float* z;        /* GRU update gate */
    float* rh;       /* GRU r . H_{t-1} */
} Row;

INLINE v128_t act(v128_t v, const Cell* cl, const Act* a) {
    if (cl->clip > 0.0f) v = wasm_f32x4_min(wasm_f32x4_max(v, VSPLAT(-cl->clip)), VSPLAT(cl->clip));
    return rnn_activate(v, a->code, a->alpha, a->beta);
}

/* gate g's input projection at units j.., lanes past n (the end of hidden) zero */
INLINE v128_t gate_in(const Row* w, const Cell* cl, int g, int j, int n) {
    return n > 0 ? load_n(w->x + g * cl->hidden + j, n) : VSPLAT(0.0f);
}

/* acc + the recurrent bias of gate g, when there is one */
INLINE v128_t rbias(const Cell* cl, v128_t acc, int g, int j, int n) {
    if (!cl->rb || n <= 0) return acc;
    return wasm_f32x4_add(acc, load_n(cl->rb + g * cl->hidden + j, n));
}

/* acc[r][q] = sum_k in_r[k] * panel[k * nq + q] (4-lane vectors), for mr rows (1 or 2) and nq vectors */
INLINE void panel_dot(int mr, int nq, int K, const float* in0, const float* in1, const float* panel,
                      v128_t acc[2][4]) {
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < nq; q++) acc[r][q] = VSPLAT(0.0f);
    for (int k = 0; k < K; k++) {
        v128_t w[4];
        for (int q = 0; q < nq; q++) w[q] = VLOAD(panel + (k * nq + q) * 4);
        v128_t a0 = VSPLAT(in0[k]);
        for (int q = 0; q < nq; q++) acc[0][q] = VMADD(a0, w[q], acc[0][q]);
        if (mr > 1) {
            v128_t a1 = VSPLAT(in1[k]);
            for (int q = 0; q < nq; q++) acc[1][q] = VMADD(a1, w[q], acc[1][q]);
        }
    }
}

INLINE void lstm_step(int mr, const Cell* cl, Row* rows) {
    int H = cl->hidden;
    v128_t one = VSPLAT(1.0f);
    for (int p = 0; p < cdiv(H, 4); p++) {
        int j = p * 4, n = imin(4, H - j);
        v128_t acc[2][4];
        panel_dot(mr, 4, H, rows[0].hp, mr > 1 ? rows[1].hp : 0, cl->rpack + p * H * 16, acc);
        for (int r = 0; r < mr; r++) {
            Row* w = &rows[r];
            v128_t gi = wasm_f32x4_add(gate_in(w, cl, 0, j, n), rbias(cl, acc[r][0], 0, j, n));
            v128_t go = wasm_f32x4_add(gate_in(w, cl, 1, j, n), rbias(cl, acc[r][1], 1, j, n));
            v128_t gf = wasm_f32x4_add(gate_in(w, cl, 2, j, n), rbias(cl, acc[r][2], 2, j, n));
            v128_t gc = wasm_f32x4_add(gate_in(w, cl, 3, j, n), rbias(cl, acc[r][3], 3, j, n));
            v128_t cp = VLOAD(w->c + j);
            if (cl->peep) {
                gi = VMADD(load_n(cl->peep + j, n), cp, gi);
                gf = VMADD(load_n(cl->peep + 2 * H + j, n), cp, gf);
            }
            v128_t i = act(gi, cl, &cl->f);
            v128_t f = cl->flag ? wasm_f32x4_sub(one, i) : act(gf, cl, &cl->f);
            v128_t c = act(gc, cl, &cl->g);
            v128_t C = VMADD(f, cp, wasm_f32x4_mul(i, c));
            if (cl->peep) go = VMADD(load_n(cl->peep + H + j, n), C, go);
            v128_t o = act(go, cl, &cl->f);
            v128_t h = wasm_f32x4_mul(o, rnn_activate(C, cl->h.code, cl->h.alpha, cl->h.beta));
            VSTORE(w->c + j, C);
            VSTORE(w->hn + j, h);
            if (w->y) store_n(w->y + j, h, n);
        }
    }
}

INLINE v128_t gru_out(v128_t z, v128_t hh, v128_t hp) {
    return wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(VSPLAT(1.0f), z), hh), wasm_f32x4_mul(z, hp));
}

/* linear_before_reset: h = g(x_h + r . (H_{t-1} R_h^T + Rb_h)), one pass over all three gates */
INLINE void gru_lbr_step(int mr, const Cell* cl, Row* rows) {
    int H = cl->hidden;
    for (int p = 0; p < cdiv(H, 4); p++) {
        int j = p * 4, n = imin(4, H - j);
        v128_t acc[2][4];
        panel_dot(mr, 3, H, rows[0].hp, mr > 1 ? rows[1].hp : 0, cl->rpack + p * H * 12, acc);
        for (int r = 0; r < mr; r++) {
            Row* w = &rows[r];
            v128_t z = act(wasm_f32x4_add(gate_in(w, cl, 0, j, n), rbias(cl, acc[r][0], 0, j, n)), cl, &cl->f);
            v128_t rr = act(wasm_f32x4_add(gate_in(w, cl, 1, j, n), rbias(cl, acc[r][1], 1, j, n)), cl, &cl->f);
            v128_t pre = VMADD(rr, rbias(cl, acc[r][2], 2, j, n), gate_in(w, cl, 2, j, n));
            v128_t h = gru_out(z, act(pre, cl, &cl->g), VLOAD(w->hp + j));
            VSTORE(w->hn + j, h);
            if (w->y) store_n(w->y + j, h, n);
        }
    }
}

/* default GRU: z and r first (8-unit panels), then h = g(x_h + (r . H_{t-1}) R_h^T + Rb_h) (16-unit panels) */
INLINE void gru_step(int mr, const Cell* cl, Row* rows) {
    int H = cl->hidden;
    int p1 = cdiv(H, 8);
    for (int p = 0; p < p1; p++) {
        v128_t acc[2][4];
        panel_dot(mr, 4, H, rows[0].hp, mr > 1 ? rows[1].hp : 0, cl->rpack + p * H * 16, acc);
        for (int r = 0; r < mr; r++) {
            Row* w = &rows[r];
            for (int v = 0; v < 2; v++) {
                int j = p * 8 + v * 4, n = imin(4, H - j);
                v128_t z = act(wasm_f32x4_add(gate_in(w, cl, 0, j, n), rbias(cl, acc[r][v], 0, j, n)), cl, &cl->f);
                v128_t rr =
                    act(wasm_f32x4_add(gate_in(w, cl, 1, j, n), rbias(cl, acc[r][2 + v], 1, j, n)), cl, &cl->f);
                VSTORE(w->z + j, z);
                VSTORE(w->rh + j, wasm_f32x4_mul(rr, VLOAD(w->hp + j)));
            }
        }
    }
    const float* pack2 = cl->rpack + p1 * H * 16;
    for (int p = 0; p < cdiv(H, 16); p++) {
        v128_t acc[2][4];
        panel_dot(mr, 4, H, rows[0].rh, mr > 1 ? rows[1].rh : 0, pack2 + p * H * 16, acc);
        for (int r = 0; r < mr; r++) {
            Row* w = &rows[r];
            for (int v = 0; v < 4; v++) {
                int j = p * 16 + v * 4, n = imin(4, H - j);
                v128_t pre = wasm_f32x4_add(gate_in(w, cl, 2, j, n), rbias(cl, acc[r][v], 2, j, n));
                v128_t h = gru_out(VLOAD(w->z + j), act(pre, cl, &cl->g), VLOAD(w->hp + j));
                VSTORE(w->hn + j, h);
                if (w->y && n > 0) store_n(w->y + j, h, n);
            }
        }
    }
}

INLINE void rnn_step(int mr, const Cell* cl, Row* rows) {
    int H = cl->hidden;
    for (int p = 0; p < cdiv(H, 16); p++) {
        v128_t acc[2][4];
        panel_dot(mr, 4, H, rows[0].hp, mr > 1 ? rows[1].hp : 0, cl->rpack + p * H * 16, acc);
        for (int r = 0; r < mr; r++) {
            Row* w = &rows[r];
            for (int v = 0; v < 4; v++) {
                int j = p * 16 + v * 4, n = imin(4, H - j);
                v128_t h = act(wasm_f32x4_add(gate_in(w, cl, 0, j, n), rbias(cl, acc[r][v], 0, j, n)), cl, &cl->f);
                VSTORE(w->hn + j, h);
                if (w->y && n > 0) store_n(w->y + j, h, n);
            }
        }
    }
}

INLINE void step(int kind, int mr, const Cell* cl, Row* rows) {
    if (kind == KIND_LSTM) lstm_step(mr, cl, rows);
    else if (kind == KIND_RNN) rnn_step(mr, cl, rows);
    else if (cl->flag) gru_lbr_step(mr, cl, rows);
    else gru_step(mr, cl, rows);
}

INLINE int row_len(const int32_t* lens, int b, int seq) { return lens ? imax(0, imin(seq, lens[b])) : seq; }

INLINE void copy_or_zero(float* dst, const float* src, int n) {
    for (int i = 0; i < n; i++) dst[i] = src ? src[i] : 0.0f;
}

INLINE void recurrent(int kind, int batch, int seq, int hidden, int reverse, const float* xw, int xw_ts, int xw_bs,
                      const float* rb, const float* rpack, const float* peep, const int32_t* lens, const float* h0,
                      const float* c0, int h0_bs, float* y, int y_ts, int y_bs, float* yh, float* yc, int yh_bs,
                      float* work, const float* params) {
    const int Hp = pad16(hidden), rs = ROW_BUFS * Hp;
    Cell cl = {hidden,
               params[0],
               {(int)params[1], params[2], params[3]},
               {(int)params[4], params[5], params[6]},
               {(int)params[7], params[8], params[9]},
               (int)params[10],
               rb,
               rpack,
               peep};
    int maxlen = 0;
    for (int b = 0; b < batch; b++) {
        float* w = work + b * rs;
        for (int i = 0; i < rs; i++) w[i] = 0.0f;
        if (h0) copy_or_zero(w, h0 + b * h0_bs, hidden);
        if (c0 && kind == KIND_LSTM) copy_or_zero(w + 2 * Hp, c0 + b * h0_bs, hidden);
        int len = row_len(lens, b, seq);
        maxlen = imax(maxlen, len);
        if (y)
            for (int t = len; t < seq; t++) copy_or_zero(y + t * y_ts + b * y_bs, 0, hidden);
    }
    for (int s = 0; s < maxlen; s++) {
        Row rows[2];
        int mr = 0;
        for (int b = 0; b < batch; b++) {
            int len = row_len(lens, b, seq);
            if (s >= len) continue;
            int t = reverse ? len - 1 - s : s;
            float* w = work + b * rs;
            Row row = {xw + t * xw_ts + b * xw_bs,
                       y ? y + t * y_ts + b * y_bs : 0,
                       w + (s & 1) * Hp,
                       w + ((s + 1) & 1) * Hp,
                       w + 2 * Hp,
                       w + 3 * Hp,
                       w + 4 * Hp};
            rows[mr++] = row;
            if (mr == 2) {
                step(kind, 2, &cl, rows);
                mr = 0;
            }
        }
        if (mr == 1) step(kind, 1, &cl, rows);
    }
    for (int b = 0; b < batch; b++) {
        int len = row_len(lens, b, seq);
        float* w = work + b * rs;
        if (yh) copy_or_zero(yh + b * yh_bs, len ? w + (len & 1) * Hp : 0, hidden);
        if (yc) copy_or_zero(yc + b * yh_bs, len ? w + 2 * Hp : 0, hidden);
    }
}

#define RECURRENT_KERNEL(name, kind)                                                                            \
    KERNEL void name(int batch, int seq, int hidden, int reverse, const float* xw, int xw_ts, int xw_bs,        \
                     const float* rb, const float* rpack, const float* peep, const int32_t* lens, const float* h0, \
                     const float* c0, int h0_bs, float* y, int y_ts, int y_bs, float* yh, float* yc, int yh_bs,     \
                     float* work, const float* params) {                                                        \
        recurrent(kind, batch, seq, hidden, reverse, xw, xw_ts, xw_bs, rb, rpack, peep, lens, h0, c0, h0_bs, y,  \
                  y_ts, y_bs, yh, yc, yh_bs, work, params);                                                     \
    }

RECURRENT_KERNEL(f32_rnn, KIND_RNN)
RECURRENT_KERNEL(f32_gru, KIND_GRU)
RECURRENT_KERNEL(f32_lstm, KIND_LSTM)

/* dst[p][k][g][u] = r[(g0 + g) * hidden + p * units + u][k] (zero past hidden), for ng gates */
INLINE float* pack_segment(const float* r, int hidden, int g0, int ng, int units, float* dst) {
    for (int p = 0; p < cdiv(hidden, units); p++)
        for (int k = 0; k < hidden; k++)
            for (int g = 0; g < ng; g++)
                for (int u = 0; u < units; u++) {
                    int j = p * units + u;
                    *dst++ = j < hidden ? r[((g0 + g) * hidden + j) * hidden + k] : 0.0f;
                }
    return dst;
}

/* R of one direction ([G * hidden, hidden] as ONNX stores it) into the layout above, for weights that are
 * only known at run time. */
KERNEL void f32_rnn_pack(int kind, int linear_before_reset, int hidden, const float* r, float* dst) {
    if (kind == KIND_LSTM) pack_segment(r, hidden, 0, 4, 4, dst);
    else if (kind == KIND_RNN) pack_segment(r, hidden, 0, 1, 16, dst);
    else if (linear_before_reset) pack_segment(r, hidden, 0, 3, 4, dst);
    else pack_segment(r, hidden, 2, 1, 16, pack_segment(r, hidden, 0, 2, 8, dst));
}
