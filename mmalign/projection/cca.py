"""Canonical correlation analysis in closed form, for two views (CCA) and many (MCCA).

Each view is whitened by the inverse square root of its (ridge-regularised)
covariance, computed from an eigendecomposition that drops directions without
variance, so rank-deficient views (``d > n``, collinear features) are handled
exactly on the span of the data.  The canonical directions are then singular
vectors: for two views of the whitened cross-covariance, for several views of
the concatenated whitened views (the MAXVAR generalisation of Kettenring 1971,
which reduces to CCA for two views).

Conventions: rows are paired observations (time steps after warping), columns
features; covariances use ``n - 1``; canonical variates ``(X - mean) @ W`` have
unit variance in the regularised metric (exactly unit variance when ``reg = 0``)
and come ordered by decreasing correlation.  numpy in, numpy out; torch tensors
in, torch tensors out on their device.

Any magnitude: each view is divided by a power of two (exact) before its
covariance is formed, so values near 1e300 or 1e-300 give the same correlations
(weights scaled by the inverse, means by the factor); the ridge ``reg`` stays in
the squared units of the data.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..aligner import Estimator, TransformerMixin
from ..utils.validation import check_fitted, check_float, check_int
from ._inputs import as_real_tensor

# eigenvalues below this fraction of the largest are treated as no variance
RANK_TOL = 1e-10


def inverse_sqrt(C: torch.Tensor, name: str) -> torch.Tensor:
    """C^{-1/2} on the range of the symmetric PSD matrix C; (d, r) with r = rank."""
    try:
        values, vectors = torch.linalg.eigh(C)
    except torch.linalg.LinAlgError as err:
        raise ValueError(f"{name}: the eigendecomposition of its covariance failed ({err}); "
                         "add a ridge with reg=") from None
    top = values.max() if values.numel() else torch.zeros((), dtype=C.dtype)
    if not top > 0:
        raise ValueError(f"{name} has no variance: every feature is constant")
    keep = values > RANK_TOL * top
    return vectors[:, keep] / torch.sqrt(values[keep])


def _as_tensor(X, name: str) -> torch.Tensor:
    T = as_real_tensor(X, name)
    if T.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {tuple(T.shape)}")
    if T.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 observations (rows), got {T.shape[0]}")
    return T.to(torch.float64)


def _views(views: Sequence, names: Sequence[str]):
    tensors = [_as_tensor(V, name) for V, name in zip(views, names)]
    n = tensors[0].shape[0]
    for T, name in zip(tensors, names):
        if T.shape[0] != n:
            raise ValueError(f"{names[0]} and {name} must have the same number of rows "
                             f"(paired observations): {n} and {T.shape[0]}")
        if T.device != tensors[0].device:
            raise ValueError(f"{name} is on {T.device}, {names[0]} on {tensors[0].device}")
    return tensors


class _Whitened(NamedTuple):
    """One view in units of ``scale`` (a power of two): ``T = centred * scale + mean``.

    ``whitening`` (d, r) whitens ``centred``; the view's weights in its own units
    are ``(weights in scaled units) / scale``.
    """

    centred: torch.Tensor
    mean: torch.Tensor
    whitening: torch.Tensor
    scale: float


# Inside this range covariances neither overflow nor underflow (the DTW family uses the same).
_SAFE_LOW, _SAFE_HIGH = 2.0 ** -400, 2.0 ** 400


def _whitened(T: torch.Tensor, reg: float, name: str) -> _Whitened:
    """Centre T, whiten its ridge-regularised covariance, in units of a power of two.

    CCA is scale-invariant, so a view whose largest magnitude lies outside
    ``[2**-400, 2**400]`` is divided by ``scale = 2**e`` (exact) chosen from that
    magnitude: covariances of values near 1e300 or 1e-300 neither overflow nor
    underflow (other views keep ``scale = 1``).  The ridge moves to the same units (``reg / scale**2``),
    and ``scale`` is never below ``sqrt(reg) * 2**-64``: below that the data are
    invisible next to the ridge anyway, and ``reg / scale**2`` stays finite.
    """
    lo, hi = torch.aminmax(T)  # two reductions, no |T| copy
    magnitude = max(float(hi), -float(lo), math.sqrt(reg) * 2.0 ** -64)
    scale = 1.0
    if not _SAFE_LOW <= magnitude <= _SAFE_HIGH:  # ordinary data keep their bits and skip a copy
        scale = math.ldexp(1.0, math.frexp(magnitude)[1] - 1)  # |T / scale| < 2
        T = T / scale
    mean = T.mean(dim=0)
    Tc = T - mean
    C = Tc.T @ Tc / (T.shape[0] - 1)
    if reg > 0:
        C = C + (reg / scale / scale) * torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    return _Whitened(Tc, mean * scale, inverse_sqrt(C, name), scale)


def _unscaled(weights: torch.Tensor, view: _Whitened, name: str) -> torch.Tensor:
    """Weights in scaled units back in the view's units; refused beyond float64."""
    if view.scale == 1.0:
        return weights
    out = weights / view.scale
    if not torch.isfinite(out).all():
        raise ValueError(f"{name}: values too small (largest magnitude about {view.scale:.3g}): "
                         "its canonical weights (about 1 / its standard deviation) overflow "
                         "float64; rescale it")
    return out


def _svd(M: torch.Tensor, names: str):
    try:
        return torch.linalg.svd(M, full_matrices=False)
    except torch.linalg.LinAlgError as err:
        raise ValueError(f"{names}: the singular value decomposition of the whitened "
                         f"cross-covariance failed ({err}); add a ridge with reg=") from None


def cca(X, Y, n_components: int | None = None, *, reg: float = 0.0):
    """Closed-form CCA of paired rows.

    Parameters
    ----------
    X : np.ndarray or torch.Tensor [shape=(n, d_x)]
    Y : np.ndarray or torch.Tensor [shape=(n, d_y)]
    n_components : int or None
        Default: the smaller of the two views' ranks.
    reg : float >= 0
        Ridge added to each covariance's diagonal (for ``d`` close to or above
        ``n``), in the squared units of the data.

    Returns
    -------
    x_weights : [shape=(d_x, k)]
    y_weights : [shape=(d_y, k)]
    correlations : [shape=(k,)]
        Canonical correlations, decreasing.
    x_mean, y_mean : [shape=(d_x,)], [shape=(d_y,)]

    Raises
    ------
    ValueError
        Naming the view: NaN / inf, non-numeric, empty or non-2-D input,
        different row counts, no variance, weights beyond float64 (a view
        whose values all lie below about 1e-308, with ``reg=0``), a failed
        decomposition.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.projection import cca
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((500, 1))
    >>> X = np.hstack([z, rng.standard_normal((500, 2))])
    >>> Y = np.hstack([rng.standard_normal((500, 1)), -2 * z])
    >>> _, _, rho, _, _ = cca(X, Y)
    >>> np.round(rho, 2)
    array([1.  , 0.08])
    """
    Xt, Yt = _views([X, Y], ["X", "Y"])
    reg = check_float(reg, "reg", 0.0, np.inf)
    x, y = _whitened(Xt, reg, "X"), _whitened(Yt, reg, "Y")
    k_max = min(x.whitening.shape[1], y.whitening.shape[1])
    k = k_max if n_components is None else check_int(n_components, "n_components", 1)
    if k > k_max:
        raise ValueError(f"n_components={k} exceeds the rank available ({k_max})")
    T = x.whitening.T @ (x.centred.T @ y.centred / (Xt.shape[0] - 1)) @ y.whitening
    U, S, Vh = _svd(T, "X and Y")
    out = (_unscaled(x.whitening @ U[:, :k], x, "X"), _unscaled(y.whitening @ Vh.T[:, :k], y, "Y"),
           S[:k].clamp(max=1.0), x.mean, y.mean)
    return tuple(_like(t, X) for t in out)


def mcca(views: Sequence, n_components: int | None = None, *, reg: float = 0.0):
    """Multi-set CCA (MAXVAR): one shared set of directions for N >= 2 views.

    Parameters
    ----------
    views : sequence of arrays [shape=(n, d_k)]
        Paired rows across all views (a list or tuple; not a generator).
    n_components : int or None
        Default: the smallest view rank.
    reg : float >= 0

    Returns
    -------
    weights : list of [shape=(d_k, k)]
        Each view's variates ``(X_k - mean_k) @ weights[k]`` have unit variance.
    scores : [shape=(k,)]
        Eigenvalues of the sum of the views' projectors, in ``[1, N]``, decreasing:
        ``N`` where all views share a direction perfectly.
    means : list of [shape=(d_k,)]

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.projection import mcca
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((300, 1))
    >>> views = [np.hstack([z * s, rng.standard_normal((300, 2))]) for s in (1, -1, 3)]
    >>> W, scores, _ = mcca(views, 1)
    >>> round(float(scores[0]), 3)
    3.0
    """
    views = _view_sequence(views)
    names = [f"views[{k}]" for k in range(len(views))]
    tensors = _views(views, names)
    reg = check_float(reg, "reg", 0.0, np.inf)
    parts = [_whitened(T, reg, name) for T, name in zip(tensors, names)]
    k_max = min(part.whitening.shape[1] for part in parts)
    k = k_max if n_components is None else check_int(n_components, "n_components", 1)
    if k > k_max:
        raise ValueError(f"n_components={k} exceeds the smallest view rank ({k_max})")
    n = tensors[0].shape[0]
    Z = torch.cat([part.centred @ part.whitening / np.sqrt(n - 1) for part in parts], dim=1)
    U, S, Vh = _svd(Z, "views")
    weights, start = [], 0
    for part, name in zip(parts, names):
        r = part.whitening.shape[1]
        w = part.whitening @ Vh[:k, start:start + r].T  # (d_k, k)
        start += r
        # unit variance for each view's variates
        sd = torch.sqrt(((part.centred @ w) ** 2).sum(dim=0) / (n - 1))
        weights.append(_unscaled(w / torch.where(sd > 0, sd, torch.ones_like(sd)), part, name))
    return ([_like(w, views[0]) for w in weights], _like(S[:k] ** 2, views[0]),
            [_like(part.mean, views[0]) for part in parts])


def _view_sequence(views) -> list:
    """``views`` as a list of at least 2 views; a generator, a set or one array is refused."""
    if isinstance(views, (np.ndarray, torch.Tensor)) and views.ndim != 3:
        raise ValueError(f"views must be a sequence of (n, d_k) arrays, one per view, got a "
                         f"single array of shape {tuple(views.shape)}; pass [X, Y, ...]")
    if not isinstance(views, (Sequence, np.ndarray, torch.Tensor)):
        raise ValueError(f"views must be a sequence (list or tuple) of (n, d_k) arrays, got "
                         f"{type(views).__name__}; pass list(views)")
    if len(views) < 2:
        raise ValueError(f"views must hold at least 2 views, got {len(views)}")
    return list(views)


def _like(t: torch.Tensor, reference):
    return t if isinstance(reference, torch.Tensor) else t.cpu().numpy()


class CCA(TransformerMixin, Estimator):
    """Canonical correlation analysis, closed form: a scikit-learn style transformer.

    ``fit(X, Y)`` / ``transform(X[, Y])`` / ``fit_transform(X, Y)``. Unlike
    scikit-learn's iterative NIPALS ``CCA``, the solution is exact, the
    components come ordered by correlation, the variates have unit variance,
    and rank-deficient views (``d > n``) are handled. CCA is not an aligner: it
    relates features, not time steps; :class:`~mmalign.CTW` aligns sequences
    with it.

    Parameters
    ----------
    n_components : int or None
    reg : float >= 0
        Ridge on each covariance.

    Attributes
    ----------
    x_weights_, y_weights_ : (d_x, k), (d_y, k)
    correlations_ : (k,)
    x_mean_, y_mean_ : (d_x,), (d_y,)

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((200, 2))
    >>> X, Y = z @ rng.standard_normal((2, 5)), z @ rng.standard_normal((2, 3))
    >>> model = mmalign.CCA(n_components=2).fit(X, Y)
    >>> np.round(model.correlations_, 6)
    array([1., 1.])
    >>> model.transform(X).shape
    (200, 2)
    """

    def __init__(self, n_components: int | None = None, reg: float = 0.0):
        self.n_components = n_components
        self.reg = reg

    def _check_params(self) -> None:
        if self.n_components is not None:
            check_int(self.n_components, "n_components", 1)
        check_float(self.reg, "reg", 0.0, np.inf)

    def fit(self, X, Y) -> "CCA":
        """Fit on paired rows ``X`` (n, d_x) and ``Y`` (n, d_y); returns ``self``."""
        self._check_params()
        (self.x_weights_, self.y_weights_, self.correlations_, self.x_mean_,
         self.y_mean_) = cca(X, Y, self.n_components, reg=self.reg)
        return self

    def transform(self, X, Y=None):
        """Canonical variates of X (and of Y when given)."""
        check_fitted(self, "x_weights_", "fit(X, Y)")
        out = [self._project(X, self.x_weights_, self.x_mean_, "X")]
        if Y is not None:
            out.append(self._project(Y, self.y_weights_, self.y_mean_, "Y"))
        return out[0] if Y is None else tuple(out)

    def fit_transform(self, X, Y):
        """``fit(X, Y).transform(X, Y)``: the canonical variates of both views."""
        return self.fit(X, Y).transform(X, Y)

    @staticmethod
    def _project(X, weights, mean, name):
        T = as_real_tensor(X, name)
        if T.ndim != 2 or T.shape[1] != weights.shape[0]:
            raise ValueError(f"{name} must have shape (n, {weights.shape[0]}), got "
                             f"{tuple(T.shape)}")
        if isinstance(weights, torch.Tensor):
            return (T.to(device=weights.device, dtype=torch.float64) - mean) @ weights
        return (T.to(torch.float64).cpu().numpy() - mean) @ weights
