"""FusedConv / FusedGemm (wasm_runtime domain, produced by passes/fusion.py) are their base op's lowering:
Conv and Gemm read the fused activation and residual from the node and pass them to the kernel epilogue."""

from __future__ import annotations

from ..lowering import lowers
from .conv import conv
from .gemm import gemm

lowers("FusedConv")(conv)
lowers("FusedGemm")(gemm)
