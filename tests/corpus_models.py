"""The onnx.helper half of the real-model regression corpus (tests/test_corpus.py): what PyTorch cannot emit,
written the way paddle2onnx, tf2onnx and spox write it in models shipped on PyPI. Each builder returns a
seeded ModelProto (a few KB: built at test time, never committed); its docstring names the real model it
copies and the class of issue #15 it reproduces:

(a) dims declared as -1 or "?"; (b) declared output / value_info shapes that are wrong; (c) shape subgraphs
that fold only after shape inference ran once; (d) If with untyped branch outputs, rank-changing branches,
run-time conditions; (e) recurrent nets with state in and out.

The PyTorch half is in tests/data/corpus/ (scripts/corpus/export.py)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64_MAX = np.iinfo(np.int64).max


class Builder:
    """Nodes and weights in the order an exporter writes them, with seeded random weights."""

    def __init__(self, seed: int, constants_as_nodes: bool = False):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.constants_as_nodes = constants_as_nodes  # paddle2onnx 0.x writes every weight as a Constant node
        self.count: dict[str, int] = {}

    def const(self, name: str, array) -> str:
        array = np.asarray(array)
        if self.constants_as_nodes:
            self.nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name)))
        else:
            self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name: str, shape, scale: float | None = None) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        scale = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
        return self.const(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op: str, inputs, name: str | None = None, outputs=None, n_out: int = 1, **attrs):
        k = self.count[op] = self.count.get(op, -1) + 1
        name = name or f"{op}_{k}"
        outputs = outputs or ([f"{name}:0"] if n_out == 1 else [f"{name}:{i}" for i in range(n_out)])
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def graph(self, name, inputs, outputs, value_info=()) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, self.inits, value_info=list(value_info))


def _model(graph: onnx.GraphProto, opset: int, producer: str) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
    model.ir_version = 8
    return model


def _value(name: str, elem: int, dims) -> onnx.ValueInfoProto:
    """A value_info exactly as declared: ints (including -1, which paddle2onnx writes as a dim_value) and
    strings (dim_param) kept verbatim."""
    v = onnx.ValueInfoProto()
    v.name = name
    v.type.tensor_type.elem_type = elem
    shape = v.type.tensor_type.shape
    shape.SetInParent()  # a scalar has a shape with no dims, not a missing shape
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d
    return v


def _untyped(name: str) -> onnx.ValueInfoProto:
    """A branch output with no type at all, as torch writes the outputs of an If nested in an If branch."""
    v = onnx.ValueInfoProto()
    v.name = name
    return v


F32, I64, I32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32


# ---------------------------------------------------------------------------------------------------------


def paddle_cls_minus1() -> onnx.ModelProto:
    """(a, b) paddle2onnx's text-direction classifier (ch_ppocr_mobile_v2.0_cls_infer): input declared
    [-1, 3, "?", "?"] (a dim_value of -1 for the batch, the same dim_param "?" for H and W), every weight a
    Constant node, BatchNormalization and hard-swish as Add/Clip/Mul/Div, a flatten whose target is
    computed from Shape -> Cast -> Slice -> Concat, and an Identity onto the output declared [-1, 2] (which
    strict shape inference rejects once the batch is fixed: inferred 1 vs declared -1)."""
    b = Builder(11, constants_as_nodes=True)

    def bn(x, c, prefix):
        scale = b.const(f"{prefix}_bn_scale", (1 + 0.1 * b.rng.standard_normal(c)).astype(np.float32))
        offset = b.const(f"{prefix}_bn_offset", (0.1 * b.rng.standard_normal(c)).astype(np.float32))
        mean = b.const(f"{prefix}_bn_mean", (0.1 * b.rng.standard_normal(c)).astype(np.float32))
        var = b.const(f"{prefix}_bn_variance", b.rng.uniform(0.5, 1.5, c).astype(np.float32))
        k = b.count.get("BatchNormalization", -1) + 1
        return b.node("BatchNormalization", [x, scale, offset, mean, var], name=f"BatchNormalization@{k}", epsilon=1e-5)

    def hardswish(x, k):
        three, zero, six = (b.const(f"Constant@{3 * k + i}", np.array(v, np.float32)) for i, v in enumerate((3, 0, 6)))
        a = b.node("Add", [x, three], name=f"Add@{k}")
        c = b.node("Clip", [a, zero, six], name=f"Clip@{k}")
        m = b.node("Mul", [x, c], name=f"Mul@{k}")
        return b.node("Div", [m, six], name=f"Div@{k}", outputs=[f"hardswish_{k}.tmp_0"])

    w1 = b.weight("conv1_weights", (8, 3, 3, 3))
    x = b.node("Conv", ["x", w1], name="Conv@0", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = hardswish(bn(x, 8, "conv1"), 0)
    w2 = b.weight("conv2_depthwise_weights", (8, 1, 3, 3))
    x = b.node("Conv", [x, w2], name="Conv@1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], group=8)
    x = b.node("Relu", [bn(x, 8, "conv2_depthwise")], name="Relu@0")
    w3 = b.weight("conv2_linear_weights", (16, 8, 1, 1))
    x = b.node("Conv", [x, w3], name="Conv@2", kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0])
    x = hardswish(bn(x, 16, "conv2_linear"), 1)
    x = b.node("Identity", [x], name="Identity@1")
    x = b.node("MaxPool", [x], name="MaxPool@0", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    x = b.node("GlobalAveragePool", [x], name="GlobalAveragePool@0", outputs=["pool2d_1.tmp_0"])
    shape = b.node("Shape", [x], name="Shape@0")
    shape32 = b.node("Cast", [shape], name="Cast@0", to=I32)
    starts, ends, axes = (b.const(f"Constant@{10 + i}", np.array([v], np.int64)) for i, v in enumerate((0, 1, 0)))
    batch = b.node("Slice", [shape32, starts, ends, axes], name="Slice@0")
    batch64 = b.node("Cast", [batch], name="Cast@1", to=I64)
    fill = b.node("Cast", [b.const("fill_constant_1.tmp_0", np.array([16], np.int32))], name="Cast@2", to=I64)
    target = b.node("Concat", [batch64, fill], name="Concat@0", axis=-1)
    x = b.node("Reshape", [x, target], name="Reshape@0")
    x = b.node("MatMul", [x, b.weight("fc_0.w_0", (16, 2), 1.0)], name="MatMul@0")
    x = b.node("Add", [x, b.weight("fc_0.b_0", (2,), 0.1)], name="Add@9")
    x = b.node("Softmax", [x], name="Softmax@0", axis=1)
    b.node("Identity", [x], name="Identity@0", outputs=["save_infer_model/scale_0.tmp_1"])
    graph = b.graph(
        "paddle_cls", [_value("x", F32, [-1, 3, "?", "?"])], [_value("save_infer_model/scale_0.tmp_1", F32, [-1, 2])]
    )
    return _model(graph, 11, "PaddlePaddle")


def declared_shapes_wrong() -> onnx.ModelProto:
    """(b) ddddocr's recognizer (common.onnx, pytorch 1.9): the graph output is declared [1, "seqlen"] (rank 2)
    but the Transpose -> Reshape -> MatMul -> Softmax tail produces [T, 1, classes] (rank 3), and a value_info
    declares a -1 dim. onnxruntime runs it and returns the real rank-3 shape; strict shape inference refuses
    it ("differ in rank: (3) vs (2)")."""
    b = Builder(12)
    w1, w2 = b.weight("conv1.weight", (8, 1, 3, 3)), b.weight("conv2.weight", (8, 8, 3, 3))
    x = b.node(
        "Conv",
        ["input1", w1, b.weight("conv1.bias", (8,), 0.1)],
        name="Conv_0",
        outputs=["201"],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
    )
    x = b.node("Relu", [x], name="Relu_1", outputs=["202"])
    x = b.node("Conv", [x, w2], name="Conv_2", outputs=["203"], kernel_shape=[3, 3], strides=[4, 1], pads=[1, 1, 1, 1])
    x = b.node("Transpose", [x], name="Transpose_3", outputs=["204"], perm=[3, 0, 1, 2])  # [T, 1, 8, 4]
    x = b.node("Reshape", [x, b.const("205", np.array([0, 0, -1], np.int64))], name="Reshape_4", outputs=["206"])
    x = b.node("MatMul", [x, b.weight("207", (32, 10))], name="MatMul_5", outputs=["208"])
    x = b.node("Add", [x, b.weight("209", (10,), 0.1)], name="Add_6", outputs=["210"])
    b.node("Softmax", [x], name="Softmax_7", outputs=["387"], axis=-1)
    # -1 where the width goes. (A stale *static* value_info is not copied here: onnxruntime itself trusts it
    # to rewrite the Reshape and then fails, so no working model ships one.)
    value_info = [_value("202", F32, [1, 8, 16, -1])]
    graph = b.graph(
        "torch-jit-export",
        [_value("input1", F32, [1, 1, 32, "image_width"])],
        [_value("387", F32, [1, "seqlen"])],
        value_info,
    )
    return _model(graph, 12, "pytorch")


def shape_chain_rounds() -> onnx.ModelProto:
    """(c) Shape arithmetic that only starts folding after shape inference: every constant is an initializer
    (as onnx-simplifier leaves ultralytics' and paddle2onnx's exports: nudenet 320n, PP-OCRv6 rec), so the
    first round of constant folding removes nothing. Round 2: Shape(conv output) -> Gather -> Mul -> Concat
    gives a flatten's Reshape target. Round 3, once inference has the flatten's shape: its Shape -> Gather ->
    Cast -> Range gives position values, whose own Shape gives the target of another Reshape."""
    b = Builder(13)
    y = b.node(
        "Conv",
        ["x", b.weight("conv.weight", (8, 4, 3, 3)), b.weight("conv.bias", (8,), 0.1)],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    s = b.node("Shape", [y])
    n, h, w = (b.node("Gather", [s, b.const(f"idx{i}", np.array(i, np.int64))], axis=0) for i in (0, 2, 3))
    hw = b.node("Mul", [h, w])
    axis0 = b.const("axis0", np.array([0], np.int64))
    target = b.node(
        "Concat",
        [b.node("Unsqueeze", [n, axis0]), b.const("c8", np.array([8], np.int64)), b.node("Unsqueeze", [hw, axis0])],
        axis=0,
    )
    flat = b.node("Reshape", [y, target])  # [n, 8, h*w]
    pos = b.node(
        "Range",
        [
            b.const("zero", np.array(0.0, np.float32)),
            b.node(
                "Cast",
                [b.node("Gather", [b.node("Shape", [flat]), b.const("idx_last", np.array(2, np.int64))])],
                to=F32,
            ),
            b.const("one", np.array(1.0, np.float32)),
        ],
    )
    pos = b.node("Mul", [pos, b.const("pos_scale", np.array(0.01, np.float32))])
    pos_target = b.node("Concat", [b.const("ones", np.array([1, 1], np.int64)), b.node("Shape", [pos])], axis=0)
    pos = b.node("Reshape", [pos, pos_target])  # [1, 1, h*w]
    b.node("Softmax", [b.node("Add", [flat, pos])], outputs=["y"], axis=-1)
    graph = b.graph("shape_chain", [_value("x", F32, ["batch", 4, "h", "w"])], [_value("y", F32, ["batch", 8, "hw"])])
    return _model(graph, 13, "onnx-simplifier")


def if_untyped_nested() -> onnx.ModelProto:
    """(d) silero-vad 16k_op15's decoder as torch writes an LSTMCell step: an If on a condition that folds
    (from Shape(state)) whose then-branch holds another If, `Equal(Shape(last)[-1], 1)` -> Squeeze (rank 2)
    or Identity (rank 3); the branch outputs carry no type at all (`If_4_output_0` "is of type None")."""
    b = Builder(14)
    c = b.node(
        "Conv",
        ["x", b.weight("conv.weight", (8, 8, 3)), b.weight("conv.bias", (8,), 0.1)],
        kernel_shape=[3],
        pads=[1, 1],
    )
    last = b.node(
        "Slice",
        [
            c,
            b.const("s_start", np.array([-1], np.int64)),
            b.const("s_end", np.array([INT64_MAX], np.int64)),
            b.const("s_axis", np.array([2], np.int64)),
        ],
        name="last",
    )  # [batch, 8, 1]
    first = b.node("Gather", [b.node("Shape", ["state"]), b.const("zero_idx", np.array([0], np.int64))], axis=0)
    outer_cond = b.node("Cast", [b.node("Squeeze", [first, b.const("sq0", np.array([0], np.int64))])], to=9)
    wx, wh = b.weight("cell.wx", (8, 16)), b.weight("cell.wh", (16, 16))
    b.const("minus1", np.array([-1], np.int64))
    b.const("one_i", np.array([1], np.int64))
    b.const("idx0", np.array(0, np.int64))
    b.const("idx1", np.array(1, np.int64))

    # inner If: squeeze the last axis only if it is 1 (it always is, after the Slice)
    inner_then = helper.make_graph(
        [helper.make_node("Squeeze", [last, "minus1"], ["sq_out"], name="inner/Squeeze")],
        "inner_then",
        [],
        [_untyped("sq_out")],
    )
    inner_else = helper.make_graph(
        [helper.make_node("Identity", [last], ["id_out"], name="inner/Identity")],
        "inner_else",
        [],
        [_untyped("id_out")],
    )
    outer_then = helper.make_graph(
        [
            helper.make_node("Shape", [last], ["last_shape"], name="rnn/Shape"),
            helper.make_node("Gather", ["last_shape", "minus1"], ["last_dim"], name="rnn/Gather", axis=0),
            helper.make_node("Equal", ["last_dim", "one_i"], ["is_one"], name="rnn/Equal"),
            helper.make_node(
                "If", ["is_one"], ["cell_in"], name="rnn/If", then_branch=inner_then, else_branch=inner_else
            ),
            helper.make_node("Gather", ["state", "idx0"], ["h0"], name="rnn/Gather_h", axis=0),
            helper.make_node("Gather", ["state", "idx1"], ["c0"], name="rnn/Gather_c", axis=0),
            helper.make_node("MatMul", ["cell_in", wx], ["xw"], name="rnn/MatMul_x"),
            helper.make_node("MatMul", ["h0", wh], ["hw"], name="rnn/MatMul_h"),
            helper.make_node("Add", ["xw", "hw"], ["pre"], name="rnn/Add"),
            helper.make_node("Tanh", ["pre"], ["h1"], name="rnn/Tanh"),
            helper.make_node("Add", ["c0", "h1"], ["c1"], name="rnn/Add_c"),
            helper.make_node("Unsqueeze", ["h1", "zero_idx"], ["h1u"], name="rnn/Unsqueeze_h"),
            helper.make_node("Unsqueeze", ["c1", "zero_idx"], ["c1u"], name="rnn/Unsqueeze_c"),
            helper.make_node("Concat", ["h1u", "c1u"], ["state1"], name="rnn/Concat", axis=0),
        ],
        "outer_then",
        [],
        [_untyped("h1"), _untyped("state1")],
    )
    outer_else = helper.make_graph(
        [
            helper.make_node("Gather", ["state", "idx0"], ["h_keep"], name="keep/Gather", axis=0),
            helper.make_node("Identity", ["state"], ["state_keep"], name="keep/Identity"),
        ],
        "outer_else",
        [],
        [_untyped("h_keep"), _untyped("state_keep")],
    )
    b.node(
        "If", [outer_cond], name="decoder/If", outputs=["y", "state_n"], then_branch=outer_then, else_branch=outer_else
    )
    graph = b.graph(
        "if_untyped",
        [_value("x", F32, ["batch", 8, "time"]), _value("state", F32, [2, "batch", 16])],
        [_value("y", F32, ["batch", 16]), _value("state_n", F32, [2, "batch", 16])],
    )
    return _model(graph, 16, "pytorch")


def _stft_branch(prefix: str, rng, n_fft: int, hop: int, bins: int):
    """Nodes and weights of one sample rate's network inside a spox-style If branch: reflect Pad, strided
    Conv (n_fft taps), magnitude, Conv + Relu, mean over frames, a tanh cell on the state, sigmoid."""
    p = f"{prefix}/"

    def w(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), p + name)

    inits = [
        numpy_helper.from_array(np.array([0, 0, 0, n_fft // 4], np.int64), p + "pads"),
        numpy_helper.from_array(np.array([1], np.int64), p + "axis1"),
        w("basis", (2 * bins, 1, n_fft), n_fft**-0.5),
        numpy_helper.from_array(np.array([0], np.int64), p + "re_start"),
        numpy_helper.from_array(np.array([bins], np.int64), p + "re_end"),
        numpy_helper.from_array(np.array([2 * bins], np.int64), p + "im_end"),
        numpy_helper.from_array(np.array(2.0, np.float32), p + "two"),
        w("enc.weight", (16, bins, 3), (3 * bins) ** -0.5),
        w("enc.bias", (16,), 0.1),
        w("cell.wx", (16, 16), 0.25),
        w("cell.wh", (16, 16), 0.25),
        w("out.w", (16, 1), 0.25),
        numpy_helper.from_array(np.array(0, np.int64), p + "idx0"),
        numpy_helper.from_array(np.array(1, np.int64), p + "idx1"),
        numpy_helper.from_array(np.array([0], np.int64), p + "axis0"),
    ]
    nodes = [
        helper.make_node("Pad", ["input", p + "pads"], [p + "padded"], name=p + "Pad", mode="reflect"),
        helper.make_node("Unsqueeze", [p + "padded", p + "axis1"], [p + "x3"], name=p + "Unsqueeze"),
        helper.make_node("Conv", [p + "x3", p + "basis"], [p + "spec"], name=p + "stft/Conv", strides=[hop]),
    ]
    nodes += [
        helper.make_node("Slice", [p + "spec", p + "re_start", p + "re_end", p + "axis1"], [p + "re"], name=p + "re"),
        helper.make_node("Slice", [p + "spec", p + "re_end", p + "im_end", p + "axis1"], [p + "im"], name=p + "im"),
        helper.make_node("Pow", [p + "re", p + "two"], [p + "re2"], name=p + "Pow"),
        helper.make_node("Pow", [p + "im", p + "two"], [p + "im2"], name=p + "Pow_1"),
        helper.make_node("Add", [p + "re2", p + "im2"], [p + "power"], name=p + "Add"),
        helper.make_node("Sqrt", [p + "power"], [p + "mag"], name=p + "Sqrt"),
        helper.make_node(
            "Conv",
            [p + "mag", p + "enc.weight", p + "enc.bias"],
            [p + "enc"],
            name=p + "enc/Conv",
            kernel_shape=[3],
            pads=[1, 1],
        ),
        helper.make_node("Relu", [p + "enc"], [p + "enc_r"], name=p + "enc/Relu"),
        helper.make_node("ReduceMean", [p + "enc_r"], [p + "feat"], name=p + "ReduceMean", axes=[-1], keepdims=0),
        helper.make_node("Gather", ["state", p + "idx0"], [p + "h0"], name=p + "Gather_h", axis=0),
        helper.make_node("Gather", ["state", p + "idx1"], [p + "c0"], name=p + "Gather_c", axis=0),
        helper.make_node("MatMul", [p + "feat", p + "cell.wx"], [p + "xw"], name=p + "MatMul_x"),
        helper.make_node("MatMul", [p + "h0", p + "cell.wh"], [p + "hw"], name=p + "MatMul_h"),
        helper.make_node("Add", [p + "xw", p + "hw"], [p + "pre"], name=p + "Add_1"),
        helper.make_node("Tanh", [p + "pre"], [p + "h1"], name=p + "Tanh"),
        helper.make_node("Add", [p + "c0", p + "h1"], [p + "c1"], name=p + "Add_c"),
        helper.make_node("MatMul", [p + "h1", p + "out.w"], [p + "logit"], name=p + "MatMul_out"),
        helper.make_node("Sigmoid", [p + "logit"], [p + "out"], name=p + "Sigmoid"),
        helper.make_node("Unsqueeze", [p + "h1", p + "axis0"], [p + "h1u"], name=p + "Unsqueeze_h"),
        helper.make_node("Unsqueeze", [p + "c1", p + "axis0"], [p + "c1u"], name=p + "Unsqueeze_c"),
        helper.make_node("Concat", [p + "h1u", p + "c1u"], [p + "state_n"], name=p + "Concat", axis=0),
    ]
    return helper.make_graph(nodes, prefix, [], [_untyped(p + "out"), _untyped(p + "state_n")], inits)


def if_runtime_untyped() -> onnx.ModelProto:
    """(a, d) silero_vad.onnx as spox writes it: inputs declared ["?", "?"] (the same dim_param for batch and
    samples), `sr` a scalar input, the whole network an If on `sr == 16000` whose branches (16 kHz: 256 taps,
    hop 128, 33 bins; 8 kHz: 128 taps, hop 64, 17 bins; their own weights as branch initializers) have
    different intermediate shapes, the same output shapes, and untyped outputs; Identity onto the outputs."""
    rng = np.random.default_rng(15)
    b = Builder(15)
    b.const("sr16k", np.array(16000, np.int64))
    cond = b.node("Equal", ["sr", "sr16k"], name="Equal_0")
    then_branch = _stft_branch("model_16k", rng, 256, 128, 33)
    else_branch = _stft_branch("model_8k", rng, 128, 64, 17)
    out, state = b.node("If", [cond], name="If_0", n_out=2, then_branch=then_branch, else_branch=else_branch)
    b.node("Identity", [out], name="Identity_0", outputs=["output"])
    b.node("Identity", [state], name="Identity_1", outputs=["stateN"])
    graph = b.graph(
        "silero_spox",
        [_value("input", F32, ["?", "?"]), _value("state", F32, [2, "?", 16]), _value("sr", I64, [])],
        [_value("output", F32, ["?", 1]), _value("stateN", F32, ["?", "?", "?"])],
    )
    return _model(graph, 16, "spox")


def tf2onnx_bilstm() -> onnx.ModelProto:
    """(a, e) openwakeword's hey_mycroft head (tf2onnx 1.10 from Keras): batch declared `unk__332`, a
    bidirectional LSTM whose zero initial state is built from the batch at run time (Shape -> Cast ->
    Slice -> Concat -> Cast -> Expand -> Unsqueeze -> Concat), Slice/Squeeze of the last forward and first
    backward step, Dense + sigmoid. (Issue #15: `dynamic_manifest` failed on it with KeyError ('scratch', ...).)"""
    b = Builder(16)
    hidden, feat, steps = 8, 12, 16
    t = b.node("Transpose", ["input_1"], name="forward_lstm/transpose", perm=[1, 0, 2])
    shape = b.node("Cast", [b.node("Shape", ["input_1"], name="backward_lstm/Shape")], name="Shape__1", to=I32)
    axes0 = b.const("const_axes__72", np.array([0], np.int32))
    batch = b.node(
        "Slice",
        [shape, axes0, b.const("const_starts__188", np.array([1], np.int32)), axes0],
        name="backward_lstm/strided_slice",
    )
    packed = b.node(
        "Concat",
        [batch, b.const("const_fold_opt__331", np.array([hidden], np.int32))],
        name="zeros/packed_Concat__251",
        axis=0,
    )
    zeros = b.node(
        "Expand",
        [b.const("zeros/Const:0", np.array(0.0, np.float32)), b.node("Cast", [packed], name="zeros_1__228", to=I64)],
        name="backward_lstm/zeros",
    )
    z = b.node("Unsqueeze", [zeros, b.const("axes0_64", np.array([0], np.int64))], name="Unsqueeze__97")
    init = b.node("Concat", [z, z], name="Concat__194", axis=0)
    w = b.weight("W__200", (2, 4 * hidden, feat))
    r = b.weight("R__201", (2, 4 * hidden, hidden))
    bias = b.weight("B__202", (2, 8 * hidden), 0.1)
    y, _, _ = b.node(
        "LSTM",
        [t, w, r, bias, "", init, init],
        name="LSTM__203",
        n_out=3,
        direction="bidirectional",
        hidden_size=hidden,
    )  # [steps, 2, batch, hidden]
    i64 = {v: b.const(f"i64_{v}".replace("-", "m"), np.array([v], np.int64)) for v in (-1, 0, 1, 2, steps)}
    last = b.node("Squeeze", [b.node("Slice", [y, i64[-1], i64[steps], i64[0]]), i64[0]])  # [2, batch, hidden]
    first = b.node("Squeeze", [b.node("Slice", [y, i64[0], i64[1], i64[0]]), i64[0]])
    fw = b.node("Squeeze", [b.node("Slice", [last, i64[0], i64[1], i64[0]]), i64[0]])
    bw = b.node("Squeeze", [b.node("Slice", [first, i64[1], i64[2], i64[0]]), i64[0]])
    cat = b.node("Concat", [fw, bw], name="bidirectional/concat", axis=1)
    x = b.node("MatMul", [cat, b.weight("dense/MatMul/ReadVariableOp:0", (2 * hidden, 1))], name="dense/MatMul")
    x = b.node("Add", [x, b.weight("dense/BiasAdd/ReadVariableOp:0", (1,), 0.1)], name="dense/BiasAdd")
    b.node("Sigmoid", [x], name="dense/Sigmoid", outputs=["dense"])
    graph = b.graph(
        "tf2onnx", [_value("input_1", F32, ["unk__332", steps, feat])], [_value("dense", F32, ["unk__333", 1])]
    )
    return _model(graph, 13, "tf2onnx")


def tf2onnx_bytes_classifier() -> onnx.ModelProto:
    """(a) magika's content-type classifier (jax2tf -> tf2onnx 1.16): int32 bytes [unk__214, 64], one-hot
    by Reshape + Expand (its shape from Shape -> Cast -> Slice -> Concat -> Cast) + Equal against 0..255,
    a Dense layer (MatMul), tanh-approximated GELU, a flatten whose target is built from the batch the same
    way, a second Dense and a softmax, batch declared `unk__214` / `unk__215`."""
    b = Builder(17)
    n, classes, dim = 64, 6, 8
    r = b.node(
        "Reshape", ["bytes", b.const("Reshape_shape__173", np.array([-1, n, 1], np.int64))], name="one_hot/Reshape"
    )
    shape = b.node("Cast", [b.node("Shape", ["bytes"], name="Shape")], name="Shape__8", to=I32)
    axes0 = b.const("const_axes__98", np.array([0], np.int32))
    batch = b.node(
        "Slice", [shape, axes0, b.const("const_fold_opt__171", np.array([1], np.int32)), axes0], name="strided_slice"
    )
    target = b.node(
        "Concat",
        [batch, b.const("const_fold_opt__161", np.array([n, 256], np.int32))],
        name="BroadcastTo/shape_Concat__28",
        axis=0,
    )
    expanded = b.node("Expand", [r, b.node("Cast", [target], name="Reshape__21", to=I64)], name="BroadcastTo")
    iota = b.const("iota", np.arange(256, dtype=np.int32))
    onehot = b.node("Cast", [b.node("Equal", [expanded, iota], name="one_hot/Equal")], name="one_hot/Cast_1", to=F32)
    x = b.node("MatMul", [onehot, b.weight("Const:0", (256, dim), 1.0)], name="Dense_0/einsum/Einsum")
    x = b.node("Add", [x, b.weight("Dense_0/bias", (dim,), 0.1)], name="Dense_0/AddV2")
    x3 = b.node("Mul", [b.node("Mul", [x, x]), x])
    inner = b.node(
        "Mul",
        [
            b.node("Add", [x, b.node("Mul", [x3, b.const("c_gelu", np.array(0.044715, np.float32))])]),
            b.const("c_sqrt2pi", np.array(0.7978846, np.float32)),
        ],
    )
    half = b.node("Mul", [x, b.const("c_half", np.array(0.5, np.float32))])
    x = b.node("Mul", [half, b.node("Add", [b.node("Tanh", [inner]), b.const("c_one", np.array(1.0, np.float32))])])
    flat_target = b.node(
        "Concat",
        [batch, b.const("const_fold_opt__155", np.array([n * dim], np.int32))],
        name="Reshape/shape_Concat__46",
        axis=0,
    )
    x = b.node("Reshape", [x, b.node("Cast", [flat_target], name="Reshape__47", to=I64)], name="MagikaV2/Reshape")
    x = b.node("MatMul", [x, b.weight("Dense_1/kernel", (n * dim, classes))], name="Dense_1/MatMul")
    x = b.node("Add", [x, b.weight("Dense_1/bias", (classes,), 0.1)], name="Dense_1/AddV2")
    b.node("Softmax", [x], name="Softmax", outputs=["target_label"], axis=-1)
    graph = b.graph(
        "tf2onnx", [_value("bytes", I32, ["unk__214", n])], [_value("target_label", F32, ["unk__215", classes])]
    )
    return _model(graph, 15, "tf2onnx")


def sigmoid_small_outputs() -> onnx.ModelProto:
    """(verify) openwakeword's wake-word heads (hey_marvin): Flatten -> Gemm -> Relu -> Gemm -> Sigmoid, whose
    logits on --verify's random inputs sit near -14, so every output is ~1e-6. onnxruntime's own Sigmoid is
    off there by ~1e-7 absolute (it returns exactly 0 below about -17), so a scale-relative comparison with it
    flags a correct bundle (hey_marvin: max rel err 0.059, PP-OCRv4 det's sigmoid map: 1.8e-4)."""
    b = Builder(18)
    x = b.node("Flatten", ["features"], name="Flatten_0", axis=1)
    x = b.node("Gemm", [x, b.weight("fc1.weight", (32, 192)), b.weight("fc1.bias", (32,), 0.1)], transB=1)
    x = b.node("Relu", [x])
    bias = b.const("fc2.bias", np.array([-14.0, -15.0, -16.0, -13.0], np.float32))
    x = b.node("Gemm", [x, b.weight("fc2.weight", (4, 32), 0.05), bias], transB=1)
    b.node("Sigmoid", [x], outputs=["probs"])
    graph = b.graph("head", [_value("features", F32, [1, 16, 12])], [_value("probs", F32, [1, 4])])
    return _model(graph, 13, "pytorch")


BUILDERS = {
    "paddle_cls_minus1": paddle_cls_minus1,
    "declared_shapes_wrong": declared_shapes_wrong,
    "shape_chain_rounds": shape_chain_rounds,
    "if_untyped_nested": if_untyped_nested,
    "if_runtime_untyped": if_runtime_untyped,
    "tf2onnx_bilstm": tf2onnx_bilstm,
    "tf2onnx_bytes_classifier": tf2onnx_bytes_classifier,
    "sigmoid_small_outputs": sigmoid_small_outputs,
}
