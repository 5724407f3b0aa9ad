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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..aligner import Aligner
from ..alignment import Alignment
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_float, check_int
from ._image_training import fit_epochs, labelled_images

__all__ = [
    "TRANSFORMS",
    "base_grid",
    "matrix_grid",
    "params_to_matrix",
    "tps_grid",
    "tps_control_points",
    "digit_cnn",
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


class SpatialTransformer(Aligner, nn.Module):
    """Spatial transformer module, optionally with a classifier head trained by :meth:`fit`.

    Parameters
    ----------
    localization : torch.nn.Module or None
        Maps ``(B, C, H, W)`` images to ``(B, F)`` features; a linear layer to
        the transform parameters is appended (initialised to the identity,
        or to the zoom ``initial_scale``). ``None``: two conv-pool blocks and
        a 32-unit layer.
    transform : {"affine", "projective", "attention", "tps"}
    in_channels : int
    output_size : (H, W) or None
        Size of the warped image; the input's size by default.
    n_iterations : int >= 1
        Number of localise-and-compose steps.
    tps_grid_size : int >= 2
        Control grid of the TPS transform is ``tps_grid_size²`` points.
    localization_features : int
        Size ``F`` of the user ``localization``'s output (ignored for the default).
    n_classes : int or None
        Builds the :func:`digit_cnn` head used by :meth:`fit` / :meth:`predict`.
    max_epochs, batch_size, lr, seed, device :
        Training settings of :meth:`fit` (see :class:`mmalign.nn.train.TrainConfig`).
    localization_lr_scale : float > 0
        Learning rate of the localisation network (``loc_net`` and
        ``loc_head``) in :meth:`fit`, relative to ``lr``; 1 trains everything
        at ``lr``.  Default 0.3: on distorted MNIST (``python -m benchmarks
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

    Examples
    --------
    >>> import torch
    >>> st = SpatialTransformer(transform="affine")
    >>> images = torch.rand(2, 1, 28, 28)
    >>> torch.allclose(st(images), images, atol=1e-5)   # starts at the identity
    True
    >>> a = st.align(images[0])
    >>> a.extras["matrix"].shape, a.extras["grid"].shape
    ((3, 3), (28, 28, 2))
    """

    def __init__(self, localization: nn.Module | None = None, transform: str = "affine",
                 in_channels: int = 1, output_size: tuple[int, int] | None = None,
                 n_iterations: int = 1, tps_grid_size: int = 4, localization_features: int = 32,
                 n_classes: int | None = None, max_epochs: int = 10, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                 localization_lr_scale: float = 0.3, initial_scale: float = 1.0) -> None:
        nn.Module.__init__(self)
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        for name, value, low in (("in_channels", in_channels, 1), ("n_iterations", n_iterations, 1),
                                 ("tps_grid_size", tps_grid_size, 2),
                                 ("localization_features", localization_features, 1)):
            check_int(value, name, low)
        if output_size is not None:
            if len(output_size) != 2 or min(int(s) for s in output_size) < 1:
                raise ValueError(f"output_size must be (H, W) with positive sizes, got {output_size}")
            output_size = (int(output_size[0]), int(output_size[1]))
        if n_classes is not None and (not isinstance(n_classes, (int, np.integer)) or n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2 or None, got {n_classes!r}")
        localization_lr_scale = check_float(localization_lr_scale, "localization_lr_scale", 0.0, low_open=True)
        initial_scale = check_float(initial_scale, "initial_scale", 0.0, low_open=True)
        self.localization = localization
        self.transform = transform
        self.in_channels = in_channels
        self.output_size = output_size
        self.n_iterations = n_iterations
        self.tps_grid_size = tps_grid_size
        self.localization_features = localization_features
        self.n_classes = n_classes
        self.max_epochs, self.batch_size, self.lr = max_epochs, batch_size, lr
        self.seed, self.device = seed, device
        self.localization_lr_scale = localization_lr_scale
        self.initial_scale = initial_scale

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.loc_net = localization if localization is not None else \
                _default_localization(in_channels, 16)
            n_feat = localization_features if localization is not None else 32
            self.loc_head = nn.Linear(n_feat, self.n_params)
            nn.init.zeros_(self.loc_head.weight)
            with torch.no_grad():
                self.loc_head.bias.copy_(self.initial_params())
            self.classifier = digit_cnn(in_channels, n_classes) if n_classes else None
        if transform == "tps":
            control = tps_control_points(tps_grid_size)
            self.register_buffer("tps_control", control)
            self.register_buffer("tps_inverse", _tps_system_inverse(control.double()).float())

    # ------------------------------------------------------------ transforms
    @property
    def n_params(self) -> int:
        """Number of transform parameters predicted per image."""
        return {"affine": 6, "projective": 8, "attention": 3}.get(
            self.transform, 2 * self.tps_grid_size ** 2)

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

    def _check_images(self, images: Any, name: str = "images") -> tuple[torch.Tensor, bool]:
        images = as_tensor(images, name)
        # (H, W): one image; (C, H, W): one image, except that with one channel a
        # 3-d input is a batch (B, H, W) of grey images; (B, C, H, W): a batch.
        if images.ndim == 2:
            images, single = images[None, None], True
        elif images.ndim == 3 and self.in_channels == 1:
            images, single = images[:, None], images.shape[0] == 1
        elif images.ndim == 3:
            images, single = images[None], True
        elif images.ndim == 4:
            single = False
        else:
            raise ValueError(f"{name} must have shape (B, C, H, W), (C, H, W) or (H, W), "
                             f"got {tuple(images.shape)}")
        if images.shape[1] != self.in_channels:
            raise ValueError(f"{name} have {images.shape[1]} channels, in_channels={self.in_channels}")
        if images.numel() == 0:
            raise ValueError(f"{name} must not be empty")
        p = next(self.parameters())
        return as_float(images, p.dtype, name).to(p.device), single

    def _step_params(self, images: torch.Tensor) -> torch.Tensor:
        return self.loc_head(self.loc_net(images))

    def _grid(self, params: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.transform == "tps":
            return tps_grid(params.view(params.shape[0], -1, 2), self.tps_control, size,
                            self.tps_inverse)
        return matrix_grid(params_to_matrix(params, self.transform), size)

    def localize(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the localisation net (all iterations) and build the sampling grid.

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
                warped = self._sample(images, grid)
                if warped.shape[-2:] != images.shape[-2:]:
                    warped = F.interpolate(warped, size=images.shape[-2:], mode="bilinear",
                                           align_corners=False)
        out = {"grid": grid, "params": torch.stack(steps, dim=1)}
        if matrix is not None:
            out["matrix"] = matrix
        return out

    @staticmethod
    def _sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def forward(self, images: torch.Tensor, *, classify: bool = False) -> torch.Tensor:
        """Warp ``images`` ``(B, C, H, W)`` → ``(B, C, H_out, W_out)``; with
        ``classify=True`` the class logits ``(B, n_classes)`` of the warped
        images (the form :meth:`fit` trains through, so that a
        ``DistributedDataParallel`` wrapper sees the whole computation)."""
        if classify and self.classifier is None:
            raise ValueError("this SpatialTransformer has no classifier: pass n_classes")
        images, _ = self._check_images(images)
        warped = self._sample(images, self.localize(images)["grid"])
        return self.classifier(warped) if classify else warped

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` of the warped images: ``self(images, classify=True)``."""
        return self.forward(images, classify=True)

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups of :meth:`fit`: the localisation network
        (``loc_net``, ``loc_head``) at ``localization_lr_scale`` times the base
        learning rate, everything else at the base rate (the ``lr_scale``
        key of :func:`mmalign.nn.train.fit`'s ``param_groups``)."""
        loc = [p for m in (self.loc_net, self.loc_head) for p in m.parameters() if p.requires_grad]
        ids = {id(p) for p in loc}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": loc, "lr_scale": float(self.localization_lr_scale)}]
        if rest:
            groups.append({"params": rest, "lr_scale": 1.0})
        return groups

    # ------------------------------------------------------------ training
    def fit(self, images: Any, labels: Any = None, *, val_data: tuple | None = None,
            regenerate: Any = None) -> "SpatialTransformer":
        """Train the transformer and the classifier head end to end (cross-entropy).

        The localisation network learns at ``localization_lr_scale * lr``
        (:meth:`param_groups`), the rest at ``lr``.

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)]
        labels : array-like of int [shape=(n,)]
        val_data : (images, labels) or None
            Validation set: early stopping on its error and best-weight restore.
        regenerate : callable(epoch) -> (images, labels) or None
            Fresh training data each epoch (e.g. newly distorted digits); the
            model is trained one epoch at a time on what it returns.

        Returns
        -------
        self
        """
        if self.classifier is None:
            raise ValueError("fit needs a classifier: construct with n_classes")
        data = self._dataset(images, labels)
        val = None if val_data is None else self._dataset(*val_data)

        def loss_fn(model, batch):
            # through the (possibly DDP-wrapped) model's forward
            return F.cross_entropy(model(batch[0], classify=True), batch[1])

        def error(model, batch):
            return float((model(batch[0], classify=True).argmax(1) != batch[1]).float().mean())

        history = fit_epochs(self, loss_fn, error, data, val=val, regenerate=regenerate,
                             make_dataset=self._dataset, param_groups=SpatialTransformer.param_groups)
        self.history_ = history
        return self

    def _dataset(self, images: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return labelled_images(self._check_images(images)[0], labels, self.n_classes)

    @torch.no_grad()
    def predict(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """Predicted class per image, ``(n,)`` int64."""
        x, _ = self._check_images(images)
        was = self.training
        self.eval()
        try:
            return torch.cat([self.classify(x[i:i + batch_size]).argmax(1)
                              for i in range(0, x.shape[0], batch_size)]).cpu().numpy()
        finally:
            self.train(was)

    # ------------------------------------------------------------ alignment
    @torch.no_grad()
    def align(self, image: Any, y: Any = None) -> Alignment | list[Alignment]:
        """The predicted transform as an :class:`~mmalign.alignment.Alignment`.

        Side x is the output image, side y the input image, both flattened in
        row-major pixel order. The hard path pairs every output pixel with the
        input pixel nearest to its sampling location (clamped to the image).
        ``extras`` hold ``"grid"`` ``(H_out, W_out, 2)``, ``"params"``
        ``(n_iterations, n_params)``, ``"matrix"`` ``(3, 3)`` (matrix kinds),
        ``"transform"`` and ``"image_size"``.

        Parameters
        ----------
        image : array-like [shape=(C, H, W), (H, W) or (B, C, H, W)]
        y : ignored
            (The second input of the :class:`~mmalign.aligner.Aligner` interface.)

        Returns
        -------
        Alignment, or a list of them for a batch.
        """
        images, single = self._check_images(image, "image")
        was = self.training
        self.eval()
        try:
            loc = self.localize(images)
        finally:
            self.train(was)
        h_in, w_in = images.shape[-2:]
        grid = loc["grid"].double().cpu().numpy()
        h_out, w_out = grid.shape[1:3]
        out = []
        for b in range(images.shape[0]):
            col = np.clip(np.round(((grid[b, ..., 0] + 1) * w_in - 1) / 2), 0, w_in - 1)
            row = np.clip(np.round(((grid[b, ..., 1] + 1) * h_in - 1) / 2), 0, h_in - 1)
            path = np.stack([np.arange(h_out * w_out), (row * w_in + col).reshape(-1)], axis=1)
            extras = {"grid": grid[b], "params": loc["params"][b].double().cpu().numpy(),
                      "transform": self.transform, "image_size": (int(h_in), int(w_in))}
            if "matrix" in loc:
                extras["matrix"] = loc["matrix"][b].double().cpu().numpy()
            out.append(Alignment(path=path.astype(np.int64), shape=(h_out * w_out, h_in * w_in),
                                 monotonic=False, extras=extras))
        return out[0] if single else out
