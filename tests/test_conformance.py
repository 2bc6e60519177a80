"""The ONNX node conformance tests through our backend adapter (wasm_runtime/conformance.py), driven by onnx's
own BackendTest: every case in tests/conformance/expected_pass.txt must pass, so a regression fails CI.
`python -m wasm_runtime.conformance --write` reruns the whole suite and regenerates that list and
docs/OPERATORS.md."""

import os
import re
import tempfile

import onnx.backend.test
import pytest

from wasm_runtime import conformance
from wasm_runtime.conformance import WasmBackend

os.environ.setdefault("ONNX_HOME", os.path.join(tempfile.gettempdir(), "wasm-runtime-onnx-home"))

EXPECTED = conformance.expected_passes()

_backend_test = onnx.backend.test.BackendTest(WasmBackend, __name__)
_backend_test.include("^(" + "|".join(re.escape(n) for n in EXPECTED) + ")_cpu$")
# only the node tests (the other suites need model downloads), and only the expected passes: BackendTest
# would otherwise report every other node case as a skip
_node_tests = _backend_test.test_cases["OnnxBackendNodeModelTest"]
_wanted = {f"{n}_cpu" for n in EXPECTED}
for _name in [n for n in vars(_node_tests) if n.startswith("test_") and n not in _wanted]:
    delattr(_node_tests, _name)
OnnxBackendNodeModelTest = _node_tests
del _node_tests  # one name per class, or pytest collects it twice


def test_every_expected_case_runs():
    """Each listed case is a test of the BackendTest class above (none silently dropped by a name mismatch)."""
    missing = sorted(_wanted - set(vars(OnnxBackendNodeModelTest)))
    assert not missing, missing[:5]


def test_expected_list_is_real():
    """The list names existing node tests, enough of them to mean something, with no duplicates."""
    names = {c.name for c in conformance.node_cases()}
    unknown = [n for n in EXPECTED if n not in names]
    assert not unknown, f"expected_pass.txt names tests onnx does not have: {unknown[:5]}"
    assert len(EXPECTED) == len(set(EXPECTED))
    assert len(EXPECTED) >= 150


def test_operator_table_matches_expected_list():
    """docs/OPERATORS.md counts exactly the passes in the committed list (it is generated from the same run)."""
    infos = conformance.select()
    results = {i.name: ("" if i.name in set(EXPECTED) else "not in the expected list") for i in infos}
    table = conformance.op_table(infos, results)
    doc = conformance.DOC_FILE.read_text()
    for op, row in table.items():
        if row["passed"]:
            assert re.search(rf"^\| {op} \| [\w -]+ \| {row['passed']}/{row['total']} \|", doc, re.M), op


def test_adapter_reports_unsupported_op_clearly():
    from onnx import TensorProto, helper

    from wasm_runtime.errors import PackageError
    from wasm_runtime.lowering import supported_ops

    node = helper.make_node("DeformConv", ["x", "w", "offset"], ["y"], name="the_deform_conv")
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 1, 2, 2]),
            helper.make_tensor_value_info("offset", TensorProto.FLOAT, [1, 8, 3, 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    assert "DeformConv" not in supported_ops(), "DeformConv is supported now; pick another op for this test"
    with pytest.raises(PackageError, match="DeformConv.*the_deform_conv"):
        WasmBackend.prepare(model)
