"""Plots of alignments: cost matrix, estimated path and reference path.

Axis convention: side **x** runs along the horizontal axis and side **y** along
the vertical axis, origin at the bottom left, so a path from ``(0, 0)`` to
``(n_x - 1, n_y - 1)`` climbs from the bottom-left to the top-right corner.
A cost matrix ``(n_x, n_y)`` is therefore drawn transposed (as librosa's
examples draw ``D.T``).
Attention heatmaps (:func:`attention_heatmap`) are the exception: they are
drawn like the matrix, target rows (side x) down the vertical axis and source
columns (side y) across, as attention figures usually are.

matplotlib is imported inside the functions: it is slow to import.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = [
    "plot_alignment",
    "save_alignment_plot",
    "attention_heatmap",
    "save_attention_heatmap",
    "plot_glimpses",
    "plot_spatial_transform",
    "attention_overlay",
    "save_attention_overlay",
]


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


def attention_heatmap(weights, x_labels=None, y_labels=None, ax=None, *, title: str | None = None,
                      sure=None, possible=None, cmap: str = "Greys", colorbar: bool = True):
    """Draw soft attention weights as a heatmap, as in Bahdanau et al. (2015), Fig. 3.

    Unlike :func:`plot_alignment`, rows are drawn as rows: side **x** (the
    target / queries, ``n_x`` rows) runs down the vertical axis, top to
    bottom, and side **y** (the source / keys, ``n_y`` columns) along the
    horizontal axis, left to right, so the picture reads like the matrix.

    Parameters
    ----------
    weights : np.ndarray or torch.Tensor [shape=(..., n_x, n_y)], or mmalign.Alignment
        Non-negative weights; leading axes (heads, layers) are averaged. An
        :class:`~mmalign.alignment.Alignment` gives its ``matrix()``.
    x_labels : sequence of str, length n_x, optional
        Labels of side x (the rows: target tokens / queries), on the vertical axis.
    y_labels : sequence of str, length n_y, optional
        Labels of side y (the columns: source tokens / keys), on the horizontal axis.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new ``matplotlib.pyplot`` figure.
    title : str, optional
    sure, possible : bool array [shape=(n_x, n_y)], optional
        Gold links drawn over the weights: sure as red circles, possible
        (not sure) as small orange dots.
    cmap : str
        Colour map (``"Greys"``: white = 0, black = 1).
    colorbar : bool
        Add a colour bar.

    Returns
    -------
    ax : matplotlib.axes.Axes

    Raises
    ------
    ValueError
        Weights that are not a finite non-negative ``(..., n_x, n_y)`` array;
        labels or gold matrices of the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from mmalign.plot import attention_heatmap
    >>> w = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])
    >>> ax = attention_heatmap(w, x_labels=["a", "b", "c"], y_labels=["B", "A"],
    ...                        ax=Figure().add_subplot())
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['B', 'A']
    """
    if hasattr(weights, "matrix") and hasattr(weights, "shape") and not hasattr(weights, "ndim"):
        w = np.asarray(weights.matrix(), dtype=np.float64)
    else:
        if hasattr(weights, "detach") and hasattr(weights, "cpu"):
            weights = weights.detach().cpu().numpy()
        w = np.asarray(weights)
        if w.dtype.kind not in "biuf":
            raise ValueError(f"weights must hold real numbers, got dtype {w.dtype}")
        if w.ndim < 2 or w.size == 0:
            raise ValueError(f"weights must have shape (..., n_x, n_y), got {w.shape}")
        w = w.astype(np.float64).reshape((-1,) + w.shape[-2:]).mean(axis=0)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    n_x, n_y = w.shape
    for name, labels, n in (("x_labels", x_labels, n_x), ("y_labels", y_labels, n_y)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} must have {n} entries (weights has shape {w.shape}), got {len(labels)}")
    gold = {}
    for name, g in (("sure", sure), ("possible", possible)):
        if g is not None:
            if hasattr(g, "detach") and hasattr(g, "cpu"):
                g = g.detach().cpu().numpy()
            g = np.asarray(g, dtype=bool)
            if g.shape != (n_x, n_y):
                raise ValueError(f"{name} must have shape {(n_x, n_y)}, got {g.shape}")
            gold[name] = g

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(3.0, 0.35 * n_y + 1.5), max(2.5, 0.35 * n_x + 1.0)))
    image = ax.imshow(w, cmap=cmap, aspect="auto", interpolation="nearest", origin="upper",
                      vmin=0.0, vmax=max(1.0, float(w.max())))
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="weight")
    drawn = False
    if "possible" in gold:
        only = gold["possible"] & ~gold.get("sure", np.zeros_like(gold["possible"]))
        if only.any():
            t, s = np.nonzero(only)
            ax.scatter(s, t, s=12, color="tab:orange", label="possible")
            drawn = True
    if "sure" in gold and gold["sure"].any():
        t, s = np.nonzero(gold["sure"])
        ax.scatter(s, t, s=60, facecolors="none", edgecolors="tab:red", linewidths=1.5, label="sure")
        drawn = True
    if drawn:  # above the axes, right-aligned, clear of the weights
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize="x-small",
                  frameon=False, borderaxespad=0.2)
    if y_labels is not None:
        ax.set_xticks(np.arange(n_y), [str(v) for v in y_labels], rotation=90)
    if x_labels is not None:
        ax.set_yticks(np.arange(n_x), [str(v) for v in x_labels])
    ax.set_xlim(-0.5, n_y - 0.5)
    ax.set_ylim(n_x - 0.5, -0.5)
    ax.set_xlabel("y (source)")
    ax.set_ylabel("x (target)")
    if title is not None:
        ax.set_title(title, pad=18 if drawn else 6)
    return ax


def save_attention_heatmap(weights, path: str | os.PathLike, *, figsize: tuple[float, float] | None = None,
                           dpi: int = 120, **kwargs: Any) -> None:
    """Draw :func:`attention_heatmap` on a headless Agg canvas and write it (PNG by extension).

    Parameters
    ----------
    weights : array [shape=(..., n_x, n_y)] or mmalign.Alignment
    path : str or os.PathLike
    figsize : (float, float) or None
        Inches; by default sized to the matrix.
    dpi : int
    **kwargs
        ``x_labels``, ``y_labels``, ``title``, ``sure``, ``possible``, ``cmap``,
        ``colorbar``: as in :func:`attention_heatmap`.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from mmalign.plot import save_attention_heatmap
    >>> out = os.path.join(tempfile.mkdtemp(), "att.png")
    >>> save_attention_heatmap(np.eye(3), out, title="toy")
    >>> os.path.getsize(out) > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if "ax" in kwargs:
        raise ValueError("save_attention_heatmap draws its own axes; do not pass ax")
    shape = np.shape(weights.matrix()) if hasattr(weights, "matrix") and not hasattr(weights, "ndim") \
        else tuple(np.shape(weights))[-2:]
    if figsize is None and len(shape) == 2:
        figsize = (max(3.5, 0.3 * shape[1] + 2.5), max(3.0, 0.3 * shape[0] + 1.5))
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    attention_heatmap(weights, ax=ax, **kwargs)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=dpi)


def _image_2d(image, name: str = "image") -> np.ndarray:
    """An image as ``(H, W)`` (grey) or ``(H, W, 3)`` (colour) float array for ``imshow``."""
    if hasattr(image, "detach") and hasattr(image, "cpu"):
        image = image.detach().cpu().numpy()
    img = np.asarray(image)
    if img.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {img.dtype}")
    img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[0] in (1, 3):   # (C, H, W)
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    elif img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f"{name} must have shape (H, W), (1, H, W) or (3, H, W), got {np.shape(image)}")
    if not np.isfinite(img).all():
        raise ValueError(f"{name} must not contain NaN or inf")
    return img


def _show_image(ax, img: np.ndarray, extent=None) -> None:
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=min(0.0, float(img.min())), vmax=max(1.0, float(img.max())),
                  interpolation="nearest", extent=extent)
    else:
        ax.imshow(np.clip(img, 0.0, 1.0), interpolation="nearest", extent=extent)


def plot_glimpses(image, alignment, ax=None, *, box=None, title: str | None = None,
                  all_scales: bool = False):
    """Draw a glimpse track (recurrent attention model) over its image.

    Parameters
    ----------
    image : array-like or torch.Tensor [shape=(H, W), (1, H, W) or (3, H, W)]
    alignment : mmalign.Alignment
        From :meth:`mmalign.GlimpseAttention.align`; uses ``extras["centres_px"]``
        ``(n_glimpses, 2)`` — ``(x, y)`` pixel coordinates, pixel ``j`` centred
        at ``j`` — and ``extras["patch_sizes_px"]``.
    ax : matplotlib.axes.Axes, optional
        By default a new ``matplotlib.pyplot`` figure.
    box : (x0, y0, x1, y1), optional
        Ground-truth box in pixel *edge* coordinates (pixel ``(i, j)`` spans
        ``(j, i, j + 1, i + 1)``), e.g. ``ClutteredDigits.boxes[k]``; drawn dashed green.
    title : str, optional
    all_scales : bool
        Also outline the coarser patches (dotted) of every glimpse; by default
        only the finest patch of each glimpse and the coarser ones of the first.

    Returns
    -------
    ax : matplotlib.axes.Axes

    The track runs from the first glimpse (1, dark) to the last (light); each
    glimpse's finest patch is outlined in its colour and numbered; coarser
    patches are dotted grey.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from mmalign import Alignment
    >>> from mmalign.plot import plot_glimpses
    >>> a = Alignment(path=[[0, 0], [1, 5]], shape=(2, 100),
    ...               extras={"centres_px": np.array([[4.5, 4.5], [2.0, 6.0]]), "patch_sizes_px": [4.0]})
    >>> ax = plot_glimpses(np.zeros((10, 10)), a, ax=Figure().add_subplot(), box=(1, 1, 5, 8))
    >>> len(ax.patches)   # two glimpse squares and the box
    3
    """
    from matplotlib import patches as mpatches

    img = _image_2d(image)
    extras = getattr(alignment, "extras", None) or {}
    if "centres_px" not in extras:
        raise ValueError("alignment has no extras['centres_px']: pass the result of GlimpseAttention.align")
    centres = np.asarray(extras["centres_px"], dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != 2 or len(centres) == 0 or not np.isfinite(centres).all():
        raise ValueError(f"extras['centres_px'] must be finite with shape (n_glimpses, 2), "
                         f"got {centres.shape}")
    sizes = [float(s) for s in extras.get("patch_sizes_px", [])]
    if box is not None:
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise ValueError(f"box must be (x0, y0, x1, y1), got {box}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.0, 4.0))
    import matplotlib

    h, w = img.shape[:2]
    _show_image(ax, img)
    n = len(centres)
    colours = matplotlib.colormaps["plasma"](np.linspace(0.0, 0.85, max(n, 2)))[:n]
    ax.plot(centres[:, 0], centres[:, 1], color="tab:red", linewidth=1.2, alpha=0.9, zorder=3)
    for t, (cx, cy) in enumerate(centres):
        for k, size in enumerate(sizes):
            if k > 0 and not (all_scales or t == 0):
                continue
            ax.add_patch(mpatches.Rectangle((cx - size / 2, cy - size / 2), size, size, fill=False,
                                            edgecolor=colours[t] if k == 0 else "0.75",
                                            linewidth=1.4 if k == 0 else 0.8,
                                            linestyle="-" if k == 0 else ":", zorder=4))
        ax.scatter([cx], [cy], s=22, color=colours[t], edgecolors="white", linewidths=0.5, zorder=5)
        ax.annotate(str(t + 1), (cx, cy), xytext=(3, 3), textcoords="offset points", fontsize=7,
                    color="white", zorder=6)
    if box is not None:
        x0, y0, x1, y1 = box
        ax.add_patch(mpatches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                        edgecolor="tab:green", linestyle="--", linewidth=1.2, zorder=2))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize="small")
    return ax


def plot_spatial_transform(image, alignment, warped, ax=None, *, title: str | None = None,
                           n_lines: int = 5):
    """Draw a spatial transformer's input with its sampling grid, and beside it the output.

    The input is on the left with the outline of the output frame as the
    transformer samples it (red) and ``n_lines`` interior grid lines per
    direction (thin); the warped output is on the right, scaled to the
    input's height, in one axes.

    Parameters
    ----------
    image : array-like or torch.Tensor [shape=(H, W), (1, H, W) or (3, H, W)]
        The transformer's input.
    alignment : mmalign.Alignment
        From :meth:`mmalign.SpatialTransformer.align`; uses ``extras["grid"]``
        ``(h, w, 2)`` (input locations in ``[-1, 1]``, ``align_corners=False``,
        of every output pixel centre) and, when present, ``extras["matrix"]``
        (the outline is then the exact image of the output frame's edges).
    warped : array-like or torch.Tensor [shape=(h, w), (1, h, w) or (3, h, w)]
        The transformer's output.
    ax : matplotlib.axes.Axes, optional
        By default a new ``matplotlib.pyplot`` figure.
    title : str, optional
    n_lines : int >= 0
        Interior grid lines drawn per direction.

    Returns
    -------
    ax : matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from mmalign.attention.spatial_transformer import SpatialTransformer
    >>> from mmalign.plot import plot_spatial_transform
    >>> x = np.random.default_rng(0).random((4, 12, 12)).astype("float32")
    >>> st = SpatialTransformer(output_size=(8, 8), n_classes=2, train={"max_epochs": 1})
    >>> st = st.fit(x, [0, 1, 0, 1])
    >>> ax = plot_spatial_transform(x[0], st.align(x[0]), st.warp(x[:1])[0, 0], ax=Figure().add_subplot())
    >>> len(ax.images)
    2
    """
    img = _image_2d(image)
    out = _image_2d(warped, "warped")
    extras = getattr(alignment, "extras", None) or {}
    if "grid" not in extras:
        raise ValueError("alignment has no extras['grid']: pass the result of SpatialTransformer.align")
    grid = np.asarray(extras["grid"], dtype=np.float64)
    if grid.ndim != 3 or grid.shape[-1] != 2 or not np.isfinite(grid).all():
        raise ValueError(f"extras['grid'] must be finite with shape (h, w, 2), got {grid.shape}")
    if grid.shape[:2] != out.shape[:2]:
        raise ValueError(f"warped has size {out.shape[:2]} but the alignment's grid {grid.shape[:2]}")
    if isinstance(n_lines, bool) or not isinstance(n_lines, (int, np.integer)) or n_lines < 0:
        raise ValueError(f"n_lines must be an integer >= 0, got {n_lines!r}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.0, 3.2))
    h, w = img.shape[:2]
    ho, wo = out.shape[:2]

    def to_px(pts):   # normalised input coordinates -> imshow pixel coordinates
        return (pts[..., 0] + 1) * w / 2 - 0.5, (pts[..., 1] + 1) * h / 2 - 0.5

    _show_image(ax, img, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    matrix = extras.get("matrix")
    if matrix is not None:
        t = np.linspace(-1.0, 1.0, 33)
        one = np.ones_like(t)
        edge = np.concatenate([np.stack([t, -one], 1), np.stack([one, t], 1),
                               np.stack([t[::-1], one], 1), np.stack([-one, t[::-1]], 1)])
        mapped = np.concatenate([edge, np.ones((len(edge), 1))], 1) @ np.asarray(matrix, np.float64).T
        outline = mapped[:, :2] / mapped[:, 2:3]
    else:
        outline = np.concatenate([grid[0], grid[:, -1], grid[-1, ::-1], grid[::-1, 0], grid[:1, 0]])
    ox, oy = to_px(outline)
    ax.plot(ox, oy, color="tab:red", linewidth=1.4)
    for k in np.linspace(0, ho - 1, n_lines + 2)[1:-1].round().astype(int):
        ax.plot(*to_px(grid[k]), color="tab:red", linewidth=0.5, alpha=0.6)
    for k in np.linspace(0, wo - 1, n_lines + 2)[1:-1].round().astype(int):
        ax.plot(*to_px(grid[:, k]), color="tab:red", linewidth=0.5, alpha=0.6)
    gap = 0.08 * w
    scale = h / ho
    left = w - 0.5 + gap
    _show_image(ax, out, extent=(left, left + wo * scale, h - 0.5, -0.5))
    ax.set_xlim(-0.5, left + wo * scale)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title is not None:
        ax.set_title(title, fontsize="small")
    return ax


def _upsample_grid(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``(..., H, W)`` cell values to ``(..., h, w)`` pixels.

    Cell ``(r, c)`` is centred on pixel coordinate ``((c + 0.5) w / W, (r + 0.5) h / H)``
    (``align_corners=False``); beyond the outer cell centres the values are held constant.
    """
    def weights(n_out: int, n_in: int) -> np.ndarray:
        g = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
        lo = np.floor(g).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = g - lo
        m = np.zeros((n_out, n_in))
        np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
        np.add.at(m, (np.arange(n_out), hi), frac)
        return m

    h, w = size
    return weights(h, grid.shape[-2]) @ grid @ weights(w, grid.shape[-1]).T


def _per_word_matrix(alignment) -> np.ndarray:
    """An alignment's weights with one row per word: ShowAttendTell's alignments hold the grid
    cells on side x and the words on side y (each word's weights a distribution over x)."""
    m = alignment.matrix()
    return m.T if getattr(alignment, "distribution_over", None) == "x" else m


def attention_overlay(image, weights, grid_shape=None, tokens=None, *, boxes=None, axes=None,
                      alpha: float = 0.55, cmap: str = "jet", mark_argmax: bool = True,
                      title: str | None = None):
    """Draw per-word spatial attention upsampled over the image, as in Xu et al. (2015), Fig. 2.

    One panel with the image, then one panel per word: the word's attention
    over the ``H × W`` grid, bilinearly upsampled to the image's pixels
    (cell centres at ``((c + 0.5) w / W, (r + 0.5) h / H)`` in pixel-edge
    coordinates), scaled to its own maximum and blended over the image.

    Parameters
    ----------
    image : array-like or torch.Tensor [shape=(h, w), (1, h, w) or (3, h, w)]
    weights : mmalign.Alignment, or array [shape=(T, H * W) or (T, H, W)]
        An alignment from :meth:`mmalign.ShowAttendTell.align` (grid cells on
        side x, words on side y, ``distribution_over="x"``: drawn one panel per
        word; its ``extras["grid_shape"]`` and ``extras["tokens"]`` fill in the
        defaults), or the weights themselves, one row per word over the
        row-major grid.
    grid_shape : (H, W) or None
        Needed for ``(T, H * W)`` arrays.
    tokens : sequence of str, length T, or None
        Panel titles (the words).
    boxes : sequence of length T of (x0, y0, x1, y1) or None, optional
        Gold box of each word in pixel-edge coordinates (pixel ``(i, j)``
        spans ``(j, i, j + 1, i + 1)``), drawn dashed green; ``None`` entries
        are skipped.
    axes : sequence of ``T + 1`` matplotlib Axes, optional
        By default a new ``matplotlib.pyplot`` figure with one row of panels.
    alpha : float in [0, 1]
        Opacity of the attention layer.
    cmap : str
    mark_argmax : bool
        Mark the centre of each word's most attended cell with a white ``+``.
    title : str, optional
        Title of the image panel.

    Returns
    -------
    axes : list of matplotlib.axes.Axes

    Raises
    ------
    ValueError
        Weights that are not finite non-negative ``(T, L)`` / ``(T, H, W)``,
        a grid that does not match ``L``, tokens or boxes of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from mmalign.plot import attention_overlay
    >>> w = np.zeros((2, 4)); w[0, 0] = w[1, 3] = 1.0
    >>> fig = Figure()
    >>> axes = attention_overlay(np.zeros((16, 16)), w, (2, 2), ["one", "two"],
    ...                          axes=fig.subplots(1, 3), boxes=[(0, 0, 8, 8), None])
    >>> [ax.get_title() for ax in axes]
    ['', 'one', 'two']
    """
    from matplotlib import patches as mpatches

    img = _image_2d(image)
    h, w = img.shape[:2]
    extras = {}
    if hasattr(weights, "matrix") and hasattr(weights, "extras") and not hasattr(weights, "ndim"):
        extras = weights.extras or {}
        weights = _per_word_matrix(weights)
        grid_shape = extras.get("grid_shape") if grid_shape is None else grid_shape
        if tokens is None and extras.get("tokens") is not None:
            tokens = [str(t) for t in extras["tokens"]]
    if hasattr(weights, "detach") and hasattr(weights, "cpu"):
        weights = weights.detach().cpu().numpy()
    wts = np.asarray(weights)
    if wts.dtype.kind not in "biuf":
        raise ValueError(f"weights must hold real numbers, got dtype {wts.dtype}")
    wts = wts.astype(np.float64)
    if wts.ndim == 2:
        if grid_shape is None:
            raise ValueError("grid_shape is required for (T, H * W) weights")
        try:
            gh, gw = (int(v) for v in grid_shape)
        except (TypeError, ValueError):
            raise ValueError(f"grid_shape must be (H, W), got {grid_shape!r}") from None
        if gh < 1 or gw < 1 or gh * gw != wts.shape[1]:
            raise ValueError(f"grid_shape {tuple(grid_shape)} does not match the {wts.shape[1]} weight columns")
        wts = wts.reshape(wts.shape[0], gh, gw)
    elif wts.ndim != 3:
        raise ValueError(f"weights must have shape (T, H * W) or (T, H, W), got {wts.shape}")
    if wts.shape[0] == 0 or wts.size == 0:
        raise ValueError("weights must not be empty")
    if not np.isfinite(wts).all() or (wts < 0).any():
        raise ValueError("weights must be finite and non-negative")
    n_words, gh, gw = wts.shape
    if tokens is not None and len(tokens) != n_words:
        raise ValueError(f"tokens must have {n_words} entries, got {len(tokens)}")
    if boxes is not None and len(boxes) != n_words:
        raise ValueError(f"boxes must have {n_words} entries (None for words without a box), got {len(boxes)}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, n_words + 1, figsize=(1.8 * (n_words + 1), 2.1), squeeze=False)
    axes = list(np.ravel(axes))
    if len(axes) != n_words + 1:
        raise ValueError(f"axes must hold {n_words + 1} Axes (the image and one per word), got {len(axes)}")
    extent = (0.0, float(w), float(h), 0.0)     # pixel-edge coordinates
    up = _upsample_grid(wts, (h, w))
    for k, ax in enumerate(axes):
        _show_image(ax, img, extent=extent)
        if k > 0:
            t = k - 1
            peak = float(up[t].max())
            ax.imshow(up[t] / peak if peak > 0 else up[t], cmap=cmap, alpha=float(alpha), vmin=0.0, vmax=1.0,
                      extent=extent, interpolation="nearest")
            if mark_argmax:
                r, c = np.unravel_index(int(np.argmax(wts[t])), (gh, gw))
                ax.plot([(c + 0.5) * w / gw], [(r + 0.5) * h / gh], marker="+", color="white",
                        markersize=8, markeredgewidth=1.5)
            if boxes is not None and boxes[t] is not None:
                b = np.asarray(boxes[t], dtype=np.float64).reshape(-1)
                if b.shape != (4,):
                    raise ValueError(f"boxes[{t}] must be (x0, y0, x1, y1), got {boxes[t]!r}")
                if np.isfinite(b).all():
                    ax.add_patch(mpatches.Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False,
                                                    edgecolor="lime", linestyle="--", linewidth=1.2))
            if tokens is not None:
                ax.set_title(str(tokens[t]), fontsize="small")
        elif title is not None:
            ax.set_title(title, fontsize="small")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def save_attention_overlay(image, weights, path: str | os.PathLike, *, dpi: int = 120, **kwargs: Any) -> None:
    """Draw :func:`attention_overlay` on a headless Agg canvas and write it (PNG by extension).

    Parameters
    ----------
    image, weights :
        As in :func:`attention_overlay`.
    path : str or os.PathLike
    dpi : int
    **kwargs
        ``grid_shape``, ``tokens``, ``boxes``, ``alpha``, ``cmap``,
        ``mark_argmax``, ``title``: as in :func:`attention_overlay`.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from mmalign.plot import save_attention_overlay
    >>> out = os.path.join(tempfile.mkdtemp(), "overlay.png")
    >>> save_attention_overlay(np.zeros((8, 8)), np.full((1, 4), 0.25), out, grid_shape=(2, 2))
    >>> os.path.getsize(out) > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if "axes" in kwargs:
        raise ValueError("save_attention_overlay draws its own axes; do not pass axes")
    if hasattr(weights, "matrix") and hasattr(weights, "extras") and not hasattr(weights, "ndim"):
        n_words = int(np.shape(_per_word_matrix(weights))[0])
    else:
        n_words = int(np.shape(weights)[0]) if np.ndim(weights) >= 2 else 0
    if n_words < 1:
        raise ValueError(f"weights must have shape (T, H * W) or (T, H, W), got {np.shape(weights)}")
    fig = Figure(figsize=(1.8 * (n_words + 1), 2.1))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_words + 1, squeeze=False)[0]
    attention_overlay(image, weights, axes=axes, **kwargs)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=dpi)
