"""Warped multimodal sequences with exact ground truth (the CTW / GCTW benchmark).

Canonical time warping (Zhou & De la Torre, NIPS 2009) and generalized time
warping (CVPR 2012) are evaluated on synthetic data built like this: one latent
trajectory (a 2-D spiral, a random curve), warped in time by a random monotone
warp per sequence, and mapped into each modality by its own random map into its
own number of features, with noise and unrelated distractor features.  Because
every frame of every sequence is a known position on the latent trajectory, the
true correspondence between any two sequences is known to a fraction of a frame.

Conventions
-----------
*Latent positions* are fractional indices into the latent trajectory, in
``[0, latent_length - 1]``.  A *warp* is one latent position per frame of a
sequence, strictly increasing from ``0`` to ``latent_length - 1``: every
sequence covers the whole trajectory, so the alignments start at ``(0, 0)`` and
end at ``(n_a - 1, n_b - 1)``.  Between latent samples the trajectory is linearly
interpolated, and so are the inverse warps.

A *reference* between sequences ``a`` and ``b`` is an ``(n_a, 2)`` array of pairs
``(i, j)``: frame ``i`` of ``a`` and the fractional frame ``j`` of ``b`` at the same
latent position.  It is what :func:`mmalign.metrics.mean_absolute_deviation`
takes, with ``a`` on the alignment's x side and ``b`` on its y side.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..utils.validation import check_bool, check_choice, check_float, check_int

__all__ = [
    "LatentMap",
    "WarpedPair",
    "WarpedSet",
    "basic_motions_warped",
    "random_monotone_warp",
    "warped_multimodal",
]

_LATENTS = ("spiral", "curve", "sine")
_MAPS = ("linear", "nonlinear")
# Bound on |log speed| / strength: tanh soft-clipping keeps speeds within
# exp(+-3 * strength) of the mean speed, so warps stay strictly increasing in float64.
_LOG_SPEED_BOUND = 3.0
_MAX_STRENGTH = 3.0
_HIDDEN_UNITS = 16


# --------------------------------------------------------------------------- validation


def _check_ints(value, name: str, count: int, minimum: int) -> tuple[int, ...]:
    """An int broadcast to ``count`` entries, or a sequence of exactly ``count`` ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value,) * count
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer or a sequence of integers, got {value!r}") from None
    if len(items) != count:
        raise ValueError(f"{name} must have n_sequences = {count} entries, got {len(items)}")
    return tuple(check_int(v, f"{name}[{k}]", minimum) for k, v in enumerate(items))


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator or a non-negative integer seed, got {rng!r}")


# --------------------------------------------------------------------------- warps


def random_monotone_warp(
    n_out: int,
    n_latent: int,
    *,
    rng: np.random.Generator | int,
    smoothness: float = 0.15,
    strength: float = 0.5,
) -> np.ndarray:
    """A random, smooth, strictly increasing warp from ``n_out`` frames onto a latent axis.

    The warp's speed (latent samples per frame) is ``exp(strength * g)``, where
    ``g`` is smoothed Gaussian noise standardised to zero mean and unit variance
    and soft-clipped to ``[-3, 3]``; the cumulative speed is then scaled to end
    at ``n_latent - 1``.  ``strength`` is thus the standard deviation of the log
    speed: with ``0.5`` the speed mostly varies between 0.37 and 2.7 times its
    mean.  For a given ``rng`` state, ``strength`` scales one and the same
    profile, and ``strength=0`` gives the linear warp exactly.

    Parameters
    ----------
    n_out : int >= 2
        Number of frames of the warped sequence.
    n_latent : int >= 2
        Number of samples of the latent axis.
    rng : np.random.Generator or int
        Random generator (advanced in place) or a seed.
    smoothness : float > 0
        Correlation length of the log speed, as a fraction of ``n_out`` (the
        standard deviation of the Gaussian smoothing kernel).  Small values
        give jittery tempo changes, large values slow drifts.
    strength : float in [0, 3]
        Standard deviation of the log speed; ``0`` is the linear warp.

    Returns
    -------
    warp : np.ndarray [float64], shape (n_out,)
        Latent position of each frame, strictly increasing, ``warp[0] == 0`` and
        ``warp[-1] == n_latent - 1``.

    Raises
    ------
    ValueError
        An argument out of range; the message names it.

    Examples
    --------
    >>> import numpy as np
    >>> w = random_monotone_warp(5, 9, rng=0, strength=0.0)
    >>> w.tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    >>> w = random_monotone_warp(120, 200, rng=np.random.default_rng(1))
    >>> w.shape, float(w[0]), float(w[-1]), bool(np.all(np.diff(w) > 0))
    ((120,), 0.0, 199.0, True)
    """
    n_out = check_int(n_out, "n_out", 2)
    n_latent = check_int(n_latent, "n_latent", 2)
    rng = _as_rng(rng)
    smoothness = check_float(smoothness, "smoothness", 0.0, low_open=True)
    strength = check_float(strength, "strength", 0.0, _MAX_STRENGTH)

    n_steps = n_out - 1
    # Always drawn, so that strength only rescales the profile of a given rng state.
    g = gaussian_filter1d(rng.standard_normal(n_steps), sigma=smoothness * n_out, mode="reflect")
    g = g - g.mean()
    std = g.std()
    g = g / std if std > 1e-12 * (1 + np.abs(g).max()) else np.zeros_like(g)
    g = _LOG_SPEED_BOUND * np.tanh(g / _LOG_SPEED_BOUND)
    if strength == 0.0:
        return np.linspace(0.0, n_latent - 1.0, n_out)
    speed = np.exp(strength * g)
    warp = np.concatenate([[0.0], np.cumsum(speed)])
    warp *= (n_latent - 1) / warp[-1]
    warp[-1] = n_latent - 1.0
    return warp


def _inverse_warp(positions: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """Fractional frames of a sequence at latent ``positions`` (piecewise-linear inverse)."""
    return np.interp(positions, warp, np.arange(len(warp), dtype=np.float64))


def _reference(warp_a: np.ndarray, warp_b: np.ndarray) -> np.ndarray:
    frames_a = np.arange(len(warp_a), dtype=np.float64)
    return np.column_stack([frames_a, _inverse_warp(warp_a, warp_b)])


def _true_path(warp_a: np.ndarray, warp_b: np.ndarray) -> np.ndarray:
    # The reference curve, parametrised by latent position, through every
    # integer frame of a and every integer frame of b.  Between consecutive
    # points neither coordinate crosses an integer, so after rounding
    # consecutive cells differ by at most one in each coordinate.
    s = np.union1d(warp_a, warp_b)
    curve = np.column_stack([_inverse_warp(s, warp_a), _inverse_warp(s, warp_b)])
    cells = np.floor(curve + 0.5).astype(np.int64)
    cells[0] = 0
    cells[-1] = (len(warp_a) - 1, len(warp_b) - 1)
    cells = np.maximum.accumulate(cells, axis=0)  # guards against round-off at knots
    keep = np.concatenate([[True], np.any(np.diff(cells, axis=0) != 0, axis=1)])
    return cells[keep]


# --------------------------------------------------------------------------- latent + maps


def _latent_trajectory(kind: str, length: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    t = np.linspace(0.0, 1.0, length)
    if kind == "spiral":
        # Two turns with a growing radius; further coordinate pairs turn faster,
        # an odd last coordinate (dim >= 3) is the spiral's axis (a cone helix).
        radius, theta = 0.25 + 0.75 * t, 4 * np.pi * t
        cols = []
        for k in range(dim // 2):
            cols += [radius * np.cos((k + 1) * theta), radius * np.sin((k + 1) * theta)]
        if dim % 2:
            cols.append(radius * np.cos(theta) if dim == 1 else 2 * t - 1)
        z = np.column_stack(cols)
    elif kind == "sine":
        d = np.arange(dim)
        z = np.sin(2 * np.pi * (2 + d) * t[:, None] + d * np.pi / (2 * dim))
    else:  # "curve": a smoothed Gaussian random walk, one per coordinate
        steps = rng.standard_normal((length, dim))
        z = gaussian_filter1d(np.cumsum(steps, axis=0), sigma=max(1.0, length / 25), axis=0,
                              mode="nearest")
    z = z - z.mean(axis=0)
    # One global scale (not per coordinate) keeps the trajectory's shape.
    rms = np.sqrt(np.mean(z**2))
    return z / rms if rms > 0 else z


def _interp_rows(positions: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rows of ``table`` (n, d) at fractional row ``positions``, linearly interpolated."""
    grid = np.arange(table.shape[0], dtype=np.float64)
    return np.column_stack([np.interp(positions, grid, table[:, c]) for c in range(table.shape[1])])


@dataclass(frozen=True, eq=False)
class LatentMap:
    """A random map from the latent space into one modality's features.

    ``"linear"``: ``f(z) = z @ weight``.
    ``"nonlinear"``: a two-layer tanh network,
    ``f(z) = tanh(z @ weight + bias) @ weight_out + bias_out``.
    In both cases the scales are set so that every output feature has zero
    mean and unit standard deviation over the latent trajectory it was drawn for.

    Attributes
    ----------
    kind : {"linear", "nonlinear"}
    weight : np.ndarray, shape (latent_dim, n_features) or (latent_dim, n_hidden)
    bias : np.ndarray, shape (n_hidden,), or None for "linear"
    weight_out : np.ndarray, shape (n_hidden, n_features), or None for "linear"
    bias_out : np.ndarray, shape (n_features,), or None for "linear"
    """

    kind: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    weight_out: np.ndarray | None = None
    bias_out: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        """Number of output features."""
        return (self.weight if self.kind == "linear" else self.weight_out).shape[1]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Map latent points ``z`` (n, latent_dim) to features (n, n_features)."""
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "linear":
            return z @ self.weight
        return np.tanh(z @ self.weight + self.bias) @ self.weight_out + self.bias_out


def _random_map(kind: str, latent: np.ndarray, n_features: int, rng: np.random.Generator) -> LatentMap:
    latent_dim = latent.shape[1]
    if kind == "linear":
        weight = rng.standard_normal((latent_dim, n_features))
        weight /= _safe_std(latent @ weight)
        return LatentMap("linear", weight)
    # Pre-activations of standard deviation about 1.5: tanh well into its curved range.
    weight = rng.standard_normal((latent_dim, _HIDDEN_UNITS)) * 1.5 / np.sqrt(latent_dim)
    bias = 0.5 * rng.standard_normal(_HIDDEN_UNITS)
    hidden = np.tanh(latent @ weight + bias)
    weight_out = rng.standard_normal((_HIDDEN_UNITS, n_features))
    out = hidden @ weight_out
    scale = _safe_std(out)
    weight_out /= scale
    bias_out = -out.mean(axis=0) / scale
    return LatentMap("nonlinear", weight, bias, weight_out, bias_out)


def _safe_std(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0)
    return np.where(std > 0, std, 1.0)


def _smooth_noise(n: int, n_features: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise smoothed over about n / 40 frames."""
    noise = gaussian_filter1d(rng.standard_normal((n, n_features)), sigma=max(1.0, n / 40), axis=0)
    noise -= noise.mean(axis=0)
    return noise / _safe_std(noise)


# --------------------------------------------------------------------------- the synthetic set


@dataclass(frozen=True, eq=False)
class WarpedSet:
    """Sequences of one latent trajectory, each warped and mapped differently.

    Attributes
    ----------
    sequences : list of np.ndarray [float64], shape (lengths[k], dims[k] + distractors)
        The observed sequences.  The first ``dims[k]`` features of sequence
        ``k`` are ``maps[k](latent_at(warps[k]))`` plus noise; the last
        ``distractors`` features are smooth noise unrelated to the latent.
    warps : list of np.ndarray [float64], shape (lengths[k],)
        Latent position of every frame of sequence ``k``, strictly increasing
        from ``0`` to ``latent_length - 1``.
    latent : np.ndarray [float64], shape (latent_length, latent_dim)
        The latent trajectory ``Z`` (centred, unit mean-square coordinate).
    maps : list of LatentMap
        The map of each sequence, latent_dim -> dims[k].
    distractors : int
        Number of distractor features appended to every sequence.
    """

    sequences: list = field(repr=False)
    warps: list = field(repr=False)
    latent: np.ndarray = field(repr=False)
    maps: list = field(repr=False)
    distractors: int = 0

    @property
    def lengths(self) -> tuple[int, ...]:
        """Number of frames of each sequence."""
        return tuple(len(s) for s in self.sequences)

    def _index(self, k, name: str) -> int:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
            raise ValueError(f"{name} must be an integer sequence index, got {k!r}")
        if not -len(self.sequences) <= k < len(self.sequences):
            raise ValueError(f"{name} must index one of the {len(self.sequences)} sequences, got {k}")
        return int(k) % len(self.sequences)

    def latent_at(self, positions) -> np.ndarray:
        """The latent trajectory at fractional latent ``positions`` (linear interpolation).

        Parameters
        ----------
        positions : array-like, shape (n,)
            Latent positions in ``[0, latent_length - 1]`` (clamped outside).

        Returns
        -------
        z : np.ndarray [float64], shape (n, latent_dim)
        """
        return _interp_rows(np.asarray(positions, dtype=np.float64), self.latent)

    def reference(self, a: int, b: int) -> np.ndarray:
        """Ground truth between sequence ``a`` (x side) and sequence ``b`` (y side).

        Parameters
        ----------
        a, b : int
            Sequence indices.

        Returns
        -------
        reference : np.ndarray [float64], shape (lengths[a], 2)
            Rows ``(i, j)``: every frame ``i`` of ``a`` and the fractional frame
            ``j`` of ``b`` at the same latent position (``warps[b]`` inverted by
            linear interpolation).  ``j`` increases strictly, from 0 to
            ``lengths[b] - 1``.

        Examples
        --------
        >>> ws = warped_multimodal(lengths=(50, 70), dims=(3, 4), seed=0)
        >>> ref = ws.reference(0, 1)
        >>> ref.shape, ref[0].tolist(), ref[-1].tolist()
        ((50, 2), [0.0, 0.0], [49.0, 69.0])
        """
        a, b = self._index(a, "a"), self._index(b, "b")
        return _reference(self.warps[a], self.warps[b])

    def true_path(self, a: int, b: int) -> np.ndarray:
        """The warping path closest to :meth:`reference`.

        The reference curve is followed through every integer frame of ``a``
        and of ``b`` and rounded to the nearest cell, so each path cell lies
        within half a frame of the curve along one axis.

        Returns
        -------
        path : np.ndarray [int64], shape (K, 2)
            Monotone and continuous (steps (1, 0), (0, 1), (1, 1)), from
            ``(0, 0)`` to ``(lengths[a] - 1, lengths[b] - 1)``.

        Examples
        --------
        >>> ws = warped_multimodal(lengths=(50, 70), dims=(3, 4), seed=0)
        >>> p = ws.true_path(0, 1)
        >>> p[0].tolist(), p[-1].tolist()
        ([0, 0], [49, 69])
        """
        a, b = self._index(a, "a"), self._index(b, "b")
        return _true_path(self.warps[a], self.warps[b])


def warped_multimodal(
    n_sequences: int = 2,
    *,
    lengths: int | Sequence[int] | None = None,
    dims: int | Sequence[int] | None = None,
    latent: str = "spiral",
    latent_length: int = 200,
    latent_dim: int = 2,
    map: str = "linear",
    noise: float = 0.05,
    distractors: int = 0,
    warp_strength: float = 0.5,
    shared_map: bool = False,
    seed: int = 0,
) -> WarpedSet:
    """Warped views of one latent trajectory in several modalities, with ground truth.

    The CTW / GCTW synthetic benchmark: one latent trajectory ``Z``; for each
    sequence ``k`` a random monotone warp ``w_k`` (:func:`random_monotone_warp`),
    the latent sampled at ``w_k`` by linear interpolation, a random map ``f_k``
    into ``dims[k]`` features, white Gaussian noise, and ``distractors`` extra
    features of smooth random noise::

        X_k = [ f_k(Z(w_k)) + noise * E_k ,  D_k + noise * E'_k ]

    Latent trajectories (``latent_dim`` coordinates, centred, with unit
    mean-square coordinate):

    - ``"spiral"``: two turns of a planar spiral with growing radius; further
      coordinate pairs turn 2x, 3x, ... faster; an odd last coordinate
      (``latent_dim >= 3``) is the spiral's axis; for ``latent_dim = 1`` the
      first coordinate alone.
    - ``"sine"``: coordinate ``d`` is ``sin(2 pi (2 + d) t + d pi / (2 latent_dim))``.
    - ``"curve"``: a smoothed Gaussian random walk (drawn from ``seed``).

    Maps (:class:`LatentMap`): ``"linear"`` is a random Gaussian matrix
    ``(latent_dim, dims[k])``; ``"nonlinear"`` a random two-layer tanh network
    with 16 hidden units.  Each output feature is scaled to zero mean and unit
    standard deviation over ``Z``, so ``noise`` is a noise-to-signal amplitude
    ratio.  Distractors have unit standard deviation too.

    Parameters
    ----------
    n_sequences : int >= 1
        Number of sequences.
    lengths : int, sequence of int >= 2, or None
        Frames of each sequence (an int is used for all).  ``None``: evenly
        spread from ``0.9 * latent_length`` to ``1.1 * latent_length``
        (``(180, 220)`` with the defaults).
    dims : int, sequence of int >= 1, or None
        Informative features of each sequence (an int is used for all).
        ``None``: ``latent_dim + 1 + k`` for sequence ``k`` (``(3, 4)`` with
        the defaults).
    latent : {"spiral", "curve", "sine"}
        Shape of the latent trajectory.
    latent_length : int >= 2
        Samples of the latent trajectory.
    latent_dim : int >= 1
        Dimension of the latent trajectory.
    map : {"linear", "nonlinear"}
        Kind of the random maps.
    noise : float >= 0
        Standard deviation of the white Gaussian noise added to every feature.
    distractors : int >= 0
        Smooth-noise features appended to every sequence (the last columns).
    warp_strength : float in [0, 3]
        ``strength`` of the warps; ``0`` samples the latent uniformly.
    shared_map : bool
        Use the first sequence's map for all (``dims`` must then be equal):
        the sequences differ only by warp and noise, as in plain DTW.
    seed : int >= 0
        Seed; the result is deterministic for a seed.

    Returns
    -------
    warped : WarpedSet
        ``sequences[k]`` has shape ``(lengths[k], dims[k] + distractors)``.

    Raises
    ------
    ValueError
        An argument out of range; the message names it.

    Examples
    --------
    >>> import mmalign
    >>> ws = warped_multimodal(lengths=(150, 190), dims=(3, 5), noise=0.1, distractors=1, seed=2)
    >>> [s.shape for s in ws.sequences]
    [(150, 4), (190, 6)]
    >>> ref = ws.reference(0, 1)       # (frame of sequence 0, fractional frame of sequence 1)
    >>> p = ws.true_path(0, 1)         # (K, 2) integer warping path
    >>> float(mmalign.metrics.mean_absolute_deviation(p, ref)) < 1
    True
    """
    n_sequences = check_int(n_sequences, "n_sequences", 1)
    latent_length = check_int(latent_length, "latent_length", 2)
    latent_dim = check_int(latent_dim, "latent_dim", 1)
    if lengths is None:
        spread = np.linspace(0.9, 1.1, n_sequences) if n_sequences > 1 else np.ones(1)
        lengths = tuple(max(2, int(round(latent_length * f))) for f in spread)
    lengths = _check_ints(lengths, "lengths", n_sequences, 2)
    if dims is None:
        dims = tuple(latent_dim + 1 + k for k in range(n_sequences))
    dims = _check_ints(dims, "dims", n_sequences, 1)
    latent = check_choice(latent, "latent", _LATENTS)
    map = check_choice(map, "map", _MAPS)
    noise = check_float(noise, "noise", 0.0)
    distractors = check_int(distractors, "distractors", 0)
    warp_strength = check_float(warp_strength, "warp_strength", 0.0, _MAX_STRENGTH)
    check_bool(shared_map, "shared_map")
    if shared_map and len(set(dims)) > 1:
        raise ValueError(f"shared_map=True needs equal dims, got {dims}")
    seed = check_int(seed, "seed", 0)

    rng = np.random.default_rng(seed)
    z = _latent_trajectory(latent, latent_length, latent_dim, rng)
    sequences, warps, maps = [], [], []
    for k in range(n_sequences):
        warp = random_monotone_warp(lengths[k], latent_length, rng=rng, strength=warp_strength)
        f = maps[0] if shared_map and k > 0 else _random_map(map, z, dims[k], rng)
        clean = f(_interp_rows(warp, z))
        if distractors:
            clean = np.hstack([clean, _smooth_noise(lengths[k], distractors, rng)])
        x = clean + noise * rng.standard_normal(clean.shape)
        sequences.append(x)
        warps.append(warp)
        maps.append(f)
    return WarpedSet(sequences=sequences, warps=warps, latent=z, maps=maps, distractors=distractors)


# --------------------------------------------------------------------------- BasicMotions


@dataclass(frozen=True, eq=False)
class WarpedPair:
    """Accelerometer and warped gyroscope of one BasicMotions recording.

    Attributes
    ----------
    x : np.ndarray [float64], shape (n_x, 3)
        Accelerometer (channels 0-2), on the recording's own time axis.
    y : np.ndarray [float64], shape (n_y, 3)
        Gyroscope (channels 3-5) of the same recording, sampled at ``warp``.
    warp : np.ndarray [float64], shape (n_y,)
        Position of every frame of ``y`` in frames of ``x``, strictly
        increasing from ``0`` to ``n_x - 1``.
    label : str
        Activity of the recording (``"standing"``, ``"running"``, ...).
    split : str
    index : int
    resample : int
        Upsampling factor applied to the recording before warping.
    """

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    warp: np.ndarray = field(repr=False)
    label: str
    split: str
    index: int
    resample: int

    def reference(self) -> np.ndarray:
        """Ground truth: ``(n_x, 2)`` rows ``(i, j)``, frame ``i`` of ``x`` and the
        fractional frame ``j`` of ``y`` recorded at the same instant."""
        return _reference(np.arange(len(self.x), dtype=np.float64), self.warp)

    def true_path(self) -> np.ndarray:
        """The ``(K, 2)`` warping path closest to :meth:`reference` (see
        :meth:`WarpedSet.true_path`)."""
        return _true_path(np.arange(len(self.x), dtype=np.float64), self.warp)


@functools.lru_cache(maxsize=2)
def _basic_motions(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from aeon.datasets import load_basic_motions
    except ImportError as err:  # aeon is a test / benchmark dependency only
        raise ImportError(
            "basic_motions_warped needs aeon (pip install aeon); BasicMotions ships inside its wheel"
        ) from err
    X, y = load_basic_motions(split=split)
    X = np.asarray(X, dtype=np.float64)
    X.setflags(write=False)
    return X, np.asarray(y)


def basic_motions_warped(
    *,
    split: str = "train",
    index: int = 0,
    warp_strength: float = 0.5,
    length: int | None = None,
    resample: int = 1,
    seed: int = 0,
) -> WarpedPair:
    """Two sensors of one real recording, one of them warped by a known warp.

    BasicMotions (UEA archive, bundled with aeon: nothing is downloaded) holds
    10 s smart-watch recordings at 10 Hz, ``(6, 100)`` each: accelerometer in
    channels 0-2, gyroscope in 3-5.  ``x`` is the accelerometer as recorded;
    ``y`` is the gyroscope of the same recording resampled at a random
    monotone warp (:func:`random_monotone_warp`, linear interpolation), so the
    true correspondence between the two modalities is known exactly.

    ``resample=r`` first upsamples the whole recording by linear interpolation
    onto ``(100 - 1) * r + 1`` frames (more frames, no new information), for
    methods that need longer sequences than 100 frames.

    Parameters
    ----------
    split : {"train", "test"}
        Which half of BasicMotions (40 recordings each).
    index : int
        Recording within the split, ``0 <= index < 40``.
    warp_strength : float in [0, 3]
        ``strength`` of the warp; ``0`` is a linear resampling.
    length : int >= 2 or None
        Frames of ``y``.  ``None``: drawn uniformly between ``0.8 * n_x`` and
        ``1.3 * n_x`` (80 to 130 frames without resampling).
    resample : int >= 1
        Upsampling factor of the recording.
    seed : int >= 0
        Seed of the warp (and of the drawn length).

    Returns
    -------
    pair : WarpedPair
        ``x`` of shape ``(n_x, 3)`` with ``n_x = 99 * resample + 1``, ``y`` of
        shape ``(length, 3)``, the warp and the reference.

    Raises
    ------
    ValueError
        An argument out of range; the message names it.
    ImportError
        aeon is not installed.

    Examples
    --------
    >>> pair = basic_motions_warped(index=3, length=120, seed=1)
    >>> pair.x.shape, pair.y.shape, pair.reference().shape
    ((100, 3), (120, 3), (100, 2))
    """
    split = check_choice(split.lower() if isinstance(split, str) else split, "split", ("train", "test"))
    warp_strength = check_float(warp_strength, "warp_strength", 0.0, _MAX_STRENGTH)
    resample = check_int(resample, "resample", 1)
    seed = check_int(seed, "seed", 0)
    if length is not None:
        length = check_int(length, "length", 2)
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise ValueError(f"index must be an integer, got {index!r}")
    X, labels = _basic_motions(split)
    if not 0 <= index < len(X):
        raise ValueError(f"index must lie in [0, {len(X)}) for split={split!r}, got {index}")

    recording = X[int(index)].T  # (100, 6)
    n_x = (recording.shape[0] - 1) * resample + 1
    recording = _interp_rows(np.arange(n_x) / resample, recording)
    rng = np.random.default_rng(seed)
    if length is None:
        length = int(rng.integers(int(np.ceil(0.8 * n_x)), int(np.floor(1.3 * n_x)) + 1))
    warp = random_monotone_warp(length, n_x, rng=rng, strength=warp_strength)
    return WarpedPair(
        x=recording[:, :3].copy(),
        y=_interp_rows(warp, recording[:, 3:]),
        warp=warp,
        label=str(labels[int(index)]),
        split=split,
        index=int(index),
        resample=resample,
    )
