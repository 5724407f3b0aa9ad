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

The pieces: :class:`GlimpseAttentionModule` (the network: retina, glimpse network,
core, location policy, baseline, classifier, and the hybrid loss) and
:class:`GlimpseAttention` (the estimator: ``fit`` on labelled images, ``predict`` /
``predict_proba``, and ``align`` / ``align_batch``, whose side x is the image and side y
the glimpse sequence).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..alignment import Alignment
from ..nn.estimator import TorchAligner
from ..utils.tensors import as_float
from ..utils.validation import check_bool, check_choice, check_float, check_int
from ._image_training import fit_classifier, image_batch, image_list, labelled_images, one_image

__all__ = ["retina", "GlimpseAttentionModule", "GlimpseAttention"]


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


class GlimpseAttentionModule(nn.Module):
    """The network of :class:`GlimpseAttention` (the recurrent attention model), public so
    that it can sit inside other models.

    ``forward(images, *, sample=True, first_location=None) -> (logits, info)`` runs the
    glimpse sequence on ``(B, C, H, W)`` images of any size; :meth:`loss` is the hybrid
    loss :meth:`GlimpseAttention.fit` trains with.

    Parameters
    ----------
    n_classes, in_channels, n_glimpses, glimpse_size, n_scales, glimpse_hidden,
    location_hidden, core_hidden, core, location_std, entropy_weight, first_glimpse,
    reinforce_to_core, policy :
        As in :class:`GlimpseAttention`.

    Attributes
    ----------
    what, where, glimpse_out_what, glimpse_out_where : torch.nn.Linear
        The glimpse network: patches → ``glimpse_hidden``, location →
        ``location_hidden``, both → ``core_hidden``.
    core_cell : torch.nn.RNNCell or torch.nn.LSTMCell
    location_net, baseline_net, classifier : torch.nn.Linear
        Core state → policy mean (before ``tanh``), baseline, class logits.

    Examples
    --------
    >>> import torch
    >>> net = GlimpseAttentionModule(n_classes=10, n_glimpses=3)
    >>> logits, info = net(torch.rand(2, 1, 28, 28))
    >>> logits.shape, info["locations"].shape
    (torch.Size([2, 10]), torch.Size([2, 3, 2]))
    """

    def __init__(self, n_classes: int = 10, in_channels: int = 1, n_glimpses: int = 6,
                 glimpse_size: int = 8, n_scales: int = 1, glimpse_hidden: int = 128,
                 location_hidden: int = 128, core_hidden: int = 256, core: str = "rnn",
                 location_std: float = 0.15, entropy_weight: float = 0.0,
                 first_glimpse: str = "centre", reinforce_to_core: bool = False,
                 policy: str = "learned") -> None:
        super().__init__()
        _check_network_args(n_classes=n_classes, in_channels=in_channels, n_glimpses=n_glimpses,
                            glimpse_size=glimpse_size, n_scales=n_scales,
                            glimpse_hidden=glimpse_hidden, location_hidden=location_hidden,
                            core_hidden=core_hidden, core=core, location_std=location_std,
                            entropy_weight=entropy_weight, first_glimpse=first_glimpse,
                            reinforce_to_core=reinforce_to_core, policy=policy)
        self.n_classes, self.in_channels = int(n_classes), int(in_channels)
        self.n_glimpses, self.glimpse_size = int(n_glimpses), int(glimpse_size)
        self.n_scales, self.core_hidden, self.core = int(n_scales), int(core_hidden), core
        self.location_std, self.entropy_weight = float(location_std), float(entropy_weight)
        self.first_glimpse, self.reinforce_to_core = first_glimpse, bool(reinforce_to_core)
        self.policy = policy
        patch = self.in_channels * self.n_scales * self.glimpse_size ** 2
        self.what = nn.Linear(patch, int(glimpse_hidden))
        self.where = nn.Linear(2, int(location_hidden))
        self.glimpse_out_what = nn.Linear(int(glimpse_hidden), self.core_hidden)
        self.glimpse_out_where = nn.Linear(int(location_hidden), self.core_hidden)
        if core == "rnn":
            self.core_cell = nn.RNNCell(self.core_hidden, self.core_hidden, nonlinearity="relu")
        else:
            self.core_cell = nn.LSTMCell(self.core_hidden, self.core_hidden)
        self.location_net = nn.Linear(self.core_hidden, 2)
        self.baseline_net = nn.Linear(self.core_hidden, 1)
        self.classifier = nn.Linear(self.core_hidden, self.n_classes)

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
        layer. With ``policy="random"`` the loss is the cross-entropy alone.
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


def _check_network_args(**args: Any) -> None:
    """ValueError naming the first bad argument of the network (shared by the module and
    the estimator)."""
    for name, low in (("n_classes", 2), ("in_channels", 1), ("n_glimpses", 1),
                      ("glimpse_size", 1), ("n_scales", 1), ("glimpse_hidden", 1),
                      ("location_hidden", 1), ("core_hidden", 1)):
        check_int(args[name], name, low)
    check_choice(args["core"], "core", ("rnn", "lstm"))
    check_float(args["location_std"], "location_std", 0.0, low_open=True)
    check_float(args["entropy_weight"], "entropy_weight", -np.inf)
    check_choice(args["first_glimpse"], "first_glimpse", ("random", "centre"))
    check_bool(args["reinforce_to_core"], "reinforce_to_core")
    check_choice(args["policy"], "policy", ("learned", "random"))


# the glimpse model's training defaults (TorchEstimator.TRAIN_DEFAULTS): those of the flat
# arguments it took before (20 epochs, batches of 64, Adam at 1e-3, seed 0, on the CPU)
_TRAINING = {"max_epochs": 20, "batch_size": 64, "lr": 1e-3, "seed": 0, "device": "cpu"}


class GlimpseAttention(TorchAligner):
    """Recurrent attention model trained with REINFORCE; its glimpse track read out as an
    :class:`~mmalign.alignment.Alignment`.

    The network (``module_``, built in :meth:`fit`) is a :class:`GlimpseAttentionModule`.

    Sides of :meth:`align`: side x is the image (its pixels in row-major order), side y
    the glimpse sequence (``n_glimpses`` steps). The other side is internal, so
    :meth:`align` takes one image.

    Parameters
    ----------
    image_size : (H, W)
        Size of the images (checked in :meth:`fit`, :meth:`predict`, :meth:`align`).
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
        Learning rate of the location layer relative to ``train.lr`` in
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
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.estimator.TorchEstimator`); the defaults:
        ``max_epochs=20``, ``batch_size=64``, ``lr=1e-3``, ``seed=0`` (which also
        initialises the network), ``device="cpu"``.

    Attributes
    ----------
    module_ : GlimpseAttentionModule
        The trained network.
    history_ : dict
        The :func:`mmalign.nn.train.fit` history (``train_loss``, ``val_metric``, ...).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> digits = load_digits()
    >>> images, labels = digits.images[:200] / 16.0, digits.target[:200]
    >>> ram = GlimpseAttention(image_size=(8, 8), n_glimpses=3, glimpse_size=4,
    ...                        train={"max_epochs": 2}).fit(images, labels)
    >>> ram.predict(images[:5]).shape
    (5,)
    >>> a = ram.align(images[0])        # side x: the 64 pixels, side y: the 3 glimpses
    >>> a.shape, a.extras["locations"].shape
    ((64, 3), (3, 2))
    """

    TRAIN_DEFAULTS = _TRAINING

    def __init__(self, image_size: tuple[int, int] = (28, 28), n_classes: int = 10,
                 in_channels: int = 1, n_glimpses: int = 6, glimpse_size: int = 8,
                 n_scales: int = 1, glimpse_hidden: int = 128, location_hidden: int = 128,
                 core_hidden: int = 256, core: str = "rnn", location_std: float = 0.15,
                 entropy_weight: float = 0.0, first_glimpse: str = "centre", n_rollouts: int = 1,
                 reinforce_to_core: bool = False, location_lr_scale: float = 0.3,
                 policy: str = "learned", train=None) -> None:
        self.image_size = image_size
        self.n_classes = n_classes
        self.in_channels = in_channels
        self.n_glimpses = n_glimpses
        self.glimpse_size = glimpse_size
        self.n_scales = n_scales
        self.glimpse_hidden = glimpse_hidden
        self.location_hidden = location_hidden
        self.core_hidden = core_hidden
        self.core = core
        self.location_std = location_std
        self.entropy_weight = entropy_weight
        self.first_glimpse = first_glimpse
        self.n_rollouts = n_rollouts
        self.reinforce_to_core = reinforce_to_core
        self.location_lr_scale = location_lr_scale
        self.policy = policy
        self.train = train

    # ---------------------------------------------------------------- estimator hooks
    _NETWORK = ("n_classes", "in_channels", "n_glimpses", "glimpse_size", "n_scales",
                "glimpse_hidden", "location_hidden", "core_hidden", "core", "location_std",
                "entropy_weight", "first_glimpse", "reinforce_to_core", "policy")

    def _check_params(self) -> None:
        _check_network_args(**{name: getattr(self, name) for name in self._NETWORK})
        self._image_size()
        check_int(self.n_rollouts, "n_rollouts", 1)
        check_float(self.location_lr_scale, "location_lr_scale", 0.0, low_open=True)

    def _image_size(self) -> tuple[int, int]:
        size = self.image_size
        try:
            ok = len(size) == 2 and all(isinstance(s, (int, np.integer))
                                        and not isinstance(s, (bool, np.bool_)) and s >= 1
                                        for s in size)
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"image_size must be (H, W) with positive integer sizes, got {size!r}")
        return int(size[0]), int(size[1])

    def _make_module(self) -> GlimpseAttentionModule:
        return GlimpseAttentionModule(**{name: getattr(self, name) for name in self._NETWORK})

    # ---------------------------------------------------------------- inputs
    def _float(self, images: torch.Tensor, name: str) -> torch.Tensor:
        dtype, device = self._module_dtype_device()
        return as_float(images, dtype, name).to(device)

    def _images(self, images: Any, name: str) -> torch.Tensor:
        return self._float(image_batch(images, name, int(self.in_channels), self._image_size()), name)

    def _dataset(self, X: Any, Y: Any, names: tuple[str, str] = ("X", "Y")
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        return labelled_images(self._images(X, names[0]), Y, int(self.n_classes), names[1])

    # --------------------------------------------------------------- training
    def fit(self, X: Any, Y: Any = None, *, validation: tuple | None = None,
            regenerate: Any = None) -> "GlimpseAttention":
        """Train on labelled images with the hybrid loss
        (:meth:`GlimpseAttentionModule.loss`), ``n_rollouts`` sampled glimpse sequences
        per image. Calling ``fit`` again continues from the current weights
        (``sklearn.base.clone`` gives a fresh copy).

        Parameters
        ----------
        X : array-like [shape=(n, C, H, W) or (n, H, W)]
            Training images of ``image_size``.
        Y : array-like of int [shape=(n,)]
            Their labels, in ``[0, n_classes)``.
        validation : (X_val, Y_val) or None
            Validation images and labels: their error (policy mean, ``M=1``) is the
            validation metric (early stopping with ``train.patience``, best weights
            restored).
        regenerate : callable(epoch) -> (images, labels) or None
            Fresh training images each epoch after the first (e.g. newly translated
            digits).

        Returns
        -------
        self
        """
        self._check_params()
        self.train_config()
        data = self._dataset(X, Y)
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be a pair (X_val, Y_val) of images and labels, "
                                 f"got {type(validation).__name__}")
            val = self._dataset(validation[0], validation[1], ("validation[0]", "validation[1]"))
        module = self._ensure_module()
        rollouts = int(self.n_rollouts)

        def loss_fn(model, batch):
            # forward through the (possibly DDP-wrapped) module, the loss on the module itself
            x, y = batch[0], batch[1]
            if rollouts > 1:                 # several glimpse sequences per image
                x = x.repeat(rollouts, *([1] * (x.ndim - 1)))
                y = y.repeat(rollouts)
            return self.module_.loss_from_outputs(*model(x, sample=True), y)

        def error(model, batch):
            logits, _ = model(batch[0], sample=False)
            return float((logits.argmax(1) != batch[1]).float().mean())

        groups = None
        scale = float(self.location_lr_scale)
        if scale != 1.0:
            groups = [{"params": list(module.location_net.parameters()), "lr_scale": scale}]
        fit_classifier(self, loss_fn, error, data, validation=val, regenerate=regenerate,
                       make_dataset=self._dataset, param_groups=groups)
        return self

    # ------------------------------------------------------------ task outputs
    def predict_proba(self, images: Any, *, n_samples: int = 1, batch_size: int = 512,
                      seed: int | None = 0) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``.

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)]
        n_samples : int
            ``M``: with ``M = 1`` the policy mean is followed from the image
            centre (deterministic); with ``M > 1`` ``M`` glimpse sequences are
            sampled from the policy and their class probabilities averaged
            (Mnih et al.'s test-time Monte-Carlo sampling).
        batch_size : int
            Images per forward pass.
        seed : int or None
            Seeds the sampling for ``M > 1`` and the random policy's glimpses (a local
            generator state; the global RNG state is restored).
        """
        self._check_fitted()
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)) \
                or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        batch_size = check_int(batch_size, "batch_size", 1)
        x = self._images(images, "images")
        module = self.module_
        was = module.training
        module.eval()
        devices = [x.device] if x.device.type == "cuda" else []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                if seed is not None:
                    torch.manual_seed(int(seed))
                out = []
                for i in range(0, x.shape[0], batch_size):
                    xb = x[i:i + batch_size]
                    if n_samples == 1:
                        out.append(torch.softmax(module(xb, sample=False)[0], 1))
                    else:
                        out.append(torch.stack([torch.softmax(module(xb, sample=True)[0], 1)
                                                for _ in range(n_samples)]).mean(0))
            return torch.cat(out).double().cpu().numpy()
        finally:
            module.train(was)

    def predict(self, images: Any, *, n_samples: int = 1, seed: int | None = 0) -> np.ndarray:
        """Predicted class per image ``(n,)``; ``n_samples`` as in :meth:`predict_proba`."""
        return self.predict_proba(images, n_samples=n_samples, seed=seed).argmax(1)

    # -------------------------------------------------------------- alignment
    def align(self, image: Any, y: Any = None, *, sample: bool = False) -> Alignment:
        """The glimpse track of one image as an :class:`~mmalign.alignment.Alignment`.

        Side x is the image, its pixels in row-major order; side y the glimpse
        sequence: the shape is ``(H * W, n_glimpses)``. The hard path pairs each
        glimpse ``t`` (in order) with the pixel ``i`` under its centre: rows
        ``(i, t)``. ``extras``: ``"locations"`` ``(n_glimpses, 2)`` in ``[-1, 1]``,
        ``"centres_px"`` ``(n_glimpses, 2)`` as ``(x, y)`` pixel coordinates,
        ``"patch_sizes_px"`` (side of each scale's patch), ``"image_size"``,
        ``"predicted_class"``.

        Parameters
        ----------
        image : array-like [shape=(C, H, W) or (H, W)]
            One image of ``image_size``.
        y : None
            Side y is the model's own glimpse sequence, not an input: a second
            argument is refused (TypeError).
        sample : bool
            Sample the policy (torch's global random state) instead of following its
            mean. With ``policy="random"`` the glimpses after the first are random
            either way.

        Returns
        -------
        Alignment
        """
        _refuse_second(y, "y", "align")
        self._check_fitted()
        check_bool(sample, "sample")
        size = self._image_size()
        x = self._float(one_image(image, "image", int(self.in_channels), size), "image")
        return self._alignments(x, sample)[0]

    def align_batch(self, images: Any, Y: Any = None, *, sample: bool = False) -> list[Alignment]:
        """:meth:`align` of every image of a batch, computed in one pass.

        Equal to :meth:`align` image by image up to float rounding (the network sees
        the batch at once), where the glimpses are not sampled (``sample=False``,
        ``policy="learned"``).

        Parameters
        ----------
        images : array-like [shape=(n, C, H, W) or (n, H, W)] or list of images
            A batch, or a list of single images ``(C, H, W)`` / ``(H, W)``.
        Y : None
            Refused, as ``y`` of :meth:`align`.
        sample : bool
            As in :meth:`align`.

        Returns
        -------
        list of Alignment
        """
        _refuse_second(Y, "Y", "align_batch")
        self._check_fitted()
        check_bool(sample, "sample")
        size = self._image_size()
        x = torch.cat(image_list(images, "images", int(self.in_channels), size))
        return self._alignments(self._float(x, "images"), sample)

    def _alignments(self, x: torch.Tensor, sample: bool) -> list[Alignment]:
        module = self.module_
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                logits, info = module(x, sample=sample)
        finally:
            module.train(was)
        h, w = self._image_size()
        locs = info["locations"].double().cpu().numpy()
        sizes = [float(self.glimpse_size * 2.0 ** k) for k in range(int(self.n_scales))]
        out = []
        for b in range(x.shape[0]):
            cx = ((locs[b, :, 0] + 1) * w - 1) / 2
            cy = ((locs[b, :, 1] + 1) * h - 1) / 2
            col = np.clip(np.round(cx), 0, w - 1).astype(np.int64)
            row = np.clip(np.round(cy), 0, h - 1).astype(np.int64)
            path = np.stack([row * w + col, np.arange(len(col))], axis=1)
            extras = {"locations": locs[b], "centres_px": np.stack([cx, cy], 1),
                      "patch_sizes_px": sizes, "image_size": (h, w),
                      "predicted_class": int(logits[b].argmax())}
            out.append(Alignment(path=path, shape=(h * w, int(self.n_glimpses)), monotonic=False,
                                 extras=extras))
        return out


def _refuse_second(value: Any, name: str, method: str) -> None:
    if value is not None:
        raise TypeError(f"GlimpseAttention.{method} takes images only: side y is the model's "
                        f"glimpse sequence, not an input; got a second argument {name}")
