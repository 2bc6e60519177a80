"""GLSL of a conv or pool window. Over a C4 input: which taps can fall outside the image (decided from the
output size, so most taps need no test), and the loop over a big window's rows and wide rows' columns. Over
a flat4 input: the loop over the taps inside the image."""

from __future__ import annotations

from . import tuning
from .geometry import Window
from .glsl import fl
from .layout import Grid


def flat4_taps(win: Window, body: str, indent: str) -> str:
    """GLSL running `body` for every tap (iy, ix) of a flat4 window inside the image, from the window's origin
    (iy0, ix0); its lines after the first are indented by `indent`."""
    (H, W), (KH, KW), (DH, DW) = win.In, win.K, win.D
    lines = [
        f"for (int ky = 0; ky < {KH}; ky++) {{",
        f"  int iy = iy0 + ky * {DH};",
        f"  if (iy < 0 || iy >= {H}) continue;",
        f"  for (int kx = 0; kx < {KW}; kx++) {{",
        f"    int ix = ix0 + kx * {DW};",
        f"    if (ix < 0 || ix >= {W}) continue;",
        f"    {body}",
        "  }",
        "}",
    ]
    return f"\n{indent}".join(lines)


def _edge(o: str, S: int, off: int, out_size: int, in_size: int) -> list[str]:
    """GLSL conditions that input coordinate o * S + off lies inside [0, in_size), only for the bounds some
    output position 0 .. out_size - 1 can cross."""
    conds = []
    if off < 0:
        conds.append(f"{o} * {fl(S)} >= {fl(-off)}")
    if (out_size - 1) * S + off >= in_size:
        conds.append(f"{o} * {fl(S)} < {fl(in_size - off)}")
    return conds


def taps(win: Window, grid_in: Grid, grid_out: Grid, ox: str, oy: str):
    """Per tap (ky, kx): its texel offset from the window origin and the GLSL condition that it is inside the
    image, or None when it always is (decided from the output size)."""
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = win.K, win.S, win.D, win.P
    conds, out = [], []
    for ky in range(KH):
        cy = _edge(oy, SH, ky * DH - PT, grid_out.H, grid_in.H)
        for kx in range(KW):
            c = " && ".join(cy + _edge(ox, SW, kx * DW - PL, grid_out.W, grid_in.W))
            conds.append(c or None)
            out.append((ky, kx))
    return out, conds


def _col_cond(win: Window, grid_in: Grid, grid_out: Grid, kx: int, ox: str) -> str:
    """The GLSL condition that column tap kx is inside the image ("" when it always is)."""
    SW, DW, PL = win.S[1], win.D[1], win.P[1]
    lo, hi = kx * DW - PL, (grid_out.W - 1) * SW + kx * DW - PL
    cx = []
    if lo < 0:
        cx.append(f"{ox} * {fl(SW)} >= {fl(-lo)}")
    if hi >= grid_in.W:
        cx.append(f"{ox} * {fl(SW)} < {fl(grid_in.W - lo)}")
    return " && ".join(cx)


def row_cond(win: Window, grid_in: Grid, grid_out: Grid, oy: str, fy: str) -> str:
    """The GLSL condition that kernel row `fy` (a float in a loop) is inside the image ("true" if always)."""
    KH, SH, DH, PT = win.K[0], win.S[0], win.D[0], win.P[0]
    iy = f"{oy} * {fl(SH)} + {fy} * {fl(DH)}"
    rc = []
    if PT > 0:
        rc.append(f"{iy} >= {fl(PT)}")
    if (grid_out.H - 1) * SH + (KH - 1) * DH - PT >= grid_in.H:
        rc.append(f"{iy} < {fl(grid_in.H + PT)}")
    return " && ".join(rc) or "true"


def _window_columns(KW: int) -> tuple[int, list[int]]:
    """(columns covered by the chunk loop, the columns unrolled with constant indices) of a window row."""
    if KW <= tuning.COLUMNS_UNROLLED:
        return 0, list(range(KW))
    looped = KW - KW % tuning.COLUMN_CHUNK
    return looped, list(range(looped, KW))


def column_flags(win: Window, grid_in: Grid, grid_out: Grid) -> list[str]:
    """Head lines for window_rows: a bool cx<kx> per unrolled column that can fall outside the image, and
    the window's first input column ixb when the chunk loop needs bounds checks."""
    KW, SW, PL = win.K[1], win.S[1], win.P[1]
    looped, cols = _window_columns(KW)
    lines = [f"bool cx{kx} = {c};" for kx in cols if (c := _col_cond(win, grid_in, grid_out, kx, "ox"))]
    if looped and any(_loop_col_checks(win, grid_in, grid_out)):
        lines.append(f"float ixb = ox * {fl(SW)} - {fl(PL)};")
    return lines


def _loop_col_checks(win: Window, grid_in: Grid, grid_out: Grid) -> tuple[bool, bool]:
    """Whether some tap of the window falls left of the image, and whether some falls right of it."""
    KW, SW, DW, PL = win.K[1], win.S[1], win.D[1], win.P[1]
    return PL > 0, (grid_out.W - 1) * SW + (KW - 1) * DW - PL >= grid_in.W


def window_rows(win: Window, grid_in: Grid, grid_out: Grid, base: str, tap) -> list[str]:
    """GLSL looping over the window's rows from sample position `base` (the window's top-left tap), each row's
    columns unrolled or looped in chunks (_window_columns). tap(v, cond, fx) returns the GLSL handling one
    tap: v its texture() sample, cond the condition that it lies inside the image, fx its column index (a
    GLSL float expression). Needs column_flags in the shader's head."""
    (KH, KW), DH, DW = win.K, win.D[0], win.D[1]
    w_in = grid_in.size[0]
    looped, cols = _window_columns(KW)
    out = [f"for (int ky = 0; ky < {KH}; ky++) {{", "  float fy = float(ky);"]
    out.append(f"  bool rin = {row_cond(win, grid_in, grid_out, 'oy', 'fy')};")
    out.append(f"  vec2 rb = {base} + vec2(0.0, fy * {fl(DH / grid_in.size[1])});")
    if looped:
        lo, hi = _loop_col_checks(win, grid_in, grid_out)
        out.append(f"  for (int kx = 0; kx < {looped}; kx += {tuning.COLUMN_CHUNK}) {{")
        out.append("    float fx = float(kx);")
        for u in range(tuning.COLUMN_CHUNK):
            fx = f"(fx + {fl(u)})" if u else "fx"
            cond = ["rin"]
            if lo or hi:
                out.append(f"    float ix{u} = ixb + {fx} * {fl(DW)};")
                cond += [f"ix{u} >= 0.0"] * lo + [f"ix{u} < {fl(grid_in.W)}"] * hi
            v = f"texture(t0, rb + vec2({fx} * {fl(DW / w_in)}, 0.0))"
            out += ["    " + line for line in tap(v, " && ".join(cond), fx)]
        out.append("  }")
    for kx in cols:
        cond = " && ".join(["rin"] + ([f"cx{kx}"] if _col_cond(win, grid_in, grid_out, kx, "ox") else []))
        v = f"texture(t0, rb + vec2({fl(kx * DW / w_in)}, 0.0))"
        out += ["  " + line for line in tap(v, cond, fl(kx))]
    out.append("}")
    return out
