"""Normalizations, pooling and ConvTranspose against onnxruntime on shapes the ONNX node tests do not cover:
sizes off the SIMD width, tensors big enough that the 3-thread plan really splits, broadcast parameters,
negative axes, run-time (graph input) parameters next to constant ones, zero norms, 3-D windows."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from oputil import VARIANTS, KernelModule, check_model, feeds_for, make_model, max_rel, randn, single

from wasm_runtime.errors import PackageError
from wasm_runtime.ops import conv_transpose
from wasm_runtime.package import package


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def kernels(manifest) -> list[str]:
    return [s["kernel"] for s in manifest["steps"]]


def split_steps(manifest) -> list[str]:
    return [s["kernel"] for s in manifest["steps"] if s.get("split")]


def typed_like_input(model):
    """Give output 0 the input's type where onnx's shape inference leaves it untyped (GroupNormalization-21 under
    ir_version 8)."""
    out = model.graph.output[0]
    if not out.type.HasField("tensor_type"):
        out.type.CopyFrom(model.graph.input[0].type)
    return model


# ----------------------------------------------------------------------------------------------------------
# LayerNormalization / RMSNormalization


LAYERNORM = {
    # name: x shape, axis, scale shape, bias shape (None: no bias), scale/bias constant?
    "last_axis_const": ((3, 5, 13), -1, (13,), (13,), True),
    "axis1_runtime": ((3, 5, 13), 1, (5, 13), (5, 13), False),
    "axis1_scale_suffix_runtime": ((3, 5, 13), 1, (13,), (5, 1), False),
    "axis0_const_broadcast": ((2, 3, 7), 0, (3, 1), (7,), True),
    "no_bias_big": ((96, 75), -1, (75,), None, False),
    "scalar_scale": ((4, 6), -2, (), None, False),
}


@pytest.mark.parametrize("name", sorted(LAYERNORM))
def test_layernorm(name, tmp_path):
    xs, axis, ss, bs, const = LAYERNORM[name]
    inputs, inits = {"x": xs}, {}
    (inits if const else inputs)["s"] = ss if not const else randn(ss, 1)
    names = ["x", "s"]
    if bs is not None:
        (inits if const else inputs)["b"] = bs if not const else randn(bs, 2)
        names.append("b")
    model = single("LayerNormalization", inputs, {"axis": axis, "epsilon": 1e-3}, inits, opset=17, input_names=names)
    m = check_model(model, tmp_path / "b")
    assert kernels(m) == ["f32_layernorm"]


def test_layernorm_mean_invstd_outputs(tmp_path):
    model = single(
        "LayerNormalization",
        {"x": (37, 2, 9), "s": (2, 9), "b": (9,)},
        {"axis": -2},
        opset=17,
        outputs=("y", "mean", "invstd"),
    )
    m = check_model(model, tmp_path / "b")
    assert "f32_layernorm" in split_steps(m)


def test_layernorm_unbroadcastable_scale_fails(tmp_path):
    model = single("LayerNormalization", {"x": (3, 4), "s": (3,)}, {"axis": -1}, opset=17)
    with pytest.raises(Exception, match="broadcast|Incompatible|shape"):
        package(model, tmp_path / "b")


@pytest.mark.parametrize(("xs", "axis", "ss"), [((5, 3, 11), -1, (11,)), ((67, 40), 1, (40,)), ((2, 3, 5), 1, (5,))])
def test_rmsnorm(xs, axis, ss, tmp_path):
    model = single("RMSNormalization", {"x": xs, "s": ss}, {"axis": axis, "epsilon": 1e-4}, opset=23)
    check_model(model, tmp_path / "b")


# ----------------------------------------------------------------------------------------------------------
# Group / Instance / Batch normalization


@pytest.mark.parametrize(
    ("xs", "groups", "const"), [((2, 6, 5, 3), 3, True), ((1, 32, 11, 9), 8, False), ((3, 4, 7), 4, False)]
)
def test_group_norm(xs, groups, const, tmp_path):
    """Opset 21 (scale/bias per channel; onnx's checker rejects opset 18's deprecated per-group form)."""
    n = xs[1]
    params = {"s": randn((n,), 1), "b": randn((n,), 2)}
    model = single(
        "GroupNormalization",
        {"x": xs, **({} if const else {k: (n,) for k in params})},
        {"num_groups": groups, "epsilon": 1e-3},
        params if const else None,
        opset=21,
        input_names=["x", "s", "b"],
    )
    m = check_model(typed_like_input(model), tmp_path / "b")
    if xs[0] * groups > 3:
        assert "f32_groupnorm" in split_steps(m)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("per_group", [0, 1])
def test_groupnorm_kernel(variant, per_group):
    """The kernel directly, with opset 18's per-group scale/bias too (per_group = 1)."""
    N, G, cpg, inner = 2, 3, 4, 7
    x = randn((N, G * cpg, inner), 3)
    n = G if per_group else G * cpg
    scale, bias = randn((n,), 4), randn((n,), 5)
    k = KernelModule(["f32_groupnorm"], variant)
    y = k.alloc(x.nbytes)
    k.call("f32_groupnorm", G, N, cpg, inner, G * cpg * inner, k.put(x), k.put(scale), k.put(bias), y, 1e-5, per_group)
    xg = f64(x).reshape(N, G, -1)
    ref = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)).reshape(N, G * cpg, inner)
    s, b = (np.repeat(v, cpg) if per_group else v for v in (scale, bias))
    ref = ref * f64(s)[:, None] + f64(b)[:, None]
    assert max_rel(k.get(y, x.shape), ref) < 1e-5


@pytest.mark.parametrize(("xs", "const"), [((2, 5, 7, 3), True), ((1, 16, 9, 10), False), ((3, 2, 13), False)])
def test_instance_norm(xs, const, tmp_path):
    c = xs[1]
    params = {"s": randn((c,), 1), "b": randn((c,), 2)}
    model = single(
        "InstanceNormalization",
        {"x": xs, **({} if const else {k: (c,) for k in params})},
        {"epsilon": 1e-4},
        params if const else None,
        input_names=["x", "s", "b"],
    )
    check_model(model, tmp_path / "b")


def test_batchnorm_runtime_params(tmp_path):
    shapes = {"x": (2, 7, 5, 3), "s": (7,), "b": (7,), "m": (7,), "v": (7,)}
    model = single("BatchNormalization", shapes, {"epsilon": 1e-3}, opset=15)
    m = check_model(model, tmp_path / "b", positive=("v",))
    assert kernels(m) == ["f32_batchnorm"]


def test_batchnorm_mixed_const_runtime_params(tmp_path):
    model = single(
        "BatchNormalization",
        {"x": (1, 9, 6, 5), "m": (9,)},
        {},
        {"s": randn((9,), 1), "b": randn((9,), 2), "v": np.abs(randn((9,), 3)) + 0.5},
        opset=15,
        input_names=["x", "s", "b", "m", "v"],
    )
    check_model(model, tmp_path / "b")


def test_batchnorm_training_mode(tmp_path):
    shapes = {"x": (3, 5, 4, 7), "s": (5,), "b": (5,), "m": (5,), "v": (5,)}
    model = single(
        "BatchNormalization", shapes, {"training_mode": 1, "momentum": 0.8}, opset=15, outputs=("y", "rm", "rv")
    )
    check_model(model, tmp_path / "b", positive=("v",))


# ----------------------------------------------------------------------------------------------------------
# LpNormalization / MeanVarianceNormalization


@pytest.mark.parametrize(("xs", "axis"), [((3, 5, 7), 1), ((3, 5, 7), -1), ((37, 19), 0), ((4, 3, 6, 5), -3)])
@pytest.mark.parametrize("p", [1, 2])
def test_lp_norm(xs, axis, p, tmp_path):
    model = single("LpNormalization", {"x": xs}, {"axis": axis, "p": p})
    feeds = feeds_for(model)
    # a zero slice along the axis: its norm is 0 and the output 0 there
    index = [0] * len(xs)
    index[axis] = slice(None)
    feeds["x"][tuple(index)] = 0.0
    check_model(model, tmp_path / "b", feeds=feeds)


@pytest.mark.parametrize("axes", [[0, 2, 3], [1], [0, 2], [2, 3], [-1], [0, 1, 2, 3]])
def test_mvn(axes, tmp_path):
    model = single("MeanVarianceNormalization", {"x": (2, 3, 5, 7)}, {"axes": axes})
    check_model(model, tmp_path / "b", tol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# pooling


POOLS = {
    "max3d_pads_strides": (
        "MaxPool",
        (1, 3, 7, 6, 9),
        dict(kernel_shape=[3, 2, 3], strides=[2, 1, 2], pads=[1, 0, 1, 1, 1, 0]),
    ),
    "max3d_dilations_ceil": (
        "MaxPool",
        (2, 2, 8, 7, 9),
        dict(kernel_shape=[2, 2, 2], dilations=[2, 1, 2], strides=[2, 2, 2], ceil_mode=1),
    ),
    "max3d_same_lower": (
        "MaxPool",
        (1, 2, 5, 6, 7),
        dict(kernel_shape=[2, 3, 2], strides=[2, 2, 1], auto_pad="SAME_LOWER"),
    ),
    "avg3d_cip0": (
        "AveragePool",
        (1, 3, 6, 7, 5),
        dict(kernel_shape=[3, 3, 2], pads=[1, 1, 0, 1, 1, 1], count_include_pad=0),
    ),
    "avg3d_cip1": (
        "AveragePool",
        (1, 3, 6, 7, 5),
        dict(kernel_shape=[3, 3, 2], pads=[1, 1, 0, 1, 1, 1], count_include_pad=1),
    ),
    "avg3d_ceil": ("AveragePool", (1, 2, 7, 7, 7), dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], ceil_mode=1)),
    "avg2d_dilated_cip0": (
        "AveragePool",
        (2, 3, 11, 9),
        dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[2, 1, 1, 1], opset=19),
    ),
    "avg2d_dilated_cip1": (
        "AveragePool",
        (2, 3, 11, 9),
        dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[2, 1, 1, 1], count_include_pad=1, opset=19),
    ),
    "avg1d_dilated": ("AveragePool", (2, 3, 17), dict(kernel_shape=[3], dilations=[3], strides=[2], opset=19)),
    "lp2_2d": ("LpPool", (2, 3, 9, 10), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], opset=18)),
    "lp1_1d": ("LpPool", (1, 4, 13), dict(kernel_shape=[4], p=1, strides=[3], opset=18)),
    "lp3_3d": ("LpPool", (1, 2, 5, 6, 5), dict(kernel_shape=[2, 3, 2], p=3, opset=18)),
    "lp3_same_upper": ("LpPool", (1, 2, 9, 8), dict(kernel_shape=[2, 3], p=3, auto_pad="SAME_UPPER", opset=18)),
    "lp3_dilated_pads": (
        "LpPool",
        (1, 2, 9, 8),
        dict(kernel_shape=[2, 3], p=3, dilations=[2, 1], pads=[1, 1, 0, 1], opset=18),
    ),
    "lp2_big": ("LpPool", (1, 24, 16, 16), dict(kernel_shape=[2, 2], strides=[2, 2], opset=18)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool(name, tmp_path):
    op, xs, attrs = POOLS[name]
    attrs = dict(attrs)
    opset = attrs.pop("opset", 13)
    m = check_model(single(op, {"x": xs}, attrs, opset=opset), tmp_path / "b")
    assert kernels(m) == ["f32_poolnd"]


def test_pool_2d_fast_paths_kept(tmp_path):
    """2-D max and non-dilated average pools stay on the tuned kernels."""
    for op, kernel in (("MaxPool", "f32_maxpool2d"), ("AveragePool", "f32_avgpool2d")):
        model = single(op, {"x": (1, 3, 9, 9)}, {"kernel_shape": [3, 3], "strides": [2, 2]})
        assert kernels(check_model(model, tmp_path / op)) == [kernel]


@pytest.mark.parametrize(
    ("xs", "attrs"),
    [
        ((2, 3, 7, 6), dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1])),
        ((2, 3, 7, 6), dict(kernel_shape=[3, 2], strides=[2, 2], storage_order=1)),
        ((3, 2, 11), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
        ((1, 2, 4, 5, 6), dict(kernel_shape=[2, 2, 3], strides=[2, 2, 2], dilations=[1, 2, 1])),
        ((1, 2, 4, 5, 6), dict(kernel_shape=[2, 2, 3], storage_order=1)),
        ((1, 40, 12, 12), dict(kernel_shape=[2, 2], strides=[2, 2])),
    ],
)
def test_maxpool_indices(xs, attrs, tmp_path):
    model = single("MaxPool", {"x": xs}, attrs, opset=12, outputs=("y", "i"))
    m = check_model(model, tmp_path / "b")
    assert kernels(m) == ["f32_poolnd"]


def test_maxpool_unpool_roundtrip(tmp_path):
    model = make_model(
        [
            helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        {"x": (2, 3, 6, 10)},
        ["y", "i"],
        opset=12,
    )
    check_model(model, tmp_path / "b")


def test_maxunpool_3d(tmp_path):
    model = make_model(
        [
            helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 3, 2], strides=[2, 3, 2]),
            helper.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 3, 2], strides=[2, 3, 2]),
        ],
        {"x": (1, 2, 4, 6, 4)},
        ["y"],
        opset=12,
    )
    check_model(model, tmp_path / "b")


def test_maxunpool_output_shape_follows_reference(tmp_path):
    """A larger output_shape: the unpooled tensor sits in the output's leading corner (the ONNX reference and its
    node test; onnxruntime instead reads the indices in the output's own layout)."""
    model = single(
        "MaxUnpool",
        {"x": (1, 2, 2, 3), "i": ((1, 2, 2, 3), np.int64)},
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        {"s": np.array([1, 2, 5, 7], np.int64)},
        opset=11,
    )
    feeds = {"x": randn((1, 2, 2, 3)), "i": np.array([0, 3, 5, 12, 15, 23, 24, 27, 29, 36, 39, 47]).reshape(1, 2, 2, 3)}

    def expect(f):
        inner = np.zeros(2 * 4 * 6, np.float32)
        inner[f["i"].ravel()] = f["x"].ravel()
        y = np.zeros((1, 2, 5, 7), np.float32)
        y[:, :, :4, :6] = inner.reshape(1, 2, 4, 6)
        return y

    out = model.graph.output[0]
    out.type.CopyFrom(helper.make_tensor_type_proto(1, [1, 2, 5, 7]))
    check_model(model, tmp_path / "b", feeds=feeds, expect={"y": expect}, ort=False)


@pytest.mark.parametrize("xs", [(2, 3, 7, 5), (1, 5, 13), (1, 2, 3, 4, 5), (1, 64, 3, 3)])
def test_global_pools(xs, tmp_path):
    for op, attrs in (
        ("GlobalMaxPool", {}),
        ("GlobalLpPool", {}),
        ("GlobalLpPool", {"p": 1}),
        ("GlobalLpPool", {"p": 3}),
    ):
        check_model(single(op, {"x": xs}, attrs), tmp_path / f"{op}{attrs}")


# ----------------------------------------------------------------------------------------------------------
# ConvTranspose


CONVT = {
    # x shape, w shape, attrs, weights constant?, bias?
    "s2_pads_outpad": (
        (1, 3, 5, 6),
        (3, 4, 3, 3),
        dict(strides=[2, 2], pads=[1, 0, 1, 1], output_padding=[1, 0]),
        True,
        True,
    ),
    "s2_runtime_w": ((2, 3, 5, 6), (3, 4, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1]), False, True),
    "group3_dil": ((1, 6, 4, 5), (6, 2, 2, 3), dict(group=3, dilations=[2, 1], strides=[1, 2]), True, True),
    "group2_runtime": ((2, 4, 4, 3), (4, 3, 3, 2), dict(group=2, strides=[3, 2]), False, False),
    "depthwise": ((1, 8, 6, 6), (8, 1, 4, 4), dict(group=8, strides=[2, 2], pads=[1, 1, 1, 1]), True, True),
    "1d": ((2, 3, 9), (3, 5, 4), dict(strides=[3], pads=[1, 2]), True, True),
    "3d": ((1, 2, 3, 4, 3), (2, 3, 2, 3, 2), dict(strides=[2, 1, 2], pads=[0, 1, 0, 1, 0, 1]), True, True),
    "3d_runtime": ((1, 2, 3, 3, 2), (2, 2, 3, 2, 2), dict(dilations=[1, 2, 1]), False, True),
    "output_shape": ((1, 2, 3, 4), (2, 3, 3, 3), dict(strides=[2, 2], output_shape=[6, 8]), True, True),
    "same_upper": ((1, 2, 5, 4), (2, 3, 3, 2), dict(strides=[2, 2], auto_pad="SAME_UPPER"), True, False),
    "same_lower": ((1, 2, 5, 4), (2, 3, 3, 2), dict(strides=[2, 2], auto_pad="SAME_LOWER"), True, False),
    "big_split": ((1, 16, 12, 12), (16, 12, 4, 4), dict(strides=[2, 2], pads=[1, 1, 1, 1]), True, True),
    "pointwise": ((1, 5, 6, 7), (5, 9, 1, 1), {}, True, True),
}


@pytest.mark.parametrize("name", sorted(CONVT))
def test_conv_transpose(name, tmp_path):
    xs, ws, attrs, const, bias = CONVT[name]
    m_out = ws[1] * attrs.get("group", 1)
    inputs, inits, names = {"x": xs}, {}, ["x", "w"]
    if const:
        inits["w"] = randn(ws, 1)
    else:
        inputs["w"] = ws
    if bias:
        inits["b"] = randn((m_out,), 2)
        names.append("b")
    model = single("ConvTranspose", inputs, attrs, inits, input_names=names)
    m = check_model(model, tmp_path / "b", tol=2e-5)
    if name == "big_split":
        assert "f32_convtranspose" in split_steps(m)


def test_conv_transpose_row_blocks(tmp_path, monkeypatch):
    """A small block budget: the GEMM + col2im run on several blocks of input rows per image."""
    monkeypatch.setattr(conv_transpose, "BLOCK_FLOATS", 200)
    model = single(
        "ConvTranspose",
        {"x": (2, 3, 7, 5)},
        {"strides": [2, 1], "pads": [1, 0, 0, 1]},
        {"w": randn((3, 2, 3, 2), 1), "b": randn((2,), 2)},
    )
    m = check_model(model, tmp_path / "b")
    (step,) = m["steps"]
    assert step["kernel"] == "f32_convtranspose"


def test_conv_transpose_4d_fails_clearly(tmp_path):
    model = single("ConvTranspose", {"x": (1, 1, 2, 2, 2, 2)}, {}, {"w": randn((1, 1, 1, 1, 1, 1))})
    with pytest.raises(PackageError, match="4-D transposed convolution"):
        package(model, tmp_path / "b")


# ----------------------------------------------------------------------------------------------------------
# 3-D Conv


@pytest.mark.parametrize(
    ("xs", "ws", "attrs"),
    [
        ((1, 3, 5, 6, 7), (4, 3, 3, 3, 3), dict(pads=[1, 1, 1, 1, 1, 1])),
        (
            (2, 4, 6, 5, 7),
            (6, 2, 2, 3, 2),
            dict(group=2, strides=[2, 1, 2], dilations=[1, 2, 1], pads=[0, 1, 1, 1, 0, 0]),
        ),
        ((1, 2, 7, 5, 6), (3, 2, 3, 2, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2, 1])),
    ],
)
def test_conv3d(xs, ws, attrs, tmp_path, monkeypatch):
    from wasm_runtime.ops import conv

    monkeypatch.setattr(conv, "CONV3D_BLOCK_FLOATS", 300)  # several blocks of output slices
    model = single("Conv", {"x": xs}, attrs, {"w": randn(ws, 1), "b": randn((ws[0],), 2)})
    m = check_model(model, tmp_path / "b", tol=2e-5)
    assert kernels(m) == ["f32_conv3d"]


def test_conv3d_fused_residual_relu(tmp_path):
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 6),
            helper.make_node("Add", ["c", "r"], ["s"]),
            helper.make_node("Relu", ["s"], ["y"]),
        ],
        {"x": (1, 2, 4, 5, 6), "r": (1, 3, 4, 5, 6)},
        ["y"],
        {"w": randn((3, 2, 3, 3, 3), 1), "b": randn((3,), 2)},
    )
    m = check_model(model, tmp_path / "b")
    (step,) = m["steps"]
    assert step["kernel"] == "f32_conv3d" and step["args"][10] == 1 and step["args"][13] != 0, "fused epilogue"
