"""Plots of alignments: cost matrix, estimated path and reference path.

Axis convention: side **x** runs along the horizontal axis and side **y** along
the vertical axis, origin at the bottom left, so a path from ``(0, 0)`` to
``(n_x - 1, n_y - 1)`` climbs from the bottom-left to the top-right corner.
A cost matrix ``(n_x, n_y)`` is therefore drawn transposed (as librosa's
examples draw ``D.T``).

matplotlib is imported inside the functions: it is slow to import.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["plot_alignment", "save_alignment_plot"]


def plot_alignment(
    alignment,
    *,
    cost: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    ax=None,
    frame_rate: float | None = None,
    title: str | None = None,
):
    """Draw an alignment path, optionally over its cost matrix and beside a reference.

    Parameters
    ----------
    alignment : mmalign.Alignment
        The estimated alignment; its hard path ``alignment.path()`` is drawn
        as a solid line.
    cost : np.ndarray, shape=(n_x, n_y), optional
        Local (or accumulated) cost matrix, drawn as an image under the path
        with a colour bar.  Must match ``alignment.shape``.
    reference : np.ndarray, shape=(K, 2), optional
        Reference pairs ``(x_position, y_position)`` in frames (fractional
        allowed), e.g. a ground truth; drawn as a dashed line.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.  By default a new figure is created with
        ``matplotlib.pyplot``.
    frame_rate : float > 0, optional
        Frames per second of both sides.  If given (or if ``alignment`` carries
        a single ``frame_rate``), axes are in seconds, otherwise in frames.
    title : str, optional
        Axes title.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If ``cost`` or ``reference`` has the wrong shape or non-finite values,
        or ``frame_rate`` is not positive.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> from matplotlib.figure import Figure
    >>> x, y = np.sin(np.linspace(0, 6, 40))[:, None], np.sin(np.linspace(0, 6, 50))[:, None]
    >>> al = mmalign.dtw_path(x, y)
    >>> ax = plot_alignment(al, cost=(x - y.T) ** 2, ax=Figure().add_subplot())
    >>> ax.get_xlabel()
    'x frames'
    """
    path = np.asarray(alignment.path(), dtype=np.float64)
    n_x, n_y = alignment.shape
    rate = _frame_rate(frame_rate if frame_rate is not None else _single_rate(alignment))
    if cost is not None:
        cost = np.asarray(cost)
        if cost.shape != (n_x, n_y):
            raise ValueError(f"cost must have shape {(n_x, n_y)} (alignment.shape), got {cost.shape}")
        if not np.issubdtype(cost.dtype, np.number) or np.iscomplexobj(cost):
            raise ValueError(f"cost must hold real numbers, got dtype {cost.dtype}")
    if reference is not None:
        reference = np.asarray(reference)
        if reference.ndim != 2 or reference.shape[1] != 2 or len(reference) == 0:
            raise ValueError(f"reference must have shape (K, 2) with K >= 1, got {reference.shape}")
        if not np.issubdtype(reference.dtype, np.number) or not np.all(np.isfinite(reference)):
            raise ValueError("reference must hold finite real numbers")

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 5.5))

    scale = 1.0 if rate is None else 1.0 / rate
    if cost is not None:
        finite = np.isfinite(cost)
        # Pixel (i, j) covers [i - 1/2, i + 1/2] so that paths hit pixel centres.
        image = ax.imshow(
            cost.T,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            extent=(-0.5 * scale, (n_x - 0.5) * scale, -0.5 * scale, (n_y - 0.5) * scale),
            vmin=np.min(cost[finite]) if finite.any() else None,
            vmax=np.max(cost[finite]) if finite.any() else None,
        )
        ax.figure.colorbar(image, ax=ax, label="cost")
    ax.plot(path[:, 0] * scale, path[:, 1] * scale, color="tab:red", linewidth=3.2, label="alignment")
    if reference is not None:
        from matplotlib import patheffects

        ref = reference.astype(np.float64)  # never touch the caller's array
        # White dashes with a black outline stay visible on any part of the image.
        ax.plot(ref[:, 0] * scale, ref[:, 1] * scale, color="white", linestyle="--", linewidth=1.2,
                label="reference", path_effects=[patheffects.withStroke(linewidth=2.2, foreground="black")])
    ax.legend(loc="upper left", fontsize="small")
    ax.set_xlim(-0.5 * scale, (n_x - 0.5) * scale)
    ax.set_ylim(-0.5 * scale, (n_y - 0.5) * scale)
    unit = "frames" if rate is None else "time (s)"
    ax.set_xlabel(f"x {unit}")
    ax.set_ylabel(f"y {unit}")
    if title is not None:
        ax.set_title(title)
    return ax


def save_alignment_plot(alignment, path: str | os.PathLike, *, figsize: tuple[float, float] = (6.0, 5.5),
                        dpi: int = 120, **kwargs: Any) -> None:
    """Draw an alignment with :func:`plot_alignment` and write it as a PNG.

    Uses matplotlib's Agg canvas directly (no pyplot, no display, no global
    state), so it works on headless machines and inside other programs.

    Parameters
    ----------
    alignment : mmalign.Alignment
        The estimated alignment.
    path : str or os.PathLike
        Output file; the format follows the extension (``.png`` recommended).
    figsize : (float, float)
        Figure size in inches.
    dpi : int
        Resolution in dots per inch.
    **kwargs
        ``cost``, ``reference``, ``frame_rate``, ``title``: as in
        :func:`plot_alignment`.

    Examples
    --------
    >>> import os, tempfile, numpy as np, mmalign
    >>> al = mmalign.dtw_path(np.arange(5.0), np.arange(7.0) * 5 / 7)
    >>> out = os.path.join(tempfile.mkdtemp(), "path.png")
    >>> save_alignment_plot(al, out, title="toy")
    >>> os.path.getsize(out) > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if "ax" in kwargs:
        raise ValueError("save_alignment_plot draws its own axes; do not pass ax")
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    plot_alignment(alignment, ax=ax, **kwargs)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=dpi)


def _single_rate(alignment) -> float | None:
    rate = getattr(alignment, "frame_rate", None)
    if isinstance(rate, tuple):
        # Different rates per side: the axes would need two units; stay in frames.
        return rate[0] if rate[0] == rate[1] else None
    return rate


def _frame_rate(rate) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not 0 < rate < np.inf:
        raise ValueError(f"frame_rate must be a positive number, got {rate!r}")
    return float(rate)
