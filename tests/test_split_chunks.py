"""A split step is cut into chunks the same way by both executors: tests/data/split_chunks.json is a table of split
steps, thread counts and chunks per thread with the chunks and per-chunk arguments that wasm_runtime/host.py
(`chunks`, `split_args`) produces, and this file checks host.py against it and, in Chromium, web/threads.js
(`stepChunks`, `chunkArgs`, imported into the page as the runtime's own module).

Regenerate the table after a deliberate change of the cut: python tests/test_split_chunks.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from wasm_runtime.host import chunks, split_args

FIXTURE = Path(__file__).parent / "data" / "split_chunks.json"
# the claim word that threads.js publishes holds at most 255 chunks
MAX_CHUNKS = 255

# (id, args, split, threads, chunksPerThread): the splits are the shapes the planner writes (units over output
# rows, pixels or channels, an alignment, the count argument and the pointer arguments that move per unit)
# fmt: off
CASES = [
    ("one-thread", [100, 200, 64, 7], {"units": 64, "count": 2, "align": 1, "deltas": [[0, 4], [1, 4]]}, 1, 1),
    ("even-2", [100, 200, 64, 7], {"units": 64, "count": 2, "align": 1, "deltas": [[0, 4], [1, 4]]}, 2, 1),
    ("uneven-3", [1000, 5000, 100], {"units": 100, "count": 2, "align": 1, "deltas": [[0, 12], [1, 12]]}, 3, 1),
    ("align-4-short-last", [0, 8192, 50, 3], {"units": 50, "count": 2, "align": 4, "deltas": [[1, 16]]}, 4, 1),
    ("align-past-units", [64, 128, 3], {"units": 3, "count": 2, "align": 8, "deltas": [[0, 4], [1, 4]]}, 4, 1),
    ("fewer-units-than-chunks", [64, 128, 5], {"units": 5, "count": 2, "align": 1, "deltas": [[1, 4]]}, 4, 2),
    ("one-unit", [64, 128, 1, 0.25], {"units": 1, "count": 2, "align": 1, "deltas": [[0, 4], [1, 4]]}, 2, 4),
    ("mobilenet-pixels-2x2", [262144, 4194304, 327680, 12544, 32, 0.0, 6.0],
     {"units": 12544, "count": 3, "align": 4, "deltas": [[2, 128]]}, 2, 2),
    ("channels-align-16-3x4", [4096, 8192, 1280, 7],
     {"units": 1280, "count": 2, "align": 16, "deltas": [[0, 196], [1, 196]]}, 3, 4),
    ("count-first", [33, 1024, 2048], {"units": 33, "count": 0, "align": 2, "deltas": [[1, 8], [2, 8]]}, 4, 1),
    ("chunk-cap-255", [0, 65536, 100000], {"units": 100000, "count": 2, "align": 1, "deltas": [[1, 4]]}, 4, 64),
]
# fmt: on


def expected(args: list, split: dict, threads: int, per_thread: int) -> dict:
    """The table row host.py makes for a split step run as `threads * per_thread` chunks (at most MAX_CHUNKS)."""
    pieces = min(MAX_CHUNKS, threads * per_thread)
    cut = chunks(split["units"], split["align"], pieces)
    per_chunk = [split_args(args, split, u0, u1) for u0, u1 in cut]
    return {"pieces": pieces, "chunks": [list(c) for c in cut], "args": per_chunk}


def table() -> dict:
    cases = []
    for name, args, split, threads, per_thread in CASES:
        step = {"kernel": "f32_test", "args": args, "split": split}
        cases.append({"id": name, "step": step, "threads": threads, "chunksPerThread": per_thread,
                      **expected(args, split, threads, per_thread)})  # fmt: skip
    return {"generated_by": "python tests/test_split_chunks.py --write (from wasm_runtime/host.py)", "cases": cases}


ROWS = json.loads(FIXTURE.read_text())["cases"] if FIXTURE.exists() else []


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_host_cuts_as_the_table(row):
    step = row["step"]
    got = expected(step["args"], step["split"], row["threads"], row["chunksPerThread"])
    assert got == {"pieces": row["pieces"], "chunks": row["chunks"], "args": row["args"]}


def test_table_covers_the_cases():
    """The table is the one CASES generates: every case is in it, with host.py's answer."""
    assert table() == json.loads(FIXTURE.read_text())


def test_table_cuts_cover_each_split_exactly():
    """The rows themselves are sound: chunks in order, disjoint, aligned starts, covering [0, units)."""
    for row in ROWS:
        split = row["step"]["split"]
        ends = [u for c in row["chunks"] for u in c]
        assert ends[0] == 0 and ends[-1] == split["units"] and ends == sorted(ends), row["id"]
        assert all(u0 % split["align"] == 0 and u1 > u0 for u0, u1 in row["chunks"]), row["id"]
        assert all(ends[k] == ends[k + 1] for k in range(1, len(ends) - 1, 2)), row["id"]
        assert len(row["chunks"]) <= row["pieces"] <= MAX_CHUNKS, row["id"]


@pytest.fixture(scope="module")
def runtime_server(tmp_path_factory):
    """A server of web/ and no models."""
    from server.app import create_app, serving_in_background

    with serving_in_background(create_app(tmp_path_factory.mktemp("no-models")), "split-chunks") as url:
        yield url


@pytest.fixture
def runtime_page(page, runtime_server):
    """A page on that server's origin: the runtime's modules import into it as into a session's worker."""
    page.goto(f"{runtime_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    return page


@pytest.mark.browser
def test_browser_cuts_as_the_table(runtime_page):
    got = runtime_page.evaluate(
        """async (rows) => {
          const { stepChunks, chunkArgs } = await import("/runtime/threads.js");
          return rows.map((row) => {
            const cut = stepChunks(row.step, row.threads, row.chunksPerThread);
            return { id: row.id, chunks: cut, args: cut.map((c) => chunkArgs(row.step, c)) };
          });
        }""",
        ROWS,
    )
    assert got == [{"id": r["id"], "chunks": r["chunks"], "args": r["args"]} for r in ROWS]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_split_chunks.py --write")
    data = table()
    rows = ",\n".join(f"  {json.dumps(case)}" for case in data["cases"])  # one case a line
    FIXTURE.write_text(f'{{"generated_by": {json.dumps(data["generated_by"])},\n "cases": [\n{rows}\n]}}\n')
    print(f"wrote {FIXTURE} ({len(CASES)} cases)")
