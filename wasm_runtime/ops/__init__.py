"""One module per op family; importing the package registers every lowering (see ../lowering.py)."""

from . import binary, conv, elementwise, fused, gemm, norm, pool, softmax, tensor  # noqa: F401
