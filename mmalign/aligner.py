"""The one interface every aligner implements: :class:`Aligner`."""

from __future__ import annotations

import abc
import importlib
import inspect
import json
import os
import re
import sys
import warnings
from typing import Any

import numpy as np
import torch

from .alignment import Alignment

__all__ = ["Aligner"]

_FORMAT = "mmalign.aligner"
_FORMAT_VERSION = 1
_META_KEY = "__meta__"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Fitted attributes that describe where the aligner runs rather than what it learned.
_NOT_SAVED = ("device_",)


class _Unserialisable(Exception):
    """Raised by _encode for a value save() cannot store."""


def _mmalign_version() -> str:
    import mmalign

    version = getattr(mmalign, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("mmalign")
        except Exception:  # not installed, e.g. running from a checkout
            version = "unknown"
    return str(version)


def _tensor_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
        t = t.float()
    return t.numpy()


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able form of ``value``; arrays and tensors go to ``arrays`` under ``key``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, torch.Tensor):
        arrays[key] = _tensor_to_numpy(value)
        return {"__tensor__": key, "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise _Unserialisable(f"object array at {key}")
        arrays[key] = value
        return {"__ndarray__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unserialisable(f"dict with non-string keys at {key}")
        return {"__dict__": {k: _encode(v, f"{key}/{k}", arrays) for k, v in value.items()}}
    if isinstance(value, Aligner):
        return {
            "__aligner__": _class_ref(type(value)),
            "params": {
                k: _encode(v, f"{key}/{k}", arrays) for k, v in value.get_params(deep=False).items()
            },
        }
    raise _Unserialisable(f"{type(value).__name__} at {key}")


def _decode(value: Any, arrays) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return np.array(arrays[value["__ndarray__"]])
    if "__tensor__" in value:
        dtype = getattr(torch, str(value.get("dtype")), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"path: unknown tensor dtype {value.get('dtype')!r} in saved metadata")
        return torch.from_numpy(np.array(arrays[value["__tensor__"]])).to(dtype)
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    if "__aligner__" in value:
        cls = _resolve_class(value["__aligner__"])
        return cls(**{k: _decode(v, arrays) for k, v in value["params"].items()})
    raise ValueError(f"path: unrecognised entry in saved metadata: {sorted(value)}")


def _class_ref(cls: type) -> dict[str, str]:
    return {"module": cls.__module__, "qualname": cls.__qualname__}


def _all_subclasses(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _resolve_class(ref: dict[str, str]) -> type:
    """The Aligner subclass named by ``ref``; never instantiates anything else."""
    module, qualname = ref.get("module", ""), ref.get("qualname", "")
    if not _MODULE_NAME.match(module) or "<locals>" in qualname:
        raise ValueError(f"path: cannot load class {module}.{qualname}")
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"path: cannot import module {module!r} of the saved aligner: {err}") from None
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, Aligner):
        return obj
    # Classes not reachable from their module (defined in doctests or shadowed):
    # the most recently created loaded subclass with that name.
    matches = [
        sub
        for sub in _all_subclasses(Aligner)
        if sub.__module__ == module and sub.__qualname__ == qualname
    ]
    if not matches:
        raise ValueError(f"path: {module}.{qualname} is not a subclass of mmalign Aligner")
    return matches[-1]


def _parse_device(device: Any) -> torch.device:
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {device!r} is not a valid device (use 'cpu', 'cuda' or 'cuda:N')") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported (use 'cpu', 'cuda' or 'cuda:N')")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return dev


class Aligner(abc.ABC):
    """Base class of all aligners: scikit-learn estimator contract plus save/load.

    Hyper-parameters are the ``__init__`` arguments (no ``*args``), stored
    under the same names and not touched in ``__init__``; learned state lives
    in public attributes ending in ``_``. Subclasses implement :meth:`align`
    and, when they learn something, :meth:`fit`.

    Implicit (neural) aligners also inherit ``torch.nn.Module``; list
    ``Aligner`` first (``class MyAligner(Aligner, torch.nn.Module)``) so that
    :meth:`to` and ``__repr__`` come from here, and call ``super().__init__()``
    before setting attributes. Their submodules must be created in
    ``__init__`` (or in :meth:`_before_load_state_dict`) for :meth:`load` to
    restore their weights.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.aligner import Aligner
    >>> from mmalign.alignment import Alignment
    >>> class Diagonal(Aligner):
    ...     def __init__(self, scale=1.0):
    ...         self.scale = scale
    ...     def align(self, x, y):
    ...         n = min(len(x), len(y))
    ...         return Alignment(np.stack([np.arange(n)] * 2, axis=1), shape=(len(x), len(y)))
    >>> Diagonal(scale=2.0)
    Diagonal(scale=2.0)
    >>> Diagonal().align(np.zeros((3, 1)), np.zeros((3, 1))).path().tolist()
    [[0, 0], [1, 1], [2, 2]]
    """

    # ---------------------------------------------------------- params (sklearn)
    @classmethod
    def _param_names(cls) -> list[str]:
        init = cls.__init__
        if init in (object.__init__, torch.nn.Module.__init__):
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            if p.kind == p.VAR_POSITIONAL:
                raise TypeError(f"{cls.__name__}.__init__ must not take *args (scikit-learn convention)")
            names.append(p.name)
        return sorted(names)

    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        if cls.__init__ in (object.__init__, torch.nn.Module.__init__):
            return {}
        return {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.default is not p.empty
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters of this aligner.

        Parameters
        ----------
        deep : bool
            Also return the parameters of nested estimators as ``name__param``.

        Returns
        -------
        params : dict
            Parameter name -> value, the ``__init__`` arguments.

        Examples
        --------
        >>> from mmalign.aligner import Aligner
        >>> class Toy(Aligner):
        ...     def __init__(self, radius=3):
        ...         self.radius = radius
        ...     def align(self, x, y): ...
        >>> Toy(radius=5).get_params()
        {'radius': 5}
        """
        params = {}
        for name in self._param_names():
            try:
                value = getattr(self, name)
            except AttributeError:
                raise AttributeError(
                    f"{type(self).__name__} must store __init__ argument {name!r} as self.{name}"
                ) from None
            params[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for sub, sub_value in value.get_params(deep=True).items():
                    params[f"{name}__{sub}"] = sub_value
        return params

    def set_params(self, **params: Any) -> "Aligner":
        """Set hyper-parameters (``name__param`` reaches nested estimators).

        Parameters
        ----------
        **params
            Parameter name -> new value.

        Returns
        -------
        self : Aligner

        Examples
        --------
        >>> from mmalign.aligner import Aligner
        >>> class Toy(Aligner):
        ...     def __init__(self, radius=3):
        ...         self.radius = radius
        ...     def align(self, x, y): ...
        >>> Toy().set_params(radius=1).radius
        1
        """
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: {valid}"
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            target = getattr(self, name)
            if not hasattr(target, "set_params"):
                raise ValueError(f"parameter {name!r} of {type(self).__name__} has no nested parameters")
            target.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = self._param_defaults()
        shown = []
        for name, value in self.get_params(deep=False).items():
            if name in defaults and _same(value, defaults[name]):
                continue
            shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------- the contract
    def fit(self, X: Any, Y: Any = None, **kwargs: Any) -> "Aligner":
        """Learn what the aligner learns; the base version has nothing to learn.

        Parameters
        ----------
        X, Y : sequences or collections of sequences
            Training data, ``(n_timesteps, n_features)`` per sequence.
        **kwargs
            Method-specific options.

        Returns
        -------
        self : Aligner
        """
        return self

    @abc.abstractmethod
    def align(self, x: Any, y: Any, **kwargs: Any) -> Alignment:
        """Align one pair of sequences.

        Parameters
        ----------
        x : array-like, shape (n_x, n_features_x)
        y : array-like, shape (n_y, n_features_y)
        **kwargs
            Method-specific options.

        Returns
        -------
        alignment : Alignment
        """

    def to(self, device: str | torch.device) -> "Aligner":
        """Run on ``device`` (CPU or CUDA); same code path either way.

        Stores ``self.device_`` as a ``torch.device``. A ``torch.nn.Module``
        aligner is moved with ``torch.nn.Module.to``; tensor-valued fitted
        attributes (names ending in ``_``) are moved as well.

        Parameters
        ----------
        device : str or torch.device
            ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.

        Returns
        -------
        self : Aligner

        Raises
        ------
        ValueError
            For an unknown device, or CUDA when it is not available.

        Examples
        --------
        >>> from mmalign.aligner import Aligner
        >>> class Toy(Aligner):
        ...     def align(self, x, y): ...
        >>> Toy().to("cpu").device_
        device(type='cpu')
        """
        dev = _parse_device(device)
        if isinstance(self, torch.nn.Module):
            torch.nn.Module.to(self, dev)
        for name, value in list(vars(self).items()):
            if _is_fitted_name(name) and isinstance(value, torch.Tensor):
                setattr(self, name, value.to(dev))
        self.device_ = dev
        return self

    # ---------------------------------------------------------------- save/load
    def _before_load_state_dict(self) -> None:
        """Hook for :meth:`load`: runs after fitted attributes are restored and
        before ``load_state_dict``. Override to build submodules that ``fit``
        creates from fitted state (e.g. sized by ``n_features_in_``)."""

    def save(self, path: str | os.PathLike) -> None:
        """Save hyper-parameters and fitted state to one ``.npz`` file.

        The file holds a JSON metadata string (class, mmalign version,
        hyper-parameters, small fitted attributes), numpy arrays for array and
        tensor values, and, for ``torch.nn.Module`` aligners, the
        ``state_dict()`` entries. It is read without pickle. Hyper-parameters
        that cannot be stored (callables, arbitrary objects) are skipped with a
        warning and take their default on :meth:`load`; so are such fitted
        attributes.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Destination; written exactly there (no ``.npz`` suffix is added).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from mmalign.aligner import Aligner
        >>> class Mean(Aligner):
        ...     def __init__(self, shift=0.0):
        ...         self.shift = shift
        ...     def fit(self, X, Y=None):
        ...         self.mean_ = np.mean(X, axis=0)
        ...         return self
        ...     def align(self, x, y): ...
        >>> fname = os.path.join(tempfile.mkdtemp(), "mean.npz")
        >>> Mean(shift=1.0).fit(np.ones((4, 2))).save(fname)
        >>> Aligner.load(fname).mean_
        array([1., 1.])
        """
        arrays: dict[str, np.ndarray] = {}
        skipped = []
        params = {}
        for name, value in self.get_params(deep=False).items():
            try:
                params[name] = _encode(value, f"param/{name}", arrays)
            except _Unserialisable:
                skipped.append(name)
        fitted = {}
        for name, value in sorted(vars(self).items()):
            if not _is_fitted_name(name) or name in _NOT_SAVED:
                continue
            try:
                fitted[name] = _encode(value, f"fitted/{name}", arrays)
            except _Unserialisable:
                skipped.append(name)
        if skipped:
            warnings.warn(
                f"{type(self).__name__}.save: cannot store {skipped} (not JSON, array or tensor); "
                "they are not saved",
                UserWarning,
                stacklevel=2,
            )
        state_keys = []
        if isinstance(self, torch.nn.Module):
            for key, tensor in self.state_dict().items():
                arrays[f"state/{key}"] = _tensor_to_numpy(tensor)
                state_keys.append(key)
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "class": _class_ref(type(self)),
            "mmalign_version": _mmalign_version(),
            "params": params,
            "fitted": fitted,
            "state_dict": state_keys,
        }
        arrays[_META_KEY] = np.array(json.dumps(meta))
        if hasattr(path, "write"):
            np.savez(path, **arrays)
        else:
            with open(os.fspath(path), "wb") as f:
                np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Aligner":
        """Load an aligner written by :meth:`save`.

        Only subclasses of :class:`Aligner` are instantiated; the module that
        defines the saved class is imported if it is not already.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            A file written by :meth:`save`.

        Returns
        -------
        aligner : Aligner
            A new instance of the saved class, on the CPU, with the saved
            hyper-parameters, fitted attributes and module weights.

        Raises
        ------
        ValueError
            If the file is not an mmalign aligner file, or when called on a
            subclass, if the saved class is not that subclass (or one of its
            subclasses).
        """
        try:
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"path: cannot read an aligner file: {err}") from None
        with npz:
            if _META_KEY not in npz.files:
                raise ValueError("path: not an mmalign aligner file (no metadata)")
            try:
                meta = json.loads(str(npz[_META_KEY][()]))
            except ValueError:
                raise ValueError("path: unreadable aligner metadata") from None
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError("path: not an mmalign aligner file")
            if meta.get("format_version", 0) > _FORMAT_VERSION:
                raise ValueError(
                    f"path: file format version {meta['format_version']} is newer than this "
                    f"mmalign supports ({_FORMAT_VERSION}); upgrade mmalign"
                )
            stored = _resolve_class(meta["class"])
            if not issubclass(stored, cls):
                raise ValueError(
                    f"path: holds a {stored.__qualname__}, which is not a {cls.__qualname__}"
                )
            arrays = {k: npz[k] for k in npz.files if k != _META_KEY}

        params = {k: _decode(v, arrays) for k, v in meta["params"].items()}
        obj = stored(**params)
        for name, value in meta["fitted"].items():
            if not _is_fitted_name(name):
                raise ValueError(f"path: {name!r} is not a fitted attribute name")
            setattr(obj, name, _decode(value, arrays))
        if isinstance(obj, torch.nn.Module):
            obj._before_load_state_dict()
            state = {k: torch.from_numpy(np.array(arrays[f"state/{k}"])) for k in meta["state_dict"]}
            obj.load_state_dict(state)
        return obj


def _is_fitted_name(name: str) -> bool:
    return name.endswith("_") and not name.startswith("_")


def _same(a: Any, b: Any) -> bool:
    """Whether a parameter value equals its default (arrays and NaN included)."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False
