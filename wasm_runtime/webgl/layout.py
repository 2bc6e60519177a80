"""How tensors sit in RGBA32F textures: the flat4 layout every tensor can take, and the channel-packed C4
layout of the convolutions and the ops around them.

**flat4**: element `i` of the row-major tensor is component `i & 3` of texel `t = i >> 2`, and texel `t` sits
at `(t % width, t / width)` with `width = min(texels, MAX_WIDTH)`. A reshape is therefore free (same texture).
Everything uploaded, read back or moved to wasm is flat4.

**C4**: [N, C, H, W] (or [N, C, L], as H = 1) tensors keep 4 channels of one pixel in a texel. Plane
q = n * ceil(C / 4) + c // 4 is an H x W tile; tiles fill a grid of TX columns (as few as fit 2048 rows), tile q
at column q % TX, row q // TX. Channels past C are padding (finite values that consumers never mix into real
ones: their weights are zero). Shaders address these textures with texture() at texel centres (NEAREST, no
filtering): in SwiftShader that costs about half of a texelFetch (micro-benchmark, 64 unrolled fetches per
fragment: 2.7-3.4 vs 5.5-5.8 ms), and a tap of a convolution is the fragment's own coordinate plus a constant
offset. Textures have one level and NEAREST for both filters, so the implicit LOD (undefined where a tap is
masked by a condition) cannot change the texel sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph
from ..ops.spatial import as_2d

MAX_WIDTH = 2048  # WebGL2 guarantees MAX_TEXTURE_SIZE >= 2048


class Unsupported(Exception):
    """This node has no shader, or a tensor no texture (reason in the message): the node runs on wasm."""


def texture_size(elements: int) -> tuple[int, int]:
    """(width, height) of the flat4 texture of a tensor of `elements` elements."""
    texels = max(1, -(-elements // 4))
    width = min(texels, MAX_WIDTH)
    height = -(-texels // width)
    if height > MAX_WIDTH:
        raise Unsupported(f"{elements} elements do not fit one {MAX_WIDTH}x{MAX_WIDTH} texture")
    return width, height


@dataclass(frozen=True)
class Grid:
    """The C4 tiling of one tensor."""

    N: int
    C: int
    H: int
    W: int
    TX: int

    @property
    def C4(self) -> int:
        return -(-self.C // 4)

    @property
    def planes(self) -> int:
        return self.N * self.C4

    @property
    def TY(self) -> int:
        return -(-self.planes // self.TX)

    @property
    def size(self) -> tuple[int, int]:
        return self.TX * self.W, self.TY * self.H


def c4_grid(shape) -> Grid | None:
    """The C4 tiling of a 3-D or 4-D tensor, or None when it does not fit a 2048 x 2048 texture."""
    if len(shape) not in (3, 4) or 0 in shape:
        return None
    N, C = shape[0], shape[1]
    H, W = as_2d(list(shape[2:]), 1)
    if H > MAX_WIDTH or W > MAX_WIDTH:
        return None
    planes = N * -(-C // 4)
    tx = -(-planes // (MAX_WIDTH // H))
    grid = Grid(N, C, H, W, tx)
    return grid if grid.size[0] <= MAX_WIDTH and grid.size[1] <= MAX_WIDTH else None


def fits_c4(graph: Graph, *names: str) -> bool:
    """Whether these tensors are float32 and have a C4 tiling."""
    return all(graph.values[n].dtype == np.float32 and c4_grid(graph.shape(n)) is not None for n in names)


def x4_shape(shape) -> tuple[int, ...]:
    """The shape of each of the 4 parts of a conv output computed 4 pixels per fragment: part j holds the
    pixels of columns 4 X + j at column X."""
    return (*shape[:-1], -(-shape[-1] // 4))
