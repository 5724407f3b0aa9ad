"""Deep canonical correlation analysis (Andrew et al., ICML 2013).

Two encoders ``f_x``, ``f_y`` are trained so that their outputs on paired rows
are maximally correlated (:func:`cca_loss`); a closed-form linear CCA
(:func:`mmalign.projection.cca`) on the encoder outputs of the training data
then gives unit-variance, decorrelated canonical variates.

Conventions: rows are paired observations, covariances use ``B - 1``, the ridge
``reg`` is *absolute* (``Σ + reg·I``, as ``r1``/``r2`` in Andrew et al.), not
scaled by the covariance's trace.  numpy in, numpy out; torch tensors in, torch
tensors out.

Numerical choices (all for finite gradients): the whitened cross-covariance is
formed with Cholesky factors, ``T' = L_x^{-1} Σ_xy L_y^{-T}``, which has the
same singular values as ``T = Σ_xx^{-1/2} Σ_xy Σ_yy^{-1/2}`` (``L^{-1}`` equals
``Σ^{-1/2}`` up to an orthogonal factor) and whose backward pass, unlike that
of ``eigh``, has no ``1 / (λ_i - λ_j)`` terms, so it stays finite when
covariance eigenvalues coincide (e.g. the ``k - B + 1`` eigenvalues equal to
``reg`` when the batch is not larger than the latent dimension).  Only when a
covariance is not positive definite (``reg = 0`` with a rank-deficient batch)
does it fall back to ``Σ^{-1/2}`` from ``torch.linalg.eigh`` with eigenvalues
clamped at ``eps``.  Singular values come from ``eigvalsh(T'ᵀT')`` clamped at
``eps``; eigenvalue derivatives (``V diag(g) Vᵀ``) are stable where SVD's are not.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Callable, Sequence

import numpy as np
import torch

from ..aligner import TransformerMixin
from ..nn.estimator import TorchEstimator
from ..utils.tensors import as_float
from ..utils.validation import check_choice, check_float, check_int
from ._inputs import as_real_tensor
from .cca import cca, mcca

__all__ = ["DeepCCA", "DeepCCAModule", "DeepMCCA", "DeepMCCAModule", "cca_loss", "mcca_loss",
           "mlp_encoder", "cnn_encoder", "gru_encoder"]

OBJECTIVES = ("trace", "sum_sq", "frobenius")


# --------------------------------------------------------------------------- loss
def _whitener_apply(C: torch.Tensor, M: torch.Tensor, eps: float) -> torch.Tensor:
    """W @ M with W a whitening of C (``W C Wᵀ = I``): Cholesky, eigh fallback."""
    L, info = torch.linalg.cholesky_ex(C)
    if int(info) == 0:
        return torch.linalg.solve_triangular(L, M, upper=False)
    values, vectors = torch.linalg.eigh(C)
    return (vectors * values.clamp(min=eps).rsqrt()) @ vectors.T @ M


def cca_loss(hx: torch.Tensor, hy: torch.Tensor, *, n_components: int | None = None,
             objective: str = "trace", reg: float = 1e-4, eps: float = 1e-9) -> torch.Tensor:
    """Negative deep-CCA objective of a batch of paired encoder outputs.

    With centred ``hx``, ``hy``, ``Σ_xx = hxᵀhx / (B-1) + reg·I`` (likewise
    ``Σ_yy``), ``Σ_xy = hxᵀhy / (B-1)`` and ``T = Σ_xx^{-1/2} Σ_xy Σ_yy^{-1/2}``
    with singular values ``σ_1 >= σ_2 >= ...`` (the canonical correlations of
    the batch), the loss is

    - ``"trace"``: ``-(σ_1 + ... + σ_m)``, the top ``m = n_components`` (all
      when None: minus the trace norm of ``T``; Andrew et al. 2013);
    - ``"sum_sq"``: ``-(σ_1² + ... + σ_m²)`` (cca_zoo's variant; with all
      components it is ``-‖T‖_F²``);
    - ``"frobenius"``: ``-sqrt(σ_1² + ... + σ_m²)`` (``-‖T‖_F`` with all components).

    Parameters
    ----------
    hx : torch.Tensor [shape=(B, k_x)]
    hy : torch.Tensor [shape=(B, k_y)]
        Paired rows, ``B >= 2``.  ``B <= k`` is allowed: the ridge keeps the
        covariances invertible (``reg > 0``), and the loss and its gradient
        stay finite.
    n_components : int >= 1 or None
        How many singular values enter the objective, at most ``min(k_x, k_y)``.
    objective : {"trace", "sum_sq", "frobenius"}
    reg : float >= 0
        Absolute ridge added to the diagonal of each covariance.
    eps : float > 0
        Floor for eigenvalues (of ``TᵀT``, and of the covariances in the
        ``reg = 0`` fallback), so that square roots keep finite derivatives.

    Returns
    -------
    loss : torch.Tensor [shape=()]
        Differentiable with respect to ``hx`` and ``hy``.

    Examples
    --------
    >>> import torch
    >>> from mmalign.projection.deep_cca import cca_loss
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(500, 2, generator=g, dtype=torch.float64)
    >>> round(float(cca_loss(h, 3 * h, reg=0.0)), 4)
    -2.0
    """
    for t, name in ((hx, "hx"), (hy, "hy")):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 2:
            raise ValueError(f"{name} must have shape (B, k), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got dtype {t.dtype}")
    if hx.shape[0] != hy.shape[0]:
        raise ValueError(f"hx and hy must have the same number of rows (paired "
                         f"observations): {hx.shape[0]} and {hy.shape[0]}")
    if hx.shape[0] < 2:
        raise ValueError(f"hx needs at least 2 rows to estimate covariances, got {hx.shape[0]}")
    check_choice(objective, "objective", OBJECTIVES)
    reg = check_float(reg, "reg", 0.0)
    eps = check_float(eps, "eps", 0.0, low_open=True)
    k_max = min(hx.shape[1], hy.shape[1])
    m = k_max if n_components is None else check_int(n_components, "n_components", 1)
    if m > k_max:
        raise ValueError(f"n_components={m} exceeds min(k_x, k_y) = {k_max}")
    if hy.dtype != hx.dtype:
        hy = hy.to(hx.dtype)

    B = hx.shape[0]
    xc = hx - hx.mean(dim=0)
    yc = hy - hy.mean(dim=0)
    Sxx = xc.T @ xc / (B - 1)
    Syy = yc.T @ yc / (B - 1)
    Sxy = xc.T @ yc / (B - 1)
    if reg > 0:
        Sxx = Sxx + reg * torch.eye(Sxx.shape[0], dtype=Sxx.dtype, device=Sxx.device)
        Syy = Syy + reg * torch.eye(Syy.shape[0], dtype=Syy.dtype, device=Syy.device)
    A = _whitener_apply(Sxx, Sxy, eps)            # Wx Σxy
    T = _whitener_apply(Syy, A.T, eps).T          # Wx Σxy Wyᵀ
    sq = torch.linalg.eigvalsh(T.T @ T).clamp(min=eps)  # σ², ascending
    top = sq[-m:]
    if objective == "trace":
        return -torch.sqrt(top).sum()
    if objective == "sum_sq":
        return -top.sum()
    return -torch.sqrt(top.sum())


def mcca_loss(hs: Sequence[torch.Tensor], *, n_components: int | None = None,
              reg: float = 1e-4, eps: float = 1e-9) -> torch.Tensor:
    """Negative multi-set (MAXVAR) deep-CCA objective of N >= 2 paired views.

    The objective of deep generalised CCA (Benton et al. 2019) and of
    :func:`~mmalign.projection.mcca`: with centred views ``h_j`` (B, k_j),
    ``Σ_jj = h_jᵀh_j / (B-1) + reg·I`` and the whitened views
    ``z_j = h_j Σ_jj^{-1/2} / sqrt(B-1)``, let ``M = Σ_j z_j z_jᵀ`` (B, B), the
    sum of the views' (ridge-shrunk) projectors, with eigenvalues
    ``λ_1 >= λ_2 >= ...``.  The loss is

    ``-(λ_1 + ... + λ_m)``,  ``m = n_components``,

    which equals ``min_{G, U_j} Σ_j ‖G - z_j U_j‖_F² - m·N`` over ``G`` (B, m)
    with orthonormal columns and any ``U_j`` (the shared representation ``G``
    is the top ``m`` eigenvectors of ``M``).  The eigenvalues are computed from
    the small ``(K, K)`` Gram matrix ``[z_1 … z_N]ᵀ[z_1 … z_N]``,
    ``K = Σ_j k_j`` (same non-zero spectrum), whose blocks are the whitened
    cross-covariances ``Σ_ii^{-1/2} Σ_ij Σ_jj^{-1/2}``.  Each ``λ`` lies in
    ``[0, N]``; ``λ = N`` for a direction shared exactly by all views.

    Two views, ``reg = 0``: the eigenvalues are ``1 ± σ_i`` (``σ_i`` the
    canonical correlations), so ``mcca_loss([hx, hy]) == cca_loss(hx, hy,
    objective="trace") - m`` for ``m <= min(k_x, k_y)``; with ``reg > 0`` the
    two differ by ``O(reg / λ_min(Σ))`` (the ridge shrinks the whitened
    auto-covariance blocks below the identity).

    Parameters
    ----------
    hs : sequence of torch.Tensor [shape=(B, k_j)]
        N >= 2 views with paired rows (same ``B >= 2``), feature sizes may
        differ.  ``B <= k_j`` is allowed: the ridge keeps each covariance
        invertible (``reg > 0``) and the loss and its gradient stay finite.
    n_components : int >= 1 or None
        How many eigenvalues enter the objective, at most ``min_j k_j``
        (the default).
    reg : float >= 0
        Absolute ridge added to the diagonal of each covariance (as
        :func:`cca_loss`).
    eps : float > 0
        Floor for the covariance eigenvalues in the ``reg = 0`` fallback of a
        rank-deficient batch.

    Returns
    -------
    loss : torch.Tensor [shape=()]
        Differentiable with respect to every view.

    Examples
    --------
    >>> import torch
    >>> from mmalign.projection.deep_cca import mcca_loss
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(500, 2, generator=g, dtype=torch.float64)
    >>> round(float(mcca_loss([h, 3 * h, h @ torch.tensor([[1., 2.], [0., 1.]], dtype=torch.float64)], reg=0.0)), 4)
    -6.0
    """
    if isinstance(hs, torch.Tensor) or not isinstance(hs, Sequence):
        raise ValueError(f"hs must be a list of (B, k_j) tensors, got {type(hs).__name__}")
    if len(hs) < 2:
        raise ValueError(f"hs must hold at least 2 views, got {len(hs)}")
    for j, t in enumerate(hs):
        name = f"hs[{j}]"
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 2:
            raise ValueError(f"{name} must have shape (B, k), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got dtype {t.dtype}")
        if t.shape[0] != hs[0].shape[0]:
            raise ValueError(f"hs[0] and {name} must have the same number of rows (paired "
                             f"observations): {hs[0].shape[0]} and {t.shape[0]}")
    B = hs[0].shape[0]
    if B < 2:
        raise ValueError(f"hs[0] needs at least 2 rows to estimate covariances, got {B}")
    reg = check_float(reg, "reg", 0.0)
    eps = check_float(eps, "eps", 0.0, low_open=True)
    k_max = min(t.shape[1] for t in hs)
    m = k_max if n_components is None else check_int(n_components, "n_components", 1)
    if m > k_max:
        raise ValueError(f"n_components={m} exceeds the smallest view size min(k_j) = {k_max}")

    dtype = hs[0].dtype
    blocks = []
    for t in hs:
        c = t.to(dtype) - t.to(dtype).mean(dim=0)
        S = c.T @ c / (B - 1)
        if reg > 0:
            S = S + reg * torch.eye(S.shape[0], dtype=S.dtype, device=S.device)
        blocks.append(_whitener_apply(S, c.T, eps) / (B - 1) ** 0.5)   # z_jᵀ: (k_j, B)
    Z = torch.cat(blocks, dim=0)                                       # (K, B)
    values = torch.linalg.eigvalsh(Z @ Z.T)                            # ascending
    return -values[-m:].sum()


# ----------------------------------------------------------------------- encoders
def mlp_encoder(in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64),
                activation: type[torch.nn.Module] = torch.nn.ReLU) -> torch.nn.Sequential:
    """Multi-layer perceptron ``(B, in_dim) -> (B, out_dim)``.

    Parameters
    ----------
    in_dim, out_dim : int >= 1
    hidden : sequence of int
        Widths of the hidden layers (empty: one linear layer).
    activation : torch.nn.Module class
        Non-linearity after each hidden layer.

    Returns
    -------
    encoder : torch.nn.Sequential

    Examples
    --------
    >>> import torch
    >>> from mmalign.projection.deep_cca import mlp_encoder
    >>> mlp_encoder(5, 2, hidden=(8,))(torch.zeros(3, 5)).shape
    torch.Size([3, 2])
    """
    in_dim = check_int(in_dim, "in_dim", 1)
    out_dim = check_int(out_dim, "out_dim", 1)
    widths = [check_int(h, "hidden", 1) for h in hidden]
    layers: list[torch.nn.Module] = []
    prev = in_dim
    for w in widths:
        layers += [torch.nn.Linear(prev, w), activation()]
        prev = w
    layers.append(torch.nn.Linear(prev, out_dim))
    return torch.nn.Sequential(*layers)


class _ConvEncoder(torch.nn.Module):
    def __init__(self, in_channels: int, out_dim: int, hidden: int, kernel_size: int,
                 n_layers: int):
        super().__init__()
        layers: list[torch.nn.Module] = []
        prev = in_channels
        for _ in range(n_layers):
            layers += [torch.nn.Conv1d(prev, hidden, kernel_size, padding=kernel_size // 2),
                       torch.nn.ReLU()]
            prev = hidden
        self.conv = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(prev, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2))  # (B, hidden, T)
        return self.head(h.mean(dim=2))


def cnn_encoder(in_channels: int, out_dim: int, hidden: int = 64, kernel_size: int = 5,
                n_layers: int = 2) -> torch.nn.Module:
    """1-D convolution over time, mean-pooled: ``(B, T, in_channels) -> (B, out_dim)``.

    Parameters
    ----------
    in_channels : int >= 1
        Features per time step.
    out_dim : int >= 1
    hidden : int >= 1
        Channels of each convolution.
    kernel_size : int >= 1
        Odd sizes keep the length (``padding = kernel_size // 2``).
    n_layers : int >= 1

    Returns
    -------
    encoder : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from mmalign.projection.deep_cca import cnn_encoder
    >>> cnn_encoder(3, 2, hidden=8)(torch.zeros(4, 10, 3)).shape
    torch.Size([4, 2])
    """
    return _ConvEncoder(check_int(in_channels, "in_channels", 1), check_int(out_dim, "out_dim", 1),
                        check_int(hidden, "hidden", 1), check_int(kernel_size, "kernel_size", 1),
                        check_int(n_layers, "n_layers", 1))


class _GRUEncoder(torch.nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int):
        super().__init__()
        self.gru = torch.nn.GRU(in_dim, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)  # h: (1, B, hidden), the last state
        return self.head(h[-1])


def gru_encoder(in_dim: int, out_dim: int, hidden: int = 64) -> torch.nn.Module:
    """GRU over time, last hidden state: ``(B, T, in_dim) -> (B, out_dim)``.

    Parameters
    ----------
    in_dim, out_dim : int >= 1
    hidden : int >= 1
        GRU state size.

    Returns
    -------
    encoder : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from mmalign.projection.deep_cca import gru_encoder
    >>> gru_encoder(3, 2, hidden=8)(torch.zeros(4, 10, 3)).shape
    torch.Size([4, 2])
    """
    return _GRUEncoder(check_int(in_dim, "in_dim", 1), check_int(out_dim, "out_dim", 1),
                       check_int(hidden, "hidden", 1))


# -------------------------------------------------------------------------- model
def _check_batch_size(batch_size, name: str = "batch_size") -> int:
    if isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, (bool, np.bool_)) \
            and batch_size < 2:
        raise ValueError(f"{name} must be >= 2 (each batch estimates covariances), "
                         f"got {batch_size}")
    return check_int(batch_size, name, 2)


def _diverged(model: object, lr: float) -> ValueError:
    return ValueError(f"{type(model).__name__} training diverged (the encoder outputs became NaN, "
                      f"infinite or too large for the loss); use a lower lr (got lr={lr!r})")


def _check_finite(model: object, lr: float, outputs) -> None:
    """Raise the divergence error when encoder outputs hold NaN or infinite values."""
    for h in outputs:
        finite = torch.isfinite(h).all() if isinstance(h, torch.Tensor) else np.isfinite(h).all()
        if not bool(finite):
            raise _diverged(model, lr)


def _guarded_loss(model: object, lr: float, outputs,
                  loss: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``loss()`` of a batch's encoder ``outputs``, reporting a diverged training as such
    rather than as bad input or a failed eigen-decomposition."""
    _check_finite(model, lr, outputs)
    try:
        return loss()
    except torch.linalg.LinAlgError as err:  # outputs finite but far too large
        raise _diverged(model, lr) from err


@torch.no_grad()
def _encode(enc: torch.nn.Module, T: torch.Tensor, name: str, chunk: int) -> np.ndarray:
    """``enc(T)`` in chunks of rows, as float64 numpy (``T`` cast to the encoder's dtype)."""
    p = next(iter(enc.parameters()), None)
    if p is not None:
        T = as_float(T, p.dtype, name).to(p.device)
    out = torch.cat([enc(T[i:i + chunk]) for i in range(0, T.shape[0], chunk)])
    return out.double().cpu().numpy()


def _check_encoded(h: np.ndarray, T: torch.Tensor, name: str) -> None:
    """A ValueError naming ``name`` when the encoder output of its values ``T`` overflows."""
    if not np.isfinite(h).all():
        raise ValueError(f"{name}: the encoder output overflows: its values are too large for "
                         f"this model (largest magnitude {float(T.abs().max()):.3g}); rescale it")


def _first_param(module: torch.nn.Module) -> torch.Tensor | None:
    return next(iter(module.parameters()), None)


def _encode_all(module: torch.nn.Module, encoders, tensors, names, chunk: int = 4096) -> list:
    """Each encoder's output on its tensor (None stays None), in eval mode, as float64 numpy."""
    was_training = module.training
    module.eval()
    try:
        return [None if T is None else _encode(enc, T, name, chunk)
                for enc, T, name in zip(encoders, tensors, names)]
    finally:
        module.train(was_training)


# Deep CCA's training defaults (TorchEstimator.TRAIN_DEFAULTS), those of the flat arguments
# the models took before: 200 epochs, batches of 256, Adam at 1e-3, seed 0, on the CPU.
_DEEP_CCA_TRAINING = {"max_epochs": 200, "batch_size": 256, "lr": 1e-3, "seed": 0, "device": "cpu"}


class DeepCCAModule(torch.nn.Module):
    """The network of :class:`DeepCCA`: two encoders side by side.

    ``forward(x, y) -> (encoder_x(x), encoder_y(y))``, shapes ``(B, k_x)``, ``(B, k_y)``.
    Public so that it can sit inside other models; train it with :func:`cca_loss`.

    Examples
    --------
    >>> import torch
    >>> from mmalign.projection.deep_cca import DeepCCAModule, mlp_encoder
    >>> net = DeepCCAModule(mlp_encoder(3, 2, hidden=(4,)), mlp_encoder(5, 2, hidden=(4,)))
    >>> [tuple(h.shape) for h in net(torch.zeros(7, 3), torch.zeros(7, 5))]
    [(7, 2), (7, 2)]
    """

    def __init__(self, encoder_x: torch.nn.Module, encoder_y: torch.nn.Module):
        super().__init__()
        self.encoder_x = encoder_x
        self.encoder_y = encoder_y

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder_x(x), self.encoder_y(y)


class DeepMCCAModule(torch.nn.Module):
    """The network of :class:`DeepMCCA`: one encoder per view.

    ``forward(*views) -> [encoders[j](views[j]) ...]``, one ``(B, k_j)`` tensor per view;
    train it with :func:`mcca_loss`.
    """

    def __init__(self, encoders: Sequence[torch.nn.Module]):
        super().__init__()
        self.encoders = torch.nn.ModuleList(encoders)

    def forward(self, *views: torch.Tensor) -> list[torch.Tensor]:
        return [enc(v) for enc, v in zip(self.encoders, views)]


class DeepCCA(TransformerMixin, TorchEstimator):
    """Deep CCA: two encoders trained for maximal correlation, then linear CCA.

    A transformer (``fit`` / ``transform`` / ``fit_transform``), not an aligner:
    it relates features, not time steps (:class:`~mmalign.DCTW` aligns
    sequences with it). ``fit`` builds the network (:class:`DeepCCAModule`,
    ``module_``), trains it with :func:`mmalign.nn.train.fit` on
    :func:`cca_loss`, then fits a closed-form CCA on the encoder outputs of the
    training data, so that :meth:`transform` returns unit-variance,
    decorrelated canonical variates ordered by correlation. Calling ``fit``
    again continues from the current weights.

    Parameters
    ----------
    encoder_x, encoder_y : torch.nn.Module or None
        Maps ``(B, ...) -> (B, k)`` (trained in place). None: an MLP
        (:func:`mlp_encoder`) with ``hidden`` layers and ``n_components``
        outputs, for the data's feature count, initialised from the training
        seed (X) and the seed + 1 (Y).
    n_components : int >= 1
        Canonical components kept (and the MLPs' output size).
    objective : {"trace", "sum_sq", "frobenius"}
        See :func:`cca_loss`.
    reg : float >= 0
        Absolute ridge on each covariance in the loss.
    x_dim, y_dim : int or None
        Expected feature counts (checked at ``fit``).
    hidden : sequence of int
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.estimator.TorchEstimator`); the
        defaults: ``max_epochs=200``, ``batch_size=256``, ``lr=1e-3``, ``seed=0``,
        ``device="cpu"``. ``batch_size >= 2`` (each batch estimates covariances;
        ``batch_size >= n``: full-batch training, best for CCA's covariance
        estimates). A training that diverges (NaN or infinite encoder outputs)
        raises ValueError: lower ``lr``.

    Attributes
    ----------
    module_ : DeepCCAModule
        The two encoders.
    x_weights_, y_weights_ : np.ndarray [shape=(k_x, n_components)], [shape=(k_y, n_components)]
        Linear CCA on the encoder outputs.
    x_mean_, y_mean_ : np.ndarray
        Mean encoder outputs on the training data.
    correlations_ : np.ndarray [shape=(n_components,)]
        Canonical correlations on the training data, decreasing.
    n_features_x_, n_features_y_ : int
        Trailing feature size of the training inputs.
    history_ : dict
        The :func:`mmalign.nn.train.fit` history as a dict (``train_loss`` per epoch, ...).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from mmalign.projection.deep_cca import DeepCCA
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((200, 2))
    >>> X, Y = z @ rng.standard_normal((2, 5)), np.tanh(z) @ rng.standard_normal((2, 3))
    >>> model = DeepCCA(n_components=2, hidden=(16,), train={"max_epochs": 20}).fit(X, Y)
    >>> model.transform(X).shape
    (200, 2)
    """

    TRAIN_DEFAULTS = _DEEP_CCA_TRAINING

    def __init__(self, encoder_x: torch.nn.Module | None = None,
                 encoder_y: torch.nn.Module | None = None, n_components: int = 2,
                 objective: str = "trace", reg: float = 1e-4, x_dim: int | None = None,
                 y_dim: int | None = None, hidden: Sequence[int] = (64, 64), train=None):
        self.encoder_x = encoder_x
        self.encoder_y = encoder_y
        self.n_components = n_components
        self.objective = objective
        self.reg = reg
        self.x_dim = x_dim
        self.y_dim = y_dim
        self.hidden = hidden
        self.train = train

    # ----------------------------------------------------------------- estimator hooks
    def _check_params(self) -> None:
        check_int(self.n_components, "n_components", 1)
        check_choice(self.objective, "objective", OBJECTIVES)
        check_float(self.reg, "reg", 0.0)
        for name in ("x_dim", "y_dim"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, 1)
        for name in ("encoder_x", "encoder_y"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, torch.nn.Module):
                raise ValueError(f"{name} must be a torch.nn.Module or None, "
                                 f"got {type(value).__name__}")

    def train_config(self):
        config = super().train_config()
        _check_batch_size(config.batch_size, "train.batch_size")
        return config

    def _make_module(self) -> DeepCCAModule:
        encoders = []
        for side, enc in ((0, self.encoder_x), (1, self.encoder_y)):
            if enc is None:
                name = "xy"[side]
                dim = getattr(self, f"n_features_{name}_", getattr(self, f"{name}_dim"))
                if dim is None:
                    raise ValueError(f"DeepCCA has no encoder for {name.upper()} yet: pass "
                                     f"encoder_{name} or {name}_dim, or call fit first")
                with self._seeded(side):  # X's MLP from the seed, Y's from the seed + 1
                    enc = mlp_encoder(dim, self.n_components, tuple(self.hidden))
            encoders.append(enc)
        return DeepCCAModule(*encoders)

    @classmethod
    def _upgrade_state_key(cls, key: str) -> str:
        # files of DeepCCA as a torch module: its default MLPs were mlp_x / mlp_y
        for side in "xy":
            if key.startswith(f"mlp_{side}."):
                return f"encoder_{side}." + key[len(f"mlp_{side}."):]
        return key

    # --------------------------------------------------------------- interface
    def fit(self, X, Y) -> "DeepCCA":
        """Train the encoders on paired rows, then fit linear CCA on their outputs.

        Calling ``fit`` again continues from the current encoder weights.

        Parameters
        ----------
        X : np.ndarray or torch.Tensor [shape=(n, ...)]
        Y : np.ndarray or torch.Tensor [shape=(n, ...)]
            Paired rows; ``(n, d)`` for the default MLPs.

        Returns
        -------
        self : DeepCCA
        """
        self._check_params()
        config = self.train_config()
        Xt, Yt = as_real_tensor(X, "X"), as_real_tensor(Y, "Y")
        n = Xt.shape[0]
        if Yt.shape[0] != n:
            raise ValueError(f"X and Y must have the same number of rows (paired "
                             f"observations): {n} and {Yt.shape[0]}")
        if n < 2:
            raise ValueError(f"X needs at least 2 rows, got {n}")
        for T, name, dim in ((Xt, "X", self.x_dim), (Yt, "Y", self.y_dim)):
            if dim is not None and T.shape[-1] != dim:
                raise ValueError(f"{name} has {T.shape[-1]} features, {name.lower()}_dim={dim}")
            enc = self.encoder_x if name == "X" else self.encoder_y
            if enc is None and T.ndim != 2:
                raise ValueError(f"{name} must have shape (n, d) for the default MLP encoder, "
                                 f"got {tuple(T.shape)}")
        self.n_features_x_ = int(Xt.shape[-1])
        self.n_features_y_ = int(Yt.shape[-1])
        module = self._ensure_module()
        px, py = _first_param(module.encoder_x), _first_param(module.encoder_y)
        Xt = as_float(Xt, px.dtype if px is not None else torch.get_default_dtype(), "X")
        Yt = as_float(Yt, py.dtype if py is not None else torch.get_default_dtype(), "Y")

        bs = min(int(config.batch_size), n)
        rest = n % bs
        k, objective, reg, lr = int(self.n_components), self.objective, float(self.reg), config.lr

        def loss_fn(model, batch):
            hx, hy = model(*batch)
            m = min(k, hx.shape[1], hy.shape[1])
            return _guarded_loss(self, lr, (hx, hy), lambda: cca_loss(hx, hy, n_components=m,
                                                                      objective=objective, reg=reg))

        # full batches where a short last batch would give poor covariance estimates
        self._fit_module(loss_fn, (Xt, Yt), config=dataclasses.replace(
            config, batch_size=bs, drop_last=config.drop_last or 0 < rest < max(2, bs // 2)))

        hx, hy = self._encode_all(Xt, Yt)
        _check_finite(self, lr, [hx, hy])
        (self.x_weights_, self.y_weights_, self.correlations_, self.x_mean_,
         self.y_mean_) = cca(hx, hy, k)
        return self

    def _encode_all(self, Xt: torch.Tensor | None, Yt: torch.Tensor | None,
                    names: tuple[str, str] = ("X", "Y")):
        module = self.module_
        return _encode_all(module, (module.encoder_x, module.encoder_y), (Xt, Yt), names)

    def transform(self, X, Y=None):
        """Canonical variates of X (and of Y when given).

        Parameters
        ----------
        X : np.ndarray or torch.Tensor [shape=(n, ...)]
        Y : np.ndarray or torch.Tensor [shape=(m, ...)] or None

        Returns
        -------
        zx : [shape=(n, n_components)]
            or the pair ``(zx, zy)`` when Y is given; numpy in, numpy out
            (float64), tensors in, tensors out.
        """
        return self._transform(X, Y, ("X", "Y"))

    def _transform(self, X, Y, names: tuple[str, str]):
        """:meth:`transform`, with messages naming the inputs ``names``."""
        self._check_fitted("x_weights_", "fit(X, Y)")
        Xt = as_real_tensor(X, names[0])
        Yt = None if Y is None else as_real_tensor(Y, names[1])
        for T, name, d, enc in ((Xt, names[0], self.n_features_x_, self.encoder_x),
                                (Yt, names[1], self.n_features_y_, self.encoder_y)):
            if T is None:
                continue
            if enc is None and T.ndim != 2:
                raise ValueError(f"{name} must have shape (n, d) for the default MLP encoder, "
                                 f"got {tuple(T.shape)}")
            if T.shape[-1] != d:
                raise ValueError(f"{name} has {T.shape[-1]} features, fitted on {d}")
        hx, hy = self._encode_all(Xt, Yt, names)
        for h, T, name in ((hx, Xt, names[0]), (hy, Yt, names[1])):
            if h is not None:
                _check_encoded(h, T, name)
        out = [(hx - self.x_mean_) @ self.x_weights_]
        if hy is not None:
            out.append((hy - self.y_mean_) @ self.y_weights_)
        out = [torch.from_numpy(o).to(X.device) if isinstance(X, torch.Tensor) else o
               for o in out]
        return out[0] if Y is None else tuple(out)

    def fit_transform(self, X, Y):
        """``fit(X, Y).transform(X, Y)``: the canonical variates of both views."""
        return self.fit(X, Y).transform(X, Y)


class DeepMCCA(TransformerMixin, TorchEstimator):
    """Deep multi-set CCA: one encoder per view, trained for a shared space, then MCCA.

    A transformer (``fit`` / ``transform`` / ``fit_transform``) of N >= 2 views:
    the encoders (:class:`DeepMCCAModule`, ``module_``) are trained with
    :func:`mmalign.nn.train.fit` on :func:`mcca_loss` (MAXVAR, deep generalised
    CCA of Benton et al. 2019); a closed-form multi-set CCA
    (:func:`mmalign.projection.mcca`) on the encoder outputs of the training
    data then gives each view unit-variance canonical variates in one shared
    ``n_components``-dimensional space. With two views it is the deep CCA of
    :class:`DeepCCA` with the MAXVAR loss (``cca_loss(objective="trace") - m``
    when ``reg = 0``). To warp several sequences with it, see
    :meth:`mmalign.DCTW.align_all`.

    Parameters
    ----------
    encoders : sequence of torch.nn.Module or None
        One encoder per view, ``(B, ...) -> (B, k_j)`` (trained in place). None:
        an MLP per view (:func:`mlp_encoder`, ``hidden`` layers, ``n_components``
        outputs) for the data's feature counts; view ``j``'s is initialised from
        the training seed + ``j`` (for two views the same start as
        :class:`DeepCCA`'s two MLPs).
    n_components : int >= 1
        Canonical components kept (and the MLPs' output size).
    reg : float >= 0
        Absolute ridge on each covariance, in the loss and in the final MCCA.
    dims : sequence of int or None
        Expected feature size of each view (checked at ``fit``).
    hidden : sequence of int
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.estimator.TorchEstimator`); the
        defaults: ``max_epochs=200``, ``batch_size=256``, ``lr=1e-3``, ``seed=0``,
        ``device="cpu"``. ``batch_size >= 2`` (each batch estimates covariances;
        ``batch_size >= n``: full-batch training). A training that diverges (NaN
        or infinite encoder outputs) raises ValueError: lower ``lr``.

    Attributes
    ----------
    module_ : DeepMCCAModule
    weights_ : list of np.ndarray [shape=(k_j, n_components)]
        Linear MCCA on each view's encoder outputs.
    means_ : list of np.ndarray [shape=(k_j,)]
        Mean encoder outputs on the training data.
    scores_ : np.ndarray [shape=(n_components,)]
        MCCA eigenvalues on the training data, in ``[0, N]``, decreasing.
    n_features_ : tuple of int
        Trailing feature size of each training view.
    history_ : dict
        The :func:`mmalign.nn.train.fit` history.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.projection import DeepMCCA
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((200, 2))
    >>> views = [z @ rng.standard_normal((2, 4)), np.tanh(z) @ rng.standard_normal((2, 3)), z ** 3]
    >>> model = DeepMCCA(n_components=2, hidden=(16,), train={"max_epochs": 20}).fit(views)
    >>> [v.shape for v in model.transform(views)]
    [(200, 2), (200, 2), (200, 2)]
    """

    TRAIN_DEFAULTS = _DEEP_CCA_TRAINING

    def __init__(self, encoders: Sequence[torch.nn.Module] | None = None, n_components: int = 2,
                 reg: float = 1e-4, dims: Sequence[int] | None = None,
                 hidden: Sequence[int] = (64, 64), train=None):
        self.encoders = encoders
        self.n_components = n_components
        self.reg = reg
        self.dims = dims
        self.hidden = hidden
        self.train = train

    # ----------------------------------------------------------------- estimator hooks
    def _check_params(self) -> None:
        check_int(self.n_components, "n_components", 1)
        check_float(self.reg, "reg", 0.0)
        if self.encoders is not None:
            if isinstance(self.encoders, torch.nn.Module) or not isinstance(self.encoders, Sequence):
                raise ValueError(f"encoders must be a list of torch.nn.Module, got "
                                 f"{type(self.encoders).__name__}")
            for j, enc in enumerate(self.encoders):
                if not isinstance(enc, torch.nn.Module):
                    raise ValueError(f"encoders[{j}] must be a torch.nn.Module, "
                                     f"got {type(enc).__name__}")
            if len(self.encoders) < 2:
                raise ValueError(f"encoders must hold at least 2 encoders, got {len(self.encoders)}")
        if self.dims is not None:
            for j, d in enumerate(self.dims):
                check_int(d, f"dims[{j}]", 1)

    def train_config(self):
        config = super().train_config()
        _check_batch_size(config.batch_size, "train.batch_size")
        return config

    def _make_module(self) -> DeepMCCAModule:
        if self.encoders is not None:
            return DeepMCCAModule(self.encoders)
        dims = getattr(self, "n_features_", self.dims)
        if dims is None:
            raise ValueError("DeepMCCA has no encoders yet: pass encoders or dims, or call fit first")
        encoders = []
        for j, d in enumerate(dims):
            with self._seeded(j):  # view j's MLP from the seed + j
                encoders.append(mlp_encoder(int(d), int(self.n_components), tuple(self.hidden)))
        return DeepMCCAModule(encoders)

    @classmethod
    def _upgrade_state_key(cls, key: str) -> str:
        # files of DeepMCCA as a torch module: its default MLPs were mlp_0, mlp_1, ...
        head, _, rest = key.partition(".")
        if head.startswith("mlp_") and head[4:].isdigit():
            return f"encoders.{head[4:]}.{rest}"
        return key

    def _n_encoders(self) -> int | None:
        if self.encoders is not None:
            return len(self.encoders)
        module = getattr(self, "module_", None)
        if module is not None:
            return len(module.encoders)
        return len(self.dims) if self.dims is not None else None

    def _views(self, views, fitted: bool, name: str = "views") -> list[torch.Tensor]:
        if isinstance(views, (np.ndarray, torch.Tensor)) or not isinstance(views, Sequence):
            raise ValueError(f"{name} must be a list of (n, d_j) arrays, got "
                             f"{type(views).__name__}")
        if len(views) < 2:
            raise ValueError(f"{name} must hold at least 2 views, got {len(views)}")
        expected = len(self.n_features_) if fitted else self._n_encoders()
        if expected is not None and len(views) != expected:
            raise ValueError(f"{name} holds {len(views)} views, the model has {expected} encoders")
        tensors = [as_real_tensor(V, f"{name}[{j}]") for j, V in enumerate(views)]
        for j, T in enumerate(tensors):
            want = (self.n_features_[j] if hasattr(self, "n_features_")
                    else self.dims[j] if self.dims is not None else None)
            if want is not None and T.shape[-1] != want:
                raise ValueError(f"{name}[{j}] has {T.shape[-1]} features, expected {want}")
            if self.encoders is None and T.ndim != 2:
                raise ValueError(f"{name}[{j}] must have shape (n, d) for the default MLP "
                                 f"encoder, got {tuple(T.shape)}")
        return tensors

    # --------------------------------------------------------------- interface
    def fit(self, views, Y=None) -> "DeepMCCA":
        """Train the encoders on paired rows of all views, then fit MCCA on their outputs.

        Calling ``fit`` again continues from the current encoder weights.

        Parameters
        ----------
        views : sequence of np.ndarray or torch.Tensor [shape=(n, d_j)]
            N >= 2 views with paired rows; ``(n, d_j)`` for the default MLPs.

        Returns
        -------
        self : DeepMCCA
        """
        if Y is not None:
            raise ValueError("DeepMCCA.fit takes one list of views; pass fit([X, Y, ...])")
        self._check_params()
        config = self.train_config()
        tensors = self._views(views, fitted=False)
        n = tensors[0].shape[0]
        for j, T in enumerate(tensors):
            if T.shape[0] != n:
                raise ValueError(f"views[0] and views[{j}] must have the same number of rows "
                                 f"(paired observations): {n} and {T.shape[0]}")
        if n < 2:
            raise ValueError(f"views[0] needs at least 2 rows, got {n}")
        self.n_features_ = tuple(int(T.shape[-1]) for T in tensors)
        module = self._ensure_module()
        cast = []
        for j, (T, enc) in enumerate(zip(tensors, module.encoders)):
            p = _first_param(enc)
            cast.append(as_float(T, p.dtype if p is not None else torch.get_default_dtype(),
                                 f"views[{j}]"))

        bs = min(int(config.batch_size), n)
        rest = n % bs
        k, reg, lr = int(self.n_components), float(self.reg), config.lr

        def loss_fn(model, batch):
            hs = model(*batch)
            m = min([k] + [h.shape[1] for h in hs])
            return _guarded_loss(self, lr, hs, lambda: mcca_loss(hs, n_components=m, reg=reg))

        self._fit_module(loss_fn, tuple(cast), config=dataclasses.replace(
            config, batch_size=bs, drop_last=config.drop_last or 0 < rest < max(2, bs // 2)))

        hs = self._encode_all(cast)
        _check_finite(self, lr, hs)
        m = min([k] + [h.shape[1] for h in hs])
        self.weights_, self.scores_, self.means_ = mcca(hs, m, reg=reg)
        return self

    def _encode_all(self, tensors: list[torch.Tensor], name: str = "views") -> list[np.ndarray]:
        module = self.module_
        return _encode_all(module, module.encoders, tensors,
                           [f"{name}[{j}]" for j in range(len(tensors))])

    def transform(self, views) -> list:
        """Canonical variates of every view.

        Parameters
        ----------
        views : sequence of np.ndarray or torch.Tensor [shape=(n_j, d_j)]
            One array per view, in the fitted order; row counts may differ.

        Returns
        -------
        variates : list of [shape=(n_j, n_components)]
            numpy in, numpy out (float64); tensors in, tensors out.
        """
        return self._transform(views, "views")

    def _transform(self, views, name: str) -> list:
        """:meth:`transform`, with messages naming the input ``name``."""
        self._check_fitted("weights_", "fit(views)")
        tensors = self._views(views, fitted=True, name=name)
        hs = self._encode_all(tensors, name)
        for j, (h, T) in enumerate(zip(hs, tensors)):
            _check_encoded(h, T, f"{name}[{j}]")
        out = []
        for V, h, m, w in zip(views, hs, self.means_, self.weights_):
            z = (h - m) @ w
            out.append(torch.from_numpy(z).to(V.device) if isinstance(V, torch.Tensor) else z)
        return out

    def fit_transform(self, views, Y=None) -> list:
        """``fit(views).transform(views)``."""
        return self.fit(views, Y).transform(views)
