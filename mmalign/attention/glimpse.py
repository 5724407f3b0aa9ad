"""Glimpse hard attention: the recurrent attention model (RAM, Mnih et al., NeurIPS 2014).

At each of ``n_glimpses`` steps a *retina* reads ``n_scales`` square patches
centred on the current location — ``glimpse_size`` pixels wide, then twice,
four times ... as wide, each resampled to ``glimpse_size²`` — a glimpse
network combines *what* (the patches) and *where* (the location), a
recurrent core integrates the glimpses, and a Gaussian location policy picks
the next location. The classifier reads the last core state. The location
policy is not differentiable; it is trained with REINFORCE (reward 1 for a
correct final answer) against a learned baseline, and the classifier and
core with cross-entropy.

``policy="random"`` turns the model into the random-glimpse control of the
paper: the same networks, but every location after the first drawn uniformly
at random (training and test), trained by cross-entropy alone.

Training options beyond the paper's description: ``first_glimpse`` (image
centre or uniform random first location), ``n_rollouts`` (several sampled
glimpse sequences per training image, averaged) and ``reinforce_to_core``
(whether the policy gradient also trains the core).

The retina is vectorised over the batch (``affine_grid`` + ``grid_sample``,
one call per scale); there is no per-sample Python loop.

Locations are ``(x, y)`` in normalised ``[-1, 1]`` image coordinates
(``align_corners=False``: pixel ``j`` of ``W`` has centre ``(2 j + 1) / W - 1``),
the convention of :mod:`mmalign.attention.spatial_transformer`.
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
from ..utils.validation import check_bool, check_float, check_int
from ._image_training import fit_epochs, labelled_images

__all__ = ["retina", "GlimpseAttention"]


def retina(images: torch.Tensor, locations: torch.Tensor, glimpse_size: int,
           n_scales: int = 1, scale_factor: float = 2.0) -> torch.Tensor:
    """Multi-resolution glimpses of a batch of images at a batch of locations.

    Parameters
    ----------
    images : torch.Tensor [shape=(B, C, H, W)]
    locations : torch.Tensor [shape=(B, 2)]
        Centres ``(x, y)`` in ``[-1, 1]`` (``align_corners=False``).
    glimpse_size : int
        Side ``g`` of the finest patch in pixels, and of every returned patch.
    n_scales : int
        Number of patches; patch ``k`` covers ``g · scale_factor**k`` pixels.
    scale_factor : float

    Returns
    -------
    patches : torch.Tensor [shape=(B, n_scales, C, g, g)]
        Coarser patches are box-averaged down to ``g × g``; regions outside
        the image read as 0.

    Examples
    --------
    >>> import torch
    >>> img = torch.arange(16.0).view(1, 1, 4, 4)
    >>> retina(img, torch.tensor([[-0.5, -0.5]]), glimpse_size=2)[0, 0, 0]
    tensor([[0., 1.],
            [4., 5.]])
    """
    b, c, h, w = images.shape
    loc = locations.to(images.dtype)[:, None, None, :]       # (B, 1, 1, 2)
    out = []
    for k in range(int(n_scales)):
        span = glimpse_size * scale_factor ** k              # patch side in pixels
        n = int(round(span))
        # the sampling grid of affine_grid for a scale-and-shift theta, without the batched matmul
        base = (torch.arange(n, device=images.device, dtype=images.dtype) * 2 + 1) / n - 1
        gx = (base * (span / w))[None, None, :].expand(1, n, n)
        gy = (base * (span / h))[None, :, None].expand(1, n, n)
        grid = torch.stack([gx, gy], dim=-1) + loc
        patch = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)
        if n != glimpse_size:
            if n % glimpse_size == 0:
                patch = F.avg_pool2d(patch, n // glimpse_size)
            else:
                patch = F.adaptive_avg_pool2d(patch, glimpse_size)
        out.append(patch)
    return torch.stack(out, dim=1)


class GlimpseAttention(Aligner, nn.Module):
    """Recurrent attention model trained with REINFORCE.

    Parameters
    ----------
    image_size : (H, W)
    n_classes : int
    in_channels : int
    n_glimpses : int
        Glimpses per image (the last one is classified).
    glimpse_size : int
        Finest patch side in pixels (8 for 28×28 MNIST, 12 for 60×60).
    n_scales : int
        Patches per glimpse (3 for 60×60 in the paper).
    glimpse_hidden, location_hidden, core_hidden : int
        Sizes of the *what* and *where* layers and of the core (128, 128, 256 in the paper).
    core : {"rnn", "lstm"}
        ReLU RNN (as in the paper) or LSTM core.
    location_std : float
        Standard deviation of the Gaussian location policy, in normalised units.
    entropy_weight : float
        Weight of the entropy bonus (constant for a fixed ``location_std``; kept
        for learned-σ variants and for parity with other policy-gradient code).
    first_glimpse : {"centre", "random"}
        Where the first glimpse goes. ``"centre"`` (default): always the
        image centre, so that training sees the same first glimpse as the
        deterministic (``M = 1``) test. ``"random"``: uniform in ``[-1, 1]²``
        whenever locations are sampled (training, ``M > 1`` Monte-Carlo
        testing) and the image centre when the policy mean is followed. The
        first location is not chosen by the policy (there is no state yet);
        Mnih et al. do not specify it. With ``"random"`` the policy is
        trained from starting points it never meets at the ``M = 1`` test;
        on translated 60 × 60 digits it then did no better than random
        glimpses.
    n_rollouts : int
        Glimpse sequences sampled per training image in :meth:`fit`; the
        loss is averaged over them, which lowers the variance of the
        REINFORCE estimate (and gives the classifier more glimpse sequences
        per image) at ``n_rollouts`` times the cost per epoch (at equal
        compute, 2 rollouts for half the epochs did worse than 1).
    reinforce_to_core : bool
        ``False``: the location network reads a detached core state, so
        REINFORCE trains only the location layer. ``True``: the REINFORCE
        gradient also flows into the core and glimpse networks (as in
        Mnih et al., where the whole agent is trained by the hybrid
        loss); on a short CPU budget this destabilised training (the
        policy drifted to the image border). The classification gradient
        never reaches the location layer either way.
    location_lr_scale : float
        Learning rate of the location layer relative to ``lr`` in
        :meth:`fit` (default 0.3; 1 trains it at ``lr`` like the rest).
        Adam turns every noisy REINFORCE gradient into a step of about
        ``lr``; a smaller rate for the policy than for the classifier keeps
        its mean from drifting to the image border before the classifier
        has learned what a useful glimpse is.
    policy : {"learned", "random"}
        ``"learned"``: the Gaussian location policy trained by REINFORCE.
        ``"random"``: the random-glimpse control — every location after the
        first is drawn uniformly from ``[-1, 1]²``, in training and at test
        time alike (seeded like the Monte-Carlo sampling); the first location
        is chosen as for ``"learned"``, and the loss is the cross-entropy alone.
    max_epochs, batch_size, lr, seed, device :
        Training settings of :meth:`fit`.

    Examples
    --------
    >>> import torch
    >>> ram = GlimpseAttention(image_size=(28, 28), n_classes=10, n_glimpses=3)
    >>> logits, info = ram(torch.rand(2, 1, 28, 28))
    >>> logits.shape, info["locations"].shape
    (torch.Size([2, 10]), torch.Size([2, 3, 2]))
    """

    def __init__(self, image_size: tuple[int, int] = (28, 28), n_classes: int = 10,
                 in_channels: int = 1, n_glimpses: int = 6, glimpse_size: int = 8,
                 n_scales: int = 1, glimpse_hidden: int = 128, location_hidden: int = 128,
                 core_hidden: int = 256, core: str = "rnn", location_std: float = 0.15,
                 entropy_weight: float = 0.0, first_glimpse: str = "centre", n_rollouts: int = 1,
                 reinforce_to_core: bool = False, location_lr_scale: float = 0.3,
                 policy: str = "learned", max_epochs: int = 20,
                 batch_size: int = 64, lr: float = 1e-3, seed: int = 0, device: str = "cpu") -> None:
        nn.Module.__init__(self)
        for name, value, low in (("n_classes", n_classes, 2), ("in_channels", in_channels, 1),
                                 ("n_glimpses", n_glimpses, 1), ("glimpse_size", glimpse_size, 1),
                                 ("n_scales", n_scales, 1), ("glimpse_hidden", glimpse_hidden, 1),
                                 ("location_hidden", location_hidden, 1),
                                 ("core_hidden", core_hidden, 1), ("n_rollouts", n_rollouts, 1)):
            check_int(value, name, low)
        if len(tuple(image_size)) != 2 or min(int(s) for s in image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with positive sizes, got {image_size}")
        if core not in ("rnn", "lstm"):
            raise ValueError(f"core must be 'rnn' or 'lstm', got {core!r}")
        if not location_std > 0:
            raise ValueError(f"location_std must be > 0, got {location_std!r}")
        if first_glimpse not in ("random", "centre"):
            raise ValueError(f"first_glimpse must be 'random' or 'centre', got {first_glimpse!r}")
        check_bool(reinforce_to_core, "reinforce_to_core")
        check_float(location_lr_scale, "location_lr_scale", 0.0, low_open=True)
        if policy not in ("learned", "random"):
            raise ValueError(f"policy must be 'learned' or 'random', got {policy!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.n_classes, self.in_channels = n_classes, in_channels
        self.n_glimpses, self.glimpse_size, self.n_scales = n_glimpses, glimpse_size, n_scales
        self.glimpse_hidden, self.location_hidden = glimpse_hidden, location_hidden
        self.core_hidden, self.core = core_hidden, core
        self.location_std, self.entropy_weight = float(location_std), float(entropy_weight)
        self.first_glimpse, self.n_rollouts = first_glimpse, int(n_rollouts)
        self.reinforce_to_core = bool(reinforce_to_core)
        self.location_lr_scale = float(location_lr_scale)
        self.policy = policy
        self.max_epochs, self.batch_size, self.lr = max_epochs, batch_size, lr
        self.seed, self.device = seed, device

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            patch = in_channels * n_scales * glimpse_size ** 2
            self.what = nn.Linear(patch, glimpse_hidden)
            self.where = nn.Linear(2, location_hidden)
            self.glimpse_out_what = nn.Linear(glimpse_hidden, core_hidden)
            self.glimpse_out_where = nn.Linear(location_hidden, core_hidden)
            if core == "rnn":
                self.core_cell = nn.RNNCell(core_hidden, core_hidden, nonlinearity="relu")
            else:
                self.core_cell = nn.LSTMCell(core_hidden, core_hidden)
            self.location_net = nn.Linear(core_hidden, 2)
            self.baseline_net = nn.Linear(core_hidden, 1)
            self.classifier = nn.Linear(core_hidden, n_classes)

    # ---------------------------------------------------------------- model
    def _check_images(self, images: Any, name: str = "images") -> tuple[torch.Tensor, bool]:
        images = as_tensor(images, name)
        single = images.ndim == 2 or (images.ndim == 3 and self.in_channels > 1)
        if images.ndim == 2:
            images = images[None, None]
        elif images.ndim == 3:
            images = images[None] if self.in_channels > 1 else images[:, None]
        elif images.ndim != 4:
            raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(images.shape)}")
        if tuple(images.shape[1:]) != (self.in_channels, *self.image_size):
            raise ValueError(f"{name} must have shape (B, {self.in_channels}, "
                             f"{self.image_size[0]}, {self.image_size[1]}), got {tuple(images.shape)}")
        if images.shape[0] == 0:
            raise ValueError(f"{name} must not be empty")
        p = self.classifier.weight
        return as_float(images, p.dtype, name).to(p.device), single

    def _glimpse(self, images: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        patches = retina(images, loc, self.glimpse_size, self.n_scales).flatten(1)
        hg = F.relu(self.what(patches))
        hl = F.relu(self.where(loc))
        return F.relu(self.glimpse_out_what(hg) + self.glimpse_out_where(hl))

    def forward(self, images: torch.Tensor, *, sample: bool = True,
                first_location: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Run the glimpse sequence.

        Parameters
        ----------
        images : torch.Tensor [shape=(B, C, H, W)]
        sample : bool
            Sample locations from the policy (training, Monte-Carlo testing);
            ``False`` follows the policy mean.
        first_location : torch.Tensor [shape=(B, 2)] or None
            First glimpse centre; by default uniform random in ``[-1, 1]²``
            (drawn on the images' device) when ``sample`` is True and
            ``first_glimpse="random"``, else the image centre.

        Returns
        -------
        logits : torch.Tensor [shape=(B, n_classes)]
        info : dict
            ``"locations"`` ``(B, n_glimpses, 2)``, ``"log_probs"``
            ``(B, n_glimpses - 1)`` of the sampled locations, ``"baselines"``
            ``(B, n_glimpses - 1)``. With ``policy="random"`` the later
            locations are uniform in ``[-1, 1]²`` whatever ``sample`` is, and
            their log-probability is the constant ``-log 4``.
        """
        images, _ = self._check_images(images)
        b = images.shape[0]
        if first_location is None:
            first_location = (torch.rand(b, 2, device=images.device, dtype=images.dtype) * 2 - 1
                              if sample and self.first_glimpse == "random" else images.new_zeros(b, 2))
        loc = first_location.to(images.dtype)
        h = images.new_zeros(b, self.core_hidden)
        c = images.new_zeros(b, self.core_hidden) if self.core == "lstm" else None
        locations, log_probs, baselines = [loc], [], []
        for t in range(int(self.n_glimpses)):
            g = self._glimpse(images, loc)
            if c is None:
                h = self.core_cell(g, h)
            else:
                h, c = self.core_cell(g, (h, c))
            if t == self.n_glimpses - 1:
                break
            if self.policy == "random":
                loc = torch.rand(b, 2, device=images.device, dtype=images.dtype) * 2 - 1
                log_probs.append(images.new_full((b,), -float(np.log(4.0))))
                baselines.append(self.baseline_net(h.detach()).squeeze(-1))
                locations.append(loc)
                continue
            mean = torch.tanh(self.location_net(h if self.reinforce_to_core else h.detach()))
            if sample:
                noise = torch.randn_like(mean) * self.location_std
                loc = (mean + noise).detach().clamp(-1, 1)
            else:
                loc = mean.detach()
            dist = torch.distributions.Normal(mean, self.location_std)
            log_probs.append(dist.log_prob(loc).sum(-1))
            baselines.append(self.baseline_net(h.detach()).squeeze(-1))
            locations.append(loc)
        info = {"locations": torch.stack(locations, 1)}
        if log_probs:
            info["log_probs"] = torch.stack(log_probs, 1)
            info["baselines"] = torch.stack(baselines, 1)
        else:
            info["log_probs"] = info["baselines"] = images.new_zeros(b, 0)
        return self.classifier(h), info

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Hybrid loss: cross-entropy + baseline MSE + REINFORCE on the locations.

        The reward is 1 for a correct final classification, 0 otherwise; the
        advantage ``R - b_t`` is detached, so REINFORCE trains only the
        location network (and, with ``reinforce_to_core=True``, the core and
        glimpse networks through it) and the baseline only the baseline
        layer. With
        ``policy="random"`` the loss is the cross-entropy alone.
        """
        return self.loss_from_outputs(*self.forward(images, sample=True), labels)

    def loss_from_outputs(self, logits: torch.Tensor, info: dict,
                          labels: torch.Tensor) -> torch.Tensor:
        """:meth:`loss` from a forward pass already run (e.g. through a
        ``DistributedDataParallel`` wrapper, whose gradient sync needs the
        forward to go through it)."""
        ce = F.cross_entropy(logits, labels)
        if self.policy == "random":
            return ce
        reward = (logits.argmax(1) == labels).to(logits.dtype).detach()
        if info["log_probs"].shape[1] == 0:
            return ce
        baseline = info["baselines"]
        advantage = (reward[:, None] - baseline).detach()
        reinforce = -(info["log_probs"] * advantage).sum(1).mean()
        baseline_mse = F.mse_loss(baseline, reward[:, None].expand_as(baseline))
        entropy = torch.distributions.Normal(0.0, self.location_std).entropy() * 2
        return ce + baseline_mse + reinforce - self.entropy_weight * entropy

    # --------------------------------------------------------------- training
    def _dataset(self, images: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return labelled_images(self._check_images(images)[0], labels, self.n_classes)

    def fit(self, images: Any, labels: Any = None, *, val_data: tuple | None = None,
            regenerate: Any = None) -> "GlimpseAttention":
        """Train on labelled images with the hybrid loss (see :meth:`loss`),
        ``n_rollouts`` sampled glimpse sequences per image.

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)]
        labels : array-like of int [shape=(n,)]
        val_data : (images, labels) or None
            Early stopping and best-weight restore on the validation error
            (policy mean, ``M=1``).
        regenerate : callable(epoch) -> (images, labels) or None
            Fresh training images each epoch (e.g. newly translated digits).

        Returns
        -------
        self
        """
        data = self._dataset(images, labels)
        val = None if val_data is None else self._dataset(*val_data)

        def loss_fn(model, batch):
            # forward through the (possibly DDP-wrapped) model, loss on the bare module
            core = getattr(model, "module", model)
            x, y = batch[0], batch[1]
            if core.n_rollouts > 1:                 # several glimpse sequences per image
                x = x.repeat(core.n_rollouts, *([1] * (x.ndim - 1)))
                y = y.repeat(core.n_rollouts)
            return core.loss_from_outputs(*model(x, sample=True), y)

        def error(model, batch):
            logits, _ = model(batch[0], sample=False)
            return float((logits.argmax(1) != batch[1]).float().mean())

        groups = None
        if self.location_lr_scale != 1.0:
            groups = [{"params": list(self.location_net.parameters()), "lr_scale": self.location_lr_scale}]
        history = fit_epochs(self, loss_fn, error, data, val=val, regenerate=regenerate,
                             make_dataset=self._dataset, param_groups=groups)
        self.history_ = history
        return self

    @torch.no_grad()
    def predict_proba(self, images: Any, *, n_samples: int = 1, batch_size: int = 512,
                      seed: int | None = 0) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``.

        Parameters
        ----------
        n_samples : int
            ``M``: with ``M = 1`` the policy mean is followed from the image
            centre (deterministic); with ``M > 1`` ``M`` glimpse sequences are
            sampled from the policy and their class probabilities averaged
            (Mnih et al.'s test-time Monte-Carlo sampling).
        seed : int or None
            Seeds the sampling for ``M > 1`` (a local generator state; global
            RNG state is restored).
        """
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        x, _ = self._check_images(images)
        was = self.training
        self.eval()
        devices = [x.device] if x.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                if seed is not None:
                    torch.manual_seed(int(seed))
                out = []
                for i in range(0, x.shape[0], batch_size):
                    xb = x[i:i + batch_size]
                    if n_samples == 1:
                        out.append(torch.softmax(self.forward(xb, sample=False)[0], 1))
                    else:
                        out.append(torch.stack([torch.softmax(self.forward(xb, sample=True)[0], 1)
                                                for _ in range(n_samples)]).mean(0))
            return torch.cat(out).double().cpu().numpy()
        finally:
            self.train(was)

    def predict(self, images: Any, *, n_samples: int = 1, seed: int | None = 0) -> np.ndarray:
        """Predicted class per image ``(n,)``; ``n_samples`` as in :meth:`predict_proba`."""
        return self.predict_proba(images, n_samples=n_samples, seed=seed).argmax(1)

    # -------------------------------------------------------------- alignment
    @torch.no_grad()
    def align(self, image: Any, y: Any = None, *, sample: bool = False) -> Alignment | list[Alignment]:
        """The glimpse trajectory as an :class:`~mmalign.alignment.Alignment`.

        Side x is the glimpse step (``n_glimpses``), side y the image pixels
        in row-major order; the hard path pairs each step with the pixel under
        its centre. ``extras``: ``"locations"`` ``(n_glimpses, 2)`` in
        ``[-1, 1]``, ``"centres_px"`` ``(n_glimpses, 2)`` as ``(x, y)`` pixel
        coordinates, ``"patch_sizes_px"`` (side of each scale's patch),
        ``"predicted_class"``.

        Parameters
        ----------
        image : array-like [shape=(C, H, W), (H, W) or (B, C, H, W)]
        y : ignored
        sample : bool
            Sample the policy instead of following its mean.
        """
        x, single = self._check_images(image, "image")
        was = self.training
        self.eval()
        try:
            logits, info = self.forward(x, sample=sample)
        finally:
            self.train(was)
        h, w = self.image_size
        locs = info["locations"].double().cpu().numpy()
        sizes = [float(self.glimpse_size * 2.0 ** k) for k in range(int(self.n_scales))]
        out = []
        for b in range(x.shape[0]):
            cx = ((locs[b, :, 0] + 1) * w - 1) / 2
            cy = ((locs[b, :, 1] + 1) * h - 1) / 2
            col = np.clip(np.round(cx), 0, w - 1).astype(np.int64)
            row = np.clip(np.round(cy), 0, h - 1).astype(np.int64)
            path = np.stack([np.arange(len(col)), row * w + col], axis=1)
            extras = {"locations": locs[b], "centres_px": np.stack([cx, cy], 1),
                      "patch_sizes_px": sizes, "image_size": (h, w),
                      "predicted_class": int(logits[b].argmax())}
            out.append(Alignment(path=path, shape=(int(self.n_glimpses), h * w), monotonic=False,
                                 extras=extras))
        return out[0] if single else out
