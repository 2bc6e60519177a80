"""Where each region of a bundle's one wasm memory starts: the layout bundle.py and dynamic.py write into the
manifest and the executors (host.py, web/wasm.js and web/threads.js) read back from it.

A fixed-shape bundle, its arena sized by the planner:

    [0, base)              the module's stack and static data (base: its __heap_base, aligned)
    [weights, +W)          weights.bin, then the constants filled or derived at load time
    [arena, +A)            activations, graph inputs/outputs and scratch (planner.plan_memory)
    [control, +64)         the thread control block (web/threads.js uses 5 of its int32 words)
    [stacks, +7 x 64 KiB)  one stack per helper worker (the session's worker keeps the module's own)

A dynamic-shape bundle puts the arena last, so that a larger input shape only grows the memory:

    [0, base) | weights | control | step descriptor | helper stacks | arena (placed per input shape)

The step descriptor is where the session worker writes each split step's arguments for its helpers (a dynamic
plan's arguments are known only per input shape, so helpers cannot bind them once at load time).
"""

from __future__ import annotations

from dataclasses import dataclass

WASM_PAGE = 65536
MAX_PAGES = 65535  # what the shared-memory builds declare (wasm-ld caps --max-memory there)
ALIGN = 64  # every region and every tensor starts on a cache line (and a 16-byte SIMD boundary)
MAX_THREADS = 8
THREAD_STACK_BYTES = 64 * 1024
CONTROL_BYTES = 64
DESCRIPTOR_BYTES = 8 * 128  # float64 words: kernel index, arg count, split (units, count, align, deltas), args


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def pages_for(nbytes: int) -> int:
    """Wasm pages that hold `nbytes`."""
    return -(-nbytes // WASM_PAGE)


@dataclass(frozen=True)
class MemoryMap:
    weights_offset: int
    arena_offset: int
    control_offset: int
    stacks_offset: int
    pages: int  # the memory a run starts with (a dynamic bundle's grows past it per input shape)
    descriptor_offset: int | None = None  # dynamic bundles only


def _helper_stacks_end(stacks: int) -> int:
    return stacks + (MAX_THREADS - 1) * THREAD_STACK_BYTES


def static_map(heap_base: int, weights_bytes: int, arena_bytes: int) -> MemoryMap:
    weights = align(heap_base)
    arena = align(weights + weights_bytes)
    control = align(arena + arena_bytes)
    stacks = align(control + CONTROL_BYTES)
    return MemoryMap(weights, arena, control, stacks, max(1, pages_for(_helper_stacks_end(stacks))))


def dynamic_map(heap_base: int, weights_bytes: int) -> MemoryMap:
    weights = align(heap_base)
    control = align(weights + weights_bytes)
    descriptor = align(control + CONTROL_BYTES)
    stacks = align(descriptor + DESCRIPTOR_BYTES)
    arena = align(_helper_stacks_end(stacks))
    # the fixed regions and one page for the arena to start with; it grows as input shapes need
    return MemoryMap(weights, arena, control, stacks, pages_for(arena) + 1, descriptor)
