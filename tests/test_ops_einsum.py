"""Einsum through the whole pipeline against onnxruntime and numpy (float64): matmuls in every operand
layout, batches, broadcasting ellipses, diagonals, traces, sums, outer / inner / elementwise products,
three operands; and the ONNX node tests (float64 there) run in float32."""

from __future__ import annotations

import importlib
import json

import numpy as np
import onnx
import pytest
from oputil import check_model, randn, single

from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package

CASES = {
    # name: (equation, input shapes)
    "matmul": ("ij,jk->ik", [(5, 7), (7, 11)]),
    "matmul_implicit": ("ij,jk", [(5, 7), (7, 11)]),
    "matmul_b_transposed": ("ij,kj->ik", [(6, 9), (10, 9)]),
    "matmul_a_transposed_out_transposed": ("ji,jk->ki", [(7, 5), (7, 3)]),
    "matmul_big_split": ("ij,jk->ik", [(64, 50), (50, 70)]),
    "matmul_unit_rows": ("ij,jk->ik", [(1, 7), (7, 9)]),
    "batch_matmul": ("bij,bjk->bik", [(6, 5, 7), (6, 7, 9)]),
    "batch_matmul_swapped_out": ("bij,bjk->bki", [(3, 5, 7), (3, 7, 9)]),
    "batch_matmul_scrambled_out": ("bij,bkj->ibk", [(3, 5, 7), (3, 6, 7)]),
    "attention_scores": ("bhqd,bhkd->bhqk", [(2, 3, 5, 8), (2, 3, 6, 8)]),
    "ellipsis_broadcast": ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 6)]),
    "ellipsis_implicit": ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]),
    "outer": ("i,j->ij", [(5,), (7,)]),
    "inner": ("i,i->", [(13,), (13,)]),
    "inner_implicit": ("i,i", [(13,), (13,)]),
    "elementwise": ("ij,ij->ij", [(4, 5), (4, 5)]),
    "frobenius": ("ij,ij->", [(4, 5), (4, 5)]),
    "diagonal": ("ii->i", [(6, 6)]),
    "trace": ("ii->", [(7, 7)]),
    "trace_implicit": ("ii", [(7, 7)]),
    "batch_diagonal": ("...ii->...i", [(3, 5, 5)]),
    "sum_all": ("ij->", [(9, 11)]),
    "sum_rows": ("ij->i", [(9, 11)]),
    "sum_cols": ("ij->j", [(9, 11)]),
    "sum_middle_transpose": ("ijk->ki", [(3, 10, 4)]),
    "transpose": ("ij->ji", [(3, 4)]),
    "transpose_3d": ("abc->cab", [(2, 3, 4)]),
    "identity": ("ij->ij", [(3, 4)]),
    "three_operands": ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 6)]),
    "diagonal_into_matmul": ("iij,jk->ik", [(4, 4, 5), (5, 3)]),
    "summed_before_contract": ("ijx,jk->ik", [(4, 5, 6), (5, 3)]),
    "upper_case": ("Ab,bC->AC", [(3, 4), (4, 5)]),
    "spaces": (" bij , bjk -> bik ", [(2, 3, 4), (2, 4, 5)]),
    "scalar_operand_product": ("i,->i", [(5,), ()]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_einsum(name, tmp_path):
    equation, shapes = CASES[name]
    inputs = {f"x{i}": list(s) for i, s in enumerate(shapes)}
    model = single("Einsum", inputs, {"equation": equation}, opset=12)
    expect = {"y": lambda f: np.einsum(equation.replace(" ", ""), *[np.float64(f[k]) for k in inputs])}
    check_model(model, tmp_path, tol=1e-5, expect=expect)


def _kernels(out_dir) -> list[str]:
    return [s["kernel"] for s in json.loads((out_dir / "manifest.json").read_text())["steps"]]


def test_layouts_that_need_no_copies(tmp_path):
    """A matmul already in GEMM layout is one GEMM writing the output; an identity is an alias."""
    for i, (equation, shapes, kernels) in enumerate(
        [
            ("bij,bjk->bik", [[4, 3, 5], [4, 5, 2]], ["f32_gemm_batched"]),
            ("ij,jk->ki", [[3, 5], [5, 2]], ["x32_transpose", "x32_transpose", "f32_gemm"]),  # y^T x^T
            ("ij->ij", [[3, 4]], []),
        ]
    ):
        model = single("Einsum", {f"x{j}": s for j, s in enumerate(shapes)}, {"equation": equation}, opset=12)
        check_model(model, tmp_path / str(i))
        assert _kernels(tmp_path / str(i)) == kernels, equation


def test_node_tests_in_float32(tmp_path):
    """The ONNX Einsum node tests are float64 (out of scope); their equations and data in float32."""
    from onnx.backend.test.case.node import _NodeTestCases

    importlib.import_module("onnx.backend.test.case.node.einsum")
    cases = [c for c in _NodeTestCases if c.name.startswith("test_einsum") and "bfloat16" not in c.name]
    assert len(cases) >= 6
    for case in cases:
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        for vi in [*model.graph.input, *model.graph.output]:
            vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        ((inputs, outputs),) = case.data_sets
        feeds = {vi.name: np.asarray(v, np.float32) for vi, v in zip(model.graph.input, inputs, strict=True)}
        out = tmp_path / case.name
        package(model, out)
        got = HostSession(out).run(feeds)[model.graph.output[0].name]
        np.testing.assert_allclose(got, outputs[0], rtol=1e-5, atol=1e-6, err_msg=case.name)


def test_float64_fails_clearly(tmp_path):
    model = single("Einsum", {"x": ([3, 4], np.float64)}, {"equation": "ij->ji"}, opset=12)
    with pytest.raises(PackageError, match="float64"):
        package(model, tmp_path)


def test_random_inputs_match_onnxruntime_exactly_enough(tmp_path):
    """Larger values and a long contraction stay within float32 rounding of numpy."""
    model = single("Einsum", {"a": [3, 40, 33], "b": [3, 33, 17]}, {"equation": "bij,bjk->bki"}, opset=12)
    feeds = {"a": randn([3, 40, 33], 1) * 100, "b": randn([3, 33, 17], 2)}
    check_model(model, tmp_path, feeds=feeds, tol=1e-5)
