"""Tests for wasm_runtime.zoo: structure, parameter counts, determinism and numerical health.

Models are built and loaded into onnxruntime once per module (fixtures below) to keep the
whole file well under the time budget.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from wasm_runtime import zoo

NAMES = sorted(zoo.BUILDERS)

# torchvision's published parameter counts, i.e. sum(p.numel() for p in model.parameters()):
# BN gamma/beta are parameters, running mean/var are buffers.
TORCHVISION_PARAMS = {
    "mobilenetv2": 3_504_872,
    "resnet18": 11_689_512,
    "squeezenet1.1": 1_235_496,
}

# Op census of an unfused eval-mode torch export of each torchvision model.
#  MobileNetV2: stem conv + 17 inverted residual blocks (block 1 has no expansion conv, so
#  2 convs; the other 16 have 3) + final 1x1 conv = 1 + 2 + 48 + 1 = 52 Conv, each with a BN.
#  ReLU6 follows every conv except the 17 linear projections: 52 - 17 = 35 Clip. A block has
#  a skip iff stride 1 and in == out channels: repeats 2..n of each stage = 0+1+2+3+2+2+0 = 10.
#  ResNet-18: stem + 8 blocks x 2 + 3 downsample = 20 Conv/BN; ReLU: stem + 2 per block = 17.
#  SqueezeNet 1.1: stem + 8 Fire x 3 + final = 26 Conv, each followed by a ReLU.
EXPECTED_OPS = {
    "mobilenetv2": {
        "Conv": 52,
        "BatchNormalization": 52,
        "Clip": 35,
        "Add": 10,
        "GlobalAveragePool": 1,
        "Flatten": 1,
        "Gemm": 1,
    },
    "resnet18": {
        "Conv": 20,
        "BatchNormalization": 20,
        "Relu": 17,
        "Add": 8,
        "MaxPool": 1,
        "GlobalAveragePool": 1,
        "Flatten": 1,
        "Gemm": 1,
    },
    "squeezenet1.1": {
        "Conv": 26,
        "Relu": 26,
        "Concat": 8,
        "MaxPool": 3,
        "Dropout": 1,
        "GlobalAveragePool": 1,
        "Flatten": 1,
    },
}


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _image(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def _attr(node: onnx.NodeProto, name: str):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


@pytest.fixture(scope="module")
def models() -> dict[str, onnx.ModelProto]:
    return {name: zoo.BUILDERS[name]() for name in NAMES}


@pytest.fixture(scope="module")
def logits(models) -> dict[str, np.ndarray]:
    """Logits of each default model for two different N(0, 1) images (one batch-1 run each)."""
    out = {}
    for name, model in models.items():
        sess = _session(model)
        out[name] = np.concatenate([sess.run(["logits"], {"input": _image(1, 224, seed=s)})[0] for s in (1, 2)])
    return out


def test_builders_registry():
    assert zoo.BUILDERS == {
        "mobilenetv2": zoo.mobilenet_v2,
        "resnet18": zoo.resnet18,
        "squeezenet1.1": zoo.squeezenet1_1,
    }


@pytest.mark.parametrize("name", NAMES)
def test_checker_and_interface(models, name):
    model = models[name]
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]

    def shape(vi):
        return [d.dim_value for d in vi.type.tensor_type.shape.dim]

    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert shape(inp) == [1, 3, 224, 224]
    assert out.name == "logits" and shape(out) == [1, 1000]


@pytest.mark.parametrize("name", NAMES)
def test_names_unique_and_meaningful(models, name):
    graph = models[name].graph
    node_names = [n.name for n in graph.node]
    assert all(node_names) and len(set(node_names)) == len(node_names)
    init_names = [i.name for i in graph.initializer]
    assert len(set(init_names)) == len(init_names)
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in graph.initializer)
    # Spot-check torch module paths.
    expected = {
        "mobilenetv2": {
            "features.0.0",
            "features.3.conv.1.0",
            "features.3.add",
            "features.18.2",
            "classifier.1",
        },
        "resnet18": {"conv1", "maxpool", "layer2.0.downsample.0", "layer4.1.relu_1", "fc"},
        "squeezenet1.1": {"features.0", "features.3.expand3x3", "features.12.cat", "classifier.1"},
    }[name]
    assert expected <= set(node_names)


@pytest.mark.parametrize("name", NAMES)
def test_op_counts(models, name):
    assert Counter(n.op_type for n in models[name].graph.node) == EXPECTED_OPS[name]


def test_mobilenet_v2_structure(models):
    graph = models["mobilenetv2"].graph
    inits = {i.name: i for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    depthwise = [n for n in convs if _attr(n, "group") > 1]
    assert len(depthwise) == 17
    for n in depthwise:
        # Depthwise: one 3x3 filter per channel, i.e. weight [C, 1, 3, 3] with group == C.
        c, per_group, kh, kw = inits[n.input[1]].dims
        assert (per_group, kh, kw) == (1, 3, 3) and _attr(n, "group") == c
    # Unfused export: no conv bias, every conv feeds a BN with 4 initializer params.
    consumers = {n.input[0]: n for n in graph.node}
    for n in convs:
        assert len(n.input) == 2
        bn = consumers[n.output[0]]
        assert bn.op_type == "BatchNormalization" and all(i in inits for i in bn.input[1:])
    # ReLU6 as opset-13 Clip with constant min/max inputs.
    for n in graph.node:
        if n.op_type == "Clip":
            lo, hi = (float(numpy_helper.to_array(inits[i])) for i in n.input[1:])
            assert (lo, hi) == (0.0, 6.0)
    assert inits["features.18.0.weight"].dims == [1280, 320, 1, 1]
    (gemm,) = (n for n in graph.node if n.op_type == "Gemm")
    assert _attr(gemm, "transB") == 1 and inits[gemm.input[1]].dims == [1000, 1280]


def test_resnet18_structure(models):
    graph = models["resnet18"].graph
    inits = {i.name: i for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    assert inits["conv1.weight"].dims == [64, 3, 7, 7] and _attr(nodes["conv1"], "strides") == [2, 2]
    assert _attr(nodes["maxpool"], "kernel_shape") == [3, 3] and _attr(nodes["maxpool"], "pads") == [1] * 4
    for stage in (2, 3, 4):
        ds = nodes[f"layer{stage}.0.downsample.0"]
        assert _attr(ds, "kernel_shape") == [1, 1] and _attr(ds, "strides") == [2, 2]
    # Residual Add is followed by ReLU (post-activation BasicBlock).
    relu_inputs = {n.input[0] for n in graph.node if n.op_type == "Relu"}
    assert all(n.output[0] in relu_inputs for n in graph.node if n.op_type == "Add")


def test_squeezenet1_1_structure(models):
    graph = models["squeezenet1.1"].graph
    inits = {i.name: i for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    assert all(_attr(n, "ceil_mode") == 1 for n in graph.node if n.op_type == "MaxPool")
    # All convs carry a bias; there is no BatchNormalization at all.
    assert all(len(n.input) == 3 for n in graph.node if n.op_type == "Conv")
    assert _attr(nodes["features.3.expand3x3"], "pads") == [1] * 4
    assert inits["classifier.1.weight"].dims == [1000, 512, 1, 1]
    # Fire concatenates expand1x1 and expand3x3 along channels.
    cat = nodes["features.12.cat"]
    assert _attr(cat, "axis") == 1
    assert list(cat.input) == ["features.12.expand1x1_activation", "features.12.expand3x3_activation"]


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_torchvision(models, name):
    assert zoo.count_parameters(models[name]) == TORCHVISION_PARAMS[name]


def test_count_parameters_excludes_bn_buffers_and_constants(models):
    model = models["mobilenetv2"]
    total = sum(math.prod(i.dims) for i in model.graph.initializer)
    buffers = sum(
        math.prod(i.dims) for i in model.graph.initializer if i.name.endswith((".running_mean", ".running_var"))
    )
    # The two scalars are the shared Clip bounds.
    assert zoo.count_parameters(model) == total - buffers - 2


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime_logits_are_healthy(logits, name):
    y = logits[name]
    assert y.shape == (2, 1000)
    assert np.isfinite(y).all()
    # Not degenerate: classes are well separated...
    assert (y.std(axis=1) > 0.1).all()
    # ...nothing explodes through the residual/BN paths...
    assert np.abs(y).max() < 1e4
    # ...and the output actually depends on the input, far above float32 rounding noise.
    assert (y[0] - y[1]).std() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_is_byte_identical(models, name):
    assert zoo.BUILDERS[name](seed=0).SerializeToString() == models[name].SerializeToString()


@pytest.mark.parametrize("name", NAMES)
def test_different_seed_changes_every_weight(models, name):
    a, b = models[name], zoo.BUILDERS[name](seed=1)
    # Same architecture...
    assert [(n.name, n.op_type, list(n.input)) for n in a.graph.node] == [
        (n.name, n.op_type, list(n.input)) for n in b.graph.node
    ]
    # ...but every random tensor is redrawn (scalars are the fixed Clip bounds).
    for ia, ib in zip(a.graph.initializer, b.graph.initializer, strict=True):
        assert ia.name == ib.name
        if ia.dims:
            assert not np.array_equal(numpy_helper.to_array(ia), numpy_helper.to_array(ib)), ia.name


@pytest.mark.parametrize("name", NAMES)
def test_batch_and_image_size_variants(name):
    model = zoo.BUILDERS[name](batch=2, image_size=160, num_classes=10)
    onnx.checker.check_model(model, full_check=True)
    (y,) = _session(model).run(None, {"input": _image(2, 160)})
    assert y.shape == (2, 10) and np.isfinite(y).all()
    assert not np.array_equal(y[0], y[1])


@pytest.mark.parametrize("kwargs", [{"batch": 0}, {"image_size": 16}, {"num_classes": 0}])
def test_invalid_arguments_rejected(kwargs):
    with pytest.raises(ValueError):
        zoo.squeezenet1_1(**kwargs)


def test_save_round_trip(models, tmp_path):
    path = tmp_path / "nested" / "squeezenet.onnx"
    zoo.save(models["squeezenet1.1"], path)
    assert onnx.load(path).SerializeToString() == models["squeezenet1.1"].SerializeToString()
