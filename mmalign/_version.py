"""The version of mmalign: one place, read by ``mmalign.__version__`` and by saved files."""

__version__ = "0.1.0"
