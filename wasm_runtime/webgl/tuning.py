"""Shader choices measured in Chromium (SwiftShader), in one place: the generators read them when they run, so
benchmarks/webgl_profile.py `--set NAME=VALUE` can build both sides of an A/B from one tree."""

from __future__ import annotations

# A window row of at most COLUMNS_UNROLLED taps is unrolled whole; a wider one loops over chunks of
# COLUMN_CHUNK unrolled taps (then the remainder, unrolled), so a shader's size and its texture() count stay
# bounded whatever the kernel: a 256-tap 1-D conv unrolled whole was a 119 KB shader whose first draw
# (SwiftShader's JIT) lost the WebGL context, and a 31x31 conv with its rows unrolled had not finished its
# first draw after 300 s. Unrolled rows are faster up to 15 taps (Chromium/SwiftShader, A/B in one page,
# median of 16 runs: 7x7 depthwise 33-35 ms unrolled vs 58 ms in chunks of 4, 9x9 164 vs 184, 15x15 107 vs
# 132); chunks of 2, 4 or 8 taps ran within noise of each other on 31x31, 1x256 and 1x512 kernels.
COLUMNS_UNROLLED = 16
COLUMN_CHUNK = 4

# Softmax rows of at least this many elements take two steps (softmax_stats, then the normalization): the
# single step recomputes its row's max and sum for each element, O(length^2) per row, which made PP-OCRv4's
# 6625-class Softmax 34 s of a 36 s run in SwiftShader. Rows of 512 (Chromium/SwiftShader, A/B in one page,
# median of 20): length 4 1 vs 1 ms in one step, 8 1 vs 2, 16 2 vs 7, 40 2 vs 18.
SOFTMAX_TWO_STEPS = 8
