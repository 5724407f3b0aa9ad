"""Spatial transformer (Jaderberg et al., NeurIPS 2015): a localisation net
predicts a geometric transform, a grid generator maps every output pixel to
a location in the input, and a bilinear sampler reads the input there.

Coordinate convention (one, stated once): locations are normalised to
``[-1, 1]`` with ``align_corners=False`` — pixel ``j`` of a width-``W`` image
has centre ``x = (2 j + 1) / W - 1`` — the convention of
``torch.nn.functional.grid_sample(align_corners=False)``. A transform maps
**output** coordinates to **input** (source) coordinates: ``(x_s, y_s, 1)ᵀ ~
M (x_t, y_t, 1)ᵀ`` for the matrix kinds.

Transforms:

- ``"affine"`` — 6 parameters, ``M = [[a, b, c], [d, e, f], [0, 0, 1]]``;
- ``"projective"`` — 8 parameters, ``M[2, 2] = 1``, homogeneous divide;
- ``"attention"`` — 3 parameters ``(s, t_x, t_y)``: isotropic scale and
  translation, ``M = [[s, 0, t_x], [0, s, t_y], [0, 0, 1]]``;
- ``"tps"`` — thin-plate spline through a ``g × g`` grid of control points
  fixed in output space; the parameters are the ``2 g²`` source locations of
  those points.

Every kind starts at the identity (zero weights and identity bias in the last
localisation layer). With ``n_iterations > 1`` the localisation net is
applied again to the warped image and the new transform is composed with the
previous one; the input is always sampled once, from the original image, so
iterating does not blur it.

The pieces: :class:`SpatialTransformerLayer` (the layer, to put in front of any
network), :class:`SpatialTransformerModule` (the layer plus a classifier: the network
the estimator trains) and :class:`SpatialTransformer` (the estimator: ``fit`` on
labelled images, ``predict``, ``warp``, and ``align`` / ``align_batch``, whose side x is
the input image and side y the output frame).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..alignment import Alignment
from ..nn.estimator import TorchAligner
from ..utils.tensors import as_float
from ..utils.validation import check_float, check_int
from ._image_training import (fit_classifier, image_batch, image_list, labelled_images, one_image,
                              same_size_batches)

__all__ = [
    "TRANSFORMS",
    "base_grid",
    "matrix_grid",
    "params_to_matrix",
    "tps_grid",
    "tps_control_points",
    "digit_cnn",
    "SpatialTransformerLayer",
    "SpatialTransformerModule",
    "SpatialTransformer",
]

TRANSFORMS = ("affine", "projective", "attention", "tps")


def base_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates ``(height, width, 2)`` as ``(x, y)`` in ``[-1, 1]``
    (``align_corners=False``).

    Examples
    --------
    >>> base_grid(1, 2)
    tensor([[[-0.5000,  0.0000],
             [ 0.5000,  0.0000]]])
    """
    xs = (2 * torch.arange(width, device=device, dtype=dtype) + 1) / width - 1
    ys = (2 * torch.arange(height, device=device, dtype=dtype) + 1) / height - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def params_to_matrix(params: torch.Tensor, kind: str) -> torch.Tensor:
    """``(B, n_params)`` transform parameters → ``(B, 3, 3)`` matrices (output → input)."""
    b = params.shape[0]
    one = params.new_ones(b, 1)
    zero = params.new_zeros(b, 1)
    if kind == "affine":
        return torch.cat([params, zero, zero, one], dim=1).view(b, 3, 3)
    if kind == "projective":
        return torch.cat([params, one], dim=1).view(b, 3, 3)
    if kind == "attention":
        s, tx, ty = params.unbind(1)
        s, tx, ty = s[:, None], tx[:, None], ty[:, None]
        return torch.cat([s, zero, tx, zero, s, ty, zero, zero, one], dim=1).view(b, 3, 3)
    raise ValueError(f"transform {kind!r} has no matrix form")


def matrix_grid(matrix: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Sampling grid ``(B, H, W, 2)`` of a ``(B, 3, 3)`` output → input transform."""
    h, w = size
    pts = base_grid(h, w, matrix.device, matrix.dtype).reshape(-1, 2)
    homog = torch.cat([pts, pts.new_ones(pts.shape[0], 1)], dim=1)      # (HW, 3)
    mapped = homog @ matrix.transpose(1, 2)                              # (B, HW, 3)
    denom = mapped[..., 2:]
    # keep the sign, avoid division by ~0 for degenerate projective maps
    tiny = torch.where(denom < 0, -1e-6, 1e-6).to(denom.dtype)
    denom = torch.where(denom.abs() < 1e-6, tiny, denom)
    return (mapped[..., :2] / denom).view(-1, h, w, 2)


def tps_control_points(grid_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(grid_size², 2)`` control points on a regular grid spanning ``[-1, 1]``."""
    lin = torch.linspace(-1.0, 1.0, grid_size, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d2 = ((a[..., :, None, :] - b[..., None, :, :]) ** 2).sum(-1)
    return 0.5 * d2 * torch.log(d2.clamp_min(1e-12))      # r² log r


def _tps_system_inverse(control: torch.Tensor) -> torch.Tensor:
    k = control.shape[0]
    L = control.new_zeros(k + 3, k + 3)
    L[:k, :k] = _tps_kernel(control, control)
    P = torch.cat([control.new_ones(k, 1), control], dim=1)
    L[:k, k:] = P
    L[k:, :k] = P.T
    return torch.linalg.inv(L)


def tps_grid(source_points: torch.Tensor, control_points: torch.Tensor, size: tuple[int, int],
             system_inverse: torch.Tensor | None = None) -> torch.Tensor:
    """Sampling grid ``(B, H, W, 2)`` of the thin-plate spline that maps each
    ``control_points[k]`` (output space) to ``source_points[:, k]`` (input space).

    Parameters
    ----------
    source_points : torch.Tensor [shape=(B, K, 2)]
    control_points : torch.Tensor [shape=(K, 2)]
    size : (H, W)
    system_inverse : torch.Tensor [shape=(K + 3, K + 3)] or None
        Cached inverse of the TPS system matrix of ``control_points``.
    """
    h, w = size
    inv = _tps_system_inverse(control_points) if system_inverse is None else system_inverse
    b, k, _ = source_points.shape
    rhs = torch.cat([source_points, source_points.new_zeros(b, 3, 2)], dim=1)  # (B, K+3, 2)
    coef = inv.to(source_points.dtype) @ rhs                                   # (B, K+3, 2)
    pts = base_grid(h, w, source_points.device, source_points.dtype).reshape(-1, 2)
    feats = torch.cat([_tps_kernel(pts, control_points.to(pts.dtype)),
                       pts.new_ones(pts.shape[0], 1), pts], dim=1)             # (HW, K+3)
    return (feats @ coef).view(b, h, w, 2)


def digit_cnn(in_channels: int = 1, n_classes: int = 10, width: int = 32) -> nn.Module:
    """The small classifier used with and without a spatial transformer:
    two conv-pool blocks, global pooling to 4×4, two linear layers."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(2 * width * 16, 128), nn.ReLU(), nn.Linear(128, n_classes),
    )


def _default_localization(in_channels: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 7, padding=3), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(width, width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(width * 16, 32), nn.ReLU(),
    )


def _n_params(transform: str, tps_grid_size: int) -> int:
    return {"affine": 6, "projective": 8, "attention": 3}.get(transform, 2 * int(tps_grid_size) ** 2)


def _check_layer_args(transform: Any, in_channels: Any, output_size: Any, n_iterations: Any,
                      tps_grid_size: Any, localization: Any, localization_features: Any,
                      initial_scale: Any) -> tuple[int, int] | None:
    """Check the arguments of a spatial transformer layer (ValueError naming the bad one);
    returns ``output_size`` as ``(H, W)`` ints or None."""
    if not isinstance(transform, str) or transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    for name, value, low in (("in_channels", in_channels, 1), ("n_iterations", n_iterations, 1),
                             ("tps_grid_size", tps_grid_size, 2),
                             ("localization_features", localization_features, 1)):
        check_int(value, name, low)
    if output_size is not None:
        try:
            ok = len(output_size) == 2 and all(
                isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s >= 1
                for s in output_size)
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"output_size must be (H, W) with positive integer sizes or None, "
                             f"got {output_size!r}")
        output_size = (int(output_size[0]), int(output_size[1]))
    if localization is not None and not isinstance(localization, nn.Module):
        raise ValueError(f"localization must be a torch.nn.Module or None, "
                         f"got {type(localization).__name__}")
    check_float(initial_scale, "initial_scale", 0.0, low_open=True)
    return output_size


class SpatialTransformerLayer(nn.Module):
    """The spatial transformer as a layer: localisation net, grid generator and bilinear
    sampler, to put in front of any network (``nn.Sequential(layer, my_classifier)``).

    ``forward(images)`` warps ``(B, C, H, W)`` images to ``(B, C, H_out, W_out)``,
    differentiably in the images and the layer's parameters; :meth:`localize` returns
    the transform and the sampling grid. :class:`SpatialTransformer` trains one (with a
    classifier, :class:`SpatialTransformerModule`) and reads its transforms out as
    alignments.

    Parameters
    ----------
    transform : {"affine", "projective", "attention", "tps"}
    in_channels : int
    output_size : (H, W) or None
        Size of the warped image; the input's size by default.
    n_iterations : int >= 1
        Number of localise-and-compose steps.
    tps_grid_size : int >= 2
        Control grid of the TPS transform is ``tps_grid_size²`` points.
    localization : torch.nn.Module or None
        Maps ``(B, C, H, W)`` images to ``(B, F)`` features (used as given, as
        ``loc_net``). ``None``: two conv-pool blocks and a 32-unit layer.
    localization_features : int
        Size ``F`` of ``localization``'s output (ignored for the default).
    initial_scale : float > 0
        The transform starts on the central ``initial_scale`` fraction of the input
        along each axis (1: the identity).

    Attributes
    ----------
    loc_net : torch.nn.Module
        The localisation network.
    loc_head : torch.nn.Linear
        Features → transform parameters; zero weights, bias :meth:`initial_params`.
    tps_control, tps_inverse : torch.Tensor (buffers, ``"tps"`` only)
        Control points and the inverse of their TPS system matrix.

    Examples
    --------
    >>> import torch
    >>> layer = SpatialTransformerLayer(transform="affine")
    >>> images = torch.rand(2, 1, 28, 28)
    >>> torch.allclose(layer(images), images, atol=1e-5)   # starts at the identity
    True
    >>> net = torch.nn.Sequential(layer, digit_cnn(1, 10))   # a classifier with a spatial transformer
    >>> net(images).shape
    torch.Size([2, 10])
    """

    def __init__(self, transform: str = "affine", in_channels: int = 1,
                 output_size: tuple[int, int] | None = None, n_iterations: int = 1,
                 tps_grid_size: int = 4, localization: nn.Module | None = None,
                 localization_features: int = 32, initial_scale: float = 1.0) -> None:
        super().__init__()
        output_size = _check_layer_args(transform, in_channels, output_size, n_iterations,
                                        tps_grid_size, localization, localization_features,
                                        initial_scale)
        self.transform = transform
        self.in_channels = int(in_channels)
        self.output_size = output_size
        self.n_iterations = int(n_iterations)
        self.tps_grid_size = int(tps_grid_size)
        self.initial_scale = float(initial_scale)
        self.loc_net = localization if localization is not None else \
            _default_localization(self.in_channels, 16)
        n_feat = int(localization_features) if localization is not None else 32
        self.loc_head = nn.Linear(n_feat, self.n_params)
        nn.init.zeros_(self.loc_head.weight)
        with torch.no_grad():
            self.loc_head.bias.copy_(self.initial_params())
        if transform == "tps":
            control = tps_control_points(self.tps_grid_size)
            self.register_buffer("tps_control", control)
            self.register_buffer("tps_inverse", _tps_system_inverse(control.double()).float())

    # ------------------------------------------------------------ transforms
    @property
    def n_params(self) -> int:
        """Number of transform parameters predicted per image."""
        return _n_params(self.transform, self.tps_grid_size)

    def identity_params(self) -> torch.Tensor:
        """Parameters of the identity transform, ``(n_params,)``."""
        if self.transform == "affine":
            return torch.tensor([1.0, 0, 0, 0, 1, 0])
        if self.transform == "projective":
            return torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0])
        if self.transform == "attention":
            return torch.tensor([1.0, 0, 0])
        return tps_control_points(self.tps_grid_size).reshape(-1)

    def initial_params(self) -> torch.Tensor:
        """Parameters the localisation head starts from, ``(n_params,)``: the
        identity zoomed by ``initial_scale`` (output → input coordinates scaled)."""
        params = self.identity_params()
        if self.transform == "tps":
            return params * self.initial_scale
        scaled = {"affine": [0, 4], "projective": [0, 4], "attention": [0]}[self.transform]
        params[scaled] *= self.initial_scale
        return params

    def _step_params(self, images: torch.Tensor) -> torch.Tensor:
        return self.loc_head(self.loc_net(images))

    def _grid(self, params: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.transform == "tps":
            return tps_grid(params.view(params.shape[0], -1, 2), self.tps_control, size,
                            self.tps_inverse)
        return matrix_grid(params_to_matrix(params, self.transform), size)

    def localize(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the localisation net (all iterations) and build the sampling grid.

        Parameters
        ----------
        images : torch.Tensor [shape=(B, C, H, W)]

        Returns
        -------
        dict with ``"grid"`` ``(B, H_out, W_out, 2)`` (input coordinates per
        output pixel), ``"params"`` ``(B, n_iterations, n_params)`` (each
        step's parameters), and for the matrix kinds ``"matrix"``
        ``(B, 3, 3)``, the composed output → input transform.
        """
        size = self.output_size or tuple(images.shape[-2:])
        steps, matrix, grid = [], None, None
        warped = images
        for _ in range(int(self.n_iterations)):
            params = self._step_params(warped)
            steps.append(params)
            if self.transform == "tps":
                step_grid = self._grid(params, size)
                if grid is None:
                    grid = step_grid
                else:   # compose grids: sample the previous grid at the new locations
                    grid = F.grid_sample(grid.permute(0, 3, 1, 2), step_grid, mode="bilinear",
                                         padding_mode="border", align_corners=False).permute(0, 2, 3, 1)
            else:
                step = params_to_matrix(params, self.transform)
                matrix = step if matrix is None else matrix @ step
                grid = matrix_grid(matrix, size)
            if len(steps) < int(self.n_iterations):
                warped = self.sample(images, grid)
                if warped.shape[-2:] != images.shape[-2:]:
                    warped = F.interpolate(warped, size=images.shape[-2:], mode="bilinear",
                                           align_corners=False)
        out = {"grid": grid, "params": torch.stack(steps, dim=1)}
        if matrix is not None:
            out["matrix"] = matrix
        return out

    @staticmethod
    def sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Bilinear sampling of ``images`` ``(B, C, H, W)`` at ``grid`` ``(B, H_out, W_out, 2)``
        (zeros outside the image, ``align_corners=False``)."""
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Warp ``images`` ``(B, C, H, W)`` → ``(B, C, H_out, W_out)``."""
        return self.sample(images, self.localize(images)["grid"])


class SpatialTransformerModule(nn.Module):
    """The network of :class:`SpatialTransformer`: a :class:`SpatialTransformerLayer` and,
    optionally, a classifier that reads its output (the ST-CNN).

    ``forward(images)`` returns the classifier's logits on the warped images (what
    :meth:`SpatialTransformer.fit` trains through, so that a ``DistributedDataParallel``
    wrapper sees the whole computation), or the warped images when there is no
    classifier. Public so that it can sit inside other models.

    Parameters
    ----------
    layer : SpatialTransformerLayer
    classifier : torch.nn.Module or None
        Maps the warped ``(B, C, H_out, W_out)`` images to ``(B, n_classes)`` logits.

    Examples
    --------
    >>> import torch
    >>> net = SpatialTransformerModule(SpatialTransformerLayer(output_size=(16, 16)), digit_cnn(1, 10))
    >>> x = torch.rand(3, 1, 28, 28)
    >>> net(x).shape, net.warp(x).shape
    (torch.Size([3, 10]), torch.Size([3, 1, 16, 16]))
    """

    def __init__(self, layer: SpatialTransformerLayer, classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.layer = layer
        self.classifier = classifier

    def warp(self, images: torch.Tensor) -> torch.Tensor:
        """The warped images ``(B, C, H_out, W_out)``: ``self.layer(images)``."""
        return self.layer(images)

    def localize(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`SpatialTransformerLayer.localize` of the layer."""
        return self.layer.localize(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        warped = self.layer(images)
        return warped if self.classifier is None else self.classifier(warped)


# the spatial transformer's training defaults (TorchEstimator.TRAIN_DEFAULTS): those of the flat
# arguments it took before (10 epochs, batches of 64, Adam at 1e-3, seed 0, on the CPU)
_TRAINING = {"max_epochs": 10, "batch_size": 64, "lr": 1e-3, "seed": 0, "device": "cpu"}
# state_dict keys of the files written when the estimator was itself the torch module
_OLD_LAYER_KEYS = ("loc_net.", "loc_head.", "tps_control", "tps_inverse")


class SpatialTransformer(TorchAligner):
    """Spatial transformer with a classifier head, trained end to end by :meth:`fit`; its
    transform read out as an :class:`~mmalign.alignment.Alignment`.

    The network (``module_``, built in :meth:`fit`) is a
    :class:`SpatialTransformerModule`: a :class:`SpatialTransformerLayer` (the layer
    that goes into users' own classifiers) followed by the classifier.

    Sides of :meth:`align`: side x is the input image, side y the transformer's output
    frame (the cells of its sampling grid, ``H_out × W_out``); both flattened in
    row-major pixel order. The other side is internal, so :meth:`align` takes one
    image.

    Parameters
    ----------
    localization : torch.nn.Module or None
        Maps ``(B, C, H, W)`` images to ``(B, F)`` features; a linear layer to
        the transform parameters is appended (initialised to the identity,
        or to the zoom ``initial_scale``). ``None``: two conv-pool blocks and
        a 32-unit layer. A module given here is used (and trained) as it is.
    transform, in_channels, output_size, n_iterations, tps_grid_size
        As in :class:`SpatialTransformerLayer`: the transform family
        ({"affine", "projective", "attention", "tps"}), image channels, size
        of the warped image (default the input's), localise-and-compose steps,
        and the TPS control grid (``tps_grid_size²`` points).
    localization_features : int
        Size ``F`` of the user ``localization``'s output (ignored for the default).
    n_classes : int >= 2 or None
        Number of classes; :meth:`fit` needs it. The classifier is :func:`digit_cnn`
        unless ``classifier`` is given.
    classifier : torch.nn.Module or None
        The head reading the warped ``(B, C, H_out, W_out)`` images, ``(B, n_classes)``
        logits out; used (and trained) as it is. ``None``: ``digit_cnn(in_channels,
        n_classes)``, initialised with the rest of the network from the training seed.
    localization_lr_scale : float >= 0
        Learning rate of the localisation network (``loc_net`` and
        ``loc_head``) in :meth:`fit`, relative to ``train.lr``; 1 trains everything
        at ``lr``; 0 freezes it (the transform stays where it starts, e.g. the
        "resampling only" control of ``python -m benchmarks spatial_transformer``).
        Default 0.3: on distorted MNIST (``python -m benchmarks
        spatial_transformer``, 3 seeds) Jaderberg et al.'s 0.1 learnt little
        pose in a short training and 1 could collapse the transform on
        cluttered 60 × 60 digits.
    initial_scale : float > 0
        Where the transform starts: the output samples the central
        ``initial_scale`` fraction of the input along each axis (1: the
        identity; 0.5: the middle half, zoomed in twice). With
        ``n_iterations > 1`` every step starts there, so the zooms compose.
        On cluttered 60 × 60 digits a transform started at the identity
        learnt no per-digit pose, one started at 0.5 did (``python -m
        benchmarks spatial_transformer``): a frame that sees the whole image
        gains little by moving, one that cuts the digit off gains a lot.
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.estimator.TorchEstimator`); the defaults:
        ``max_epochs=10``, ``batch_size=64``, ``lr=1e-3``, ``seed=0`` (which also
        initialises the network), ``device="cpu"``.

    Attributes
    ----------
    module_ : SpatialTransformerModule
        The trained network (``module_.layer``: the spatial transformer layer).
    history_ : dict
        The :func:`mmalign.nn.train.fit` history (``train_loss``, ``val_metric``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> digits = load_digits()
    >>> images, labels = digits.images[:200] / 16.0, digits.target[:200]
    >>> st = SpatialTransformer(n_classes=10, train={"max_epochs": 2}).fit(images, labels)
    >>> st.predict(images[:5]).shape
    (5,)
    >>> a = st.align(images[0])              # side x: the 8 x 8 input, side y: the output frame
    >>> a.shape, a.extras["matrix"].shape, a.extras["grid"].shape
    ((64, 64), (3, 3), (8, 8, 2))
    >>> len(st.align_batch(images[:3]))
    3
    """

    TRAIN_DEFAULTS = _TRAINING

    def __init__(self, localization: nn.Module | None = None, transform: str = "affine",
                 in_channels: int = 1, output_size: tuple[int, int] | None = None,
                 n_iterations: int = 1, tps_grid_size: int = 4, localization_features: int = 32,
                 n_classes: int | None = None, classifier: nn.Module | None = None,
                 localization_lr_scale: float = 0.3, initial_scale: float = 1.0,
                 train=None) -> None:
        self.localization = localization
        self.transform = transform
        self.in_channels = in_channels
        self.output_size = output_size
        self.n_iterations = n_iterations
        self.tps_grid_size = tps_grid_size
        self.localization_features = localization_features
        self.n_classes = n_classes
        self.classifier = classifier
        self.localization_lr_scale = localization_lr_scale
        self.initial_scale = initial_scale
        self.train = train

    # ------------------------------------------------------------ estimator hooks
    def _check_params(self) -> None:
        _check_layer_args(self.transform, self.in_channels, self.output_size, self.n_iterations,
                          self.tps_grid_size, self.localization, self.localization_features,
                          self.initial_scale)
        if self.n_classes is not None and (isinstance(self.n_classes, (bool, np.bool_))
                                           or not isinstance(self.n_classes, (int, np.integer))
                                           or self.n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2 or None, got {self.n_classes!r}")
        if self.classifier is not None and not isinstance(self.classifier, nn.Module):
            raise ValueError(f"classifier must be a torch.nn.Module or None, "
                             f"got {type(self.classifier).__name__}")
        check_float(self.localization_lr_scale, "localization_lr_scale", 0.0)

    def _make_module(self) -> SpatialTransformerModule:
        # built under the training seed: the localisation net, its head, then the classifier
        layer = SpatialTransformerLayer(self.transform, self.in_channels, self.output_size,
                                        self.n_iterations, self.tps_grid_size, self.localization,
                                        self.localization_features, self.initial_scale)
        classifier = self.classifier
        if classifier is None and self.n_classes:
            classifier = digit_cnn(int(self.in_channels), int(self.n_classes))
        return SpatialTransformerModule(layer, classifier)

    @classmethod
    def _upgrade_state_key(cls, key: str) -> str:
        # files of SpatialTransformer as a torch module: the layer's parts sat at the top
        return f"layer.{key}" if key.startswith(_OLD_LAYER_KEYS) else key

    # ------------------------------------------------------------ inputs
    def _float(self, images: torch.Tensor, name: str) -> torch.Tensor:
        dtype, device = self._module_dtype_device()
        return as_float(images, dtype, name).to(device)

    def _images(self, images: Any, name: str) -> torch.Tensor:
        return self._float(image_batch(images, name, int(self.in_channels)), name)

    def _dataset(self, X: Any, Y: Any, names: tuple[str, str] = ("X", "Y")
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        return labelled_images(self._images(X, names[0]), Y, int(self.n_classes), names[1])

    # ------------------------------------------------------------ training
    def fit(self, X: Any, Y: Any = None, *, validation: tuple | None = None,
            regenerate: Any = None) -> "SpatialTransformer":
        """Train the transformer and the classifier end to end (cross-entropy).

        The localisation network learns at ``localization_lr_scale * train.lr``,
        the rest at ``train.lr``. Calling ``fit`` again continues from the current
        weights (``sklearn.base.clone`` gives a fresh copy).

        Parameters
        ----------
        X : array-like [shape=(n, C, H, W) or (n, H, W)]
            Training images.
        Y : array-like of int [shape=(n,)]
            Their labels, in ``[0, n_classes)``.
        validation : (X_val, Y_val) or None
            Validation images and labels: their error is the validation metric
            (early stopping with ``train.patience``, best weights restored).
        regenerate : callable(epoch) -> (images, labels) or None
            Fresh training data each epoch after the first (e.g. newly distorted
            digits); the model is trained one epoch at a time on what it returns.

        Returns
        -------
        self
        """
        self._check_params()
        self.train_config()
        if self.n_classes is None:
            raise ValueError("fit needs a classifier: construct with n_classes")
        data = self._dataset(X, Y)
        val = None if validation is None else self._dataset(*_pair(validation),
                                                            ("validation[0]", "validation[1]"))
        module = self._ensure_module()
        scale = float(self.localization_lr_scale)
        localization = [p for m in (module.layer.loc_net, module.layer.loc_head)
                        for p in m.parameters() if p.requires_grad]
        frozen = localization if scale == 0.0 else []

        def groups(model):
            # the localisation network at localization_lr_scale x lr, the rest at lr
            loc = [p for m in (model.layer.loc_net, model.layer.loc_head)
                   for p in m.parameters() if p.requires_grad]
            ids = {id(p) for p in loc}
            rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
            out = [{"params": loc, "lr_scale": scale}] if loc else []
            if rest:
                out.append({"params": rest, "lr_scale": 1.0})
            return out

        def loss_fn(model, batch):
            # through the (possibly DDP-wrapped) module's forward: the logits
            return F.cross_entropy(model(batch[0]), batch[1])

        def error(model, batch):
            return float((model(batch[0]).argmax(1) != batch[1]).float().mean())

        for p in frozen:
            p.requires_grad_(False)
        try:
            fit_classifier(self, loss_fn, error, data, validation=val, regenerate=regenerate,
                           make_dataset=self._dataset, param_groups=groups)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return self

    # ------------------------------------------------------------ task outputs
    def _run(self, fn, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        module = self.module_
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                return torch.cat([fn(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
        finally:
            module.train(was)

    def predict(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """Predicted class per image, ``(n,)`` int64.

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)]
        batch_size : int
            Images per forward pass.
        """
        self._check_fitted()
        if self.module_.classifier is None:
            raise ValueError("this SpatialTransformer has no classifier: pass n_classes")
        return self._apply(lambda b: self.module_(b).argmax(1), images, batch_size)

    def warp(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """The transformer's output: the warped images, ``(n, C, H_out, W_out)`` float32.

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)]
            The images to warp (``predict``'s input).
        batch_size : int
            Images per forward pass.
        """
        self._check_fitted()
        return self._apply(self.module_.warp, images, batch_size)

    def _apply(self, fn: Callable, images: Any, batch_size: Any) -> np.ndarray:
        """``fn`` over ``images`` in chunks of ``batch_size``, as a numpy array."""
        batch_size = check_int(batch_size, "batch_size", 1)
        return self._run(fn, self._images(images, "images"), batch_size).cpu().numpy()

    # ------------------------------------------------------------ alignment
    def align(self, image: Any, y: Any = None) -> Alignment:
        """The predicted transform of one image as an :class:`~mmalign.alignment.Alignment`.

        Side x is the input image, side y the output frame (the cells of the
        sampling grid), both flattened in row-major pixel order: the shape is
        ``(H * W, H_out * W_out)``. The hard path pairs every output cell ``j`` (in
        order) with the input pixel ``i`` nearest to its sampling location (clamped
        to the image): rows ``(i, j)``. ``extras`` hold ``"grid"`` ``(H_out, W_out,
        2)`` (input coordinates in ``[-1, 1]`` of each output cell),
        ``"params"`` ``(n_iterations, n_params)``, ``"matrix"`` ``(3, 3)`` (matrix
        kinds, output → input), ``"transform"`` and ``"image_size"`` ``(H, W)``.

        Parameters
        ----------
        image : array-like [shape=(C, H, W) or (H, W)]
            One image.
        y : None
            Side y is the transformer's own output frame, not an input: a second
            argument is refused (TypeError).

        Returns
        -------
        Alignment
        """
        _refuse_second(y, "y", "align")
        self._check_fitted()
        x = self._float(one_image(image, "image", int(self.in_channels)), "image")
        return self._alignments(x)[0]

    def align_batch(self, images: Any, Y: Any = None) -> list[Alignment]:
        """:meth:`align` of every image of a batch, computed in one pass per run of
        equally sized images.

        Equal to :meth:`align` image by image up to float rounding (the network sees
        the batch at once; a batch's sums may be ordered differently).

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)] or list of images
            A batch, or a list of single images ``(C, H, W)`` / ``(H, W)`` (of any sizes).
        Y : None
            Refused, as ``y`` of :meth:`align`.

        Returns
        -------
        list of Alignment
        """
        _refuse_second(Y, "Y", "align_batch")
        self._check_fitted()
        out = []
        for batch in same_size_batches(image_list(images, "images", int(self.in_channels))):
            out.extend(self._alignments(self._float(batch, "images")))
        return out

    def _alignments(self, images: torch.Tensor) -> list[Alignment]:
        module = self.module_
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                loc = module.localize(images)
        finally:
            module.train(was)
        h_in, w_in = images.shape[-2:]
        grid = loc["grid"].double().cpu().numpy()
        h_out, w_out = grid.shape[1:3]
        out = []
        for b in range(images.shape[0]):
            col = np.clip(np.round(((grid[b, ..., 0] + 1) * w_in - 1) / 2), 0, w_in - 1)
            row = np.clip(np.round(((grid[b, ..., 1] + 1) * h_in - 1) / 2), 0, h_in - 1)
            path = np.stack([(row * w_in + col).reshape(-1), np.arange(h_out * w_out)], axis=1)
            extras = {"grid": grid[b], "params": loc["params"][b].double().cpu().numpy(),
                      "transform": self.transform, "image_size": (int(h_in), int(w_in))}
            if "matrix" in loc:
                extras["matrix"] = loc["matrix"][b].double().cpu().numpy()
            out.append(Alignment(path=path.astype(np.int64), shape=(h_in * w_in, h_out * w_out),
                                 monotonic=False, extras=extras))
        return out


def _pair(validation: Any) -> tuple[Any, Any]:
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise ValueError("validation must be a pair (X_val, Y_val) of images and labels, "
                         f"got {type(validation).__name__}")
    return validation[0], validation[1]


def _refuse_second(value: Any, name: str, method: str) -> None:
    if value is not None:
        raise TypeError(f"SpatialTransformer.{method} takes images only: side y is the "
                        f"transformer's output frame (the cells of its sampling grid), not an "
                        f"input; got a second argument {name}")
