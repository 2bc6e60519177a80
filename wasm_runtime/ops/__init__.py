"""One module per op family; importing the package registers every lowering (see ../lowering.py)."""

from . import conv, einsum, elementwise, fused, gemm, matmul_integer, norm, pool, resize, softmax, tensor  # noqa: F401
