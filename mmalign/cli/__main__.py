"""``python -m mmalign.cli ...``: the same as ``mmalign`` and ``python -m mmalign``."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
