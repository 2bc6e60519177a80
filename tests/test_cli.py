"""The `package-for-web` command: exit codes and messages a user sees."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from onnx import TensorProto, helper
from test_verify import runtime_table_gather_model, scale_weights

from wasm_runtime import zoo
from wasm_runtime.cli import main
from wasm_runtime.errors import BundleError
from wasm_runtime.host import HostSession
from wasm_runtime.verify import reference_outputs


@pytest.fixture(scope="module")
def squeezenet_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "sq.onnx"
    zoo.save(zoo.squeezenet1_1(image_size=64, num_classes=10), path)
    return path


def test_package_and_verify(squeezenet_path, tmp_path, capsys):
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verify [simd] logits: max err" in out and "verify [relaxed] logits: max err" in out and "FAIL" not in out
    assert "input: image-like: standard normal" in out
    assert "arena peak" in out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "weights.bin",
        "optimization.json",
        *(f"kernels-{v}.wasm" for v in ("simd", "relaxed", "simd-mt", "relaxed-mt")),
    }
    # only the kernels this model calls are exported
    # only what the steps and the load-time init steps call
    called = {s["kernel"] for s in manifest["steps"] + manifest["init"]}
    assert manifest["kernels"]["exports"] == sorted(called)
    assert "f32_gemm" not in manifest["kernels"]["exports"] and "f32_softmax" not in manifest["kernels"]["exports"]


@pytest.fixture
def after_packaging(monkeypatch):
    """after_packaging(fn): the CLI's package step then runs fn(bundle_dir), before --verify looks at it."""
    import wasm_runtime.package as package_module

    def install(fn):
        real = package_module.package

        def package_then(*args, **kwargs):
            result = real(*args, **kwargs)
            fn(result.out_dir)
            return result

        monkeypatch.setattr(package_module, "package", package_then)

    return install


def test_verify_exits_1_on_slightly_wrong_weights(squeezenet_path, tmp_path, capsys, after_packaging):
    # 73 of its 728k weights scaled by 1.01 move the logits by 5e-4 (7e-4 of their scale)
    after_packaging(lambda bundle: scale_weights(bundle, every=10000))
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b"), "--verify"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "verification failed" in captured.err


def test_verify_exits_1_when_the_bundle_traps(squeezenet_path, tmp_path, capsys, after_packaging):
    def wild_pointer(bundle):
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["steps"][-1]["args"][0] = 2**31 - 64
        (bundle / "manifest.json").write_text(json.dumps(manifest))

    after_packaging(wild_pointer)
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b"), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "verify [simd] the bundle failed where onnxruntime ran: kernel" in out and "out of bounds" in out


def test_verify_exits_2_when_onnxruntime_rejects_the_inputs(tmp_path, capsys):
    path = tmp_path / "gather.onnx"
    path.write_bytes(runtime_table_gather_model().SerializeToString())
    assert main([str(path), "-o", str(tmp_path / "b"), "--verify"]) == 2
    err = capsys.readouterr().err
    assert "cannot verify: onnxruntime rejects the generated inputs at " in err
    assert "give your own inputs with --inputs FILE.npz" in err
    # with inputs onnxruntime takes, the same bundle verifies
    table = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    np.savez(tmp_path / "in.npz", table=table, ids=np.array([3, 0, 1, 1, 2, 3], np.int64))
    assert main([str(path), "-o", str(tmp_path / "b"), "--verify", "--inputs", str(tmp_path / "in.npz")]) == 0
    assert "verify [simd] y: max err" in capsys.readouterr().out


def test_inputs_file_errors_exit_2(squeezenet_path, tmp_path, capsys):
    npz = str(tmp_path / "in.npz")
    np.savez(npz, image=np.zeros((1, 3, 64, 64), np.float32))
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b"), "--verify", "--inputs", npz]) == 2
    err = capsys.readouterr().err
    assert "the model's inputs are ['input']; missing ['input']; not inputs of the model ['image']" in err
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b"), "--inputs", npz]) == 2
    assert "--inputs is for --verify" in capsys.readouterr().err


def test_internal_error_exits_3_with_the_traceback_in_a_log(squeezenet_path, tmp_path, capsys, monkeypatch):
    import wasm_runtime.package as package_module

    def broken(*args, **kwargs):
        return {}["no such key"]

    monkeypatch.setattr(package_module, "package", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("package-for-web: internal error: KeyError: 'no such key'")
    (log,) = tmp_path.glob("package-for-web-*.log")
    assert str(log) in err
    assert "Traceback" in log.read_text() and "in broken" in log.read_text()


def test_no_traceback_on_stderr_whatever_fails(squeezenet_path, tmp_path):
    """In a real process: an internal error (3) and onnxruntime rejecting the inputs (2) each print only
    the CLI's own lines, no Python traceback and no onnxruntime log."""
    broken = (
        "import sys, wasm_runtime.package as p; p.package = lambda *a, **k: 1 / 0; "
        "from wasm_runtime.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", broken, str(squeezenet_path), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert "ZeroDivisionError" in proc.stderr and str(tmp_path) in proc.stderr

    path = tmp_path / "gather.onnx"
    path.write_bytes(runtime_table_gather_model().SerializeToString())
    proc = subprocess.run(
        [sys.executable, "-m", "wasm_runtime.cli", str(path), "-o", str(tmp_path / "p"), "--verify"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "onnxruntime:" not in proc.stderr
    assert all(line.startswith("package-for-web: cannot verify:") for line in proc.stderr.splitlines())


def test_unsupported_op_exits_nonzero_naming_op_and_node(tmp_path, capsys):
    # DFT: a signal-processing op nobody plans to support
    nodes = [helper.make_node("DFT", ["x"], ["y"], name="the_dft"), helper.make_node("Relu", ["y"], ["z"], name="r")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 1])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8, 2])],
    )
    path = tmp_path / "dft.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert main([str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "DFT (first used by node 'the_dft')" in err
    assert not (tmp_path / "out").exists()


def test_malformed_model_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00garbage" * 10)
    proc = subprocess.run(
        [sys.executable, "-m", "wasm_runtime.cli", str(path), "-o", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "not a valid ONNX model" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_shape_flag(squeezenet_path, tmp_path, capsys):
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b"), "--input-shape", "input:1,3"]) == 2
    assert "expected NAME=D1,D2" in capsys.readouterr().err


def test_input_shape_flag_fixes_symbolic_batch(tmp_path):
    model = zoo.squeezenet1_1(image_size=64, num_classes=10)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    path = tmp_path / "dyn.onnx"
    zoo.save(model, path)
    assert main([str(path), "-o", str(tmp_path / "b3"), "--input-shape", "input=3,3,64,64", "--verify"]) == 0
    assert HostSession(tmp_path / "b3").inputs[0]["shape"] == [3, 3, 64, 64]
    # without the flag, the batch stays symbolic: one bundle for every batch size
    assert main([str(path), "-o", str(tmp_path / "dyn")]) == 0
    session = HostSession(tmp_path / "dyn")
    assert session.inputs[0]["shape"][1:] == [3, 64, 64]
    for batch in (1, 2, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 64, 64)).astype(np.float32)
        ref = reference_outputs(model, {"input": x})
        got = session.run({"input": x})
        for name, r in ref.items():
            assert got[name].shape == r.shape
            assert np.abs(got[name] - r).max() <= 1e-4 * np.abs(r).max()


def test_corrupt_bundle_is_detected(squeezenet_path, tmp_path):
    assert main([str(squeezenet_path), "-o", str(tmp_path / "b")]) == 0
    weights = tmp_path / "b" / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        HostSession(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "manifest.json", tmp_path / "m.json")
    manifest = json.loads((tmp_path / "m.json").read_text())
    manifest["version"] = 99
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="version 99 is not supported"):
        HostSession(tmp_path / "b", check_integrity=False)


def test_demo_builds_default_bundle(tmp_path):
    assert main(["demo", "--no-serve", "--dist", str(tmp_path)]) == 0
    session = HostSession(tmp_path / "mobilenetv2")
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert session.run({"input": x})["logits"].shape == (1, 1000)


def test_serve_refuses_missing_directory(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_max_memory_refuses_a_larger_plan(tmp_path, capsys):
    path = tmp_path / "big.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000, 1000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000, 1000])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    path.write_bytes(model.SerializeToString())
    assert main([str(path), "-o", str(tmp_path / "b"), "--max-memory", "4MiB"]) == 2
    assert "more than the 4 MiB allowed" in capsys.readouterr().err
    assert main([str(path), "-o", str(tmp_path / "b"), "--max-memory", "1GiB"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "-o", str(tmp_path / "b"), "--max-memory", "lots"])
    assert exit_info.value.code == 2 and "'lots' is not a size such as 512MiB" in capsys.readouterr().err


def test_verify_fits_under_an_address_space_limit(squeezenet_path, tmp_path):
    """--verify holds two sessions; each used to reserve 4 GiB + guard of address space (wasmtime's default to
    elide bounds checks), so it failed under an 8 GB limit even on SqueezeNet. Under 6 GB it verifies."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "wasm_runtime.cli", str(squeezenet_path), "-o", str(tmp_path / "b"), "--verify"],
        capture_output=True,
        text=True,
        preexec_fn=limit,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verify [relaxed] logits" in proc.stdout


def _path_mistakes(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read: the paths are refused first")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {
        "model is a directory": ([str(tmp_path), "-o", str(tmp_path / "b")], "is a directory"),
        "model missing": ([str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "b")], "no such model file"),
        "-o is an existing file": ([str(model), "-o", str(a_file)], "exists and is not a directory"),
        "-o under a file": ([str(model), "-o", str(a_file / "b")], "is not a directory"),
        # /proc refuses new entries even to root, whom permission bits do not stop
        "-o in an unwritable parent": ([str(model), "-o", "/proc/no_such_dir/b"], "cannot write in /proc"),
    }


PATH_MISTAKES = ["model is a directory", "model missing", "-o is an existing file", "-o under a file",
                 "-o in an unwritable parent"]


@pytest.mark.parametrize("case", PATH_MISTAKES)
def test_path_mistakes_refused_before_any_work(case, tmp_path, capsys, monkeypatch):
    import wasm_runtime.package

    def no_work(*args, **kwargs):
        raise AssertionError("package() ran before the path mistake was reported")

    monkeypatch.setattr(wasm_runtime.package, "package", no_work)
    argv, message = _path_mistakes(tmp_path)[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_unreadable_model_refused(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    model.chmod(0)
    assert main([str(model), "-o", str(tmp_path / "b")]) == 2
    assert "cannot read the model file" in capsys.readouterr().err


def _tiny_conv_model(path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 3, 3], np.linspace(-1, 1, 18, dtype=np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])], initializer=[w],
    )
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)


def _run_cli(args, cwd, stderr):
    return subprocess.run([sys.executable, "-m", "wasm_runtime", *args], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=stderr, timeout=300)


def test_progress_only_on_a_tty_and_quiet_is_silent(tmp_path):
    _tiny_conv_model(tmp_path / "m.onnx")
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    piped = _run_cli([str(tmp_path / "m.onnx"), "-o", str(tmp_path / "a"), "--verify"], cwd, subprocess.PIPE)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b"" and b"\r" not in piped.stdout and b"packaged" in piped.stdout

    quiet = _run_cli([str(tmp_path / "m.onnx"), "-o", str(tmp_path / "q"), "--verify", "-q"], cwd, subprocess.PIPE)
    assert quiet.returncode == 0 and quiet.stdout == b"" and quiet.stderr == b"", quiet
    assert (tmp_path / "q" / "manifest.json").is_file()

    import pty

    leader, follower = pty.openpty()
    try:
        on_tty = _run_cli([str(tmp_path / "m.onnx"), "-o", str(tmp_path / "t"), "--verify"], cwd, follower)
        os.close(follower)
        follower = None
        seen = b""
        with contextlib.suppress(OSError):  # EIO once the child's end is closed and the output drained
            while chunk := os.read(leader, 4096):
                seen += chunk
    finally:
        os.close(leader)
        if follower is not None:
            os.close(follower)
    assert on_tty.returncode == 0
    # the line is erased at the end of each phase; a phase shorter than one tick shows nothing but the erase
    assert b"\r\x1b[K" in seen
