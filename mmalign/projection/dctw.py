"""Deep canonical time warping (Trigeorgis et al., CVPR 2016).

DCTW replaces CTW's linear projections by deep CCA encoders: it alternates

1. deep CCA steps (:class:`~mmalign.DeepCCA`, a few epochs each, continuing from the
   current weights) on the frames the current paths pair, over every training pair;
2. DTW between the canonical variates of each pair: new paths.

The start paths come from :class:`~mmalign.CTW` (``init="ctw"``) or the uniform
diagonal.  ``align(x, y)`` encodes both sequences with the trained model and runs
DTW on their canonical variates.
"""

from __future__ import annotations

import numpy as np

from ..aligner import Aligner
from ..alignment import Alignment
from ..warping import dtw_path
from ..warping._validation import as_sequence, check_choice, check_int
from .ctw import CTW, path_objective, uniform_path
from .deep_cca import DeepCCA


class DCTW(Aligner):
    """Deep canonical time warping of sequence pairs from two modalities.

    Parameters
    ----------
    n_components : int or None
        Dimension of the shared space (encoder outputs); default the smaller
        feature dimension, as :class:`~mmalign.CTW`.
    hidden : tuple of int
        Hidden layers of the default MLP encoders.
    objective, reg
        Deep CCA objective and ridge (see :func:`~mmalign.projection.cca_loss`).
    n_outer : int
        Alternations of deep CCA and DTW.
    epochs_per_step : int
        Deep CCA epochs per alternation.
    batch_size, lr, seed, device
        Training settings (:mod:`mmalign.train`).
    init : {"ctw", "uniform"}
        Start paths.
    radius : int or None
        Sakoe–Chiba radius of the DTW steps.

    Attributes
    ----------
    model_ : DeepCCA
    history_ : list of float
        Mean objective (squared distance of the paired canonical variates per path
        step) after each alternation.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> t = np.linspace(0, 1, 80)
    >>> x = np.c_[np.sin(6 * t), np.cos(4 * t) ** 3]
    >>> u = t ** 1.3
    >>> y = np.tanh(np.c_[np.sin(6 * u), np.cos(4 * u), np.sin(6 * u) * np.cos(4 * u)])
    >>> model = mmalign.DCTW(n_outer=2, epochs_per_step=5).fit([(x, y)])
    >>> model.align(x, y).shape
    (80, 80)
    """

    def __init__(self, n_components: int | None = None, hidden: tuple = (64, 64), objective: str = "trace",
                 reg: float = 1e-4, n_outer: int = 5, epochs_per_step: int = 30,
                 batch_size: int = 512, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                 init: str = "ctw", radius: int | None = None):
        self.n_components = n_components
        self.hidden = hidden
        self.objective = objective
        self.reg = reg
        self.n_outer = n_outer
        self.epochs_per_step = epochs_per_step
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device
        self.init = init
        self.radius = radius

    def fit(self, pairs, Y=None) -> "DCTW":
        """Learn the encoders from sequence pairs.

        Parameters
        ----------
        pairs : list of (x, y) tuples, or a sequence x with ``Y`` its partner
            ``x`` (n_x, d_x) and ``y`` (n_y, d_y); ``d_x`` and ``d_y`` fixed across pairs.
        """
        if Y is not None:
            pairs = [(pairs, Y)]
        pairs = [(as_sequence(x, f"pairs[{k}][0]"), as_sequence(y, f"pairs[{k}][1]"))
                 for k, (x, y) in enumerate(pairs)]
        if not pairs:
            raise ValueError("pairs holds no sequence pairs")
        for name, side in (("x", 0), ("y", 1)):
            dims = {p[side].shape[1] for p in pairs}
            if len(dims) > 1:
                raise ValueError(f"every {name} sequence of pairs needs the same number of "
                                 f"features, got {sorted(dims)}")
        check_choice(self.init, "init", {"ctw", "uniform"})
        n_outer = check_int(self.n_outer, "n_outer", 1)
        if self.init == "ctw":
            paths = [CTW(radius=self.radius).align(x, y).path() for x, y in pairs]
        else:
            paths = [uniform_path(len(x), len(y)) for x, y in pairs]
        k = min(pairs[0][0].shape[1], pairs[0][1].shape[1]) if self.n_components is None \
            else check_int(self.n_components, "n_components", 1)
        self.model_ = DeepCCA(n_components=k, objective=self.objective,
                              reg=self.reg, x_dim=pairs[0][0].shape[1],
                              y_dim=pairs[0][1].shape[1], hidden=self.hidden,
                              max_epochs=self.epochs_per_step, batch_size=self.batch_size,
                              lr=self.lr, seed=self.seed, device=self.device)
        self.history_ = []
        for _ in range(n_outer):
            X = np.concatenate([x[p[:, 0]] for (x, _), p in zip(pairs, paths)])
            Yw = np.concatenate([y[p[:, 1]] for (_, y), p in zip(pairs, paths)])
            self.model_.fit(X, Yw)
            new_paths, objectives = [], []
            for x, y in pairs:
                fx, fy = self.model_.transform(x, y)
                path = dtw_path(fx, fy, radius=self.radius).path()
                new_paths.append(path)
                objectives.append(path_objective(fx, fy, path))
            self.history_.append(float(np.mean(objectives)))
            stable = all(np.array_equal(a, b) for a, b in zip(new_paths, paths))
            paths = new_paths
            if stable:
                break
        return self

    def align(self, x, y) -> Alignment:
        """DTW between the canonical variates of ``x`` and ``y``.

        Returns
        -------
        alignment : Alignment
            ``extras``: ``x_features`` (n_x, k), ``y_features`` (n_y, k), ``history``.
        """
        if not hasattr(self, "model_"):
            raise ValueError("this DCTW is not fitted yet; call fit(pairs) first")
        x = as_sequence(x, "x")
        y = as_sequence(y, "y")
        fx, fy = self.model_.transform(x, y)
        alignment = dtw_path(fx, fy, radius=self.radius)
        return Alignment(alignment.path(), cost=path_objective(fx, fy, alignment.path()),
                         shape=alignment.shape, monotonic=True,
                         extras={"x_features": fx, "y_features": fy,
                                 "history": list(self.history_)})
