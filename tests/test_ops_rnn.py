"""RNN, GRU and LSTM through package() -> HostSession (both builds and a 3-thread split plan) against
onnxruntime: realistic sizes, hidden sizes that are not multiples of the kernel's 4/8/16-unit panels,
constant (prepacked) and run-time weights, sequence_lens read at run time, initial states, peepholes, clip,
activation lists with alpha/beta, input_forget, linear_before_reset, reverse/bidirectional, and layout=1
(which onnxruntime rejects: its reference is onnxruntime on the same data in layout 0)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from oputil import VARIANTS, KernelModule, check_model, make_model, max_rel, randn, run_bundle

from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.ops.rnn import KIND, pack_recurrent, packed_size
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUTPUTS = {"RNN": ["Y", "Y_h"], "GRU": ["Y", "Y_h"], "LSTM": ["Y", "Y_h", "Y_c"]}


def rnn_model(
    op,
    seq,
    batch,
    isize,
    hidden,
    direction="forward",
    const=True,
    bias=True,
    lens=False,
    init=False,
    peep=False,
    layout=0,
    outputs=None,
    seed=0,
    **attrs,
):
    """One recurrent node; returns (model, feeds). const: W/R/B/P initial state are initializers, else inputs."""
    dirs = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(hidden)
    tensors = {
        "W": (rng.standard_normal((dirs, G * hidden, isize)) * scale).astype(np.float32),
        "R": (rng.standard_normal((dirs, G * hidden, hidden)) * scale).astype(np.float32),
    }
    names = ["X", "W", "R"]
    if bias:
        tensors["B"] = (rng.standard_normal((dirs, 2 * G * hidden)) * 0.5).astype(np.float32)
    names.append("B" if bias else "")
    feeds = {"X": randn((seq, batch, isize), seed + 1)}
    if layout:
        feeds["X"] = np.ascontiguousarray(feeds["X"].transpose(1, 0, 2))
    inputs = {"X": feeds["X"].shape}
    if lens:
        feeds["sequence_lens"] = np.asarray(lens, np.int32)
        inputs["sequence_lens"] = (feeds["sequence_lens"].shape, np.int32)
    names.append("sequence_lens" if lens else "")

    def state(seed):  # the same values in either layout
        s = randn((dirs, batch, hidden), seed)
        return s if layout == 0 else np.ascontiguousarray(s.transpose(1, 0, 2))

    if init:
        tensors["initial_h"] = state(seed + 2)
        names.append("initial_h")
        if op == "LSTM":
            tensors["initial_c"] = state(seed + 3)
            names.append("initial_c")
    if peep:
        assert op == "LSTM"
        names += [""] * (7 - len(names))
        tensors["P"] = randn((dirs, 3 * hidden), seed + 4) * 0.5
        names.append("P")
    while names[-1] == "":
        names.pop()
    inits = {}
    for k, v in tensors.items():
        if const:
            inits[k] = v
        else:
            feeds[k] = v
            inputs[k] = v.shape
    outputs = outputs or OUTPUTS[op]
    node = helper.make_node(
        op, names, outputs, name=op.lower(), hidden_size=hidden, direction=direction, layout=layout, **attrs
    )
    model = make_model([node], inputs, [o for o in outputs if o], inits, opset=14)
    return model, feeds


def check(model, feeds, tmp_path, tol=1e-5):
    return check_model(model, tmp_path, tol=tol, feeds=feeds)


def kernels_of(manifest):
    return [s["kernel"] for s in manifest["steps"]]


# ---------------------------------------------------------------------------------------------------------
# realistic sizes, every output


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_realistic_bidirectional(op, tmp_path):
    """seq 20, batch 3, input 33, hidden 47: the plan splits batch over threads, panels have tails."""
    model, feeds = rnn_model(op, 20, 3, 33, 47, "bidirectional", init=True, peep=op == "LSTM")
    manifest = check(model, feeds, tmp_path)
    called = kernels_of(manifest)
    assert called.count({"LSTM": "f32_lstm", "GRU": "f32_gru", "RNN": "f32_rnn"}[op]) == 2, called
    assert called.count("f32_gemm") == 2 and "f32_rnn_pack" not in called, called  # weights prepacked


@pytest.mark.parametrize("op, hidden", [("LSTM", 1), ("LSTM", 17), ("GRU", 6), ("RNN", 17)])
def test_runtime_weights(op, hidden, tmp_path):
    """W, R, B, initial state and P as graph inputs: transposed / packed by kernels at run time."""
    model, feeds = rnn_model(op, 5, 2, 7, hidden, "bidirectional", const=False, init=True, peep=op == "LSTM")
    manifest = check(model, feeds, tmp_path)
    assert "f32_rnn_pack" in kernels_of(manifest)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_sequence_lens(op, tmp_path):
    """Rows of different lengths (one empty, one full), both directions: Y zero past each length, Y_h/Y_c the
    state after the last step (zero for the empty row, as onnxruntime)."""
    model, feeds = rnn_model(op, 6, 5, 4, 9, "bidirectional", lens=[3, 6, 0, 1, 5], init=True)
    check(model, feeds, tmp_path)


def test_sequence_lens_changes_per_run(tmp_path):
    """sequence_lens is read at run time: one bundle, two runs with different lengths."""
    model, feeds = rnn_model("LSTM", 5, 3, 4, 6, "reverse", lens=[5, 5, 5])
    _, outs = run_bundle(model, tmp_path, feeds, variants=("simd",))
    session = HostSession(tmp_path, "simd")
    for lens in ([5, 2, 4], [1, 5, 3]):
        feeds["sequence_lens"] = np.asarray(lens, np.int32)
        got = session.run(feeds)
        for name, r in reference_outputs(model, feeds).items():
            assert max_rel(got[name], r) <= 1e-5, (lens, name)


@pytest.mark.parametrize("op, const", [("LSTM", True), ("GRU", False), ("RNN", True)])
def test_clip(op, const, tmp_path):
    """clip bounds every gate's input to its activation (not the cell state LSTM's h reads)."""
    model, feeds = rnn_model(op, 7, 2, 5, 10, "bidirectional", const=const, init=True, clip=0.7)
    feeds["X"] *= 3
    check(model, feeds, tmp_path)


def test_lstm_input_forget_and_peepholes(tmp_path):
    model, feeds = rnn_model("LSTM", 6, 3, 5, 11, "reverse", init=True, peep=True, input_forget=1, clip=2.0)
    check(model, feeds, tmp_path)


@pytest.mark.parametrize("const, hidden", [(True, 20), (False, 5)])
def test_gru_linear_before_reset(const, hidden, tmp_path):
    model, feeds = rnn_model("GRU", 6, 3, 4, hidden, "bidirectional", const=const, init=True, linear_before_reset=1)
    check(model, feeds, tmp_path)


# every activation of the spec; alpha/beta lists are consumed in order by the functions that take them
ACTIVATION_CASES = {
    "RNN Relu/Affine": ("RNN", ["Relu", "Affine"], [0.5], [0.1]),
    "RNN LeakyRelu/ThresholdedRelu": ("RNN", ["LeakyRelu", "ThresholdedRelu"], [0.2, 0.3], []),
    "RNN ScaledTanh/HardSigmoid": ("RNN", ["ScaledTanh", "HardSigmoid"], [1.5, 0.3], [0.7, 0.4]),
    "RNN Elu/Softsign": ("RNN", ["Elu", "Softsign"], [0.8], []),
    "RNN Softplus/Sigmoid": ("RNN", ["Softplus", "Sigmoid"], [], []),
    "LSTM": ("LSTM", ["HardSigmoid", "Softsign", "ScaledTanh", "Sigmoid", "Elu", "Affine"], [0.25, 1.2, 0.9, 0.5],
             [0.45, 0.8, 0.1]),
    "GRU": ("GRU", ["Sigmoid", "Relu", "HardSigmoid", "Softplus"], [0.3], []),
    # alpha/beta missing from the lists take onnxruntime's defaults (LeakyRelu 0.01, HardSigmoid 0.2/0.5)
    "defaults, any case": ("LSTM", ["hardsigmoid", "LEAKYRELU", "Tanh"], [], []),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ACTIVATION_CASES))
def test_activations(case, tmp_path):
    op, names, alpha, beta = ACTIVATION_CASES[case]
    attrs = {"activations": names}
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    direction = "bidirectional" if len(names) > len(OUTPUTS[op]) - (op == "RNN") else "forward"
    model, feeds = rnn_model(op, 4, 2, 3, 6, direction, init=True, **attrs)
    feeds["X"] *= 2
    check(model, feeds, tmp_path)


@pytest.mark.parametrize("op, outputs", [("LSTM", ["Y", "", "Y_c"]), ("GRU", ["", "Y_h"]), ("RNN", ["Y"])])
def test_output_subsets(op, outputs, tmp_path):
    model, feeds = rnn_model(op, 4, 2, 3, 5, "reverse", bias=False, outputs=outputs)
    check(model, feeds, tmp_path)


@pytest.mark.parametrize("op, const", [("LSTM", True), ("GRU", False), ("RNN", True)])
def test_layout_1(op, const, tmp_path):
    """Batch-major X/Y/state, against onnxruntime on the same data in layout 0 (it rejects layout 1)."""
    lens = [4, 2, 3]
    model, feeds = rnn_model(op, 4, 3, 5, 9, "bidirectional", const=const, lens=lens, init=True, layout=1)
    ref_model, _ = rnn_model(op, 4, 3, 5, 9, "bidirectional", const=const, lens=lens, init=True, layout=0)
    ref_feeds = {k: (v.transpose(1, 0, 2) if k in ("X", "initial_h", "initial_c") else v) for k, v in feeds.items()}
    ref0 = reference_outputs(ref_model, ref_feeds)
    expect = {
        "Y": lambda _: ref0["Y"].transpose(2, 0, 1, 3),
        "Y_h": lambda _: ref0["Y_h"].transpose(1, 0, 2),
        "Y_c": lambda _: ref0["Y_c"].transpose(1, 0, 2),
    }
    check_model(model, tmp_path, tol=1e-5, feeds=feeds, ort=False, expect={k: expect[k] for k in OUTPUTS[op]})


def test_long_sequence_saturating(tmp_path):
    """Large inputs drive the gates into saturation over 60 steps; nothing turns into nan/inf."""
    model, feeds = rnn_model("LSTM", 60, 2, 4, 8, "forward", init=True)
    feeds["X"] *= 30
    check(model, feeds, tmp_path)


def test_activations_need_one_list_per_direction(tmp_path):
    model, _ = rnn_model("LSTM", 2, 1, 2, 3, "bidirectional", activations=["Sigmoid", "Tanh", "Tanh"])
    with pytest.raises(PackageError, match="needs 3 per direction"):
        package(model, tmp_path)


# ---------------------------------------------------------------------------------------------------------
# the run-time packing kernel against the package-time packing


@pytest.fixture(scope="module", params=VARIANTS)
def km(request) -> KernelModule:
    return KernelModule(["f32_rnn_pack"], request.param)


@pytest.mark.parametrize("op, lbr", [("LSTM", 0), ("RNN", 0), ("GRU", 0), ("GRU", 1)])
@pytest.mark.parametrize("hidden", [1, 5, 16, 19])
def test_pack_kernel_matches_prepack(km, op, lbr, hidden):
    km.reset()
    r = randn((GATES[op] * hidden, hidden), hidden)
    expected = pack_recurrent(op, bool(lbr), r)
    assert expected.size == packed_size(op, bool(lbr), hidden)
    src = km.put(r)
    dst = km.alloc(expected.nbytes)
    km.call("f32_rnn_pack", KIND[op], lbr, hidden, src, dst)
    np.testing.assert_array_equal(km.get(dst, expected.shape), expected)
