"""Token-id sequences read as padded ``int64`` batches (numpy and torch).

One sequence is 1-d integer ids; a collection is a list / tuple of them or a
``(batch, steps)`` integer array / tensor with optional lengths. Every failure
is a ``ValueError`` naming the argument; the caller's data is never modified.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["is_single_sequence", "as_int_array", "one_id_sequence", "as_id_batch", "infer_vocab_size",
           "MAX_INFERRED_VOCAB"]

# the largest vocabulary a model infers from its data (its embedding tables are that long): an id
# beyond it is far more likely a wrong input than a real vocabulary; pass the size to go beyond
MAX_INFERRED_VOCAB = 10_000_000


def is_single_sequence(x: Any) -> bool:
    """Whether ``x`` is one sequence (1-d) rather than a collection of sequences.

    Examples
    --------
    >>> is_single_sequence([3, 4, 5]), is_single_sequence([[3, 4], [5]])
    (True, False)
    """
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.ndim <= 1
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(
            isinstance(v, (numbers.Number, np.generic)) or (isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 0)
            for v in x)
    return False


def as_int_array(x: Any, name: str) -> np.ndarray:
    """``x`` as an int64 numpy array (a copy), rejecting non-integer dtypes."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
            raise ValueError(f"{name} must hold integer token ids, got dtype {x.dtype}")
        return x.detach().cpu().numpy().astype(np.int64)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} cannot be read as integer token ids: {err}") from None
    if arr.dtype == object:
        raise ValueError(f"{name} cannot be read as integer token ids (ragged or non-numeric)")
    if arr.size and (arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def one_id_sequence(x: Any, name: str) -> np.ndarray:
    """One non-empty 1-d sequence of ids as a ``(1, n)`` int64 array: what a model's ``align``
    takes (a collection of sequences is refused, pointing to ``align_batch``).

    Examples
    --------
    >>> one_id_sequence([3, 4, 5], "src")
    array([[3, 4, 5]])
    """
    if isinstance(x, (list, tuple)) and len(x) > 0 and not is_single_sequence(x):
        raise ValueError(f"{name} must be one 1-d sequence of token ids, got a collection of {len(x)} "
                         "(align_batch aligns a batch)")
    a = as_int_array(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one 1-d sequence of token ids, got shape {a.shape} "
                         "(align_batch aligns a batch)")
    if a.size == 0:
        raise ValueError(f"{name} is an empty sequence")
    return a[None]


def _check_ids(ids: np.ndarray, name: str, vocab_size: int, reserved: Sequence[int] = ()) -> None:
    """Ids in ``[0, vocab_size)`` and none of ``reserved``."""
    if ids.size == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0:
        raise ValueError(f"{name} contains a negative token id ({low})")
    if high >= vocab_size:
        raise ValueError(f"{name} contains token id {high}, outside the vocabulary of size {vocab_size}")
    bad = [r for r in reserved if (ids == r).any()]
    if bad:
        raise ValueError(f"{name} contains the reserved id(s) {bad} (pad / bos / eos); give targets "
                         "without BOS/EOS: the model adds them")


def as_id_batch(seqs: Any, lengths: Any, name: str, vocab_size: int,
                reserved: Sequence[int] = (), pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A collection of id sequences as ``(padded (B, S) int64, lengths (B,) int64)`` on the CPU.

    Parameters
    ----------
    seqs : list / tuple of 1-d int sequences, or int array / tensor [shape=(B, S)]
    lengths : int array [shape=(B,)] or None
        For an array ``seqs``: valid steps per row (default: every row has
        ``S``); for a list: checked against the sequences' own lengths.
    name : str
        How messages name ``seqs`` (its lengths are ``<name without s>_lengths``).
    vocab_size : int
        Ids must lie in ``[0, vocab_size)``.
    reserved : sequence of int
        Ids that may not appear (e.g. pad / bos / eos in targets).
    pad_id : int
        Written after each sequence's end.

    Returns
    -------
    padded : torch.LongTensor [shape=(B, S)]
    lengths : torch.LongTensor [shape=(B,)]

    Examples
    --------
    >>> padded, lengths = as_id_batch([[3, 4, 5], [6]], None, "src", 8)
    >>> padded.tolist(), lengths.tolist()
    ([[3, 4, 5], [6, 0, 0]], [3, 1])
    """
    lname = f"{name.rstrip('s')}_lengths" if name.endswith("s") else f"{name}_lengths"
    if isinstance(seqs, (torch.Tensor, np.ndarray)):
        arr = as_int_array(seqs, name)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a list of sequences or a (batch, steps) array, got shape {arr.shape}")
        B, S = arr.shape
        if B == 0:
            raise ValueError(f"{name} is empty: no sequences")
        if S == 0:
            raise ValueError(f"{name} has an empty sequence (0 steps)")
        if lengths is None:
            lens = np.full(B, S, dtype=np.int64)
        else:
            lens = as_int_array(lengths, lname)
            if lens.shape != (B,):
                raise ValueError(f"{lname} must have shape ({B},) to match {name}, got {lens.shape}")
            if (lens < 1).any():
                raise ValueError(f"{name} has an empty sequence ({lname} contains {int(lens.min())})")
            if (lens > S).any():
                raise ValueError(f"{lname} contains {int(lens.max())}, more than the {S} steps of {name}")
        valid = np.arange(S)[None, :] < lens[:, None]
        _check_ids(arr[valid], name, vocab_size, reserved)
        padded = np.where(valid, arr, pad_id)
        return torch.from_numpy(padded), torch.from_numpy(lens)
    if not isinstance(seqs, (list, tuple)):
        raise ValueError(f"{name} must be a list of id sequences or a (batch, steps) integer tensor, "
                         f"got {type(seqs).__name__}")
    if len(seqs) == 0:
        raise ValueError(f"{name} is empty: no sequences")
    rows = []
    for k, s in enumerate(seqs):
        a = as_int_array(s, f"{name}[{k}]")
        if a.ndim != 1:
            raise ValueError(f"{name}[{k}] must be a 1-d sequence of token ids, got shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{name}[{k}] is an empty sequence")
        _check_ids(a, f"{name}[{k}]", vocab_size, reserved)
        rows.append(a)
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    if lengths is not None:
        given = as_int_array(lengths, lname)
        if given.shape != lens.shape or not np.array_equal(given, lens):
            raise ValueError(f"{lname} does not match the lengths of the sequences in {name}")
    padded = np.full((len(rows), int(lens.max())), pad_id, dtype=np.int64)
    for k, r in enumerate(rows):
        padded[k, :len(r)] = r
    return torch.from_numpy(padded), torch.from_numpy(lens)


def infer_vocab_size(seqs: Any, lengths: Any, name: str, minimum: int = 1, pad_id: int = 0) -> int:
    """One more than the largest id in a collection of id sequences, at least ``minimum``.

    What a model whose vocabulary size was left to ``fit`` builds its embeddings with.

    Parameters
    ----------
    seqs, lengths, name, pad_id
        As in :func:`as_id_batch` (one 1-d sequence counts as a collection of one).
    minimum : int
        The smallest size returned (e.g. one more than the reserved ids).

    Returns
    -------
    vocab_size : int

    Raises
    ------
    ValueError
        As :func:`as_id_batch`; an id of :data:`MAX_INFERRED_VOCAB` or more (pass the
        vocabulary size to the model instead).

    Examples
    --------
    >>> infer_vocab_size([[3, 4, 9], [5]], None, "targets", minimum=3)
    10
    """
    if is_single_sequence(seqs) and not isinstance(seqs, (torch.Tensor, np.ndarray)):
        seqs = [seqs]
    ids, lens = as_id_batch(seqs, lengths, name, MAX_INFERRED_VOCAB, pad_id=pad_id)
    real = torch.arange(ids.shape[1])[None, :] < lens[:, None]
    return max(int(ids[real].max()) + 1, int(minimum))
