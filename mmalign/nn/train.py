"""The one small training loop every deep aligner in mmalign shares: :func:`fit`.

It handles what each model would otherwise re-implement: device placement,
seeding, mini-batching, optimiser / scheduler set-up, gradient clipping,
validation with early stopping, best-weight restoration, checkpoints with
resume, a progress bar, and ``DistributedDataParallel`` when
``torch.distributed`` is initialised (so the same script runs under
``torchrun``).

Conventions
-----------
- ``data`` is a :class:`torch.utils.data.Dataset` or a tuple of tensors /
  arrays of equal first dimension (wrapped in a ``TensorDataset``; dtypes are
  kept as given).
- A *batch* is always a tuple of tensors already on the training device.
- ``loss_fn(model, batch)`` returns a scalar tensor; it should call
  ``model(...)`` (the forward of the possibly DDP-wrapped model).
- The validation metric is *lower is better*.
- ``batch_size`` is per process: under DDP with ``W`` processes the global
  batch is ``W * batch_size``.
- Epochs are counted from 0: ``History.best_epoch`` indexes
  ``History.train_loss`` / ``History.val_metric``.

Examples
--------
>>> import torch
>>> from mmalign.nn.train import TrainConfig, fit
>>> _ = torch.manual_seed(0)
>>> x = torch.randn(256, 3)
>>> y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
>>> model = torch.nn.Linear(3, 1)
>>> mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
>>> hist = fit(model, mse, (x, y), config=TrainConfig(max_epochs=60, lr=0.05, device="cpu"))
>>> hist.epochs_run, hist.train_loss[-1] < 1e-3
(60, True)
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from ..utils.devices import resolve_device


__all__ = ["TrainConfig", "History", "check_config", "resolve_device", "fit"]

LossFn = Callable[[torch.nn.Module, tuple], torch.Tensor]
MetricFn = Callable[[torch.nn.Module, tuple], float]

_OPTIMIZERS = ("adam", "adamw", "sgd")
_SCHEDULERS = (None, "cosine", "plateau")
_CKPT_FORMAT = "mmalign.train"  # the tag saved in checkpoints: kept from the loop's old module name


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    Parameters
    ----------
    max_epochs : int > 0
        Total number of epochs (a resumed run continues up to this number).
    batch_size : int > 0
        Mini-batch size *per process*.
    lr : float > 0
        Learning rate.
    weight_decay : float >= 0
        Weight decay passed to the optimiser.
    optimizer : {"adam", "adamw", "sgd"}
        ``"sgd"`` uses momentum 0.9.
    scheduler : {None, "cosine", "plateau"}
        ``"cosine"``: cosine annealing over ``max_epochs``, stepped each epoch;
        ``"plateau"``: ``ReduceLROnPlateau`` on the validation metric (the
        training loss without validation data).
    grad_clip : float > 0 or None
        Maximum global gradient norm.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA if available).
    seed : int or None
        Seeds ``torch``, ``numpy`` and ``random`` and the shuffling generator;
        training is deterministic on CPU. ``None``: no seeding.
    patience : int >= 0 or None
        Early stopping: stop after ``patience`` epochs in a row without a
        strict improvement of the validation metric. Needs ``val_data``.
    checkpoint : str or None
        File that receives the best model, optimiser, scheduler, epoch and
        history whenever the validation metric improves (every epoch without
        validation data).
    resume : bool
        Continue from ``checkpoint`` when the file exists.
    progress : bool
        Show a tqdm bar with the running loss (rank 0 only).
    shuffle : bool
        Shuffle the training data each epoch.
    drop_last : bool
        Drop the last incomplete batch.

    It follows scikit-learn's estimator protocol (:meth:`get_params`,
    :meth:`set_params`), so that a neural estimator's ``train`` hyper-parameter
    is cloned by ``sklearn.base.clone`` and reached by
    ``set_params(train__lr=...)`` and grid searches. The values are checked by
    :func:`check_config` (which :func:`fit` calls), not here.

    Examples
    --------
    >>> from mmalign.nn.train import TrainConfig
    >>> TrainConfig(max_epochs=5, optimizer="sgd").lr
    0.001
    >>> TrainConfig().set_params(lr=0.01, max_epochs=3).get_params()["lr"]
    0.01
    """

    max_epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    scheduler: str | None = None
    grad_clip: float | None = None
    device: str = "auto"
    seed: int | None = 0
    patience: int | None = None
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = False
    shuffle: bool = True
    drop_last: bool = False

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The fields, name -> value (scikit-learn's ``get_params``; nothing is nested)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def set_params(self, **params: Any) -> "TrainConfig":
        """Set fields by name (scikit-learn's ``set_params``); returns ``self``.

        Raises
        ------
        ValueError
            For a name that is not a field.
        """
        valid = [f.name for f in fields(self)]
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for TrainConfig; valid "
                                 f"parameters: {valid}")
            setattr(self, name, value)
        return self


@dataclass
class History:
    """What :func:`fit` reports.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss per epoch (averaged over all ranks under DDP).
    val_metric : list of float
        Validation metric per epoch; empty without validation data.
    best_epoch : int
        0-based epoch whose weights the model holds after ``fit``.
    epochs_run : int
        Number of epochs in the history (including those of a resumed run).
    stopped_early : bool
        Whether ``patience`` ended training before ``max_epochs``.

    Examples
    --------
    >>> from mmalign.nn.train import History
    >>> History([0.5, 0.25], [], 1, 2, False).as_dict()["best_epoch"]
    1
    """

    train_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epochs_run: int = 0
    stopped_early: bool = False

    def as_dict(self) -> dict:
        """Plain ``dict`` copy (JSON-able)."""
        return asdict(self)


# --------------------------------------------------------------------------- helpers


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (tuple, list)):
        if len(data) == 0:
            raise ValueError(f"{name}: empty tuple; give a Dataset or a tuple of tensors/arrays")
        tensors = []
        for i, item in enumerate(data):
            try:
                t = item if isinstance(item, torch.Tensor) else torch.as_tensor(np.asarray(item))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ValueError(f"{name}[{i}]: cannot convert {type(item).__name__} to a tensor") from exc
            if t.ndim == 0:
                raise ValueError(f"{name}[{i}]: a 0-d value has no first (sample) dimension")
            tensors.append(t)
        lengths = [t.shape[0] for t in tensors]
        if len(set(lengths)) != 1:
            raise ValueError(f"{name}: tensors have mismatched first dimensions {lengths}")
        dataset = TensorDataset(*tensors)
    else:
        raise ValueError(f"{name}: expected a torch Dataset or a tuple of tensors/arrays, got {type(data).__name__}")
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"{name}: the dataset must define __len__") from exc
    if n == 0:
        raise ValueError(f"{name}: no samples")
    return dataset


def _to_device(batch: Any, device: torch.device) -> tuple:
    if isinstance(batch, torch.Tensor):
        batch = (batch,)
    elif not isinstance(batch, (tuple, list)):
        batch = (batch,)
    return tuple(b.to(device, non_blocking=True) if isinstance(b, torch.Tensor) else b for b in batch)


def check_config(config: TrainConfig, prefix: str = "") -> None:
    """The one validation of a :class:`TrainConfig` (:func:`fit` and every neural estimator
    call it); a ``ValueError`` naming the first bad field, as ``<prefix><field>: ...``.

    Parameters
    ----------
    config : TrainConfig
    prefix : str
        Put before the field's name in messages, e.g. ``"train."`` for an estimator's
        ``train`` hyper-parameter.

    Examples
    --------
    >>> from mmalign.nn.train import TrainConfig, check_config
    >>> check_config(TrainConfig(lr=0.0), prefix="train.")
    Traceback (most recent call last):
    ...
    ValueError: train.lr: expected a positive finite number, got 0.0
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"{prefix or 'config: '}expected a TrainConfig, got {type(config).__name__}")

    def _int(name: str, minimum: int) -> None:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{prefix}{name}: expected an integer >= {minimum}, got {v!r}")

    def _real(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

    _int("max_epochs", 1)
    _int("batch_size", 1)
    if not _real(config.lr) or not math.isfinite(config.lr) or config.lr <= 0:
        raise ValueError(f"{prefix}lr: expected a positive finite number, got {config.lr!r}")
    if not _real(config.weight_decay) or not config.weight_decay >= 0:
        raise ValueError(f"{prefix}weight_decay: expected a number >= 0, got {config.weight_decay!r}")
    if not isinstance(config.optimizer, str) or config.optimizer not in _OPTIMIZERS:
        raise ValueError(f"{prefix}optimizer: unknown {config.optimizer!r}; expected one of {_OPTIMIZERS}")
    if not (config.scheduler is None or isinstance(config.scheduler, str)) \
            or config.scheduler not in _SCHEDULERS:
        raise ValueError(f"{prefix}scheduler: unknown {config.scheduler!r}; expected one of {_SCHEDULERS}")
    if config.grad_clip is not None and (not _real(config.grad_clip) or not config.grad_clip > 0):
        raise ValueError(f"{prefix}grad_clip: expected a positive number or None, got {config.grad_clip!r}")
    if not isinstance(config.device, (str, torch.device)):
        raise ValueError(f"{prefix}device: expected a str or torch.device, got {type(config.device).__name__}")
    if config.patience is not None:
        _int("patience", 0)
    if config.seed is not None and (isinstance(config.seed, bool) or not isinstance(config.seed, (int, np.integer))):
        raise ValueError(f"{prefix}seed: expected an integer or None, got {config.seed!r}")
    if config.checkpoint is not None and not isinstance(config.checkpoint, (str, os.PathLike)):
        raise ValueError(f"{prefix}checkpoint: expected a path or None, got {config.checkpoint!r}")
    for name in ("resume", "progress", "shuffle", "drop_last"):
        if not isinstance(getattr(config, name), (bool, np.bool_)):
            raise ValueError(f"{prefix}{name}: expected True or False, got {getattr(config, name)!r}")


def _param_groups(model: torch.nn.Module, params: list, spec: Any, lr: float) -> list[dict]:
    """Optimiser groups from ``fit``'s ``param_groups``: each group's ``lr`` is
    its own, else ``lr_scale`` (default 1) times ``lr``; trainable parameters
    in no group form a last group at ``lr``."""
    groups = spec(model) if callable(spec) else spec
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise ValueError("param_groups: expected a list of dicts with a 'params' key (or a callable returning one)")
    trainable = {id(p) for p in params}
    seen: set[int] = set()
    out = []
    for g in groups:
        g = dict(g)
        scale = g.pop("lr_scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"param_groups: lr_scale must be a positive number, got {scale!r}")
        g.setdefault("lr", lr * float(scale))
        g["params"] = [p for p in g["params"] if id(p) in trainable]
        if any(id(p) in seen for p in g["params"]):
            raise ValueError("param_groups: a parameter appears in more than one group")
        seen.update(id(p) for p in g["params"])
        if g["params"]:
            out.append(g)
    rest = [p for p in params if id(p) not in seen]
    if rest:
        out.append({"params": rest, "lr": lr})
    return out


def _make_optimizer(params: Sequence[Any], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    if config.scheduler == "cosine":
        total = config.max_epochs  # closed form, so a resumed run follows the new max_epochs

        def _cosine(epoch: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total) / total))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine)
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    return None


def _full_batch(dataset: Dataset, data: Any, device: torch.device) -> tuple:
    """All of ``dataset`` as one batch on ``device``."""
    if isinstance(dataset, TensorDataset) and not isinstance(data, Dataset):
        return _to_device(dataset.tensors, device)
    loader = DataLoader(dataset, batch_size=len(dataset), shuffle=False)  # type: ignore[arg-type]
    return _to_device(next(iter(loader)), device)


def _state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _save_checkpoint(path: str, payload: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


class _ShardedSampler(DistributedSampler):
    """``DistributedSampler`` whose global order each epoch is the single-process order.

    Without DDP, ``fit`` shuffles through ``DataLoader(shuffle=True, generator=g)``
    with ``g`` seeded ``seed + epoch``: the loader draws its base seed from ``g``,
    then the sampler draws ``randperm(n)``.  Drawing the same way here (instead of
    ``DistributedSampler``'s plain ``randperm``) makes batch ``j`` of the ``W``
    ranks together batch ``j`` of one process with batch ``W x batch_size``.
    """

    def __iter__(self):
        if not self.shuffle:
            return super().__iter__()
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        torch.empty((), dtype=torch.int64).random_(generator=g)  # the loader's base seed
        indices = torch.randperm(len(self.dataset), generator=g).tolist()  # type: ignore[arg-type]
        if self.drop_last:
            indices = indices[:self.total_size]
        else:  # pad by repeating, as DistributedSampler does
            pad = self.total_size - len(indices)
            if pad > 0:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        return iter(indices[self.rank:self.total_size:self.num_replicas])


# --------------------------------------------------------------------------- fit


def fit(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Dataset | tuple,
    *,
    config: TrainConfig = TrainConfig(),
    val_data: Dataset | tuple | None = None,
    val_metric: MetricFn | None = None,
    param_groups: list[dict] | Callable[[torch.nn.Module], list[dict]] | None = None,
    regenerate: Callable[[int], Dataset | tuple] | None = None,
) -> History:
    """Train ``model`` by mini-batch gradient descent on ``loss_fn``.

    The model is moved to ``config.device`` and trained in place; afterwards
    it holds the best weights (lowest validation metric when ``val_data`` is
    given, else those of the last epoch) and is back in the train/eval mode
    it came in.

    Under an initialised ``torch.distributed`` process group the model is
    wrapped in ``DistributedDataParallel``, each rank reads its share of the
    data through a ``DistributedSampler`` (``batch_size`` is per rank), the
    reported training loss is averaged across ranks, the validation metric of
    rank 0 decides for all, and only rank 0 writes checkpoints and shows
    progress.  Each epoch the ranks shuffle with the permutation one process
    would use, so when the data divide evenly into ``W x batch_size`` rows,
    ``W`` ranks see exactly the global batches of one process with batch
    ``W x batch_size``: for a loss that is a mean over samples (MSE,
    cross-entropy, ...) they train the same model, to rounding.  A loss that is
    a statistic of the batch (deep CCA's covariances) is computed per rank.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable ``(model, batch) -> scalar tensor``
        ``batch`` is the tuple of tensors of one mini-batch, on the device.
    data : Dataset or tuple of tensors / arrays
        Training data; a tuple must have equal first dimensions.
    config : TrainConfig
    val_data : Dataset or tuple, optional
        Validation data, evaluated once per epoch.
    val_metric : callable ``(model, val_batch) -> float``, optional
        Lower is better; ``val_batch`` is all of ``val_data`` as one tuple of
        tensors on the device. Default: the mean of ``loss_fn`` over the
        validation mini-batches, under ``torch.no_grad()``.
    param_groups : list of dicts, or callable ``model -> list of dicts``, optional
        Optimiser parameter groups (torch's form: ``"params"`` and options),
        where a group may give ``"lr_scale"`` instead of ``"lr"``: its rate is
        ``lr_scale * config.lr`` (schedulers scale every group alike).
        Trainable parameters in no group train at ``config.lr``. Default:
        one group.
    regenerate : callable ``epoch -> Dataset or tuple``, optional
        Fresh training data for every epoch after the first (called with the
        epoch index, from 1; ``data`` trains epoch 0), e.g. images re-drawn
        from a generator each epoch. The optimiser's and the scheduler's state
        carry over from epoch to epoch, as in one run on one data set.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        Bad configuration values, empty data, mismatched tuple lengths,
        ``patience`` or ``val_metric`` without ``val_data``, a loss that is
        not a scalar tensor, an unusable checkpoint.

    Examples
    --------
    >>> import torch
    >>> from mmalign.nn.train import TrainConfig, fit
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(128, 2)
    >>> y = x.sum(1, keepdim=True)
    >>> model = torch.nn.Linear(2, 1)
    >>> mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
    >>> cfg = TrainConfig(max_epochs=30, lr=0.05, batch_size=32, patience=3, device="cpu")
    >>> hist = fit(model, mse, (x, y), config=cfg, val_data=(x, y))
    >>> len(hist.train_loss) == len(hist.val_metric) == hist.epochs_run
    True
    >>> hist.val_metric[hist.best_epoch] == min(hist.val_metric)
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError("loss_fn: expected a callable (model, batch) -> scalar tensor")
    check_config(config)
    dataset = _as_dataset(data, "data")
    val_set = _as_dataset(val_data, "val_data") if val_data is not None else None
    if val_metric is not None and not callable(val_metric):
        raise ValueError("val_metric: expected a callable (model, val_batch) -> float")
    if val_metric is not None and val_set is None:
        raise ValueError("val_metric: given without val_data")
    if config.patience is not None and val_set is None:
        raise ValueError("patience: early stopping needs val_data")

    distributed = _distributed()
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    is_main = rank == 0
    device = resolve_device(config.device)

    if config.seed is not None:
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(config.seed)
    base_seed = int(config.seed) if config.seed is not None else int(torch.randint(0, 2**62, (1,)).item())

    was_training = model.training
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    groups = params if param_groups is None else _param_groups(model, params, param_groups, float(config.lr))
    optimizer = _make_optimizer(groups, config)
    scheduler = _make_scheduler(optimizer, config)

    # ---- resume
    history = History()
    if config.checkpoint and config.resume and os.path.exists(config.checkpoint):
        try:
            ckpt = torch.load(config.checkpoint, map_location=device, weights_only=True)
            if ckpt.get("format") != _CKPT_FORMAT:
                raise KeyError("format")
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt.get("scheduler") is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            saved = ckpt["history"]
        except (KeyError, RuntimeError, AttributeError, TypeError) as exc:
            raise ValueError(f"checkpoint: cannot resume from {config.checkpoint!r}: {exc}") from exc
        history = History(
            train_loss=[float(v) for v in saved["train_loss"]],
            val_metric=[float(v) for v in saved["val_metric"]],
            best_epoch=int(saved["best_epoch"]),
            epochs_run=int(saved["epochs_run"]),
            stopped_early=False,
        )
    start_epoch = history.epochs_run

    # ---- data
    if regenerate is not None and not callable(regenerate):
        raise ValueError("regenerate: expected a callable epoch -> training data")

    def _loader(dataset: Dataset) -> tuple:
        if distributed:
            sampler = _ShardedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=config.shuffle, seed=base_seed,
                drop_last=config.drop_last,
            )
            generator = None
            loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=config.drop_last)
        else:
            sampler = None
            generator = torch.Generator()
            loader = DataLoader(
                dataset, batch_size=config.batch_size, shuffle=config.shuffle,
                drop_last=config.drop_last, generator=generator,
            )
        if len(loader) == 0:
            raise ValueError(
                f"batch_size: {config.batch_size} with drop_last=True leaves no batch from {len(dataset)} samples"  # type: ignore[arg-type]
            )
        return sampler, generator, loader

    sampler, generator, loader = _loader(dataset)
    val_batch = _full_batch(val_set, val_data, device) if (val_set is not None and val_metric is not None) else None
    val_loader = (
        DataLoader(val_set, batch_size=config.batch_size, shuffle=False)
        if (val_set is not None and val_metric is None) else None
    )

    # ---- model wrapper
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        # mmalign's models have branches a configuration leaves idle (heads of objectives
        # weighted 0, a fixed glimpse policy, fusion targets not asked for): their
        # parameters get no gradient, which DDP only accepts when told to look for them
        train_model: torch.nn.Module = (
            DistributedDataParallel(model, device_ids=[device.index], find_unused_parameters=True)
            if device.type == "cuda"
            else DistributedDataParallel(model, find_unused_parameters=True)
        )
    else:
        train_model = model

    def _evaluate() -> float:
        model.eval()
        try:
            with torch.no_grad():
                if val_metric is not None:
                    value = val_metric(model, val_batch)  # type: ignore[arg-type]
                    value = float(value.item() if isinstance(value, torch.Tensor) else value)
                else:
                    total, count = 0.0, 0
                    for vb in val_loader:  # type: ignore[union-attr]
                        vb = _to_device(vb, device)
                        n = int(vb[0].shape[0]) if isinstance(vb[0], torch.Tensor) and vb[0].ndim else 1
                        total += float(loss_fn(model, vb)) * n
                        count += n
                    value = total / count
        finally:
            model.train()
        if distributed:  # rank 0 decides for everybody
            t = torch.tensor([value], dtype=torch.float64, device=device)
            dist.broadcast(t, src=0)
            value = float(t.item())
        return value

    best_state = _state_copy(model) if history.epochs_run else None
    best_value = history.val_metric[history.best_epoch] if (history.val_metric and history.best_epoch >= 0) else math.inf
    bad_epochs = (history.epochs_run - 1 - history.best_epoch) if history.val_metric else 0

    bar = None
    if config.progress and is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_epochs * len(loader), initial=start_epoch * len(loader), desc="fit", leave=False)

    model.train()
    try:
        for epoch in range(start_epoch, config.max_epochs):
            if regenerate is not None and epoch > 0:
                sampler, generator, loader = _loader(_as_dataset(regenerate(epoch), f"regenerate({epoch})"))
            if sampler is not None:
                sampler.set_epoch(epoch)
            if generator is not None:
                generator.manual_seed(base_seed + epoch)  # resume-safe: order depends only on (seed, epoch)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            n_sum = 0
            for batch in loader:
                batch = _to_device(batch, device)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(train_model, batch)
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise ValueError("loss_fn: must return a scalar tensor")
                loss = loss.reshape(())
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                n = int(batch[0].shape[0]) if isinstance(batch[0], torch.Tensor) and batch[0].ndim else 1
                loss_sum += loss.detach().double() * n
                n_sum += n
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{float(loss.detach()):.4g}")
            totals = torch.stack([loss_sum, torch.tensor(float(n_sum), dtype=torch.float64, device=device)])
            if distributed:
                dist.all_reduce(totals)
            epoch_loss = float(totals[0] / totals[1])
            history.train_loss.append(epoch_loss)

            if val_set is not None:
                value = _evaluate()
                history.val_metric.append(value)
                improved = value < best_value
            else:
                value = epoch_loss
                improved = True
            if scheduler is not None:
                if config.scheduler == "plateau":
                    scheduler.step(value)
                else:
                    scheduler.step()
            history.epochs_run = epoch + 1
            if bar is not None and val_set is not None:
                bar.set_postfix(epoch=epoch, loss=f"{epoch_loss:.4g}", val=f"{value:.4g}")

            if improved:
                best_value = value if val_set is not None else best_value
                bad_epochs = 0
                history.best_epoch = epoch
                best_state = _state_copy(model)
                if config.checkpoint and is_main:
                    _save_checkpoint(config.checkpoint, {
                        "format": _CKPT_FORMAT,
                        "epoch": epoch,
                        "model": best_state,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "history": history.as_dict(),
                        "config": asdict(config),
                    })
            else:
                bad_epochs += 1
                if config.patience is not None and bad_epochs >= max(config.patience, 1):
                    history.stopped_early = epoch + 1 < config.max_epochs
                    break
    finally:
        if bar is not None:
            bar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    if distributed:
        dist.barrier()  # checkpoint on disk before any rank goes on
    model.train(was_training)
    return history
