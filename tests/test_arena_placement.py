"""A dynamic bundle's arena is placed per input shape by the executor, with the planner's algorithm: Python's
(wasm_runtime/planner.py `place`, used by the packager and the Python host) and the browser's (web/dynamic.js
`place`) must give the same offsets, or a bundle would run with tensors overlapping in one executor only.
tests/data/arena_placement.json holds placements made by planner.place; this file checks planner.py against it
and, in Chromium, web/dynamic.js imported into the page.

Regenerate after a deliberate change of the placement: python tests/test_arena_placement.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from wasm_runtime.planner import place

FIXTURE = Path(__file__).parent / "data" / "arena_placement.json"

# (id, sizes, lives): crafted cases first (ties in size and first use, graph inputs live from step -1, items
# that fit in a hole below a later one), then seeded random arenas like a plan's (many small, a few large)
CRAFTED = [
    ("empty", [], []),
    ("one", [100], [(0, 3)]),
    ("disjoint-lives-share", [256, 256, 256], [(0, 1), (2, 3), (4, 5)]),
    ("size-ties-by-first-use", [128, 128, 128], [(3, 5), (0, 4), (1, 2)]),
    ("input-from-minus-one", [4096, 64, 1000], [(-1, 2), (0, 0), (1, 3)]),
    ("hole-below", [1000, 10, 500, 400], [(0, 2), (1, 5), (3, 6), (4, 6)]),
    ("unaligned-sizes", [1, 63, 65, 127, 129], [(0, 4), (0, 4), (1, 3), (2, 2), (0, 0)]),
]


def random_case(seed: int) -> tuple[str, list[int], list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    n, steps = int(rng.integers(20, 80)), int(rng.integers(10, 60))
    sizes = [int(s) for s in np.where(rng.random(n) < 0.1, rng.integers(1 << 16, 1 << 20, n), rng.integers(4, 4096, n))]
    first = rng.integers(-1, steps, n)
    lives = [(int(f), int(min(steps, f + rng.integers(0, 8)))) for f in first]
    return f"random-{seed}", sizes, lives


def table() -> dict:
    cases = []
    for name, sizes, lives in [*CRAFTED, *(random_case(seed) for seed in range(6))]:
        offsets, total = place(sizes, lives)
        cases.append({"id": name, "sizes": sizes, "lives": [list(x) for x in lives], "offsets": offsets,
                      "bytes": total})  # fmt: skip
    return {
        "generated_by": "python tests/test_arena_placement.py --write (from wasm_runtime/planner.py)",
        "cases": cases,
    }


ROWS = json.loads(FIXTURE.read_text())["cases"] if FIXTURE.exists() else []


def test_table_is_what_the_planner_places():
    assert table() == json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_table_placements_are_sound(row):
    """Aligned, within the arena, and no two items live at one step share a byte."""
    sizes, lives, offsets = row["sizes"], row["lives"], row["offsets"]
    assert all(o % 64 == 0 and o + s <= row["bytes"] for o, s in zip(offsets, sizes, strict=True))
    for a in range(len(sizes)):
        for b in range(a):
            if lives[a][0] <= lives[b][1] and lives[b][0] <= lives[a][1]:
                overlap = offsets[a] < offsets[b] + sizes[b] and offsets[b] < offsets[a] + sizes[a]
                assert not overlap, (row["id"], a, b)


@pytest.mark.browser
def test_browser_places_as_the_table(page, live_server):
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    got = page.evaluate(
        """async (rows) => {
          const { place } = await import("/runtime/dynamic.js");
          return rows.map((row) => ({ id: row.id, ...place(row.sizes, row.lives) }));
        }""",
        ROWS,
    )
    assert got == [{"id": r["id"], "offsets": r["offsets"], "bytes": r["bytes"]} for r in ROWS]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_arena_placement.py --write")
    data = table()
    rows = ",\n".join(f"  {json.dumps(case)}" for case in data["cases"])
    FIXTURE.write_text(f'{{"generated_by": {json.dumps(data["generated_by"])},\n "cases": [\n{rows}\n]}}\n')
    print(f"wrote {FIXTURE} ({len(data['cases'])} cases)")
