"""Mixed WebGL/wasm plans on the host: which node runs where (wasm_runtime/partition.py), which tensors
move between the backends and when, the texture lifetimes around those moves, and the wasm part's bundle.
The same models run in Chromium against onnxruntime in tests/test_webgl.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

from tests.oputil import make_model, randn, single
from wasm_runtime import webgl
from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import WASM_PART_DIR, import_model, package
from wasm_runtime.passes import optimize
from wasm_runtime.verify import reference_outputs

X = (1, 4, 6, 6)


def _conv(name, x, y, seed, relu=False):
    nodes = [helper.make_node("Conv", [x, f"{name}_w"], [f"{name}_c" if relu else y], name=name, pads=[1, 1, 1, 1])]
    if relu:
        nodes.append(helper.make_node("Relu", [f"{name}_c"], [y], name=f"{name}_relu"))
    return nodes, {f"{name}_w": randn((4, 4, 3, 3), seed) * np.float32(0.3)}


def _model(parts, inputs, outputs):
    nodes, inits = [], {}
    for part in parts:
        if isinstance(part, tuple):
            nodes += part[0]
            inits.update(part[1])
        else:
            nodes.append(part)
    return make_model(nodes, inputs, outputs, inits)


def gpu_wasm_gpu():
    """conv (GPU) -> Erf (no shader: wasm) -> conv + relu (GPU)."""
    return _model(
        [_conv("conv1", "x", "a", 1), helper.make_node("Erf", ["a"], ["e"], name="erf"), _conv("conv2", "e", "y", 2)],
        {"x": X},
        ["y"],
    )


def wasm_edges():
    """The graph input is read on both sides and both outputs are computed on wasm (one int64): Erf (wasm) ->
    Add(erf, x) -> conv (GPU) -> Max(conv, x) and ArgMax(conv) on wasm."""
    return _model(
        [
            helper.make_node("Erf", ["x"], ["e"], name="erf"),
            helper.make_node("Add", ["e", "x"], ["s"], name="add"),
            _conv("conv", "s", "c", 1),
            helper.make_node("Max", ["c", "x"], ["y"], name="max"),
            helper.make_node("ArgMax", ["c"], ["idx"], name="argmax", axis=1),
        ],
        {"x": X},
        ["y", "idx"],
    )


def gpu_output_read_on_wasm():
    """conv's result is a graph output and Erf's input; the GPU also reads x, and wasm adds it back later."""
    return _model(
        [
            _conv("conv", "x", "c", 1),
            helper.make_node("Erf", ["c"], ["e"], name="erf"),
            helper.make_node("Add", ["e", "x"], ["y"], name="add"),
        ],
        {"x": X},
        ["c", "y"],
    )


def long_lived():
    """a (GPU, segment 1) is read back only for the second wasm segment (4): its texture must outlive the
    GPU segment 3 in between, whose tensors have the same size; two wasm segments, one wasm part."""
    return _model(
        [
            _conv("conv1", "x", "a", 1),
            helper.make_node("Relu", ["a"], ["b"], name="relu1"),
            helper.make_node("Erf", ["b"], ["e"], name="erf"),
            _conv("conv2", "e", "f", 2),
            helper.make_node("Mul", ["f", "f"], ["g"], name="square"),
            helper.make_node("Max", ["g", "a"], ["y"], name="max"),
        ],
        {"x": X},
        ["y"],
    )


def reshape_after_wasm():
    """A free reshape of a wasm result stays on wasm (no transfer of its own); the GPU then reads it."""
    return make_model(
        [
            helper.make_node("Erf", ["x"], ["e"], name="erf"),
            helper.make_node("Reshape", ["e", "s"], ["r"], name="reshape"),
            helper.make_node("Relu", ["r"], ["y"], name="relu"),
        ],
        {"x": (2, 3, 4)},
        ["y"],
        {"s": np.array([6, 4], np.int64)},
    )


MIXED_CASES = {
    "gpu_wasm_gpu": gpu_wasm_gpu,
    "wasm_edges": wasm_edges,
    "gpu_output_read_on_wasm": gpu_output_read_on_wasm,
    "long_lived": long_lived,
    "reshape_after_wasm": reshape_after_wasm,
}

# node -> backend after optimization (conv + relu fuse into one node named after the conv)
PLACEMENTS = {
    "gpu_wasm_gpu": {"conv1": "webgl", "erf": "wasm", "conv2": "webgl"},
    "wasm_edges": {"erf": "wasm", "add": "webgl", "conv": "webgl", "max": "wasm", "argmax": "wasm"},
    "gpu_output_read_on_wasm": {"conv": "webgl", "erf": "wasm", "add": "webgl"},
    "long_lived": {
        "conv1": "webgl",
        "relu1": "webgl",
        "erf": "wasm",
        "conv2": "webgl",
        "square": "webgl",
        "max": "wasm",
    },
    "reshape_after_wasm": {"erf": "wasm", "reshape": "wasm", "relu": "webgl"},
}


def _optimized(model):
    _, graph = import_model(model)
    optimize(graph)
    return graph


def _segments(section):
    return [(s["backend"], s["steps"], [t["tensor"] for t in s["transfers"]]) for s in section["segments"]]


def test_shader_less_middle_node_splits_gpu_wasm_gpu(tmp_path):
    gl = webgl.plan_webgl(_optimized(gpu_wasm_gpu()))
    part = gl.partition
    assert part.placement == PLACEMENTS["gpu_wasm_gpu"]
    # the convs run in the C4 layout, 4 pixels per fragment: relayouts (GPU steps of their own) around them and
    # a merge of the 4 parts after each; the moves stay flat4
    assert [(s.backend, s.nodes, s.transfers) for s in part.segments] == [
        ("webgl", ["x:to_c4", "conv1", "a:merge_x4", "a:to_flat4"], []),
        ("wasm", ["erf"], ["a"]),
        ("webgl", ["e:to_c4", "conv2", "y:merge_x4", "y:to_flat4"], ["e"]),
    ]
    assert (part.gpu_inputs, part.gpu_outputs) == (["x"], ["y"])
    assert (part.wasm_inputs, part.wasm_outputs) == (["a"], ["e"])
    assert gl.unsupported == [("erf", "Erf", "no shader for Erf")]

    m = package(gpu_wasm_gpu(), tmp_path / "b", backend="webgl", variants=("simd",)).manifest
    section = m["webgl"]
    assert _segments(section) == [("webgl", [0, 4], []), ("wasm", [0, 1], ["a"]), ("webgl", [4, 8], ["e"])]
    assert [s["node"] for s in section["steps"]] == [
        "x:to_c4", "conv1", "a:merge_x4", "a:to_flat4", "e:to_c4", "conv2", "y:merge_x4", "y:to_flat4"
    ]  # fmt: skip
    assert len(section["steps"][1]["outputs"]) == 4 and section["steps"][2]["inputs"] == section["steps"][1]["outputs"]
    assert section["placement"] == PLACEMENTS["gpu_wasm_gpu"]
    assert section["unsupported"] == [{"node": "erf", "op": "Erf", "reason": "no shader for Erf"}]
    # the wasm part is a bundle of its own over the Erf alone, its manifest hashed in the section
    part_dir = tmp_path / "b" / WASM_PART_DIR
    sub = json.loads((part_dir / "manifest.json").read_text())
    assert [s["node"] for s in sub["steps"]] == ["erf"]
    assert [e["name"] for e in sub["inputs"]] == ["a"] and [e["name"] for e in sub["outputs"]] == ["e"]
    moves = {t["tensor"]: t for s in section["segments"] for t in s["transfers"]}
    assert moves["a"]["offset"] == sub["inputs"][0]["offset"] and moves["e"]["offset"] == sub["outputs"][0]["offset"]
    assert moves["a"]["elements"] == moves["e"]["elements"] == 4 * 6 * 6
    assert section["wasm"]["dir"] == WASM_PART_DIR
    assert section["wasm"]["manifest"]["bytes"] == (part_dir / "manifest.json").stat().st_size
    # no weight is stored for the wasm part (Erf has none): the GPU's weights are not copied there
    assert sub["memory"]["weights_file_bytes"] == 0
    # the full wasm plan stays (the "auto" fallback without WebGL)
    assert [s["node"] for s in m["steps"]] == ["conv1", "erf", "conv2"]


def test_wasm_part_runs_on_the_host_like_onnxruntime(tmp_path):
    """The wasm part is an ordinary bundle: fed the GPU's tensors (here computed by onnxruntime), it returns
    what the reference computes for its nodes."""
    model = gpu_wasm_gpu()
    package(model, tmp_path / "b", backend="webgl", variants=("simd",))
    x = randn(X, 5)
    a = reference_outputs(_model([_conv("conv1", "x", "a", 1)], {"x": X}, ["a"]), {"x": x})["a"]
    out = HostSession(tmp_path / "b" / WASM_PART_DIR).run({"a": a})
    import math

    expected = np.vectorize(math.erf)(a.astype(np.float64))
    assert np.abs(out["e"] - expected).max() < 1e-5


def test_graph_inputs_and_outputs_on_the_wasm_side():
    part = webgl.plan_webgl(_optimized(wasm_edges())).partition
    assert part.placement == PLACEMENTS["wasm_edges"]
    assert [(s.backend, s.transfers) for s in part.segments] == [("wasm", []), ("webgl", ["e"]), ("wasm", ["c"])]
    assert (part.gpu_inputs, part.gpu_outputs) == (["x"], [])  # x is uploaded from the feeds, not moved
    assert part.wasm_inputs == ["x", "c"]  # the graph input, then what the GPU computed
    assert part.wasm_outputs == ["e", "y", "idx"]  # what the GPU reads, then the graph outputs


def test_gpu_output_also_read_on_wasm_moves_once():
    gl = webgl.plan_webgl(_optimized(gpu_output_read_on_wasm()))
    part = gl.partition
    assert part.placement == PLACEMENTS["gpu_output_read_on_wasm"]
    assert [(s.backend, s.transfers) for s in part.segments] == [("webgl", []), ("wasm", ["c"]), ("webgl", ["e"])]
    assert part.gpu_outputs == ["c", "y"] and part.wasm_outputs == ["e"]
    # x is uploaded from the feeds for both GPU segments, never moved
    assert part.gpu_inputs == ["x"] and part.wasm_inputs == ["c"]
    outputs = {e["name"]: e["texture"] for e in gl.section["outputs"]}
    moved = gl.section["segments"][1]["transfers"][0]
    assert moved["texture"] == outputs["c"]  # read back from the output's own texture
    # ... which stays c's until the end of the run: e, moved in later, does not land there
    assert gl.section["segments"][2]["transfers"][0]["texture"] != outputs["c"]


def test_texture_of_a_tensor_read_back_later_outlives_the_gpu_segments_between():
    gl = webgl.plan_webgl(_optimized(long_lived()))
    part, section = gl.partition, gl.section
    assert part.placement == PLACEMENTS["long_lived"]
    assert [(s.backend, s.transfers) for s in part.segments] == [
        ("webgl", []),
        ("wasm", ["b"]),
        ("webgl", ["e"]),
        ("wasm", ["g", "a"]),
    ]
    steps = {s["node"]: s for s in section["steps"]}
    # conv1 writes a in C4 (its 4 parts, merged); its flat4 copy is made just before the read-back, at the end of
    # segment 3
    a_texture = steps["a:merge_x4"]["output"]
    assert steps["a:to_flat4"]["inputs"] == [a_texture]
    flat_a = steps["a:to_flat4"]["output"]
    assert section["segments"][3]["transfers"][1] == {"tensor": "a", "texture": flat_a, "elements": 144}
    # every tensor here has a's size, so only liveness keeps conv2/square off a's texture
    between = [steps[n]["output"] for n in ("e:to_c4", "f:merge_x4", "square")] + steps["conv2"]["outputs"]
    between.append(section["segments"][2]["transfers"][0]["texture"])
    assert a_texture not in between
    # ... while textures are still reused: b's (dead after its read-back) holds a later tensor
    assert steps["relu1"]["output"] in between


def test_reshape_of_a_wasm_result_stays_on_wasm():
    part = webgl.plan_webgl(_optimized(reshape_after_wasm())).partition
    assert part.placement == PLACEMENTS["reshape_after_wasm"]
    assert [(s.backend, s.transfers) for s in part.segments] == [("wasm", []), ("webgl", ["r"])]


def test_gpu_run_of_only_reshapes_moves_to_wasm():
    """x -> Reshape -> Erf: the reshape could run on the GPU, but a GPU segment with nothing to draw would
    only cost two transfers; with no drawing node left, there is no GPU plan at all."""
    model = make_model(
        [
            helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
            helper.make_node("Erf", ["r"], ["y"], name="erf"),
        ],
        {"x": (2, 3, 4)},
        ["y"],
        {"s": np.array([6, 4], np.int64)},
    )
    gl = webgl.plan_webgl(_optimized(model))
    assert gl.partition is None and gl.section == {
        "unsupported": [{"node": "erf", "op": "Erf", "reason": "no shader for Erf"}]
    }


def test_partition_on_a_hand_made_placement():
    """partition() alone: any placement, tensors move once per direction, just before first needed."""
    graph = _optimized(long_lived())
    gpu_reads = {"conv1": ["x", "conv1_w"], "conv2": ["e", "conv2_w"], "max": ["g", "a"]}
    part = webgl.partition(graph, gpu_reads)
    assert [(s.backend, s.nodes, s.transfers) for s in part.segments] == [
        ("webgl", ["conv1"], []),
        ("wasm", ["relu1", "erf"], ["a"]),
        ("webgl", ["conv2"], ["e"]),
        ("wasm", ["square"], ["f"]),
        ("webgl", ["max"], ["g"]),
    ]
    assert part.wasm_inputs == ["a", "f"] and part.wasm_outputs == ["e", "g"]
    assert part.gpu_outputs == ["y"]


def test_package_webgl_runs_shaderless_nodes_on_wasm_and_refuses_an_all_wasm_model(tmp_path):
    erf = single("Erf", {"x": (2, 3)})
    with pytest.raises(PackageError, match=r"no node of this model can run on the WebGL backend.*'erf' \(Erf\)"):
        package(erf, tmp_path / "m", backend="webgl", variants=("simd",))
    m = package(erf, tmp_path / "m", backend="all", variants=("simd",)).manifest
    assert m["webgl"] == {"unsupported": [{"node": "erf", "op": "Erf", "reason": "no shader for Erf"}]}
    assert not (tmp_path / "m" / WASM_PART_DIR).exists()
    # a model the GPU runs whole has no wasm part
    m = package(single("Relu", {"x": (2, 3)}), tmp_path / "r", backend="webgl", variants=("simd",)).manifest
    assert "wasm" not in m["webgl"] and _segments(m["webgl"]) == [("webgl", [0, 1], [])]
    assert not (tmp_path / "r" / WASM_PART_DIR).exists()
