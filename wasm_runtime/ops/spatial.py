"""Window geometry shared by Conv and pooling: kernel/stride/dilation/padding attributes -> numbers."""

from __future__ import annotations

from ..ir import Node
from ..lowering import LoweringContext


def window(
    ctx: LoweringContext, node: Node, in_sizes: tuple[int, ...], kernel: tuple[int, ...], out_sizes: tuple[int, ...]
) -> dict:
    """strides, dilations, pads_begin, pads_end per spatial dim, with auto_pad resolved."""
    n = len(in_sizes)
    strides = list(node.attrs.get("strides") or [1] * n)
    dilations = list(node.attrs.get("dilations") or [1] * n)
    auto_pad = node.attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad == "NOTSET":
        pads = list(node.attrs.get("pads") or [0] * (2 * n))
        begin, end = pads[:n], pads[n:]
    elif auto_pad == "VALID":
        begin, end = [0] * n, [0] * n
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(n):
            total = max((out_sizes[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_sizes[i], 0)
            small = total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else total - small)
            end.append(total - begin[-1])
    else:
        raise ctx.fail(f"unknown auto_pad {auto_pad!r}")
    if min(begin + end) < 0:
        raise ctx.fail(f"negative pads {begin + end} are not supported")
    return {"strides": strides, "dilations": dilations, "begin": begin, "end": end}


def as_2d(sizes: list | tuple, fill: int) -> list[int]:
    """1-D windows run on the 2-D kernels with a leading size-1 dim."""
    return [fill, *sizes] if len(sizes) == 1 else list(sizes)
