"""The built wheel is the product: installed outside the checkout, it packages and verifies a model with
`python -m wasm_runtime` (kernels compiled from the C sources it carries) and its server finds web/ and demos/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent


def conv_relu_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype("float32"), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def run(cmd, cwd, env=None, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installed_outside_the_checkout(tmp_path):
    # build isolation fetches a setuptools new enough for pyproject's [tool.setuptools] tables (the test venv's
    # may be older); --no-deps keeps it to this one project
    # from a copy: setuptools builds in-tree, and a build/ left in the checkout by an earlier build would hand the
    # wheel files that the current configuration leaves out
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("wasm_runtime", "server", "kernels_wasm", "web", "demos"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)], tmp_path)
    (wheel,) = (tmp_path / "dist").glob("wasm_runtime-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in sorted(p.parent for p in (REPO / "wasm_runtime").rglob("__init__.py")):
        assert f"{package.relative_to(REPO).as_posix()}/__init__.py" in names, f"{package} missing from the wheel"
    for top in ("kernels_wasm", "web", "demos"):
        for f in (REPO / top).iterdir():
            assert f"wasm_runtime/_data/{top}/{f.name}" in names, f"{top}/{f.name} missing from the wheel"

    # a fresh venv that sees the test venv's dependencies (onnx, onnxruntime, ziglang...) only after its own
    # site-packages, so the wheel's wasm_runtime wins over the checkout's editable install
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip()
    Path(site, "test_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)], tmp_path)

    work = tmp_path / "elsewhere"
    (work / "bundle_root").mkdir(parents=True)
    onnx.save(conv_relu_model(), work / "tiny.onnx")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WASM_RUNTIME_KERNELS")}
    where = run([str(py), "-c", "import wasm_runtime, server; print(wasm_runtime.__file__, server.__file__)"],
                work, env)
    assert str(REPO) not in where.stdout and str(env_dir) in where.stdout, where.stdout
    out = run([str(py), "-m", "wasm_runtime", "tiny.onnx", "-o", "bundle", "--verify"], work, env).stdout
    assert "verify [simd] y: max err" in out and "FAIL" not in out, out
    assert (work / "bundle" / "manifest.json").is_file()

    served = run([str(py), "-c", """
from server.app import create_app
c = create_app("bundle_root").test_client()
for url in ("/runtime/index.js", "/demos/index.html", "/models/index.json"):
    r = c.get(url)
    print(url, r.status_code, len(r.data))
"""], work, env).stdout
    for url in ("/runtime/index.js", "/demos/index.html"):
        assert f"{url} 200" in served, served
