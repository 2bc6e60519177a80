"""The symbolic layer between op lowerings and the planner: a lowering reads its node (or the typed spec
parsed from it) and calls `ctx.emit(kernel, args...)`, where an argument is a number or a symbolic pointer that
the planner resolves to an address:

    Buf(name)        the storage of a tensor (activation, graph input/output or constant)
    Const(array)     a constant derived at package time (prepacked weights, broadcast layouts...)
    Scratch(nbytes)  workspace private to this step
    Derived(...)     weights computed once at load time from weights the bundle ships

Kernels know nothing of ONNX; lowerings are where ONNX semantics meet kernel signatures, which `emit` checks
against the C sources (kernels.kernel_signatures). Which lowering runs which op is ops/registry.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import PackageError
from ..ir import Graph, Node
from ..kernels import kernel_signatures


@dataclass(frozen=True)
class Buf:
    name: str
    offset: int = 0  # bytes into the tensor (Concat writes each input into a slice of its output)


@dataclass(frozen=True, eq=False)
class Const:
    array: np.ndarray
    label: str = ""


@dataclass(frozen=True, eq=False)
class Scratch:
    nbytes: int


@dataclass(frozen=True, eq=False)
class Derived:
    """Weights computed once at load time (an init step calling `kernel` with `args` and then the Derived's own
    address) from weights the bundle ships: the download carries the smaller form, e.g. a 3x3 convolution's 9
    floats per channel pair instead of Winograd's 16. Lives in the weights region, not in weights.bin."""

    nbytes: int
    kernel: str
    args: tuple
    label: str = ""


Arg = int | float | Buf | Const | Scratch | Derived | None


@dataclass(frozen=True)
class Split:
    """How one kernel call divides into independent chunks for threads: the call covers `units` units of
    work (output rows, channels, columns...); a chunk [u0, u1) is the same call with args[count] = u1 - u0
    and args[i] += u0 * delta for each (i, delta). Executors pick the chunks (a multiple of `align` units
    each) for however many threads they run, and run them in any order or at once."""

    units: int
    count: int
    deltas: tuple[tuple[int, int], ...]
    align: int = 1


@dataclass
class Step:
    kernel: str
    args: list
    node: str
    op: str
    split: Split | None = None
    # ((cond, value), ...): run only when every bool tensor cond holds value (the branches of a run-time If)
    guard: tuple[tuple[str, bool], ...] = ()
    fail: str = ""  # not a kernel call: the run stops with this message (a branch that cannot run, see ops/control)


@dataclass
class Lowered:
    steps: list[Step] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # output -> the tensor whose bytes it reuses
    # node -> (algorithm used, candidates it had), for nodes with more than one way to run
    algorithms: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


class LoweringContext:
    def __init__(
        self,
        graph: Graph,
        choices: dict[str, str] | None = None,
        lowerings: dict[str, Callable[[LoweringContext, Node], None]] | None = None,
    ):
        self.graph = graph
        self.lowerings = lowerings or {}  # op type -> lowering, for lower_nodes (given by lowering.lower)
        self.out = Lowered()
        self.node: Node | None = None
        self.choices = choices or {}
        self._derived: dict[str, Const | Derived] = {}
        self.guard: tuple[tuple[str, bool], ...] = ()  # given to every step emitted (see Step.guard)
        self._uses: tuple[int, dict] | None = None
        self._steps_by_tensor: dict[str, list[Step]] = {}

    def steps_using(self, name: str) -> list[Step]:
        """The steps emitted so far with a Buf of tensor `name` among their arguments."""
        found = {id(s): s for s in self._steps_by_tensor.get(name, [])}  # once each, in order
        return [s for s in found.values() if any(isinstance(a, Buf) and a.name == name for a in s.args)]

    def note_use(self, step: Step, name: str) -> None:
        """`step`'s arguments were rewritten to use tensor `name` (see steps_using)."""
        self._steps_by_tensor.setdefault(name, []).append(step)

    def consumers(self) -> dict[str, list[Node]]:
        """graph.consumers(), once per graph lowered (it does not change while it is lowered)."""
        # keyed by the graph object itself, not its id(): a branch graph lowered earlier and freed can leave
        # its id to the next one, which then read the freed graph's consumers (a nondeterministic plan)
        if self._uses is None or self._uses[0] is not self.graph:
            self._uses = (self.graph, self.graph.consumers())
        return self._uses[1]

    def derived(self, label: str, make) -> Const:
        """A constant computed from weights at package time (transposed, packed...), made once per label, so
        nodes sharing a weight share the derived bytes too."""
        return self._once(label, lambda: Const(make(), label))

    def derived_at_load(self, label: str, nbytes: int, kernel: str, *args) -> Derived:
        """A Derived (computed at load time), one per label, so nodes sharing a weight share it."""
        return self._once(label, lambda: Derived(nbytes, kernel, tuple(args), label))

    def _once(self, label: str, make):
        if label not in self._derived:
            self._derived[label] = make()
        return self._derived[label]

    # graph queries -------------------------------------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.graph.values[name].shape)

    def dtype(self, name: str) -> np.dtype:
        return self.graph.values[name].dtype

    def const(self, name: str) -> np.ndarray | None:
        return self.graph.const(name)

    def fail(self, message: str) -> PackageError:
        node = self.node
        return PackageError(f"node {node.name!r} ({node.op_type}): {message}")

    def need_const(self, name: str, what: str) -> np.ndarray:
        value = self.const(name)
        if value is None:
            raise self.fail(f"{what} must be a constant (computed at run time here, which is not supported)")
        return value

    def require_dtype(self, *names: str, dtypes=(np.float32,)) -> None:
        for name in names:
            if name and self.dtype(name) not in [np.dtype(d) for d in dtypes]:
                allowed = "/".join(np.dtype(d).name for d in dtypes)
                raise self.fail(f"tensor {name!r} is {self.dtype(name).name}; this op supports {allowed}")

    def require_unused(self, node: Node, index: int, what: str) -> None:
        if len(node.outputs) > index and node.outputs[index]:
            uses = self.consumers().get(node.outputs[index]) or node.outputs[index] in self.graph.outputs
            if uses:
                raise self.fail(f"output {index} ({what}) is not supported")

    def optional_output(self, node: Node, index: int) -> Buf | None:
        """Buf of output `index` when something reads it (a consumer or the graph's outputs), else None."""
        name = node.outputs[index] if len(node.outputs) > index else ""
        if not name:
            return None
        if name in self.graph.outputs or self.graph.consumers().get(name):
            return Buf(name)
        return None

    def algorithm(self, candidates: list[str], default: str) -> str:
        """Which of several equivalent kernels runs this node: the tuner's choice when it timed them
        (package-for-web --tune), else `default`, the lowering's heuristic."""
        choice = self.choices.get(self.node.name, default)
        if choice not in candidates:
            name, options = self.node.name, ", ".join(candidates)
            raise PackageError(f"algorithms: node {name!r} runs as one of {options}, not {choice!r}")
        if len(candidates) > 1:
            self.out.algorithms[self.node.name] = (choice, list(candidates))
        return choice

    # emitting ------------------------------------------------------------------------------------------
    @staticmethod
    def kernel_params(kernel: str) -> tuple[str, ...]:
        """The C parameter names of `kernel`, in order (for helpers that emit several kernels of one shape)."""
        return kernel_signatures()[kernel]

    def emit(self, kernel: str, *args: Arg, split: tuple | None = None) -> None:
        """A call of `kernel` with `args`, checked against its C signature (kernels.kernel_signatures).

        split = (units, count, {param: delta per unit}[, align]), the count and the pointers or offsets that
        move per unit named by the kernel's C parameter names (see Split); deltas on omitted (None) pointer
        arguments are dropped, since a null pointer must stay null."""
        params = kernel_signatures().get(kernel)
        where = f"node {self.node.name!r} ({self.node.op_type})"
        if params is None:
            raise TypeError(f"{where}: no kernel named {kernel!r} in kernels_wasm/")
        if len(args) != len(params):
            raise TypeError(
                f"{where}: kernel {kernel} takes {len(params)} arguments ({', '.join(params)}), "
                f"the lowering passed {len(args)}"
            )
        spec = None
        if split is not None:
            units, count, deltas, *align = split
            index = {name: i for i, name in enumerate(params)}
            unknown = [name for name in (count, *deltas) if name not in index]
            if unknown:
                raise TypeError(f"{where}: kernel {kernel} has no parameter {', '.join(map(str, unknown))}")
            count = index[count]
            if args[count] != units:
                raise AssertionError(f"{kernel}: split count {params[count]} is {args[count]}, not {units}")
            moved = sorted((index[name], d) for name, d in deltas.items())
            kept = tuple((i, int(d)) for i, d in moved if args[i] is not None and d)
            spec = Split(int(units), count, kept, *align)
        step = Step(kernel, list(args), self.node.name, self.node.op_type, spec, self.guard)
        self.out.steps.append(step)
        for a in args:
            if isinstance(a, Buf):
                self._steps_by_tensor.setdefault(a.name, []).append(step)

    def emit_failure(self, message: str) -> None:
        """A step that stops the run with `message` when it is reached (under the current guard)."""
        self.out.steps.append(Step("", [], self.node.name, self.node.op_type, None, self.guard, message))

    def alias(self, output: str, source: str) -> None:
        self.out.aliases[output] = source

    def lower_nodes(self, nodes: list[Node]) -> None:
        """Lower `nodes` in order (a graph's, or an If branch's from ops/control.py)."""
        for node in nodes:
            self.node = node
            # standard ops, and the fused ops the optimizer creates in its own domain
            fn = self.lowerings.get(node.op_type) if node.domain in ("", "ai.onnx", "wasm_runtime") else None
            if fn is None:
                raise PackageError(f"node {node.name!r}: op {node.op_type} is not supported")
            fn(self, node)


def i32(values) -> Const:
    """An int32 parameter block (shape/stride layouts) shipped with the weights."""
    return Const(np.asarray(values, dtype=np.int32), "layout")
