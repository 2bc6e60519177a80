"""WebGL2 plan: one GLSL ES 3.00 fragment shader per graph node, shapes and strides baked in.

The executor (web/webgl.js) keeps every tensor in an RGBA32F 2-D texture, in the flat4 layout or, for
convolutions and the ops around them, the channel-packed C4 layout (layout.py). A flat4 shader computes the 4
elements of its output texel from their flat indices: its program defines `float f(int i)` (output element
`i`) reading inputs through `x0(i)`, `x1(i)`..., which main() calls for the texel's 4 elements, or
`vec4 g(int b)` (the texel of elements b..b+3), or `vec4 run()` (the fragment's texel, from gl_FragCoord).

The plan is data in the manifest's `webgl` section (web/README.md): textures (sizes only; the executor
allocates them), which tensor lives in which texture (textures are reused once their tensor is dead),
programs (deduplicated sources), steps (program, input textures, output texture, node) and the constants,
shipped raw in `webgl-weights.bin` (float32, ONNX layout, or repacked for the C4 shaders). The package reads
the optimized IR; the IR knows nothing of WebGL.

Nodes without a shader run on wasm (wasm_runtime/partition.py): the plan is then a list of segments,
alternately GPU and wasm, with the tensors to move between texture and wasm memory before each.

    plan.py           plan_webgl: shader choice, C4 rewrite, programs, partition, the manifest section
    shaders.py        the table op type -> shader generators (flat4, and the C4 rule)
    c4_layout.py      the C4 layout pass (Relayout steps between layouts)
    textures.py       the texture planner
    layout.py         flat4 and C4 layouts, texture sizes
    glsl.py           the GLSL library (literals, index arithmetic, C4 addressing, activations)
    program.py        Program, the generators' context, the fragment shader around a program
    geometry.py       op attributes read for the shaders (to be replaced by the typed op specs)
    tuning.py         shader choices measured in Chromium
    conv.py, conv_c4.py, window.py, pool.py, matmul.py, elementwise.py, movement.py, normalization.py:
                      the shaders of one op family each
"""

from ..partition import Partition, Segment, link_wasm_part, wasm_part
from .glsl import activation_glsl
from .layout import MAX_WIDTH, Grid, Unsupported, c4_grid, texture_size
from .plan import WebGLPlan, partition, plan_webgl
from .program import Program
from .shaders import SHADERS, supports
from .tuning import COLUMN_CHUNK, COLUMNS_UNROLLED, SOFTMAX_TWO_STEPS

WEIGHTS_FILE = "webgl-weights.bin"

__all__ = [
    "COLUMN_CHUNK",
    "COLUMNS_UNROLLED",
    "MAX_WIDTH",
    "SHADERS",
    "SOFTMAX_TWO_STEPS",
    "WEIGHTS_FILE",
    "Grid",
    "Partition",
    "Program",
    "Segment",
    "Unsupported",
    "WebGLPlan",
    "activation_glsl",
    "c4_grid",
    "link_wasm_part",
    "partition",
    "plan_webgl",
    "supports",
    "texture_size",
    "wasm_part",
]
