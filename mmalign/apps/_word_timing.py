"""From a frame path to word times: the time map, speech-activity edges and confidence scores.

Forced alignment (:func:`mmalign.apps.forced_alignment.align_text`) matches
each recording frame to a frame of the synthetic rendering; these functions
turn that match into word boundaries on the recording's clock, pull
boundaries that fall into silence onto the edge of the speech, and score how
well each word's frames matched.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["time_map", "join_close_words", "snap_to_speech", "gaps_at_pauses", "frame_quality", "order_evidence",
           "rendering_coverage", "span_mean"]


def time_map(x_of_y: np.ndarray, rate_x: float, rate_y: float) -> Callable[[np.ndarray], np.ndarray]:
    """Seconds on the synthetic side -> seconds on the recording: mean matched recording frame, interpolated.

    ``x_of_y[j]`` is the synthetic frame matched to recording frame ``j``.
    Each matched synthetic frame maps to the mean of its recording frames;
    instants between matched frames are interpolated linearly (synthetic
    frames skipped by the path are not knots).
    """
    x_of_y = np.asarray(x_of_y)
    n_x = int(x_of_y.max()) + 1
    counts = np.bincount(x_of_y, minlength=n_x)
    sums = np.bincount(x_of_y, weights=np.arange(len(x_of_y), dtype=np.float64), minlength=n_x)
    knots = np.flatnonzero(counts)
    mean_y = sums[knots] / counts[knots]

    def warp(t: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(t, dtype=np.float64) * rate_x, knots, mean_y) / rate_y

    return warp


def join_close_words(times: np.ndarray, max_gap: float = 0.1) -> np.ndarray:
    """Close short gaps between consecutive words by starting the later word where the earlier one ends.

    In the synthetic rendering a word that starts with a stop consonant ("clubs",
    "time") begins with a silent closure, which the synthesiser's word timing
    leaves outside both words.  Phonetic convention (and acoustic-model aligners)
    count the closure as part of the stop, so of the following word; gaps of
    ``max_gap`` seconds or more are pauses and stay.
    """
    out = np.array(times, dtype=np.float64, copy=True)
    for w in range(1, len(out)):
        if 0 < out[w, 0] - out[w - 1, 1] < max_gap:
            out[w, 0] = out[w - 1, 1]
    return out


def snap_to_speech(times: np.ndarray, silences: list[tuple[float, float]]) -> np.ndarray:
    """Move word edges out of silences: a start inside one to its end, an end inside one to its start.

    Parameters
    ----------
    times : np.ndarray, shape=(n_words, 2)
        Start and end of each word in seconds, in order.
    silences : list of (start, end)
        Non-speech regions in seconds (leading and trailing silence, long pauses).

    Returns
    -------
    times : np.ndarray, shape=(n_words, 2)
        A new array; a word wholly inside a silence is left where it is, and
        no word ends up starting after its end or before the previous word's end.
    """
    out = np.array(times, dtype=np.float64, copy=True)
    for a, b in silences:
        for w in range(len(out)):
            start, end = out[w]
            if a <= start < b and end > b:
                out[w, 0] = b
            if a < end <= b and start < a:
                out[w, 1] = a
    for w in range(1, len(out)):                     # keep order after the moves
        out[w, 0] = max(out[w, 0], out[w - 1, 1])
        out[w, 1] = max(out[w, 1], out[w, 0])
    return out


def gaps_at_pauses(times: np.ndarray, pauses: list[tuple[float, float]], *, reach: float = 0.25) -> np.ndarray:
    """Make each pause of the recording a gap between two words.

    A pause (``(start, end)`` seconds) that no word boundary falls into takes
    the nearest boundary between consecutive words whose midpoint lies within
    ``reach`` seconds of the pause: the earlier word then ends where the pause
    starts and the later one starts where it ends.  Without this, the frames of
    a pause that the rendering does not have are absorbed by a neighbouring word.
    """
    out = np.array(times, dtype=np.float64, copy=True)
    if len(out) < 2:
        return out
    for a, b in pauses:
        ends, starts = out[:-1, 1], out[1:, 0]
        if np.any(((ends >= a) & (ends <= b)) | ((starts >= a) & (starts <= b))):
            continue
        distance = np.abs(0.5 * (ends + starts) - 0.5 * (a + b))
        w = int(np.argmin(distance))
        if distance[w] <= reach + 0.5 * (b - a) and out[w, 0] <= a and out[w + 1, 1] >= b:
            out[w, 1], out[w + 1, 0] = a, b
    return out


def frame_quality(x: np.ndarray, y: np.ndarray, x_of_y: np.ndarray, *, n_typical: int = 400) -> np.ndarray:
    """Per recording frame, how much closer its matched synthetic frame is than a typical one, in [0, 1].

    ``1 - d(x[x_of_y[j]], y[j]) / median_i d(x[i], y[j])`` with ``d`` the mean
    squared difference (the DTW cost) and the median over up to ``n_typical``
    evenly spaced synthetic frames: 0 when the matched frame is no closer than
    the median synthetic frame, towards 1 when it is much closer.
    """
    from ._speech_dtw import frame_costs

    matched = ((np.asarray(x, dtype=np.float64)[x_of_y] - y) ** 2).mean(axis=1)
    sample = x[np.unique(np.linspace(0, len(x) - 1, min(len(x), n_typical)).astype(np.int64))]
    typical = np.empty(len(y))
    for j in range(0, len(y), 4096):
        typical[j:j + 4096] = np.median(frame_costs(sample, y[j:j + 4096]), axis=0)
    return np.clip(1.0 - matched / np.maximum(typical, 1e-12), 0.0, 1.0)


def order_evidence(x: np.ndarray, y: np.ndarray, x_of_y: np.ndarray, x_of_y_reversed: np.ndarray,
                   speech: np.ndarray) -> float:
    """How much better the rendering explains the recording than the same rendering played backwards, in [0, 1].

    ``1 - cost(path) / cost(reversed path)`` over the speech frames.  Played
    backwards, the rendering holds the same sounds in the wrong order: DTW
    matches a recording of a *different* text about as well with either, and a
    recording of *this* text much better forwards, so the ratio measures that
    the text's order of sounds is in the recording, not only its sounds.
    """
    x = np.asarray(x, dtype=np.float64)
    speech = np.asarray(speech, dtype=bool)[: len(y)]
    forward = ((x[x_of_y] - y) ** 2).mean(axis=1)[speech].sum()
    backward = ((x[::-1][x_of_y_reversed] - y) ** 2).mean(axis=1)[speech].sum()
    return float(np.clip(1.0 - forward / backward, 0.0, 1.0)) if backward > 0 else 0.0


def rendering_coverage(x_of_y: np.ndarray, speech_x: np.ndarray) -> np.ndarray:
    """Per synthetic frame, 1.0 if the path visits it, else 0.0 (a float array, for :func:`span_mean`).

    A recording of the text passes through nearly every speech frame of the
    rendering (it skips some only where it is faster); a recording of another
    text lets DTW skip the frames it has nothing for.  Compared over the
    speech frames of the rendering (``speech_x``).
    """
    visited = np.zeros(len(speech_x))
    visited[np.asarray(x_of_y)] = 1.0
    return visited


def span_mean(values: np.ndarray, rate: float, start: float, end: float) -> float:
    """Mean of per-frame ``values`` over ``[start, end]`` seconds (at least the nearest frame)."""
    a = int(np.floor(start * rate))
    b = max(int(np.ceil(end * rate)), a + 1)
    a = min(max(a, 0), len(values) - 1)
    b = min(max(b, a + 1), len(values))
    return float(values[a:b].mean())
