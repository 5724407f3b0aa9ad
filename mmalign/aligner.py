"""The one estimator base of mmalign (:class:`Estimator`), the one interface every aligner
implements (:class:`Aligner`), the transformer mixin (:class:`TransformerMixin`), and save / load.

torch is not imported here: a value can only be a tensor or a torch module once torch is loaded,
so the checks below look for it in ``sys.modules`` (``import mmalign; mmalign.DTW`` stays light).
"""

from __future__ import annotations

import abc
import importlib
import inspect
import json
import math
import os
import struct
import sys
import warnings
import zipfile
import zlib
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._version import __version__
from .alignment import Alignment
from .utils.devices import resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["Aligner", "Estimator", "TransformerMixin"]

_FORMAT = "mmalign.aligner"
# 2: every array's shape and dtype in the metadata; nested aligners with fitted state and weights.
# 1 (still read): no array declarations; nested aligners held hyper-parameters only.
_FORMAT_VERSION = 2
_META_KEY = "__meta__"
# Fitted attributes that describe where the estimator runs rather than what it learned.
_NOT_SAVED = ("device_",)
# Largest metadata member read (a JSON string; 4 bytes per character in the .npy).
_MAX_META_BYTES = 256 << 20
# The modules that define mmalign's own estimators: load() may import these (and only these)
# to find a class that is not registered yet. tests/test_aligner_roundtrip.py keeps it complete.
_MMALIGN_ALIGNER_MODULES = (
    "mmalign.warping.aligner",
    "mmalign.warping.neighbors",
    "mmalign.warping.ts_neighbors",
    "mmalign.clustering.kmeans",
    "mmalign.clustering.kmedoids",
    "mmalign.clustering.kshape",
    "mmalign.projection.cca",
    "mmalign.projection.ctw",
    "mmalign.projection.gctw",
    "mmalign.projection.gtw",
    "mmalign.projection.deep_cca",
    "mmalign.projection.dctw",
    "mmalign.attention.spatial_transformer",
    "mmalign.attention.glimpse",
    "mmalign.attention.seq2seq",
    "mmalign.attention.transformer_seq2seq",
    "mmalign.attention.show_attend_tell",
    "mmalign.attention.crossmodal",
    "mmalign.attention.pretraining",
    "mmalign.attention.finetuning",
)
# What reading a damaged or hostile file can raise; load() turns them into ValueError.
_LOAD_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError, OSError,
                RuntimeError, OverflowError, NotImplementedError, zipfile.BadZipFile,
                zipfile.LargeZipFile, zlib.error, struct.error)


class _Unserialisable(Exception):
    """Raised by _Writer.encode for a value save() cannot store."""


def _torch() -> Any:
    """The torch module if it is loaded, else None (no tensor or module can exist before)."""
    return sys.modules.get("torch")


def _is_tensor(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _is_module(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.nn.Module)


def _tensor_to_numpy(tensor: "torch.Tensor") -> np.ndarray:
    import torch

    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
        t = t.float()
    return t.numpy()


class _Writer:
    """Encodes estimators for :meth:`Estimator.save`: JSON-able metadata plus named arrays."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.skipped: list[str] = []  # hyper-parameters that cannot be stored

    def encode(self, value: Any, key: str, covered: set[int]) -> Any:
        """JSON-able form of ``value``; arrays and tensors are stored under ``key``.

        ``covered`` holds the ids of the modules whose weights an enclosing
        ``state_dict`` already stores. Raises _Unserialisable for a value that
        cannot be stored, and ValueError for a torch module that is not an
        estimator (nothing could rebuild it on load).
        """
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            return value.item()
        if isinstance(value, (int, float)):
            return value
        if _is_tensor(value):
            self.arrays[key] = _tensor_to_numpy(value)
            return {"__tensor__": key, "dtype": str(value.dtype).removeprefix("torch.")}
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject or value.dtype.fields is not None:
                raise _Unserialisable(f"object or structured array at {key}")
            self.arrays[key] = value
            return {"__ndarray__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{key}/{i}", covered) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{key}/{i}", covered) for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise _Unserialisable(f"dict with non-string keys at {key}")
            return {"__dict__": {k: self.encode(v, f"{key}/{k}", covered) for k, v in value.items()}}
        if isinstance(value, Estimator):
            return {"__aligner__": self.aligner(value, f"{key}/", covered)}
        if _is_module(value):
            raise ValueError(
                f"cannot save {key!r}: a {type(value).__name__} (torch.nn.Module) that is not an "
                "mmalign estimator; its architecture cannot be stored without pickle. Use the "
                "built-in networks, or save its state_dict() yourself and rebuild the model around it"
            )
        raise _Unserialisable(f"{type(value).__name__} at {key}")

    def _state(self, module: "torch.nn.Module", prefix: str) -> list[str]:
        keys = []
        for name, tensor in module.state_dict().items():
            self.arrays[f"{prefix}state/{name}"] = _tensor_to_numpy(tensor)
            keys.append(name)
        return keys

    def aligner(self, obj: "Estimator", prefix: str, covered: set[int]) -> dict[str, Any]:
        """Class, hyper-parameters, fitted attributes and weights of ``obj``; its arrays are
        stored under ``prefix``.

        Hyper-parameters that cannot be stored go to ``skipped`` (they take their default
        on load); a fitted attribute that cannot be stored raises ValueError, as the loaded
        estimator would lack it. The network of an estimator that owns one (the fitted
        attribute named by ``_STATE_ATTRIBUTE``, e.g. ``module_``) is stored as its
        ``state_dict`` and rebuilt by the class on load.
        """
        state_keys: list[str] | None = []
        extra: dict[str, Any] = {}
        holder = obj._STATE_ATTRIBUTE
        network = getattr(obj, holder, None) if holder is not None else None
        if _is_module(obj):
            raise ValueError(f"cannot save a {type(obj).__name__}: an estimator that is itself a "
                             "torch.nn.Module; derive it from mmalign.nn.estimator.TorchAligner, "
                             "which owns its network in module_")
        if network is not None:
            if not _is_module(network):
                raise ValueError(f"cannot save {prefix}{holder}: a {type(network).__name__}, "
                                 "not a torch.nn.Module")
            state_keys = self._state(network, prefix)
            covered = covered | {id(m) for m in network.modules()}
            extra["state_attribute"] = holder
        params = {}
        for name, value in obj._params_to_save().items():
            try:
                params[name] = self.encode(value, f"{prefix}param/{name}", covered)
            except _Unserialisable:
                self.skipped.append(f"{prefix}{name}")
        fitted = {}
        for name, value in sorted(vars(obj).items()):
            if not _is_fitted_name(name) or name in _NOT_SAVED or name == holder:
                continue
            try:
                fitted[name] = self.encode(value, f"{prefix}fitted/{name}", covered)
            except _Unserialisable as err:
                raise ValueError(f"cannot save fitted attribute {prefix}{name}: {err} cannot be "
                                 "stored (not JSON, array, tensor or aligner)") from None
        return {"class": _class_ref(type(obj)), "params": params, "fitted": fitted,
                "state_dict": state_keys, "prefix": prefix, **extra}


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


def _registered(module: str, qualname: str) -> type | None:
    # The most recently created match: a class redefined (doctests, reloads) shadows the old one.
    matches = [sub for sub in _all_subclasses(Estimator)
               if sub.__module__ == module and sub.__qualname__ == qualname]
    return matches[-1] if matches else None


def _resolve_class(ref: Any) -> type:
    """The registered Estimator subclass named by ``ref``; never imports a module the file names.

    A class not registered yet is looked for again after importing the module of
    mmalign's own estimators that ``ref`` names, if it is one of them; any other
    class must have been defined (imported) by the loading program.
    """
    if not (isinstance(ref, dict) and isinstance(ref.get("module"), str)
            and isinstance(ref.get("qualname"), str)):
        raise ValueError(f"the saved class must be {{'module': str, 'qualname': str}}, got {ref!r}")
    module, qualname = ref["module"], ref["qualname"]
    cls = _registered(module, qualname)
    if cls is None and module in _MMALIGN_ALIGNER_MODULES:
        importlib.import_module(module)  # one of the constant names above
        cls = _registered(module, qualname)
    if cls is None:
        raise ValueError(f"{module}.{qualname} is not a subclass of mmalign's Estimator known to "
                         "this program (a class defined outside mmalign must be imported before "
                         "loading)")
    if inspect.isabstract(cls):
        raise ValueError(f"{module}.{qualname} is abstract and cannot be loaded")
    return cls


def _describe(path: Any) -> str:
    """How error messages name the file: its path, or a file object's name."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    name = getattr(path, "name", None)
    return name if isinstance(name, str) else f"<{type(path).__name__}>"


class _Reader:
    """Reads one estimator file: metadata first, then only the arrays it refers to."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        if _META_KEY + ".npy" not in zf.namelist():
            raise ValueError("not an mmalign aligner file (no metadata)")
        meta_array = self._read(_META_KEY, None, _MAX_META_BYTES)
        if meta_array.shape != () or meta_array.dtype.kind != "U":
            raise ValueError("not an mmalign aligner file (the metadata is not a string)")
        try:
            meta = json.loads(str(meta_array[()]))
        except (ValueError, RecursionError):
            raise ValueError("not an mmalign aligner file (unreadable metadata)") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError("not an mmalign aligner file")
        version = meta.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"format_version must be a positive integer, got {version!r}")
        if version > _FORMAT_VERSION:
            raise ValueError(f"file format version {version} is newer than this mmalign supports "
                             f"({_FORMAT_VERSION}); upgrade mmalign")
        self.version = version
        self.meta = meta
        self.declared = meta.get("arrays", {}) if version >= 2 else None
        if version >= 2 and not isinstance(self.declared, dict):
            raise ValueError(f"'arrays' must map array names to their shape and dtype, "
                             f"got {type(self.declared).__name__}")

    # ------------------------------------------------------------------ arrays
    def array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key == _META_KEY:
            raise ValueError(f"invalid array reference {key!r} in saved metadata")
        if self.declared is None:
            return self._read(key, None, None)
        spec = self.declared.get(key)
        if spec is None:
            raise ValueError(f"array {key!r} is not declared in the saved metadata")
        try:
            shape = tuple(spec["shape"])
            dtype = np.dtype(spec["dtype"])
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"array {key!r}: invalid declaration {spec!r}") from None
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise ValueError(f"array {key!r}: invalid declared shape {spec['shape']!r}")
        return self._read(key, (shape, dtype), None)

    def _read(self, key: str, declared: tuple | None, max_bytes: int | None) -> np.ndarray:
        """The .npy member ``key``, checked against its declared (shape, dtype) without
        decompressing more than that; without a declaration (format 1), only an
        uncompressed member is read, so that memory stays bounded by the file's size."""
        try:
            info = self.zf.getinfo(key + ".npy")
        except KeyError:
            raise ValueError(f"array {key!r} is missing from the file") from None
        if declared is not None:
            shape, dtype = declared
            if dtype.hasobject or dtype.fields is not None:
                raise ValueError(f"array {key!r}: dtype {dtype} cannot be loaded without pickle")
            nbytes = math.prod(shape) * dtype.itemsize
            # a .npy header is at most 64 KiB for version 1.0 (what np.savez writes)
            if not nbytes <= info.file_size <= nbytes + 65536 + 10:
                raise ValueError(f"array {key!r} holds {info.file_size} bytes, the metadata "
                                 f"declares {shape} {dtype} ({nbytes} bytes)")
        elif max_bytes is not None and info.file_size > max_bytes:
            raise ValueError(f"array {key!r} holds {info.file_size} bytes, more than {max_bytes}")
        elif max_bytes is None and info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"array {key!r} is compressed, which format version 1 never is")
        with self.zf.open(info) as fp:
            major, _ = np.lib.format.read_magic(fp)
            if major == 1:
                h_shape, fortran, h_dtype = np.lib.format.read_array_header_1_0(fp)
            elif major == 2:
                h_shape, fortran, h_dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"array {key!r}: unsupported .npy version {major}")
            if h_dtype.hasobject or h_dtype.fields is not None:
                raise ValueError(f"array {key!r}: dtype {h_dtype} cannot be loaded without pickle")
            if declared is not None and (tuple(h_shape) != declared[0] or h_dtype != declared[1]):
                raise ValueError(f"array {key!r} is {tuple(h_shape)} {h_dtype}, the metadata "
                                 f"declares {declared[0]} {declared[1]}")
            nbytes = math.prod(h_shape) * h_dtype.itemsize
            if fp.tell() + nbytes != info.file_size:
                raise ValueError(f"array {key!r}: its size does not match its header")
            flat = np.empty(math.prod(h_shape), dtype=h_dtype)
            view = memoryview(flat.view(np.uint8)) if nbytes else memoryview(b"")
            got = 0
            while got < nbytes:
                n = fp.readinto(view[got:got + (1 << 20)])
                if not n:
                    raise ValueError(f"array {key!r} is truncated")
                got += n
            if fp.read(1):  # also makes zipfile check the CRC
                raise ValueError(f"array {key!r}: its size does not match its header")
        return flat.reshape(h_shape, order="F" if fortran else "C")

    # --------------------------------------------------------------- decoding
    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__ndarray__" in value:
            return self.array(value["__ndarray__"])
        if "__tensor__" in value:
            import torch

            dtype = getattr(torch, str(value.get("dtype")), None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"unknown tensor dtype {value.get('dtype')!r} in saved metadata")
            return torch.from_numpy(self.array(value["__tensor__"])).to(dtype)
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in _typed(value["__tuple__"], list, "__tuple__"))
        if "__dict__" in value:
            return {k: self.decode(v) for k, v in _typed(value["__dict__"], dict, "__dict__").items()}
        if "__aligner__" in value:
            spec = value["__aligner__"]
            if self.version == 1:  # class reference and hyper-parameters only
                spec = {"class": spec, "params": value.get("params", {}), "fitted": {},
                        "state_dict": []}
            return self.build(_typed(spec, dict, "__aligner__"), Estimator, nested=True)
        raise ValueError(f"unrecognised entry in saved metadata: {sorted(value)}")

    def build(self, spec: dict, want: type, nested: bool) -> "Estimator":
        """A new estimator from ``spec`` (class, params, fitted, state_dict)."""
        if "class" not in spec:
            raise ValueError("the saved class is missing from the metadata")
        cls = _resolve_class(spec["class"])
        if not issubclass(cls, want):
            raise ValueError(f"holds a {cls.__qualname__}, which is not a subclass of "
                             f"{want.__qualname__}")
        params = _typed(spec.get("params", {}), dict, "params")
        fitted = _typed(spec.get("fitted", {}), dict, "fitted")
        state = spec.get("state_dict", [])
        if not (isinstance(state, list) and all(isinstance(k, str) for k in state)
                or state is None and nested):
            raise ValueError(f"'state_dict' must be a list of names, got {state!r}")
        holder = spec.get("state_attribute")
        if holder is not None and (holder != cls._STATE_ATTRIBUTE or state is None):
            raise ValueError(f"a {cls.__qualname__} keeps no network in {holder!r}")
        unknown = sorted(set(params) - set(cls._param_names()) - set(cls._legacy_param_names()))
        if unknown:
            raise ValueError(f"unknown hyper-parameter(s) {unknown} for {cls.__qualname__}")
        decoded = cls._upgrade_params({name: self.decode(v) for name, v in params.items()})
        obj = cls(**decoded)
        obj._validate_params()
        for name, value in fitted.items():
            if not _is_fitted_name(name) or name == cls._STATE_ATTRIBUTE:
                raise ValueError(f"{name!r} is not a fitted attribute name")
            setattr(obj, name, self.decode(value))
        prefix = _typed(spec.get("prefix", ""), str, "prefix")
        if holder is not None or state:
            # holder None: written when the estimator was itself the torch module (its keys then
            # may differ from the network's: the class translates them)
            rename = (lambda key: key) if holder is not None else cls._upgrade_state_key
            network = obj._rebuild_network()
            network.load_state_dict({rename(k): v for k, v in self._state(prefix, state).items()})
        return obj

    def _state(self, prefix: str, keys: list[str]) -> dict[str, "torch.Tensor"]:
        import torch

        return {k: torch.from_numpy(self.array(f"{prefix}state/{k}")) for k in keys}


def _typed(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"{name!r} in saved metadata must be a {kind.__name__}, "
                         f"got {type(value).__name__}")
    return value


def _has_no_init(cls: type) -> bool:
    """Whether ``cls`` takes its ``__init__`` from ``object`` or ``torch.nn.Module`` (no params)."""
    init = cls.__init__
    if init is object.__init__:
        return True
    torch = _torch()
    return torch is not None and init is torch.nn.Module.__init__


def _batch_members(values: Any, lengths: Any, name: str, lengths_name: str) -> list:
    """The members of a batch (:meth:`Aligner.align_batch`): a list / tuple of sequences, or
    the rows of a padded array / tensor cut to ``lengths``."""
    if isinstance(values, (list, tuple)):
        members = list(values)
    elif isinstance(values, np.ndarray) or _is_tensor(values):
        if values.ndim < 2:
            raise ValueError(f"{name} must be a list of sequences or a (batch, n_timesteps, ...) array, "
                             f"got shape {tuple(values.shape)}")
        members = [values[i] for i in range(values.shape[0])]
    else:
        raise TypeError(f"{name} must be a list of sequences or a (batch, n_timesteps, ...) array, "
                        f"got {type(values).__name__}")
    if not members:
        raise ValueError(f"{name} is empty: no sequences")
    if lengths is None:
        return members
    try:
        lens = np.asarray(lengths)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{lengths_name} cannot be read as integers: {err}") from None
    if lens.shape != (len(members),) or lens.dtype == np.bool_ or not np.issubdtype(lens.dtype, np.integer):
        raise ValueError(f"{lengths_name} must be {len(members)} integers (one per sequence of {name}), "
                         f"got {lens.dtype} of shape {lens.shape}")
    for i, (member, n) in enumerate(zip(members, lens.tolist())):
        if not 1 <= n <= len(member):
            raise ValueError(f"{lengths_name}[{i}] = {n} must lie in [1, {len(member)}] "
                             f"(the steps of {name}[{i}])")
    return [member[:n] for member, n in zip(members, lens.tolist())]


class Estimator(abc.ABC):
    """The one estimator base of mmalign: scikit-learn's ``BaseEstimator`` contract plus save/load.

    Aligners (:class:`Aligner`), transformers of representations
    (:class:`TransformerMixin`: CCA, deep CCA), the neural estimators
    (:class:`mmalign.nn.estimator.TorchEstimator`) and the DTW classifier
    (:class:`~mmalign.KNeighborsDTW`) all derive from it.

    The contract (scikit-learn's): hyper-parameters are the ``__init__``
    arguments (no ``*args``), stored under the same names and not touched in
    ``__init__`` (no validation, no network, no work); validation happens in
    ``fit`` (:meth:`_check_params`); learned state lives in public attributes
    ending in ``_``. :meth:`get_params` / :meth:`set_params` (``name__param``
    reaches a nested estimator's parameters), ``__repr__`` (the non-default
    parameters) and ``sklearn.base.clone`` work on every estimator.

    Why not ``sklearn.base.BaseEstimator`` itself: a base class is imported with
    every estimator, and importing scikit-learn costs about a second, which
    ``import mmalign; mmalign.DTW`` should not pay. This class implements the
    same contract (``clone`` and scikit-learn's meta-estimators work on it;
    ``__sklearn_tags__`` imports scikit-learn only when scikit-learn asks).

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.aligner import Estimator
    >>> class Centre(Estimator):
    ...     def __init__(self, scale=1.0):
    ...         self.scale = scale
    ...     def fit(self, X, Y=None):
    ...         self.mean_ = np.mean(X, axis=0)
    ...         return self
    >>> Centre(scale=2.0)
    Centre(scale=2.0)
    >>> Centre().set_params(scale=3.0).get_params()
    {'scale': 3.0}
    """

    # A fitted attribute that holds a torch.nn.Module the estimator builds (``module_`` of the
    # neural estimators): save() stores its state_dict, load() has the class rebuild it
    # (:meth:`_rebuild_network`) and loads the weights. None: no such attribute.
    _STATE_ATTRIBUTE: ClassVar[str | None] = None

    # ---------------------------------------------------------- params (sklearn)
    @classmethod
    def _param_names(cls) -> list[str]:
        if _has_no_init(cls):
            return []
        names = []
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            if p.kind == p.VAR_POSITIONAL:
                raise TypeError(f"{cls.__name__}.__init__ must not take *args (scikit-learn convention)")
            names.append(p.name)
        return sorted(names)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """scikit-learn's name for :meth:`_param_names` (its utilities call it)."""
        return cls._param_names()

    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        if _has_no_init(cls):
            return {}
        return {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.default is not p.empty
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters of this estimator.

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

    def set_params(self, **params: Any) -> "Estimator":
        """Set hyper-parameters (``name__param`` reaches nested estimators).

        As in scikit-learn, plain names are set first, then the nested ones.

        Parameters
        ----------
        **params
            Parameter name -> new value.

        Returns
        -------
        self : Estimator

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

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (scikit-learn >= 1.6 calls this; the defaults of
        ``BaseEstimator``, which its mixins such as ``ClassifierMixin`` extend)."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)

    # ---------------------------------------------------------------- validation
    def _check_params(self) -> None:
        """Validate the hyper-parameters; raise ValueError naming the bad one.

        The checks ``fit`` (or, for aligners with nothing to fit, ``align``)
        applies to the hyper-parameters. The base version checks nothing.
        """

    def _validate_params(self) -> None:
        """Every check of the hyper-parameters :meth:`load` runs on what it builds (so that a
        tampered file fails there rather than later): :meth:`_check_params`, plus what a base
        validates for its subclasses (the training configuration of the neural estimators)."""
        self._check_params()

    # ---------------------------------------------------------------- save/load
    def _params_to_save(self) -> dict[str, Any]:
        """The hyper-parameters :meth:`save` stores (``get_params(deep=False)``; a base may
        put a value in a form the file can hold and :meth:`_upgrade_params` reads back)."""
        return self.get_params(deep=False)

    @classmethod
    def _legacy_param_names(cls) -> set[str]:
        """Hyper-parameter names of files from earlier versions that :meth:`_upgrade_params`
        turns into current ones (accepted by :meth:`load`, refused by ``__init__``)."""
        return set()

    @classmethod
    def _upgrade_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The ``__init__`` arguments from the decoded hyper-parameters of a file (the inverse
        of :meth:`_params_to_save`, and the translation of :meth:`_legacy_param_names`)."""
        return params

    @classmethod
    def _upgrade_state_key(cls, key: str) -> str:
        """The key of the network's state_dict for ``key`` of a file written when the
        estimator was itself the torch module (before it owned ``_STATE_ATTRIBUTE``)."""
        return key

    def _rebuild_network(self) -> "torch.nn.Module":
        """Rebuild the network held in ``_STATE_ATTRIBUTE`` from the hyper-parameters and
        the fitted attributes :meth:`load` has restored; :meth:`load` then loads its weights.
        The bases that set ``_STATE_ATTRIBUTE`` rebuild it; any other estimator keeps no
        network, so a file that gives it weights is refused."""
        raise ValueError(f"a {type(self).__qualname__} has no state_dict")

    def save(self, path: str | os.PathLike) -> None:
        """Save hyper-parameters and fitted state to one ``.npz`` file.

        The file holds a JSON metadata string (class, mmalign version,
        hyper-parameters, small fitted attributes, and the shape and dtype of
        every array), numpy arrays for array and tensor values, and the
        ``state_dict()`` entries of the network a neural estimator owns
        (``module_``; or of the estimator itself where it is a
        ``torch.nn.Module``). Estimators held in hyper-parameters or fitted
        attributes (e.g. the deep CCA of a fitted :class:`~mmalign.DCTW`) are
        stored the same way, with their own fitted state and weights. It is read
        without pickle. Hyper-parameters that cannot be stored (callables,
        arbitrary objects) are skipped with a warning and take their default on
        :meth:`load`.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Destination; written exactly there (no ``.npz`` suffix is added).

        Raises
        ------
        ValueError
            For state that could not be loaded back, before anything is
            written: a ``torch.nn.Module`` that is not an :class:`Estimator` (in
            a hyper-parameter or a fitted attribute: its architecture cannot be
            stored without pickle), or a fitted attribute that is not JSON, an
            array, a tensor or an estimator.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from mmalign import KNeighborsDTW
        >>> from mmalign.aligner import Estimator
        >>> X = [np.zeros((5, 1)), np.ones((4, 1))]
        >>> fname = os.path.join(tempfile.mkdtemp(), "knn.npz")
        >>> KNeighborsDTW(radius=2).fit(X, ["rest", "move"]).save(fname)
        >>> loaded = Estimator.load(fname)
        >>> loaded, loaded.predict([np.ones((3, 1))]).tolist()
        (KNeighborsDTW(radius=2), ['move'])
        """
        writer = _Writer()
        try:
            spec = writer.aligner(self, "", set())
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}.save: {err}") from None
        if writer.skipped:
            warnings.warn(
                f"{type(self).__name__}.save: cannot store {writer.skipped} (not JSON, array, "
                "tensor or estimator); they are not saved and take their default on load",
                UserWarning,
                stacklevel=2,
            )
        arrays = writer.arrays
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "class": spec["class"],
            "mmalign_version": __version__,
            "params": spec["params"],
            "fitted": spec["fitted"],
            "state_dict": spec["state_dict"],
            **({"state_attribute": spec["state_attribute"]} if "state_attribute" in spec else {}),
            "arrays": {key: {"shape": list(a.shape), "dtype": a.dtype.str}
                       for key, a in arrays.items()},
        }
        arrays[_META_KEY] = np.array(json.dumps(meta))
        if hasattr(path, "write"):
            np.savez(path, **arrays)
        else:
            with open(os.fspath(path), "wb") as f:
                np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Estimator":
        """Load an estimator written by :meth:`save`.

        Nothing is imported by a name the file gives, and nothing but
        :class:`Estimator` subclasses is instantiated: the saved class must be
        one of mmalign's estimators or a subclass the loading program has
        defined (imported). Only the arrays the metadata refers to are read,
        each checked against its declared shape and dtype before it is
        decompressed; the hyper-parameters are validated as ``fit`` validates
        them; a neural estimator's network is rebuilt by its class from the
        hyper-parameters and fitted attributes, then given the saved weights.
        Files of format version 1 (before array declarations) are still read,
        provided their arrays are stored uncompressed, as ``save`` wrote them, so
        that memory stays bounded by the file's size.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            A file written by :meth:`save`.

        Returns
        -------
        estimator : Estimator
            A new instance of the saved class, on the CPU, with the saved
            hyper-parameters, fitted attributes and network weights.

        Raises
        ------
        ValueError
            ``"<path>: ..."``: if the file is not a readable mmalign estimator
            file (damaged, truncated, tampered with, of an unknown class, with
            invalid hyper-parameters), or when called on a subclass, if the
            saved class is not that subclass (or one of its subclasses):
            ``Aligner.load`` loads aligners only, ``Estimator.load`` any estimator.
        FileNotFoundError
            If ``path`` does not exist.
        """
        where = _describe(path)
        own = not hasattr(path, "read")
        f = open(os.fspath(path), "rb") if own else path
        try:
            with zipfile.ZipFile(f) as zf:
                reader = _Reader(zf)
                return reader.build(reader.meta, cls, nested=False)
        except _LOAD_ERRORS as err:
            detail = str(err) if type(err) is ValueError else f"{type(err).__name__}: {err}"
            if isinstance(err, zipfile.BadZipFile):
                detail = f"not an mmalign aligner file ({err})"
            raise ValueError(f"{where}: {detail}") from err
        finally:
            if own:
                f.close()


class TransformerMixin:
    """Transformers of representations (CCA, deep CCA): ``fit`` -> self, ``transform``,
    ``fit_transform``; scikit-learn's ``TransformerMixin`` semantics for one or more views.

    List it before :class:`Estimator` (``class CCA(TransformerMixin, Estimator)``).
    ``fit_transform(*views)`` is ``fit(*views).transform(*views)``: the variates of every
    view given, not only of the first (scikit-learn's version returns ``transform(X)``).
    """

    def fit_transform(self, X: Any, Y: Any = None, **fit_params: Any) -> Any:
        """``fit(X, Y, **fit_params).transform(X, Y)`` (``Y`` left out where it is None)."""
        views = (X,) if Y is None else (X, Y)
        return self.fit(*views, **fit_params).transform(*views)

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.transformer_tags = TransformerTags()
        return tags


class Aligner(Estimator):
    """Base class of all aligners: the :class:`Estimator` contract plus :meth:`align`.

    Hyper-parameters are the ``__init__`` arguments (no ``*args``), stored
    under the same names and not touched in ``__init__``; learned state lives
    in public attributes ending in ``_``. Subclasses implement :meth:`align`
    and, when they learn something, :meth:`fit`.

    Neural aligners own their network (``module_``, a plain ``torch.nn.Module``
    built in ``fit``) and are not networks themselves: derive them from
    :class:`mmalign.nn.estimator.TorchAligner`.

    The contract: ``align(a, b)`` takes one pair and returns one
    :class:`~mmalign.alignment.Alignment` whose side x indexes ``a`` and side
    y indexes ``b``; :meth:`align_batch` aligns many pairs, the same as pair
    by pair. An aligner whose other side is internal (a spatial
    transformer's output frame, a glimpse sequence) documents what side y is
    and refuses a second argument.

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

    def align_batch(self, A: Any, B: Any, *, x_lengths: Any = None, y_lengths: Any = None,
                    **kwargs: Any) -> list[Alignment]:
        """Align many pairs: ``[align(A[i], B[i], **kwargs) for i ...]``.

        Aligners with a faster batched path override this; the result is the
        same as aligning pair by pair.

        Parameters
        ----------
        A, B : sequences of sequences, or arrays [shape=(batch, n, n_features)]
            The pairs' first (side x) and second (side y) members, as many of each.
        x_lengths, y_lengths : int array [shape=(batch,)] or None
            For padded arrays: valid steps of each row (default: all of them).
        **kwargs
            Passed to :meth:`align`.

        Returns
        -------
        alignments : list of Alignment
            One per pair, in order.

        Examples
        --------
        >>> import numpy as np
        >>> from mmalign import DTW
        >>> A = np.zeros((2, 5, 1)); B = np.zeros((2, 4, 1))
        >>> [al.shape for al in DTW().align_batch(A, B, y_lengths=[4, 2])]
        [(5, 4), (5, 2)]
        """
        A = _batch_members(A, x_lengths, "A", "x_lengths")
        B = _batch_members(B, y_lengths, "B", "y_lengths")
        if len(A) != len(B):
            raise ValueError(f"A and B must hold the same number of sequences, got {len(A)} and {len(B)}")
        return [self.align(a, b, **kwargs) for a, b in zip(A, B)]

    def to(self, device: "str | torch.device") -> "Aligner":
        """Run on ``device`` (CPU or CUDA); same code path either way.

        Stores ``self.device_`` as a ``torch.device`` and moves tensor-valued
        fitted attributes (names ending in ``_``); neural aligners
        (:class:`~mmalign.nn.estimator.TorchAligner`) move their network as well.

        Parameters
        ----------
        device : str or torch.device
            ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` (CUDA if available) or a
            ``torch.device``; read by :func:`mmalign.utils.devices.resolve_device`.

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
        dev = resolve_device(device)
        _move_fitted_tensors(self, dev)
        self.device_ = dev
        return self


def _move_fitted_tensors(obj: Any, device: "torch.device") -> None:
    """Move the tensor-valued fitted attributes (names ending in ``_``) of ``obj`` to ``device``."""
    for name, value in list(vars(obj).items()):
        if _is_fitted_name(name) and _is_tensor(value):
            setattr(obj, name, value.to(device))


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
