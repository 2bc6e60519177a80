"""Einsum on float32, lowered to strided gathers (x32_transpose with any strides: transposes, diagonals,
broadcasts), row sums (f32_sum_rows) and the GEMM kernels.

Every operand is a strided view: label -> element stride. Repeated labels in one operand (a diagonal) merge
into one label whose stride is the sum; dims of size 1 are dropped (they broadcast, and do not change the
layout of a contiguous tensor). Operands are contracted pairwise, left to right: labels of one side that
nothing later needs are summed first, then

    A[batch, M, K] @ B[batch, K, N] -> C[batch, M, N]

with batch = labels of both sides still needed, K = labels of both not needed, M / N = the rest. What is left
is gathered (and its unneeded labels summed) into the output's order. Each step writes straight into the
output when its result already has the output's layout.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

from ..ir import Node
from .context import Buf, LoweringContext, Scratch, i32
from .gemm import gemm_columns_split
from .layout import contiguous_strides, fold_dims, pad_layout

LETTERS = set(string.ascii_letters)


@dataclass
class View:
    ptr: object  # Buf or Scratch
    strides: dict[str, int]  # label -> element stride, labels in the view's order

    @property
    def labels(self) -> list[str]:
        return list(self.strides)


def parse(ctx: LoweringContext, equation: str, shapes: list[tuple[int, ...]]):
    """([labels per input], output labels, size per label); '...' becomes labels '.0', '.1'... aligned
    right across operands like numpy broadcasting."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ctx.fail(f"equation {equation!r} has {len(terms)} operands, the node {len(shapes)}")

    def letters(term: str) -> list[str]:
        bad = set(term.replace("...", "")) - LETTERS
        if bad or term.count("...") > 1:
            raise ctx.fail(f"cannot parse einsum term {term!r} of {equation!r}")
        return [c for c in term.replace("...", "")]

    ell = [len(shape) - len(letters(t)) if "..." in t else 0 for t, shape in zip(terms, shapes, strict=True)]
    mismatch = any("..." not in t and len(letters(t)) != len(s) for t, s in zip(terms, shapes, strict=True))
    if mismatch or any(e < 0 for e in ell):
        raise ctx.fail(f"equation {equation!r} does not match the input ranks {[len(s) for s in shapes]}")
    E = max(ell, default=0)
    inputs = []
    for term, e in zip(terms, ell, strict=True):
        head, _, tail = term.partition("...")
        inputs.append(letters(head) + [f".{E - e + j}" for j in range(e)] + (letters(tail) if "..." in term else []))
    sizes: dict[str, int] = {}
    for labels, shape in zip(inputs, shapes, strict=True):
        for label, d in zip(labels, shape, strict=True):
            if sizes.get(label, 1) not in (1, d) and d != 1:
                raise ctx.fail(f"label {label!r} has sizes {sizes[label]} and {d}")
            sizes[label] = max(sizes.get(label, d), d)
    if arrow:
        head, dots, tail = rhs.partition("...")
        output = letters(head) + ([f".{j}" for j in range(E)] if dots else []) + letters(tail)
        if len(set(output)) != len(output) or any(label not in sizes for label in output):
            raise ctx.fail(f"invalid einsum output {rhs!r}")
    else:
        counts: dict[str, int] = {}
        for labels in inputs:
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
        output = [f".{j}" for j in range(E)] + sorted(c for c, n in counts.items() if n == 1 and c in LETTERS)
    return inputs, output, sizes


def _view(name: str, labels: list[str], shape, sizes) -> View:
    strides: dict[str, int] = {}
    for label, d, s in zip(labels, shape, contiguous_strides(shape), strict=True):
        if d == 1 or sizes[label] == 1:
            continue  # broadcast or unit dim: stride irrelevant
        strides[label] = strides.get(label, 0) + s  # a repeated label walks the diagonal
    return View(Buf(name), strides)


class Lowerer:
    def __init__(self, ctx: LoweringContext, sizes: dict[str, int]):
        self.ctx = ctx
        self.sizes = sizes

    def numel(self, labels) -> int:
        return math.prod(self.sizes[label] for label in labels)

    def is_contiguous(self, view: View, order: list[str]) -> bool:
        if set(view.labels) != set(order):
            return False
        dims, (strides,) = fold_dims([self.sizes[label] for label in order], [[view.strides[label] for label in order]])
        return all(strides[i] == math.prod(dims[i + 1 :]) for i in range(len(dims)))

    def gather(self, view: View, order: list[str], dst=None) -> View:
        """The view's elements as a contiguous tensor with dims `order` (labels not in the view broadcast);
        no copy when the view already is that tensor (and no destination is imposed)."""
        if dst is None and self.is_contiguous(view, order) and self._unshifted(view):
            return View(view.ptr, dict(zip(order, contiguous_strides([self.sizes[lb] for lb in order]), strict=True)))
        out = dst if dst is not None else Scratch(self.numel(order) * 4)
        dims, strides = fold_dims([self.sizes[lb] for lb in order], [[view.strides.get(lb, 0) for lb in order]])
        if not dims:
            dims, strides = [1], [[0]]
        self.ctx.emit("x32_transpose", i32(pad_layout(self.ctx, dims, strides)), view.ptr, out)
        return View(out, dict(zip(order, contiguous_strides([self.sizes[lb] for lb in order]), strict=True)))

    @staticmethod
    def _unshifted(view: View) -> bool:
        return not isinstance(view.ptr, Buf) or view.ptr.offset == 0

    def reduce(self, view: View, keep: list[str], dst=None) -> View:
        """Sum the view over its labels not in `keep`; the result is contiguous in `keep` order."""
        summed = [lb for lb in view.labels if lb not in keep]
        keep = [lb for lb in keep if lb in view.strides]
        if not summed:
            return view if dst is None else self.gather(view, keep, dst)
        src = self.gather(view, keep + summed)
        rows, k = self.numel(keep), self.numel(summed)
        out = dst if dst is not None else Scratch(rows * 4)
        self.ctx.emit("f32_sum_rows", rows, k, src.ptr, out, split=(rows, "rows", {"x": k * 4, "y": 4}))
        return View(out, dict(zip(keep, contiguous_strides([self.sizes[lb] for lb in keep]), strict=True)))

    def contract(self, x: View, y: View, needed: set[str], output: list[str] | None, dst) -> View:
        """x * y summed over their labels not in `needed`. When `output` is given (the last contraction) and
        the product can come out in its order, it is written to dst."""
        x = self.reduce(x, [lb for lb in x.labels if lb in needed or lb in y.strides])
        y = self.reduce(y, [lb for lb in y.labels if lb in needed or lb in x.strides])
        batch = [lb for lb in x.labels if lb in y.strides and lb in needed]
        inner = [lb for lb in x.labels if lb in y.strides and lb not in needed]
        x_only = [lb for lb in x.labels if lb not in y.strides]
        y_only = [lb for lb in y.labels if lb not in x.strides]
        target = None
        if output is not None:
            rank = {lb: i for i, lb in enumerate(output)}
            batch.sort(key=rank.__getitem__)
            x_only.sort(key=rank.__getitem__)
            y_only.sort(key=rank.__getitem__)
            if output == batch + y_only + x_only and x_only and y_only:
                x, y, x_only, y_only = y, x, y_only, x_only  # C^T = B^T A^T: output rows come from y
            if output == batch + x_only + y_only:
                target = dst
        a = self.gather(x, batch + x_only + inner)
        b = self.gather(y, batch + inner + y_only)
        nb, M, K, N = self.numel(batch), self.numel(x_only), self.numel(inner), self.numel(y_only)
        out = target if target is not None else Scratch(nb * M * N * 4)
        if nb == 1:
            self.ctx.emit(
                "f32_gemm", M, N, K, a.ptr, K, b.ptr, N, out, N, 1.0, None, 0, 0, 0.0, 0, 0.0, 0.0, None, 0,
                split=gemm_columns_split(N, 0),
            )  # fmt: skip
        else:
            self.ctx.emit(
                "f32_gemm_batched", nb, M, N, K, a.ptr, M * K, b.ptr, K * N, out,
                split=(nb, "batch", {"A": M * K * 4, "B": K * N * 4, "C": M * N * 4}),
            )  # fmt: skip
        labels = batch + x_only + y_only
        return View(out, dict(zip(labels, contiguous_strides([self.sizes[lb] for lb in labels]), strict=True)))


def einsum(ctx: LoweringContext, node: Node) -> None:
    names = [n for n in node.inputs if n]
    y = node.outputs[0]
    ctx.require_dtype(*names, y)
    shapes = [ctx.shape(n) for n in names]
    inputs, output, sizes = parse(ctx, str(node.attrs["equation"]), shapes)
    expected = tuple(sizes[lb] for lb in output)
    if expected != tuple(ctx.shape(y)):
        raise ctx.fail(f"output shape {ctx.shape(y)} differs from the equation's {expected}")
    if math.prod(expected) == 0:
        return
    if any(math.prod(s) == 0 for s in shapes):  # an empty sum
        ctx.emit("x32_fill", Buf(y), math.prod(expected), 0)
        return
    low = Lowerer(ctx, sizes)
    out_labels = [lb for lb in output if sizes[lb] > 1]
    views = [_view(n, labels, s, sizes) for n, labels, s in zip(names, inputs, shapes, strict=True)]
    result = views[0]
    for k in range(1, len(views)):
        later = {lb for v in views[k + 1 :] for lb in v.strides}
        last = k == len(views) - 1
        result = low.contract(result, views[k], set(out_labels) | later, out_labels if last else None, Buf(y))
    if result.ptr == Buf(y):
        return
    if not [lb for lb in result.labels if lb not in out_labels] and low.is_contiguous(result, out_labels):
        if isinstance(result.ptr, Buf) and result.ptr.offset == 0 and result.ptr.name in names:
            ctx.alias(y, result.ptr.name)  # a view of an input with the output's layout (e.g. 'ij->ij')
            return
    low.reduce(result, out_labels, dst=Buf(y))


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Einsum": einsum,
}
