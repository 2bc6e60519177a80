"""The C4 convolution shaders (layout.py): one output texel (4 channels of one pixel) per fragment, or 4
neighbouring pixels per fragment in 4 render targets (conv_x4, merged by movement.merge_x4). Weights are
repacked into textures the shaders sample with texture()."""

from __future__ import annotations

import numpy as np

from ..ir import Node
from . import geometry, window
from .glsl import activation_glsl, fl, frag_plane, inv, plane_origin, split
from .layout import MAX_WIDTH, Grid
from .program import Program, ShaderContext, fused_epilogue


def weight_blocks(M4: int, T: int) -> tuple[int, int]:
    """(column blocks, output planes per block) of a C4 conv's weight texture: planes m4 * T + tap rows at most
    2048, so past that the planes continue in another block of columns."""
    rows = min(M4, MAX_WIDTH // T)
    return -(-M4 // rows), rows


def _c4_weights(wdata: np.ndarray, M: int, CG: int, T: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A dense C4 conv's weights [M, CG, T] as its weight texture (texels, (width, height)): texel (x = b * 4 CG4 +
    input channel, y = r * T + tap) holds the weights of output channels 4 m4 .. 4 m4 + 3, m4 = b * rows + r
    (one block of columns unless M4 * T > 2048)."""
    M4, CG4 = -(-M // 4), -(-CG // 4)
    blocks, rows = weight_blocks(M4, T)
    full = np.zeros((blocks * rows * 4, CG4 * 4, T), np.float32)
    full[:M, :CG] = wdata
    return full.reshape(blocks, rows, 4, CG4 * 4, T).transpose(1, 4, 0, 3, 2), (blocks * CG4 * 4, rows * T)


def _c4_weight_head(geo: geometry.Conv, gi: Grid, M4: int, CG4: int, T: int, wsize: tuple[int, int]) -> list[str]:
    """Shader lines placing a dense C4 conv's fragment: iq0 (its first input plane, per group), mb/mr (its
    weight block and row, _c4_weights), wy and wxb (its weight texel row and first column)."""
    WW, WH = wsize
    MG = geo.MG
    if geo.group == 1:
        lines = [f"float iq0 = n * {fl(gi.C4)};"]
    else:
        lines = [f"float iq0 = n * {fl(gi.C4)} + floor((m4 + 0.5) * {fl(4 / MG)}) * {fl(CG4)};"]
    blocks, rows = weight_blocks(M4, T)
    lines.append(split("m4", rows, "mb", "mr") if blocks > 1 else "float mb = 0.0, mr = m4;")
    lines.append(f"float wy = (mr * {fl(T)} + 0.5) * {fl(1 / WH)};")
    lines.append(f"float wxb = mb * {fl(CG4 * 4 / WW)} + {fl(0.5 / WW)};")
    return lines


def _c4_unit(gi: Grid, u: int, inv_in: str, WW: int) -> tuple[str, list[str]]:
    """Unrolled input plane u of a dense C4 conv's loop over c: (its index expression, the lines locating its
    plane origin org{u}, sample base base{u} and weight column wx{u})."""
    c = f"(c + {u})" if u else "c"
    return c, [
        f"float qi{u} = iq0 + float({c});",
        plane_origin(gi, f"qi{u}", f"org{u}", "    "),
        f"vec2 base{u} = (org{u} + ib) * {inv_in};",
        f"float wx{u} = float({c}) * {fl(4 / WW)} + wxb;",
    ]


def _c4_operands(g: ShaderContext, node: Node, M: int, weights: tuple[np.ndarray, tuple[int, int]]):
    """The inputs of a C4 conv shader (the image, its repacked weights, bias and residual), the GLSL of the
    fragment's bias (from m4, its output plane in the batch item) and the epilogue with the residual's input
    index (None without)."""
    x, w, b = node.input(0), node.input(1), node.input(2)
    M4 = -(-M // 4)
    arr, wsize = weights
    inputs = [x, g.add_const(f"{w}@c4w", arr, wsize)]
    bias = "vec4(0.0)"
    if b:
        bv = np.zeros(M4 * 4, np.float32)
        bv[:M] = np.asarray(g.const(b), np.float32).reshape(-1)
        inputs.append(g.add_const(f"{b}@c4b", bv.reshape(1, M4, 4), (M4, 1)))
        bias = f"texture(t{len(inputs) - 1}, vec2((m4 + 0.5) * {fl(1 / M4)}, 0.5))"
    epi, residual = fused_epilogue(node, inputs)
    return inputs, bias, epi, residual


def conv_x4(g: ShaderContext, node: Node) -> Program:
    """conv_c4 for 4 pixels per fragment: output j (render target j) is pixel 4 X + j of the fragment's column
    X in the parts' grid. Per input plane and kernel row, every input column the 4 pixels' taps touch is
    sampled once, and each weight texel once for the 4 pixels."""
    x, w = node.input(0), node.input(1)
    geo = geometry.conv(g.graph, node)
    gi, gp = g.grid(x), g.grid(node.outputs[0])  # input, one part
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geo.win.K, geo.win.S, geo.win.D, geo.win.P
    T = KH * KW
    M, CG = geo.M, geo.CG
    M4, CG4 = -(-M // 4), -(-CG // 4)
    weights = _c4_weights(np.asarray(g.const(w), np.float32).reshape(M, CG, T), M, CG, T)  # as conv_c4
    WW, WH = weights[1]
    inputs, bias, epi, residual = _c4_operands(g, node, M, weights)
    head = [frag_plane(gp, "o"), split("oq", M4, "n", "m4")]
    head.append(f"vec2 ib = vec2(ox * {fl(4 * SW)} + {fl(0.5 - PL)}, oy * {fl(SH)} + {fl(0.5 - PT)});")
    offsets = sorted({j * SW + kx * DW for j in range(4) for kx in range(KW)})
    colc = set()  # offsets whose column can fall outside the image (pixels past the real width included)
    for d in offsets:  # input column ix = 4 X SW - PL + d
        c = []
        if d - PL < 0:
            c.append(f"ox * {fl(4 * SW)} >= {fl(PL - d)}")
        if (gp.W - 1) * 4 * SW - PL + d >= gi.W:
            c.append(f"ox * {fl(4 * SW)} < {fl(gi.W + PL - d)}")
        if c:
            head.append(f"bool cx{d} = {' && '.join(c)};")
            colc.add(d)
    rowc = {}  # 1-row kernels: the one row's condition, when it can fail
    if KH == 1 and window.row_cond(geo.win, gi, gp, "oy", "0.0") != "true":
        head.append(f"bool ry0 = {window.row_cond(geo.win, gi, gp, 'oy', '0.0')};")
        rowc[0] = "ry0"
    head += _c4_weight_head(geo, gi, M4, CG4, T, weights[1])
    head.append(f"vec4 b4 = {bias};")
    head.append("vec4 a0 = b4, a1 = b4, a2 = b4, a3 = b4;")
    inv_in = inv(gi.size)
    unroll = next(u for u in ((2, 1) if T == 1 else (1,)) if CG4 % u == 0)
    body = []
    for u in range(unroll):
        c, lines = _c4_unit(gi, u, inv_in, WW)
        body += lines
        # kernel rows in a loop (SwiftShader's JIT time grows fast with unrolled samplers), columns unrolled
        body.append(f"for (int ky = 0; ky < {KH}; ky++) {{" if KH > 1 else "{")
        if KH > 1:
            body.append("  float fy = float(ky);")
            body.append(f"  bool rin = {window.row_cond(geo.win, gi, gp, 'oy', 'fy')};")
            body.append(f"  vec2 rb = base{u} + vec2(0.0, fy * {fl(DH / gi.size[1])});")
            body.append(f"  float wr = wy + fy * {fl(KW / WH)};")
        else:
            body.append(f"  bool rin = {rowc.get(0, 'true')}; vec2 rb = base{u}; float wr = wy;")
        for d in offsets:
            conds = ["rin"] + ([f"cx{d}"] if d in colc else [])
            v = f"texture(t0, rb + vec2({fl(d / gi.size[0])}, 0.0))"
            body.append(f"  vec4 x{d} = {' && '.join(conds)} ? {v} : vec4(0.0);")
        for kx in range(KW):
            wy = "wr" if kx == 0 else f"wr + {fl(kx / WH)}"
            for j in range(4):
                body.append(f"  vec4 w{j}_{kx} = texture(t1, vec2(wx{u}{' + ' + fl(j / WW) if j else ''}, {wy}));")
            for j in range(4):
                d = j * SW + kx * DW
                body.append(f"  a{j} += x{d}.x * w0_{kx} + x{d}.y * w1_{kx} + x{d}.z * w2_{kx} + x{d}.w * w3_{kx};")
        body.append("}")
    inner = "\n    ".join(body)
    tail = []
    if residual is not None:
        go = g.grid(node.inputs[3])
        tail.append(plane_origin(go, "oq", "rorg"))
        for j in range(4):
            tail.append(
                f"a{j} += texture(t{residual}, (rorg + vec2(ox * 4.0 + {fl(j + 0.5)}, oy + 0.5)) * {inv(go.size)});"
            )
    for j in range(4):
        tail.append(f"o{j} = {activation_glsl(epi.activation, epi.params, f'a{j}')};")
    src = "\n  ".join(head)
    end = "\n  ".join(tail)
    return Program(
        inputs,
        f"""void main() {{
  {src}
  for (int c = 0; c < {CG4}; c += {unroll}) {{
    {inner}
  }}
  {end}
}}
""",
        outputs=4,
    )


def conv_c4(g: ShaderContext, node: Node) -> Program:
    """A C4 conv, one output texel per fragment: depthwise (one weight texel per tap) or dense."""
    x, w = node.input(0), node.input(1)
    geo = geometry.conv(g.graph, node)
    gi, go = g.grid(x), g.grid(node.outputs[0])
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geo.win.K, geo.win.S, geo.win.D, geo.win.P
    T = KH * KW
    M, CG = geo.M, geo.CG
    M4 = -(-M // 4)
    wdata = np.asarray(g.const(w), np.float32).reshape(M, CG, T)
    depthwise = geo.depthwise
    if depthwise:
        # weight texel (tap, c4) = the 4 channels' weights of that tap
        arr = np.zeros((M4 * 4, T), np.float32)
        arr[:M] = wdata[:, 0, :]
        arr = arr.reshape(M4, 4, T).transpose(0, 2, 1)  # [row c4][x tap][lane]
        wsize = (T, M4)
    else:
        arr, wsize = _c4_weights(wdata, M, CG, T)
    inputs, bias, epi, res = _c4_operands(g, node, M, (arr, wsize))
    residual = "" if res is None else f"acc += texture(t{res}, gl_FragCoord.xy * {inv(go.size)});"
    inv_in = inv(gi.size)
    # big kernels loop over their rows and wide rows over chunks of columns (window.window_rows): SwiftShader's
    # JIT takes minutes on hundreds of samplers
    row_loop = T * (2 if depthwise else 5) > 50
    taps, conds = window.taps(geo.win, gi, go, "ox", "oy")
    head = [frag_plane(go, "o"), split("oq", M4, "n", "m4")]
    head.append(f"vec2 ib = vec2(ox * {fl(SW)} + {fl(0.5 - PL)}, oy * {fl(SH)} + {fl(0.5 - PT)});")
    if row_loop:
        head += window.column_flags(geo.win, gi, go)
    else:
        head += [f"bool in{t} = {c};" for t, c in enumerate(conds) if c]
    head.append(f"vec4 acc = {bias};")

    def tap_fetch(t: int, base: str) -> str:
        ky, kx = taps[t]
        off = f"vec2({fl(kx * DW / gi.size[0])}, {fl(ky * DH / gi.size[1])})"
        v = f"texture(t0, {base} + {off})"
        return f"(in{t} ? {v} : vec4(0.0))" if conds[t] else v

    def row_taps(base: str, weight) -> list[str]:
        """window.window_rows with weight(fx) the GLSL accumulating the tap of column fx, whose value is v."""
        return window.window_rows(
            geo.win, gi, go, base, lambda v, cond, fx: [f"{{ vec4 v = {cond} ? {v} : vec4(0.0);", f"  {weight(fx)} }}"]
        )

    lines = []
    if depthwise:
        head.append(plane_origin(gi, "oq", "org"))
        head.append(f"vec2 base = (org + ib) * {inv_in};")
        head.append(f"float wy = (m4 + 0.5) * {fl(1 / M4)};")
        if row_loop:
            lines = row_taps(
                "base",
                lambda fx: f"acc += v * texture(t1, vec2((fy * {fl(KW)} + {fx} + 0.5) * {fl(1 / T)}, wy));",
            )
        for t in range(0 if row_loop else T):
            lines.append(f"acc += {tap_fetch(t, 'base')} * texture(t1, vec2({fl((t + 0.5) / T)}, wy));")
        loop = "\n  ".join(lines)
    else:
        CG4 = -(-CG // 4)
        WW, WH = wsize
        head += _c4_weight_head(geo, gi, M4, CG4, T, wsize)
        unroll = next(u for u in ((4, 2, 1) if T == 1 else (1,)) if CG4 % u == 0)
        body = []
        for u in range(unroll):
            c, lines = _c4_unit(gi, u, inv_in, WW)
            body += lines
            if row_loop:
                body += row_taps(
                    f"base{u}",
                    lambda fx, u=u: (
                        "acc += "
                        + " + ".join(
                            f"v.{'xyzw'[j]} * texture(t1, vec2(wx{u}{' + ' + fl(j / WW) if j else ''}, "
                            f"wy + (fy * {fl(KW)} + {fx}) * {fl(1 / WH)}))"
                            for j in range(4)
                        )
                        + ";"
                    ),
                )
            for t in range(0 if row_loop else T):
                wy = "wy" if t == 0 else f"wy + {fl(t / WH)}"
                body.append(f"{{ vec4 v = {tap_fetch(t, f'base{u}')};")
                terms = [
                    f"v.{'xyzw'[j]} * texture(t1, vec2(wx{u}{' + ' + fl(j / WW) if j else ''}, {wy}))" for j in range(4)
                ]
                body.append(f"  acc += {' + '.join(terms)}; }}")
        inner = "\n    ".join(body)
        loop = f"for (int c = 0; c < {CG4}; c += {unroll}) {{\n    {inner}\n  }}"
    src = "\n  ".join(head)
    return Program(
        inputs,
        f"""vec4 run() {{
  {src}
  {loop}
  {residual}
  vec4 v = acc;
  return {activation_glsl(epi.activation, epi.params)};
}}
""",
    )
