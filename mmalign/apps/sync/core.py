"""Synchronise two recordings of the same music or speech.

:func:`synchronize` takes two signals in memory; :func:`synchronize_files`
takes two files and streams them (features chunk by chunk, the preview read
sequentially), so two recordings of an hour each fit in a few hundred MB.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ...features.audio import MIN_AUDIO_SECONDS, check_audio_file
from ...utils.files import atomic_write, check_output_file
from ._stream import file_blocks
from .features import FEATURES, feature_hop, stream_features, sync_features

if TYPE_CHECKING:   # imported where used: the parser of `mmalign sync` reads METHODS without scipy
    from ...alignment import Alignment

__all__ = ["synchronize", "synchronize_files", "align_features", "check_outputs", "SyncResult", "METHODS",
           "AUTO_EXACT_CELLS", "MIN_SECONDS", "OUTPUT_NAMES"]

METHODS = ("auto", "dtw", "multiscale")
# method="auto" runs exact DTW up to this many cells (one byte each), multiscale above.
AUTO_EXACT_CELLS = 40_000_000
MIN_SECONDS = MIN_AUDIO_SECONDS     # shortest recording, seconds (the one limit of every audio command)
# The files synchronize_files writes into its folder.
OUTPUT_NAMES = {"path": "path.csv", "plot": "alignment.png", "preview": "preview.wav"}


def synchronize(audio_a: np.ndarray, audio_b: np.ndarray, *, sr: int, features: str = "chroma+dlnco",
                feature_rate: float = 50.0, method: str = "auto", radius: int | None = None,
                multiscale_radius: int = 16, metric: str = "euclidean", progress: bool = False) -> Alignment:
    """Align two recordings of the same content (two performances, two takes).

    Both signals are turned into frame features (:mod:`mmalign.apps.sync.features`)
    and aligned with DTW (Euclidean local cost by default, steps
    ``(1, 1), (1, 0), (0, 1)`` with equal weights, both ends anchored: the
    classic synchronisation set-up of Müller's *Fundamentals of Music
    Processing* and ``librosa.sequence.dtw``).

    Parameters
    ----------
    audio_a, audio_b : np.ndarray, shape=(n_samples,), floating
        Mono recordings A and B at the same rate.
    sr : int > 0
        Sampling rate of both, Hz.
    features : {"chroma+dlnco", "chroma", "mfcc", "onset", "chroma+onset"}
        Frame features: ``"chroma+dlnco"`` (harmony and note onsets per pitch
        class, the default) for music, also across instruments (piano
        against strings or organ); ``"chroma"`` (harmony alone), ``"mfcc"``
        (timbre) for speech, ``"onset"`` for percussive material,
        ``"chroma+onset"`` (chroma and band-wise spectral flux).
    feature_rate : float > 0
        Wanted frames per second; the exact rate is
        ``sr / feature_hop(sr, feature_rate, features)`` (49.2 Hz for chroma
        at 22050 Hz) and is stored in ``alignment.frame_rate``.
    method : {"auto", "dtw", "multiscale"}
        ``"dtw"``: exact DTW, one byte per cell of the ``n_a x n_b`` grid
        (within ``radius``).  ``"multiscale"``: coarse-to-fine DTW
        (:func:`mmalign.dtw_path` with ``method="multiscale"``), memory and
        time linear in ``n_a + n_b``.  ``"auto"``: exact up to
        :data:`AUTO_EXACT_CELLS` cells (40 M: about 2 min against 2 min at
        50 Hz), multiscale above.
    radius : int >= 0 or None
        Sakoe-Chiba band in frames (widened by ``|n_a - n_b|``); ``None``
        lets the path go anywhere.
    multiscale_radius : int >= 1
        Half-width in frames of the band each multiscale level refines.
    metric : {"euclidean", "sqeuclidean", "cosine", "cityblock"}
        Local cost between frames.  Euclidean was as accurate as squared
        Euclidean on music and about 10 % more accurate on speech in
        ``recipes/audio_sync.py`` tuning runs (seeds not used in its table).
    progress : bool
        Progress bars for the feature extraction.

    Returns
    -------
    alignment : mmalign.Alignment
        Side x is A, side y is B; ``path()`` is ``(K, 2)`` frame pairs,
        ``times()`` the same in seconds, ``frame_rate`` the feature rate.
        ``extras`` holds ``features``, ``hop_length``, ``sr``, ``method``
        (the one used) and ``seconds`` (time per stage).

    Raises
    ------
    ValueError
        Bad signals (wrong shape, empty, shorter than 0.5 s, NaN), unknown
        ``features`` or ``method`` (the message names the argument).

    Examples
    --------
    >>> from mmalign.datasets import synthesize_performances
    >>> pair = synthesize_performances(8, seed=0)
    >>> al = synchronize(pair.audio_a, pair.audio_b, sr=pair.sr)
    >>> t = al.times()                      # (K, 2) seconds in A, seconds in B
    >>> bool(np.all(np.diff(t, axis=0) >= 0)), al.extras["method"]
    (True, 'dtw')
    """
    _check_options(features, method)
    hop = feature_hop(sr, feature_rate, features)        # validates sr and feature_rate
    for name, y in (("audio_a", audio_a), ("audio_b", audio_b)):
        arr = np.asarray(y)
        if arr.ndim == 1 and len(arr) < MIN_SECONDS * sr:
            raise ValueError(f"{name} lasts {len(arr) / sr:.3f} s; synchronisation needs at least "
                             f"{MIN_SECONDS} s")
    seconds = {}
    start = time.perf_counter()
    fa = sync_features(audio_a, sr, features=features, hop_length=hop, progress=progress)
    fb = sync_features(audio_b, sr, features=features, hop_length=hop, progress=progress)
    seconds["features"] = time.perf_counter() - start
    return _align_features(fa, fb, sr=sr, hop=hop, features=features, method=method, radius=radius,
                           multiscale_radius=multiscale_radius, metric=metric, seconds=seconds)


@dataclass
class SyncResult:
    """What :func:`synchronize_files` found and where it wrote it.

    Attributes
    ----------
    alignment : mmalign.Alignment
        A (x) to B (y), ``frame_rate`` set.
    sr : int
        Analysis (and preview) rate in Hz.
    duration_a, duration_b : float
        Lengths of the recordings in seconds.
    resampled : bool
        Whether the files were resampled to ``sr``.
    outputs : dict
        ``{"path": ..., "preview": ..., "plot": ...}`` for the files written.
    seconds : dict
        Wall time per stage.
    """

    alignment: Alignment
    sr: int
    duration_a: float
    duration_b: float
    resampled: bool
    outputs: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def synchronize_files(path_a: str | os.PathLike, path_b: str | os.PathLike, out_dir: str | os.PathLike,
                      *, sr: int | None = None, features: str = "chroma+dlnco", feature_rate: float = 50.0,
                      method: str = "auto", radius: int | None = None, multiscale_radius: int = 16,
                      metric: str = "euclidean", preview: bool = True, plot: bool = True,
                      progress: bool = False, overwrite: bool = False) -> SyncResult:
    """Synchronise two audio files and write ``path.csv``, ``preview.wav`` and ``alignment.png``.

    Audio is streamed: memory is bounded by one chunk of audio (60 s plus
    margins), the features and the DTW band, whatever the files' lengths.

    The output paths are checked before any audio is read: an existing
    output is replaced only with ``overwrite=True``, and an output that is
    one of the inputs is always refused.  Each file is written under a
    temporary name in ``out_dir`` and renamed into place when complete.

    Parameters
    ----------
    path_a, path_b : str or os.PathLike
        Audio files (WAV, FLAC, OGG, ...; mixed down to mono).
    out_dir : str or os.PathLike
        Directory for the outputs (created if missing).
    sr : int > 0 or None
        Analysis rate; both files are resampled to it.  ``None`` uses the
        files' own rate, which must then be the same for both.
    features, feature_rate, method, radius, multiscale_radius, metric
        As in :func:`synchronize`.
    preview : bool
        Write ``preview.wav`` (stereo, 16 bit: A left, B re-timed onto A
        right; :func:`mmalign.apps.sync.write_preview`).
    plot : bool
        Write ``alignment.png`` (the path in seconds, over the cost matrix
        when it has at most 4 M cells).
    progress : bool
        tqdm progress bars for the features and the preview.
    overwrite : bool
        Replace outputs that already exist (default: refuse, before any work).

    Returns
    -------
    result : SyncResult

    Raises
    ------
    FileNotFoundError
        A file is missing.
    FileExistsError
        An output exists and ``overwrite`` is False.
    ValueError
        An output would replace an input or cannot be written; a file cannot
        be decoded, is shorter than :data:`MIN_SECONDS` (0.5 s), or the rates
        differ and ``sr`` is None (messages name the files).
    """
    _check_options(features, method)
    outputs = check_outputs(out_dir, (path_a, path_b), preview=preview, plot=plot, overwrite=overwrite)
    info_a, info_b = (check_audio_file(p, min_seconds=MIN_SECONDS) for p in (path_a, path_b))
    if sr is None:
        if info_a.sr != info_b.sr:
            raise ValueError(
                f"sample rates differ: {info_a.path} is {info_a.sr} Hz, {info_b.path} is {info_b.sr} Hz; "
                f"pass --sr (e.g. --sr 22050) to resample both to one rate"
            )
        sr = info_a.sr
    hop = feature_hop(sr, feature_rate, features)
    seconds = {}
    start = time.perf_counter()
    feats = []
    for label, info in (("A", info_a), ("B", info_b)):
        n = int(round(info.n_samples * sr / info.sr))
        feats.append(stream_features(file_blocks(info.path, sr), sr, features=features, hop_length=hop,
                                     n_samples=n, progress=progress,
                                     desc=f"{features} features {label}"))
    seconds["features"] = time.perf_counter() - start
    alignment = _align_features(*feats, sr=sr, hop=hop, features=features, method=method, radius=radius,
                                multiscale_radius=multiscale_radius, metric=metric, seconds=seconds)

    start = time.perf_counter()
    with atomic_write(outputs["path"]) as tmp:
        alignment.to_csv(tmp)
    if plot:
        with atomic_write(outputs["plot"]) as tmp:
            _plot(alignment, feats[0], feats[1], tmp,
                  title=f"{os.path.basename(info_a.path)} vs {os.path.basename(info_b.path)} ({features})")
    seconds["path + plot"] = time.perf_counter() - start
    if preview:
        from .vocoder import write_preview

        start = time.perf_counter()
        with atomic_write(outputs["preview"]) as tmp:
            write_preview(tmp, file_blocks(info_a.path, sr), file_blocks(info_b.path, sr), alignment, sr,
                          progress=progress)
        seconds["preview"] = time.perf_counter() - start
    return SyncResult(alignment=alignment, sr=int(sr), duration_a=info_a.duration, duration_b=info_b.duration,
                      resampled=(sr != info_a.sr or sr != info_b.sr), outputs=outputs, seconds=seconds)


# --------------------------------------------------------------------------- internals


def check_outputs(out_dir: str | os.PathLike, inputs, *, preview: bool, plot: bool, overwrite: bool,
                  option: str = "out_dir", force_hint: str = "overwrite=True") -> dict:
    """``{"path": ..., "plot": ..., "preview": ...}`` for the files :func:`synchronize_files` writes.

    Each path is checked (:func:`mmalign.utils.files.check_output_file`:
    not an input, not an existing file unless ``overwrite``, folder writable);
    nothing is created.  ``option`` and ``force_hint`` name the argument and
    the way to allow replacing in the messages (``"--out"``, ``"--force"`` on
    the command line).
    """
    out_dir = os.fspath(out_dir)
    wanted = {"path": True, "plot": plot, "preview": preview}
    return {kind: check_output_file(os.path.join(out_dir, name), force=overwrite, inputs=inputs,
                                    option=option, force_hint=force_hint)
            for kind, name in OUTPUT_NAMES.items() if wanted[kind]}


def _check_options(features: str, method: str) -> None:
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}; got {features!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")


def align_features(features_a: np.ndarray, features_b: np.ndarray, *, frame_rate: float,
                   method: str = "auto", radius: int | None = None,
                   multiscale_radius: int = 16, metric: str = "euclidean") -> Alignment:
    """The DTW step of :func:`synchronize`, for features you computed yourself.

    Parameters
    ----------
    features_a, features_b : np.ndarray, shape=(n_a, d) and (n_b, d)
        Frame features of A and B, time first.
    frame_rate : float > 0
        Frames per second of both (stored in ``alignment.frame_rate``).
    method, radius, multiscale_radius, metric
        As in :func:`synchronize`.

    Returns
    -------
    alignment : mmalign.Alignment
        Side x is A; ``extras["method"]`` is the method used (``"dtw"`` or
        ``"multiscale"``), ``extras["seconds"]["dtw"]`` the time it took.

    Examples
    --------
    >>> x = np.sin(np.linspace(0, 6, 50))[:, None]
    >>> y = np.sin(np.linspace(0, 6, 80))[:, None]
    >>> al = align_features(x, y, frame_rate=50.0)
    >>> al.shape, al.extras["method"], float(al.times()[-1, 1])
    ((50, 80), 'dtw', 1.58)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    from ...alignment import Alignment
    from ...warping import dtw_path

    fa = np.asarray(features_a)
    fb = np.asarray(features_b)
    if method == "auto":
        method = "dtw" if fa.shape[0] * fb.shape[0] <= AUTO_EXACT_CELLS else "multiscale"
    start = time.perf_counter()
    estimate = dtw_path(fa, fb, radius=radius, multiscale_radius=multiscale_radius, metric=metric,
                        method="exact" if method == "dtw" else "multiscale")
    elapsed = time.perf_counter() - start
    return Alignment(estimate.path(), cost=estimate.cost, shape=estimate.shape, frame_rate=frame_rate,
                     extras={**estimate.extras, "method": method, "seconds": {"dtw": elapsed}})


def _align_features(fa: np.ndarray, fb: np.ndarray, *, sr: int, hop: int, features: str, method: str,
                    radius: int | None, multiscale_radius: int, metric: str, seconds: dict) -> Alignment:
    alignment = align_features(fa, fb, frame_rate=sr / hop, method=method, radius=radius,
                               multiscale_radius=multiscale_radius, metric=metric)
    seconds["dtw"] = alignment.extras["seconds"]["dtw"]
    alignment.extras.update(features=features, hop_length=hop, sr=int(sr), seconds=dict(seconds))
    return alignment


_MAX_PLOT_CELLS = 4_000_000


def _plot(alignment: Alignment, fa: np.ndarray, fb: np.ndarray, path: str, *, title: str) -> None:
    from ...plot import save_alignment_plot

    cost = None
    if len(fa) * len(fb) <= _MAX_PLOT_CELLS:
        from scipy.spatial.distance import cdist

        cost = cdist(fa, fb, "sqeuclidean")
    save_alignment_plot(alignment, path, cost=cost, title=title)
