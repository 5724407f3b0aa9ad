"""Input corruptions of self-supervised multimodal pretraining: what is hidden or swapped.

- :func:`mask_tokens` -- BERT's word masking (80 % ``[MASK]``, 10 % a random
  word, 10 % kept);
- :func:`span_mask` -- contiguous spans of time-series frames;
- :func:`patch_mask` -- image patches, or whole objects given their patches;
- :func:`shuffle_pairs` -- donor samples that break a pair for pair matching.

Each draws its random numbers on the CPU from an optional ``torch.Generator``
(so a seed gives the same masks on CPU and CUDA) and returns new tensors;
padding is never selected. The losses scored on these positions are in
:mod:`mmalign.nn.pretraining_losses`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..utils.validation import check_float, check_int

__all__ = ["FIRST_WORD_ID", "mask_tokens", "span_mask", "patch_mask", "shuffle_pairs"]

FIRST_WORD_ID = 4
"""First id of a real word (ids 0-3 are :class:`~mmalign.datasets.Vocabulary`'s
``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``): random replacements are drawn from
``FIRST_WORD_ID ... vocab_size - 1``."""


def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device (CPU by default), moved to ``device``.

    Drawing on the CPU makes the masks identical on CPU and CUDA for a given seed.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(tuple(shape), generator=generator, device=gdev).to(device)


def _as_lengths_tensor(lengths: Any, batch: int, max_len: int, name: str,
                       device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(lengths, device=device)
    if t.ndim != 1 or t.shape[0] != batch or t.is_floating_point():
        raise ValueError(f"{name} must be an integer tensor of shape ({batch},), got "
                         f"{t.dtype} {tuple(t.shape)}")
    if batch and (int(t.min()) < 0 or int(t.max()) > max_len):
        raise ValueError(f"{name} must lie in [0, {max_len}], got {int(t.min())}..{int(t.max())}")
    return t.long()


def mask_tokens(words: torch.Tensor, lengths: torch.Tensor, *, mask_id: int, vocab_size: int,
                mask_prob: float = 0.15, first_word_id: int = FIRST_WORD_ID,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's token corruption: select ~``mask_prob`` of the valid tokens, 80 / 10 / 10.

    Each valid token is selected with probability ``mask_prob``; a sample with
    valid tokens but no selection gets one selected at random. Of the selected
    tokens 80 % become ``mask_id``, 10 % a uniform random id in
    ``[first_word_id, vocab_size)`` and 10 % keep their id.

    Parameters
    ----------
    words : torch.LongTensor [shape=(B, T)]
    lengths : torch.LongTensor [shape=(B,)]
        Valid tokens per sample (the rest is padding, never selected).
    mask_id : int
        Id written at the masked positions.
    vocab_size : int
        Random replacements are ``< vocab_size``.
    mask_prob : float in (0, 1]
    first_word_id : int
        Smallest random replacement (skips special ids).
    generator : torch.Generator or None
        Source of randomness (CPU); None: torch's global generator.

    Returns
    -------
    corrupted : torch.LongTensor [shape=(B, T)]
        A new tensor; ``words`` is not modified.
    selected : torch.BoolTensor [shape=(B, T)]
        Positions whose original id the loss predicts.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> words = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    >>> out, sel = mask_tokens(words, torch.tensor([4, 2]), mask_id=99, vocab_size=20, generator=g)
    >>> bool((sel.sum(1) >= 1).all()), bool(sel[1, 2:].any())  # >= 1 per sample, never padding
    (True, False)
    >>> bool((out[~sel] == words[~sel]).all())
    True
    """
    if not isinstance(words, torch.Tensor) or words.ndim != 2 or words.is_floating_point():
        raise ValueError("words must be an integer tensor of shape (B, T)")
    b, t = words.shape
    lengths = _as_lengths_tensor(lengths, b, t, "lengths", words.device)
    check_float(mask_prob, "mask_prob", 0.0, 1.0, low_open=True)
    vocab_size = check_int(vocab_size, "vocab_size", 1)
    first = check_int(first_word_id, "first_word_id", 0)
    if first >= vocab_size:
        first = 0
    dev = words.device
    valid = torch.arange(t, device=dev)[None] < lengths[:, None]
    selected = (_rand((b, t), generator, dev) < mask_prob) & valid
    empty = (~selected.any(1)) & (lengths > 0)
    pick = (_rand((b,), generator, dev) * lengths.clamp(min=1)).long().clamp(max=max(t - 1, 0))
    forced = torch.zeros_like(selected)
    if t:
        forced[torch.arange(b, device=dev), pick] = True
    selected = selected | (forced & empty[:, None])
    r = _rand((b, t), generator, dev)
    random_ids = first + (_rand((b, t), generator, dev) * (vocab_size - first)).long().clamp(
        max=vocab_size - first - 1)
    out = words.clone()
    out = torch.where(selected & (r < 0.8), torch.full_like(out, int(mask_id)), out)
    out = torch.where(selected & (r >= 0.8) & (r < 0.9), random_ids, out)
    return out, selected


def span_mask(lengths: torch.Tensor, max_len: int, *, mask_prob: float = 0.15, span_length: int = 3,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Contiguous spans of masked frames for time series.

    Sample ``i`` with ``L_i`` valid frames gets ``max(1, round(mask_prob * L_i /
    span_length))`` spans of ``span_length`` frames, each starting uniformly in
    ``[0, L_i - span_length]`` (spans may overlap, so slightly less than
    ``mask_prob`` of the frames are masked on average; a stream shorter than a
    span is masked entirely).

    Parameters
    ----------
    lengths : torch.LongTensor [shape=(B,)]
    max_len : int
        Padded length ``T``.
    mask_prob : float in (0, 1]
    span_length : int >= 1
    generator : torch.Generator or None

    Returns
    -------
    masked : torch.BoolTensor [shape=(B, T)]
        On ``lengths``' device; never ``True`` on padding.

    Examples
    --------
    >>> import torch
    >>> m = span_mask(torch.tensor([20, 5]), 20, mask_prob=0.3, span_length=4,
    ...               generator=torch.Generator().manual_seed(0))
    >>> for row in m.int().tolist():
    ...     print("".join(map(str, row)))
    00000000111101111000
    11110000000000000000
    """
    max_len = check_int(max_len, "max_len", 0)
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must have shape (B,), got {tuple(lengths.shape)}")
    lengths = _as_lengths_tensor(lengths, lengths.shape[0], max_len, "lengths", lengths.device)
    check_float(mask_prob, "mask_prob", 0.0, 1.0, low_open=True)
    span = check_int(span_length, "span_length", 1)
    b, dev = lengths.shape[0], lengths.device
    n_spans = torch.clamp(torch.round(mask_prob * lengths.double() / span), min=1).long()
    n_spans = torch.where(lengths > 0, n_spans, torch.zeros_like(n_spans))
    s_max = int(n_spans.max()) if b else 0
    if s_max == 0 or max_len == 0:
        return torch.zeros((b, max_len), dtype=torch.bool, device=dev)
    room = (lengths - span).clamp(min=0) + 1                              # number of start choices
    starts = (_rand((b, s_max), generator, dev) * room[:, None]).long()
    starts = torch.minimum(starts, (room - 1)[:, None])
    active = torch.arange(s_max, device=dev)[None] < n_spans[:, None]     # (B, S)
    steps = torch.arange(max_len, device=dev)[None, None]                  # (1, 1, T)
    inside = (steps >= starts[..., None]) & (steps < starts[..., None] + span) & active[..., None]
    valid = torch.arange(max_len, device=dev)[None] < lengths[:, None]
    return inside.any(1) & valid


def patch_mask(batch: int, n_patches: int, *, mask_prob: float = 0.15,
               objects: torch.Tensor | None = None, n_objects: torch.Tensor | None = None,
               generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Masked patches of images: random whole patches, or whole objects.

    Without ``objects`` each patch is masked with probability ``mask_prob``
    (at least one per image). With ``objects`` each of a sample's
    ``n_objects`` objects is chosen with probability ``mask_prob`` (at least
    one) and every patch a chosen object covers is masked; samples with no
    object fall back to random patches.

    Parameters
    ----------
    batch, n_patches : int
    mask_prob : float in (0, 1]
    objects : torch.BoolTensor [shape=(B, K, n_patches)] or None
        Patches covered by object ``k`` of each sample (see
        :meth:`~mmalign.nn.embedders.PatchEmbedding.patches_in_boxes`); rows
        ``k >= n_objects`` are ignored.
    n_objects : torch.LongTensor [shape=(B,)] or None
        Objects per sample (default: ``K`` for all).
    generator : torch.Generator or None
    device : torch.device or None
        Of the result (default: that of ``objects``, else CPU).

    Returns
    -------
    masked : torch.BoolTensor [shape=(B, n_patches)]

    Examples
    --------
    >>> import torch
    >>> objects = torch.zeros(1, 2, 6, dtype=torch.bool)
    >>> objects[0, 0, [0, 1]] = True; objects[0, 1, [4, 5]] = True
    >>> m = patch_mask(1, 6, mask_prob=0.01, objects=objects, generator=torch.Generator().manual_seed(1))
    >>> m.int().tolist()  # one whole object
    [[1, 1, 0, 0, 0, 0]]
    """
    batch = check_int(batch, "batch", 0)
    n_patches = check_int(n_patches, "n_patches", 1)
    check_float(mask_prob, "mask_prob", 0.0, 1.0, low_open=True)
    dev = torch.device(device) if device is not None else (
        objects.device if objects is not None else torch.device("cpu"))
    rnd = _rand((batch, n_patches), generator, dev) < mask_prob
    pick = (_rand((batch,), generator, dev) * n_patches).long().clamp(max=n_patches - 1)
    forced = torch.zeros((batch, n_patches), dtype=torch.bool, device=dev)
    forced[torch.arange(batch, device=dev), pick] = True
    rnd = torch.where(rnd.any(1, keepdim=True), rnd, forced)
    if objects is None:
        return rnd
    objects = objects.to(dev)
    if objects.ndim != 3 or objects.shape[0] != batch or objects.shape[2] != n_patches:
        raise ValueError(f"objects must have shape ({batch}, K, {n_patches}), got {tuple(objects.shape)}")
    k = objects.shape[1]
    n_obj = (torch.full((batch,), k, dtype=torch.long, device=dev) if n_objects is None
             else _as_lengths_tensor(n_objects, batch, k, "n_objects", dev))
    if k == 0:
        return rnd
    real = torch.arange(k, device=dev)[None] < n_obj[:, None]
    chosen = (_rand((batch, k), generator, dev) < mask_prob) & real
    opick = (_rand((batch,), generator, dev) * n_obj.clamp(min=1)).long().clamp(max=k - 1)
    oforced = torch.zeros((batch, k), dtype=torch.bool, device=dev)
    oforced[torch.arange(batch, device=dev), opick] = True
    chosen = torch.where(chosen.any(1, keepdim=True), chosen, oforced & real)
    by_object = (chosen[..., None] & objects.bool()).any(1)
    use_objects = (n_obj > 0) & by_object.any(1)
    return torch.where(use_objects[:, None], by_object, rnd)


def shuffle_pairs(batch: int, *, mismatch_prob: float = 0.5,
                  generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Donor samples for pair matching: each sample keeps its own other modalities, or (with
    probability ``mismatch_prob``) takes those of a different sample of the batch.

    The donors follow a random cyclic derangement (``donor[i] != i``), so a
    mismatched sample never gets its own streams back.

    Parameters
    ----------
    batch : int >= 2
    mismatch_prob : float in [0, 1]
    generator : torch.Generator or None
    device : torch.device or None

    Returns
    -------
    donor : torch.LongTensor [shape=(B,)]
        Index of the sample whose non-text modalities sample ``i`` gets.
    aligned : torch.BoolTensor [shape=(B,)]
        ``donor == arange(B)``.

    Examples
    --------
    >>> import torch
    >>> donor, aligned = shuffle_pairs(6, mismatch_prob=1.0, generator=torch.Generator().manual_seed(0))
    >>> bool((donor != torch.arange(6)).all()), aligned.tolist()
    (True, [False, False, False, False, False, False])
    """
    batch = check_int(batch, "batch", 2)
    check_float(mismatch_prob, "mismatch_prob", 0.0, 1.0)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    perm = torch.argsort(_rand((batch,), generator, torch.device("cpu")))
    derange = torch.empty(batch, dtype=torch.long)
    derange[perm] = perm.roll(-1)
    swap = _rand((batch,), generator, torch.device("cpu")) < mismatch_prob
    donor = torch.where(swap, derange, torch.arange(batch))
    return donor.to(dev), (~swap).to(dev)
