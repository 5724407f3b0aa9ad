"""Small shared helpers at the lowest layer (no imports from the rest of mmalign)."""

from .files import atomic_write, check_output_file

__all__ = ["atomic_write", "check_output_file"]
