"""Fusion passes (the TensorRT-style rewrite set). Each rewrites in place and returns its rewrite count.

A pass only fires when the intermediate tensor it removes is read by exactly the next node of the pattern
and is not a graph output, and when the values it folds are constants. Folding BatchNormalization or a
bias changes float32 rounding (weights are rescaled once, in float64, then rounded), nothing else.

Fused nodes are `FusedConv` / `FusedGemm` in the `wasm_runtime` domain: the ONNX op's attributes plus
`activation` (a name of ops/activation.py's ACTIVATIONS) with `activation_params` (its parameters in the
kernels' order), and for FusedConv an optional 4th input added before the activation (residual).
`unfuse()` turns them back into standard ONNX so onnxruntime can check a rewritten graph.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Value, add_constant, single_consumer
from ..ops.activation import ACTIVATIONS, STANDALONE, attribute_params

DOMAIN = "wasm_runtime"


def _absorb(graph: Graph, first: Node, second: Node) -> None:
    """`first` takes over `second`'s output and `second` disappears."""
    first.outputs = [second.outputs[0]]
    graph.nodes.remove(second)


def _is(node: Node, *ops: str) -> bool:
    return node.op_type in ops and node.domain in ("", "ai.onnx")


def _fused_or(node: Node, op: str) -> bool:
    return _is(node, op) or (node.op_type == f"Fused{op}" and node.domain == DOMAIN)


def _bn_scale_shift(graph: Graph, bn: Node):
    if bn.attrs.get("training_mode", 0) or any(o for o in bn.outputs[1:]):
        return None
    params = [graph.const(bn.input(i)) for i in range(1, 5)]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def fold_batch_norm(graph: Graph) -> int:
    """BatchNormalization folded into the preceding Conv, Gemm or 2-D MatMul with constant weights.

    y = BN(Conv(x, W, b))   =>   y = Conv(x, W * s[:,None,None,None], (b - mean) * s + beta)
    y = BN(Gemm(a, B, C))   =>   y = Gemm(a, B * s (per output column), beta*C*s + shift)
    y = BN(MatMul(a, B))    =>   y = Gemm(a, B * s, shift)           s = gamma / sqrt(var + eps)
    """
    count = 0
    uses = graph.consumers()
    producers = graph.producers()
    for bn in [n for n in graph.nodes if _is(n, "BatchNormalization")]:
        prod = producers.get(bn.inputs[0])
        if prod is None or single_consumer(graph, bn.inputs[0], uses) is not bn:
            continue
        folded = _bn_scale_shift(graph, bn)
        w = graph.const(prod.input(1)) if prod.op_type in ("Conv", "Gemm", "MatMul") else None
        if folded is None or w is None or not _is(prod, "Conv", "Gemm", "MatMul") or w.dtype != np.float32:
            continue
        scale, shift = folded
        if _is(prod, "Conv"):
            w2 = w.astype(np.float64) * scale.reshape(-1, *([1] * (w.ndim - 1)))
            b = graph.const(prod.input(2)) if prod.input(2) else np.zeros(w.shape[0])
            if b is None:
                continue
            b2 = b.astype(np.float64) * scale + shift
            prod.inputs = [
                prod.inputs[0],
                add_constant(graph, f"{prod.name}.weight_bn", w2.astype(np.float32)),
                add_constant(graph, f"{prod.name}.bias_bn", b2.astype(np.float32)),
            ]
        elif _is(prod, "Gemm"):
            c = graph.const(prod.input(2)) if prod.input(2) else np.zeros(1)
            if c is None or len(graph.shape(bn.inputs[0])) != 2:
                continue
            trans_b = prod.attrs.get("transB", 0)
            w2 = w.astype(np.float64) * (scale[:, None] if trans_b else scale[None, :])
            c2 = float(prod.attrs.get("beta", 1.0)) * c.astype(np.float64) * scale + shift
            prod.inputs = [
                prod.inputs[0],
                add_constant(graph, f"{prod.name}.weight_bn", w2.astype(np.float32)),
                add_constant(graph, f"{prod.name}.bias_bn", c2.astype(np.float32)),
            ]
            prod.attrs["beta"] = 1.0
        else:  # MatMul -> Gemm, only for a plain 2-D product (BN's channel axis 1 is then the column)
            if w.ndim != 2 or len(graph.shape(prod.inputs[0])) != 2:
                continue
            w2 = w.astype(np.float64) * scale[None, :]
            prod.op_type = "Gemm"
            prod.attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
            prod.inputs = [
                prod.inputs[0],
                add_constant(graph, f"{prod.name}.weight_bn", w2.astype(np.float32)),
                add_constant(graph, f"{prod.name}.bias_bn", shift.astype(np.float32)),
            ]
        _absorb(graph, prod, bn)
        uses = graph.consumers()
        count += 1
    return count


def _per_channel(c: np.ndarray, out_rank: int, channels: int, axis: int) -> np.ndarray | None:
    """c as a [channels] vector if broadcasting it against the output varies only along `axis`."""
    if c.ndim > out_rank:
        return None
    shape = (1,) * (out_rank - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,))


def fuse_bias_add(graph: Graph) -> int:
    """A constant per-channel Add becomes the Conv's bias (or a Gemm's C).

    y = Add(Conv(x, W, b), c[1,M,1,1])   =>   y = Conv(x, W, b + c)
    y = Add(Gemm(a, B), c[N])            =>   y = Gemm(a, B, c)        (Gemm without C)
    """
    count = 0
    uses = graph.consumers()
    producers = graph.producers()
    for add in [n for n in graph.nodes if _is(n, "Add")]:
        for i in (0, 1):
            prod, c = producers.get(add.inputs[i]), graph.const(add.inputs[1 - i])
            if prod is None or c is None or single_consumer(graph, add.inputs[i], uses) is not add:
                continue
            out_shape = graph.shape(add.outputs[0])
            if graph.shape(add.inputs[i]) != out_shape or c.dtype != np.float32:
                continue
            if _is(prod, "Conv") and graph.const(prod.input(1)) is not None:
                m = out_shape[1]
                vec = _per_channel(c, len(out_shape), m, 1)
                b = graph.const(prod.input(2)) if prod.input(2) else np.zeros(m, np.float32)
                if vec is None or b is None:
                    continue
                bias = (b.astype(np.float64) + vec).astype(np.float32)
                prod.inputs = [prod.inputs[0], prod.inputs[1], add_constant(graph, f"{prod.name}.bias_add", bias)]
            elif _is(prod, "Gemm") and not prod.input(2) and c.ndim <= 2:
                prod.inputs = [*prod.inputs[:2], add.inputs[1 - i]]
                prod.attrs["beta"] = 1.0
            else:
                continue
            _absorb(graph, prod, add)
            uses = graph.consumers()
            count += 1
            break
    return count


def matmul_add_to_gemm(graph: Graph) -> int:
    """y = Add(MatMul(a[M,K], B[K,N]), c)  =>  y = Gemm(a, B, c)   for 2-D operands, c broadcastable to [M,N]."""
    count = 0
    uses = graph.consumers()
    producers = graph.producers()
    for add in [n for n in graph.nodes if _is(n, "Add")]:
        for i in (0, 1):
            mm, c = producers.get(add.inputs[i]), add.inputs[1 - i]
            if mm is None or not _is(mm, "MatMul") or single_consumer(graph, add.inputs[i], uses) is not add:
                continue
            if len(graph.shape(mm.inputs[0])) != 2 or len(graph.shape(mm.inputs[1])) != 2:
                continue
            if len(graph.shape(c)) > 2 or graph.shape(add.outputs[0]) != graph.shape(add.inputs[i]):
                continue
            if graph.values[c].dtype != np.float32:
                continue
            mm.op_type = "Gemm"
            mm.attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
            mm.inputs = [*mm.inputs, c]
            _absorb(graph, mm, add)
            uses = graph.consumers()
            count += 1
            break
    return count


def fuse_pad(graph: Graph) -> int:
    """A zero (or for MaxPool, -inf) constant Pad on spatial dims moves into the window's pads.

    y = Conv(Pad(x, [0,0,1,1, 0,0,1,1]), W)   =>   y = Conv(x, W, pads += [1,1,1,1])
    y = AveragePool(Pad(x, p))                =>   y = AveragePool(x, pads += p, count_include_pad=1)
    """
    count = 0
    uses = graph.consumers()
    producers = graph.producers()
    for node in [n for n in graph.nodes if _is(n, "Conv", "AveragePool", "MaxPool")]:
        pad = producers.get(node.inputs[0])
        if pad is None or not _is(pad, "Pad") or single_consumer(graph, node.inputs[0], uses) is not node:
            continue
        if (pad.attrs.get("mode", "constant") or "constant") != "constant":
            continue
        if graph.opset >= 11:
            pads = graph.const(pad.input(1))
            value = graph.const(pad.input(2)) if pad.input(2) else np.zeros(1)
            if pad.input(3) or pads is None or value is None:  # axes input: keep it simple, skip
                continue
        else:
            pads, value = np.asarray(pad.attrs.get("pads")), np.asarray(pad.attrs.get("value", 0.0))
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        rank = len(pads) // 2
        begin, end = pads[:rank], pads[rank:]
        if begin[:2] != [0, 0] or end[:2] != [0, 0] or min(pads) < 0:
            continue
        v = float(np.asarray(value).reshape(-1)[0])
        if node.op_type == "MaxPool" and v != -np.inf:
            continue
        if node.op_type != "MaxPool" and v != 0.0:
            continue
        if (node.attrs.get("auto_pad", "NOTSET") or "NOTSET") != "NOTSET":
            continue
        own = list(node.attrs.get("pads") or [0] * (2 * (rank - 2)))
        if node.op_type == "AveragePool" and any(own) and not node.attrs.get("count_include_pad", 0):
            continue  # original pads were not counted, the moved ones would be: not expressible
        n = rank - 2
        new_pads = [own[i] + begin[2 + i] for i in range(n)] + [own[n + i] + end[2 + i] for i in range(n)]
        if node.op_type != "Conv" and any(
            p >= k for p, k in zip(new_pads, list(node.attrs["kernel_shape"]) * 2, strict=True)
        ):
            continue  # pooling pads must stay smaller than the window (a window of pure padding is undefined)
        node.attrs["pads"] = new_pads
        if node.op_type == "AveragePool":
            node.attrs["count_include_pad"] = 1
        node.inputs[0] = pad.inputs[0]
        graph.nodes.remove(pad)
        uses = graph.consumers()
        count += 1
    return count


def transpose_into_gemm(graph: Graph) -> int:
    """y = Gemm(Transpose(a, perm=[1,0]), B)  =>  y = Gemm(a, B, transA=!transA)   (same for B / transB)."""
    count = 0
    uses = graph.consumers()
    producers = graph.producers()
    for gemm in [n for n in graph.nodes if _is(n, "Gemm")]:
        for i, flag in ((0, "transA"), (1, "transB")):
            t = producers.get(gemm.inputs[i])
            if t is None or not _is(t, "Transpose") or single_consumer(graph, gemm.inputs[i], uses) is not gemm:
                continue
            if list(t.attrs.get("perm") or [1, 0]) != [1, 0]:
                continue
            gemm.inputs[i] = t.inputs[0]
            gemm.attrs[flag] = 0 if gemm.attrs.get(flag, 0) else 1
            graph.nodes.remove(t)
            uses = graph.consumers()
            count += 1
    return count


def merge_transposes(graph: Graph) -> int:
    """z = Transpose(Transpose(x, p1), p2)  =>  z = Transpose(x, [p1[i] for i in p2])  (dropped if identity)."""
    count = 0
    producers = graph.producers()
    uses = graph.consumers()
    for second in [n for n in graph.nodes if _is(n, "Transpose")]:
        first = producers.get(second.inputs[0])
        if first is None or not _is(first, "Transpose") or single_consumer(graph, second.inputs[0], uses) is not second:
            continue
        rank = len(graph.shape(first.inputs[0]))
        p1 = list(first.attrs.get("perm") or range(rank)[::-1])
        p2 = list(second.attrs.get("perm") or range(rank)[::-1])
        second.attrs["perm"] = [p1[i] for i in p2]
        second.inputs[0] = first.inputs[0]
        graph.nodes.remove(first)
        producers, uses = graph.producers(), graph.consumers()
        count += 1
    return count


_RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def merge_reshapes(graph: Graph) -> int:
    """Chains of Reshape/Flatten/Squeeze/Unsqueeze become one Reshape to the final (static) shape.

    z = Unsqueeze(Flatten(Reshape(x, s1)))   =>   z = Reshape(x, shape(z))
    """
    count = 0
    producers = graph.producers()
    uses = graph.consumers()
    for second in [n for n in graph.nodes if _is(n, *_RESHAPES)]:
        first = producers.get(second.inputs[0])
        if first is None or not _is(first, *_RESHAPES) or single_consumer(graph, second.inputs[0], uses) is not second:
            continue
        shape = np.asarray(graph.shape(second.outputs[0]), dtype=np.int64)
        second.op_type, second.attrs = "Reshape", {"allowzero": 0} if graph.opset >= 14 else {}
        second.inputs = [first.inputs[0], add_constant(graph, f"{second.name}.shape", shape)]
        graph.nodes.remove(first)
        producers, uses = graph.producers(), graph.consumers()
        count += 1
    return count


def merge_concats(graph: Graph) -> int:
    """y = Concat(a, Concat(b, c, axis=k), d, axis=k)  =>  y = Concat(a, b, c, d, axis=k)."""
    count = 0
    producers = graph.producers()
    uses = graph.consumers()
    for outer in [n for n in graph.nodes if _is(n, "Concat")]:
        rank = len(graph.shape(outer.outputs[0]))
        axis = int(outer.attrs["axis"]) % rank
        merged = []
        changed = False
        for name in outer.inputs:
            inner = producers.get(name)
            if (
                inner is not None
                and _is(inner, "Concat")
                and int(inner.attrs["axis"]) % rank == axis
                and single_consumer(graph, name, uses) is outer
            ):
                merged.extend(inner.inputs)
                graph.nodes.remove(inner)
                changed = True
                count += 1
            else:
                merged.append(name)
        if changed:
            outer.inputs = merged
            producers, uses = graph.producers(), graph.consumers()
    return count


def _make_fused(graph: Graph, node: Node) -> None:
    if node.domain != DOMAIN:
        node.op_type, node.domain = f"Fused{node.op_type}", DOMAIN
        node.attrs.setdefault("activation", "")
        node.attrs.setdefault("activation_params", [])


def _activation_params(graph: Graph, act: Node) -> list[float] | None:
    if act.op_type == "Clip" and graph.opset >= 11:
        lo = graph.const(act.input(1)) if act.input(1) else np.float32(-np.inf)
        hi = graph.const(act.input(2)) if act.input(2) else np.float32(np.inf)
        return None if lo is None or hi is None else [float(lo), float(hi)]
    return attribute_params(act.op_type, act.attrs)


def fuse_activation(graph: Graph) -> int:
    """An activation after Conv/Gemm runs in the kernel's epilogue; so does x * Sigmoid(x) (SiLU).

    y = Relu(Conv(x, W, b))                 =>   y = FusedConv(x, W, b, activation=Relu)
    y = Mul(c, Sigmoid(c)), c = Conv(x, W)  =>   y = FusedConv(x, W, activation=SiLU)
    """
    count = 0
    uses = graph.consumers()
    for node in list(graph.nodes):
        if node not in graph.nodes or not (_fused_or(node, "Conv") or _fused_or(node, "Gemm")):
            continue
        if node.attrs.get("activation") or graph.values[node.outputs[0]].dtype != np.float32:
            continue
        y = node.outputs[0]
        readers = uses.get(y, [])
        if y in graph.outputs:
            continue
        if len(readers) == 1 and _is(readers[0], *STANDALONE) and readers[0].inputs[0] == y:
            act = readers[0]
            params = _activation_params(graph, act)
            if params is None:
                continue
            _make_fused(graph, node)
            node.attrs["activation"], node.attrs["activation_params"] = act.op_type, params
            _absorb(graph, node, act)
        elif len(readers) == 2 and {r.op_type for r in readers} == {"Sigmoid", "Mul"}:
            sig = next(r for r in readers if r.op_type == "Sigmoid")
            mul = next(r for r in readers if r.op_type == "Mul")
            if single_consumer(graph, sig.outputs[0], uses) is not mul or sorted(mul.inputs) != sorted(
                [y, sig.outputs[0]]
            ):
                continue
            _make_fused(graph, node)
            node.attrs["activation"], node.attrs["activation_params"] = "SiLU", []
            graph.nodes.remove(sig)
            _absorb(graph, node, mul)
        else:
            continue
        uses = graph.consumers()
        count += 1
    return count


def fuse_residual(graph: Graph) -> int:
    """A residual Add of a same-shaped tensor joins the Conv's epilogue (before any activation, which a
    following fuse_activation then adds).

        y = Relu(Add(Conv(x, W, b), r))   =>   y = FusedConv(x, W, b, r, activation=Relu)
    """
    count = 0
    uses = graph.consumers()
    producers = graph.producers()
    for add in [n for n in graph.nodes if _is(n, "Add")]:
        for i in (0, 1):
            conv, other = producers.get(add.inputs[i]), add.inputs[1 - i]
            if conv is None or not _fused_or(conv, "Conv") or single_consumer(graph, add.inputs[i], uses) is not add:
                continue
            if conv.attrs.get("activation") or len(conv.inputs) > 3 and conv.inputs[3]:
                continue
            out = graph.shape(add.outputs[0])
            if graph.shape(other) != out or graph.shape(add.inputs[i]) != out or other == add.inputs[i]:
                continue
            _make_fused(graph, conv)
            conv.inputs = [*conv.inputs[:3], *[""] * (3 - len(conv.inputs)), other]
            _absorb(graph, conv, add)
            uses, producers = graph.consumers(), graph.producers()
            count += 1
            break
    return count


def unfuse(graph: Graph) -> Graph:
    """A copy of the graph with Fused* nodes expanded back to standard ONNX (for onnxruntime checks)."""
    out = Graph(
        graph.name, [], dict(graph.values), list(graph.inputs), list(graph.outputs), graph.opset, dict(graph.metadata)
    )
    for node in graph.nodes:
        if node.domain != DOMAIN:
            out.nodes.append(node)
            continue
        base = node.op_type.removeprefix("Fused")
        attrs = {k: v for k, v in node.attrs.items() if k not in ("activation", "activation_params")}
        y = node.outputs[0]
        cur = f"{y}.pre"
        out.values[cur] = Value(cur, graph.values[y].dtype, graph.values[y].shape)
        inputs = list(node.inputs[:3])
        while inputs and not inputs[-1]:
            inputs.pop()
        out.nodes.append(Node(base, f"{node.name}.op", inputs, [cur], attrs))
        steps = []
        if len(node.inputs) > 3 and node.inputs[3]:
            steps.append(("Add", [node.inputs[3]], {}))
        act, params = node.attrs.get("activation"), list(node.attrs.get("activation_params") or [])
        if act == "SiLU":
            steps.append(("SiLU", [], {}))
        elif act == "Clip":
            lo = add_constant(out, f"{node.name}.min", np.asarray(params[0], np.float32))
            hi = add_constant(out, f"{node.name}.max", np.asarray(params[1], np.float32))
            steps.append(("Clip", [lo, hi], {}))
        elif act:
            keys = [key for key, _ in ACTIVATIONS[act].params]
            steps.append((act, [], dict(zip(keys, params, strict=True))))
        for k, (op, extra, attrs2) in enumerate(steps):
            nxt = y if k == len(steps) - 1 else f"{y}.s{k}"
            if nxt != y:
                out.values[nxt] = Value(nxt, graph.values[y].dtype, graph.values[y].shape)
            if op == "SiLU":
                sig = f"{y}.sig"
                out.values[sig] = Value(sig, graph.values[y].dtype, graph.values[y].shape)
                out.nodes.append(Node("Sigmoid", f"{node.name}.sigmoid", [cur], [sig]))
                out.nodes.append(Node("Mul", f"{node.name}.silu", [cur, sig], [nxt]))
            else:
                out.nodes.append(Node(op, f"{node.name}.{op.lower()}", [cur, *extra], [nxt], attrs2))
            cur = nxt
        if not steps:
            out.nodes[-1].outputs = [y]
            del out.values[f"{y}.pre"]
    return out
