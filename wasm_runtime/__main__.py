"""`python -m wasm_runtime ...` is the package-for-web command."""

import sys

from .cli import main

sys.exit(main())
