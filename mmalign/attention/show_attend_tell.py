"""Show, attend and tell (Xu et al., ICML 2015): image captioning whose attention is an alignment.

A CNN encoder turns an image into an ``H × W`` grid of annotation vectors
``a_i`` (``L = H·W`` locations, row-major), an LSTM decoder writes the caption
one word at a time, and before each word it attends over the ``L``
locations. :class:`ShowAttendTell` learns the captioning task (``fit``),
captions greedily or with beam search (``caption``), and hands back the
per-word attention over the grid as an :class:`~mmalign.alignment.Alignment`
(``align(image, caption)`` for one image, ``align_batch`` for many): grid cells
on side x, caption words on side y, the order of ``align``'s arguments; each
word's weights are a distribution over the cells (``distribution_over="x"``).
The network is :class:`ShowAttendTellModule` (a plain ``torch.nn.Module``,
``module_`` after ``fit``).

Model
-----
- **Encoder**: a small CNN by default (:class:`SmallConvEncoder`, four conv +
  batch-norm + ReLU layers with an overall stride of 8: a ``64 × 64`` image
  gives an ``8 × 8`` grid of ``encoder_dim`` = 64 features), a torchvision
  backbone truncated at its last convolutional map (``encoder="resnet18"``, see :func:`torchvision_encoder`),
  or any ``nn.Module`` mapping ``(B, C, h, w)`` images to ``(B, D, H, W)``.
  With ``coordinates=True`` (default; **not** in the paper) 18 position
  features of each cell (:func:`cell_positions`: its normalised centre
  ``(x, y)``, ``align_corners=False`` — cell ``j`` of ``W`` at
  ``(2 j + 1) / W - 1`` — and their sines and cosines at 4 frequencies) are
  appended to its annotation, so that the decoder can tell *where* it looked
  and the attention can prefer places (captions whose word order follows
  positions, left to right). Annotations have ``D + 18`` features then.
- **Initial state**: ``h_0 = tanh(f_init,h(ā))``, ``c_0 = tanh(f_init,c(ā))``
  from the mean annotation ``ā``.
- **Attention** from the previous state: ``e_ti = f_att(a_i, h_{t-1})``
  (additive, :class:`~mmalign.nn.layers.AdditiveAttention`),
  ``α_t = softmax_i(e_t)``.
- **Context**: soft attention takes the expectation ``Σ_i α_ti a_i``; hard
  attention a sampled location ``a_{s_t}``, ``s_t ~ Categorical(α_t)``. The
  gate ``β_t = σ(f_β(h_{t-1}))`` scales it: ``ẑ_t = β_t · context``.
- **Decoder**: ``h_t, c_t = LSTM([E y_{t-1}; ẑ_t], (h_{t-1}, c_{t-1}))``.
- **Deep output**: ``p(y_t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z ẑ_t))``
  (the paper's eq. 7), dropout before ``L_o``.
- **Initialisation**: PyTorch defaults, except the attention's output vector
  ``v``, which starts at 0 so that the first attention maps are uniform (the
  context starts as the mean annotation). With a random ``v`` the maps start
  with arbitrary preferences and, in our runs, learning to attend took
  several times longer.

Training objective (per caption of ``C`` tokens including EOS)
---------------------------------------------------------------
- Soft: ``-log p(y | a) + alpha_c · Σ_i (1 - Σ_t α_ti)²`` — the doubly
  stochastic regulariser of the paper's eq. 14, target 1 per location, summed
  over the ``L`` locations and over the caption's steps ``t`` (EOS included).
  The paper's text asks for ``Σ_t α_ti ≈ τ``; because every row ``α_t`` sums
  to 1, the target only shifts the loss by a constant (its gradient through
  the softmax is the same for every ``τ``), and its minimiser is equal
  coverage ``C / L`` of every location. With captions much shorter than the
  number of cells (here a few words over 64 cells) that pulls the maps
  towards uniform, so the default is ``alpha_c=0`` (off); ``alpha_c=1`` is
  the paper's form. The loss is summed over the batch and divided by the
  number of predicted tokens. Soft attention applies the regulariser as
  written; hard attention applies it to its distributions ``α_t``.
- Hard (REINFORCE, the paper's eq. 12): for each image, with probability
  ``hard_mix`` (0.5 in the paper) the whole caption is decoded with the
  expected context (the soft model, trained by back-propagation); otherwise
  every step samples ``s_t ~ α_t`` and the loss adds
  ``-(R - b) Σ_t log α_{t, s_t} - entropy_weight · Σ_t H[α_t]``, where the
  reward ``R = log p(y | s, a)`` is the caption's log-likelihood under the
  sample (detached) and ``b`` a moving-average baseline,
  ``b ← baseline_decay · b + (1 - baseline_decay) · mean(R)`` after each
  mini-batch (initialised with the first mini-batch's mean). The
  log-likelihood of the sampled decoding trains the rest of the network.
- Hard attention from scratch needs a warm-up of the mixing
  (``hard_mix_warmup``, **not** in the paper; default 0: off). Xu et al.
  started from an ImageNet-pretrained VGG; with the small encoder trained from
  scratch and the constant 50 % mixing, hard attention did not learn to
  localise within a CPU budget. A cell sampled from a near-uniform map rarely
  lies on the named object (about 10 % of the time on the digit scenes), so
  on the sampled half of the captions the context mostly says nothing about
  the word and the decoder learns to caption without it, which also starves
  the expected-context half of the signal a soft model learns from;
  REINFORCE adds to that by rewarding the familiar background over the
  unfamiliar digit cells. With ``hard_mix_warmup = k`` the probability of the
  expected context starts at 1 and decays linearly to ``hard_mix`` over the
  first ``k`` epochs (:meth:`ShowAttendTell.hard_mix_at`, advanced after
  every mini-batch by ``fit``): the run starts as a soft model, whose
  gradients teach the encoder and the attention where the digits are, and
  samples more and more as the maps sharpen, so that sampled cells carry
  the word. On the benchmark's digit scenes (4,000 per epoch;
  ``benchmarks/show_attend_tell.py``) hard attention from scratch with the
  constant ``hard_mix=0.5`` kept near-uniform maps (normalised entropy >
  0.95; ``reinforce_weight`` 1, 0.1 or 0 alike), while with
  ``hard_mix_warmup=8`` it pointed at the right digit for 94 % of the words
  after 20 epochs (soft attention: 94 %), better than hard attention whose
  encoder starts from a trained soft model's CNN (87 %), e.g.
  ``ShowAttendTell(..., attention="hard", encoder=copy.deepcopy(soft_model.module_.cnn),
  encoder_dim=64)`` (a given module is trained further but not
  re-initialised). The warm-up must outlast the sharpening of the maps: over
  2 epochs pointing reached only 34 % after 12 epochs, over 4 epochs 79 %,
  over 8 epochs 90 % (measured while ``fit`` restarted Adam every epoch). Outside ``fit`` (e.g. calling :meth:`ShowAttendTellModule.loss` directly)
  the mixing is ``hard_mix``.
- At test time hard attention uses the expected context
  (``hard_inference="expected"``, the default: the model saw it on at least
  half of its training captions) or the most probable location (``"argmax"``). The
  attention returned by ``align`` is always the distribution ``α_t``.

Token ids
---------
Captions are 1-d integer ids in ``[0, vocab_size)`` **without** BOS / EOS;
ids 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>`` as in
:class:`mmalign.datasets.Vocabulary` and may not appear in captions. Row ``t``
of the network's attention (column ``t`` of an alignment's weights) is the step
that *predicts* word ``t`` (it attends from the state after word ``t - 1``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..alignment import Alignment
from ..nn.decoding import MAX_BEAM_SIZE, MAX_DECODE_LEN, Hypothesis, beam_search, greedy_decode
from ..nn.estimator import TorchAligner
from ..nn.layers import AdditiveAttention
from ..utils.tensors import as_float, as_tensor
from ..utils.token_ids import as_id_batch, infer_vocab_size, is_single_sequence, one_id_sequence
from ..utils.validation import check_bool, check_choice, check_float, check_int

__all__ = ["ShowAttendTell", "ShowAttendTellModule", "SmallConvEncoder", "torchvision_encoder", "cell_positions",
           "grid_cell_masks", "word_box_masks"]

_IGNORE = -100          # cross-entropy ignore index at padded target positions
_PAD, _BOS, _EOS = 0, 1, 2
_ATTENTIONS = ("soft", "hard")
_HARD_INFERENCE = ("expected", "argmax")
_N_FREQ = 4                      # frequencies of the cell position features
_POS_DIM = 2 + 4 * _N_FREQ       # x, y, and sin / cos of both at each frequency


# --------------------------------------------------------------------------- encoders
class SmallConvEncoder(nn.Module):
    """The default encoder: four conv + batch-norm + ReLU layers with an overall stride of 8.

    A 5×5 convolution with stride 2, then 3×3 convolutions, each of the
    middle two followed by a 2×2 max-pool: an ``h × w`` image gives an
    ``(h // 8) × (w // 8)`` grid (receptive field 39 pixels).

    Parameters
    ----------
    in_channels : int
    out_channels : int
        ``D``, the annotation size.
    width : int
        Channels of the first layer (doubled after each layer, capped at ``out_channels``).

    Examples
    --------
    >>> import torch
    >>> SmallConvEncoder(1, 64)(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 64, width: int = 16) -> None:
        super().__init__()
        c1, c2 = width, min(2 * width, out_channels)
        c3 = min(4 * width, out_channels)

        def block(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU()]

        self.net = nn.Sequential(*block(in_channels, c1, 5, 2), *block(c1, c2), nn.MaxPool2d(2),
                                 *block(c2, c3), nn.MaxPool2d(2), *block(c3, out_channels))
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


_HEAD_NAMES = ("avgpool", "fc", "classifier", "head", "heads", "dropout", "flatten")
_HEAD_TYPES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Linear, nn.Dropout, nn.Flatten)


def torchvision_encoder(name: str = "resnet18", weights: Any = None, *, in_channels: int = 3,
                        truncate_after: str | None = None) -> nn.Module:
    """A torchvision backbone truncated at its last convolutional feature map.

    Needs torchvision (``pip install 'mmalign[vision]'``); it is imported here
    only. With ``weights=None`` nothing is downloaded.

    Parameters
    ----------
    name : str
        Any model name of ``torchvision.models.get_model`` with a convolutional
        trunk: models with a ``features`` module (VGG, AlexNet, MobileNet,
        EfficientNet, DenseNet, ConvNeXt, ...) keep it; the others (ResNet,
        ResNeXt, Wide ResNet, RegNet) keep their children up to the global
        pooling / classifier.
    weights : None, str or torchvision weights enum
        Passed to ``get_model`` (``None``: random initialisation, offline).
    in_channels : int
        Image channels; for anything but 3 the first convolution is replaced
        by one with ``in_channels`` inputs (pretrained weights, if any, are
        averaged over RGB and scaled by ``3 / in_channels``).
    truncate_after : str or None
        Name of the last child module to keep (e.g. ``"layer3"`` for a
        ResNet: an 8× finer grid than ``"layer4"``, stride 16); default: the
        last convolutional stage.

    Returns
    -------
    encoder : torch.nn.Module
        Maps ``(B, in_channels, h, w)`` to ``(B, D, H, W)``.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``truncate_after``.
    ImportError
        Without torchvision.

    Examples
    --------
    >>> import torch
    >>> enc = torchvision_encoder("resnet18", weights=None, in_channels=1)
    >>> enc(torch.zeros(1, 1, 64, 64)).shape
    torch.Size([1, 512, 2, 2])
    """
    try:
        import torchvision
    except ImportError as err:  # pragma: no cover - exercised only without torchvision
        raise ImportError("torchvision_encoder needs torchvision: pip install 'mmalign[vision]'") from err
    if not isinstance(name, str):
        raise ValueError(f"name must be a torchvision model name (str), got {name!r}")
    in_channels = check_int(in_channels, "in_channels", 1)
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except (ValueError, KeyError) as err:
        raise ValueError(f"name: unknown torchvision model {name!r} ({err})") from None
    if isinstance(getattr(model, "features", None), nn.Module):
        children = list(model.features.named_children())
    else:
        children = list(model.named_children())
        while children and (children[-1][0] in _HEAD_NAMES or isinstance(children[-1][1], _HEAD_TYPES)):
            children.pop()
    if truncate_after is not None:
        names = [n for n, _ in children]
        if truncate_after not in names:
            raise ValueError(f"truncate_after must name one of the trunk's children {names}, "
                             f"got {truncate_after!r}")
        children = children[:names.index(truncate_after) + 1]
    if not children:
        raise ValueError(f"name: {name!r} has no convolutional trunk to truncate")
    trunk = nn.Sequential(OrderedDict(children))
    if in_channels != 3:
        first = next((m for m in trunk.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ValueError(f"name: {name!r} has no Conv2d to adapt to in_channels={in_channels}")
        new = nn.Conv2d(in_channels, first.out_channels, first.kernel_size, first.stride, first.padding,
                        first.dilation, 1, first.bias is not None,
                        first.padding_mode)
        if weights is not None:
            with torch.no_grad():
                w = first.weight.mean(1, keepdim=True) * (3.0 / in_channels)
                new.weight.copy_(w.repeat(1, in_channels, 1, 1))
                if first.bias is not None:
                    new.bias.copy_(first.bias)
        _replace_module(trunk, first, new)
    return trunk


def _replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in root.modules():
        for child_name, child in parent.named_children():
            if child is old:
                setattr(parent, child_name, new)
                return


def cell_positions(grid_shape: tuple[int, int], *, device: Any = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Position features of the cells of an ``H × W`` grid, row-major.

    For the normalised centre ``(x, y)`` of each cell (``align_corners=False``:
    cell ``j`` of ``W`` at ``x = (2 j + 1) / W - 1``): ``x, y`` and
    ``sin(π k x), cos(π k x), sin(π k y), cos(π k y)`` for ``k = 1 … 4``.

    Returns
    -------
    features : torch.Tensor [shape=(H * W, 18)]

    Examples
    --------
    >>> cell_positions((2, 2))[:, :2]
    tensor([[-0.5000, -0.5000],
            [ 0.5000, -0.5000],
            [-0.5000,  0.5000],
            [ 0.5000,  0.5000]])
    """
    H, W = (int(v) for v in grid_shape)
    ys = (2 * torch.arange(H, device=device, dtype=dtype) + 1) / H - 1
    xs = (2 * torch.arange(W, device=device, dtype=dtype) + 1) / W - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    xy = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)                 # (L, 2)
    k = torch.arange(1, _N_FREQ + 1, device=device, dtype=dtype) * math.pi
    ang = xy[:, :, None] * k                                                # (L, 2, K)
    return torch.cat([xy, torch.sin(ang).flatten(1), torch.cos(ang).flatten(1)], -1)


def grid_cell_masks(boxes: Any, grid_shape: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Which grid cells overlap each box: the gold regions of the cells (side x) of ``align``.

    Cell ``(r, c)`` of an ``H × W`` grid over an ``h × w`` image covers pixels
    ``[c w / W, (c + 1) w / W) × [r h / H, (r + 1) h / H)``; a cell counts when
    it overlaps the box with positive area.

    Parameters
    ----------
    boxes : array-like [shape=(n, 4)]
        ``(x0, y0, x1, y1)`` in pixels, edges at pixel boundaries (the
        convention of :func:`mmalign.datasets.digit_scenes.digit_scenes`);
        a row of NaN gives an empty mask.
    grid_shape : (H, W)
    image_size : (h, w)

    Returns
    -------
    masks : np.ndarray [bool, shape=(n, H * W)]
        Row-major over the grid, like the cells (side x, rows) of ``ShowAttendTell.align``.

    Examples
    --------
    >>> grid_cell_masks([[0, 0, 9, 4]], (2, 2), (16, 16)).astype(int)
    array([[1, 1, 0, 0]])
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4), got {b.shape}")
    H, W = (check_int(v, "grid_shape", 1) for v in grid_shape)
    h, w = (check_float(v, "image_size", 0.0, low_open=True) for v in image_size)
    xs = np.arange(W + 1) * (w / W)
    ys = np.arange(H + 1) * (h / H)
    with np.errstate(invalid="ignore"):
        col = (xs[None, :-1] < b[:, 2:3]) & (xs[None, 1:] > b[:, 0:1])       # (n, W)
        row = (ys[None, :-1] < b[:, 3:4]) & (ys[None, 1:] > b[:, 1:2])       # (n, H)
    return (row[:, :, None] & col[:, None, :]).reshape(len(b), H * W)


# --------------------------------------------------------------------------- scoring helper

def word_box_masks(alignments: Any, word_boxes: Any) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-word attention and the grid cells of each word's box, for words that have one.

    Parameters
    ----------
    alignments : list of Alignment
        One per image, from :meth:`ShowAttendTell.align` / :meth:`ShowAttendTell.align_batch`:
        ``(H * W, T)`` weights, grid cells on side x and words on side y, with
        ``grid_shape`` and ``image_size`` in ``extras``. (An alignment that records
        ``distribution_over="y"`` has its words on side x and is read that way.)
    word_boxes : list of list of (array-like of shape (4,) or None)
        Per image, the ``(x0, y0, x1, y1)`` box of each word's region, None for
        words without one (as :func:`mmalign.datasets.digit_scenes` records).

    Returns
    -------
    weights : np.ndarray [shape=(n_words, H * W)]
        One row per word with a box: its attention over the grid cells.
    masks : np.ndarray [bool, shape=(n_words, H * W)]
        Inputs of :func:`mmalign.metrics.pointing_accuracy` and
        :func:`mmalign.metrics.attention_mass_inside`.

    Examples
    --------
    >>> from mmalign.alignment import Alignment
    >>> w = np.array([[0.7, 0.25], [0.1, 0.25], [0.1, 0.25], [0.1, 0.25]])   # 4 cells x 2 words
    >>> al = Alignment(weights=w, distribution_over="x", extras={"grid_shape": (2, 2), "image_size": (16, 16)})
    >>> w, m = word_box_masks([al], [[np.array([0, 0, 8, 8]), None]])
    >>> w.tolist(), m.astype(int).tolist()
    ([[0.7, 0.1, 0.1, 0.1]], [[1, 0, 0, 0]])
    """
    if len(alignments) != len(word_boxes):
        raise ValueError(f"alignments and word_boxes must have the same length, got "
                         f"{len(alignments)} and {len(word_boxes)}")
    weights, masks = [], []
    for k, (al, boxes) in enumerate(zip(alignments, word_boxes)):
        # one row per word: words are side y (ShowAttendTell's order) unless the alignment says
        # its rows are the distributions
        per_word = al.matrix() if al.distribution_over == "y" else al.matrix().T
        grid = al.extras["grid_shape"]
        n_cells = int(np.prod(grid))
        if per_word.shape[1] != n_cells:
            raise ValueError(f"alignments[{k}] has {per_word.shape[1]} cells per word, but its grid_shape "
                             f"{tuple(grid)} has {n_cells} (grid cells on side x, words on side y)")
        if len(boxes) != per_word.shape[0]:
            raise ValueError(f"word_boxes[{k}] has {len(boxes)} entries for the {per_word.shape[0]} words "
                             f"of alignments[{k}]")
        rows = [t for t, b in enumerate(boxes) if b is not None]
        weights.append(per_word[rows])
        masks.append(grid_cell_masks(np.array([boxes[t] for t in rows]).reshape(-1, 4),
                                     grid, al.extras["image_size"]))
    return np.concatenate(weights), np.concatenate(masks)


# --------------------------------------------------------------------------- network

def _hard_mix_at(hard_mix: float, warmup: float, epoch: float) -> float:
    """``hard_mix + (1 - hard_mix) · max(0, 1 - epoch / warmup)`` (``hard_mix`` for no warm-up)."""
    mix, warm = float(hard_mix), float(warmup)
    epoch = check_float(epoch, "epoch", 0.0)
    if warm <= 0.0:
        return mix
    return mix + (1.0 - mix) * max(0.0, 1.0 - epoch / warm)


def _as_images(images: Any, in_channels: int, name: str, dtype: torch.dtype,
               device: torch.device) -> tuple[torch.Tensor, bool]:
    """``(B, C, h, w)`` float tensor in ``dtype`` on ``device``, and whether one image was given
    (``(h, w)``, or ``(C, h, w)`` for ``C > 1``)."""
    images = as_tensor(images, name)
    C = int(in_channels)
    single = images.ndim == 2 or (images.ndim == 3 and C > 1)
    if images.ndim == 2:
        images = images[None, None]
    elif images.ndim == 3:
        images = images[None] if C > 1 else images[:, None]
    elif images.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, h, w), (B, h, w) or (h, w), got {tuple(images.shape)}")
    if images.shape[1] != C:
        raise ValueError(f"{name} must have {C} channel(s) (in_channels), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    if min(images.shape[2:]) < 8:
        raise ValueError(f"{name} must be at least 8 x 8 pixels, got {tuple(images.shape[2:])}")
    return as_float(images, dtype, name).to(device), single


def _encoder_and_dim(spec: Any, encoder_dim: int | None, in_channels: int) -> tuple[nn.Module, int]:
    """The encoder network ``spec`` names and its output channels ``D`` (probed when not given)."""
    C = int(in_channels)
    if spec is None or spec == "small":
        D = 64 if encoder_dim is None else int(encoder_dim)
        return SmallConvEncoder(C, D), D
    if not isinstance(spec, (str, nn.Module)):
        raise ValueError(f"encoder must be None, 'small', a torchvision model name or a torch.nn.Module, "
                         f"got {type(spec).__name__}")
    net = spec if isinstance(spec, nn.Module) else torchvision_encoder(spec, None, in_channels=C)
    if encoder_dim is not None:
        return net, int(encoder_dim)
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            p = next(net.parameters(), None)
            probe = torch.zeros(1, C, 64, 64, device=None if p is None else p.device,
                                dtype=torch.float32 if p is None else p.dtype)
            out = net(probe)
    except Exception as err:  # noqa: BLE001 - any failure means "tell me encoder_dim"
        raise ValueError(f"encoder: could not infer encoder_dim from a 64 x 64 probe ({err}); "
                         "pass encoder_dim") from None
    finally:
        net.train(was)
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise ValueError("encoder must map (B, C, h, w) images to (B, D, H, W) feature maps, got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    return net, int(out.shape[1])


class ShowAttendTellModule(nn.Module):
    """The network of :class:`ShowAttendTell`: CNN encoder, additive attention over its grid,
    β gate, LSTM decoder, deep output, and the training objective (see the module docstring).

    A plain ``torch.nn.Module`` that can sit inside other models;
    :class:`ShowAttendTell` builds it (seeded), trains it and reads its attention out as
    :class:`~mmalign.alignment.Alignment` objects.

    Parameters
    ----------
    vocab_size, encoder, encoder_dim, in_channels, attention, coordinates, embed_dim,
    hidden_dim, attention_dim, dropout, alpha_c, entropy_weight, reinforce_weight,
    baseline_decay, hard_mix, hard_mix_warmup, hard_inference
        As in :class:`ShowAttendTell` (checked there). The encoder (``cnn``) is built
        first: ``None`` / ``"small"``: :class:`SmallConvEncoder`; another string:
        :func:`torchvision_encoder`; a module: used as given. Its output channels
        ``D`` are ``encoder_dim``, or read from a ``64 x 64`` probe when None.

    Attributes
    ----------
    cnn : torch.nn.Module
        The encoder.
    annotation_dim : int
        ``D`` plus 18 position features with ``coordinates``.
    baseline_, baseline_set_ : torch.Tensor (buffers)
        REINFORCE baseline (hard attention) and whether it was initialised.

    Examples
    --------
    >>> import torch
    >>> net = ShowAttendTellModule(8, embed_dim=8, hidden_dim=16, attention_dim=8).eval()
    >>> logits, alphas = net(torch.rand(2, 1, 32, 32), torch.tensor([[1, 4, 5], [1, 6, 0]]))
    >>> tuple(logits.shape), tuple(alphas.shape)      # 32 x 32 images: a 4 x 4 grid
    ((2, 3, 8), (2, 3, 16))
    """

    def __init__(self, vocab_size: int, encoder: Any = None, encoder_dim: int | None = None,
                 in_channels: int = 1, attention: str = "soft", coordinates: bool = True,
                 embed_dim: int = 64, hidden_dim: int = 128, attention_dim: int = 64,
                 dropout: float = 0.0, alpha_c: float = 0.0, entropy_weight: float = 0.01,
                 reinforce_weight: float = 1.0, baseline_decay: float = 0.9, hard_mix: float = 0.5,
                 hard_mix_warmup: float = 0.0, hard_inference: str = "expected") -> None:
        super().__init__()
        check_choice(attention, "attention", _ATTENTIONS)
        check_choice(hard_inference, "hard_inference", _HARD_INFERENCE)
        self.in_channels = int(in_channels)
        self.attention = attention
        self.coordinates = bool(coordinates)
        self.alpha_c = float(alpha_c)
        self.entropy_weight = float(entropy_weight)
        self.reinforce_weight = float(reinforce_weight)
        self.baseline_decay = float(baseline_decay)
        self.hard_mix = float(hard_mix)
        self.hard_mix_warmup = float(hard_mix_warmup)
        self.hard_inference = hard_inference
        E, H, A, V = int(embed_dim), int(hidden_dim), int(attention_dim), int(vocab_size)
        cnn, D = _encoder_and_dim(encoder, encoder_dim, in_channels)
        self.cnn = cnn
        self.annotation_dim = Da = D + (_POS_DIM if self.coordinates else 0)
        self.embed = nn.Embedding(V, E, padding_idx=_PAD)
        self.init_h = nn.Linear(Da, H)
        self.init_c = nn.Linear(Da, H)
        self.attend = AdditiveAttention(query_dim=H, key_dim=Da, hidden_dim=A)
        nn.init.zeros_(self.attend.v)       # uniform attention at the start: α_0 is the mean
        self.f_beta = nn.Linear(H, 1)
        self.lstm = nn.LSTMCell(E + Da, H)
        self.out_h = nn.Linear(H, E)
        self.out_z = nn.Linear(Da, E)
        self.out = nn.Linear(E, V)
        self.drop = nn.Dropout(float(dropout))
        self.register_buffer("baseline_", torch.zeros((), dtype=torch.float32))
        self.register_buffer("baseline_set_", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------ network
    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Annotation vectors of a batch of images.

        Parameters
        ----------
        images : torch.Tensor [shape=(B, C, h, w)]

        Returns
        -------
        annotations : torch.Tensor [shape=(B, L, D')]
            ``L = H·W`` grid cells in row-major order; ``D' = D + 18`` with
            ``coordinates`` (the :func:`cell_positions` features last).
        grid_shape : (H, W)
        """
        feats = self.cnn(images)
        if not isinstance(feats, torch.Tensor) or feats.ndim != 4:
            raise ValueError("encoder must return a (B, D, H, W) feature map, got "
                             f"{getattr(feats, 'shape', type(feats).__name__)}")
        B, D, H, W = feats.shape
        ann = feats.flatten(2).transpose(1, 2)
        if self.coordinates:
            pos = cell_positions((H, W), device=feats.device, dtype=feats.dtype)
            ann = torch.cat([ann, pos.expand(B, -1, -1)], -1)
        if ann.shape[-1] != self.annotation_dim:
            raise ValueError(f"encoder returned {D} channels but the model expects encoder_dim = "
                             f"{self.annotation_dim - (_POS_DIM if self.coordinates else 0)}")
        return ann, (int(H), int(W))

    def _init_state(self, ann: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = ann.mean(1)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def _step(self, prev: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], ann: torch.Tensor,
              keys: torch.Tensor, mode: str, mix: torch.Tensor | None = None) -> dict:
        """One decoder step from the previous token ids ``prev (B,)``.

        ``mode``: "expected", "argmax" or "sample" (with ``mix`` (B,) bool: use
        the expected context for those rows).
        """
        h, c = state
        expected, alpha = self.attend(h, ann, projected_keys=keys)
        out: dict = {"alpha": alpha}
        if mode == "expected":
            z = expected
        else:
            if mode == "argmax":
                idx = alpha.argmax(-1)
            else:
                idx = torch.multinomial(alpha.detach(), 1).squeeze(1)
                out["log_prob"] = torch.log(alpha.gather(1, idx[:, None]).squeeze(1).clamp_min(1e-30))
                out["entropy"] = -(alpha * torch.log(alpha.clamp_min(1e-30))).sum(-1)
            out["index"] = idx
            z = ann[torch.arange(ann.shape[0], device=ann.device), idx]
            if mix is not None:
                z = torch.where(mix[:, None], expected, z)
        beta = torch.sigmoid(self.f_beta(h))
        z = beta * z
        emb = self.embed(prev)
        h, c = self.lstm(torch.cat([emb, z], -1), (h, c))
        out["logits"] = self.out(self.drop(emb + self.out_h(h) + self.out_z(z)))
        out["beta"] = beta.squeeze(-1)
        out["state"] = (h, c)
        return out

    def hard_mix_at(self, epoch: float) -> float:
        """Probability of the expected context for a hard-attention training caption at ``epoch``
        (:meth:`ShowAttendTell.hard_mix_at`)."""
        return _hard_mix_at(self.hard_mix, self.hard_mix_warmup, epoch)

    def _current_hard_mix(self) -> float:
        """``hard_mix_at`` the training progress of ``fit`` (``hard_mix`` outside ``fit``)."""
        progress = self.__dict__.get("_progress")
        if progress is None:
            return float(self.hard_mix)
        epoch, seen, n = progress
        return self.hard_mix_at(epoch + seen / max(n, 1))

    def _count_training_rows(self, rows: int) -> None:
        """Advance ``fit``'s progress by one mini-batch of ``rows`` (times the DDP world size)."""
        progress = self.__dict__.get("_progress")
        if progress is None:
            return
        world = 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world = torch.distributed.get_world_size()
        progress[1] += int(rows) * world

    def _inference_mode(self) -> str:
        return "expected" if self.attention == "soft" else str(self.hard_inference)

    def _decode(self, images: torch.Tensor, captions_in: torch.Tensor, lengths: torch.Tensor | None,
                mode: str, mix: torch.Tensor | None = None) -> dict:
        """Teacher-forced decoding; every output is (B, T, ...) with rows past ``lengths`` zeroed."""
        ann, grid = self.encode(images)
        keys = self.attend.project_keys(ann)
        state = self._init_state(ann)
        T = captions_in.shape[1]
        steps = []
        for t in range(T):
            o = self._step(captions_in[:, t], state, ann, keys, mode, mix)
            state = o["state"]
            steps.append(o)
        info = {k: torch.stack([o[k] for o in steps], 1) for k in steps[0] if k != "state"}
        if lengths is not None:
            valid = torch.arange(T, device=captions_in.device)[None, :] < lengths.to(captions_in.device)[:, None]
            info["alpha"] = info["alpha"] * valid[..., None]
            info["valid"] = valid
        info["grid_shape"] = grid
        return info

    def forward(self, images: torch.Tensor, captions_in: torch.Tensor,
                lengths: torch.Tensor | None = None, *,
                return_info: bool = False) -> tuple[torch.Tensor, torch.Tensor] | dict:
        """Teacher-forced logits and attention of a batch.

        In training mode hard attention samples its locations (and mixes in
        the expected context with probability ``hard_mix`` per image); in eval
        mode it uses ``hard_inference``. Soft attention always takes the
        expected context.

        Parameters
        ----------
        images : torch.Tensor [shape=(B, C, h, w)]
        captions_in : torch.LongTensor [shape=(B, T)]
            Decoder inputs: BOS (1), then the caption (padded).
        lengths : torch.LongTensor [shape=(B,)] or None
            Valid decoder steps per caption (caption length + 1); default all ``T``.
        return_info : bool
            Return the whole decoding record instead (what
            :meth:`loss_from_outputs` needs): a dict with ``"logits"``,
            ``"alpha"``, ``"beta"``, ``"grid_shape"``, ``"valid"`` (with
            ``lengths``), ``"mix"`` (hard training: the rows decoded with the
            expected context, else None) and, when locations were sampled or
            taken by argmax, ``"index"`` (and ``"log_prob"``, ``"entropy"``
            when sampled), each ``(B, T)``.

        Returns
        -------
        logits : torch.Tensor [shape=(B, T, vocab_size)]
            ``logits[:, t]`` predicts the token after ``captions_in[:, t]``.
        alphas : torch.Tensor [shape=(B, T, L)]
            Attention over the ``L = H·W`` grid cells (row-major); each valid
            row sums to 1, rows past ``lengths`` are 0 (the network's order;
            :meth:`ShowAttendTell.align` returns it transposed, cells on side x).
        """
        p = self.out.weight
        images, _ = _as_images(images, self.in_channels, "images", p.dtype, p.device)
        captions_in = torch.as_tensor(captions_in, device=images.device).long()
        if captions_in.ndim != 2 or captions_in.shape[0] != images.shape[0] or captions_in.shape[1] == 0:
            raise ValueError(f"captions_in must have shape ({images.shape[0]}, T >= 1), got {tuple(captions_in.shape)}")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=images.device).long().reshape(-1)
            if lengths.shape[0] != images.shape[0] or bool((lengths < 1).any()) \
                    or bool((lengths > captions_in.shape[1]).any()):
                raise ValueError(f"lengths must hold {images.shape[0]} values in [1, {captions_in.shape[1]}]")
        mode, mix = self._inference_mode(), None
        if self.training and self.attention == "hard":
            mode = "sample"
            mix = torch.rand(images.shape[0], device=images.device) < self._current_hard_mix()
            self._count_training_rows(images.shape[0])
        info = self._decode(images, captions_in, lengths, mode, mix)
        if return_info:
            info["mix"] = mix
            return info
        return info["logits"], info["alpha"]

    # ------------------------------------------------------------------ loss
    def loss(self, images: torch.Tensor, captions_in: torch.Tensor, targets: torch.Tensor,
             *, return_terms: bool = False) -> torch.Tensor | tuple[torch.Tensor, dict]:
        """Training loss of a batch (see the module docstring), per predicted token.

        Parameters
        ----------
        images : torch.Tensor [shape=(B, C, h, w)]
        captions_in : torch.LongTensor [shape=(B, T)]
            BOS + caption, padded.
        targets : torch.LongTensor [shape=(B, T)]
            Caption + EOS, ``-100`` past the end.
        return_terms : bool
            Also return the terms: ``nll``, ``doubly_stochastic``,
            ``reinforce``, ``entropy`` (sums over the batch), ``n_tokens``,
            ``reward`` (B,), ``baseline`` (the value used), ``sampled`` (B,) and
            the decoding ``info``.

        In hard mode and training mode, updates the moving-average baseline.
        ``loss(images, captions_in, targets)`` is
        ``loss_from_outputs(self(images, captions_in, lengths, return_info=True), targets)``
        with ``lengths`` the valid targets per row.
        """
        lengths = (targets != _IGNORE).sum(1)
        info = self.forward(images, captions_in, lengths, return_info=True)
        return self.loss_from_outputs(info, targets, return_terms=return_terms)

    def loss_from_outputs(self, info: dict, targets: torch.Tensor, *,
                          return_terms: bool = False) -> torch.Tensor | tuple[torch.Tensor, dict]:
        """:meth:`loss` from a forward pass already run with ``return_info=True``
        (e.g. through a ``DistributedDataParallel`` wrapper, whose gradient
        synchronisation needs the forward to go through it).

        Parameters
        ----------
        info : dict
            ``self(images, captions_in, lengths, return_info=True)`` with
            ``lengths = (targets != -100).sum(1)``.
        targets : torch.LongTensor [shape=(B, T)]
        return_terms : bool
            As in :meth:`loss`.

        Under DDP each process updates its own copy of the baseline from its
        own rewards; DDP's buffer broadcast then makes every process use
        process 0's value.
        """
        targets = targets.to(info["logits"].device)
        valid = targets != _IGNORE
        mix = info.get("mix")
        hard = mix is not None and "log_prob" in info
        logp = torch.log_softmax(info["logits"], -1)
        tok_lp = logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1) * valid
        n_tokens = valid.sum().clamp(min=1)
        nll = -tok_lp.sum()
        coverage = info["alpha"].sum(1)                                   # (B, L)
        ds = ((1.0 - coverage) ** 2).sum()
        total = nll + float(self.alpha_c) * ds
        terms: dict = {"nll": nll.detach(), "doubly_stochastic": ds.detach(), "n_tokens": n_tokens}
        if hard:
            sampled = ~mix
            reward = tok_lp.sum(1).detach()                               # log p(y | s, a)
            baseline = self.baseline_.detach().clone()
            if not bool(self.baseline_set_) and bool(sampled.any()):
                baseline = reward[sampled].mean().to(baseline.dtype)
            advantage = (reward - baseline) * sampled
            reinforce = -(advantage[:, None] * info["log_prob"] * valid).sum()
            entropy = (info["entropy"] * valid * sampled[:, None]).sum()
            total = total + float(self.reinforce_weight) * reinforce - float(self.entropy_weight) * entropy
            if bool(sampled.any()):
                with torch.no_grad():
                    mean_r = reward[sampled].mean().to(self.baseline_.dtype)
                    if bool(self.baseline_set_):
                        d = float(self.baseline_decay)
                        self.baseline_.mul_(d).add_((1.0 - d) * mean_r)
                    else:
                        self.baseline_.fill_(float(mean_r))
                        self.baseline_set_.fill_(True)
            terms.update(reinforce=reinforce.detach(), entropy=entropy.detach(), reward=reward,
                         baseline=baseline, sampled=sampled)
        loss = total / n_tokens
        if return_terms:
            terms["info"] = info
            return loss, terms
        return loss


# --------------------------------------------------------------------------- estimator
# the training defaults of ShowAttendTell (TorchEstimator.TRAIN_DEFAULTS): those of the flat
# arguments the model took before (20 epochs, batches of 32, Adam at 2e-3 with cosine annealing,
# gradients clipped at norm 5, seed 0, on the CPU)
_TRAINING = {"max_epochs": 20, "batch_size": 32, "lr": 2e-3, "scheduler": "cosine", "grad_clip": 5.0,
             "seed": 0, "device": "cpu"}


class ShowAttendTell(TorchAligner):
    """Show-attend-tell captioner (soft or hard attention) whose attention is an alignment.

    See the module docstring for the model, the objectives and the token-id
    conventions. The network is a :class:`ShowAttendTellModule`, built (seeded
    by the training seed) and trained by ``fit`` and held in ``module_``.

    Parameters
    ----------
    vocab_size : int > 3, or None
        Size of the caption vocabulary (ids ``0 .. vocab_size - 1``; 0, 1, 2
        are pad, BOS, EOS). None (default): one more than the largest id in
        the first ``fit``'s captions (at least 4; ``vocab_size_``).
    encoder : None, "small", str or torch.nn.Module
        ``None`` / ``"small"``: :class:`SmallConvEncoder`; another string: a
        torchvision model name for :func:`torchvision_encoder` (``weights=None``);
        a module: any ``(B, C, h, w) -> (B, D, H, W)`` network, used as given
        (trained in place, not re-initialised; :meth:`save` cannot store it).
    encoder_dim : int or None
        ``D``. For the small encoder its output channels (default 64); for
        other encoders inferred from a ``64 × 64`` probe when None (when ``fit``
        builds the network).
    in_channels : int
        Image channels.
    attention : {"soft", "hard"}
    coordinates : bool
        Append each cell's position features (:func:`cell_positions`) to its annotation.
    embed_dim, hidden_dim, attention_dim : int
        Word embedding, LSTM state and attention MLP sizes.
    dropout : float in [0, 1)
        Before the output layer.
    alpha_c : float >= 0
        Weight ``λ`` of the doubly stochastic regulariser (0: off; 1: the paper).
    entropy_weight : float >= 0
        Entropy bonus ``λ_e`` of hard attention.
    reinforce_weight : float >= 0
        Weight ``λ_r`` of the REINFORCE term of hard attention (the paper's eq. 12).
    baseline_decay : float in [0, 1)
        Moving-average decay of the REINFORCE baseline (0.9 in the paper).
    hard_mix : float in [0, 1]
        Probability, per training caption, of the expected context in hard mode.
    hard_mix_warmup : float >= 0
        Epochs over which that probability decays linearly from 1 to
        ``hard_mix`` at the start of ``fit`` (:meth:`hard_mix_at`); 0 (default):
        the paper's constant ``hard_mix``. Needed to train hard attention with
        an encoder trained from scratch (see the module docstring).
    hard_inference : {"expected", "argmax"}
        Context of hard attention at test time.
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.estimator.TorchEstimator`,
        :class:`~mmalign.nn.train.TrainConfig`: Adam, ``max_epochs``,
        ``batch_size``, ``lr``, ``scheduler`` (``"cosine"``: cosine annealing
        over ``max_epochs``, or None), ``grad_clip``, ``seed`` (the initial
        weights and training), ``device`` (where ``fit`` trains), ...). The
        defaults: ``max_epochs=20``, ``batch_size=32``, ``lr=2e-3``,
        ``scheduler="cosine"``, ``grad_clip=5.0``, ``seed=0``, ``device="cpu"``.
        ``4 * batch_size`` images are captioned per forward pass.

    Attributes
    ----------
    module_ : ShowAttendTellModule
        The network; its ``cnn`` is the encoder and ``baseline_`` the REINFORCE
        baseline (hard attention).
    vocab_size_ : int
        The vocabulary size the network was built with.
    history_ : dict
        The :func:`mmalign.nn.train.fit` history: ``train_loss`` and ``val_metric``
        (teacher-forced per-token error) per epoch, ``best_epoch``, ...; for hard
        attention also ``hard_mix``, the mixing probability at the start of each epoch.
    max_caption_len_ : int
        Longest training caption (sets the default decoding limit).
    annotation_dim_ : int
        Size of the annotation vectors (``D``, plus 18 with ``coordinates``).

    Examples
    --------
    >>> import torch
    >>> _ = torch.set_num_threads(1)
    >>> images = torch.rand(8, 1, 32, 32)
    >>> captions = [[4, 5], [6], [5, 4, 6], [7]] * 2
    >>> sat = ShowAttendTell(vocab_size=8, embed_dim=8, hidden_dim=16, attention_dim=8,
    ...                      train={"max_epochs": 1}).fit(images, captions)
    >>> logits, alphas = sat.module_(images, torch.tensor([[1, 4, 5]] * 8))
    >>> logits.shape, alphas.shape          # 32 x 32 images: a 4 x 4 grid
    (torch.Size([8, 3, 8]), torch.Size([8, 3, 16]))
    >>> al = sat.align(images[0, 0], [4, 5])   # grid cells on side x, words on side y
    >>> al.shape, al.distribution_over, al.extras["grid_shape"]
    ((16, 2), 'x', (4, 4))
    """

    TRAIN_DEFAULTS = _TRAINING

    def __init__(self, vocab_size: int | None = None, encoder: Any = None, encoder_dim: int | None = None,
                 in_channels: int = 1, attention: str = "soft", coordinates: bool = True,
                 embed_dim: int = 64, hidden_dim: int = 128, attention_dim: int = 64,
                 dropout: float = 0.0, alpha_c: float = 0.0, entropy_weight: float = 0.01,
                 reinforce_weight: float = 1.0, baseline_decay: float = 0.9, hard_mix: float = 0.5,
                 hard_mix_warmup: float = 0.0, hard_inference: str = "expected", train: Any = None) -> None:
        self.vocab_size = vocab_size
        self.encoder = encoder
        self.encoder_dim = encoder_dim
        self.in_channels = in_channels
        self.attention = attention
        self.coordinates = coordinates
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.attention_dim = attention_dim
        self.dropout = dropout
        self.alpha_c = alpha_c
        self.entropy_weight = entropy_weight
        self.reinforce_weight = reinforce_weight
        self.baseline_decay = baseline_decay
        self.hard_mix = hard_mix
        self.hard_mix_warmup = hard_mix_warmup
        self.hard_inference = hard_inference
        self.train = train

    # ------------------------------------------------------------------ estimator hooks
    def _check_params(self) -> None:
        if self.vocab_size is not None:
            check_int(self.vocab_size, "vocab_size", 4)
        check_int(self.in_channels, "in_channels", 1)
        check_choice(self.attention, "attention", _ATTENTIONS)
        check_choice(self.hard_inference, "hard_inference", _HARD_INFERENCE)
        check_bool(self.coordinates, "coordinates")
        for name in ("embed_dim", "hidden_dim", "attention_dim"):
            check_int(getattr(self, name), name, 1)
        if self.encoder_dim is not None:
            check_int(self.encoder_dim, "encoder_dim", 1)
        if not (self.encoder is None or isinstance(self.encoder, (str, nn.Module))):
            raise ValueError(f"encoder must be None, 'small', a torchvision model name or a torch.nn.Module, "
                             f"got {type(self.encoder).__name__}")
        check_float(self.dropout, "dropout", 0.0, 1.0)
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        check_float(self.alpha_c, "alpha_c", 0.0)
        check_float(self.entropy_weight, "entropy_weight", 0.0)
        check_float(self.reinforce_weight, "reinforce_weight", 0.0)
        check_float(self.baseline_decay, "baseline_decay", 0.0, 1.0)
        if self.baseline_decay >= 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {self.baseline_decay}")
        check_float(self.hard_mix, "hard_mix", 0.0, 1.0)
        check_float(self.hard_mix_warmup, "hard_mix_warmup", 0.0)

    def train_config(self):
        config = super().train_config()
        if config.scheduler not in (None, "cosine"):
            raise ValueError(f"train.scheduler must be 'cosine' or None for ShowAttendTell, "
                             f"got {config.scheduler!r}")
        return config

    def _vocab_size(self) -> int:
        """The fitted vocabulary size, else the hyper-parameter (files written before the size
        could be inferred hold only that)."""
        return int(getattr(self, "vocab_size_", None) or self.vocab_size)

    def _infer_vocab_size(self, captions: Any, lengths: Any) -> None:
        """Set ``vocab_size_``: as given, or one more than the largest caption id (at least 4);
        kept once the network exists (a second ``fit`` continues it)."""
        if getattr(self, "module_", None) is not None or self.vocab_size is not None:
            self.vocab_size_ = self._vocab_size()
            return
        self.vocab_size_ = infer_vocab_size(captions, lengths, "captions", minimum=4, pad_id=_PAD)

    def _make_module(self) -> ShowAttendTellModule:
        return ShowAttendTellModule(
            self._vocab_size(), encoder=self.encoder, encoder_dim=self.encoder_dim,
            in_channels=int(self.in_channels), attention=self.attention, coordinates=bool(self.coordinates),
            embed_dim=int(self.embed_dim), hidden_dim=int(self.hidden_dim), attention_dim=int(self.attention_dim),
            dropout=float(self.dropout), alpha_c=float(self.alpha_c), entropy_weight=float(self.entropy_weight),
            reinforce_weight=float(self.reinforce_weight), baseline_decay=float(self.baseline_decay),
            hard_mix=float(self.hard_mix), hard_mix_warmup=float(self.hard_mix_warmup),
            hard_inference=self.hard_inference)

    def _chunk(self) -> int:
        """Images per forward pass when captioning and scoring: four training batches."""
        return max(int(self.train_config().batch_size), 1) * 4

    def hard_mix_at(self, epoch: float) -> float:
        """Probability of the expected context for a hard-attention training caption at ``epoch``.

        ``hard_mix + (1 - hard_mix) · max(0, 1 - epoch / hard_mix_warmup)``:
        1 at the start of training, decaying linearly to ``hard_mix`` over the
        first ``hard_mix_warmup`` epochs (fractional: ``fit`` advances it
        after every mini-batch), then ``hard_mix``; always ``hard_mix`` when
        ``hard_mix_warmup`` is 0.

        Examples
        --------
        >>> sat = ShowAttendTell(8, attention="hard", hard_mix=0.5, hard_mix_warmup=4)
        >>> [sat.hard_mix_at(e) for e in (0, 2, 4, 10)]
        [1.0, 0.75, 0.5, 0.5]
        """
        return _hard_mix_at(self.hard_mix, self.hard_mix_warmup, epoch)

    # ------------------------------------------------------------------ inputs
    def _check_images(self, images: Any, name: str = "images") -> tuple[torch.Tensor, bool]:
        """``(B, C, h, w)`` float tensor on the network's device, and whether one image was given."""
        dtype, device = self._module_dtype_device()
        return _as_images(images, self.in_channels, name, dtype, device)

    def _one_image(self, image: Any, name: str) -> torch.Tensor:
        """One image, ``(h, w)`` (one channel) or ``(C, h, w)``, as a ``(1, C, h, w)`` batch."""
        t = as_tensor(image, name)
        C = int(self.in_channels)
        if t.ndim == 2 and C == 1:
            t = t[None]
        if t.ndim != 3 or t.shape[0] != C:
            shapes = "(h, w) or (1, h, w)" if C == 1 else f"({C}, h, w)"
            raise ValueError(f"{name} must be one image of shape {shapes}, got {tuple(t.shape)} "
                             "(align_batch aligns a batch of images)")
        return self._check_images(t[None], name)[0]

    def _image_batch(self, images: Any, name: str) -> torch.Tensor:
        """A batch of images, ``(B, C, h, w)`` (or ``(B, h, w)`` with one channel)."""
        t = as_tensor(images, name)
        C = int(self.in_channels)
        if not (t.ndim == 4 or (t.ndim == 3 and C == 1)):
            shapes = "(B, 1, h, w) or (B, h, w)" if C == 1 else f"(B, {C}, h, w)"
            raise ValueError(f"{name} must be a batch of images of shape {shapes}, got {tuple(t.shape)} "
                             "(align aligns one image)")
        return self._check_images(t, name)[0]

    def _captions(self, captions: Any, lengths: Any, name: str = "captions") -> tuple[torch.Tensor, torch.Tensor]:
        """``(captions_in (N, T+1), targets (N, T+1))``: BOS + y, and y + EOS (ignore index beyond)."""
        if captions is None:
            raise ValueError(f"{name} is required")
        tgt, lens = as_id_batch(captions, lengths, name, self._vocab_size(), reserved=(_PAD, _BOS, _EOS),
                                pad_id=_PAD)
        B, T = tgt.shape
        cap_in = torch.full((B, T + 1), _PAD, dtype=torch.long)
        cap_in[:, 0] = _BOS
        cap_in[:, 1:] = tgt
        targets = torch.full((B, T + 1), _IGNORE, dtype=torch.long)
        valid = torch.arange(T)[None, :] < lens[:, None]
        targets[:, :T] = torch.where(valid, tgt, torch.full_like(tgt, _IGNORE))
        targets[torch.arange(B), lens] = _EOS
        return cap_in, targets

    def _dataset(self, images: Any, captions: Any, lengths: Any = None, names: tuple[str, str] = ("images", "captions")
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, _ = self._check_images(images, names[0])
        if (isinstance(captions, (list, tuple)) and len(captions) > 0 and is_single_sequence(captions)
                and x.shape[0] == 1):
            captions = [captions]
        cap_in, targets = self._captions(captions, lengths, names[1])
        if cap_in.shape[0] != x.shape[0]:
            raise ValueError(f"{names[0]} and {names[1]} must hold the same number of items, "
                             f"got {x.shape[0]} and {cap_in.shape[0]}")
        return x.cpu(), cap_in, targets

    # ------------------------------------------------------------------ fit
    @staticmethod
    @torch.no_grad()
    def _token_error(m: ShowAttendTellModule, batch: tuple, step: int) -> float:
        """Teacher-forced per-token error of ``batch`` (the validation metric), ``step`` rows at a time."""
        images, cap_in, targets = batch
        errors, count = 0, 0
        for i in range(0, images.shape[0], step):
            tg = targets[i:i + step]
            valid = tg != _IGNORE
            T = int(valid.sum(1).max())
            info = m._decode(images[i:i + step], cap_in[i:i + step, :T], valid.sum(1), m._inference_mode())
            pred = info["logits"].argmax(-1)
            errors += int(((pred != tg[:, :T]) & valid[:, :T]).sum())
            count += int(valid.sum())
        return errors / max(count, 1)

    def fit(self, images: Any, captions: Any = None, *, validation: tuple | None = None, lengths: Any = None,
            regenerate: Callable[[int], tuple] | None = None) -> "ShowAttendTell":
        """Train on (image, caption) pairs with :func:`mmalign.nn.train.fit`.

        Builds the network (:class:`ShowAttendTellModule`, seeded by the
        training seed; a user-given encoder module is kept) on the first call,
        then trains with Adam for ``max_epochs``. A second ``fit`` continues
        from the current weights (``sklearn.base.clone`` gives an unfitted copy).

        Parameters
        ----------
        images : array-like [shape=(N, C, h, w) or (N, h, w)]
            ``X``.
        captions : list of 1-d int sequences, or int array [shape=(N, T)] with ``lengths``
            Token ids without BOS / EOS (ids >= 3) (``Y``).
        validation : (images, captions) or None
            Validation pairs: the teacher-forced per-token error is recorded
            each epoch and the weights of the best epoch are kept.
        lengths : int array [shape=(N,)] or None
            For padded-array captions.
        regenerate : callable(epoch) -> (images, captions), or None
            Fresh training pairs for each epoch after the first (e.g. new
            scenes from the training digits, ``seed=epoch``), in one
            :func:`mmalign.nn.train.fit` run (``regenerate``): Adam's state and
            the cosine schedule run on over the epochs.

        Returns
        -------
        self : ShowAttendTell
        """
        self._check_params()
        config = self.train_config()
        if captions is None:
            raise ValueError("captions is required: fit(images, captions)")
        if regenerate is not None and not callable(regenerate):
            raise ValueError("regenerate must be a callable epoch -> (images, captions)")
        self._infer_vocab_size(captions, lengths)
        data = self._dataset(images, captions, lengths)
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be a pair (images, captions)")
            val = self._dataset(validation[0], validation[1], None, ("validation[0]", "validation[1]"))
        if config.patience is not None and val is None:
            raise ValueError("train.patience: early stopping needs validation=(images, captions)")
        module = self._ensure_module()
        self.annotation_dim_ = int(module.annotation_dim)
        step = max(int(config.batch_size), 1) * 4
        metric = (lambda m, batch: self._token_error(self.module_, batch, step)) if val is not None else None

        def loss_fn(m: nn.Module, batch: tuple) -> torch.Tensor:
            images, cap_in, targets = batch
            lengths = (targets != _IGNORE).sum(1)
            T = int(lengths.max())
            # forward through the (possibly DDP-wrapped) network, loss on the bare module
            info = m(images, cap_in[:, :T], lengths, return_info=True)
            return self.module_.loss_from_outputs(info, targets[:, :T])

        max_len = int((data[2] != _IGNORE).sum(1).max()) - 1
        fresh = None
        if regenerate is not None:
            def fresh(epoch: int) -> tuple:
                nonlocal max_len
                new = regenerate(epoch)
                if not isinstance(new, (tuple, list)) or len(new) != 2:
                    raise ValueError("regenerate(epoch) must return (images, captions)")
                out = self._dataset(new[0], new[1], None, ("regenerated images", "regenerated captions"))
                max_len = max(max_len, int((out[2] != _IGNORE).sum(1).max()) - 1)
                module.__dict__["_progress"] = [epoch, 0, int(out[0].shape[0])]
                return out

        module.__dict__["_progress"] = [0, 0, int(data[0].shape[0])]
        try:
            self._fit_module(loss_fn, data, validation=val, val_metric=metric, regenerate=fresh)
        finally:
            module.__dict__.pop("_progress", None)
        if self.attention == "hard":
            self.history_["hard_mix"] = [self.hard_mix_at(e) for e in range(int(config.max_epochs))]
        self.max_caption_len_ = int(max_len)
        return self

    # ------------------------------------------------------------------ decoding
    def _default_max_len(self) -> int:
        return int(getattr(self, "max_caption_len_", 18)) + 2

    @staticmethod
    def _decoding_log_probs(logits: torch.Tensor) -> torch.Tensor:
        """Log-probabilities with the pad and BOS ids ruled out (never emitted)."""
        logp = torch.log_softmax(logits, -1)
        logp[..., _PAD] = -math.inf
        logp[..., _BOS] = -math.inf
        return logp

    def _decoder_step(self, ann: torch.Tensor, keys: torch.Tensor, mode: str,
                      expand: bool = False) -> Callable:
        """The decoding step (:mod:`mmalign.nn.decoding`) over encoded images.

        With ``expand``, one image (a batch of 1) serves every live hypothesis (beam search).
        """
        m = self.module_

        def step(prev: torch.Tensor, state: tuple) -> tuple[torch.Tensor, torch.Tensor, tuple]:
            a, k = ann, keys
            if expand:
                n = prev.shape[0]
                a, k = a.expand(n, -1, -1), k.expand(n, -1, -1)
            o = m._step(prev, state, a, k, mode)
            return self._decoding_log_probs(o["logits"]), o["alpha"], o["state"]
        return step

    @torch.no_grad()
    def _greedy(self, images: torch.Tensor, max_len: int) -> list[Hypothesis]:
        """Greedy decoding (:func:`~mmalign.nn.decoding.greedy_decode`) of a batch of images."""
        m = self.module_
        ann, _ = m.encode(images)
        keys = m.attend.project_keys(ann)
        return greedy_decode(self._decoder_step(ann, keys, m._inference_mode()), m._init_state(ann),
                             batch_size=images.shape[0], bos=_BOS, eos=_EOS, max_len=max_len,
                             device=images.device)

    @torch.no_grad()
    def _beam_search(self, images: torch.Tensor, beam_size: int, max_len: int,
                     length_penalty: float) -> list[Hypothesis]:
        """Beam search (:func:`~mmalign.nn.decoding.beam_search`), one image at a time."""
        m = self.module_
        ann_all, _ = m.encode(images)
        keys_all = m.attend.project_keys(ann_all)
        h_all, c_all = m._init_state(ann_all)
        mode = m._inference_mode()
        results = []
        for b in range(images.shape[0]):
            ann, keys = ann_all[b:b + 1], keys_all[b:b + 1]
            results.append(beam_search(
                self._decoder_step(ann, keys, mode, expand=True), (h_all[b:b + 1], c_all[b:b + 1]),
                n_keys=ann_all.shape[1], dtype=ann.dtype, device=images.device, bos=_BOS, eos=_EOS,
                beam_size=beam_size, max_len=max_len, length_penalty=length_penalty))
        return results

    def caption(self, images: Any, beam_size: int = 1, max_len: int | None = None, *,
                length_penalty: float = 0.0) -> Hypothesis | list[Hypothesis]:
        """Caption one image or a batch, with the attention of the kept hypothesis.

        Parameters
        ----------
        images : array-like [shape=(h, w), (C, h, w) for C > 1, or a batch (B, [C,] h, w)]
        beam_size : int in [1, 1024]
            1: greedy (batched); ``k > 1``: beam search (one image at a time).
        max_len : int in [1, 10000] or None
            Most decoding steps (EOS included); default longest training caption + 2.
        length_penalty : float >= 0
            Beam search ranks finished hypotheses by ``log_prob / n ** length_penalty``.

        Returns
        -------
        hypothesis : Hypothesis, or list of Hypothesis for a batch
            ``tokens`` (no BOS / EOS; the pad and BOS ids are never emitted), ``attention`` ``(len(tokens), L)``
            over the row-major grid (one row per word, the decoder's order; :meth:`align` gives it
            as an Alignment with the cells on side x), ``eos_attention``, ``log_prob``, ``score``,
            ``finished`` (see :class:`mmalign.nn.Hypothesis`).

        Examples
        --------
        >>> import torch
        >>> sat = ShowAttendTell(8, embed_dim=8, hidden_dim=8, attention_dim=8, train={"max_epochs": 1})
        >>> sat = sat.fit(torch.rand(4, 1, 16, 16), [[4], [5, 6], [7], [4, 4]])
        >>> hyp = sat.caption(torch.rand(16, 16), beam_size=2, max_len=3)
        >>> hyp.attention.shape[1], len(hyp.tokens) <= 3       # 16 x 16: a 2 x 2 grid
        (4, True)
        """
        self._check_fitted(fit_call="fit(images, captions)")
        beam_size = check_int(beam_size, "beam_size", 1, MAX_BEAM_SIZE)
        max_len = self._default_max_len() if max_len is None else check_int(max_len, "max_len", 1, MAX_DECODE_LEN)
        length_penalty = check_float(length_penalty, "length_penalty", 0.0)
        x, single = self._check_images(images)
        m = self.module_
        was = m.training
        m.eval()
        try:
            outs: list[Hypothesis] = []
            step = self._chunk()
            for i in range(0, x.shape[0], step):
                if beam_size == 1:
                    outs += self._greedy(x[i:i + step], max_len)
                else:
                    outs += self._beam_search(x[i:i + step], beam_size, max_len, length_penalty)
        finally:
            m.train(was)
        return outs[0] if single else outs

    # ------------------------------------------------------------------ alignment
    def _alignments(self, x: torch.Tensor, captions: Any, lengths: Any, beam_size: int,
                    max_len: int | None, names: tuple[str, str], labels: list[str]) -> list[Alignment]:
        """One Alignment per image of the batch ``x`` (``labels`` name them in messages)."""
        image_size = (int(x.shape[2]), int(x.shape[3]))
        m = self.module_
        was = m.training
        m.eval()
        try:
            with torch.no_grad():
                if captions is None:
                    hyps = self.caption(x, beam_size=beam_size, max_len=max_len)
                    grid = m.encode(x[:1])[1]
                    rows = []
                    for b, hyp in enumerate(hyps):
                        if len(hyp.tokens) == 0:
                            raise ValueError(f"the model decoded an empty caption for {labels[b]}: "
                                             "nothing to align")
                        cap_in = torch.tensor([[_BOS] + hyp.tokens], device=x.device)
                        betas = m._decode(x[b:b + 1], cap_in, None, m._inference_mode())["beta"]
                        rows.append((hyp.attention, hyp.tokens, betas[0, :len(hyp.tokens)].cpu().numpy(),
                                     hyp.eos_attention, {"log_prob": hyp.log_prob, "score": hyp.score,
                                                         "finished": hyp.finished}))
                else:
                    cap_in, targets = self._captions(captions, lengths, names[1])
                    if cap_in.shape[0] != x.shape[0]:
                        raise ValueError(f"{names[0]} and {names[1]} must hold the same number of items, "
                                         f"got {x.shape[0]} and {cap_in.shape[0]}")
                    valid = targets != _IGNORE
                    lens = valid.sum(1)
                    cap_in, targets, valid = cap_in.to(x.device), targets.to(x.device), valid.to(x.device)
                    info = m._decode(x, cap_in, lens, m._inference_mode())
                    grid = info["grid_shape"]
                    logp = torch.log_softmax(info["logits"], -1)
                    lp = (logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1) * valid).sum(1)
                    alpha = info["alpha"].double().cpu().numpy()
                    beta = info["beta"].double().cpu().numpy()
                    rows = []
                    for b in range(x.shape[0]):
                        n = int(lens[b]) - 1
                        rows.append((alpha[b, :n], cap_in[b, 1:n + 1].tolist(), beta[b, :n], alpha[b, n].copy(),
                                     {"log_prob": float(lp[b])}))
        finally:
            m.train(was)
        out = []
        for weights, tokens, betas, eos, more in rows:
            extras = {"grid_shape": tuple(grid), "image_size": image_size, "tokens": list(tokens),
                      "betas": np.asarray(betas, dtype=np.float64), "eos_weights": eos, **more}
            # the decoder's (n_words, H * W) rows as cells (side x) by words (side y)
            out.append(Alignment(weights=np.ascontiguousarray(np.asarray(weights).T), distribution_over="x",
                                 monotonic=False, extras=extras))
        return out

    def align(self, image: Any, caption: Any = None, *, beam_size: int = 1,
              max_len: int | None = None) -> Alignment:
        """One image's per-word attention over its grid as an :class:`~mmalign.alignment.Alignment`.

        With a caption, the teacher-forced attention of the model reading it;
        with ``caption=None`` the model **captions the image first**
        (:meth:`caption` with ``beam_size``) and returns the attention of its
        own words.

        Parameters
        ----------
        image : array-like [shape=(h, w) or (C, h, w)]
            One image (side x: its grid cells).
        caption : 1-d int sequence or None
            Token ids without BOS / EOS (side y: the words); None: the model's own caption.
        beam_size, max_len : int
            Decoding options when ``caption`` is None.

        Returns
        -------
        alignment : Alignment
            ``weights`` ``(H * W, n_words)``: the grid cells in row-major order
            (cell ``(r, c)`` is row ``r * W + c``) by the words; column ``t`` is
            the attention of the step that predicts word ``t``, summing to one
            over the cells (``distribution_over="x"``); ``monotonic=False``
            (``path()`` pairs each word with its most attended cell).
            ``extras``: ``"grid_shape"`` ``(H, W)``, ``"image_size"`` ``(h, w)``,
            ``"tokens"`` (word ids), ``"betas"`` (the gate per word),
            ``"eos_weights"`` (the EOS step's attention over the cells, None if
            decoding never emitted EOS), ``"log_prob"`` and, when decoding,
            ``"score"`` and ``"finished"``.

        Raises
        ------
        ValueError
            Bad images or ids, a batch (use :meth:`align_batch`), a decoded caption with no word.
        """
        self._check_fitted(fit_call="fit(images, captions)")
        x = self._one_image(image, "image")
        caption = None if caption is None else one_id_sequence(caption, "caption")
        return self._alignments(x, caption, None, beam_size, max_len, ("image", "caption"), ["image"])[0]

    def align_batch(self, images: Any, captions: Any = None, *, lengths: Any = None, beam_size: int = 1,
                    max_len: int | None = None) -> list[Alignment]:
        """:meth:`align` over a batch of images: one :class:`~mmalign.alignment.Alignment` per image.

        Equal to ``[align(image, caption) for image, caption in zip(images, captions)]``
        (to rounding: the images run in one batch).

        Parameters
        ----------
        images : array-like [shape=(B, C, h, w), or (B, h, w) with one channel]
        captions : list of 1-d int sequences, padded int array [shape=(B, T)] with ``lengths``, or None
            Token ids without BOS / EOS; None: the model captions each image first.
        lengths : int array [shape=(B,)] or None
            For a padded caption array.
        beam_size, max_len : int
            Decoding options when ``captions`` is None.

        Returns
        -------
        alignments : list of Alignment
            As :meth:`align` returns: grid cells on side x, words on side y.
        """
        self._check_fitted(fit_call="fit(images, captions)")
        x = self._image_batch(images, "images")
        if captions is not None and is_single_sequence(captions):
            raise ValueError("captions must be a list of sequences (or a padded (batch, steps) array) for a "
                             "batch of images; align aligns one pair")
        return self._alignments(x, captions, lengths, beam_size, max_len, ("images", "captions"),
                                [f"images[{b}]" for b in range(x.shape[0])])
