"""Export the PyTorch half of the real-model regression corpus (tests/data/corpus/, tests/test_corpus.py).

    python scripts/corpus/export.py [OUT_DIR]      (default: tests/data/corpus)

Each model is small, has seeded random weights and copies one pattern that real exporters write into
models shipped on PyPI (named in its docstring), so that a packaging bug seen on a 10 MB third-party file
is caught in CI on a 50 KB file of our own. Needs torch, which is not a dependency of the project or of
CI: `scripts/corpus/setup.sh` makes a separate venv with it and runs this script; CI uses the committed
.onnx files. The TorchScript exporter (dynamo=False) is the one that wrote the real models.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

OPSET = 17


def seeded(seed: int) -> None:
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------
# audio: STFT-like front ends, recurrent state


class StftMagnitude(nn.Module):
    """silero-vad's front end: reflect-pad the right edge, one Conv1d whose 2*bins filters of n_fft taps hold
    a Fourier basis (random here), stride = hop, then sqrt(re^2 + im^2)."""

    def __init__(self, n_fft: int, hop: int, bins: int):
        super().__init__()
        self.hop, self.bins, self.pad = hop, bins, n_fft // 4
        self.register_buffer("basis", torch.randn(2 * bins, 1, n_fft) / n_fft**0.5)

    def forward(self, x):  # [batch, samples] -> [batch, bins, frames]
        x = F.pad(x.unsqueeze(1), (0, self.pad), mode="reflect")
        spec = F.conv1d(x, self.basis, stride=self.hop)
        re, im = spec[:, : self.bins], spec[:, self.bins :]
        return torch.sqrt(re**2 + im**2)


class StftEncoder(nn.Module):
    """(f) Variable-length audio -> reflect Pad -> strided Conv1d with 256 taps -> magnitude -> Conv1d stack
    (one of stride 2), per-frame features out. Output length is floor((n + 64 - 256) / 128) + 1 frames, then
    halved: a plan exists for every n, but not one polynomial in n (the real models: silero-vad 16k_op15 /
    op18_ifless / v6, openwakeword melspectrogram)."""

    def __init__(self):
        super().__init__()
        self.stft = StftMagnitude(256, 128, 33)
        self.enc = nn.Sequential(
            nn.Conv1d(33, 16, 3, padding=1), nn.ReLU(), nn.Conv1d(16, 16, 3, stride=2, padding=1), nn.ReLU()
        )

    def forward(self, audio):
        return self.enc(self.stft(audio))


class MelFrontend(nn.Module):
    """(f) openwakeword's melspectrogram (a torchlibrosa-style STFT, center=False): the audio is zero-padded
    up to a multiple of the hop by a Pad whose size is computed from the input length, then two Conv1d of
    320 taps, stride 160 (real and imaginary parts), power, a mel filterbank MatMul and a log. With no
    centering pad the frame count floor((n - 320) / 160) + 1 is 0 or less under 320 samples: probe sizes must
    respect a minimum (in issue #15 the real model stopped on "cannot determine a static shape ... Conv: [5, 257,
    -2]"; this copy, padded first, packaged but fitted "0 frames" at every small probe: 0 frames at 1280)."""

    def __init__(self, n_fft: int = 320, hop: int = 160, bins: int = 33, mels: int = 16):
        super().__init__()
        self.hop = hop
        self.real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.register_buffer("mel", torch.rand(bins, mels) / bins)

    def forward(self, audio):
        pad = (-audio.shape[1]) % self.hop
        x = F.pad(audio, (0, pad)).unsqueeze(1)
        power = self.real(x) ** 2 + self.imag(x) ** 2  # [batch, bins, frames]
        mel = torch.matmul(power.transpose(1, 2), self.mel)  # [batch, frames, mels]
        return 10 * torch.log10(torch.clamp(mel, min=1e-10))


class VadLstmState(nn.Module):
    """(e) silero-vad v6 "sequence" export: chunks of 576 samples [chunks, 576] through the STFT front end
    and an encoder down to one frame per chunk, then an LSTM that runs over the chunks with state inputs
    h, c [1, 1, 32] and returns hn, cn: the LSTM's sequence length is the dynamic dim."""

    def __init__(self):
        super().__init__()
        self.stft = StftMagnitude(256, 128, 33)
        self.enc = nn.Sequential(
            nn.Conv1d(33, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.rnn = nn.LSTM(32, 32)
        self.out = nn.Conv1d(32, 1, 1)

    def forward(self, chunks, h, c):
        feats = self.enc(self.stft(chunks))  # [chunks, 32, 1]
        seq = feats.permute(0, 2, 1)  # [chunks, 1, 32]: time-major, batch 1
        y, (hn, cn) = self.rnn(seq, (h, c))
        probs = torch.sigmoid(self.out(F.relu(y).permute(1, 2, 0)))  # [1, 1, chunks]
        return probs.reshape(-1), hn, cn


class GruStreaming(nn.Module):
    """(e) A keyword spotter's 2-layer GRU over feature frames, state in and out, batch and time dynamic
    (openwakeword's LSTM heads, streaming recognizers)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(20, 24, num_layers=2, batch_first=True)
        self.head = nn.Linear(24, 5)

    def forward(self, feats, state):
        y, state_n = self.gru(feats, state)
        return torch.softmax(self.head(y), -1), state_n


class LstmStepSqueeze(nn.Module):
    """(d) `squeeze(-1)` on a dim the exporter cannot prove is 1 becomes `If(Shape[-1] == 1, Squeeze,
    Identity)`: branches of different rank, condition known once shapes are (silero-vad 16k_op15's
    /model/decoder/If). One LSTM step with the state [2, batch, 16] in and out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.rnn = nn.LSTM(8, 16)

    def forward(self, x, state):
        last = self.conv(x)[:, :, -1:].squeeze(-1)  # [batch, 8]
        y, (h, c) = self.rnn(last.unsqueeze(0), (state[:1], state[1:]))
        return y.squeeze(0), torch.cat([h, c])


class VadSqueezeFrames(nn.Module):
    """(d) A dim that cannot be symbolic: silero-vad 16k_op15 squeezes the encoder's frame axis with
    `squeeze(-1)`, which torch writes as If(Shape[-1] == 1, Squeeze, Identity). The frame count after the
    STFT and two stride-2 convs is 1 only for 192..703 samples, so the model runs at one chunk size (silero
    asserts 512) and, elsewhere, the If keeps rank 3 and the Linear after it fails in onnxruntime too: no plan
    serves a symbolic `samples`, and packaging without --input-shape must say so."""

    def __init__(self):
        super().__init__()
        self.stft = StftMagnitude(256, 128, 33)
        self.enc = nn.Sequential(
            nn.Conv1d(33, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(16, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(16, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.out = nn.Linear(16, 1)

    def forward(self, audio):
        return torch.sigmoid(self.out(self.enc(self.stft(audio)).squeeze(-1)))


class SrBranch(nn.Module):
    def __init__(self, n_fft: int, hop: int, bins: int):
        super().__init__()
        self.stft = StftMagnitude(n_fft, hop, bins)
        self.enc = nn.Conv1d(bins, 16, 3, padding=1)
        self.cell = nn.Linear(32, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x, state):
        feats = F.relu(self.enc(self.stft(x))).mean(-1)  # [batch, 16]
        h = torch.tanh(self.cell(torch.cat([feats, state[0]], -1)))
        return torch.sigmoid(self.out(h)), torch.stack([h, state[1] + h])


class VadSampleRate(nn.Module):
    """(d) A run-time condition: silero-vad's `sr` scalar input picks the 16 kHz or the 8 kHz network
    (different STFT sizes, weights and intermediate shapes, the same output shapes). Scripted, so the
    branch is an ONNX If on the value of `sr` (silero_vad.onnx, silero_vad_op18_ifless.onnx)."""

    def __init__(self):
        super().__init__()
        self.model_16k = SrBranch(256, 128, 33)
        self.model_8k = SrBranch(128, 64, 17)

    def forward(self, audio, sr, state):
        if bool(sr == 16000):
            out, state_n = self.model_16k(audio, state)
        else:
            out, state_n = self.model_8k(audio, state)
        return out, state_n


# ---------------------------------------------------------------------------------------------------------
# vision: detectors with sizes in multiples of 32, a recognizer over a variable width


def cbs(ci: int, co: int, k: int, s: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(ci, co, k, s, k // 2), nn.SiLU())


class YoloV8Tiny(nn.Module):
    """(c, h) YOLOv8's detect head at toy width: 5 stride-2 stages (sizes must be multiples of 32: the
    upsampled P5 is concatenated with P4), per-level box (DFL, reg_max 4) and class convs, then in the graph
    itself `make_anchors` (Range over each level's W and H, Expand, Concat over levels), a dynamic Reshape per
    level, Split of box/class channels, DFL softmax + 1x1 conv and dist2bbox. ultralytics exports through
    onnxsim, which leaves no Constant nodes: `export` moves them to initializers the same way (nudenet 320n)."""

    strides = (8, 16, 32)
    reg_max, nc = 4, 3

    def __init__(self):
        super().__init__()
        self.s1, self.s2, self.s3 = cbs(3, 8, 3, 2), cbs(8, 12, 3, 2), cbs(12, 16, 3, 2)
        self.s4, self.s5 = cbs(16, 16, 3, 2), cbs(16, 24, 3, 2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.n4, self.n3 = cbs(40, 16, 1), cbs(32, 16, 1)
        no = 4 * self.reg_max + self.nc
        self.heads = nn.ModuleList(nn.Sequential(cbs(c, 16, 3), nn.Conv2d(16, no, 1)) for c in (16, 16, 24))
        self.dfl = nn.Conv2d(self.reg_max, 1, 1, bias=False)
        self.dfl.weight.data[:] = torch.arange(self.reg_max, dtype=torch.float32).view(1, self.reg_max, 1, 1)

    def anchors(self, feats):
        points, strides = [], []
        for f, stride in zip(feats, self.strides, strict=True):
            h, w = f.shape[2], f.shape[3]
            sx = torch.arange(w, dtype=torch.float32) + 0.5
            sy = torch.arange(h, dtype=torch.float32) + 0.5
            gy, gx = torch.meshgrid(sy, sx, indexing="ij")
            points.append(torch.stack((gx, gy), -1).view(-1, 2))
            strides.append(torch.full((h * w, 1), float(stride)))
        return torch.cat(points).transpose(0, 1), torch.cat(strides).transpose(0, 1)

    def forward(self, images):
        p3 = self.s3(self.s2(self.s1(images)))
        p4 = self.s4(p3)
        p5 = self.s5(p4)
        n4 = self.n4(torch.cat([self.up(p5), p4], 1))
        n3 = self.n3(torch.cat([self.up(n4), p3], 1))
        feats = [head(f) for head, f in zip(self.heads, (n3, n4, p5), strict=True)]
        b = feats[0].shape[0]
        no = 4 * self.reg_max + self.nc
        x = torch.cat([f.view(b, no, -1) for f in feats], 2)
        box, cls = x.split((4 * self.reg_max, self.nc), 1)
        a = box.shape[2]
        dist = self.dfl(box.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)).view(b, 4, a)
        anchors, strides = self.anchors(feats)
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((boxes, cls.sigmoid()), 1)


class DbNetTiny(nn.Module):
    """(h) PP-OCR's text detector (DBNet) at toy width: backbone to stride 32, FPN that *adds* each upsampled
    level to the one below (so H and W must be multiples of 32, as onnxruntime also requires), then
    ConvTranspose x2 twice back to full size and a sigmoid map. Dims named the way paddle2onnx names them
    (ch_PP-OCRv4_det_infer, PP-OCRv6_det_small)."""

    def __init__(self):
        super().__init__()
        chans = [8, 8, 12, 16, 16]
        self.stages = nn.ModuleList()
        ci = 3
        for co in chans:
            self.stages.append(nn.Sequential(nn.Conv2d(ci, co, 3, 2, 1), nn.BatchNorm2d(co), nn.ReLU()))
            ci = co
        self.lateral = nn.ModuleList(nn.Conv2d(c, 16, 1) for c in chans[1:])
        self.smooth = nn.ModuleList(nn.Conv2d(16, 4, 3, padding=1) for _ in chans[1:])
        self.head = nn.Sequential(
            nn.Conv2d(16, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 8, 2, 2),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 2, 2),
        )

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        c2, c3, c4, c5 = (lat(f) for lat, f in zip(self.lateral, feats[1:], strict=True))
        p4 = c4 + F.interpolate(c5, scale_factor=2.0, mode="nearest")
        p3 = c3 + F.interpolate(p4, scale_factor=2.0, mode="nearest")
        p2 = c2 + F.interpolate(p3, scale_factor=2.0, mode="nearest")
        outs = []
        for scale, sm, p in zip((8, 4, 2, 1), self.smooth[::-1], (c5, p4, p3, p2), strict=True):
            o = sm(p)
            outs.append(F.interpolate(o, scale_factor=float(scale), mode="nearest") if scale > 1 else o)
        return torch.sigmoid(self.head(torch.cat(outs[::-1], 1)))


class CtcRecognizer(nn.Module):
    """(g) A text-line recognizer (PP-OCRv4/v6 rec, ddddocr): conv stem from a 48 x W image down to 6 x W/4,
    `flatten(1, 2)` (Shape/Gather/Concat/Reshape with W/4 from the shapes), then single-head self-attention
    (MatMul, Softmax over the W/4 positions), LayerNorm and a CTC softmax per position."""

    def __init__(self, classes: int = 40, dim: int = 32):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 24, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(24, 16, 3, (2, 1), 1),
            nn.ReLU(),
        )
        self.proj = nn.Linear(16 * 6, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim)
        self.cls = nn.Linear(dim, classes)
        self.scale = dim**-0.5

    def forward(self, image):
        x = self.stem(image)  # [batch, 16, 6, W/4]
        seq = self.proj(x.flatten(1, 2).transpose(1, 2))  # [batch, W/4, dim]
        q, k, v = self.qkv(seq).chunk(3, -1)
        attn = torch.softmax(q @ k.transpose(1, 2) * self.scale, -1)
        seq = self.norm(seq + attn @ v)
        return torch.softmax(self.cls(seq), -1)


# ---------------------------------------------------------------------------------------------------------


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant nodes -> initializers, as onnx-simplifier leaves an export (no node then folds in the first
    round of constant folding: only shape inference can start it)."""
    g = model.graph
    kept = []
    for n in g.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(n.attribute[0].t), n.output[0]))
        else:
            kept.append(n)
    del g.node[:]
    g.node.extend(kept)
    return model


def export(module, args, path: Path, inputs, outputs, dynamic_axes, post=None) -> None:
    module.eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            buf,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    if post:
        model = post(model)
    model.producer_name, model.producer_version = "pytorch", torch.__version__.split("+")[0]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    seeded(1)
    export(
        StftEncoder(),
        (torch.randn(1, 512),),
        out / "stft_encoder.onnx",
        ["audio"],
        ["features"],
        {"audio": {0: "batch", 1: "samples"}, "features": {0: "batch", 2: "frames"}},
    )
    seeded(10)
    export(
        MelFrontend(),
        (torch.randn(1, 1280),),
        out / "mel_frontend.onnx",
        ["audio"],
        ["mel"],
        {"audio": {0: "batch", 1: "samples"}, "mel": {0: "batch", 1: "frames"}},
    )
    seeded(2)
    export(
        VadLstmState(),
        (torch.randn(3, 576), torch.zeros(1, 1, 32), torch.zeros(1, 1, 32)),
        out / "vad_lstm_state.onnx",
        ["chunks", "h", "c"],
        ["speech_probs", "hn", "cn"],
        {"chunks": {0: "sequence_length"}, "speech_probs": {0: "sequence_length"}},
    )
    seeded(3)
    export(
        GruStreaming(),
        (torch.randn(1, 10, 20), torch.zeros(2, 1, 24)),
        out / "gru_streaming.onnx",
        ["feats", "state"],
        ["probs", "state_n"],
        {"feats": {0: "batch", 1: "time"}, "state": {1: "batch"}, "probs": {0: "batch", 1: "time"}},
    )
    seeded(4)
    export(
        LstmStepSqueeze(),
        (torch.randn(1, 4, 10), torch.zeros(2, 1, 16)),
        out / "lstm_step_squeeze_if.onnx",
        ["x", "state"],
        ["h", "state_n"],
        {"x": {0: "batch", 2: "time"}, "state": {1: "batch"}},
    )
    seeded(9)
    export(
        VadSqueezeFrames(),
        (torch.randn(1, 512),),
        out / "vad_squeeze_frames.onnx",
        ["audio"],
        ["speech_prob"],
        {"audio": {0: "batch", 1: "samples"}, "speech_prob": {0: "batch"}},
    )
    seeded(5)
    export(
        torch.jit.script(VadSampleRate()),
        (torch.randn(1, 512), torch.tensor(16000), torch.zeros(2, 1, 16)),
        out / "vad_sample_rate_if.onnx",
        ["audio", "sr", "state"],
        ["speech_prob", "state_n"],
        {"audio": {0: "batch", 1: "samples"}, "state": {1: "batch"}},
    )
    seeded(6)
    export(
        YoloV8Tiny(),
        (torch.randn(1, 3, 128, 160),),
        out / "yolov8_tiny.onnx",
        ["images"],
        ["output0"],
        {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 2: "anchors"}},
        post=constants_to_initializers,
    )
    seeded(7)
    export(
        DbNetTiny(),
        (torch.randn(1, 3, 96, 128),),
        out / "dbnet_tiny.onnx",
        ["x"],
        ["maps"],
        {
            "x": {0: "p2o.DynamicDimension.0", 2: "p2o.DynamicDimension.1", 3: "p2o.DynamicDimension.2"},
            "maps": {0: "p2o.DynamicDimension.0", 2: "p2o.DynamicDimension.1", 3: "p2o.DynamicDimension.2"},
        },
    )
    seeded(8)
    export(
        CtcRecognizer(),
        (torch.randn(1, 3, 48, 160),),
        out / "ctc_recognizer.onnx",
        ["x"],
        ["probs"],
        {"x": {0: "batch", 3: "width"}, "probs": {0: "batch", 1: "steps"}},
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/corpus")
