"""RNN, GRU and LSTM (kernels_wasm/f32-rnn-wasmsimd.c).

Per direction: one f32_gemm computes the input projection X W^T + biases of every time step into a
workspace, then one recurrent call runs the time steps (recurrent product fused with the gates). Constant
weights are prepared here: W transposed for the GEMM, the biases summed into the GEMM's bias, R packed into
the kernel's panel layout (`pack_recurrent`, which mirrors f32_rnn_pack). Weights given at run time are
transposed / packed by kernels first; biases given at run time are added by the GEMM (W's) and the
recurrent kernel (R's). sequence_lens, initial_h/c and P are read at run time whatever they are.
"""

from __future__ import annotations

import numpy as np

from ..ir import Node
from .context import Buf, Const, LoweringContext, Scratch, i32
from .gemm import gemm_columns_split
from .layout import transpose_layout

KIND = {"RNN": 0, "GRU": 1, "LSTM": 2}
KERNEL = {"RNN": "f32_rnn", "GRU": "f32_gru", "LSTM": "f32_lstm"}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}

# name (lower case) -> (code in kernels_wasm/rnn-math.h, takes alpha, takes beta, default alpha, default beta);
# alpha/beta are consumed from activation_alpha/beta in order by the functions that take them, as onnxruntime
ACTIVATIONS = {
    "relu": (1, False, False, 0.0, 0.0),
    "tanh": (2, False, False, 0.0, 0.0),
    "sigmoid": (3, False, False, 0.0, 0.0),
    "affine": (4, True, True, 0.0, 0.0),
    "leakyrelu": (5, True, False, 0.01, 0.0),
    "thresholdedrelu": (6, True, False, 0.0, 0.0),
    "scaledtanh": (7, True, True, 0.0, 0.0),
    "hardsigmoid": (8, True, True, 0.2, 0.5),
    "elu": (9, True, False, 1.0, 0.0),
    "softsign": (10, False, False, 0.0, 0.0),
    "softplus": (11, False, False, 0.0, 0.0),
}

WORK_BUFFERS = 5  # per batch row: H twice, C, z, r . H (f32-rnn-wasmsimd.c ROW_BUFS)


def _segments(op: str, linear_before_reset: bool) -> list[tuple[int, int, int]]:
    """(first gate, gates, units per panel) of each packed segment, as f32_rnn_pack lays them out."""
    if op == "LSTM":
        return [(0, 4, 4)]
    if op == "RNN":
        return [(0, 1, 16)]
    return [(0, 3, 4)] if linear_before_reset else [(0, 2, 8), (2, 1, 16)]


def packed_size(op: str, linear_before_reset: bool, hidden: int) -> int:
    return sum(-(-hidden // u) * u * hidden * ng for _, ng, u in _segments(op, linear_before_reset))


def pack_recurrent(op: str, linear_before_reset: bool, r: np.ndarray) -> np.ndarray:
    """R of one direction [G * hidden, hidden] -> panels [p][k][gate][unit] per segment (zero past hidden)."""
    hidden = r.shape[1]
    parts = []
    for g0, ng, units in _segments(op, linear_before_reset):
        panels = -(-hidden // units)
        w = np.zeros((ng, panels * units, hidden), np.float32)
        w[:, :hidden] = r[g0 * hidden : (g0 + ng) * hidden].reshape(ng, hidden, hidden)
        parts.append(w.reshape(ng, panels, units, hidden).transpose(1, 3, 0, 2).reshape(-1))
    return np.concatenate(parts)


def _activations(ctx: LoweringContext, node: Node, op: str, dirs: int) -> list[list[tuple[int, float, float]]]:
    """Per direction, (code, alpha, beta) of each activation function (f[, g[, h]])."""
    count = len(DEFAULT_ACTIVATIONS[op])
    names = [str(n) for n in (node.attrs.get("activations") or [])]
    alphas = list(node.attrs.get("activation_alpha") or [])
    betas = list(node.attrs.get("activation_beta") or [])
    if not names:
        names = DEFAULT_ACTIVATIONS[op] * dirs
    parsed = []
    for name in names:
        entry = ACTIVATIONS.get(name.lower())
        if entry is None:
            raise ctx.fail(f"activation {name!r} is not one of {', '.join(sorted(ACTIVATIONS))}")
        code, takes_alpha, takes_beta, alpha, beta = entry
        if takes_alpha and alphas:
            alpha = float(alphas.pop(0))
        if takes_beta and betas:
            beta = float(betas.pop(0))
        parsed.append((code, alpha, beta))
    if len(parsed) < count * dirs:
        raise ctx.fail(f"{len(parsed)} activations given; {op} needs {count} per direction ({dirs})")
    return [parsed[d * count : (d + 1) * count] for d in range(dirs)]


def _transposed_w(ctx: LoweringContext, w: str, d: int, rows: int, cols: int):
    """W[d] ([rows, cols]) transposed, row-major: a constant now, else by a transpose at run time."""
    const = ctx.const(w)
    if const is not None:
        return Const(np.ascontiguousarray(const[d].T), f"{w}[{d}].T")
    src = Buf(w, d * rows * cols * 4)
    layout = transpose_layout(ctx, (rows, cols), (1, 0))
    if layout is None:  # a single row or column: the transpose has the same bytes
        return src
    scratch = Scratch(rows * cols * 4)
    ctx.emit("x32_transpose", i32(layout), src, scratch)
    return scratch


def recurrent(ctx: LoweringContext, node: Node) -> None:
    op = node.op_type
    x, w, r, b, lens, h0 = (node.input(i) for i in range(6))
    c0, peep = (node.input(6), node.input(7)) if op == "LSTM" else ("", "")
    outs = [*node.outputs, "", "", ""]
    y, yh, yc = outs[0], outs[1], outs[2] if op == "LSTM" else ""
    ctx.require_dtype(x, w, r, b, h0, c0, peep, y, yh, yc)
    if lens:
        ctx.require_dtype(lens, dtypes=(np.int32,))

    layout = int(node.attrs.get("layout", 0))
    direction = str(node.attrs.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.fail(f"direction {direction!r} is not forward, reverse or bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    xs = ctx.shape(x)
    seq, batch = (xs[0], xs[1]) if layout == 0 else (xs[1], xs[0])
    isize = xs[2]
    G = GATES[op]
    hidden = ctx.shape(r)[-1]
    if node.attrs.get("hidden_size") not in (None, hidden):
        raise ctx.fail(f"hidden_size {node.attrs['hidden_size']} does not match R's shape {ctx.shape(r)}")
    GH = G * hidden
    if ctx.shape(w) != (dirs, GH, isize) or ctx.shape(r) != (dirs, GH, hidden):
        raise ctx.fail(f"W {ctx.shape(w)} / R {ctx.shape(r)} do not fit {dirs} direction(s) of {G}x{hidden} gates")

    lbr = bool(node.attrs.get("linear_before_reset", 0)) if op == "GRU" else False
    flag = int(node.attrs.get("input_forget", 0)) if op == "LSTM" else int(lbr)
    clip = node.attrs.get("clip")
    clip = float(clip) if clip not in (None, "") else 0.0
    acts = _activations(ctx, node, op, dirs)

    # element strides of the [seq, batch] / [batch, seq] views; Y is [seq, dirs, batch, H] or [batch, seq, dirs, H]
    rows = seq * batch
    xw_ts, xw_bs = (batch * GH, GH) if layout == 0 else (GH, seq * GH)
    y_ts, y_bs = (dirs * batch * hidden, hidden) if layout == 0 else (dirs * hidden, seq * dirs * hidden)
    # Y_h, Y_c, initial_h, initial_c: [dirs, batch, H] / [batch, dirs, H]
    st_bs = hidden if layout == 0 else dirs * hidden

    def at(name: str, elements: int) -> Buf | None:
        return Buf(name, elements * 4) if name else None

    b_const = ctx.const(b)
    r_const = ctx.const(r)
    for d in range(dirs):
        reverse = int(direction == "reverse" or d == 1)
        # input projection (+ W bias, + R bias where it adds outside any gate product)
        wt = _transposed_w(ctx, w, d, GH, isize)
        bias, rb = None, None
        if b_const is not None:
            wb, rbias = b_const[d, :GH].astype(np.float32), b_const[d, GH:].astype(np.float32)
            outer = rbias.copy()
            if lbr:  # Rb_h is multiplied by r: it stays in the recurrent kernel
                outer[2 * hidden :] = 0.0
            bias = Const(wb + outer, f"{b}[{d}]")
            rb = Const(rbias - outer, f"{b}[{d}].Rb_h") if lbr else None
        elif b:
            bias = Buf(b, d * 2 * GH * 4)
            rb = Buf(b, (d * 2 * GH + GH) * 4)
        xw = Scratch(rows * GH * 4)
        ctx.emit(
            "f32_gemm", rows, GH, isize, Buf(x), isize, wt, GH, xw, GH, 1.0, bias, 0, 1 if bias else 0, 1.0,
            0, 0.0, 0.0, None, 0, split=gemm_columns_split(GH, 1 if bias else 0),
        )  # fmt: skip

        # recurrent weights in the kernel's panel layout
        if r_const is not None:
            rpack = Const(pack_recurrent(op, lbr, np.asarray(r_const[d], np.float32)), f"{r}[{d}].packed")
        else:
            rpack = Scratch(packed_size(op, lbr, hidden) * 4)
            ctx.emit("f32_rnn_pack", KIND[op], int(lbr), hidden, Buf(r, d * GH * hidden * 4), rpack)

        params = [clip]
        for code, alpha, beta in acts[d] + [(0, 0.0, 0.0)] * (3 - len(acts[d])):
            params += [float(code), alpha, beta]
        params.append(float(flag))
        st = d * batch * hidden if layout == 0 else d * hidden  # direction d of a state tensor
        row_bytes = WORK_BUFFERS * (-(-hidden // 16) * 16) * 4
        args = [
            batch, seq, hidden, reverse,
            xw, xw_ts, xw_bs,
            rb, rpack, at(peep, d * 3 * hidden), at(lens, 0),
            at(h0, st), at(c0, st), st_bs,
            at(y, d * (batch if layout == 0 else 1) * hidden), y_ts, y_bs,
            at(yh, st), at(yc, st), st_bs,
            Scratch(batch * row_bytes), Const(np.asarray(params, np.float32), "rnn params"),
        ]  # fmt: skip
        deltas = {"xw": xw_bs * 4, "lens": 4, "h0": st_bs * 4, "c0": st_bs * 4, "y": y_bs * 4, "yh": st_bs * 4}
        deltas |= {"yc": st_bs * 4, "work": row_bytes}
        ctx.emit(KERNEL[op], *args, split=(batch, "batch", deltas, 1))


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "RNN": recurrent,
    "GRU": recurrent,
    "LSTM": recurrent,
}
