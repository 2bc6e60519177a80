"""Shape and data movement: views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout), Concat,
Transpose. (Slice, Split, Pad, Expand, Tile... and ConstantOfShape are in movement.py.)"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..ir import Node
from .context import Buf, Const, LoweringContext, i32
from .layout import transpose_layout


def view(ctx: LoweringContext, node: Node) -> None:
    """Same bytes, new shape: the output shares the input's storage and costs nothing at run time."""
    ctx.alias(node.outputs[0], node.input(0))


def dropout(ctx: LoweringContext, node: Node) -> None:
    """Inference (or a ratio of 0): y is x and the mask is all true. Training with a nonzero ratio draws
    random numbers: not supported."""
    ratio = ctx.const(node.input(1)) if node.input(1) else None
    training = ctx.const(node.input(2)) if node.input(2) else None
    if node.input(2) and (training is None or bool(training)) and (ratio is None or float(ratio) != 0.0):
        raise ctx.fail("training_mode Dropout is not supported (inference only: it draws random numbers)")
    ctx.alias(node.outputs[0], node.input(0))
    mask = node.outputs[1] if len(node.outputs) > 1 else ""
    if mask and (ctx.consumers().get(mask) or mask in ctx.graph.outputs):
        n = int(np.prod(ctx.shape(mask)))
        one = Const(np.ones(1, ctx.dtype(mask)), "fill value")
        es = ctx.dtype(mask).itemsize
        ctx.emit("x_fill", es, one, Buf(mask), n, split=(n, "n", {"y": es}))


def concat(ctx: LoweringContext, node: Node) -> None:
    """Each input copied into its slice of the output; where a slice is contiguous (nothing but 1s before the
    axis) the input's producer writes straight into it instead (see _in_place), and that copy disappears."""
    y = node.outputs[0]
    shape = ctx.shape(y)
    axis = int(node.attrs["axis"])
    axis += len(shape) if axis < 0 else 0
    size = ctx.dtype(y).itemsize
    outer, row = math.prod(shape[:axis]), math.prod(shape[axis:]) * size
    offset = 0
    reads = Counter(node.inputs)
    for name in node.inputs:
        if not name:
            continue
        chunk = math.prod(ctx.shape(name)[axis:]) * size
        if chunk and not (outer == 1 and reads[name] == 1 and _in_place(ctx, node, name, y, offset)):
            ctx.emit("x_copy2d", outer, chunk, Buf(name), chunk, Buf(y, offset), row)
        offset += chunk


def _in_place(ctx: LoweringContext, node: Node, name: str, y: str, offset: int) -> bool:
    """Make the steps already emitted for `name` use bytes [offset, ...) of y instead, when nothing else can
    see the difference: `name` is computed by those steps (not an input, a constant or a view of another
    tensor), this Concat (once: the caller checks) is its only reader and it is not a graph output. Returns
    whether it did."""
    g = ctx.graph
    if name in g.inputs or name in g.outputs or g.const(name) is not None:
        return False
    aliases = ctx.out.aliases
    if name in aliases or name in aliases.values() or [n.name for n in ctx.consumers().get(name, [])] != [node.name]:
        return False
    steps = ctx.steps_using(name)
    if not steps:
        return False
    for step in steps:
        step.args[:] = [Buf(y, offset + a.offset) if isinstance(a, Buf) and a.name == name else a for a in step.args]
        ctx.note_use(step, y)
    return True


_TRANSPOSE = {1: "x8_transpose", 2: "x16_transpose", 4: "x32_transpose", 8: "x64_transpose"}


def transpose(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    shape = ctx.shape(x)
    perm = node.attrs.get("perm") or list(range(len(shape)))[::-1]
    layout = transpose_layout(ctx, shape, perm)
    if layout is None:
        ctx.alias(y, x)
        return
    kernel = _TRANSPOSE.get(ctx.dtype(x).itemsize)
    if kernel is None:
        raise ctx.fail(f"Transpose of {ctx.dtype(x).name} is not supported")
    ctx.emit(kernel, i32(layout), Buf(x), Buf(y))


def constant(ctx: LoweringContext, node: Node) -> None:
    raise AssertionError("Constant nodes are folded before lowering")


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Reshape": view,
    "Flatten": view,
    "Squeeze": view,
    "Unsqueeze": view,
    "Identity": view,
    "Dropout": dropout,
    "Concat": concat,
    "Transpose": transpose,
    "Constant": constant,
}
