"""Classic ImageNet CNNs built directly as ONNX graphs with seeded random weights.

These models exist to exercise the runtime on realistic topologies (depthwise convs,
residual adds, BatchNormalization, ceil-mode pooling, concatenation) without downloading
anything and without torch. The graphs mirror what ``torch.onnx.export`` produces for the
torchvision models in eval mode *without* Conv/BN fusion, so layer names, op types and
parameter counts line up with torchvision's ``MobileNetV2``, ``ResNet18`` and
``SqueezeNet1_1``.

The weights are random but not arbitrary: they are drawn so that activations stay O(1)
through the whole network (see :class:`_GraphBuilder`). That matters because the models
are used to compare our kernels against onnxruntime at a tight relative tolerance; a
network whose activations vanish, saturate or explode makes such a comparison meaningless.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "BUILDERS",
    "OPSET",
    "IR_VERSION",
    "count_parameters",
    "mobilenet_v2",
    "resnet18",
    "save",
    "squeezenet1_1",
]

OPSET = 13
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

# torch's BatchNorm2d defaults; the exporter writes momentum as 1 - torch_momentum.
_BN_EPS = 1e-5
_BN_MOMENTUM = 0.9


class _GraphBuilder:
    """Accumulates nodes and initializers of one graph and owns its random generator.

    Every tensor is drawn from a single ``numpy.random.default_rng(seed)`` in graph order,
    so a given ``(builder, seed, arguments)`` always yields byte-identical models.

    Initialization scheme (the reason each choice is made):

    * Convolutions: Kaiming/He normal with fan-in, ``std = sqrt(gain / fan_in)`` where
      ``fan_in = in_channels / group * kh * kw``. ``gain = 2`` when the conv reads a
      rectified tensor (ReLU zeroes half of a zero-mean signal, halving its second moment,
      and the 2 restores it). Convs reading a *linear* tensor (the image, MobileNetV2's
      linear bottlenecks) use ``gain = 1``; a 2 there would double the variance every time.
    * BatchNormalization: gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1), running_mean ~ N(0, 0.1),
      running_var ~ U(0.5, 1.5). Each channel gets a different, non-trivial affine map of
      roughly unit gain, so BN is genuinely exercised without rescaling the signal much.
    * Residual branches: the gamma of the BN closing a residual branch is additionally
      multiplied by ``gamma_scale = 1/sqrt(#residual blocks)`` (the Fixup / SkipInit idea).
      With random rather than data-calibrated running statistics BN cannot renormalize, so
      every ``x + f(x)`` adds variance: unscaled, ResNet-18's stream reaches RMS ~65 by
      layer4 and up to ~14% of MobileNetV2's residual-stream values exceed 6.
    * Classifier (Gemm / final conv): LeCun-style ``std = 1 / sqrt(fan_in)``, i.e. smaller
      than He, so logits come out O(1) with a clear spread between classes.
    * Biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default for Conv2d/Linear, so
      bias handling is tested with non-zero values.

    Measured with a standard-normal 224x224 input: every intermediate tensor's RMS stays
    within ~0.4-7, at most ~3% of any ReLU6's inputs exceed 6, and the logits' std is ~0.6-5.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._relu6_bounds: tuple[str, str] | None = None

    # -- bookkeeping -----------------------------------------------------------------

    def _node(self, op_type: str, name: str, inputs: list[str], output: str | None = None, **attrs):
        """Append a node named ``name``; its single output tensor is named after the node."""
        if name in self._names:
            raise ValueError(f"duplicate node name {name!r}")
        self._names.add(name)
        out = output if output is not None else name
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def _init(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def _normal(self, shape, std: float) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def _uniform(self, shape, low: float, high: float) -> np.ndarray:
        return self.rng.uniform(low, high, shape).astype(np.float32)

    # -- layers ----------------------------------------------------------------------

    def conv(
        self,
        name: str,
        x: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        pad: int = 0,
        group: int = 1,
        bias: bool = False,
        gain: float = 2.0,
    ) -> str:
        fan_in = cin // group * kernel * kernel
        inputs = [
            x,
            self._init(f"{name}.weight", self._normal((cout, cin // group, kernel, kernel), math.sqrt(gain / fan_in))),
        ]
        if bias:
            bound = 1.0 / math.sqrt(fan_in)
            inputs.append(self._init(f"{name}.bias", self._uniform((cout,), -bound, bound)))
        return self._node(
            "Conv",
            name,
            inputs,
            dilations=[1, 1],
            group=group,
            kernel_shape=[kernel, kernel],
            pads=[pad, pad, pad, pad],
            strides=[stride, stride],
        )

    def batchnorm(self, name: str, x: str, channels: int, gamma_scale: float = 1.0) -> str:
        # Input order fixed by the ONNX spec: X, scale, B, input_mean, input_var.
        scale = self._uniform((channels,), 0.5, 1.5) * np.float32(gamma_scale)
        inputs = [
            x,
            self._init(f"{name}.weight", scale),
            self._init(f"{name}.bias", self._normal((channels,), 0.1)),
            self._init(f"{name}.running_mean", self._normal((channels,), 0.1)),
            self._init(f"{name}.running_var", self._uniform((channels,), 0.5, 1.5)),
        ]
        return self._node("BatchNormalization", name, inputs, epsilon=_BN_EPS, momentum=_BN_MOMENTUM)

    def relu(self, name: str, x: str) -> str:
        return self._node("Relu", name, [x])

    def relu6(self, name: str, x: str) -> str:
        # Since opset 11 Clip takes min/max as inputs rather than attributes. One shared pair
        # of scalar initializers serves every ReLU6 (the exporter also emits them as constants).
        if self._relu6_bounds is None:
            self._relu6_bounds = (
                self._init("relu6.min", np.array(0.0, np.float32)),
                self._init("relu6.max", np.array(6.0, np.float32)),
            )
        return self._node("Clip", name, [x, *self._relu6_bounds])

    def add(self, name: str, a: str, b: str) -> str:
        return self._node("Add", name, [a, b])

    def maxpool(self, name: str, x: str, kernel: int, stride: int, pad: int = 0, ceil_mode: int = 0) -> str:
        return self._node(
            "MaxPool",
            name,
            [x],
            ceil_mode=ceil_mode,
            kernel_shape=[kernel, kernel],
            pads=[pad, pad, pad, pad],
            strides=[stride, stride],
        )

    def concat(self, name: str, inputs: list[str]) -> str:
        return self._node("Concat", name, inputs, axis=1)

    def dropout(self, name: str, x: str) -> str:
        # Only the data input: ratio defaults to 0.5 (torchvision's value) and, with no
        # training_mode input, Dropout is the identity at inference.
        return self._node("Dropout", name, [x])

    def global_avgpool(self, name: str, x: str) -> str:
        # adaptive_avg_pool2d(x, 1) exports as GlobalAveragePool.
        return self._node("GlobalAveragePool", name, [x])

    def flatten(self, name: str, x: str, output: str | None = None) -> str:
        # torch.flatten(x, 1) exports as Flatten(axis=1).
        return self._node("Flatten", name, [x], output=output, axis=1)

    def gemm(self, name: str, x: str, fin: int, fout: int, output: str) -> str:
        bound = 1.0 / math.sqrt(fin)
        # torch.nn.Linear stores weight as [out, in], hence transB=1.
        w = self._init(f"{name}.weight", self._normal((fout, fin), 1.0 / math.sqrt(fin)))
        b = self._init(f"{name}.bias", self._uniform((fout,), -bound, bound))
        return self._node("Gemm", name, [x, w, b], output=output, alpha=1.0, beta=1.0, transB=1)

    # -- assembly --------------------------------------------------------------------

    def model(self, graph_name: str, batch: int, image_size: int, num_classes: int) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, 3, image_size, image_size])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, num_classes])],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="wasm_runtime.zoo",
            producer_version="1",
        )
        model.ir_version = IR_VERSION
        return model


def _check_args(batch: int, image_size: int, num_classes: int) -> None:
    # Each network has a total stride of 32; below 32 pixels the last stages would get
    # empty (0x0) feature maps.
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding (from the original TF MobileNet code)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# (expand_ratio t, output channels c, repeats n, first stride s), torchvision's table.
_MOBILENET_V2_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(seed: int = 0, batch: int = 1, image_size: int = 224, num_classes: int = 1000) -> onnx.ModelProto:
    """torchvision ``mobilenet_v2()`` (width 1.0): 17 inverted residual blocks, 10 with a skip Add.

    Node names follow the torch module paths, e.g. ``features.3.conv.1.0`` is the depthwise
    Conv of block 3 and ``features.3.conv.3`` the BN closing its linear bottleneck.
    """
    _check_args(batch, image_size, num_classes)
    g = _GraphBuilder(seed)
    # Every repeat after the first has stride 1 and in == out channels, hence a skip Add; the
    # first block of a stage always changes the channel count, so it never has one.
    residual_blocks = sum(n - 1 for _, _, n, _ in _MOBILENET_V2_SETTING)
    residual_scale = 1.0 / math.sqrt(residual_blocks)

    cin = _make_divisible(32)
    x = g.conv("features.0.0", INPUT_NAME, 3, cin, 3, stride=2, pad=1, gain=1.0)
    x = g.batchnorm("features.0.1", x, cin)
    x = g.relu6("features.0.2", x)

    idx = 1
    for t, c, n, s in _MOBILENET_V2_SETTING:
        cout = _make_divisible(c)
        for i in range(n):
            stride = s if i == 0 else 1
            use_res = stride == 1 and cin == cout
            hidden = int(round(cin * t))
            p = f"features.{idx}.conv"
            y, j = x, 0
            if t != 1:
                # Pointwise expansion (Conv2dNormActivation at conv.0).
                y = g.conv(f"{p}.0.0", y, cin, hidden, 1, gain=1.0)
                y = g.batchnorm(f"{p}.0.1", y, hidden)
                y = g.relu6(f"{p}.0.2", y)
                j = 1
            # Depthwise 3x3 (group == channels).
            y = g.conv(f"{p}.{j}.0", y, hidden, hidden, 3, stride=stride, pad=1, group=hidden)
            y = g.batchnorm(f"{p}.{j}.1", y, hidden)
            y = g.relu6(f"{p}.{j}.2", y)
            # Linear bottleneck: no activation after the projection.
            y = g.conv(f"{p}.{j + 1}", y, hidden, cout, 1)
            y = g.batchnorm(f"{p}.{j + 2}", y, cout, gamma_scale=residual_scale if use_res else 1.0)
            x = g.add(f"features.{idx}.add", x, y) if use_res else y
            cin = cout
            idx += 1

    last = _make_divisible(1280)
    x = g.conv(f"features.{idx}.0", x, cin, last, 1, gain=1.0)
    x = g.batchnorm(f"features.{idx}.1", x, last)
    x = g.relu6(f"features.{idx}.2", x)
    # classifier.0 is Dropout(0.2), which vanishes from an eval-mode export.
    x = g.flatten("flatten", g.global_avgpool("avgpool", x))
    g.gemm("classifier.1", x, last, num_classes, output=OUTPUT_NAME)
    return g.model("mobilenet_v2", batch, image_size, num_classes)


def resnet18(seed: int = 0, batch: int = 1, image_size: int = 224, num_classes: int = 1000) -> onnx.ModelProto:
    """torchvision ``resnet18()``: 4 stages of 2 BasicBlocks, 1x1/2 conv + BN downsample."""
    _check_args(batch, image_size, num_classes)
    g = _GraphBuilder(seed)
    residual_scale = 1.0 / math.sqrt(8)  # 8 BasicBlocks, each ends in a residual Add

    x = g.conv("conv1", INPUT_NAME, 3, 64, 7, stride=2, pad=3, gain=1.0)
    x = g.batchnorm("bn1", x, 64)
    x = g.relu("relu", x)
    x = g.maxpool("maxpool", x, 3, 2, pad=1)

    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            stride = 2 if (stage > 1 and b == 0) else 1
            p = f"layer{stage}.{b}"
            y = g.conv(f"{p}.conv1", x, cin, cout, 3, stride=stride, pad=1)
            y = g.batchnorm(f"{p}.bn1", y, cout)
            y = g.relu(f"{p}.relu", y)
            y = g.conv(f"{p}.conv2", y, cout, cout, 3, pad=1)
            y = g.batchnorm(f"{p}.bn2", y, cout, gamma_scale=residual_scale)
            if stride != 1 or cin != cout:
                identity = g.conv(f"{p}.downsample.0", x, cin, cout, 1, stride=stride)
                identity = g.batchnorm(f"{p}.downsample.1", identity, cout)
            else:
                identity = x
            x = g.add(f"{p}.add", y, identity)
            # BasicBlock calls its single ReLU module twice; torch's exporter names the second
            # call "relu_1", and node names must be unique anyway.
            x = g.relu(f"{p}.relu_1", x)
            cin = cout

    x = g.flatten("flatten", g.global_avgpool("avgpool", x))
    g.gemm("fc", x, 512, num_classes, output=OUTPUT_NAME)
    return g.model("resnet18", batch, image_size, num_classes)


def squeezenet1_1(seed: int = 0, batch: int = 1, image_size: int = 224, num_classes: int = 1000) -> onnx.ModelProto:
    """torchvision ``squeezenet1_1()``: biased convs, no BN, Fire modules, ceil-mode max pooling."""
    _check_args(batch, image_size, num_classes)
    g = _GraphBuilder(seed)

    def fire(idx: int, x: str, cin: int, squeeze: int, e1: int, e3: int) -> str:
        p = f"features.{idx}"
        s = g.relu(f"{p}.squeeze_activation", g.conv(f"{p}.squeeze", x, cin, squeeze, 1, bias=True))
        a = g.relu(f"{p}.expand1x1_activation", g.conv(f"{p}.expand1x1", s, squeeze, e1, 1, bias=True))
        b = g.relu(f"{p}.expand3x3_activation", g.conv(f"{p}.expand3x3", s, squeeze, e3, 3, pad=1, bias=True))
        return g.concat(f"{p}.cat", [a, b])

    x = g.conv("features.0", INPUT_NAME, 3, 64, 3, stride=2, bias=True, gain=1.0)
    x = g.relu("features.1", x)
    x = g.maxpool("features.2", x, 3, 2, ceil_mode=1)
    x = fire(3, x, 64, 16, 64, 64)
    x = fire(4, x, 128, 16, 64, 64)
    x = g.maxpool("features.5", x, 3, 2, ceil_mode=1)
    x = fire(6, x, 128, 32, 128, 128)
    x = fire(7, x, 256, 32, 128, 128)
    x = g.maxpool("features.8", x, 3, 2, ceil_mode=1)
    x = fire(9, x, 256, 48, 192, 192)
    x = fire(10, x, 384, 48, 192, 192)
    x = fire(11, x, 384, 64, 256, 256)
    x = fire(12, x, 512, 64, 256, 256)

    # torch's eval-mode export drops Dropout(0.5); it is kept here on purpose so the runtime
    # has to handle (i.e. pass through) a Dropout node as found in older exported models.
    x = g.dropout("classifier.0", x)
    # "Small" final layer: gain 1 instead of He's 2 keeps the logits O(1).
    x = g.conv("classifier.1", x, 512, num_classes, 1, bias=True, gain=1.0)
    x = g.relu("classifier.2", x)
    x = g.global_avgpool("classifier.3", x)
    g.flatten("flatten", x, output=OUTPUT_NAME)
    return g.model("squeezenet1_1", batch, image_size, num_classes)


BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "mobilenetv2": mobilenet_v2,
    "resnet18": resnet18,
    "squeezenet1.1": squeezenet1_1,
}


def count_parameters(model: onnx.ModelProto) -> int:
    """Trainable parameter count, as torchvision's ``sum(p.numel() for p in model.parameters())``.

    BN running statistics are buffers in torch, not parameters, and the scalar Clip bounds
    are exporter constants, so both are excluded; BN gamma/beta count.
    """
    total = 0
    for init in model.graph.initializer:
        if init.name.endswith((".running_mean", ".running_var")) or not init.dims:
            continue
        total += math.prod(init.dims)
    return total


def save(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` as a single .onnx file, creating parent directories."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    onnx.save_model(model, os.fspath(path))
