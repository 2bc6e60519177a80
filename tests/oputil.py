"""Helpers shared by test_kernels.py and test_ops.py: a direct wasmtime harness for kernel modules and
tiny-ONNX-model builders run through the whole package -> HostSession pipeline."""

from __future__ import annotations

import ctypes
import inspect
from pathlib import Path

import numpy as np
import onnx
import pytest
import wasmtime
from onnx import helper, numpy_helper

from wasm_runtime.bundle import _engine_config
from wasm_runtime.host import HostSession
from wasm_runtime.kernels import build_module
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs

VARIANTS = ("simd", "relaxed")
ALIGN = 64

# ---------------------------------------------------------------------------------------------------------
# kernels called directly


class KernelModule:
    """One instance of a kernel module on its own memory, with a bump allocator above `__heap_base`.

    `put(array)` copies an array in at a 64-aligned address; `alloc(nbytes)` reserves (and poisons with
    NaN bytes, so a kernel that leaves an element unwritten shows up) an output; `get` reads back;
    `call(name, *args)` converts each argument to the export's parameter type; `reset()` frees everything."""

    def __init__(self, exports: list[str], variant: str, pages: int = 256):
        engine = wasmtime.Engine(_engine_config())
        self.store = wasmtime.Store(engine)
        module = wasmtime.Module(engine, build_module(exports, variant))
        self.memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, pages)))
        instance = wasmtime.Instance(self.store, module, [self.memory])
        self.exports = instance.exports(self.store)
        size = self.memory.data_len(self.store)
        ptr = ctypes.cast(self.memory.data_ptr(self.store), ctypes.POINTER(ctypes.c_ubyte))
        self.mem = np.ctypeslib.as_array(ptr, shape=(size,))
        self.base = _align(self.exports["__heap_base"].value(self.store))
        self.top = self.base
        self.variant = variant
        self._params: dict[str, list] = {}

    def reset(self) -> None:
        self.top = self.base

    def alloc(self, nbytes: int, poison: int = 0xFF) -> int:
        addr = self.top
        self.top = _align(addr + max(int(nbytes), 1))
        if self.top > self.mem.size:
            raise MemoryError(f"kernel test memory exhausted ({self.top} > {self.mem.size})")
        self.mem[addr : addr + nbytes] = poison  # 0xFFFFFFFF is a NaN as float32
        return addr

    def put(self, array) -> int:
        data = np.ascontiguousarray(array)
        addr = self.alloc(data.nbytes)
        self.mem[addr : addr + data.nbytes] = data.reshape(-1).view(np.uint8)
        return addr

    def get(self, addr: int, shape, dtype=np.float32) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64))
        return self.mem[addr : addr + n * dtype.itemsize].view(dtype).reshape(shape).copy()

    def call(self, name: str, *args):
        func = self.exports[name]
        params = self._params.get(name)
        if params is None:
            params = self._params[name] = func.type(self.store).params
        assert len(params) == len(args), f"{name} takes {len(params)} args, got {len(args)}"
        conv = [float(a) if p == wasmtime.ValType.f32() else int(a) for p, a in zip(params, args, strict=True)]
        return func(self.store, *conv)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ---------------------------------------------------------------------------------------------------------
# tiny ONNX models


def randn(shape, seed=0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def tensor_info(name: str, shape, dtype=np.float32) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)


def make_model(
    nodes,
    inputs: dict[str, tuple],
    outputs,
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 13,
) -> onnx.ModelProto:
    """inputs: name -> shape (float32) or (shape, dtype); outputs: names, typed by onnx shape inference.
    Initializers are ONNX constants (weights). Unnamed nodes are named after their op type and position."""
    nodes = nodes if isinstance(nodes, list) else [nodes]
    ins = []
    for name, spec in inputs.items():
        has_dtype = isinstance(spec, tuple) and len(spec) == 2 and not isinstance(spec[1], int)
        shape, dtype = spec if has_dtype else (spec, np.float32)
        ins.append(tensor_info(name, list(shape), dtype))
    outs = [helper.make_empty_tensor_value_info(name) for name in outputs]
    for i, node in enumerate(nodes):
        if not node.name:
            node.name = f"{node.op_type.lower()}{i}"
    graph = helper.make_graph(
        nodes,
        "t",
        ins,
        outs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    # the checker wants a shape on every graph output: take the ones onnx infers
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = {v.name: v.type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for out in model.graph.output:
        if not out.type.HasField("tensor_type") and out.name in types:
            out.type.CopyFrom(types[out.name])
    return model


def single(
    op: str,
    inputs: dict,
    attrs: dict | None = None,
    inits: dict | None = None,
    opset: int = 13,
    outputs=("y",),
    input_names=None,
) -> onnx.ModelProto:
    """One node whose inputs are the graph inputs then the initializers (in dict order), unless input_names
    gives the order explicitly ("" for an omitted optional input)."""
    names = input_names if input_names is not None else [*inputs, *(inits or {})]
    node = helper.make_node(op, list(names), list(outputs), name=op.lower(), **(attrs or {}))
    return make_model([node], inputs, list(outputs), inits, opset)


def feeds_for(model: onnx.ModelProto, seed: int = 0, positive=()) -> dict[str, np.ndarray]:
    """Seeded N(0, 1) feeds for every graph input; inputs named in `positive` get |N(0,1)| + 0.5 (divisors)."""
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        x = rng.standard_normal(shape)
        if inp.name in positive:
            x = np.abs(x) + 0.5
        if np.dtype(dtype).kind in "iu":
            x = rng.integers(-1000 if np.dtype(dtype).kind == "i" else 0, 1000, shape)
        feeds[inp.name] = np.asarray(x).astype(dtype)
    return feeds


def max_rel(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref|; inf when ours holds a nan/inf (no case expects one)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    if ours.size == 0:
        return 0.0
    if not np.isfinite(ours).all():
        return float("inf")
    scale = np.abs(ref).max()
    diff = np.abs(ours - ref).max()
    return float(diff / scale) if scale > 0 else float(diff)


def package_kwargs(opt_level: int | None) -> dict:
    """package() keyword arguments for an optimizer level (None: package's default)."""
    if opt_level is None:
        return {}
    if "opt_level" not in inspect.signature(package).parameters:
        pytest.skip("package() takes no opt_level")
    return {"opt_level": opt_level}


def run_bundle(
    model: onnx.ModelProto, out_dir: Path, feeds: dict[str, np.ndarray], variants=VARIANTS, opt_level: int | None = None
):
    """package + run in every variant, and the simd variant again with its plan split for 3 threads (the
    chunks the browser's worker pool would run at once); returns (manifest, {variant: outputs})."""
    result = package(model, out_dir, **package_kwargs(opt_level))
    outs = {}
    for variant in variants:
        outs[variant] = HostSession(out_dir, variant).run(feeds)
    outs["simd, 3 threads"] = HostSession(out_dir, "simd", threads=3).run(feeds)
    return result.manifest, outs


def check_model(
    model: onnx.ModelProto,
    out_dir: Path,
    tol: float = 1e-5,
    seed: int = 0,
    positive=(),
    feeds=None,
    expect=None,
    ort: bool = True,
    opt_level: int | None = None,
):
    """Package `model`, run both variants, compare every output with onnxruntime (and `expect`, a dict of
    callables feeds -> numpy reference, when given; with ort=False numpy is the only reference).
    Returns the manifest."""
    feeds = feeds if feeds is not None else feeds_for(model, seed, positive)
    numpy_ref = {name: np.asarray(fn(feeds)) for name, fn in (expect or {}).items()}
    if ort:
        ref = reference_outputs(model, feeds)
    else:
        assert set(numpy_ref) == {o.name for o in model.graph.output}, "without onnxruntime, numpy must cover all"
        ref = {name: r.astype(np.float32) for name, r in numpy_ref.items()}
    manifest, outs = run_bundle(model, out_dir, feeds, opt_level=opt_level)
    for variant, got in outs.items():
        assert set(got) == set(ref), (set(got), set(ref))
        for name, r in ref.items():
            assert got[name].dtype == r.dtype, f"{variant}: output {name!r} is {got[name].dtype}, ref {r.dtype}"
            err = max_rel(got[name], r)
            assert err <= tol, f"{variant}: output {name!r} max rel err {err:.3g} > {tol:g} (vs onnxruntime)"
            if name in numpy_ref:
                err = max_rel(got[name], numpy_ref[name])
                assert err <= tol, f"{variant}: output {name!r} max rel err {err:.3g} > {tol:g} (vs numpy)"
    return manifest
