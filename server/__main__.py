"""`python -m server <models_dir> [--host HOST] [--port PORT]`"""

from __future__ import annotations

import argparse
import os

from server.app import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("models_dir", help="directory of web bundles (<name>/manifest.json)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.models_dir):
        parser.error(f"not a directory: {args.models_dir}")
    serve(args.models_dir, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
