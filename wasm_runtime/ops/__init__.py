"""One module per op family; importing the package registers every lowering (see ../lowering.py)."""

from . import conv, conv_transpose, elementwise, fused, gemm, norm, normalization, pool, softmax, tensor  # noqa: F401
