"""Indexing ops (wasm_runtime/ops/index.py) against onnxruntime, on what the ONNX node tests leave out: sizes off
the SIMD width, tables big enough that the 3-thread plan really splits, int32 indices, negative axes and indices,
duplicate scatter indices, constant vs run-time parameters, and the run-time checks that trap (an index out of
range, a NonZero / Compress / Range count that differs from the planned output shape).

Several nodes share one model where they can, so each packaging covers many cases."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from oputil import check_model, make_model, randn, tensor_info

from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package

RNG = np.random.default_rng(7)


def node(op, inputs, output, **attrs):
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def declare(model, name, shape, dtype=np.float32):
    """Give graph output `name` a static shape: the one the model's author knows and inference cannot."""
    for out in model.graph.output:
        if out.name == name:
            out.CopyFrom(tensor_info(name, shape, dtype))
            return
    model.graph.output.append(tensor_info(name, shape, dtype))


def steps_of(manifest, node_name):
    return [s for s in manifest["steps"] if s["node"] == node_name]


def test_gathers(tmp_path):
    table = randn((50, 37), 1)  # an embedding table: constant, rows of 37 floats (off the SIMD width)
    x = randn((3, 5, 6), 2)
    x4 = randn((3, 5, 4), 3)  # 16-byte rows
    feeds = {
        "ids": np.array([[0, 49, -1, 7, 7, -50, 3], [12, 13, 14, 1, 2, 40, 0]], np.int64),
        "x": x,
        "x4": x4,
        "i32": np.array([[4, -5], [0, 2]], np.int32),
        "xi64": RNG.integers(-(1 << 40), 1 << 40, (6, 3)).astype(np.int64),
        "xb": RNG.random((4, 9)) > 0.5,
    }
    nodes = [
        node("Gather", ["table", "ids"], "emb"),
        node("Gather", ["x", "i32"], "axis1", axis=1),
        node("Gather", ["x", "i32"], "last", axis=-1),  # one float per row
        node("Gather", ["x4", "i32"], "rows16", axis=1),
        node("Gather", ["x", "minus1"], "scalar", axis=-2),  # constant scalar index: checked at package time
        node("Gather", ["xi64", "i32"], "int64", axis=0),
        node("Gather", ["xb", "i32"], "bool", axis=1),
    ]
    inputs = {k: (v.shape, v.dtype) for k, v in feeds.items()}
    model = make_model(nodes, inputs, [n.output[0] for n in nodes], {"table": table, "minus1": np.array(-1, np.int64)})
    manifest = check_model(model, tmp_path / "b", tol=0, feeds=feeds)
    (emb,) = steps_of(manifest, "emb")
    assert emb["kernel"] == "x_gather" and emb["split"]["units"] == 14, emb
    assert emb["args"][3] == 37 * 4, "one row copy of the table per id"


def test_gather_elements_and_nd(tmp_path):
    feeds = {
        "x": randn((5, 7, 3), 1),
        "ge": RNG.integers(-7, 7, (4, 9, 2)).astype(np.int64),  # smaller than x off the axis
        "b": randn((3, 4, 5, 6), 2),
        "nd1": RNG.integers(-4, 4, (3, 2, 2)).astype(np.int64),  # batch_dims 1: tuples of 2 into [4, 5]
        "nd0": RNG.integers(-3, 3, (2, 3, 1)).astype(np.int64),
        "xi": RNG.integers(-100, 100, (3, 4, 5, 6)).astype(np.int32),
    }
    nodes = [
        node("GatherElements", ["x", "ge"], "ge_axis1", axis=-2),
        node("GatherND", ["b", "nd1"], "nd_batch", batch_dims=1),
        node("GatherND", ["b", "nd0"], "nd_slices"),
        node("GatherND", ["xi", "nd0"], "nd_int32"),
    ]
    inputs = {k: (v.shape, v.dtype) for k, v in feeds.items()}
    model = make_model(nodes, inputs, [n.output[0] for n in nodes])
    check_model(model, tmp_path / "b", tol=0, feeds=feeds)


def test_scatters(tmp_path):
    feeds = {
        "data": randn((4, 6, 5), 1),
        "upd": randn((4, 3, 5), 2),
        "idx": RNG.integers(-6, 6, (4, 3, 5)).astype(np.int64),  # duplicates along axis 1
        "di": RNG.integers(-9, 9, (3, 7)).astype(np.int64),
        "ui": RNG.integers(-9, 9, (3, 2)).astype(np.int64),
        "ii": np.array([[0, -1], [2, 6], [1, 6]], np.int32),
        "nd": np.array([[1, 2], [-3, 0], [1, 2]], np.int64),  # a repeated tuple
        "ndu": randn((3, 5), 3),
    }
    nodes = [node("ScatterElements", ["data", "idx", "upd"], "none", axis=1)]
    for red in ("add", "mul", "max", "min"):
        nodes.append(node("ScatterElements", ["data", "idx", "upd"], f"se_{red}", axis=-2, reduction=red))
        nodes.append(node("ScatterND", ["data", "nd", "ndu"], f"nd_{red}", reduction=red))
    nodes.append(node("ScatterElements", ["di", "ii", "ui"], "int64_add", axis=1, reduction="add"))
    inputs = {k: (v.shape, v.dtype) for k, v in feeds.items()}
    model = make_model(nodes, inputs, [n.output[0] for n in nodes], opset=18)
    check_model(model, tmp_path / "b", tol=1e-6, feeds=feeds)


def test_scatternd_none_and_onehot(tmp_path):
    feeds = {
        "data": randn((6, 4, 3), 1),
        "nd": np.array([[5], [-6], [2]], np.int64),
        "ndu": randn((3, 4, 3), 2),
        "oh": np.array([[0, 9, -1, -10], [10, -11, 3, 4], [5, 5, 1, 2]], np.int64),  # wraps and out of range
        "oh32": np.array([7, -3, 10, 0, -11], np.int32),
        "ohf": np.array([1.7, -1.2, 8.0, 12.5], np.float32),  # float indices truncate
        "onoff": np.array([-2.5, 7.0], np.float32),
        "onoff64": np.array([0, -(1 << 40)], np.int64),
        "depth": np.array(10, np.int64),
    }
    nodes = [
        node("ScatterND", ["data", "nd", "ndu"], "nd_none"),
        node("OneHot", ["oh", "depth", "onoff"], "oh_last"),
        node("OneHot", ["oh", "depth", "onoff"], "oh_axis0", axis=0),
        node("OneHot", ["ohf", "depth10i", "onoff64"], "oh_float_idx", axis=-2),
        node("OneHot", ["oh32", "depth10", "onoff"], "oh_int32_idx"),
    ]
    inputs = {k: (v.shape, v.dtype) for k, v in feeds.items()}
    # (onnxruntime implements OneHot for some index / depth / value type combinations only)
    inits = {"depth10": np.array(10.0, np.float32), "depth10i": np.array(10, np.int64)}
    model = make_model(nodes, inputs, [n.output[0] for n in nodes], inits, opset=18)
    declare(model, "oh_last", [3, 4, 10])  # a run-time depth: the shape is declared
    declare(model, "oh_axis0", [10, 3, 4])
    check_model(model, tmp_path / "b", tol=0, feeds=feeds)


def test_trilu_reverse_eye_compress(tmp_path):
    feeds = {
        "m": randn((3, 7, 9), 1),
        "k": np.array(-2, np.int64),
        "mi": RNG.integers(-5, 5, (2, 4, 3)).astype(np.int64),
        "seq": randn((5, 3, 2, 3), 2),  # [time, batch, ...]
        "lens": np.array([5, 0, 3], np.int64),
        "seqb": randn((4, 6, 3), 3),  # [batch, time, ...]
        "lensb": np.array([1, 6, 2, 4], np.int64),
        "cond": np.array([True, False, True, True, False, False, True, False, True]),
        "shape_src": randn((5, 7), 4),
    }
    nodes = [
        node("Trilu", ["m", "k"], "triu_k"),
        node("Trilu", ["m", "kc"], "tril_const", upper=0),
        node("Trilu", ["mi"], "triu_int"),
        node("ReverseSequence", ["seq", "lens"], "rev_time", time_axis=0, batch_axis=1),
        node("ReverseSequence", ["seqb", "lensb"], "rev_batch", time_axis=1, batch_axis=0),
        node("EyeLike", ["shape_src"], "eye", k=-2),
        node("EyeLike", ["shape_src"], "eye_int", k=3, dtype=onnx.TensorProto.INT64),
        node("Compress", ["m", "cond"], "compress_runtime", axis=-1),
        node("Compress", ["m", "cond_const"], "compress_const", axis=1),
        node("Compress", ["m", "cond"], "compress_flat"),
    ]
    inputs = {k: (v.shape, v.dtype) for k, v in feeds.items()}
    inits = {"kc": np.array(3, np.int64), "cond_const": np.array([False, True, True, False, False, True])}
    outputs = [n.output[0] for n in nodes]
    model = make_model(nodes, inputs, [o for o in outputs if not o.startswith("compress_")], inits, opset=14)
    # Compress's output size depends on the condition's values: declare the shapes, as exporters do
    for name, shape in (("compress_runtime", [3, 7, 5]), ("compress_const", [3, 3, 9]), ("compress_flat", [5])):
        declare(model, name, shape)
    manifest = check_model(model, tmp_path / "b", tol=0, feeds=feeds)
    assert steps_of(manifest, "compress_const")[0]["kernel"] == "x_gather", "a constant condition is a gather"
    assert steps_of(manifest, "triu_k")[0]["split"]["units"] == 21


def _range_model(dtype, length):
    ins = [tensor_info(n, [], dtype) for n in ("start", "limit", "delta")]
    graph = helper.make_graph(
        [node("Range", ["start", "limit", "delta"], "y")], "t", ins, [tensor_info("y", [length], dtype)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize(
    ("dtype", "start", "limit", "delta", "length"),
    [
        (np.float32, 1.5, -4.0, -0.75, 8),
        (np.int32, 7, -30, -4, 10),
        (np.int64, -(1 << 40), (1 << 40) + 5, 1 << 38, 9),
    ],
)
def test_range(dtype, start, limit, delta, length, tmp_path):
    feeds = {"start": np.array(start, dtype), "limit": np.array(limit, dtype), "delta": np.array(delta, dtype)}
    check_model(_range_model(dtype, length), tmp_path / "b", tol=1e-7, feeds=feeds)


def _nonzero_model(shape, count, dtype=np.float32):
    graph = helper.make_graph(
        [node("NonZero", ["x"], "y")],
        "t",
        [tensor_info("x", shape, dtype)],
        [tensor_info("y", [len(shape), count], np.int64)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_nonzero(tmp_path):
    x = np.zeros((3, 4, 5), np.float32)
    x[0, 1, 2], x[2, 3, 4], x[1, 0, 0], x[2, 0, 1] = 1.0, -2.0, np.nan, 1e-30
    x[0, 0, 0] = -0.0  # zero
    check_model(_nonzero_model(x.shape, 4), tmp_path / "b", tol=0, feeds={"x": x})
    xb = np.eye(5, 7, 1, dtype=bool)
    check_model(_nonzero_model(xb.shape, 5, np.bool_), tmp_path / "c", tol=0, feeds={"x": xb})


# ----------------------------------------------------------------------------------------------------------
# run-time checks: a value that cannot be honoured stops the run, naming the kernel and the node


def _trap(model, tmp_path, feeds, kernel, node_name):
    package(model, tmp_path / "b")
    session = HostSession(tmp_path / "b")
    with pytest.raises(RuntimeError, match=rf"kernel {kernel} trapped at node '{node_name}'"):
        session.run(feeds)


def test_nonzero_count_differs_from_declared_shape_traps(tmp_path):
    x = np.zeros((3, 4, 5), np.float32)
    x[1, 1, 1] = 3.0
    package(_nonzero_model(x.shape, 1), tmp_path / "b")
    session = HostSession(tmp_path / "b")
    np.testing.assert_array_equal(session.run({"x": x})["y"], [[1], [1], [1]])
    x[2, 2, 2] = 1.0
    with pytest.raises(RuntimeError, match=r"kernel f32_nonzero trapped at node 'y'"):
        session.run({"x": x})


def test_range_length_differs_from_declared_shape_traps(tmp_path):
    feeds = {"start": np.array(0, np.int64), "limit": np.array(10, np.int64), "delta": np.array(3, np.int64)}
    _trap(_range_model(np.int64, 3), tmp_path, feeds, "i64_range", "y")  # 4 values, 3 planned


def test_gather_index_out_of_range_traps(tmp_path):
    model = make_model([node("Gather", ["t", "ids"], "y")], {"ids": ([3], np.int64)}, ["y"], {"t": randn((5, 8))})
    _trap(model, tmp_path, {"ids": np.array([0, 5, 1], np.int64)}, "x_gather", "y")


def test_compress_count_differs_traps(tmp_path):
    model = make_model([node("Compress", ["x", "c"], "y", axis=0)], {"x": (4, 3), "c": ([4], np.bool_)}, [])
    declare(model, "y", [2, 3])
    _trap(model, tmp_path, {"x": randn((4, 3)), "c": np.array([1, 1, 1, 0], bool)}, "x_compress", "y")


def test_constant_gather_index_out_of_range_fails_at_package_time(tmp_path):
    model = make_model(
        [node("Gather", ["x", "i"], "y", axis=1)], {"x": (2, 4)}, ["y"], {"i": np.array([1, -5], np.int64)}
    )
    with pytest.raises(PackageError, match=r"'y' \(Gather\).*index -5.*out of range"):
        package(model, tmp_path / "b")


def test_onehot_runtime_depth_differs_from_declared_shape_traps(tmp_path):
    model = make_model(
        [node("OneHot", ["i", "d", "v"], "y")], {"i": ([3], np.int64), "d": ([], np.int64)}, [],
        {"v": np.array([0, 1], np.float32)},
    )  # fmt: skip
    declare(model, "y", [3, 4])
    package(model, tmp_path / "b")
    session = HostSession(tmp_path / "b")
    i = np.array([3, -4, 9], np.int64)
    np.testing.assert_array_equal(
        session.run({"i": i, "d": np.array(4, np.int64)})["y"], np.eye(4)[[3, 0, 0]] * [[1], [1], [0]]
    )
    with pytest.raises(RuntimeError, match=r"kernel x32_onehot trapped at node 'y'"):
        session.run({"i": i, "d": np.array(5, np.int64)})
