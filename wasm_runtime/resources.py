"""Where the kernels' C sources, the JS runtime and the demos live, in a checkout and in an installed wheel.

The checkout keeps them at the top level (kernels_wasm/, web/, demos/); pyproject.toml maps them into the wheel as
wasm_runtime/_data/<name>/ (setuptools package-dir), so an installed package finds them through importlib.resources
next to its own modules. A checkout, imported straight from the tree or installed editable (setuptools' editable
finder only maps module names, it does not create _data/), has no _data/ and reads the top-level directories.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DATA_DIRS = ("kernels_wasm", "web", "demos")


def data_dir(name: str) -> Path:
    """The directory holding `name` (one of DATA_DIRS) as a real path (kernels are compiled from it by a subprocess
    and the server sends files from it, so a zip-backed resource would not do)."""
    if name not in DATA_DIRS:
        raise ValueError(f"unknown data directory {name!r}; one of {DATA_DIRS}")
    installed = resources.files("wasm_runtime") / "_data" / name
    if installed.is_dir():
        return Path(str(installed))
    checkout = Path(str(resources.files("wasm_runtime"))).parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"wasm_runtime is installed without its {name}/ data (looked in {installed}, {checkout})")
