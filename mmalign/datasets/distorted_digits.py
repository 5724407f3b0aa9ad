"""Distorted digits with the true transform recorded per sample (the spatial
transformer benchmark of Jaderberg et al., NeurIPS 2015, Sect. 4.1).

Kinds (defaults follow the paper's description; the P and E constants are as
commonly reported and were not checked against the paper's appendix):

- ``"R"`` — rotation by an angle uniform in ±90°, about the image centre, 28 × 28;
- ``"RTS"`` — rotation uniform in ±45°, scale uniform in 0.7–1.2, placed at a
  uniform random position of a 42 × 42 image (the position keeps the digit's
  ink inside the image);
- ``"P"`` — scale uniform in 0.75–1.0, then each corner of the digit's frame
  moved by N(0, 5 px) per axis: a projective warp, 28 × 28 (the ~2.5 % of
  draws that fold the frame, push its centre out of the image or squash it
  to under a tenth of its area at the centre are redrawn);
- ``"E"`` — scale uniform in 0.75–1.0, then a 4 × 4 grid of thin-plate-spline
  control points moved by N(0, 1.5 px) per axis: an elastic warp, 28 × 28;
- ``"TC"`` — translated and cluttered, 60 × 60: the digit pasted at a uniform
  integer position, 6 clutter pieces of 6 × 6 pixels cut from other digits
  (our choice: the paper's appendix uses 6 × 6 crops for its cluttered
  co-localisation data; ``n_clutter`` and ``clutter_size`` change it).

Coordinate convention
---------------------
Normalised coordinates ``(x, y) ∈ [-1, 1]²`` with ``align_corners=False``: in a
``W``-wide image pixel column ``j`` has its centre at ``x = (2 j + 1) / W - 1``
and the image edges are at ``x = ±1``; ``x`` runs rightwards along columns,
``y`` downwards along rows.  This is the convention of
``torch.nn.functional.affine_grid`` / ``grid_sample(align_corners=False)`` and
of :mod:`mmalign.attention.spatial_transformer`.

Two frames: the **source frame** is the undistorted ``h × w`` digit (28 × 28
for MNIST), normalised to ``[-1, 1]²``; the **output frame** is the generated
image, normalised the same way.  Two ``(n, 3, 3)`` matrices are recorded, each
acting on homogeneous column vectors ``(x, y, 1)ᵀ`` (divide by the third
component for ``"P"``):

- ``sampling_theta``: output → source.  The generator made the image with
  ``grid_sample(source, affine_grid(sampling_theta[:, :2], (n, 1, H, W)))``
  (for ``"P"``: the same with the projective grid).
- ``stn_theta = inv(sampling_theta)``: source → output.  This is what a
  *perfect* spatial transformer predicts when it reads the distorted image
  (its input) to produce the upright digit in its own output frame: a spatial
  transformer's matrix maps its output coordinates to its input coordinates.
  Compare a predicted matrix with ``stn_theta`` using
  :func:`mmalign.metrics.transform_point_error`.

For ``"E"`` both matrices hold the global scale only; the full warp is the
thin-plate spline through ``tps_source`` (a regular 4 × 4 grid in the source
frame, ordered row by row as in
:func:`mmalign.attention.spatial_transformer.tps_control_points`) and
``tps_displaced`` (where those points land in the output frame): the
parameters a perfect TPS spatial transformer predicts.

``boxes`` are ``(x0, y0, x1, y1)`` in output **pixel** coordinates
(``x = column``, edges at pixel boundaries: the box of the single pixel at
row ``i``, column ``j`` is ``(j, i, j + 1, i + 1)``), the tight box of the
digit's ink (grey level > 0.1) measured on the distorted digit alone, before
any clutter.  ``x_norm = 2 * x_pixel / W - 1`` converts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..utils.validation import check_choice, check_int
from ._digits import (
    apply_homography,
    as_rng,
    check_digits,
    half_size_matrix,
    ink_boxes,
    matrix_grid,
    pixel_centres,
    resample,
    translate_and_clutter,
)

__all__ = ["DistortedDigits", "distorted_digits", "DISTORTION_KINDS"]

DISTORTION_KINDS = ("R", "RTS", "P", "E", "TC")

_DEFAULT_SIZE = {"R": None, "RTS": 42, "P": None, "E": None, "TC": 60}  # None: source size
_R_MAX_ANGLE = 90.0
_RTS_MAX_ANGLE = 45.0
_RTS_SCALE = (0.7, 1.2)
_PE_SCALE = (0.75, 1.0)
_P_SIGMA_PX = 5.0
_E_SIGMA_PX = 1.5
_E_GRID = 4
_TC_N_CLUTTER = 6
_TC_CLUTTER_SIZE = 6
_TPS_CHUNK = 1024
_MAX_REDRAWS = 50
_P_MIN_AREA = 0.1


@dataclass
class DistortedDigits:
    """Distorted digits and their ground-truth transforms (see the module docstring).

    Attributes
    ----------
    images : np.ndarray [float32], shape (n, H, W)
        Distorted digits in ``[0, 1]``.
    labels : np.ndarray [int64], shape (n,)
    kind : str
        ``"R"``, ``"RTS"``, ``"P"``, ``"E"`` or ``"TC"``.
    sampling_theta : np.ndarray [float64], shape (n, 3, 3)
        Output-frame → source-frame normalised coordinates (``[2, 2] == 1``).
    stn_theta : np.ndarray [float64], shape (n, 3, 3)
        Source → output: its inverse, the perfect spatial transformer's matrix.
    boxes : np.ndarray [float64], shape (n, 4)
        Ink box ``(x0, y0, x1, y1)`` of the digit in output pixels.
    angles : np.ndarray [float64], shape (n,)
        Rotation in degrees, positive = counter-clockwise as seen on screen
        (0 for P, E, TC).
    scales : np.ndarray [float64], shape (n,)
        Digit scale in output pixels per source pixel (1 for R and TC).
    tps_source, tps_displaced : np.ndarray [float64], shape (n, 16, 2) or None
        ``"E"`` only: control points in the source frame and their positions
        in the output frame (normalised coordinates).
    offsets : np.ndarray [int64], shape (n, 2) or None
        ``"TC"`` only: top-left ``(column, row)`` of the source digit's frame in the output.
    clutter_boxes : np.ndarray [int64], shape (n, n_clutter, 4) or None
        ``"TC"`` only: ``(x0, y0, x1, y1)`` pixel boxes of the clutter pieces.
    clutter_sources : np.ndarray [int64], shape (n, n_clutter) or None
        ``"TC"`` only: index (into the input images) of the digit each piece was cut from.
    source_shape : (int, int)
        ``(h, w)`` of the source digits.
    """

    images: np.ndarray
    labels: np.ndarray
    kind: str
    sampling_theta: np.ndarray
    stn_theta: np.ndarray
    boxes: np.ndarray
    angles: np.ndarray
    scales: np.ndarray
    source_shape: tuple[int, int]
    tps_source: np.ndarray | None = None
    tps_displaced: np.ndarray | None = None
    offsets: np.ndarray | None = None
    clutter_boxes: np.ndarray | None = None
    clutter_sources: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the generated images."""
        return int(self.images.shape[1]), int(self.images.shape[2])


# --------------------------------------------------------------------------- transforms


def _similarity(angles_deg: np.ndarray, scales: np.ndarray, shifts_px: np.ndarray,
                src_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """``(n, 3, 3)`` source-normalised → output-normalised matrices of
    "rotate by angle (counter-clockwise on screen), scale, shift the centre by
    ``shifts_px`` output pixels"."""
    n = angles_deg.shape[0]
    a = np.deg2rad(angles_deg)
    c, s = np.cos(a), np.sin(a)
    # counter-clockwise on screen with y pointing down: (1, 0) -> (cos, -sin)
    m = np.zeros((n, 3, 3))
    m[:, 0, 0], m[:, 0, 1] = scales * c, scales * s
    m[:, 1, 0], m[:, 1, 1] = -scales * s, scales * c
    m[:, :2, 2] = shifts_px
    m[:, 2, 2] = 1.0
    d_src = half_size_matrix(*src_hw)
    d_out_inv = np.linalg.inv(half_size_matrix(*out_hw))
    return d_out_inv @ m @ d_src


def _homography_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` homographies with ``[2, 2] = 1`` mapping ``src[:, k]`` to ``dst[:, k]``
    (``(n, 4, 2)`` each; direct linear transform, solved exactly)."""
    n = src.shape[0]
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    zeros, ones = np.zeros_like(x), np.ones_like(x)
    rows_u = np.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], axis=-1)
    rows_v = np.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], axis=-1)
    a = np.concatenate([rows_u, rows_v], axis=1)                    # (n, 8, 8)
    b = np.concatenate([u, v], axis=1)                              # (n, 8)
    h = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def _valid_projective(stn: np.ndarray, moved: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Whether each corner perturbation keeps the frame a convex, non-flipped
    quadrilateral in front of the horizon, with the digit's centre inside the
    image and not squashed (local area at the centre > 0.1 × that of ``base``).

    (Output pixels beyond the horizon of such a homography map to source points
    outside the digit's frame, so they read zeros: no phantom copy of the digit.)"""
    nxt = np.roll(moved, -1, axis=1) - moved                            # edge vectors (n, 4, 2)
    after = np.roll(nxt, -1, axis=1)
    cross = nxt[:, :, 0] * after[:, :, 1] - nxt[:, :, 1] * after[:, :, 0]
    convex = (cross > 0).all(axis=1)          # corners are listed clockwise on screen (y down)
    corners = np.array([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    in_front = (np.einsum("nj,pj->np", stn[:, 2], corners) > 0).all(axis=1)
    centre = stn[:, :2, 2] / stn[:, 2:3, 2]                            # where the digit centre lands
    # local area scale at the centre, relative to the plain scaling (stn[2, 2] == 1)
    area = np.linalg.det(stn) / np.linalg.det(base[:, :2, :2])
    return convex & in_front & (np.abs(centre) < 1.0).all(axis=1) & (area > _P_MIN_AREA)


def _normalise_h(m: np.ndarray) -> np.ndarray:
    return m / m[:, 2:3, 2:3]


def _tps_kernel(d2: np.ndarray | torch.Tensor):
    """``r² log r`` of squared distances (0 at 0), the kernel of the spatial transformer's TPS."""
    if isinstance(d2, torch.Tensor):
        return 0.5 * d2 * torch.log(d2.clamp_min(1e-12))
    return 0.5 * d2 * np.log(np.maximum(d2, 1e-12))


def _tps_map(points_from: np.ndarray, points_to: np.ndarray, query: np.ndarray) -> torch.Tensor:
    """Evaluate, at ``query`` ``(Q, 2)``, the thin-plate spline taking each
    ``points_from[:, k]`` to ``points_to[:, k]`` (``(n, K, 2)`` each) → ``(n, Q, 2)`` float32.

    The spline's coefficients are solved in float64; the evaluation runs in float32.
    """
    n, k, _ = points_from.shape
    system = np.zeros((n, k + 3, k + 3))
    system[:, :k, :k] = _tps_kernel(((points_from[:, :, None] - points_from[:, None]) ** 2).sum(-1))
    poly = np.concatenate([np.ones((n, k, 1)), points_from], axis=2)
    system[:, :k, k:] = poly
    system[:, k:, :k] = poly.transpose(0, 2, 1)
    rhs = np.concatenate([points_to, np.zeros((n, 3, 2))], axis=1)
    coef = torch.from_numpy(np.linalg.solve(system, rhs).astype(np.float32))      # (n, K + 3, 2)
    pf = torch.from_numpy(points_from.astype(np.float32))
    q = torch.from_numpy(query.astype(np.float32))
    # squared distances by one batched product: [q, |q|², 1] · [-2 p, 1, |p|²]
    q_aug = torch.cat([q, (q ** 2).sum(1, keepdim=True), torch.ones(q.shape[0], 1)], dim=1)
    p_aug = torch.cat([-2.0 * pf, torch.ones(n, k, 1), (pf ** 2).sum(2, keepdim=True)], dim=2)
    feats_poly = torch.cat([torch.ones(q.shape[0], 1), q], dim=1)                 # (Q, 3)
    out = torch.empty(n, q.shape[0], 2)
    with torch.no_grad():
        for lo in range(0, n, _TPS_CHUNK):
            hi = min(n, lo + _TPS_CHUNK)
            d2 = torch.matmul(q_aug, p_aug[lo:hi].transpose(1, 2)).clamp_min_(1e-12)   # (b, Q, K)
            kern = torch.log(d2).mul_(d2).mul_(0.5)
            out[lo:hi] = torch.baddbmm(feats_poly @ coef[lo:hi, k:], kern, coef[lo:hi, :k])
    return out


def _tps_grid_points(grid: int) -> np.ndarray:
    """``(grid², 2)`` regular points over ``[-1, 1]²``, row by row (x fastest)."""
    lin = np.linspace(-1.0, 1.0, grid)
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


# --------------------------------------------------------------------------- generator


def distorted_digits(
    images: Any,
    labels: Any,
    kind: str = "RTS",
    seed: int | np.random.Generator = 0,
    size: int | None = None,
    *,
    n_clutter: int | None = None,
    clutter_size: int | None = None,
) -> DistortedDigits:
    """Distort every digit once, recording the true transform (Jaderberg et al. 2015).

    Call it once per epoch on the training digits with ``seed=epoch`` for fresh
    distortions, and once with a fixed seed on the test digits.  See the module
    docstring for the protocols and the coordinate convention.

    Parameters
    ----------
    images : np.ndarray, shape (n, h, w)
        Source digits in ``[0, 1]``, e.g. from :func:`~mmalign.datasets.load_mnist`.
    labels : np.ndarray, shape (n,)
    kind : {"R", "RTS", "P", "E", "TC"}
    seed : int >= 0 or numpy.random.Generator
    size : int or None
        Side of the square output in pixels; ``None``: 42 for RTS, 60 for TC,
        the source size for R, P and E.  The digit keeps its pixel scale: a
        larger ``size`` adds margin, it does not enlarge the digit.
    n_clutter, clutter_size : int or None
        ``"TC"`` only: number and side (pixels) of clutter pieces (default 6 and 6).

    Returns
    -------
    DistortedDigits
        ``images`` ``(n, size, size)`` float32 and the ground truth
        (``sampling_theta``, ``stn_theta``, ``boxes`` and per-kind extras).

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.datasets import distorted_digits
    >>> digits = np.zeros((2, 28, 28), np.float32); digits[:, 8:20, 12:16] = 1.0
    >>> d = distorted_digits(digits, [1, 1], kind="RTS", seed=0)
    >>> d.images.shape, d.stn_theta.shape, d.boxes.shape
    ((2, 42, 42), (2, 3, 3), (2, 4))
    >>> bool(np.allclose(d.stn_theta @ d.sampling_theta, np.eye(3)))
    True
    """
    check_choice(kind, "kind", DISTORTION_KINDS)
    images, labels = check_digits(images, labels)
    rng = as_rng(seed)
    n, h, w = images.shape
    if size is None:
        size = _DEFAULT_SIZE[kind] or max(h, w)
    size = check_int(size, "size", 8)
    if kind != "TC":
        for name, value in (("n_clutter", n_clutter), ("clutter_size", clutter_size)):
            if value is not None:
                raise ValueError(f"{name} applies to kind='TC' only, got {name}={value!r} for kind={kind!r}")
    src_hw, out_hw = (h, w), (size, size)

    if kind == "TC":
        n_clutter = check_int(_TC_N_CLUTTER if n_clutter is None else n_clutter, "n_clutter", 0)
        clutter_size = check_int(
            _TC_CLUTTER_SIZE if clutter_size is None else clutter_size, "clutter_size", 1
        )
        if size < max(h, w):
            raise ValueError(f"size = {size} is smaller than the {h} x {w} source digits")
        res = translate_and_clutter(images, size, n_clutter, clutter_size, rng)
        shifts = res["offsets"] + np.array([w, h]) / 2.0 - size / 2.0   # frame centre, pixels
        stn = _similarity(np.zeros(n), np.ones(n), shifts, src_hw, out_hw)
        return DistortedDigits(
            images=res["images"], labels=labels, kind=kind,
            sampling_theta=_normalise_h(np.linalg.inv(stn)), stn_theta=stn, boxes=res["boxes"],
            angles=np.zeros(n), scales=np.ones(n), source_shape=src_hw,
            offsets=res["offsets"], clutter_boxes=res["clutter_boxes"],
            clutter_sources=res["clutter_sources"],
        )

    tps_source = tps_displaced = None
    angles = np.zeros(n)
    if kind == "R":
        angles = rng.uniform(-_R_MAX_ANGLE, _R_MAX_ANGLE, size=n)
        scales = np.ones(n)
        stn = _similarity(angles, scales, np.zeros((n, 2)), src_hw, out_hw)
    elif kind == "RTS":
        angles = rng.uniform(-_RTS_MAX_ANGLE, _RTS_MAX_ANGLE, size=n)
        scales = rng.uniform(*_RTS_SCALE, size=n)
        centred = _similarity(angles, scales, np.zeros((n, 2)), src_hw, out_hw)
        # random placement keeping the transformed ink box inside the output
        box = ink_boxes(images)
        box = np.where(np.isnan(box), np.array([0.0, 0.0, w, h]), box)
        corners_px = np.stack([box[:, [0, 1]], box[:, [2, 1]], box[:, [2, 3]], box[:, [0, 3]]], axis=1)
        corners = corners_px / np.array([w, h]) * 2.0 - 1.0
        mapped = apply_homography(centred, corners)                     # (n, 4, 2) normalised
        lo = -1.0 - mapped.min(axis=1)
        hi = 1.0 - mapped.max(axis=1)
        mid = (lo + hi) / 2.0
        lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
        shift_norm = lo + (hi - lo) * rng.random((n, 2))
        stn = centred.copy()
        stn[:, :2, 2] += shift_norm
    else:  # P and E: scale about the centre, then perturb points by Gaussian noise
        scales = rng.uniform(*_PE_SCALE, size=n)
        base = _similarity(np.zeros(n), scales, np.zeros((n, 2)), src_hw, out_hw)
        sigma_px = _P_SIGMA_PX if kind == "P" else _E_SIGMA_PX
        points = (np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
                  if kind == "P" else _tps_grid_points(_E_GRID))
        px_to_norm = 2.0 / np.array(out_hw[::-1], dtype=np.float64)
        placed = apply_homography(base, points)
        moved = placed + rng.normal(0.0, sigma_px, size=placed.shape) * px_to_norm
        if kind == "P":
            corners = np.broadcast_to(points, moved.shape).copy()
            stn = _homography_from_points(corners, moved)
            bad = ~_valid_projective(stn, moved, base)
            for _ in range(_MAX_REDRAWS):  # redraw the rare folded quadrilaterals
                if not bad.any():
                    break
                idx = np.flatnonzero(bad)
                moved[idx] = placed[idx] + rng.normal(0.0, sigma_px, size=(idx.size, 4, 2)) * px_to_norm
                stn[idx] = _homography_from_points(corners[idx], moved[idx])
                bad[idx] = ~_valid_projective(stn[idx], moved[idx], base[idx])
            if bad.any():  # pragma: no cover - probability ~ 1e-3 ** _MAX_REDRAWS
                raise RuntimeError("could not draw a non-folding projective distortion")
        else:
            stn = base
            tps_source = np.broadcast_to(points, moved.shape).copy()
            tps_displaced = moved

    sampling = _normalise_h(np.linalg.inv(stn))
    if kind == "E":
        grid = _tps_map(tps_displaced, tps_source, pixel_centres(size, size))
        grid = grid.reshape(n, size, size, 2)
    else:
        grid = matrix_grid(sampling, size, size)
    out = resample(images, grid)
    return DistortedDigits(
        images=out, labels=labels, kind=kind, sampling_theta=sampling, stn_theta=_normalise_h(stn),
        boxes=ink_boxes(out), angles=angles, scales=scales, source_shape=src_hw,
        tps_source=tps_source, tps_displaced=tps_displaced,
    )
