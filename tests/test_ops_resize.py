"""Resize / Upsample through the whole pipeline against onnxruntime (and the ONNX reference outputs of the
node tests), on shapes the node tests do not cover: sizes that are not multiples of 4, tensors large enough
for the 3-thread split plan to really split, 3-D resizes, other dtypes. Every case runs twice: with
scales / sizes / roi as constants (tables computed at package time) and as run-time inputs (tables
computed by the resize_table kernel), and the run-time table kernel is checked bit for bit against the
package-time tables."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from oputil import KernelModule, check_model, randn, single

from wasm_runtime.host import HostSession
from wasm_runtime.ops.resize import CTMS, MODES, NEAREST, Interp, axis_table, pack_table
from wasm_runtime.package import package

PARAM_DTYPES = {"roi": np.float32, "scales": np.float32, "sizes": np.int64}


def resize_model(shape, attrs, runtime=False, opset=19, **params):
    """Resize of x with roi / scales / sizes given as initializers, or as graph inputs when runtime."""
    names = ["x", "", "", ""]
    inputs, inits, feeds = {"x": shape}, {}, {}
    for i, key in enumerate(("roi", "scales", "sizes")):
        if params.get(key) is None:
            continue
        names[i + 1] = key
        value = np.asarray(params[key], PARAM_DTYPES[key])
        if runtime:
            inputs[key] = (list(value.shape), value.dtype)
            feeds[key] = value
        else:
            inits[key] = value
    while names[-1] == "":
        names.pop()
    model = single("Resize", inputs, attrs, inits, opset=opset, input_names=names)
    if runtime:  # shape inference cannot see run-time scales: declare the shape inferred with constants
        ref = _static_shape(resize_model(shape, attrs, False, opset, **params)[0])
        del model.graph.output[:]
        model.graph.output.append(onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ref))
    feeds["x"] = randn(shape, 7)
    return model, feeds


def _static_shape(model):
    return [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]


def steps(out_dir) -> list[str]:
    import json

    return [s["kernel"] for s in json.loads((out_dir / "manifest.json").read_text())["steps"]]


CASES = {
    # name: (input shape, attrs, params)
    "linear_up_7x9": ([1, 3, 7, 9], {"mode": "linear"}, {"scales": [1, 1, 2, 2.5]}),
    "linear_down_half_pixel": ([2, 3, 13, 10], {"mode": "linear"}, {"scales": [1, 1, 0.6, 0.45]}),
    "linear_big_split": ([1, 8, 33, 47], {"mode": "linear"}, {"scales": [1, 1, 2, 2]}),
    "nearest_big_split": ([1, 5, 30, 41], {"mode": "nearest"}, {"scales": [1, 1, 2, 3]}),
    "nearest_round_prefer_ceil_down": (
        [1, 2, 11, 13],
        {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
        {"scales": [1, 1, 0.63, 0.537]},  # no ties: onnxruntime computes coordinates in float32
    ),
    "nearest_ceil_asymmetric": (
        [1, 2, 5, 7],
        {"mode": "nearest", "nearest_mode": "ceil", "coordinate_transformation_mode": "asymmetric"},
        {"scales": [1, 1, 1.5, 2.5]},
    ),
    "nearest_floor_channels": ([2, 3, 4, 5], {"mode": "nearest", "nearest_mode": "floor"}, {"scales": [1, 2, 1, 1]}),
    "linear_antialias_down": ([1, 2, 17, 23], {"mode": "linear", "antialias": 1}, {"sizes": [1, 2, 5, 7]}),
    "cubic_antialias_down": ([1, 2, 17, 23], {"mode": "cubic", "antialias": 1}, {"scales": [1, 1, 0.3, 0.35]}),
    "linear_antialias_down_and_up": (
        [1, 2, 17, 9],
        {"mode": "linear", "antialias": 1},
        {"scales": [1, 1, 0.37, 2.3]},
    ),
    "cubic_antialias_exclude_outside": (
        [1, 2, 17, 19],
        {"mode": "cubic", "antialias": 1, "exclude_outside": 1},
        {"scales": [1, 1, 0.37, 0.6]},
    ),
    "nearest_tf_crop_and_resize": (
        [1, 2, 7, 9],
        {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 5.0},
        {"sizes": [1, 2, 5, 11], "roi": [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3]},
    ),
    "cubic_up": ([1, 2, 7, 9], {"mode": "cubic"}, {"scales": [1, 1, 1.7, 2.3]}),
    "cubic_exclude_outside": (
        [1, 2, 7, 9],
        {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
        {"scales": [1, 1, 0.6, 1.3]},
    ),
    "tf_crop_and_resize_extrapolate": (
        [1, 2, 7, 9],
        {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -3.0},
        {"sizes": [1, 2, 5, 11], "roi": [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3]},
    ),
    "align_corners_sizes": (
        [1, 2, 7, 9],
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        {"sizes": [1, 2, 13, 17]},
    ),
    "pytorch_half_pixel_cubic_to_1": (
        [1, 2, 7, 9],
        {"mode": "cubic", "coordinate_transformation_mode": "pytorch_half_pixel"},
        {"sizes": [1, 2, 1, 17]},
    ),
    "half_pixel_symmetric": (
        [1, 2, 7, 9],
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
        {"scales": [1, 1, 1.3, 0.7]},
    ),
    "trilinear_5d": ([1, 2, 5, 6, 7], {"mode": "linear"}, {"scales": [1, 1, 1.5, 2, 0.5]}),
    "axes_3_2_not_larger": (
        [1, 3, 6, 10],
        {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"},
        {"sizes": [15, 12]},
    ),
    "axes_not_smaller_cubic": (
        [2, 3, 6, 10],
        {"mode": "cubic", "axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"},
        {"sizes": [5, 4]},
    ),
}


@pytest.mark.parametrize("runtime", [False, True], ids=["const", "runtime"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_resize_vs_onnxruntime(name, runtime, tmp_path):
    shape, attrs, params = CASES[name]
    model, feeds = resize_model(shape, attrs, runtime, **params)
    check_model(model, tmp_path, tol=2e-6, feeds=feeds)
    kernels = steps(tmp_path)
    # tables are computed at run time only where the scales (or an aspect policy, or the roi) are tensors
    needs_runtime = runtime and ("scales" in params or "roi" in params or "keep_aspect_ratio_policy" in attrs)
    assert ("resize_table" in kernels) == needs_runtime, kernels
    assert "f32_resize_axis" in kernels


def test_negative_axes(tmp_path):
    """axes may count from the end (onnxruntime ignores negative axes, so compare with the positive spelling)."""
    outs = []
    for axes in ([3, 2], [-1, -2]):
        model, feeds = resize_model([1, 3, 6, 10], {"mode": "linear", "axes": axes}, sizes=[15, 9])
        package(model, tmp_path / str(axes[0]))
        outs.append(HostSession(tmp_path / str(axes[0])).run(feeds)["y"])
    assert outs[0].shape == (1, 3, 9, 15) and np.array_equal(outs[0], outs[1])


def test_nearest_static_skips_identity_axes(tmp_path):
    model, feeds = resize_model([1, 3, 4, 5], {"mode": "nearest"}, scales=[1, 1, 2, 2])
    check_model(model, tmp_path, feeds=feeds)
    assert steps(tmp_path) == ["f32_resize_axis"] * 2


def test_identity_resize_is_an_alias(tmp_path):
    model, feeds = resize_model([1, 3, 4, 5], {"mode": "cubic"}, scales=[1, 1, 1, 1])
    check_model(model, tmp_path, feeds=feeds)
    assert steps(tmp_path) == []


def test_nearest_int32_and_int64_copy_rows(tmp_path):
    """Nearest moves elements of any size; checked against the ONNX reference (onnxruntime has no int64 Resize)."""
    from onnx.reference import ReferenceEvaluator

    for dtype in (np.int32, np.int64):
        node = onnx.helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest", name="resize")
        graph = onnx.helper.make_graph(
            [node],
            "g",
            [onnx.helper.make_tensor_value_info("x", onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), [2, 3, 5])],
            [onnx.helper.make_tensor_value_info("y", onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), [2, 6, 4])],
            [onnx.numpy_helper.from_array(np.array([1, 2, 0.8], np.float32), "scales")],
        )
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)])
        x = np.arange(30, dtype=dtype).reshape(2, 3, 5) * 1000003
        out = tmp_path / np.dtype(dtype).name
        package(model, out)
        got = HostSession(out).run({"x": x})["y"]
        (ref,) = ReferenceEvaluator(model).run(None, {"x": x})
        assert got.dtype == dtype and np.array_equal(got, ref)
        assert steps(out) == ["x_resize_nearest_axis"] * 2


@pytest.mark.parametrize("runtime", [False, True], ids=["const", "runtime"])
def test_upsample_opset9_and_resize_opset10(runtime, tmp_path):
    for k, (op, opset, mode, scales) in enumerate(
        [
            ("Upsample", 9, "nearest", [1, 1, 2, 3]),
            ("Upsample", 9, "linear", [1, 1, 2.5, 1.5]),
            ("Resize", 10, "nearest", [1, 1, 0.6, 0.45]),  # opset 10 nearest rounds up when downsampling
            ("Resize", 10, "linear", [1, 1, 1.5, 0.7]),
        ]
    ):
        value = np.asarray(scales, np.float32)
        inputs = {"x": [1, 2, 7, 9]}
        if runtime:
            inputs["scales"] = ([4], np.float32)
        model = single(op, inputs, {"mode": mode}, None if runtime else {"scales": value}, opset=opset)
        if runtime:
            out_shape = [int(np.floor(d * s)) for d, s in zip([1, 2, 7, 9], value, strict=True)]
            del model.graph.output[:]
            model.graph.output.append(onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, out_shape))
        feeds = {"x": randn([1, 2, 7, 9], k)} | ({"scales": value} if runtime else {})
        check_model(model, tmp_path / str(k), feeds=feeds)


def test_upsample_opset7_scales_attribute(tmp_path):
    model = single("Upsample", {"x": [1, 2, 3, 5]}, {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 3.0]}, opset=7)
    feeds = {"x": randn([1, 2, 3, 5])}
    package(model, tmp_path)
    got = HostSession(tmp_path).run(feeds)["y"]
    assert np.array_equal(got, feeds["x"].repeat(2, axis=2).repeat(3, axis=3))


def node_cases(*modules):
    """The ONNX node test cases of a few op modules (importing only those is much faster than them all)."""
    import importlib

    from onnx.backend.test.case.node import _NodeTestCases

    from wasm_runtime.conformance import classify

    for m in modules:
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    prefixes = tuple(f"test_{m}" for m in modules)
    return [classify(c) for c in _NodeTestCases if c.name.startswith(prefixes) and "_expanded" not in c.name]


def test_node_tests_with_constant_parameters(tmp_path):
    """The ONNX Resize/Upsample node tests again, with their scales / sizes / roi turned into initializers
    (the package-time tables), against the reference outputs."""
    infos = [i for i in node_cases("resize", "upsample") if not i.scope]
    assert len(infos) >= 40
    for info in infos:
        model = onnx.ModelProto()
        model.CopyFrom(info.case.model)
        (inputs, outputs), *_ = info.case.data_sets
        feeds = {}
        for vi, value in zip(list(model.graph.input), inputs, strict=True):
            if vi.name == "X":
                feeds["X"] = value
            else:
                model.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(value), vi.name))
                model.graph.input.remove(vi)
        out = tmp_path / info.name
        package(model, out)
        assert "resize_table" not in steps(out), info.name
        got = HostSession(out).run(feeds)[model.graph.output[0].name]
        np.testing.assert_allclose(got, outputs[0], rtol=1e-5, atol=1e-6, err_msg=info.name)


# ---------------------------------------------------------------------------------------------------------
# the run-time table kernel against the package-time tables


def _cfg(ip: Interp, rank, pos, in_shape, policy=0):
    return np.array(
        [rank, ip.mode, ip.ctm, ip.nearest, int(ip.exclude_outside), int(ip.antialias),
         int(np.float32(ip.cubic_a).view(np.int32)), policy, sum(p >= 0 for p in pos), *pos, *in_shape],
        np.int32,
    )  # fmt: skip


def _interps():
    for ctm in CTMS:
        yield Interp(MODES["nearest"], CTMS[ctm], NEAREST["round_prefer_floor"], False, False, -0.75)
        yield Interp(MODES["linear"], CTMS[ctm], 0, False, False, -0.75)
        yield Interp(MODES["cubic"], CTMS[ctm], 0, False, False, -0.75)
    for nearest in NEAREST:
        yield Interp(MODES["nearest"], CTMS["half_pixel"], NEAREST[nearest], False, False, -0.75)
    for mode, exclude, antialias in itertools.product(("linear", "cubic"), (False, True), (False, True)):
        yield Interp(MODES[mode], CTMS["half_pixel"], 0, exclude, antialias, -0.5)


@pytest.mark.parametrize("variant", ["simd", "relaxed"])
def test_table_kernel_bit_identical_to_package_time_tables(variant):
    k = KernelModule(["resize_table"], variant)
    sizes_cases = [(1, 1), (2, 7), (7, 2), (5, 5), (13, 4), (4, 13), (9, 1), (1, 6), (30, 7)]
    n = 0
    for ip in _interps():
        for n_in, n_out in sizes_cases:
            for via_sizes in (False, True):
                scale = n_out / n_in if via_sizes else float(np.float32((n_out + 0.37) / n_in))
                if not via_sizes and int(np.floor(scale * n_in)) != n_out:
                    continue
                roi = np.array([0.15, 0.8], np.float32) if ip.ctm == CTMS["tf_crop_and_resize"] else None
                taps = ip.taps(max(n_out - 0.5, 0.5) / n_in, n_in)
                expect = pack_table(
                    *axis_table(ip, n_in, n_out, scale, *(roi if roi is not None else (0.0, 1.0)), taps=taps)
                )
                k.reset()
                cfg = k.put(_cfg(ip, 1, [0], [n_in]))
                scales_p = 0 if via_sizes else k.put(np.array([scale], np.float32))
                sizes_p = k.put(np.array([n_out], np.int64)) if via_sizes else 0
                roi_p = k.put(roi) if roi is not None else 0
                table = k.alloc(expect.nbytes)
                k.call("resize_table", cfg, scales_p, sizes_p, roi_p, 0, n_in, n_out, taps, table)
                got = k.get(table, expect.shape, np.int32)
                assert np.array_equal(got, expect), (ip, n_in, n_out, via_sizes, got, expect)
                n += 1
    assert n > 300


@pytest.mark.parametrize("policy", [1, 2])
def test_table_kernel_aspect_policy(policy):
    """keep_aspect_ratio_policy: one scale for every listed axis, the min (not_larger) or max of sizes / in."""
    k = KernelModule(["resize_table"], "simd")
    ip = Interp(MODES["linear"], CTMS["half_pixel"], 0, False, False, -0.75)
    in_shape, sizes = [1, 3, 6, 10], np.array([15, 12], np.int64)  # axes [3, 2]
    pos = [-1, -1, 1, 0]
    scale = (min if policy == 1 else max)(15 / 10, 12 / 6)
    for d in (2, 3):
        n_out = int(scale * in_shape[d] + 0.5)
        expect = pack_table(*axis_table(ip, in_shape[d], n_out, scale, taps=2))
        k.reset()
        cfg, sz = k.put(_cfg(ip, 4, pos, in_shape, policy)), k.put(sizes)
        table = k.alloc(expect.nbytes)
        k.call("resize_table", cfg, 0, sz, 0, d, in_shape[d], n_out, 2, table)
        assert np.array_equal(k.get(table, expect.shape, np.int32), expect)
