"""`--verify` (wasm_runtime/verify.py): the tolerance model, inputs made to fit the model, the user's own
inputs, and what verify says when onnxruntime or the bundle fails. Small onnx.helper models only."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime.errors import VerifyError
from wasm_runtime.package import package
from wasm_runtime.verify import (
    ABS_FLOOR,
    audio_like,
    check_output,
    compare,
    fitted_inputs,
    integer_hints,
    random_inputs,
    reference_outputs,
    verify,
)


def make(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(
        nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in dict(inits).items()]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def info(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def mlp(bias: float = 0.0, sigmoid: bool = False, batch="1"):
    """x[batch, 64] -> MatMul -> Tanh -> MatMul (+ bias) (-> Sigmoid): with bias -15 and the sigmoid, outputs
    of ~1e-7, the scale of a wake-word detector's score on noise."""
    rng = np.random.default_rng(0)
    inits = {
        "W1": (rng.standard_normal((64, 32)) / 8).astype(np.float32),
        "W2": (rng.standard_normal((32, 8)) / 4).astype(np.float32),
        "B": np.full(8, bias, np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"]),
        helper.make_node("Tanh", ["h"], ["t"]),
        helper.make_node("MatMul", ["t", "W2"], ["l"]),
        helper.make_node("Add", ["l", "B"], ["z" if sigmoid else "y"]),
    ]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["y"]))
    dim = int(batch) if batch.isdigit() else batch
    return make(nodes, [info("x", TensorProto.FLOAT, [dim, 64])], [info("y", TensorProto.FLOAT, [dim, 8])], inits)


def scale_weights(bundle, every: int | None = None, factor: float = 1.01):
    """Scale the weights.bin float of largest magnitude (or every `every`-th one) and record the new sha256,
    so the bundle still loads."""
    path = bundle / "weights.bin"
    weights = np.frombuffer(path.read_bytes(), np.float32).copy()
    if every:
        weights[::every] *= factor
    else:
        weights[np.argmax(np.abs(weights))] *= factor
    path.write_bytes(weights.tobytes())
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["weights.bin"]["sha256"] = hashlib.sha256(weights.tobytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------------------------------------
# the tolerance model, on arrays


def test_error_is_judged_against_the_output_scale():
    ref = np.array([1.0, 1e-6, -0.5], np.float32)
    # 5e-5 at an element of 1e-6 is 50x its own size, but well within rounding at the output's scale
    assert check_output("y", ref + np.float32([0, 5e-5, 0]), ref, ref).ok
    # 3e-4 at the largest element is beyond rtol 1e-4 of it and of the scale
    bad = check_output("y", ref + np.float32([3e-4, 0, 0]), ref, ref)
    assert not bad.ok and bad.beyond == 1 and bad.bound == "scale" and bad.worst > 1


def test_onnxruntime_noise_widens_the_tolerance_of_near_zero_outputs():
    # a detector's score of ~5e-7: our 3e-7 difference is rounding when onnxruntime's own two runs differ
    # by 6e-8, and a failure when they agree
    ref = np.array([5.7e-7], np.float32)
    ours = ref + np.float32(3e-7)
    noisy = check_output("s", ours, ref, ref + np.float32(6e-8))
    assert noisy.ok and noisy.bound == "noise" and noisy.atol == pytest.approx(16 * 6e-8, rel=1e-3)
    quiet = check_output("s", ours, ref, ref)
    assert not quiet.ok and quiet.bound == "floor" and quiet.atol == ABS_FLOOR


def test_nan_and_inf_follow_onnxruntime():
    ref = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    assert check_output("y", ref.copy(), ref, ref).ok
    nan_ours = check_output("y", np.array([np.nan, np.inf, -np.inf, np.nan], np.float32), ref, ref)
    assert not nan_ours.ok and "1 NaN where onnxruntime is finite" in nan_ours.nonfinite
    flipped = check_output("y", np.array([np.nan, -np.inf, -np.inf, 1.0], np.float32), ref, ref)
    assert not flipped.ok and flipped.beyond == 1
    finite_ours = check_output("y", np.array([0.0, np.inf, -np.inf, 1.0], np.float32), ref, ref)
    assert not finite_ours.ok


def test_integer_outputs_must_match_exactly():
    ref = np.array([3, 1, 4], np.int64)
    assert check_output("ids", ref.copy(), ref, ref).ok
    off = check_output("ids", np.array([3, 1, 5], np.int64), ref, ref)
    assert not off.ok and off.bound == "exact"
    # an argmax onnxruntime itself flips between its optimization levels may flip here too
    assert check_output("ids", np.array([3, 1, 5], np.int64), ref, np.array([3, 1, 5], np.int64)).ok


def test_shape_mismatch_is_a_failure_not_an_exception():
    check = check_output("y", np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), None)
    assert not check.ok and "shape [2, 3], onnxruntime's [3, 2]" in check.problem


# ---------------------------------------------------------------------------------------------------------
# generated inputs


def gather_model():
    table = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "ids64"], ["e"], axis=0),
        helper.make_node("ReduceSum", ["e"], ["y"], keepdims=0),
    ]
    return make(nodes, [info("ids", TensorProto.INT32, [2, 5])], [info("y", TensorProto.FLOAT, [])], {"table": table})


def sample_rate_model():
    """y = x * 2 if sr == 16000 else x * 3: a VAD's switch on its sample rate."""
    two, three = (numpy_helper.from_array(np.array(v, np.float32), n) for v, n in ((2, "two"), (3, "three")))
    then = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [info("t", TensorProto.FLOAT, [1, 32])], [two]
    )
    other = helper.make_graph(
        [helper.make_node("Mul", ["x", "three"], ["t3"])], "else", [], [info("t3", TensorProto.FLOAT, [1, 32])], [three]
    )
    nodes = [
        helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
        helper.make_node("If", ["is16k"], ["y"], then_branch=then, else_branch=other),
    ]
    inputs = [info("x", TensorProto.FLOAT, [1, 32]), info("sr", TensorProto.INT64, [])]
    return make(nodes, inputs, [info("y", TensorProto.FLOAT, [1, 32])], {"rate": np.array(16000, np.int64)})


def test_ids_indexing_a_table_stay_below_its_rows(tmp_path):
    model = gather_model()
    entries = [{"name": "ids", "dtype": "int32", "shape": [2, 5]}]
    assert integer_hints(model)["ids"].rows == 7
    for seed in range(5):
        ids = fitted_inputs(model, entries, seed)["ids"]
        assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < 7
    # the old generator's ids in [0, 10) are out of the table, and onnxruntime refuses them
    with pytest.raises(Exception, match="out of"):
        reference_outputs(model, random_inputs(entries, seed=0))
    package(model, tmp_path / "b")
    report = verify(tmp_path / "b", model)
    assert report.ok and not report.rejected, [c.format() for r in report.runs for c in r.checks]
    assert "ids in [0, 7)" in report.generators["ids"]


def test_a_scalar_compared_with_a_constant_gets_that_constant():
    model = sample_rate_model()
    entries = [{"name": "x", "dtype": "float32", "shape": [1, 32]}, {"name": "sr", "dtype": "int64", "shape": []}]
    feeds = fitted_inputs(model, entries)
    assert feeds["sr"].shape == () and int(feeds["sr"]) == 16000
    np.testing.assert_array_equal(reference_outputs(model, feeds)["y"], feeds["x"] * 2)


def test_one_hot_bytes_are_drawn_from_the_compared_range():
    """magika's input: bytes [batch, 2048] compared with 0..256 through Reshape and Expand (a one-hot)."""
    nodes = [
        helper.make_node("Reshape", ["bytes", "shape"], ["b3"]),
        helper.make_node("Equal", ["b3", "classes"], ["hot"]),
        helper.make_node("Cast", ["hot"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["f", "axes"], ["y"], keepdims=0),
    ]
    inits = {
        "shape": np.array([-1, 16, 1], np.int64),
        "classes": np.arange(257, dtype=np.int32).reshape(1, 1, 257),
        "axes": np.array([1], np.int64),
    }
    model = make(nodes, [info("bytes", TensorProto.INT32, [1, 16])], [info("y", TensorProto.FLOAT, [1, 257])], inits)
    assert len(integer_hints(model)["bytes"].choices) == 257
    values = fitted_inputs(model, [{"name": "bytes", "dtype": "int32", "shape": [1, 16]}])["bytes"]
    assert values.min() >= 0 and values.max() <= 256 and len(np.unique(values)) > 8  # not [0, 10)


def test_rank_2_floats_get_an_audio_like_signal():
    x = audio_like(np.random.default_rng(0), [2, 4000])
    assert 0.1 <= np.abs(x).max() <= 0.5
    for row in x:  # sinusoids: neighbouring samples are alike, unlike white noise's
        assert np.corrcoef(row[:-1], row[1:])[0, 1] > 0.5
    assert not np.allclose(x[0], x[1])


# ---------------------------------------------------------------------------------------------------------
# verify() on bundles


def test_correct_bundle_with_near_zero_outputs_passes(tmp_path):
    """The hey_marvin case: outputs of ~1e-7, where max|err| / max|ref| (the old check) was 0.06."""
    model = mlp(bias=-15.0, sigmoid=True)
    package(model, tmp_path / "b")
    report = verify(tmp_path / "b", model)
    assert report.ok, [c.format() for r in report.runs for c in r.checks]
    (check,) = report.runs[0].checks
    assert check.scale < 1e-5
    # ... which the old criterion would have failed
    feeds = fitted_inputs(model, [{"name": "x", "dtype": "float32", "shape": [1, 64]}])
    from wasm_runtime.host import HostSession

    (old,) = compare(HostSession(tmp_path / "b").run(feeds), reference_outputs(model, feeds))
    assert old.max_rel > 1e-4


def test_one_weight_scaled_by_1_01_fails(tmp_path):
    model = mlp()
    package(model, tmp_path / "b")
    assert verify(tmp_path / "b", model).ok
    scale_weights(tmp_path / "b")
    report = verify(tmp_path / "b", model)
    assert report.failed and all(not r.ok for r in report.runs)
    assert all(c.worst > 2 for r in report.runs for c in r.checks)


def test_nan_in_the_same_places_as_onnxruntime_passes(tmp_path):
    model = make(
        [helper.make_node("Log", ["x"], ["y"])],
        [info("x", TensorProto.FLOAT, [4, 4, 4])],
        [info("y", TensorProto.FLOAT, [4, 4, 4])],
    )
    package(model, tmp_path / "b")
    report = verify(tmp_path / "b", model)
    feeds = fitted_inputs(model, [{"name": "x", "dtype": "float32", "shape": [4, 4, 4]}])
    assert np.isnan(reference_outputs(model, feeds)["y"]).any()
    assert report.ok, [c.format() for r in report.runs for c in r.checks]


def test_dynamic_bundle_is_verified_at_three_sizes(tmp_path):
    model = mlp(batch="batch")
    result = package(model, tmp_path / "b")
    assert "dynamic" in result.manifest
    report = verify(tmp_path / "b", model)
    assert report.ok
    labels = {r.label.split(" @ ")[1] for r in report.runs}
    assert labels == {"x=1x64", "x=2x64", "x=8x64"}


def test_user_inputs_set_the_sizes_of_a_dynamic_bundle(tmp_path):
    model = mlp(batch="batch")
    package(model, tmp_path / "b")
    rng = np.random.default_rng(5)
    for batch in (3, 11):
        np.savez(tmp_path / f"in{batch}.npz", x=rng.standard_normal((batch, 64)))  # float64: converted
    report = verify(tmp_path / "b", model, inputs=[tmp_path / "in3.npz", tmp_path / "in11.npz"])
    assert report.ok and report.generators == {}
    assert [r.label for r in report.runs] == [f"{v} @ x={b}x64" for b in (3, 11) for v in ("simd", "relaxed")]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"y": np.zeros((1, 64), np.float32)},
            r"the model's inputs are \['x'\]; missing \['x'\]; not inputs of the model \['y'\]",
        ),
        ({"x": np.zeros((1, 64), np.float32), "z": np.zeros(1)}, r"not inputs of the model \['z'\]"),
        ({"x": np.zeros((2, 64), np.float32)}, r"'x' has shape \[2, 64\], the bundle takes \[1, 64\]"),
        ({"x": np.zeros((1, 64), np.int64)}, r"'x' is int64, the model takes float32"),
    ],
    ids=["wrong-name", "extra-name", "wrong-shape", "wrong-dtype-kind"],
)
def test_unusable_inputs_files_are_errors(tmp_path, arrays, message):
    model = mlp()
    package(model, tmp_path / "b")
    np.savez(tmp_path / "in.npz", **arrays)
    with pytest.raises(VerifyError, match=message):
        verify(tmp_path / "b", model, inputs=[tmp_path / "in.npz"])


def test_missing_or_garbage_inputs_file(tmp_path):
    model = mlp()
    package(model, tmp_path / "b")
    with pytest.raises(VerifyError, match="no such file"):
        verify(tmp_path / "b", model, inputs=[tmp_path / "nothing.npz"])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(VerifyError, match="not a readable .npz file"):
        verify(tmp_path / "b", model, inputs=[tmp_path / "junk.npz"])


def runtime_table_gather_model():
    """Gather from a table that is itself an input: nothing bounds the generated ids, and onnxruntime refuses
    the ones past the table's 4 rows."""
    nodes = [helper.make_node("Gather", ["table", "ids"], ["g"], axis=0), helper.make_node("Relu", ["g"], ["y"])]
    inputs = [info("table", TensorProto.FLOAT, [4, 3]), info("ids", TensorProto.INT64, [6])]
    return make(nodes, inputs, [info("y", TensorProto.FLOAT, [6, 3])], {})


def test_inputs_onnxruntime_rejects_are_reported_not_raised(tmp_path):
    model = runtime_table_gather_model()
    package(model, tmp_path / "b")
    report = verify(tmp_path / "b", model)
    assert len(report.rejected) == 1 and not report.failed and not report.ok
    assert report.rejected[0].startswith("onnxruntime rejects the generated inputs at ")
    assert "indices" in report.rejected[0] or "out of" in report.rejected[0], report.rejected[0]
    assert report.rejected[0].endswith("give your own inputs with --inputs FILE.npz")
    assert not report.runs


def test_dynamic_bundle_is_verified_at_sizes_its_domain_allows(tmp_path):
    """A reflect Pad by 2 of a [1, n] signal: onnxruntime refuses n < 3, and so does the bundle's domain, so
    verify runs at n = 3, 4 and 10 (not 1 and 2, which it once tried and reported as rejected)."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"), helper.make_node("Relu", ["p"], ["y"])]
    inits = {"pads": np.array([0, 2, 0, 2], np.int64)}
    model = make(nodes, [info("x", TensorProto.FLOAT, [1, "n"])], [info("y", TensorProto.FLOAT, [1, None])], inits)
    m = package(model, tmp_path / "b").manifest
    assert m["dynamic"]["domain"]["n"] == {"step": 1, "min": 3}
    report = verify(tmp_path / "b", model)
    assert report.ok and not report.rejected
    assert [r.label for r in report.runs][::2] == ["simd @ x=1x3", "simd @ x=1x4", "simd @ x=1x10"]


def test_a_trap_in_the_bundle_is_a_failed_run(tmp_path):
    model = mlp()
    package(model, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["steps"][-1]["args"][0] = 2**31 - 64  # a pointer past the end of memory
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    report = verify(tmp_path / "b", model)
    assert report.failed and not report.rejected
    assert all("trapped at node" in r.trap and "out of bounds" in r.trap for r in report.runs)
