"""Fingerprints of the plans package() makes for a fixed set of models, so a refactor can prove it changed no plan.

A fingerprint is the sha256 of the manifest as canonical JSON (sorted keys), without the hashes of the kernel
modules (their bytes change when kernel sources move between files, the plan does not), plus the sha256 of every
weights file (the prepacked weights are part of the plan). tests/test_plan_hashes.py compares them with
tests/data/plan_hashes.json; after a change that is meant to change plans, record them again:

    python -m tests.plan_hashes --write
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import onnx

DATA = Path(__file__).parent / "data"
RECORD = DATA / "plan_hashes.json"
LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def cases() -> dict[str, tuple]:
    """name -> (model loader, package() keyword arguments)."""
    from wasm_runtime import zoo

    out: dict[str, tuple] = {}
    for name in sorted(zoo.BUILDERS):
        out[f"zoo/{name}"] = (zoo.BUILDERS[name], {})
        out[f"zoo/{name}/webgl"] = (zoo.BUILDERS[name], {"backend": "webgl"})
    for path in sorted(LIGHT_DIR.glob("light_*.onnx")):
        out[f"light/{path.stem[len('light_') :]}"] = (lambda p=path: onnx.load(str(p)), {})
    out["light/squeezenet/webgl"] = (lambda: onnx.load(str(LIGHT_DIR / "light_squeezenet.onnx")), {"backend": "webgl"})
    out["tiny_bert"] = (lambda: onnx.load(str(DATA / "tiny_bert.onnx")), {})
    out["tiny_bert/fixed"] = (
        lambda: onnx.load(str(DATA / "tiny_bert.onnx")),
        {"input_shapes": {n: [1, 16] for n in ("input_ids", "attention_mask", "token_type_ids")}},
    )
    from tests import corpus_models
    from tests.test_webgl_mixed import gpu_wasm_gpu

    out["webgl_mixed"] = (gpu_wasm_gpu, {"backend": "webgl"})
    for name, build in sorted(corpus_models.BUILDERS.items()):
        out[f"corpus/{name}"] = (build, {})
    for path in sorted((DATA / "corpus").glob("*.onnx")):
        out[f"corpus/{path.stem}"] = (lambda p=path: onnx.load(str(p)), {})
    return out


def fingerprint(out_dir: Path) -> str:
    """sha256 of the bundle in out_dir: its manifest(s) without the kernel modules' hashes, and its weights."""
    h = hashlib.sha256()
    for manifest_path in sorted(out_dir.rglob("manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        files = manifest.pop("files", {})
        h.update(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
        for name in sorted(files):
            if not name.endswith(".wasm"):
                h.update(name.encode())
                h.update(hashlib.sha256((manifest_path.parent / name).read_bytes()).digest())
    return h.hexdigest()


def compute(name: str) -> str:
    from wasm_runtime.errors import PackageError
    from wasm_runtime.package import package

    load, kwargs = cases()[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundle"
        try:
            package(load(), out, **kwargs)
        except PackageError as err:  # a refusal is an outcome too: the same one, in the same words
            return "refused: " + str(err).replace(tmp, "TMP")
        return fingerprint(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"record the fingerprints in {RECORD}")
    ap.add_argument("names", nargs="*", help="cases to compute (default all)")
    args = ap.parse_args(argv)
    names = args.names or list(cases())
    got = {name: compute(name) for name in names}
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    for name, value in got.items():
        print(f"{'same' if recorded.get(name) == value else 'DIFFERENT':9} {name} {value}")
    if args.write:
        RECORD.write_text(json.dumps({**recorded, **got}, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
