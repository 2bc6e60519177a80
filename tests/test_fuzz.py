"""Seeded mutants of small models through the CLI, as a careless user or an attacker would bring them: every
mutant exits 0 or 2 (never a traceback, exit 3), and every bundle written (exit 0) agrees with onnxruntime,
or onnxruntime refuses that model too, and gives the same bits for the same inputs after a run with others.
Structural mutants change one thing a model can get wrong (an attribute, a dim, a dtype, a name, an input,
an op); byte mutants flip or cut the serialized file.

The mutants are deterministic (seeded), so a failure names one that can be rebuilt: `mutants(seed)[index]`."""

from __future__ import annotations

import contextlib
import io
import random

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime.cli import main
from wasm_runtime.host import HostSession
from wasm_runtime.verify import check_output

STRUCTURAL = 240
BYTES = 60


def _base_models() -> list[onnx.ModelProto]:
    rng = np.random.default_rng(0)

    def model(nodes, inputs, outputs, inits):
        tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()]
        graph = helper.make_graph(nodes, "g", inputs, outputs, tensors)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    cnn = model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
            helper.make_node("BatchNormalization", ["c", "s", "o", "m", "v"], ["n"]),
            helper.make_node("Relu", ["n"], ["r"]),
            helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Flatten", ["p"], ["f"], axis=1),
            helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        {"w": f32(4, 3, 3, 3), "b": f32(4), "s": f32(4), "o": f32(4), "m": f32(4),
         "v": np.abs(f32(4)) + 0.5, "fc": f32(5, 64), "fb": f32(5)},  # fmt: skip
    )
    shapes = model(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Reshape", ["t", "shape"], ["r"]),
            helper.make_node("Slice", ["r", "st", "en", "ax"], ["s"]),
            helper.make_node("Concat", ["s", "s"], ["c"], axis=1),
            helper.make_node("Gather", ["c", "idx"], ["g"], axis=1),
            helper.make_node("Softmax", ["g"], ["y"], axis=-1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        {"shape": np.array([2, 12], np.int64), "st": np.array([1], np.int64), "en": np.array([7], np.int64),
         "ax": np.array([1], np.int64), "idx": np.array([0, 5, 11], np.int64)},  # fmt: skip
    )
    mlp = model(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Add", ["h", "b1"], ["a"]),
            helper.make_node("Sigmoid", ["a"], ["s"]),
            helper.make_node("MatMul", ["s", "w2"], ["o"]),
            helper.make_node("ReduceMean", ["o"], ["y"], axes=[1], keepdims=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 1])],
        {"w1": f32(6, 8), "b1": f32(8), "w2": f32(8, 4)},
    )
    return [cnn, shapes, mlp]


_OPS = ["Relu", "Sigmoid", "Neg", "Abs", "Exp", "Transpose", "Softmax", "Identity", "Add", "Mul", "Concat", "Flatten"]
_DTYPES = [0, 99, TensorProto.DOUBLE, TensorProto.INT32, TensorProto.INT64, TensorProto.FLOAT16, TensorProto.BOOL]


def _mutate(model: onnx.ModelProto, rnd: random.Random) -> tuple[str, onnx.ModelProto | bytes]:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    kind = rnd.choice(
        ["attr_int", "attr_ints", "dim", "dtype", "init_dims", "init_data", "rename", "drop_input", "op",
         "drop_node", "dup_output", "opset", "utf8", "init_dtype"]
    )  # fmt: skip
    node = rnd.choice(list(g.node))
    if kind in ("attr_int", "attr_ints") and node.attribute:
        a = rnd.choice(list(node.attribute))
        if a.type == onnx.AttributeProto.INT:
            a.i = rnd.choice([-3, -1, 0, 2, 5, 1 << 20])
        elif a.type == onnx.AttributeProto.INTS and a.ints:
            values = list(a.ints)
            choice = rnd.randrange(3)
            if choice == 0:
                values = values[:-1] or [7]
            elif choice == 1:
                values[rnd.randrange(len(values))] = rnd.choice([-2, 0, 3, 9, 1 << 30])
            else:
                rnd.shuffle(values)
                values.append(values[0])
            del a.ints[:]
            a.ints.extend(values)
        return f"{kind} {node.op_type}.{a.name}", m
    if kind == "dim":
        vi = rnd.choice(list(g.input) + list(g.output))
        dims = vi.type.tensor_type.shape.dim
        d = dims[rnd.randrange(len(dims))]
        d.dim_value = rnd.choice([0, 1, 7, 1 << 31, 1 << 40])
        return f"dim {vi.name}", m
    if kind == "dtype":
        vi = rnd.choice(list(g.input) + list(g.output))
        vi.type.tensor_type.elem_type = rnd.choice(_DTYPES)
        return f"dtype {vi.name}", m
    if kind in ("init_dims", "init_data", "init_dtype") and g.initializer:
        init = rnd.choice(list(g.initializer))
        if kind == "init_dims":
            init.dims[rnd.randrange(len(init.dims))] = rnd.choice([0, 1, 3, 1 << 31]) if init.dims else 0
        elif kind == "init_data":
            raw = bytearray(init.raw_data)
            cut = rnd.randrange(max(1, len(raw)))
            init.raw_data = bytes(raw[:cut])
        else:
            init.data_type = rnd.choice(_DTYPES)
        return f"{kind} {init.name}", m
    if kind == "rename" and node.input:
        i = rnd.randrange(len(node.input))
        node.input[i] = rnd.choice(["", "nowhere", *[n.output[0] for n in g.node]])
        return f"rename {node.op_type} input {i}", m
    if kind == "drop_input" and len(node.input) > 1:
        del node.input[rnd.randrange(len(node.input))]
        return f"drop_input {node.op_type}", m
    if kind == "op":
        old = node.op_type
        node.op_type = rnd.choice(_OPS)
        return f"op {old}->{node.op_type}", m
    if kind == "drop_node" and len(g.node) > 1:
        g.node.remove(node)
        return f"drop_node {node.op_type}", m
    if kind == "dup_output":
        other = rnd.choice(list(g.node))
        node.output[0] = other.output[0]
        return f"dup_output {node.op_type}", m
    if kind == "opset":
        m.opset_import[0].version = rnd.choice([1, 6, 9, 11, 13, 30])
        return f"opset {m.opset_import[0].version}", m
    if kind == "utf8":  # names with invalid UTF-8: protobuf writes them from bytes only
        name = node.output[0].encode()
        return "utf8", m.SerializeToString().replace(name, name[:-1] + b"\xff")
    return "none", m


def mutants(seed: int = 0) -> list[tuple[str, bytes]]:
    """(what changed, model bytes): STRUCTURAL structural and BYTES byte-level mutants of the base models."""
    rnd = random.Random(seed)
    bases = _base_models()
    out = []
    for k in range(STRUCTURAL):
        base = bases[k % len(bases)]
        try:
            what, m = _mutate(base, rnd)
            data = m if isinstance(m, bytes) else m.SerializeToString()
        except (ValueError, UnicodeEncodeError, TypeError) as exc:  # protobuf refuses to write it: skip
            what, data = f"unwritable ({type(exc).__name__})", base.SerializeToString()
        out.append((f"#{k} {what}", data))
    for k in range(BYTES):
        data = bytearray(bases[k % len(bases)].SerializeToString())
        if k % 3 == 0:
            data = data[: rnd.randrange(len(data))]
            what = "truncated"
        else:
            for _ in range(rnd.randint(1, 8)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            what = "bytes flipped"
        out.append((f"#{STRUCTURAL + k} {what}", bytes(data)))
    return out


def _onnxruntime(data: bytes, feeds: dict):
    """onnxruntime's outputs for the mutant ({name: array}), or None when it refuses the model or the run."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds), strict=True))
    except Exception:  # noqa: BLE001 - its own Fail/InvalidGraph/... types
        return None


@pytest.mark.parametrize("chunk", range(4))
def test_mutants_exit_0_or_2_and_bundles_agree_with_onnxruntime(chunk, tmp_path):
    problems = []
    everything = mutants(0)
    for what, data in everything[chunk::4]:
        path = tmp_path / "m.onnx"
        path.write_bytes(data)
        out = tmp_path / "b"
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main([str(path), "-o", str(out), "--force"])
        if rc not in (0, 2):
            problems.append(f"{what}: exit {rc}: {err.getvalue().strip()[:300]}")
            continue
        if rc == 2:
            lines = err.getvalue().strip().splitlines()
            if len(lines) != 1 or not lines[0].startswith("package-for-web: error:"):
                problems.append(f"{what}: exit 2 without one error line: {err.getvalue()[:300]}")
            continue
        session = HostSession(out)
        rng = np.random.default_rng(1)
        feeds = {e["name"]: rng.standard_normal(e["shape"]).astype(e["dtype"]) for e in session.inputs}
        ref = _onnxruntime(data, feeds)
        if ref is None:
            continue  # onnxruntime refuses this model: our bundle is at least not a contradiction of it
        try:
            got = session.run(feeds)
            # a run must not read what an earlier run left in memory: the same inputs after other inputs
            # give the same bits
            session.run({k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in feeds.items()})
            again = session.run(feeds)
        except RuntimeError as exc:
            problems.append(f"{what}: onnxruntime runs it, the bundle fails: {exc}")
            continue
        for name, expected in ref.items():
            check = check_output(name, got[name], expected, None)
            if not check.ok:
                problems.append(f"{what}: {check.format()}")
            if not np.array_equal(got[name], again[name], equal_nan=True):
                problems.append(f"{what}: output {name!r} changes after a run with other inputs (stale memory)")
    assert not problems, f"{len(problems)} mutants:\n" + "\n".join(problems)
