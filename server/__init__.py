"""Local HTTP server for web bundles, the browser runtime and the demos."""

from server.app import create_app, serve

__all__ = ["create_app", "serve"]
