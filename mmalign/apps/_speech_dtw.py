"""DTW for forced alignment in plain numpy: every recording frame is matched to exactly one synthetic frame.

The step pattern advances the recording (side y) by one frame at every step
and the synthetic rendering (side x) by 0 to ``max_skip`` frames.  The
recording therefore never stalls on one synthetic frame's worth of speech
while the synthetic side races ahead (which would squeeze words to nothing),
the synthetic side may hold a frame through a pause of the recording, and
the recursion over one recording frame is a vector operation over all
synthetic frames: a minute of speech takes well under a second in numpy,
without compiling anything.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frame_costs", "monotone_path"]


def frame_costs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean squared difference between every frame of ``x`` and of ``y``: ``(n_x, n_y)`` float32.

    Squared Euclidean cost placed word boundaries closer to an acoustic-model
    aligner's than absolute differences on the development recordings
    (``python -m benchmarks forced_alignment_real``).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = (x * x).sum(axis=1)[:, None] + (y * y).sum(axis=1)[None, :] - 2.0 * (x @ y.T)
    return (np.maximum(d, 0.0) / x.shape[1]).astype(np.float32)


def monotone_path(costs: np.ndarray, max_skip: int | None = None, *, skip_cost: float | None = None,
                  hold_weight: float = 1.0) -> tuple[np.ndarray, int, int]:
    """Cheapest path with one step per recording frame, from ``(0, start)`` to ``(n_x - 1, end)``.

    Parameters
    ----------
    costs : np.ndarray, shape=(n_x, n_y)
        Local cost of matching synthetic frame ``i`` with recording frame ``j``.
    max_skip : int >= 1 or None
        Largest advance on side x per step; default ``max(2, ceil(1.5 (n_x - 1) / (n_y - 1)))``,
        enough for a recording up to twice as fast as the rendering.
    skip_cost : float or None
        With a value, recording frames before the path's start and after its end
        (music, noise or talk around the text, as aeneas's head and tail) cost
        ``skip_cost`` each instead of being matched: the path starts and ends
        wherever that is cheapest.  None: the path runs from the first to the last
        recording frame.
    hold_weight : float >= 1
        A recording frame matched to the same synthetic frame as the one before
        costs ``hold_weight`` times its local cost: values above 1 keep the
        synthetic side from holding one frame through seconds of a sound it
        does not have.

    Returns
    -------
    x_of_y : np.ndarray, shape=(n_y,), int
        The synthetic frame matched to each recording frame, non-decreasing,
        from 0 to ``n_x - 1`` (0 before ``start``, ``n_x - 1`` after ``end``).
    start, end : int
        First and last recording frame on the path.
    """
    n_x, n_y = costs.shape
    if n_y == 1:
        return np.zeros(1, dtype=np.int64), 0, 0
    if max_skip is None:
        max_skip = max(2, int(np.ceil(1.5 * (n_x - 1) / (n_y - 1))))
    max_skip = max(int(max_skip), int(np.ceil((n_x - 1) / (n_y - 1))))     # always a path to the corner
    D = np.full(n_x, np.inf)
    D[0] = costs[0, 0]
    back = np.zeros((n_y, n_x), dtype=np.int16)
    entered = np.zeros(n_y, dtype=bool)          # the path may start at (0, j): j frames skipped
    last = np.full(n_y, np.inf)                  # D[n_x - 1] after each recording frame
    last[0] = D[-1]
    best = np.empty(n_x)
    extra = np.zeros(n_x)
    for j in range(1, n_y):
        column = costs[:, j]
        extra[:] = (hold_weight - 1.0) * column
        best[:] = D + extra                      # holding: weighted local cost
        arg = back[j]
        for s in range(1, min(max_skip, n_x - 1) + 1):
            better = D[:-s] < best[s:]
            best[s:][better] = D[:-s][better]
            arg[s:][better] = s
        if skip_cost is not None and skip_cost * j < best[0]:
            best[0] = skip_cost * j
            entered[j] = True
        D = best + column
        last[j] = D[-1]
    end = n_y - 1
    if skip_cost is not None:
        end = int(np.argmin(last + skip_cost * (n_y - 1 - np.arange(n_y))))
    x_of_y = np.full(n_y, n_x - 1, dtype=np.int64)
    x, start = n_x - 1, 0
    for j in range(end, -1, -1):
        x_of_y[j] = x
        if x == 0 and entered[j]:
            start = j
            x_of_y[:j] = 0
            break
        x -= back[j, x]
    return x_of_y, start, end
