"""The C4 layout pass of the GPU plan (wasm_runtime/webgl/c4_layout.py) on small graphs: where it moves
tensors to C4 and where it must leave them flat4, and the tuning constants the shader generators read when
they run (benchmarks/webgl_profile.py --set). Whole plans run in Chromium in tests/test_webgl.py."""

from __future__ import annotations

from onnx import helper

from tests.oputil import make_model, randn
from wasm_runtime.package import import_model
from wasm_runtime.webgl import plan_webgl, tuning
from wasm_runtime.webgl.c4_layout import rewrite_to_c4
from wasm_runtime.webgl.layout import c4_grid

X = (1, 8, 6, 6)


def _graph(nodes, inits, x=X):
    _, graph = import_model(make_model(nodes, {"x": x}, ["y"], inits))
    return graph


def _depthwise_relu_depthwise():
    """The pass's docstring example: a = Conv(x); b = Relu(a); y = Conv(b), depthwise convs (one texel per
    fragment, no parts)."""
    w = {f"w{k}": randn((8, 1, 3, 3), k) for k in (1, 2)}
    return _graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", group=8, pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["a"], ["b"], name="relu"),
            helper.make_node("Conv", ["b", "w2"], ["y"], name="conv2", group=8, pads=[1, 1, 1, 1]),
        ],
        w,
    )


def _steps(graph):
    return [(n.op_type, n.inputs, n.outputs) for n in graph.nodes]


def test_c4_pass_moves_convs_and_the_ops_between_them_to_c4():
    graph = _depthwise_relu_depthwise()
    before = _steps(graph)
    out = rewrite_to_c4(graph, {"conv1", "relu", "conv2"})
    assert _steps(out.graph) == [
        ("Relayout", ["x"], ["x@c4"]),
        ("Conv", ["x@c4", "w1"], ["a@c4"]),
        ("Relu", ["a@c4"], ["b@c4"]),
        ("Conv", ["b@c4", "w2"], ["y@c4"]),
        ("Relayout", ["y@c4"], ["y"]),
    ]
    assert out.nodes == {"conv1", "relu", "conv2"}
    assert out.grids["a@c4"] == c4_grid(X) and set(out.grids) == {"x@c4", "a@c4", "b@c4", "y@c4"}
    assert _steps(graph) == before, "the model's graph is left as it was (the wasm side keeps it)"


def test_c4_pass_computes_a_dense_conv_in_four_parts_then_merges_them():
    graph = _graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])], {"w": randn((8, 8, 3, 3))}
    )
    out = rewrite_to_c4(graph, {"conv"})
    parts = [f"y@x4_{j}" for j in range(4)]
    assert _steps(out.graph) == [
        ("Relayout", ["x"], ["x@c4"]),
        ("Conv", ["x@c4", "w"], parts),
        ("Relayout", parts, ["y@c4"]),
        ("Relayout", ["y@c4"], ["y"]),
    ]
    assert out.graph.nodes[2].attrs == {"to": "c4", "from": "x4"}
    assert out.graph.values["y@x4_0"].shape == (1, 8, 6, 2)


def test_c4_pass_leaves_flat4_what_cannot_run_in_c4():
    # nodes without a shader (not in `supported`) are left alone
    graph = _depthwise_relu_depthwise()
    out = rewrite_to_c4(graph, set())
    assert _steps(out.graph) == _steps(graph) and out.nodes == set() and out.grids == {}
    # Div of a C4 tensor reads it flat4 (0 / 0 in a padding channel would be NaN), and so does its consumer
    graph = _graph(
        [
            helper.make_node("Conv", ["x", "w"], ["a"], name="conv", group=8, pads=[1, 1, 1, 1]),
            helper.make_node("Div", ["a", "x"], ["d"], name="div"),
            helper.make_node("Relu", ["d"], ["y"], name="relu"),
        ],
        {"w": randn((8, 1, 3, 3))},
    )
    out = rewrite_to_c4(graph, {"conv", "div", "relu"})
    assert _steps(out.graph) == [
        ("Relayout", ["x"], ["x@c4"]),
        ("Conv", ["x@c4", "w"], ["a@c4"]),
        ("Relayout", ["a@c4"], ["a"]),
        ("Div", ["a", "x"], ["d"]),
        ("Relu", ["d"], ["y"]),
    ]
    assert out.nodes == {"conv"}


def _sources(graph) -> dict[str, str]:
    section = plan_webgl(graph).section
    return {s["node"]: section["programs"][s["program"]]["source"] for s in section["steps"]}


def test_generators_read_the_tuning_constants_when_they_run(monkeypatch):
    """benchmarks/webgl_profile.py --set overrides webgl.tuning; the generators must see it."""
    w = randn((8, 1, 7, 7))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=8, pads=[3, 3, 3, 3])
    assert "kx += " not in _sources(_graph([conv], {"w": w}))["conv"]  # a 7x7 window's rows unrolled whole
    monkeypatch.setattr(tuning, "COLUMNS_UNROLLED", 0)
    assert f"kx < 4; kx += {tuning.COLUMN_CHUNK}" in _sources(_graph([conv], {"w": w}))["conv"]

    softmax = helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=-1)
    assert list(_sources(_graph([softmax], {}, (2, 3, 8)))) == ["softmax:stats", "softmax"]
    monkeypatch.setattr(tuning, "SOFTMAX_TWO_STEPS", 9)
    assert list(_sources(_graph([softmax], {}, (2, 3, 8)))) == ["softmax"]
