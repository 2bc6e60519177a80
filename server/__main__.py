"""`python -m server <models_dir> [--host HOST] [--port PORT] [--production]`"""

from __future__ import annotations

import argparse
import os
import sys

from server.app import serve
from server.servers import ServeError, check_host, check_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("models_dir", help="directory of web bundles (<name>/manifest.json)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    # a string, so that a bad port gets the same one-line message from check_port as from package-for-web serve
    parser.add_argument("--port", default="8000", help="port, 1 to 65535 (default: %(default)s)")
    parser.add_argument("--production", action="store_true", help="serve with waitress instead of werkzeug's server")
    args = parser.parse_args(argv)
    try:
        if not os.path.isdir(args.models_dir):
            raise ServeError(f"{args.models_dir}: no such directory of bundles")
        port = check_port(args.port)
        serve(args.models_dir, host=check_host(args.host), port=port, production=args.production)
    except ServeError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
