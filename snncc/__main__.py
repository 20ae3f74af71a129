"""``python -m snncc``: the same command line as the ``snncc`` console script."""

from __future__ import annotations

import sys

from snncc.cli import main

if __name__ == "__main__":
    sys.exit(main())
