"""Which sizes each symbolic input dim can take, read off the model's own shapes before the plan is fitted.

A strided convolution over a symbolic length L makes floor((L + pads - extent) / stride) + 1 frames: not a
polynomial in L, but a polynomial in k for L = stride * k. So each symbol gets a *step* (its sizes are the
multiples of it) and a *minimum*, and the fitted plan (dynamic.py) is a set of polynomials in k = size / step.
Both come from importing the model (folding and shape inference only, no lowering: ~0.05-0.5 s a point) at
chosen sizes, never from the declared dims:

  1. a base point where every shape is valid: every symbol at a multiple of `stride_bound` (the lcm over the
     graph of the products of the strides met along each path, an upper bound of any step), or failing that at
     one of the sizes models are made for;
  2. per symbol, the smallest divisor of that bound for which every dim of every value is a polynomial of degree
     <= 2 in k: the quadratic through 3 consecutive k must hold at k one and two bound periods further (a step
     that is too small leaves a floor pattern, which no quadratic follows). Step 1 is tried first, then the
     bound; a multiple of a step that serves serves too, so each prime's power in it is found by bisection;
  3. per symbol, the smallest k from which every shape is valid and still on those polynomials (bisection).

Unnamed dims that must be equal (the batch of two inputs) are made one symbol first (`couple_symbols`).

A symbol for which no step works (the model only runs at one size, or its structure changes with the size)
cannot stay symbolic: packaging stops, names the dim, the sizes tried, and an --input-shape that is valid.
Executors accept a dim only when it is a multiple of its step and at least its minimum, and say so otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import PackageError

# strides met along a graph multiply (a pad to a multiple of 160 then a hop of 160: 25600, while 160 serves):
# the bound is kept whole up to this, so the step that serves stays a divisor of it; past it, only its factors
# of 2, 3, 5 and 7 up to 2^12 * 3^3 * 5^2 * 7 count
MAX_STEP = 1 << 16
_SMOOTH = 2**12 * 3**3 * 5**2 * 7
# sizes tried when multiples of the stride bound give no valid point (models that only run at sizes like 48),
# the sizes models are made for first
COMMON_SIZES = (32, 48, 64, 96, 112, 128, 160, 192, 224, 256, 320, 384, 416, 512, 640, 24, 16, 8, 4, 3, 2, 1)
BASE_MULTIPLES = (4, 8, 2, 16, 1, 32)


@dataclass
class Domain:
    """The sizes a symbol takes: step, 2 * step, ... from `minimum` (a multiple of step) on. `degree`: the
    highest degree in k of any tensor's size (the sum of its dims' degrees, at most 2), which bounds the degree
    of every number of the plan: the fit needs degree + 1 probes of this symbol."""

    step: int = 1
    minimum: int = 1
    degree: int = 2

    @property
    def k_min(self) -> int:
        return self.minimum // self.step

    def to_json(self) -> dict:
        return {"step": self.step, "min": self.minimum}

    def describe(self, name: str) -> str:
        multiple = f"a multiple of {self.step}, " if self.step > 1 else ""
        return f"{name}: {multiple}at least {self.minimum}"


# ---------------------------------------------------------------------------------------------------------
# an upper bound of the steps, from the graph's strides


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


def _node_stride(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> int:
    """How much a node can divide a size by (1 when it cannot)."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool"):
        return math.lcm(*[int(s) for s in attrs.get("strides", [1])] or [1])  # per-axis strides (2, 3): 6
    if op in ("SpaceToDepth",):
        return int(attrs.get("blocksize", 1))
    if op in ("Resize", "Upsample"):
        scales = consts.get(node.input[2] if op == "Resize" and len(node.input) > 2 else node.input[-1])
        if scales is None or scales.dtype.kind != "f":
            return 1
        small = [float(s) for s in scales.reshape(-1) if 0 < float(s) < 1]
        return max([round(1 / s) for s in small] or [1])
    if op == "Slice" and len(node.input) > 4:
        steps = consts.get(node.input[4])
        return int(np.abs(steps).max()) if steps is not None and steps.size else 1
    if op in ("Div", "Mod") and len(node.input) == 2:
        d = consts.get(node.input[1])
        if d is not None and d.dtype.kind in "iu" and d.size == 1 and int(d.reshape(-1)[0]) > 1:
            return int(d.reshape(-1)[0])
    if op == "STFT" and len(node.input) > 1:
        step = consts.get(node.input[1])
        return int(step.reshape(-1)[0]) if step is not None and step.size == 1 else 1
    return 1


def stride_bound(model: onnx.ModelProto) -> int:
    """The lcm, over every tensor, of the product of the strides on the paths that reach it: no size in the
    model is divided by more, so a step that works divides it. Subgraphs (If branches) count as if inlined."""
    cum: dict[str, int] = {}
    bound = 1

    def walk(graph: onnx.GraphProto, consts: dict[str, np.ndarray]) -> None:
        nonlocal bound
        consts = {**consts, **_constants(graph)}
        for node in graph.node:
            inner = 1
            for a in node.attribute:
                for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                    walk(g, consts)
                    inner = math.lcm(inner, *(cum.get(o.name, 1) for o in g.output))
            here = math.lcm(inner, *(cum.get(i, 1) for i in node.input if i)) * _node_stride(node, consts)
            if here > MAX_STEP:
                here = math.gcd(here, _SMOOTH)
            for o in node.output:
                cum[o] = here
            bound = math.lcm(bound, here)
            if bound > MAX_STEP:
                bound = math.gcd(bound, _SMOOTH)

    walk(model.graph, {})
    return bound


# ---------------------------------------------------------------------------------------------------------
# shapes at a point


class ShapeProbe:
    """Value shapes of the model imported at given symbol values (cached): {name: shape}, or the error."""

    def __init__(self, model, symbols: list[str]):
        from .onnx_io import shape_only_model

        self.model, self.symbols = shape_only_model(model), symbols
        self.cache: dict[tuple, dict | str] = {}

    def __call__(self, values: tuple[int, ...]) -> dict | str:
        if values not in self.cache:
            from .dynamic import shapes_at
            from .importer import import_model

            try:
                shapes = shapes_at(self.model, self.symbols, values)
                _, graph = import_model(self.model, shapes, check=False, probe=True)
                self.cache[values] = _value_shapes(graph)
            except PackageError as exc:
                self.cache[values] = str(exc)
        return self.cache[values]

    def valid(self, values: tuple[int, ...]) -> bool:
        """Import succeeds and no computed tensor is empty (a size the model cannot really run at)."""
        shapes = self(values)
        return isinstance(shapes, dict) and all(d >= 1 for s in shapes.values() for d in s)


def _value_shapes(graph) -> dict | str:
    """{name: shape} of the computed tensors of a graph and of the branches of its run-time Ifs; the reason
    (a string) when a branch cannot run at these sizes: sizes every branch can run at are the valid ones."""
    from .control import SUBGRAPHS, is_runtime_if

    out = {n: tuple(v.shape) for n, v in graph.values.items() if v.shape is not None and not v.is_const}
    for node in graph.nodes:
        if is_runtime_if(node):
            for key in SUBGRAPHS:
                sub = node.attrs[key]
                if sub.metadata.get("cannot_run"):
                    return sub.metadata["cannot_run"]
                inner = _value_shapes(sub)
                if isinstance(inner, str):
                    return inner
                out.update(inner)
    return out


def _quadratic_at(f: tuple[int, int, int], x: int) -> int:
    """The quadratic through f(0), f(1), f(2), at x (exact: x(x-1)/2 is an integer)."""
    f0, f1, f2 = f
    return f0 + x * (f1 - f0) + x * (x - 1) // 2 * (f2 - 2 * f1 + f0)


def _test_offsets(periods: int) -> list[int]:
    """k offsets a step is tested at: 3 consecutive ones determine the quadratics, the rest check them. A floor
    pattern too slow to jump between consecutive k (L = 160k + c frames over 1 sample per k) jumps between
    the later ones: they reach one and two periods of the stride bound (`periods` k per period) further."""
    return sorted({0, 1, 2, 3, periods + 1, 2 * periods + 3})


def _fit_step(shapes: ShapeProbe, point, k0: int, offsets: list[int]) -> dict | None:
    """{(name, axis): (f(k0), f(k0+1), f(k0+2))} when every dim of every value is, at every offset, on the
    quadratic through the first three; None as soon as a point is invalid or off it."""
    first = [shapes(point(k0 + t)) for t in offsets[:3]]
    if not all(isinstance(m, dict) for m in first):
        return None
    names = set(first[0]) & set(first[1]) & set(first[2])
    fit = {}
    for name in names:
        series = [m[name] for m in first]
        if len({len(x) for x in series}) != 1:
            return None
        for axis in range(len(series[0])):
            fit[(name, axis)] = tuple(x[axis] for x in series)
    for t in offsets[3:]:
        if not _on_fit(shapes(point(k0 + t)), fit, t):
            return None
    return fit


def _on_fit(m, fit: dict, x: int) -> bool:
    """Shapes `m` (at offset x from the fit's first point) are valid and on the fitted quadratics; dims that
    vary with k must be positive there."""
    if not isinstance(m, dict) or any(d < 0 for s in m.values() for d in s):
        return False
    for (name, axis), f in fit.items():
        shape = m.get(name)
        if shape is None or len(shape) <= axis:
            continue
        expected = _quadratic_at(f, x)
        if shape[axis] != expected or (expected < 1 and len(set(f)) > 1):
            return False
    return True


def _divisors_ascending(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def couple_symbols(model, symbols: list[str]):
    """Dims exporters leave unnamed but that must be equal (spox's silero-vad: the batch of `input: [?, ?]` and
    of `state: [2, ?, 128]`) become one symbol: where changing one alone breaks the model and changing it with
    another of the same base size does not, the other's dims take its name. Returns the model (renamed if
    needed)."""
    if len(symbols) < 2:
        return model
    shapes = ShapeProbe(model, symbols)
    base, _ = _base_point(shapes, symbols, stride_bound(model))
    if base is None:
        return model
    n = len(symbols)
    rename: dict[str, str] = {}
    for i in range(n):
        if symbols[i] in rename:
            continue
        alone = tuple(2 * v if j == i else v for j, v in enumerate(base))
        if shapes.valid(alone):
            continue
        same = [j for j in range(n) if j != i and base[j] == base[i] and symbols[j] not in rename]
        partner = next(
            (j for j in same if shapes.valid(tuple(2 * v if k in (i, j) else v for k, v in enumerate(base)))), None
        )
        group = [partner] if partner is not None else []
        if partner is None and same and shapes.valid(tuple(2 * v if k == i or k in same else v for k, v in
                                                            enumerate(base))):
            group = same
        for j in group:
            rename[symbols[j]] = symbols[i]
    if not rename:
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for inp in model.graph.input:
        for d in inp.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]
    return model


def _base_point(shapes: ShapeProbe, symbols: list[str], bound: int):
    """(a point where every shape is valid, or None; the points tried): every symbol at a multiple of the
    stride bound, else at one of the sizes models are made for."""
    n = len(symbols)
    tried = []
    for m in BASE_MULTIPLES:
        point = (bound * m,) * n
        tried.append(point)
        if shapes.valid(point):
            return point, tried
    for size in COMMON_SIZES:  # models that only run at sizes like 48 or 224
        point = (size,) * n
        tried.append(point)
        if shapes.valid(point):
            return point, tried
    return None, tried


def find_domains(model, symbols: list[str]) -> list[Domain]:
    """Step and minimum of each symbol (module docstring); PackageError naming the symbol when none works."""
    if not symbols:
        return []
    shapes = ShapeProbe(model, symbols)
    bound = stride_bound(model)
    n = len(symbols)

    # 1. a base point
    base, tried = _base_point(shapes, symbols, bound)
    if base is None:
        error = shapes(tried[0])
        reason = error if isinstance(error, str) else "a tensor with an empty dim"
        raise PackageError(
            f"no sizes of the symbolic dims ({', '.join(symbols)}) give valid shapes (tried "
            f"{_listing(symbols, tried)}; at the first: {reason}); fix them with --input-shape"
        )

    domains = []
    for i in range(n):
        # 2. the smallest step, the other symbols held at the base (module docstring)
        def point_at(p, i=i):
            return lambda k: tuple(p * k if j == i else base[j] for j in range(n))

        top = math.gcd(bound, base[i])
        fits = {}

        def works(p, top=top, i=i, point_at=point_at, fits=fits):
            if p not in fits:
                fits[p] = _fit_step(shapes, point_at(p), base[i] // p, _test_offsets(top // p))
            return fits[p] is not None

        if works(1):  # most symbols (batch, sequence) take any size
            step = 1
        elif works(top):
            step = top
        else:
            valid = [v for v in COMMON_SIZES if shapes.valid(tuple(v if j == i else base[j] for j in range(n)))]
            raise _cannot_stay_symbolic(model, symbols, i, base, _divisors_ascending(top), valid)
        # a multiple of a step that serves serves too: per prime factor, bisect how much of its power goes
        for q in _prime_factors(step):
            power = 0
            while step % q ** (power + 1) == 0:
                power += 1
            keep_lo, keep_hi = 0, power  # the smallest power of q the step keeps is in [keep_lo, keep_hi]
            while keep_lo < keep_hi:
                mid = (keep_lo + keep_hi) // 2
                if works(step // q ** (power - mid)):
                    keep_hi = mid
                else:
                    keep_lo = mid + 1
            step //= q ** (power - keep_hi)
        fit = fits[step]

        # 3. the smallest k (bisection) at which the shapes are valid and on the quadratics fitted in 2
        k0 = base[i] // step
        point = point_at(step)
        lo, hi = 0, k0  # the shapes at k0 are good; the answer is in (lo, hi]
        if _on_fit(shapes(point(1)), fit, 1 - k0):
            hi = 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _on_fit(shapes(point(mid)), fit, mid - k0):
                hi = mid
            else:
                lo = mid
        domains.append(Domain(step, step * hi, _size_degree(fit)))
    return domains


def _size_degree(fit: dict) -> int:
    """Max over tensors of the summed degrees of their dims (each quadratic's through 3 points), in [1, 2]."""
    per_value: dict[str, int] = {}
    for (name, _), (f0, f1, f2) in fit.items():
        degree = 2 if f2 - 2 * f1 + f0 else (1 if f1 != f0 else 0)
        per_value[name] = per_value.get(name, 0) + degree
    return min(2, max([1, *per_value.values()]))


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        if n % p == 0:
            out.append(p)
            while n % p == 0:
                n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def _listing(symbols, points, limit: int = 6) -> str:
    shown = [", ".join(f"{s}={v}" for s, v in zip(symbols, p, strict=True)) for p in points[:limit]]
    more = f" and {len(points) - limit} more" if len(points) > limit else ""
    return "; ".join(f"({s})" for s in shown) + more


def _cannot_stay_symbolic(model, symbols, i, base, steps, valid_sizes=None) -> PackageError:
    """The error for a symbol no step serves: what was tried, and an --input-shape that fixes that dim alone
    (at its base value, where the model's shapes are valid) and keeps the others symbolic."""
    sym = symbols[i]
    inputs = _input_dims(model)
    where = [f"input {name!r} dim {axis}" for name, dims in inputs.items() for axis, d in enumerate(dims) if d == sym]
    example = " ".join(
        f"--input-shape {name}=" + ",".join(str(base[i]) if d == sym else str(d) for d in dims)
        for name, dims in inputs.items()
        if sym in dims
    )
    shown = ", ".join(map(str, steps[:8])) + ("..." if len(steps) > 8 else "")
    sizes = f" (its shapes are valid at {', '.join(map(str, sorted(valid_sizes)))} of the sizes tried)" if (
        valid_sizes
    ) else ""
    return PackageError(
        f"the symbolic dim {sym!r} ({', '.join(where)}) cannot stay symbolic: the model's shapes are not "
        f"polynomials in it for any step ({shown}) around {sym}={base[i]}{sizes}: the model accepts only some "
        f"sizes, or changes its structure with the size; fix it at the size the model expects, e.g. {example} "
        "(a name in --input-shape keeps that dim symbolic)"
    )


def _input_dims(model) -> dict[str, list]:
    inits = {i.name for i in model.graph.initializer}
    return {
        i.name: [d.dim_param if d.dim_param else d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
        if i.name not in inits
    }
