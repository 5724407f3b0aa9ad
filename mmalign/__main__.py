"""``python -m mmalign ...``: the same as the ``mmalign`` command (:func:`mmalign.cli.main`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
