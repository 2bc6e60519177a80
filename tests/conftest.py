"""Shared fixtures for the browser tests: system Chromium, seeded zoo bundles, a live Flask server."""

from __future__ import annotations

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BROWSER_MODELS = ("squeezenet1.1", "mobilenetv2")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch args, pointed at the system Chromium (Playwright cannot download one here)."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": browser_type_launch_args.get("headless", True),
        "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS],
    }


@pytest.fixture(scope="session")
def zoo_models():
    """{name: onnx.ModelProto} of the seeded zoo models the browser tests run."""
    from wasm_runtime import zoo

    return {name: zoo.BUILDERS[name]() for name in BROWSER_MODELS}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, zoo_models):
    """A directory of bundles, one per zoo model, packaged once per session."""
    from wasm_runtime.package import package

    root = tmp_path_factory.mktemp("models")
    for name, model in zoo_models.items():
        package(model, root / name, name=name)
    return root


@pytest.fixture(scope="session")
def live_server(models_dir):
    """Base URL (no trailing slash) of server.app serving models_dir, web/ and demos/ on a free port."""
    from server.app import create_app, serving_in_background

    with serving_in_background(create_app(models_dir), "live-server") as url:
        yield url
