"""Deep canonical time warping (Trigeorgis et al., CVPR 2016).

DCTW replaces CTW's linear projections by deep CCA encoders: it alternates

1. deep CCA steps (:class:`~mmalign.DeepCCA`, a few epochs each, continuing from the
   current weights) on the frames the current paths pair, over every training pair;
2. DTW between the canonical variates of each pair: new paths.

The start paths come from :class:`~mmalign.CTW` (``init="ctw"``) or the uniform
diagonal.  ``align(x, y)`` encodes both sequences with the trained model and runs
DTW on their canonical variates.

Multi-set DCTW (:meth:`DCTW.align_all`, :meth:`DCTW.fit_all`): N >= 2 sequences,
one encoder per view (feature sizes may differ), warped onto one common timeline
as in :class:`~mmalign.GCTW`.  It alternates

1. deep multi-set CCA steps (:class:`~mmalign.projection.DeepMCCA` on the MAXVAR
   loss :func:`~mmalign.projection.mcca_loss`) on the sequences resampled onto
   the common timeline by their current warps;
2. the common target: the mean of the canonical variates on the common timeline;
3. DTW of every sequence's canonical variates against the target: new warps.

The start warps come from :class:`~mmalign.GCTW` (``init="ctw"``) or uniform
stretching onto the common timeline, whose length is the longest sequence's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import torch

from ..aligner import Aligner
from ..nn.estimator import TrainParameter
from ..nn.train import TrainConfig
from ..alignment import Alignment
from ..utils.validation import (as_sequence, check_bool, check_choice, check_fitted, check_float,
                                check_int)
from ..warping import dtw_path
from .ctw import CTW, path_objective, uniform_path
from .deep_cca import OBJECTIVES, DeepCCA, DeepMCCA, _check_batch_size
from .gctw import GCTW, MultiAlignment


class DCTW(TrainParameter, Aligner):
    """Deep canonical time warping of sequence pairs, or of N >= 2 sequences.

    Two modalities: :meth:`fit` on pairs, then :meth:`align`.  N >= 2 sequences
    onto one common timeline: :meth:`align_all` (as :class:`~mmalign.GCTW`), or
    :meth:`fit_all` on groups and ``align_all(..., fit=False)``.

    Parameters
    ----------
    n_components : int or None
        Dimension of the shared space (encoder outputs); default the smaller
        (multi-set: the smallest) feature dimension, as :class:`~mmalign.CTW`.
    hidden : tuple of int
        Hidden layers of the default MLP encoders.
    objective, reg
        Deep CCA objective and ridge (see :func:`~mmalign.projection.cca_loss`);
        the multi-set methods always use the MAXVAR loss
        (:func:`~mmalign.projection.mcca_loss`) with ridge ``reg``.
    n_outer : int
        Alternations of deep CCA and DTW.
    epochs_per_step : int
        Deep CCA epochs per alternation.
    train : None, mapping or TrainConfig
        Training settings of the deep CCA steps (the ``train`` of their
        :class:`~mmalign.DeepCCA` / :class:`~mmalign.projection.DeepMCCA`;
        :class:`~mmalign.nn.train.TrainConfig` fields, ``set_params(train__lr=...)``).
        Defaults: ``batch_size=512`` (``>= 2``: each batch estimates
        covariances), ``lr=1e-3``, ``seed=0``, ``device="cpu"``. Each step
        trains ``epochs_per_step`` epochs (``train``'s ``max_epochs`` is not used).
    init : {"ctw", "uniform", "gctw"}
        Start paths: :class:`~mmalign.CTW` (multi-set: CTW of the longest
        sequence with each other one), the uniform diagonal, or (multi-set only)
        the warps of :class:`~mmalign.GCTW`.
    radius : int or None
        Sakoe–Chiba radius of the DTW steps.

    Attributes
    ----------
    model_ : DeepCCA
    history_ : list of float
        Mean objective (squared distance of the paired canonical variates per path
        step) after each alternation.
    multi_model_ : DeepMCCA
        Set by :meth:`fit_all` / :meth:`align_all`: one encoder per view.
    multi_history_ : list of float
        Set by :meth:`fit_all` / :meth:`align_all`: mean squared distance of the
        canonical variates on the common timeline to their mean, per common step,
        after each alternation.

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

    N >= 2 sequences onto one common timeline (multi-set DCTW):

    >>> z = np.c_[np.sin(6 * u), np.cos(4 * u)]
    >>> result = mmalign.DCTW(n_outer=2, epochs_per_step=5).align_all([x, y, z ** 3])
    >>> result.length, len(result.warps), result.pair(0, 2).shape
    (80, 3, (80, 80))
    """

    TRAIN_DEFAULTS = {"batch_size": 512, "lr": 1e-3, "seed": 0, "device": "cpu"}

    def __init__(self, n_components: int | None = None, hidden: tuple = (64, 64), objective: str = "trace",
                 reg: float = 1e-4, n_outer: int = 5, epochs_per_step: int = 30,
                 init: str = "ctw", radius: int | None = None, train: Any = None):
        self.n_components = n_components
        self.hidden = hidden
        self.objective = objective
        self.reg = reg
        self.n_outer = n_outer
        self.epochs_per_step = epochs_per_step
        self.init = init
        self.radius = radius
        self.train = train

    def fit(self, X, Y=None) -> "DCTW":
        """Learn the encoders from sequence pairs.

        Parameters
        ----------
        X : list of x sequences, one x sequence (array), or a list of (x, y) pairs
            ``x`` (n_x, d_x); ``d_x`` fixed across pairs. With ``Y`` None, ``X``
            holds the pairs.
        Y : list of y sequences (``Y[i]`` pairs with ``X[i]``), one y sequence, or None
            ``y`` (n_y, d_y); ``d_y`` fixed across pairs.

        Returns
        -------
        self : DCTW
            With ``model_`` and ``history_``.
        """
        self._validate_params()
        check_choice(self.init, "init", {"ctw", "uniform"})
        pairs = self._check_pairs(X, Y)
        n_outer = int(self.n_outer)
        if self.init == "ctw":
            paths = [CTW(radius=self.radius).align(x, y).path() for x, y in pairs]
        else:
            paths = [uniform_path(len(x), len(y)) for x, y in pairs]
        k = min(pairs[0][0].shape[1], pairs[0][1].shape[1]) if self.n_components is None \
            else int(self.n_components)
        self.model_ = DeepCCA(n_components=k, objective=self.objective,
                              reg=self.reg, x_dim=pairs[0][0].shape[1],
                              y_dim=pairs[0][1].shape[1], hidden=self.hidden,
                              train=self._deep_cca_training())
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

    def _deep_cca_training(self) -> dict | TrainConfig:
        """The ``train`` of the deep (M)CCA of each alternation: ``epochs_per_step`` epochs
        (continuing from the current weights), DCTW's batch size, lr, seed and device."""
        if isinstance(self.train, TrainConfig):  # checked by fit / align_all (_validate_params)
            return dataclasses.replace(self.train, max_epochs=int(self.epochs_per_step))
        # a mapping: the deep CCA classes merge it onto their own defaults
        return {**self.TRAIN_DEFAULTS, **(self.train or {}), "max_epochs": int(self.epochs_per_step)}

    def train_config(self) -> TrainConfig:
        if isinstance(self.train, Mapping) and "max_epochs" in self.train:
            raise ValueError("train.max_epochs: DCTW trains epochs_per_step epochs in each step; "
                             "set epochs_per_step and n_outer instead")
        config = super().train_config()
        _check_batch_size(config.batch_size, "train.batch_size")
        return config

    def _check_params(self) -> None:
        if self.n_components is not None:
            check_int(self.n_components, "n_components", 1)
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, (list, tuple)):
            raise ValueError(f"hidden must be a tuple of layer widths, got {self.hidden!r}")
        for width in self.hidden:
            check_int(width, "hidden", 1)
        check_choice(self.objective, "objective", OBJECTIVES)
        check_float(self.reg, "reg", 0.0)
        check_int(self.n_outer, "n_outer", 1)
        check_int(self.epochs_per_step, "epochs_per_step", 1)
        check_choice(self.init, "init", {"ctw", "uniform", "gctw"})
        if self.radius is not None:
            check_int(self.radius, "radius", 0)

    @staticmethod
    def _check_pairs(X, Y) -> list:
        """``[(x, y), ...]`` checked: from ``X`` and ``Y`` (collections, or one sequence each),
        or from ``X`` alone (a list of pairs)."""
        if Y is not None:
            if isinstance(Y, (str, bytes)):
                raise ValueError(f"Y must be the sequences paired with X, got {type(Y).__name__}")
            one = isinstance(X, (np.ndarray, torch.Tensor)) or isinstance(Y, (np.ndarray, torch.Tensor))
            if one:  # one pair: fit(x, y)
                return DCTW._check_pairs([(X, Y)], None)
            if not isinstance(X, (list, tuple)) or not isinstance(Y, (list, tuple)):
                raise ValueError(f"X and Y must be lists of sequences (or one sequence each), got "
                                 f"{type(X).__name__} and {type(Y).__name__}")
            if len(X) != len(Y):
                raise ValueError(f"X and Y must hold the same number of sequences, got {len(X)} and {len(Y)}")
            checked = [(as_sequence(x, f"X[{k}]"), as_sequence(y, f"Y[{k}]"))
                       for k, (x, y) in enumerate(zip(X, Y))]
        elif isinstance(X, (np.ndarray, torch.Tensor)) or not isinstance(X, (list, tuple)):
            hint = ("; to fit one pair, pass fit(x, y)"
                    if isinstance(X, (np.ndarray, torch.Tensor)) else "")
            raise ValueError(f"X must be a list of (x, y) pairs of sequences when Y is None, got "
                             f"{type(X).__name__}{hint}")
        else:
            checked = []
            for k, pair in enumerate(X):
                if (isinstance(pair, (np.ndarray, torch.Tensor)) or not isinstance(pair, (list, tuple))
                        or len(pair) != 2):
                    raise ValueError(f"X[{k}] must be an (x, y) pair of sequences (X holds the pairs "
                                     f"when Y is None), got {_describe(pair)}")
                checked.append((as_sequence(pair[0], f"X[{k}][0]"),
                                as_sequence(pair[1], f"X[{k}][1]")))
        if not checked:
            raise ValueError("X holds no sequence pairs")
        for name, side in (("x", 0), ("y", 1)):
            dims = {p[side].shape[1] for p in checked}
            if len(dims) > 1:
                raise ValueError(f"every {name} sequence of the pairs needs the same number of "
                                 f"features, got {sorted(dims)}")
        return checked

    def align(self, x, y) -> Alignment:
        """DTW between the canonical variates of ``x`` and ``y``.

        Returns
        -------
        alignment : Alignment
            ``extras``: ``x_features`` (n_x, k), ``y_features`` (n_y, k), ``history``.
        """
        check_fitted(self, "model_", "fit(pairs)")
        x = as_sequence(x, "x")
        y = as_sequence(y, "y")
        fx, fy = self.model_._transform(x, y, ("x", "y"))
        alignment = dtw_path(fx, fy, radius=self.radius)
        return Alignment(alignment.path(), cost=path_objective(fx, fy, alignment.path()),
                         shape=alignment.shape, monotonic=True,
                         extras={"x_features": fx, "y_features": fy,
                                 "history": list(self.history_)})

    # ------------------------------------------------------------- multi-set
    def fit_all(self, groups) -> "DCTW":
        """Learn one encoder per view from groups of N >= 2 sequences (multi-set DCTW).

        Parameters
        ----------
        groups : list of lists of sequences
            Each group holds N >= 2 sequences ``(n_j, d_j)`` that show the same
            content (one recording per view); every group has the same N, and
            view ``j`` the same ``d_j`` in every group.  Lengths may differ.

        Returns
        -------
        self : DCTW
            With ``multi_model_`` and ``multi_history_``.
        """
        if isinstance(groups, np.ndarray) or not isinstance(groups, (list, tuple)):
            raise ValueError(f"groups must be a list of lists of sequences, got "
                             f"{type(groups).__name__}")
        if not groups:
            raise ValueError("groups holds no groups of sequences")
        checked = [self._check_group(g, f"groups[{i}]") for i, g in enumerate(groups)]
        n_views = len(checked[0])
        for i, g in enumerate(checked):
            if len(g) != n_views:
                raise ValueError(f"groups[{i}] holds {len(g)} sequences, groups[0] holds "
                                 f"{n_views}: every group needs the same number of views")
        for j in range(n_views):
            dims = {g[j].shape[1] for g in checked}
            if len(dims) > 1:
                raise ValueError(f"sequence {j} of every group in groups needs the same number "
                                 f"of features, got {sorted(dims)}")
        self._fit_multi(checked)
        return self

    def align_all(self, sequences, *, fit: bool = True) -> MultiAlignment:
        """Warp N >= 2 sequences onto one common timeline (multi-set DCTW).

        Parameters
        ----------
        sequences : list of array-like [shape=(n_j, d_j)]
            The sequences; feature sizes may differ.
        fit : bool
            True (default): learn the encoders on ``sequences`` themselves
            (:meth:`fit_all` with one group, as :meth:`mmalign.GCTW.align_all`
            learns its projections) and return the final alternation's warps.
            False: keep the encoders of an earlier :meth:`fit_all` /
            :meth:`align_all` (same number of sequences, same feature sizes) and
            only warp: DTW of each sequence's canonical variates against the
            longest one's, then against their mean on the common timeline, while
            the objective decreases (at most ``max(n_outer, 10)`` rounds).

        Returns
        -------
        result : MultiAlignment
            ``warps[j]`` aligns the common timeline (side x, ``length`` steps, the
            longest sequence's length) with sequence ``j`` (side y);
            ``pair(a, b)`` the alignment of two sequences.  ``weights[j]``
            ``(k_j, n_components)`` and ``means[j]`` ``(k_j,)`` are the linear MCCA
            on view ``j``'s *encoder outputs* (not on its raw features, unlike
            GCTW); ``scores`` the MCCA eigenvalues; ``objective`` the per-alternation
            history.  ``multi_model_.transform(sequences)`` gives the canonical
            variates ``(n_j, n_components)``.
        """
        check_bool(fit, "fit")
        seqs = self._check_group(sequences, "sequences")
        if fit:
            return self._fit_multi([seqs])[0]
        if not hasattr(getattr(self, "multi_model_", None), "weights_"):
            raise ValueError("this DCTW has no multi-set encoders yet; call fit_all(groups) or "
                             "align_all(sequences) first, or pass fit=True")
        dims = tuple(s.shape[1] for s in seqs)
        fitted = tuple(self.multi_model_.n_features_)
        if len(dims) != len(fitted):
            raise ValueError(f"sequences holds {len(dims)} sequences, the encoders were fitted "
                             f"on {len(fitted)} views")
        for j, (d, e) in enumerate(zip(dims, fitted)):
            if d != e:
                raise ValueError(f"sequences[{j}] has {d} features, its encoder was fitted on {e}")
        projected = self.multi_model_._transform(seqs, "sequences")
        L = max(len(s) for s in seqs)
        longest = projected[int(np.argmax([len(s) for s in seqs]))]
        warps = [dtw_path(longest, p, radius=self.radius) for p in projected]
        warps = [Alignment(a.path(), shape=a.shape) for a in warps]
        history: list[float] = []
        for _ in range(max(check_int(self.n_outer, "n_outer", 1), 10)):
            new, objective = self._rewarp(projected, warps)
            if history and objective >= history[-1]:
                break  # no improvement: keep the previous warps
            history.append(objective)
            stable = all(np.array_equal(a.path(), b.path()) for a, b in zip(new, warps))
            warps = new
            if stable:
                break
        model = self.multi_model_
        return MultiAlignment(warps=warps, length=L, weights=list(model.weights_),
                              means=list(model.means_), scores=model.scores_, objective=history)

    @staticmethod
    def _check_group(group, name: str) -> list:
        if isinstance(group, np.ndarray) or not isinstance(group, (list, tuple)):
            raise ValueError(f"{name} must be a list of sequences, got {type(group).__name__}")
        seqs = [as_sequence(s, f"{name}[{j}]") for j, s in enumerate(group)]
        if len(seqs) < 2:
            raise ValueError(f"{name} must hold at least 2 sequences, got {len(seqs)}")
        for j, s in enumerate(seqs):
            if len(s) < 2 or np.ptp(s, axis=0).max() == 0:
                raise ValueError(f"{name}[{j}] is constant or too short to correlate")
        return seqs

    def _rewarp(self, projected, warps):
        """New warps: DTW of each projected sequence against the mean on the common timeline."""
        target = np.mean([w.warp(p, source="y") for w, p in zip(warps, projected)], axis=0)
        new = [dtw_path(target, p, radius=self.radius) for p in projected]
        new = [Alignment(a.path(), shape=a.shape) for a in new]
        on_common = [w.warp(p, source="y") for w, p in zip(new, projected)]
        centre = np.mean(on_common, axis=0)
        objective = float(np.mean([((c - centre) ** 2).sum(axis=1).mean() for c in on_common]))
        return new, objective

    def _fit_multi(self, groups: list) -> list:
        """The multi-set alternation over ``groups``; one MultiAlignment per group."""
        self._validate_params()
        n_outer = int(self.n_outer)
        dims = [s.shape[1] for s in groups[0]]
        k = min(dims) if self.n_components is None else int(self.n_components)
        warps = []
        for seqs in groups:
            if self.init == "ctw":
                warps.append(self._star_ctw(seqs))
            elif self.init == "gctw":
                warps.append(list(GCTW(radius=self.radius).align_all(seqs).warps))
            else:
                L = max(len(s) for s in seqs)
                warps.append([Alignment(uniform_path(L, len(s)), shape=(L, len(s)))
                              for s in seqs])
        model = DeepMCCA(n_components=k, reg=self.reg, dims=dims, hidden=self.hidden,
                         train=self._deep_cca_training())
        history = []
        for _ in range(n_outer):
            views = [np.concatenate([w[j].warp(seqs[j], source="y")
                                     for seqs, w in zip(groups, warps)])
                     for j in range(len(dims))]
            model.fit(views)
            new_warps, objectives = [], []
            for seqs, w in zip(groups, warps):
                new, objective = self._rewarp(model.transform(seqs), w)
                new_warps.append(new)
                objectives.append(objective)
            history.append(float(np.mean(objectives)))
            stable = all(np.array_equal(a.path(), b.path())
                         for old, new in zip(warps, new_warps) for a, b in zip(old, new))
            warps = new_warps
            if stable:
                break
        self.multi_model_ = model
        self.multi_history_ = history
        return [MultiAlignment(warps=w, length=w[0].n_x, weights=list(model.weights_),
                               means=list(model.means_), scores=model.scores_,
                               objective=list(history)) for w in warps]

    def _star_ctw(self, seqs) -> list:
        """Start warps: CTW of the longest sequence (the common timeline) with each other."""
        ref = int(np.argmax([len(s) for s in seqs]))
        L = len(seqs[ref])
        warps = []
        for j, s in enumerate(seqs):
            path = (np.repeat(np.arange(L)[:, None], 2, axis=1) if j == ref
                    else CTW(radius=self.radius).align(seqs[ref], s).path())
            warps.append(Alignment(path, shape=(L, len(s))))
        return warps


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__} of shape {tuple(shape)}" if shape is not None \
        else type(value).__name__
