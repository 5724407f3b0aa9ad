"""Estimators that own a torch network: :class:`TorchEstimator`, :class:`TorchAligner`.

A neural estimator of mmalign is not a ``torch.nn.Module``: it stores its
hyper-parameters (the ``__init__`` arguments, as given: no validation, no network,
no seeding in ``__init__``), builds its network in ``fit`` as ``self.module_`` (a
plain ``torch.nn.Module`` users can also put in their own models), trains it with
the one loop :func:`mmalign.nn.train.fit`, and rebuilds it on ``load``. A model
file is then its ``nn.Module`` plus a thin estimator that implements three things:

- ``_check_params()``: the checks of the model's own hyper-parameters;
- ``_make_module()``: the network, from the hyper-parameters and the fitted
  attributes it needs (input sizes, vocabularies: set them in ``fit`` before the
  module is built, so that ``load`` restores them before it rebuilds it);
- ``fit``: input checks, then ``self._ensure_module()`` and
  ``self._fit_module(loss_fn, data)`` with the model's loss; and the read-out
  (``align`` / ``transform`` / ``predict``) after ``self._check_fitted()``.

The training configuration is one hyper-parameter, ``train`` (see
:class:`TorchEstimator`), validated in one place (:func:`mmalign.nn.train.check_config`).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch

from ..aligner import Aligner, Estimator, _move_fitted_tensors
from ..utils.devices import resolve_device
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_fitted
from .train import History, TrainConfig, check_config
from .train import fit as train_fit

__all__ = ["TrainParameter", "TorchEstimator", "TorchAligner"]

_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
# how save() marks a ``train`` hyper-parameter that was a TrainConfig (not a mapping)
_SAVED_CONFIG = "__TrainConfig__"


class TrainParameter:
    """The one training hyper-parameter, ``train``, of the estimators that train networks.

    ``train`` is ``None`` (the class's :attr:`TRAIN_DEFAULTS`), a mapping of
    :class:`~mmalign.nn.train.TrainConfig` fields merged onto them, or a
    ``TrainConfig`` used as given; :meth:`train_config` returns it validated in
    one place. ``set_params(train__lr=...)`` and ``get_params(deep=True)`` reach
    its fields; files that stored the fields one by one (older versions) are
    folded into ``train`` on load. Mixed in before :class:`~mmalign.aligner.Estimator`
    (:class:`TorchEstimator`, and :class:`~mmalign.DCTW`, which trains deep CCA
    networks it holds as fitted estimators).
    """

    #: Training defaults of the class, merged over TrainConfig's when ``train`` is None or a
    #: mapping (subclasses set their own).
    TRAIN_DEFAULTS: ClassVar[Mapping[str, Any]] = {}

    # ------------------------------------------------------------------ training config
    def train_config(self) -> TrainConfig:
        """The effective training configuration, validated.

        Returns
        -------
        config : TrainConfig
            A new object (changing it changes nothing here): ``TRAIN_DEFAULTS``
            merged with ``train`` (``None`` or a mapping), or a copy of ``train``.

        Raises
        ------
        ValueError
            ``train`` is not None, a mapping or a TrainConfig; a mapping names an
            unknown field; a value is invalid (``train.<field>: ...``).
        """
        train = self._train_param()
        if isinstance(train, TrainConfig):
            config = dataclasses.replace(train)
        elif train is None or isinstance(train, Mapping):
            given = dict(train or {})
            unknown = sorted(k for k in given if k not in _TRAIN_FIELDS)
            if unknown:
                raise ValueError(f"train: unknown field(s) {unknown}; TrainConfig's fields are "
                                 f"{list(_TRAIN_FIELDS)}")
            config = TrainConfig(**{**self.TRAIN_DEFAULTS, **given})
        else:
            raise ValueError(f"train must be None, a mapping of TrainConfig fields or a "
                             f"TrainConfig, got {type(train).__name__}")
        check_config(config, prefix="train.")
        return config

    def _train_param(self) -> Any:
        try:
            return self.train
        except AttributeError:
            raise AttributeError(f"{type(self).__name__} must take and store a 'train' "
                                 "hyper-parameter (TorchEstimator)") from None

    def _validate_params(self) -> None:
        self._check_params()
        self.train_config()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        train = params.get("train")
        if deep and isinstance(train, Mapping):
            params.update({f"train__{k}": v for k, v in train.items()})
        return params

    def set_params(self, **params: Any) -> "TrainParameter":
        nested = {key[len("train__"):]: params.pop(key) for key in list(params)
                  if key.startswith("train__")}
        super().set_params(**params)  # plain names first, ``train`` included
        if nested:
            train = self._train_param()
            if train is None or isinstance(train, Mapping):
                unknown = sorted(k for k in nested if k not in _TRAIN_FIELDS)
                if unknown:
                    raise ValueError(f"invalid parameter(s) {['train__' + k for k in unknown]} "
                                     f"for {type(self).__name__}; TrainConfig's fields are "
                                     f"{list(_TRAIN_FIELDS)}")
                self.train = {**(train or {}), **nested}
            elif hasattr(train, "set_params"):
                train.set_params(**nested)
            else:
                raise ValueError(f"parameter 'train' of {type(self).__name__} has no nested "
                                 f"parameters (it is a {type(train).__name__})")
        return self

    # ------------------------------------------------------------------ save / load
    def _params_to_save(self) -> dict[str, Any]:
        params = super()._params_to_save()
        if isinstance(params.get("train"), TrainConfig):
            params["train"] = {**dataclasses.asdict(params["train"]), _SAVED_CONFIG: True}
        return params

    @classmethod
    def _legacy_param_names(cls) -> set[str]:
        # files of the estimators that took the training settings one by one
        return set(_TRAIN_FIELDS) - set(cls._param_names())

    @classmethod
    def _upgrade_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        train = params.get("train")
        if isinstance(train, dict) and train.get(_SAVED_CONFIG) is True:
            params["train"] = train = TrainConfig(**{k: v for k, v in train.items()
                                                     if k != _SAVED_CONFIG})
        legacy = {name: params.pop(name) for name in list(params)
                  if name in cls._legacy_param_names()}
        if legacy:
            if isinstance(train, TrainConfig):
                raise ValueError(f"{sorted(legacy)} beside a TrainConfig in 'train'")
            params["train"] = {**legacy, **(train or {})}
        return params



class TorchEstimator(TrainParameter, Estimator):
    """Base of the estimators that own a torch network (``module_``), aligners or not.

    Hyper-parameters
    ----------------
    Subclasses take their model's hyper-parameters and one training
    hyper-parameter, ``train``, in ``__init__`` and store them as given.
    ``train`` is one of

    - ``None``: the class's defaults, :attr:`TRAIN_DEFAULTS` (which override
      :class:`~mmalign.nn.train.TrainConfig`'s own defaults, e.g. the device
      ``"cpu"`` rather than ``"auto"``);
    - a mapping of :class:`~mmalign.nn.train.TrainConfig` fields: overrides merged
      onto the class's defaults (``Model(train={"max_epochs": 6})``);
    - a :class:`~mmalign.nn.train.TrainConfig`: used as given (its own defaults
      for the fields it leaves alone; the class's defaults do not apply).

    :meth:`train_config` returns the effective configuration, validated by
    :func:`~mmalign.nn.train.check_config` (messages name ``train.<field>``).
    ``set_params(train__lr=0.01)`` works in all three cases: ``None`` or a
    mapping becomes a new dict with the key set (the caller's dict is not
    modified), a ``TrainConfig`` is changed by its ``set_params``.
    ``get_params(deep=True)`` lists the entries of a mapping or the fields of a
    ``TrainConfig`` as ``train__<field>``. ``sklearn.base.clone`` copies ``train``.

    Fitting and the network
    -----------------------
    ``fit`` builds ``module_`` with :meth:`_ensure_module` and trains it with
    :meth:`_fit_module`. When ``module_`` exists already (a second ``fit``),
    training continues from its weights, as mmalign's neural models always did
    (:class:`~mmalign.DCTW`'s alternation relies on it): ``sklearn.base.clone``
    gives an unfitted copy for a fresh start. The network is initialised under
    the training seed (:meth:`_seeded`), without touching the global random
    state, so the same hyper-parameters give the same initial weights.

    After ``fit``: ``module_`` (on the training device), ``history_`` (the
    :class:`~mmalign.nn.train.History` as a dict), ``device_``. :meth:`to`
    moves the network and tensor-valued fitted attributes.

    Save / load: :meth:`save` stores ``module_``'s ``state_dict``; :meth:`load`
    restores the fitted attributes, validates the hyper-parameters (model and
    ``train``), rebuilds ``module_ = _make_module()`` and loads the weights.

    Subclasses implement
    --------------------
    ``_check_params()`` (model hyper-parameters; ``train`` is checked by
    :meth:`train_config`), ``_make_module()``, ``fit`` (with the model's loss)
    and the read-out; and set :attr:`TRAIN_DEFAULTS`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from mmalign.nn.estimator import TorchEstimator
    >>> class Regressor(TorchEstimator):
    ...     TRAIN_DEFAULTS = {"max_epochs": 50, "lr": 0.05, "device": "cpu"}
    ...     def __init__(self, train=None):
    ...         self.train = train
    ...     def _make_module(self):
    ...         return torch.nn.Linear(self.n_features_in_, 1)
    ...     def fit(self, X, y):
    ...         self._check_params()
    ...         X = self._as_float_tensor(X, "X", dtype=torch.float32)
    ...         y = self._as_float_tensor(y, "y", dtype=torch.float32).reshape(-1, 1)
    ...         self.n_features_in_ = X.shape[1]
    ...         self._ensure_module()
    ...         mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
    ...         self._fit_module(mse, (X, y))
    ...         return self
    ...     def predict(self, X):
    ...         self._check_fitted()
    ...         with torch.no_grad():
    ...             return self.module_(self._as_float_tensor(X, "X")).numpy()[:, 0]
    >>> X = np.random.default_rng(0).standard_normal((64, 2))
    >>> model = Regressor(train={"batch_size": 16}).fit(X, X @ [1.0, -2.0])
    >>> model.train_config().max_epochs, len(model.history_["train_loss"])
    (50, 50)
    >>> model.set_params(train__lr=0.01).train
    {'batch_size': 16, 'lr': 0.01}
    >>> bool(np.abs(model.predict(X[:4]) - X[:4] @ [1.0, -2.0]).max() < 0.05)
    True
    """

    _STATE_ATTRIBUTE = "module_"

    # ------------------------------------------------------------------ the network
    @contextlib.contextmanager
    def _seeded(self, offset: int = 0) -> Iterator[None]:
        """Run the block with torch's CPU generator seeded ``train seed + offset``; the global
        random state is restored afterwards. No seeding when the seed is None.

        :meth:`_build_module` runs all of ``_make_module`` under ``_seeded()``; a model whose
        parts are seeded on their own (deep CCA: one MLP per view, ``seed + view``) nests
        ``with self._seeded(view):`` around each part.
        """
        seed = self.train_config().seed
        if seed is None:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed) + offset)
            yield

    @abc.abstractmethod
    def _make_module(self) -> torch.nn.Module:
        """The network, from the hyper-parameters and fitted attributes (subclass hook)."""

    def _build_module(self) -> torch.nn.Module:
        """A new ``module_`` from :meth:`_make_module`, built under the training seed."""
        with self._seeded():
            module = self._make_module()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"{type(self).__name__}._make_module must return a torch.nn.Module, "
                            f"got {type(module).__name__}")
        self.module_ = module
        return module

    def _ensure_module(self) -> torch.nn.Module:
        """``module_`` when it exists (a second ``fit`` continues training), else a new one."""
        module = getattr(self, "module_", None)
        return module if module is not None else self._build_module()

    def _rebuild_network(self) -> torch.nn.Module:  # for load()
        return self._build_module()

    def _fit_module(self, loss_fn: Callable[[torch.nn.Module, tuple], torch.Tensor], data: Any, *,
                    validation: Any = None, config: TrainConfig | None = None,
                    **fit_kwargs: Any) -> History:
        """Train ``module_`` with :func:`mmalign.nn.train.fit`.

        Parameters
        ----------
        loss_fn : callable ``(module, batch) -> scalar tensor``
        data : Dataset or tuple of tensors
        validation : Dataset or tuple, optional
            ``val_data`` of :func:`~mmalign.nn.train.fit`.
        config : TrainConfig, optional
            Default :meth:`train_config`; give one derived from it
            (``dataclasses.replace``) where the model adapts a field to the data.
        **fit_kwargs
            ``val_metric``, ``param_groups``, ``regenerate`` of
            :func:`~mmalign.nn.train.fit`.

        Returns
        -------
        history : History
            Also stored as ``self.history_`` (a dict); ``self.device_`` is set.
        """
        module = getattr(self, "module_", None)
        if module is None:
            raise RuntimeError(f"{type(self).__name__}: build the network (_ensure_module) "
                               "before training it")
        config = self.train_config() if config is None else config
        history = train_fit(module, loss_fn, data, config=config, val_data=validation,
                            **fit_kwargs)
        self.history_ = history.as_dict()
        self.device_ = _module_device(module, config.device)
        return history

    # ------------------------------------------------------------------ fitted state
    def _check_fitted(self, attribute: str = "module_", fit_call: str = "fit") -> None:
        """``ValueError("this <Class> is not fitted yet; call <fit_call> first")`` unless
        ``attribute`` is set."""
        check_fitted(self, attribute, fit_call)

    def to(self, device: str | torch.device) -> "TorchEstimator":
        """Move ``module_`` (when built) and tensor-valued fitted attributes to ``device``.

        Parameters
        ----------
        device : str or torch.device
            ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a ``torch.device``.

        Returns
        -------
        self

        Notes
        -----
        Training runs on ``train``'s device; ``to`` moves a fitted network for
        inference (and ``device_`` records where it is).
        """
        dev = resolve_device(device)
        module = getattr(self, "module_", None)
        if module is not None:
            module.to(dev)
        _move_fitted_tensors(self, dev)
        self.device_ = dev
        return self

    # ------------------------------------------------------------------ inputs
    def _module_dtype_device(self, module: torch.nn.Module | None = None
                             ) -> tuple[torch.dtype, torch.device]:
        """dtype and device of the first parameter of ``module`` (default ``module_``):
        torch's default dtype and the CPU for a network without parameters (or none yet)."""
        module = getattr(self, "module_", None) if module is None else module
        p = next(iter(module.parameters()), None) if module is not None else None
        if p is None:
            return torch.get_default_dtype(), torch.device("cpu")
        return p.dtype, p.device

    def _as_float_tensor(self, value: Any, name: str, *, module: torch.nn.Module | None = None,
                         dtype: torch.dtype | None = None) -> torch.Tensor:
        """``value`` as a tensor in ``dtype`` (default: the network's), on the network's device.

        Checked by :func:`mmalign.utils.tensors.as_tensor` and
        :func:`~mmalign.utils.tensors.as_float`: a ``ValueError`` naming ``name`` for
        non-numeric, NaN / infinite input or values beyond ``dtype``.
        """
        want, device = self._module_dtype_device(module)
        return as_float(as_tensor(value, name), want if dtype is None else dtype, name).to(device)

    def _as_index_tensor(self, value: Any, name: str, *,
                         module: torch.nn.Module | None = None) -> torch.Tensor:
        """``value`` (token ids, labels) as an int64 tensor on the network's device."""
        t = as_tensor(value, name)
        if t.is_floating_point():
            if not bool(torch.isfinite(t).all()) or not bool((t == t.round()).all()):
                raise ValueError(f"{name} must hold integers, got dtype {t.dtype} with "
                                 "non-integer values")
        return t.to(torch.int64).to(self._module_dtype_device(module)[1])

class TorchAligner(TorchEstimator, Aligner):
    """Base of the neural aligners: a :class:`TorchEstimator` that implements ``align``.

    Subclasses implement ``_check_params``, ``_make_module``, ``fit`` (with the model's
    loss, through :meth:`~TorchEstimator._fit_module`) and ``align`` (read the
    attention / transform of ``module_`` out as an :class:`~mmalign.Alignment`),
    plus the task outputs (``predict``, ``translate``, ``caption``).
    """


def _module_device(module: torch.nn.Module, fallback: Any) -> torch.device:
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else resolve_device(fallback)
