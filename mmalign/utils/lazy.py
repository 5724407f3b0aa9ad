"""Lazy package attributes (PEP 562): a public name's module is imported on first use.

``import mmalign`` then costs what its names cost when they are used, not the
price of torch, numba and scikit-learn up front.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, namespace: dict[str, Any], exports: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import its names on first use.

    A name in ``exports`` is read from its module, then kept in ``namespace`` so
    that later look-ups are plain attribute reads. Any other public name that is a
    submodule of ``package`` is imported as one (``mmalign.warping`` after
    ``import mmalign``).

    A name that is also a submodule's name (``mmalign.warping.dtw``, the function,
    beside ``mmalign/warping/dtw.py``) must be imported eagerly instead: importing
    the submodule by any route sets the package attribute to the module.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    namespace : dict
        The package's ``globals()``.
    exports : mapping of str to str
        Public name -> the module that defines it, relative to ``package``
        (``".aligner"``), or ``""`` for a submodule exported by its own name.

    Returns
    -------
    __getattr__, __dir__ : callable

    Examples
    --------
    >>> ns = {}
    >>> getattr_, dir_ = lazy_attributes("mmalign", ns, {"Alignment": ".alignment"})
    >>> getattr_("Alignment").__name__, "Alignment" in ns, dir_()
    ('Alignment', True, ['Alignment'])
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module:
            value = getattr(importlib.import_module(module, package), name)
        elif module == "" or (not name.startswith("_")
                              and importlib.util.find_spec(f"{package}.{name}") is not None):
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
