"""ConvTranspose (1-D/2-D/3-D, groups, strides, dilations, pads, output_padding, output_shape, auto_pad):
a GEMM per block of input rows, then col2im scatter-add (kernels_wasm/f32-convtranspose-wasmsimd.c).

Padding: explicit `pads` give the begin pads; with `output_shape` or auto_pad SAME_* the total padding is
stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - out, split as the spec says (SAME_UPPER:
begin = total // 2, otherwise begin = total - total // 2). The output size is the static shape; anything the
transposed convolution does not reach (output_padding, a larger output_shape) holds the bias."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, Const, LoweringContext, Scratch, i32

# columns of one GEMM block (input positions x output rows): bounds the workspace on large inputs
BLOCK_FLOATS = 1 << 20


def _as_3d(sizes, fill: int) -> list[int]:
    return [fill] * (3 - len(sizes)) + list(sizes)


def conv_transpose(ctx: LoweringContext, node: Node) -> None:
    x, w, b, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    ctx.require_dtype(x, w, b, y)
    xs, ws, ys = ctx.shape(x), ctx.shape(w), ctx.shape(y)
    n = len(xs) - 2
    if not 1 <= n <= 3:
        raise ctx.fail(f"{n}-D transposed convolution is not supported (1-D, 2-D and 3-D are)")
    a = node.attrs
    group = int(a.get("group", 1))
    N, C = xs[0], xs[1]
    Mg = ws[1]
    M = Mg * group
    if C % group or ws[0] != C or ys[1] != M:
        raise ctx.fail(f"weights {list(ws)} do not match input {list(xs)}, group {group} and output {list(ys)}")
    kernel = list(a.get("kernel_shape") or ws[2:])
    if kernel != list(ws[2:]):
        raise ctx.fail(f"kernel_shape {kernel} differs from the weights' {list(ws[2:])}")
    strides = list(a.get("strides") or [1] * n)
    dilations = list(a.get("dilations") or [1] * n)
    out_pad = list(a.get("output_padding") or [0] * n)
    auto_pad = a.get("auto_pad", "NOTSET") or "NOTSET"
    ins, outs = xs[2:], ys[2:]
    if a.get("output_shape") or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin = []
        for i in range(n):
            total = strides[i] * (ins[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1 - outs[i]
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    elif auto_pad == "VALID":
        begin = [0] * n
    elif auto_pad == "NOTSET":
        begin = list(a.get("pads") or [0] * (2 * n))[:n]
    else:
        raise ctx.fail(f"unknown auto_pad {auto_pad!r}")
    if N * M * math.prod(outs) == 0:
        return
    Cg, K = C // group, math.prod(kernel)
    D, H, W = _as_3d(ins, 1)
    rows = D * H
    rpb = max(1, min(rows, BLOCK_FLOATS // max(1, Mg * K * W)))
    if ctx.graph.metadata.get("dynamic"):
        rpb = 1  # a block size that depends on the dims by a floor division has no formula: one row per block
    geo = [*_as_3d(ins, 1), *_as_3d(outs, 1), *_as_3d(kernel, 1), *_as_3d(strides, 1), *_as_3d(begin, 0)]
    geo += [*_as_3d(dilations, 1), rpb]
    weights = ctx.const(w)
    if weights is not None:
        # [C, Mg, K] -> [group][Mg * K][Cg]: the GEMM's A operand per group, transposed once here
        packed = np.ascontiguousarray(weights.reshape(group, Cg, Mg * K).transpose(0, 2, 1), dtype=np.float32)
        w_arg, w_cs, w_rs = Const(packed, "convtranspose.w"), 1, Cg
        per_unit = K * rpb * W
    else:
        w_arg, w_cs, w_rs = Buf(w), Mg * K, 1
        per_unit = K * (Cg + rpb * W)
    plane_out = math.prod(outs)
    split = (
        (M, "Mc", {"w": K * w_rs * 4, "bias": 4, "y": plane_out * 4, "workspace": per_unit * 4}) if group == 1 else None
    )
    ctx.emit(
        "f32_convtranspose",
        Mg,
        N,
        C,
        group,
        Mg,
        i32(geo),
        Buf(x),
        w_arg,
        w_cs,
        w_rs,
        Buf(b) if b else None,
        Buf(y),
        Scratch(Mg * per_unit * 4),
        split=split,
    )


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "ConvTranspose": conv_transpose,
}
