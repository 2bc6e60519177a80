"""The bundle memory layout (wasm_runtime/memory_map.py): regions in order, aligned, never overlapping, and
large enough for what web/threads.js (the thread pool) keeps in them."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from wasm_runtime import memory_map as mm

THREADS = Path(__file__).resolve().parent.parent / "web" / "threads.js"  # the thread pool, which owns the block


@pytest.mark.parametrize("heap_base", [1, 262_144, 1_048_577])
@pytest.mark.parametrize("weights, arena", [(0, 0), (100, 3), (5 << 20, 70_000)])
def test_regions_are_aligned_in_order_and_disjoint(heap_base, weights, arena):
    s = mm.static_map(heap_base, weights, arena)
    ends = [
        (s.weights_offset, s.weights_offset + weights),
        (s.arena_offset, s.arena_offset + arena),
        (s.control_offset, s.control_offset + mm.CONTROL_BYTES),
        (s.stacks_offset, s.stacks_offset + (mm.MAX_THREADS - 1) * mm.THREAD_STACK_BYTES),
    ]
    assert s.weights_offset >= heap_base
    assert all(start % mm.ALIGN == 0 for start, _ in ends)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(ends))
    assert (s.pages - 1) * mm.WASM_PAGE < ends[-1][1] <= s.pages * mm.WASM_PAGE

    d = mm.dynamic_map(heap_base, weights)
    ends = [
        (d.weights_offset, d.weights_offset + weights),
        (d.control_offset, d.control_offset + mm.CONTROL_BYTES),
        (d.descriptor_offset, d.descriptor_offset + mm.DESCRIPTOR_BYTES),
        (d.stacks_offset, d.stacks_offset + (mm.MAX_THREADS - 1) * mm.THREAD_STACK_BYTES),
        (d.arena_offset, d.arena_offset),
    ]
    assert d.weights_offset == s.weights_offset
    assert all(start % mm.ALIGN == 0 for start, _ in ends)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(ends))
    assert d.pages * mm.WASM_PAGE > d.arena_offset


def test_control_block_holds_the_words_the_worker_uses():
    words = int(re.search(r"^const CONTROL_WORDS = (\d+);", THREADS.read_text(), re.M).group(1))
    assert 4 * words <= mm.CONTROL_BYTES
