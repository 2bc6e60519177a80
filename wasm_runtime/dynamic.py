"""Dynamic shapes: one bundle for every value of the model's symbolic input dims (batch, sequence length...).

For the ops we lower, every number in a plan (kernel arguments, tensor sizes, byte offsets into a tensor,
split sizes, the int32 index layouts some kernels read) is a polynomial in the symbolic dims: sizes are
products of dims, strides products of trailing dims. So the tooling packages the model at a grid of probe
values (each symbol at 3 values, which determines every polynomial of degree <= 2 per symbol), solves for
each number's integer coefficients, and checks the fitted plan against packagings at other values. The plan
must have the same structure at every probe (the same kernels on the same tensors); anything that is not a
polynomial (a floor division by a stride, an algorithm switch at some size, a float constant whose contents
depend on a dim) fails packaging naming the node, rather than running wrong at some other size.

The bundle stores the polynomials ("formulas"); at run time an executor binds each symbol from the input
shapes, evaluates the formulas, places the arena (greedy by size on the concrete sizes) and writes the
int32 layouts that depend on dims into their slots: once per distinct input shape, then cached. Memory grows
when a shape needs more arena than the module has.

Memory of a dynamic bundle: memory_map.dynamic_map (the arena last, so that it can grow); the int32 layouts
with formulas ("params") are constants in the weights region, rewritten per input shape.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .errors import PackageError
from .lowering import Buf, Const, Derived, Scratch
from .memory_map import DESCRIPTOR_BYTES, dynamic_map
from .planner import place
from .polynomial import Poly, evaluate, fit_columns

DEGREE = 2  # per symbol
# probe values per symbol index: disjoint and not small, so that no two dims coincide by accident
FIT_VALUES = [(5, 7, 11), (13, 17, 19), (23, 29, 31), (37, 41, 43)]
CHECK_VALUES = [(6, 9), (14, 22), (24, 30), (38, 44)]


# ---------------------------------------------------------------------------------------------------------
# a packaging at concrete values, flattened into structure (must match) and numbers (fitted)


def symbols_of(model) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Named symbolic dims of the graph inputs in order of appearance, and an (input, axis) that binds each."""
    inits = {i.name for i in model.graph.initializer}
    names, bind = [], {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if not d.HasField("dim_value") and d.dim_param and d.dim_param not in bind:
                names.append(d.dim_param)
                bind[d.dim_param] = (inp.name, axis)
    return names, bind


def shapes_at(model, symbols: list[str], values: tuple[int, ...]) -> dict[str, list[int]]:
    env = dict(zip(symbols, values, strict=True))
    inits = {i.name for i in model.graph.initializer}
    shapes = {}
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if inp.name not in inits and any(not d.HasField("dim_value") for d in dims):
            shapes[inp.name] = [d.dim_value if d.HasField("dim_value") else env[d.dim_param] for d in dims]
    return shapes


@dataclass
class Flat:
    """One probe: `structure` must be equal at every probe; `numbers` (path -> int) become formulas;
    `arrays` (key -> array) are constants: equal at every probe (weights), or int arrays of equal shape
    whose elements become formulas (params)."""

    structure: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)  # path/key -> node name, for error messages


def flatten(graph, lowered, plan) -> Flat:
    f = Flat()
    root = plan.root
    f.structure.append(("aliases", sorted(lowered.aliases.items())))
    scratch_key = {}
    for i, step in enumerate(lowered.steps):
        kinds = []
        for j, a in enumerate(step.args):
            path = (i, j)
            f.where[path] = step.node
            if isinstance(a, Buf):
                key = root[a.name]
                data = graph.const(key)
                if data is not None:
                    f.arrays[("tensor", key)] = data
                    f.where[("tensor", key)] = step.node
                    kinds.append(("weight", key))
                else:
                    kinds.append(("arena", key))
                f.numbers[("off", *path)] = a.offset
            elif isinstance(a, Const):
                f.arrays[("const", *path)] = a.array
                f.where[("const", *path)] = step.node
                kinds.append(("const",))
            elif isinstance(a, Derived):  # computed at load time from shipped weights: shape-independent
                kinds.append(("derived", a.label))
            elif isinstance(a, Scratch):
                # one Scratch may serve several steps (an LSTM's gates at every time step): one arena item
                key = scratch_key.setdefault(id(a), ("scratch", *path))
                kinds.append(("arena", key))
                f.numbers[key] = a.nbytes
            elif a is None:
                kinds.append(("none",))
            elif isinstance(a, (float, np.floating)):
                kinds.append(("float", float(a)))
            else:
                kinds.append(("int",))
                f.numbers[("int", *path)] = int(a)
        sp = step.split
        split = None
        if sp is not None:
            split = (sp.count, sp.align, tuple(d[0] for d in sp.deltas))
            f.numbers[("units", i)] = sp.units
            for k, (_, delta) in enumerate(sp.deltas):
                f.numbers[("delta", i, k)] = delta
            f.where[("units", i)] = step.node
        guards = tuple((root[cond], bool(value)) for cond, value in step.guard)
        f.structure.append((step.kernel, step.node, step.op, tuple(kinds), split, (guards, step.fail)))
    # every value's shape: checked against the graph's own shape inference at sizes not probed (package.py)
    for name, v in graph.values.items():
        if v.shape is not None and not v.is_const:
            for d, n in enumerate(v.shape):
                if isinstance(n, int):
                    f.numbers[("shape", name, d)] = int(n)
    for item in plan.arena:
        key = scratch_key.get(item.key, item.key)
        f.structure.append(("life", key, item.first, item.last))
        f.numbers[("size", key)] = item.nbytes
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        for name in names:
            v = graph.values[name]
            key = root.get(name, name)
            f.structure.append((kind, name, v.dtype.name, len(v.shape), key))
            for d, n in enumerate(v.shape):
                f.numbers[(kind, name, d)] = int(n)
            if graph.const(key) is not None:
                f.arrays[("tensor", key)] = graph.const(key)
    for w in plan.weights:
        if w.fill:
            f.structure.append(("fill", w.key if isinstance(w.key, str) else None))
        if w.derived is not None:
            f.structure.append(("derived", w.derived.label, w.derived.kernel, w.derived.nbytes))
    return f


# ---------------------------------------------------------------------------------------------------------
# fitting


@dataclass
class Fitted:
    symbols: list[str]
    flat: Flat  # the first probe, for structure and constant arrays
    formulas: dict  # number path -> Poly (in the k-values: each symbol's size / its step)
    params: dict  # array key -> list[Poly] (int arrays whose elements depend on the dims)
    domains: list = field(default_factory=list)  # domain.Domain per symbol
    # (graph, lowered, plan, report, flat) packaged at the minimum when its plan is not the fitted one number
    # for number: then package.py runs both (package._check_minimum_by_running)
    minimum_probe: tuple | None = None

    def shape_formulas(self) -> dict:
        """(value name, axis) -> Poly for every value's dims (what check_shapes compares)."""
        return {(p[1], p[2]): f for p, f in self.formulas.items() if p[0] == "shape"}


def check_shapes(fitted: Fitted, ks: tuple[int, ...], shapes: dict) -> None:
    """The value shapes of an import (folding and shape inference only) at k-values `ks` must agree with the
    fitted formulas: a cheap check at many more sizes than full packagings allow."""
    symbols = fitted.symbols
    for (name, axis), poly in fitted.shape_formulas().items():
        shape = shapes.get(name)
        if shape is None or len(shape) <= axis:
            continue
        if shape[axis] != poly(ks):
            sizes = {s: d.step * k for s, d, k in zip(symbols, fitted.domains, ks, strict=True)}
            raise _fail(
                symbols,
                str(fitted.flat.where.get(("shape", name, axis), name)),
                f"tensor {name!r} has dim {axis} = {shape[axis]} at {sizes}, not the {poly(ks)} the plan's formula "
                "gives",
            )


def _fail(symbols, where: str, what: str) -> PackageError:
    return PackageError(
        f"node {where!r}: {what} with the symbolic dims ({', '.join(symbols)}), so no single plan serves "
        "every shape; fix the dims with --input-shape"
    )


def fit(
    symbols: list[str],
    points: list[tuple[int, ...]],
    flats: list[Flat],
    structure_only: bool = False,
    degrees: list[int] | None = None,
):
    """The formulas through the probes (points: k-values per symbol, the grid of fit_points(..., degrees)), or
    with structure_only just the check that the probes have the same structure (kernels, tensors, numbers)."""
    first = flats[0]
    for f in flats[1:]:
        if f.structure != first.structure:
            where = next(
                (a[1] for a, b in zip(first.structure, f.structure, strict=False) if a != b and len(a) > 2),
                "graph",
            )
            raise _fail(symbols, str(where), "the plan's kernels or tensors change")
        if set(f.numbers) != set(first.numbers) or set(f.arrays) != set(first.arrays):
            where = next(iter(set(f.numbers) ^ set(first.numbers)), None) or next(
                iter(set(f.arrays) ^ set(first.arrays)), None
            )
            node = first.where.get(where, f.where.get(where, "graph")) if where is not None else "graph"
            raise _fail(symbols, str(node), f"the plan's numbers change ({where})")
    if structure_only:
        return None
    columns, paths = [], []
    formulas = {}
    for path in first.numbers:
        samples = [int(f.numbers[path]) for f in flats]
        if len(set(samples)) == 1:
            formulas[path] = Poly.const(samples[0], len(symbols))
        else:
            paths.append(path)
            columns.append(samples)
    params = {}
    for key, arr in first.arrays.items():
        others = [f.arrays[key] for f in flats[1:]]
        if all(o.shape == arr.shape and o.dtype == arr.dtype and np.array_equal(o, arr) for o in others):
            continue
        where = first.where.get(key, str(key[1]))
        fittable = arr.dtype.kind in "iu" or all(_integral(a) for a in [arr, *others])
        if not fittable or any(o.shape != arr.shape or o.dtype != arr.dtype for o in others):
            raise _fail(symbols, where, f"a constant ({arr.dtype.name} {list(arr.shape)}) changes")
        flat_samples = np.stack([f.arrays[key].reshape(-1) for f in flats]).astype(np.int64)
        for e in range(arr.size):
            paths.append(("param", key, e))
            columns.append([int(x) for x in flat_samples[:, e]])
        params[key] = arr.size
    fitted = fit_columns(points, columns, degrees or [DEGREE] * len(symbols)) if columns else []
    for path, poly in zip(paths, fitted, strict=True):
        if poly is None:
            where = first.where.get(path[1:] if path[0] != "param" else path[1], first.where.get(path, "graph"))
            raise _fail(symbols, str(where), f"a size or argument ({path[0]}) is not a polynomial")
        formulas[path] = poly
    params = {key: [formulas.pop(("param", key, e)) for e in range(n)] for key, n in params.items()}
    return Fitted(symbols, first, formulas, params)


def check(fitted: Fitted, values: tuple[int, ...], flat: Flat) -> None:
    """A packaging at values the fit did not use must agree with the formulas, number for number."""
    symbols = fitted.symbols
    if flat.structure != fitted.flat.structure:
        raise _fail(symbols, "graph", f"the plan's structure differs at {dict(zip(symbols, values, strict=True))}")
    for path, poly in fitted.formulas.items():
        if poly(values) != flat.numbers[path]:
            where = fitted.flat.where.get(path[1:], fitted.flat.where.get(path, "graph"))
            raise _fail(
                symbols,
                str(where),
                f"{path[0]} is {flat.numbers[path]} at {dict(zip(symbols, values, strict=True))}, "
                f"not the {poly(values)} its formula gives",
            )
    for key, arr in flat.arrays.items():
        if key in fitted.params:
            got = [p(values) for p in fitted.params[key]]
            if got != [int(x) for x in arr.reshape(-1)]:
                raise _fail(symbols, fitted.flat.where.get(key, "graph"), "a constant's formula does not hold")
        elif not np.array_equal(arr, fitted.flat.arrays[key]):
            raise _fail(symbols, fitted.flat.where.get(key, "graph"), "a constant changes")


def varying_constants(a, b) -> set[str]:
    """Names of constants of two probe graphs that differ in a way no formula can express: a different
    shape, different float contents, or present in one graph only."""
    out = set()
    ca, cb = {v.name: v.data for v in a.constants()}, {v.name: v.data for v in b.constants()}
    for name in set(ca) ^ set(cb):
        out.add(name)
    for name in set(ca) & set(cb):
        x, y = ca[name], cb[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            out.add(name)
        elif x.dtype.kind not in "iub" and not np.array_equal(x, y) and not (_integral(x) and _integral(y)):
            out.add(name)
    return out


def _integral(array: np.ndarray) -> bool:
    """A float array of whole numbers (a size cast to float: a YOLO head's grid extent): fitted like ints,
    written back as floats. Only small ones: a grid itself is computed at run time."""
    return (
        array.dtype.kind == "f"
        and array.size <= 16
        and bool(np.all(np.isfinite(array)))
        and bool(np.all(array == np.round(array)))
        and bool(np.all(np.abs(array) < 2**24))
    )


def fit_points(k_mins: list[int], degrees: list[int] | None = None) -> list[tuple[int, ...]]:
    """The k-values (size / step per symbol) the plan is packaged at to fit its formulas: degree + 1 of
    FIT_VALUES per symbol, shifted so that each symbol's smallest probe is 4 above its minimum (sizes near the
    minimum may still be on the same polynomials, and check() makes sure they are, but the fit stays clear)."""
    n = len(k_mins)
    if n > len(FIT_VALUES):
        raise PackageError(f"at most {len(FIT_VALUES)} symbolic dims are supported, the model has {n}")
    degrees = degrees or [DEGREE] * n
    return list(
        itertools.product(
            *[[k - 1 + v for v in FIT_VALUES[i][: d + 1]] for i, (k, d) in enumerate(zip(k_mins, degrees, strict=True))]
        )
    )


def check_points(k_mins: list[int]) -> list[tuple[int, ...]]:
    """k-values the fitted plan is checked at against a packaging made there: the minimum of every symbol
    (the size most runs use: batch 1, the shortest input), and two points between and beyond the fit's."""
    n = len(k_mins)
    shifted = [tuple(k_mins[i] - 1 + CHECK_VALUES[i][k] for i in range(n)) for k in range(2)]
    return [tuple(k_mins), *shifted]


# ---------------------------------------------------------------------------------------------------------
# the manifest


def _formula(fitted: Fitted, path):
    return fitted.formulas[path].to_json()


def dynamic_manifest(manifest: dict, graph, lowered, plan, fitted: Fitted, bind: dict) -> dict:
    """Turn the manifest written for the first probe (weights, modules and files are shape-independent)
    into the dynamic one: formulas for every shape-dependent number, the arena placed by the executor."""
    weights_offset = manifest["memory"]["weights_offset"]
    layout = dynamic_map(weights_offset, plan.weights_bytes)

    arena_index: dict = {}
    arena = []
    for entry in fitted.flat.structure:
        if entry[0] == "life":
            _, key, first, last = entry
            arena_index[key] = len(arena)
            arena.append({"size": _formula(fitted, ("size", key)), "first": first, "last": last})

    def weight_address(key) -> int:
        item = plan.weight_of[key]
        return weights_offset + item.offset

    const_address = {}
    for i, step in enumerate(lowered.steps):
        for j, a in enumerate(step.args):
            if isinstance(a, (Const, Derived)):
                const_address[("const", i, j)] = weight_address(id(a))

    params = []
    for key, polys in fitted.params.items():
        arr = fitted.flat.arrays[key]
        addr = const_address[key] if key[0] == "const" else weight_address(key[1])
        params.append({"offset": addr, "dtype": arr.dtype.name, "values": [p.to_json() for p in polys]})

    steps = []
    structure = [e for e in fitted.flat.structure if len(e) == 6]
    for i, (step, (_, _, _, kinds, _, (guards, fail))) in enumerate(zip(lowered.steps, structure, strict=True)):
        args = []
        for j, kind in enumerate(kinds):
            if kind[0] == "arena":
                offset = _formula(fitted, ("off", i, j)) if ("off", i, j) in fitted.formulas else 0  # scratch: 0
                args.append({"a": arena_index[kind[1]], "o": offset})
            elif kind[0] == "weight":
                args.append({"w": weight_address(kind[1]), "o": _formula(fitted, ("off", i, j))})
            elif kind[0] in ("const", "derived"):
                args.append(const_address[("const", i, j)])
            elif kind[0] == "none":
                args.append(0)
            elif kind[0] == "float":
                args.append(manifest["steps"][i]["args"][j])
            else:
                f = _formula(fitted, ("int", i, j))
                args.append(f if isinstance(f, int) else {"p": f})
        out = {"kernel": step.kernel, "args": args, "node": step.node, "op": step.op}
        if fail:
            out["fail"] = fail
        if guards:
            out["when"] = [
                [{"a": arena_index[key], "o": 0} if key in arena_index else {"w": weight_address(key), "o": 0}, value]
                for key, value in ((k, int(v)) for k, v in guards)
            ]
        if step.split is not None:
            sp = step.split
            out["split"] = {
                "units": _formula(fitted, ("units", i)),
                "count": sp.count,
                "align": sp.align,
                "deltas": [[idx, _formula(fitted, ("delta", i, k))] for k, (idx, _) in enumerate(sp.deltas)],
            }
        steps.append(out)

    def tensor(kind: str, entry: dict) -> dict:
        name = entry["name"]
        key = plan.root.get(name, name)
        out = {"name": name, "dtype": entry["dtype"]}
        out["shape"] = [_formula(fitted, (kind, name, d)) for d in range(len(entry["shape"]))]
        if key in arena_index:
            out["arena"] = arena_index[key]
        else:
            out["offset"] = weight_address(key)
        return out

    m = dict(manifest)
    m["inputs"] = [tensor("input", e) for e in manifest["inputs"]]
    m["outputs"] = [tensor("output", e) for e in manifest["outputs"]]
    m["memory"] = {
        **{k: v for k, v in manifest["memory"].items() if k not in ("arena_offset", "arena_bytes")},
        "pages": layout.pages,
        "arena_offset": layout.arena_offset,
    }
    m["threads"] = {
        **manifest["threads"],
        "control_offset": layout.control_offset,
        "descriptor_offset": layout.descriptor_offset,
        "descriptor_bytes": DESCRIPTOR_BYTES,
        "stacks_offset": layout.stacks_offset,
    }
    m["steps"] = steps
    m["dynamic"] = {
        "symbols": fitted.symbols,
        "bind": {s: list(bind[s]) for s in fitted.symbols},
        # sizes each symbol takes: multiples of step from min; formulas are polynomials in size / step
        "domain": {s: d.to_json() for s, d in zip(fitted.symbols, fitted.domains, strict=True)},
        "arena": arena,
        "params": params,
    }
    m["stats"] = {
        k: v for k, v in manifest["stats"].items() if k not in ("arena_peak_bytes", "arena_unshared_bytes")
    }
    return m


# ---------------------------------------------------------------------------------------------------------
# executors' side (the Python host; web/dynamic.js does the same in JS)


def materialize(manifest: dict, input_shapes: dict[str, list[int]]) -> dict:
    """The concrete plan of a dynamic manifest for these input shapes: {"values", "inputs", "outputs" (with
    offsets and shapes), "steps" (plain numbers, as in a static manifest), "params" [(offset, array)],
    "memory_bytes"}. Raises ValueError when the shapes disagree with each other or the model."""
    dyn = manifest["dynamic"]
    values, dims = [], []
    for sym in dyn["symbols"]:
        name, axis = dyn["bind"][sym]
        if name not in input_shapes or axis >= len(input_shapes[name]):
            raise ValueError(f"input {name!r} must have a dim {axis} (symbolic dim {sym!r})")
        size = int(input_shapes[name][axis])
        domain = dyn.get("domain", {}).get(sym, {"step": 1, "min": 1})
        step, minimum = domain["step"], domain["min"]
        if size < minimum or size % step:
            multiple = f"a multiple of {step} and " if step > 1 else ""
            raise ValueError(
                f"input {name!r} dim {axis} ({sym!r}) must be {multiple}at least {minimum}, got {size} "
                "(the sizes this bundle was planned for)"
            )
        values.append(size // step)  # formulas are polynomials in size / step
        dims.append(size)
    sizes = [evaluate(a["size"], values) for a in dyn["arena"]]
    offsets, arena_bytes = place(sizes, [(a["first"], a["last"]) for a in dyn["arena"]])
    base = manifest["memory"]["arena_offset"]

    def arg(a):
        if isinstance(a, dict):
            if "a" in a:
                return base + offsets[a["a"]] + evaluate(a["o"], values)
            if "w" in a:
                return a["w"] + evaluate(a["o"], values)
            return evaluate(a["p"], values)
        return a

    steps = []
    for s in manifest["steps"]:
        out = {"kernel": s["kernel"], "args": [arg(a) for a in s["args"]], "node": s["node"], "op": s["op"]}
        if "when" in s:
            out["when"] = [[arg(a), value] for a, value in s["when"]]
        if "fail" in s:
            out["fail"] = s["fail"]
        if "split" in s:
            sp = s["split"]
            out["split"] = {
                "units": evaluate(sp["units"], values),
                "count": sp["count"],
                "align": sp["align"],
                "deltas": [[i, evaluate(d, values)] for i, d in sp["deltas"]],
            }
        steps.append(out)

    def tensors(entries):
        out = []
        for e in entries:
            shape = [evaluate(d, values) for d in e["shape"]]
            offset = base + offsets[e["arena"]] if "arena" in e else e["offset"]
            out.append({"name": e["name"], "dtype": e["dtype"], "shape": shape, "offset": offset})
        return out

    inputs = tensors(manifest["inputs"])
    for e in inputs:
        given = list(input_shapes.get(e["name"], e["shape"]))
        if given != e["shape"]:
            raise ValueError(
                f"input {e['name']!r} has shape {given}; with "
                f"{', '.join(f'{s}={v}' for s, v in zip(dyn['symbols'], dims, strict=True))} "
                f"(bound by the other inputs) it must be {e['shape']}"
            )
    params = [
        (p["offset"], np.asarray([evaluate(f, values) for f in p["values"]], dtype=p["dtype"])) for p in dyn["params"]
    ]
    return {
        "values": values,
        "inputs": inputs,
        "outputs": tensors(manifest["outputs"]),
        "steps": steps,
        "params": params,
        "memory_bytes": base + arena_bytes,
    }
