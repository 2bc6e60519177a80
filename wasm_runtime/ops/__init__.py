"""One module per op family; importing the package registers every lowering (see ../lowering.py)."""

from . import conv, elementwise, fused, gemm, norm, pool, softmax, tensor, unary  # noqa: F401
