"""Crossmodal fusion transformers scored as aligners: MulT and two simpler designs.

Each model is a thin estimator (:class:`~mmalign.nn.estimator.TorchAligner`)
that owns its network as ``module_``, a public ``torch.nn.Module`` that can also
go inside a larger model (:class:`CrossmodalTransformerModule`,
:class:`JointSelfAttentionFusionModule`, :class:`BimodalTransformerModule`; the
blocks :class:`CrossmodalLayer` and :class:`CrossmodalEncoder` too).
``fit(X, Y)`` trains the network on a per-sample regression task (sentiment in
MulT's papers) with :func:`mmalign.nn.train.fit`, ``predict`` returns the task
output, and ``align(sample, target=t, source=s)`` returns the attention between
two modalities of one sample as an :class:`~mmalign.alignment.Alignment`
(``align_batch`` for many samples).

- :class:`CrossmodalTransformer` — MulT: for every ordered pair (source →
  target) a stack of crossmodal blocks whose queries come from the target and
  keys / values from the source; the outputs for one target are concatenated
  and go through a self-attention stack; every target is pooled (by default
  its last valid step, as MulT) into a residual MLP head.
- :class:`JointSelfAttentionFusion` — early fusion: all modalities' projected
  steps, each with its own positions plus a learned modality embedding, are
  concatenated into one sequence and go through one self-attention encoder.
  Crossmodal alignment is the (target rows, source columns) block of the joint
  attention.
- :class:`BimodalTransformer` — pairwise fusion: one crossmodal stack per pair
  of modalities (no per-target self-attention), each pooled, concatenated.

Alignments (the sides)
----------------------
``align(sample, target=t, source=s)`` puts the **source** modality on side x
and the **target** modality on side y, as every attention aligner of mmalign
(a target step's attention is a distribution over the source): weights
``(layers, heads, T_source, T_target)``, ``distribution_over="x"`` (every
column sums to one), ``monotonic=False``; ``path()`` gives, for every target
step, its most attended source step. In the pair form ``align(x, y, target=t,
source=s)`` (models whose attention between two modalities depends on those
two streams alone) ``x`` is the source stream (side x) and ``y`` the target
stream (side y). The networks and :meth:`~_FusionAligner.attention` keep
attention's own layout, queries before keys: ``(B, layers, heads, T_target,
T_source)``.

Inputs
------
A *batch* is a dict ``name -> (B, T_m, d_m)`` (or a tuple in the order of
``input_dims``) with a ``lengths`` dict / tuple of ``(B,)`` integer tensors for
ragged batches (``None``: every step is valid). A list of ``(T_i, d_m)``
arrays per modality is a ragged batch too (lengths read from the arrays). A
*sample* is the same with ``(T_m, d_m)`` arrays. Modality names come from the
keys of ``input_dims`` when it is a dict; for a tuple they are
``("text", "audio", "video")`` when it has three entries (MulT's L, A, V) and
``("m0", "m1", ...)`` otherwise.

Masking: every attention call gets a key-padding mask (``True`` = padded, see
:mod:`mmalign.nn.functional`), so attention weights on padded keys are
exactly 0. Inputs are zeroed at padded steps before the ``Conv1d``
projections, so a ``conv_kernel > 1`` sees at a sequence's end the same zeros
as its own ``padding`` would give: the outputs on the valid steps of a sample
do not depend on how much padding follows (tested). Returned weights are also
0 on padded *query* rows.

Differences from the reference MulT code, on purpose: key-padding masks
everywhere, attention weights are returned, no global default tensor type
(the same code runs on CPU and CUDA), ``Conv1d`` projections keep the length
(``padding = conv_kernel // 2``, odd kernels) and always project (the
reference skips the projection when the input size already equals
``d_model``), separate LayerNorms for the query and the key / value streams
(the reference reuses one), and "last step" pooling takes the last *valid*
step of each sample. Options the reference lacks: ``pooling="mean"`` /
``"sum"`` (per modality with a dict), ``positions="relative"`` (sinusoidal
codes at each stream's relative time instead of its step index), a
``targets`` subset (MulT's single-target ablations).

``fit`` uses :func:`mmalign.nn.train.fit` (Adam, gradient clipping 0.8 as
MulT, optional validation MAE with best-epoch restore and early stopping);
it builds a new network from the training seed first, so every ``fit``
starts from scratch.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..alignment import Alignment
from ..nn.estimator import TorchAligner
from ..nn.functional import lengths_to_padding_mask
from ..nn.layers import MultiHeadAttention
from ..nn.positional import ModalityEmbedding, PositionalEncoding, sinusoidal_positions
from ..nn.train import TrainConfig
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_bool, check_choice, check_float, check_int

__all__ = [
    "CrossmodalLayer",
    "CrossmodalEncoder",
    "CrossmodalTransformerModule",
    "JointSelfAttentionFusionModule",
    "BimodalTransformerModule",
    "CrossmodalTransformer",
    "JointSelfAttentionFusion",
    "BimodalTransformer",
]

POOLINGS = ("last", "mean", "sum")
POSITIONS = ("index", "relative")
LOSSES = ("l1", "mse")
_THREE = ("text", "audio", "video")
# today's training defaults of the three models (before ``train`` they were flat arguments)
_TRAIN_DEFAULTS = {"max_epochs": 40, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.0,
                   "grad_clip": 0.8, "patience": None, "seed": 0, "device": "cpu"}


# =========================================================================== blocks
class CrossmodalLayer(nn.Module):
    """One pre-norm crossmodal block (MulT): target queries attend over a source.

    ``z = x + Dropout(MHA(LN_q(x), LN_kv(s), LN_kv(s)))``, then
    ``out = z + Dropout(FFN(LN_ff(z)))`` with ``FFN = Linear(4d) → ReLU →
    Dropout → Linear(d)``. With ``source=None`` it is a self-attention block
    (keys and values are ``LN_q(x)``).

    Parameters
    ----------
    d_model : int
        Size of the target (query) stream and of the output.
    num_heads : int
        Divides ``d_model``.
    d_source : int or None
        Size of the source stream (``d_model`` when None).
    attn_dropout, relu_dropout, res_dropout : float in [0, 1)
        Dropout on the attention weights, inside the FFN, and on each residual branch.
    ffn_mult : int
        FFN hidden size is ``ffn_mult * d_model``.

    Examples
    --------
    >>> import torch
    >>> layer = CrossmodalLayer(8, 2, d_source=6)
    >>> out, w = layer(torch.randn(3, 5, 8), torch.randn(3, 7, 6))
    >>> out.shape, w.shape
    (torch.Size([3, 5, 8]), torch.Size([3, 2, 5, 7]))
    """

    def __init__(self, d_model: int, num_heads: int, d_source: int | None = None,
                 attn_dropout: float = 0.0, relu_dropout: float = 0.0, res_dropout: float = 0.0,
                 ffn_mult: int = 4) -> None:
        super().__init__()
        d_source = d_model if d_source is None else int(d_source)
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_source)
        self.attn = MultiHeadAttention(d_model, num_heads, dropout=attn_dropout,
                                       kdim=d_source, vdim=d_source)
        self.norm_ff = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, ffn_mult * d_model)
        self.fc2 = nn.Linear(ffn_mult * d_model, d_model)
        self.relu_dropout = float(relu_dropout)
        self.res_dropout = float(res_dropout)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None, *,
                key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the target stream.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, T, d_model)]
            Target stream (queries).
        source : torch.Tensor [shape=(B, S, d_source)] or None
            Source stream (keys and values); None for self-attention.
        key_padding_mask : bool tensor [shape=(B, S)] or None
            ``True`` at padded source steps (target steps for self-attention).
        attn_mask : tensor [shape=(T, S)] or None

        Returns
        -------
        out : torch.Tensor [shape=(B, T, d_model)]
        weights : torch.Tensor [shape=(B, num_heads, T, S)]
        """
        q = self.norm_q(x)
        kv = q if source is None else self.norm_kv(source)
        out, weights = self.attn(q, kv, kv, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        x = x + nn.functional.dropout(out, self.res_dropout, self.training)
        h = torch.relu(self.fc1(self.norm_ff(x)))
        h = self.fc2(nn.functional.dropout(h, self.relu_dropout, self.training))
        return x + nn.functional.dropout(h, self.res_dropout, self.training), weights


class CrossmodalEncoder(nn.Module):
    """A stack of :class:`CrossmodalLayer` s (MulT's ``TransformerEncoder``).

    The target stream (and the source stream) is scaled by ``sqrt(d)`` and
    gets sinusoidal positions of its own time axis, then embedding dropout;
    every layer attends over the same (positioned) source; a final LayerNorm
    closes the stack. With ``source=None`` in :meth:`forward` it is a
    self-attention encoder.

    Parameters
    ----------
    d_model, num_heads : int
    num_layers : int >= 1
    d_source : int or None
        Source size; None for a self-attention encoder (or a source of size ``d_model``).
    attn_dropout, relu_dropout, res_dropout, embed_dropout : float in [0, 1)
    add_positions : bool
        Scale the inputs by ``sqrt(d)`` and add sinusoidal positions (False
        when the caller has positioned the streams itself, as
        :class:`JointSelfAttentionFusion` does).

    Examples
    --------
    >>> import torch
    >>> enc = CrossmodalEncoder(8, 2, num_layers=3, d_source=4)
    >>> out, w = enc(torch.randn(2, 5, 8), torch.randn(2, 9, 4),
    ...              key_padding_mask=torch.tensor([[False] * 9, [False] * 6 + [True] * 3]),
    ...              need_weights=True)
    >>> out.shape, w.shape, float(w.detach()[1, ..., 6:].sum())
    (torch.Size([2, 5, 8]), torch.Size([2, 3, 2, 5, 9]), 0.0)
    """

    def __init__(self, d_model: int, num_heads: int, num_layers: int, d_source: int | None = None,
                 attn_dropout: float = 0.0, relu_dropout: float = 0.0, res_dropout: float = 0.0,
                 embed_dropout: float = 0.0, add_positions: bool = True) -> None:
        super().__init__()
        self.d_model = int(d_model)
        self.d_source = self.d_model if d_source is None else int(d_source)
        self.embed_dropout = float(embed_dropout)
        self.add_positions = bool(add_positions)
        self.pos_q = PositionalEncoding(self.d_model, scale_input=True)
        self.pos_kv = PositionalEncoding(self.d_source, scale_input=True)
        self.layers = nn.ModuleList(
            CrossmodalLayer(self.d_model, num_heads, self.d_source, attn_dropout, relu_dropout,
                            res_dropout) for _ in range(int(num_layers)))
        self.norm = nn.LayerNorm(self.d_model)

    def _embed(self, x: torch.Tensor, pos: PositionalEncoding,
                positions: torch.Tensor | None) -> torch.Tensor:
        if self.add_positions:
            x = pos(x) if positions is None else _embed_at(x, positions)
        return nn.functional.dropout(x, self.embed_dropout, self.training)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None, *,
                key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, need_weights: bool = False,
                positions: torch.Tensor | None = None,
                source_positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the stack.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, T, d_model)]
        source : torch.Tensor [shape=(B, S, d_source)] or None
        key_padding_mask : bool tensor [shape=(B, S)] or None
            Padded steps of the source (of ``x`` for self-attention).
        attn_mask : tensor [shape=(T, S)] or None
        need_weights : bool
        positions, source_positions : torch.Tensor [shape=(B, T)], [shape=(B, S)] or None
            Real-valued positions for the sinusoidal codes (e.g. relative
            time); None: the step indices ``0, 1, ...``.

        Returns
        -------
        out : torch.Tensor [shape=(B, T, d_model)]
        weights : torch.Tensor [shape=(B, num_layers, num_heads, T, S)] or None
        """
        x = self._embed(x, self.pos_q, positions)
        if source is not None:
            source = self._embed(source, self.pos_kv, source_positions)
        kept = []
        for layer in self.layers:
            x, w = layer(x, source, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
            if need_weights:
                kept.append(w)
        return self.norm(x), (torch.stack(kept, dim=1) if need_weights else None)


def _embed_at(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``sqrt(d) * x + PE(positions)`` for ``x`` ``(B, T, d)`` and real positions ``(B, T)``."""
    d = x.shape[-1]
    return x * math.sqrt(d) + sinusoidal_positions(positions.to(torch.float32), d).to(x.dtype)


class _ResidualHead(nn.Module):
    """MulT's output head: ``h + Linear(Dropout(ReLU(Linear(h))))`` then ``Linear``."""

    def __init__(self, dim: int, output_dim: int, dropout: float) -> None:
        super().__init__()
        self.proj1 = nn.Linear(dim, dim)
        self.proj2 = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, output_dim)
        self.dropout = float(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = nn.functional.dropout(torch.relu(self.proj1(h)), self.dropout, self.training)
        return self.out(h + self.proj2(z))


def _pool(h: torch.Tensor, lengths: torch.Tensor, how: str) -> torch.Tensor:
    """``(B, T, d)`` → ``(B, d)``: the last valid step, or the mean / sum over valid steps."""
    if how == "last":
        idx = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, h.shape[-1])
        return h.gather(1, idx)[:, 0]
    valid = (torch.arange(h.shape[1], device=h.device)[None] < lengths[:, None]).to(h.dtype)
    total = (h * valid[..., None]).sum(1)
    if how == "sum":
        return total
    return total / lengths.clamp(min=1).to(h.dtype)[:, None]


# =========================================================================== inputs
def _modality_names(input_dims: Any) -> tuple[list[str], list[int]]:
    if isinstance(input_dims, Mapping):
        names, dims = list(input_dims.keys()), list(input_dims.values())
        for n in names:
            if not isinstance(n, str) or not n or "." in n:
                raise ValueError(f"input_dims: modality names must be non-empty strings without "
                                 f"'.', got {n!r}")
    elif isinstance(input_dims, (tuple, list)):
        dims = list(input_dims)
        names = list(_THREE) if len(dims) == 3 else [f"m{i}" for i in range(len(dims))]
    else:
        raise ValueError(f"input_dims must be a tuple of feature sizes or a dict name -> size, "
                         f"got {type(input_dims).__name__}")
    if len(dims) < 2:
        raise ValueError(f"input_dims needs at least 2 modalities, got {len(dims)}")
    dims = [check_int(d, "input_dims", 1) for d in dims]
    return names, dims


def _as_lengths(value: Any, name: str, batch: int, max_len: int) -> torch.Tensor:
    t = as_tensor(value, name)
    if t.ndim != 1 or t.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({batch},), got {tuple(t.shape)}")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ValueError(f"{name} must hold integers")
    t = t.long().cpu()
    if batch and (int(t.min()) < 1 or int(t.max()) > max_len):
        raise ValueError(f"{name} must lie in [1, {max_len}] (the padded length), got "
                         f"{int(t.min())}..{int(t.max())}")
    return t


@dataclasses.dataclass
class _Batch:
    xs: list[torch.Tensor]          # per modality (B, T_m, d_m) float32, zero at padding
    lengths: list[torch.Tensor]     # per modality (B,) int64, CPU
    single: bool                    # the input was one sample
    tensor_in: bool                 # every input was a torch tensor
    device: torch.device | None     # device of tensor inputs


def _per_modality(value: Any, names: Sequence[str], name: str, allow_none: bool = False) -> list:
    if value is None:
        if allow_none:
            return [None] * len(names)
        raise ValueError(f"{name} must not be None")
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise ValueError(f"{name} must have exactly the modalities {list(names)}; missing "
                             f"{missing}, unexpected {extra}")
        return [value[n] for n in names]
    if isinstance(value, (tuple, list)) and len(value) == len(names):
        return list(value)
    raise ValueError(f"{name} must be a dict with keys {list(names)} or a tuple of "
                     f"{len(names)} entries in that order, got {type(value).__name__}"
                     + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))


def _prepare(inputs: Any, lengths: Any, names: Sequence[str], dims: Sequence[int],
             only: Sequence[str] | None = None, name: str = "inputs",
             lengths_name: str = "lengths") -> _Batch:
    """Check and pad inputs; modalities outside ``only`` may be None and come back empty."""
    values = _per_modality(inputs, names, name)
    lens = _per_modality(lengths, names, lengths_name, allow_none=True)
    xs: list[torch.Tensor] = []
    out_lens: list[torch.Tensor] = []
    kinds = set()
    batch = None
    tensor_in, device = True, None
    for m, (mod, dim, v, ln) in enumerate(zip(names, dims, values, lens)):
        where = f"{name}[{mod!r}]"
        lwhere = f"{lengths_name}[{mod!r}]"
        if v is None:
            if only is not None and mod not in only:
                xs.append(None)  # type: ignore[arg-type]
                out_lens.append(None)  # type: ignore[arg-type]
                continue
            raise ValueError(f"{where} must not be None")
        if isinstance(v, (list, tuple)) and not isinstance(v, torch.Tensor):
            seqs = [as_tensor(s, f"{where}[{i}]") for i, s in enumerate(v)]
            if not seqs:
                raise ValueError(f"{where} is an empty list")
            for i, s in enumerate(seqs):
                if s.ndim != 2 or s.shape[1] != dim or s.shape[0] == 0:
                    raise ValueError(f"{where}[{i}] must have shape (T, {dim}) with T >= 1, "
                                     f"got {tuple(s.shape)}")
            tensor_in = tensor_in and all(isinstance(s, torch.Tensor) for s in v)
            seq_lens = torch.tensor([s.shape[0] for s in seqs])
            if ln is not None and not torch.equal(_as_lengths(ln, lwhere, len(seqs), int(seq_lens.max())),
                                                  seq_lens):
                raise ValueError(f"{lwhere} disagrees with the lengths of the sequences in {where}")
            x = nn.utils.rnn.pad_sequence([as_float(s, torch.float32, f"{where}[{i}]").cpu()
                                           for i, s in enumerate(seqs)], batch_first=True)
            ln_t = seq_lens
            kinds.add("batch")
        else:
            tensor_in = tensor_in and isinstance(v, torch.Tensor)
            x = as_tensor(v, where)
            if x.ndim == 2:
                kinds.add("single")
                x = x[None]
            elif x.ndim == 3:
                kinds.add("batch")
            else:
                raise ValueError(f"{where} must have shape (T, {dim}) or (B, T, {dim}), got "
                                 f"{tuple(x.shape)}")
            if x.shape[-1] != dim:
                raise ValueError(f"{where} has {x.shape[-1]} features, input_dims says {dim}")
            if x.shape[1] == 0 or x.shape[0] == 0:
                raise ValueError(f"{where} is empty, shape {tuple(x.shape)}")
            if isinstance(v, torch.Tensor) and device is None:
                device = v.device
            if ln is None:
                ln_t = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            else:
                ln_t = _as_lengths(ln if "single" not in kinds or np.ndim(ln) else [ln], lwhere,
                                   x.shape[0], x.shape[1])
            x = as_float(x, torch.float32, where)
        if len(kinds) > 1:
            raise ValueError(f"{name} mixes single samples (T, d) and batches (B, T, d)")
        if batch is None:
            batch = x.shape[0]
        elif x.shape[0] != batch:
            raise ValueError(f"{where} has batch size {x.shape[0]}, other modalities have {batch}")
        pad = lengths_to_padding_mask(ln_t.to(x.device), x.shape[1])
        xs.append(x.masked_fill(pad[..., None], 0.0))
        out_lens.append(ln_t)
    return _Batch(xs, out_lens, kinds == {"single"}, tensor_in, device)


def _as_targets(Y: Any, n: int, output_dim: int, name: str = "Y") -> torch.Tensor:
    t = as_float(as_tensor(Y, name), torch.float32, name)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] != n or t.shape[1] != output_dim:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, {output_dim}) (samples, "
                         f"output_dim), got {tuple(as_tensor(Y, name).shape)}")
    return t


def _index_of(names: Sequence[str], mod: Any, name: str) -> int:
    """Index of modality ``mod`` (a name or an index) in ``names``; ValueError naming ``name``."""
    if isinstance(mod, numbers.Integral) and not isinstance(mod, bool):
        if 0 <= int(mod) < len(names):
            return int(mod)
    elif isinstance(mod, str) and mod in names:
        return list(names).index(mod)
    raise ValueError(f"{name} must be one of {list(names)} (or an index), got {mod!r}")


def _check_common(p: Any) -> tuple[list[str], list[int]]:
    """Check the hyper-parameters the three fusion networks share (attributes of ``p``, an
    estimator or a network); return the modality names and feature sizes."""
    names, dims = _modality_names(p.input_dims)
    d = check_int(p.d_model, "d_model", 1)
    h = check_int(p.num_heads, "num_heads", 1)
    if d % h:
        raise ValueError(f"d_model ({d}) must be a multiple of num_heads ({h})")
    check_int(p.num_layers, "num_layers", 1)
    for name in ("attn_dropout", "relu_dropout", "res_dropout", "embed_dropout", "out_dropout"):
        value = getattr(p, name)
        check_float(value, name, 0.0, 1.0)
        if value >= 1.0:
            raise ValueError(f"{name} must be < 1, got {value}")
    check_int(p.output_dim, "output_dim", 1)
    k = check_int(p.conv_kernel, "conv_kernel", 1)
    if k % 2 == 0:
        raise ValueError(f"conv_kernel must be odd (lengths are kept), got {k}")
    if isinstance(p.pooling, Mapping):
        extra = [k for k in p.pooling if k not in names]
        if extra or len(p.pooling) != len(names):
            raise ValueError(f"pooling as a dict must name every modality {names} "
                             f"once, got keys {list(p.pooling)}")
        for v in p.pooling.values():
            check_choice(v, "pooling", POOLINGS)
    else:
        check_choice(p.pooling, "pooling", POOLINGS)
    check_choice(p.positions, "positions", POSITIONS)
    check_float(p.position_scale, "position_scale", 0.0, low_open=True)
    return names, dims


def _target_indices(names: Sequence[str], targets: Any) -> list[int]:
    if targets is None:
        return list(range(len(names)))
    if isinstance(targets, str) or not isinstance(targets, (tuple, list)):
        raise ValueError(f"targets must be a list of modality names or None, got {targets!r}")
    idx = [_index_of(names, t, "targets") for t in targets]
    if not idx or len(set(idx)) != len(idx):
        raise ValueError(f"targets must name distinct modalities, got {targets!r}")
    return sorted(idx)


def _pair_list(names: Sequence[str], pairs: Any) -> list[tuple[int, int]]:
    n = len(names)
    if pairs is None:
        return [(t, s) for t in range(n) for s in range(t + 1, n)]
    if isinstance(pairs, str) or not isinstance(pairs, (tuple, list)) or not pairs:
        raise ValueError(f"pairs must be a non-empty list of (target, source) names, got {pairs!r}")
    out = []
    for p in pairs:
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            raise ValueError(f"pairs must hold (target, source) pairs, got {p!r}")
        t, s = _index_of(names, p[0], "pairs"), _index_of(names, p[1], "pairs")
        if t == s or (t, s) in out:
            raise ValueError(f"pairs must hold distinct pairs of different modalities, got {p!r}")
        out.append((t, s))
    return out


# =========================================================================== networks
class _FusionModule(nn.Module):
    """Shared forward / attention code of the three fusion networks."""

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int], d_model: int, num_heads: int,
                 num_layers: int, attn_dropout: float, relu_dropout: float, res_dropout: float,
                 embed_dropout: float, out_dropout: float, output_dim: int, conv_kernel: int,
                 pooling: str | Mapping[str, str], positions: str, position_scale: float) -> None:
        super().__init__()
        self.input_dims = input_dims
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.attn_dropout = attn_dropout
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.embed_dropout = embed_dropout
        self.out_dropout = out_dropout
        self.output_dim = output_dim
        self.conv_kernel = conv_kernel
        self.pooling = pooling
        self.positions = positions
        self.position_scale = position_scale
        self._names, self._dims = _check_common(self)

    # ---- subclasses implement
    @abc.abstractmethod
    def _run(self, xs: list, masks: list, lengths: list, pairs: Sequence[tuple[int, int]],
             predict: bool) -> tuple[torch.Tensor | None, dict]:
        """Forward pass: predictions (when ``predict``) and the attention of ``pairs``."""

    def _pair_ok(self, t: int, s: int) -> bool:
        return True

    def _pair_inputs(self, t: int, s: int) -> set[int]:
        """Modalities whose inputs the (t, s) attention depends on."""
        return {t, s}

    # ---- shared parts
    def _projections(self) -> nn.ModuleDict:
        k = int(self.conv_kernel)
        return nn.ModuleDict({
            n: nn.Conv1d(dim, int(self.d_model), k, padding=k // 2, bias=False)
            for n, dim in zip(self._names, self._dims)})

    def _drops(self) -> dict[str, float]:
        return dict(attn_dropout=float(self.attn_dropout), relu_dropout=float(self.relu_dropout),
                    res_dropout=float(self.res_dropout), embed_dropout=float(self.embed_dropout))

    def _project(self, m: int, x: torch.Tensor) -> torch.Tensor:
        return self.proj[self._names[m]](x.transpose(1, 2)).transpose(1, 2)

    def _pool_of(self, m: int) -> str:
        """Pooling of modality ``m`` (``pooling`` may be one name or a dict per modality)."""
        if isinstance(self.pooling, Mapping):
            return self.pooling[self._names[m]]
        return self.pooling

    def _positions(self, xs: list, lengths: list) -> list:
        """Per stream ``(B, T)`` positions for the sinusoidal codes (None: step indices)."""
        if self.positions == "index":
            return [None] * len(xs)
        out = []
        for x, ln in zip(xs, lengths):
            if x is None:
                out.append(None)
                continue
            steps = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)[None] + 0.5
            out.append(steps / ln.clamp(min=1).to(torch.float32)[:, None] * float(self.position_scale))
        return out

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in the order of ``input_dims``."""
        return tuple(self._names)

    def pairs(self) -> list[tuple[str, str]]:
        """The ``(target, source)`` modality pairs that have an attention map (``t == s``: a
        self-attention), in the order of :meth:`forward`'s weights."""
        return [(self._names[t], self._names[s]) for t, s in self._all_pairs()]

    def _all_pairs(self) -> list[tuple[int, int]]:
        n = len(self._names)
        return [(t, s) for t in range(n) for s in range(n) if self._pair_ok(t, s)]

    def _pair_indices(self, target: Any, source: Any, owner: str | None = None) -> tuple[int, int]:
        t = 0 if target is None else _index_of(self._names, target, "target")
        s = (1 if t == 0 else 0) if source is None else _index_of(self._names, source, "source")
        if not self._pair_ok(t, s):
            raise ValueError(f"source={self._names[s]!r} -> target={self._names[t]!r}: this "
                             f"{owner or type(self).__name__} has no attention between them; "
                             f"pairs (target, source): {self.pairs()}")
        return t, s

    def _device(self) -> torch.device:
        p = next(iter(self.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    # ---- forward
    def forward(self, inputs: Any, lengths: Any = None, *,
                return_weights: bool = False) -> Any:
        """Task output of a batch (and every attention map when asked).

        Parameters
        ----------
        inputs : dict name -> torch.Tensor [shape=(B, T_m, d_m)] or tuple in modality order
            Also one sample (``(T_m, d_m)`` per modality) or ragged lists (see the
            module docstring).
        lengths : dict / tuple of (B,) int tensors, or None
            Valid steps per sample and modality; None: all steps are valid.
        return_weights : bool

        Returns
        -------
        prediction : torch.Tensor [shape=(B, output_dim)]
        weights : dict (target, source) -> torch.Tensor [shape=(B, layers, heads, T_target, T_source)]
            Only with ``return_weights``; zero on padded keys and on padded queries.
        """
        dev = self._device()
        if self._is_prepared(inputs, lengths):
            # the training loop's path: padded tensors with lengths (shapes checked, no copy)
            xs = [inputs[n] for n in self._names]
            lens = [lengths[n] for n in self._names]
        else:
            b = _prepare(inputs, lengths, self._names, self._dims)
            xs, lens = b.xs, b.lengths
        lens = [ln.to(dev) for ln in lens]
        masks = [lengths_to_padding_mask(ln, x.shape[1]) for ln, x in zip(lens, xs)]
        # zero the padded steps: a Conv1d projection then sees the zeros its own padding gives
        xs = [as_float(x.to(dev).masked_fill(m[..., None], 0), torch.float32, f"inputs[{n!r}]")
              for n, x, m in zip(self._names, xs, masks)]
        pairs = self._all_pairs() if return_weights else []
        pred, weights = self._run(xs, masks, lens, pairs, predict=True)
        if not return_weights:
            return pred
        return pred, {(self._names[t], self._names[s]): _zero_pad_rows(w, masks[t])
                      for (t, s), w in weights.items()}

    def _is_prepared(self, inputs: Any, lengths: Any) -> bool:
        if not (isinstance(inputs, Mapping) and isinstance(lengths, Mapping)
                and list(inputs) == self._names and list(lengths) == self._names):
            return False
        batch = None
        for n, dim in zip(self._names, self._dims):
            x, ln = inputs[n], lengths[n]
            if not (isinstance(x, torch.Tensor) and x.ndim == 3 and x.shape[-1] == dim
                    and x.shape[1] > 0 and isinstance(ln, torch.Tensor) and ln.ndim == 1
                    and ln.shape[0] == x.shape[0] and not ln.is_floating_point()):
                return False
            if batch is not None and x.shape[0] != batch:
                return False
            batch = x.shape[0]
        return True

    def attention(self, inputs: Any, lengths: Any = None, *, target: Any = None,
                  source: Any = None) -> torch.Tensor:
        """Attention of ``target`` queries over ``source`` keys, padded (queries before keys).

        Parameters
        ----------
        inputs : a batch or one sample (see the module docstring)
            Modalities the pair does not depend on may be None.
        lengths : dict / tuple of (B,) ints, or None
        target, source : str or int
            Modality names (or indices); default target: the first modality;
            default source: the second (the first for any other target).
            ``target == source``: the self-attention where the network has one.

        Returns
        -------
        weights : torch.Tensor [shape=(B, layers, heads, T_target, T_source)]
            On the network's device; zero on padded keys and padded queries.
        """
        t, s = self._pair_indices(target, source)
        b = _prepare(inputs, lengths, self._names, self._dims, name="inputs",
                     only=[self._names[i] for i in self._pair_inputs(t, s)])
        return self._pair_weights(b.xs, b.lengths, t, s)

    def _pair_weights(self, xs: list, lengths: list, t: int, s: int) -> torch.Tensor:
        dev = self._device()
        xs = [None if x is None else x.to(dev) for x in xs]
        lens = [None if ln is None else ln.to(dev) for ln in lengths]
        masks = [None if x is None else lengths_to_padding_mask(ln, x.shape[1])
                 for ln, x in zip(lens, xs)]
        _, weights = self._run(xs, masks, lens, [(t, s)], predict=False)
        return _zero_pad_rows(weights[(t, s)], masks[t])


def _zero_pad_rows(w: torch.Tensor, mask_t: torch.Tensor) -> torch.Tensor:
    return w.masked_fill(mask_t[:, None, None, :, None], 0.0)


_NETWORK_DOC = """
    d_model : int
        Width of every projected stream (MulT: 30).
    num_heads : int
        Divides ``d_model`` (MulT: 5).
    attn_dropout, relu_dropout, res_dropout, embed_dropout, out_dropout : float in [0, 1)
        Dropout on attention weights, inside FFNs, on residual branches, after
        the input embedding (scaled input + positions), and in the head.
    output_dim : int
        Size of the task output (1: a regression score).
    conv_kernel : int, odd
        Kernel of the temporal ``Conv1d`` input projections (length kept).
    pooling : {"last", "mean", "sum"} or dict name -> one of them
        How each target stream is pooled: its last *valid* step (MulT), or
        the mean / sum over valid steps (``"sum"`` suits labels that add up
        per-word evidence; keep it for short streams such as words). A dict
        chooses per modality.
    positions : {"index", "relative"}
        Where the sinusoidal codes are evaluated: at the step index
        ``0, 1, ...`` of each stream (MulT), or at the relative time
        ``(t + 0.5) / length * position_scale`` of each sample's stream, so
        that streams of different rates start and end at the same positions
        (a prior of a uniform time alignment).
    position_scale : float > 0
        Range of the relative positions.
"""

_ESTIMATOR_DOC = _NETWORK_DOC + """    loss : {"l1", "mse"}
        Training loss (MulT: L1).
    train : None, dict or TrainConfig
        Training settings (:class:`~mmalign.nn.train.TrainConfig`, Adam); a dict
        overrides this class's defaults ``max_epochs=40, batch_size=32, lr=1e-3,
        weight_decay=0.0, grad_clip=0.8, patience=None, seed=0, device="cpu"``
        (``train={"max_epochs": 6}``). ``seed`` seeds the network's initial
        weights and training; ``patience`` needs validation data.
"""


# =========================================================================== MulT network
class CrossmodalTransformerModule(_FusionModule):
    """The MulT network: directional crossmodal stacks per ordered pair, self-attention, head.

    Per modality a ``Conv1d`` projection to ``d_model`` (``proj``); for every
    target ``t`` and every source ``s != t`` a :class:`CrossmodalEncoder` of
    ``num_layers`` blocks (queries from ``t``, keys / values from ``s``;
    ``cross["<s>_to_<t>"]``); the outputs for one target are concatenated
    (``(M - 1) * d_model``) and go through a self-attention
    :class:`CrossmodalEncoder` of ``self_layers`` blocks (``self_attn[t]``);
    each target is pooled (last valid step by default) and the pooled vectors
    are concatenated into a residual MLP head (``head``).

    :class:`CrossmodalTransformer` trains it and reads its attention out as
    alignments; the network alone is for use inside a larger model.

    Parameters
    ----------
    input_dims : tuple of int or dict name -> int
        Feature size per modality (``(d_text, d_audio, d_video)``).
    num_layers : int
        Blocks per crossmodal stack (MulT: 5 on MOSEI).
    self_layers : int >= 0
        Blocks of each target's self-attention stack (MulT: ``max(num_layers, 3)``);
        0 skips it.
    targets : sequence of names or None
        Modalities used as targets (default: all; MulT's ablations use one).
    %(network)s
    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import CrossmodalTransformerModule
    >>> net = CrossmodalTransformerModule((4, 3, 2), d_model=8, num_heads=2, num_layers=1,
    ...                                   self_layers=1).eval()
    >>> X = {"text": torch.randn(2, 5, 4), "audio": torch.randn(2, 9, 3),
    ...      "video": torch.randn(2, 7, 2)}
    >>> pred, w = net(X, {"text": torch.tensor([5, 3]), "audio": torch.tensor([9, 6]),
    ...                   "video": torch.tensor([7, 7])}, return_weights=True)
    >>> pred.shape, w[("text", "audio")].shape
    (torch.Size([2, 1]), torch.Size([2, 1, 2, 5, 9]))
    """

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 3,
                 self_layers: int = 3, targets: Sequence[str] | None = None,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last",
                 positions: str = "index", position_scale: float = 100.0) -> None:
        super().__init__(input_dims, d_model, num_heads, num_layers, attn_dropout, relu_dropout,
                         res_dropout, embed_dropout, out_dropout, output_dim, conv_kernel, pooling,
                         positions, position_scale)
        self.self_layers = check_int(self_layers, "self_layers", 0)
        self.targets = targets
        self._targets = _target_indices(self._names, targets)
        d, h, n = int(self.d_model), int(self.num_heads), len(self._names)
        drops = self._drops()
        self.proj = self._projections()
        self.cross = nn.ModuleDict({
            f"{self._names[s]}_to_{self._names[t]}": CrossmodalEncoder(d, h, int(self.num_layers), d,
                                                                        **drops)
            for t in self._targets for s in range(n) if s != t})
        d_cat = (n - 1) * d
        self.self_attn = nn.ModuleDict({
            self._names[t]: CrossmodalEncoder(d_cat, h, int(self.self_layers), None, **drops)
            for t in self._targets}) if int(self.self_layers) > 0 else nn.ModuleDict()
        self.head = _ResidualHead(len(self._targets) * d_cat, int(self.output_dim),
                                  float(self.out_dropout))

    def _pair_ok(self, t: int, s: int) -> bool:
        if t not in self._targets:
            return False
        return t != s or int(self.self_layers) > 0

    def _pair_inputs(self, t: int, s: int) -> set[int]:
        if t == s:  # the self-attention sees every crossmodal output of t
            return set(range(len(self._names)))
        return {t, s}

    def _run(self, xs, masks, lengths, pairs, predict):
        n = len(self._names)
        want = set(pairs)
        targets = self._targets if predict else sorted({t for t, _ in pairs})
        h = {m: self._project(m, x) for m, x in enumerate(xs) if x is not None}
        pos = self._positions(xs, lengths)
        weights, pooled = {}, []
        for t in targets:
            outs = []
            for s in range(n):
                if s == t:
                    continue
                if not predict and (t, s) not in want and (t, t) not in want:
                    continue
                enc = self.cross[f"{self._names[s]}_to_{self._names[t]}"]
                o, w = enc(h[t], h[s], key_padding_mask=masks[s], need_weights=(t, s) in want,
                           positions=pos[t], source_positions=pos[s])
                if (t, s) in want:
                    weights[(t, s)] = w
                outs.append(o)
            if not predict and (t, t) not in want:
                continue
            ht = torch.cat(outs, dim=-1)
            if len(self.self_attn):
                ht, w = self.self_attn[self._names[t]](ht, key_padding_mask=masks[t],
                                                       need_weights=(t, t) in want, positions=pos[t])
                if (t, t) in want:
                    weights[(t, t)] = w
            if predict:
                pooled.append(_pool(ht, lengths[t], self._pool_of(t)))
        pred = self.head(torch.cat(pooled, dim=-1)) if predict else None
        return pred, weights


# =========================================================================== joint network
class JointSelfAttentionFusionModule(_FusionModule):
    """The early-fusion network: one self-attention encoder over all modalities' steps.

    Each modality is projected (``Conv1d``, ``proj``), scaled by
    ``sqrt(d_model)``, given sinusoidal positions of its own time axis
    (``pos``) and a learned :class:`~mmalign.nn.ModalityEmbedding`
    (``modality``); the streams are concatenated along time (padding masked)
    and go through ``num_layers`` pre-norm self-attention blocks (``encoder``);
    each modality's block of the output is pooled and the pooled vectors are
    concatenated into a residual MLP head (``head``). The weights of a
    ``(target, source)`` pair are the ``(T_target, T_source)`` block of the
    joint attention (raw: each query row sums to one over *all* keys).

    Parameters
    ----------
    input_dims : tuple of int or dict name -> int
    num_layers : int
        Self-attention blocks.
    %(network)s
    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import JointSelfAttentionFusionModule
    >>> net = JointSelfAttentionFusionModule((4, 3), d_model=8, num_heads=2, num_layers=1)
    >>> X = {"m0": torch.randn(2, 5, 4), "m1": torch.randn(2, 6, 3)}
    >>> pred, w = net.eval()(X, {"m0": torch.tensor([5, 3]), "m1": torch.tensor([6, 6])},
    ...                      return_weights=True)
    >>> pred.shape, w[("m0", "m1")].shape
    (torch.Size([2, 1]), torch.Size([2, 1, 2, 5, 6]))
    """

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 3,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last",
                 positions: str = "index", position_scale: float = 100.0) -> None:
        super().__init__(input_dims, d_model, num_heads, num_layers, attn_dropout, relu_dropout,
                         res_dropout, embed_dropout, out_dropout, output_dim, conv_kernel, pooling,
                         positions, position_scale)
        d, h, n = int(self.d_model), int(self.num_heads), len(self._names)
        self.proj = self._projections()
        self.pos = PositionalEncoding(d, scale_input=True)
        self.modality = ModalityEmbedding(n, d)
        self.encoder = CrossmodalEncoder(d, h, int(self.num_layers), None,
                                         attn_dropout=float(self.attn_dropout),
                                         relu_dropout=float(self.relu_dropout),
                                         res_dropout=float(self.res_dropout),
                                         embed_dropout=float(self.embed_dropout), add_positions=False)
        self.head = _ResidualHead(n * d, int(self.output_dim), float(self.out_dropout))

    def _pair_inputs(self, t: int, s: int) -> set[int]:
        return set(range(len(self._names)))

    def _run(self, xs, masks, lengths, pairs, predict):
        pos = self._positions(xs, lengths)
        parts = [self.modality(self.pos(self._project(m, x)) if p is None
                               else _embed_at(self._project(m, x), p), m)
                 for m, (x, p) in enumerate(zip(xs, pos))]
        sizes = [p.shape[1] for p in parts]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        z, w = self.encoder(torch.cat(parts, dim=1), key_padding_mask=torch.cat(masks, dim=1),
                            need_weights=bool(pairs))
        weights = {}
        for t, s in pairs:
            weights[(t, s)] = w[..., offsets[t]:offsets[t + 1], offsets[s]:offsets[s + 1]]
        if not predict:
            return None, weights
        pooled = [_pool(z[:, offsets[m]:offsets[m + 1]], lengths[m], self._pool_of(m))
                  for m in range(len(xs))]
        return self.head(torch.cat(pooled, dim=-1)), weights


# =========================================================================== bimodal network
class BimodalTransformerModule(_FusionModule):
    """The pairwise-fusion network: one crossmodal stack per pair, pooled, concatenated.

    Per modality a ``Conv1d`` projection (``proj``); for each pair
    ``(target, source)`` in ``pairs`` (default: every unordered pair once, the
    earlier modality as target: text←audio, text←video, audio←video) a
    :class:`CrossmodalEncoder` of ``num_layers`` blocks attends from the target
    over the source (``cross["<source>_to_<target>"]``); each output is pooled
    over the target's valid steps and the pooled vectors go into a residual MLP
    head (``head``).

    Parameters
    ----------
    input_dims : tuple of int or dict name -> int
    num_layers : int
        Blocks per pair.
    pairs : sequence of (target, source) names, or None
    %(network)s
    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import BimodalTransformerModule
    >>> net = BimodalTransformerModule((4, 3, 2), d_model=8, num_heads=2, num_layers=1)
    >>> net.pairs()
    [('text', 'audio'), ('text', 'video'), ('audio', 'video')]
    >>> w = net.eval().attention({"text": torch.randn(5, 4), "audio": torch.randn(9, 3),
    ...                           "video": None}, target="text", source="audio")
    >>> w.shape
    torch.Size([1, 1, 2, 5, 9])
    """

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 2,
                 pairs: Sequence[tuple[str, str]] | None = None,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last",
                 positions: str = "index", position_scale: float = 100.0) -> None:
        super().__init__(input_dims, d_model, num_heads, num_layers, attn_dropout, relu_dropout,
                         res_dropout, embed_dropout, out_dropout, output_dim, conv_kernel, pooling,
                         positions, position_scale)
        d, h = int(self.d_model), int(self.num_heads)
        self._pairs = _pair_list(self._names, pairs)
        self.proj = self._projections()
        self.cross = nn.ModuleDict({
            f"{self._names[s]}_to_{self._names[t]}": CrossmodalEncoder(
                d, h, int(self.num_layers), d, attn_dropout=float(self.attn_dropout),
                relu_dropout=float(self.relu_dropout), res_dropout=float(self.res_dropout),
                embed_dropout=float(self.embed_dropout))
            for t, s in self._pairs})
        self.head = _ResidualHead(len(self._pairs) * d, int(self.output_dim), float(self.out_dropout))

    def _pair_ok(self, t: int, s: int) -> bool:
        return (t, s) in self._pairs

    def _run(self, xs, masks, lengths, pairs, predict):
        want = set(pairs)
        todo = self._pairs if predict else [p for p in self._pairs if p in want]
        h = {m: self._project(m, x) for m, x in enumerate(xs) if x is not None}
        pos = self._positions(xs, lengths)
        weights, pooled = {}, []
        for t, s in todo:
            enc = self.cross[f"{self._names[s]}_to_{self._names[t]}"]
            o, w = enc(h[t], h[s], key_padding_mask=masks[s], need_weights=(t, s) in want,
                       positions=pos[t], source_positions=pos[s])
            if (t, s) in want:
                weights[(t, s)] = w
            if predict:
                pooled.append(_pool(o, lengths[t], self._pool_of(t)))
        pred = self.head(torch.cat(pooled, dim=-1)) if predict else None
        return pred, weights


# =========================================================================== estimators
class _FusionAligner(TorchAligner):
    """Shared training / prediction / alignment code of the fusion estimators.

    Subclasses store their hyper-parameters in ``__init__``, name their network's
    arguments in ``_MODULE_PARAMS`` and build it in ``_make_module``.
    """

    TRAIN_DEFAULTS = _TRAIN_DEFAULTS
    _MODULE_PARAMS: tuple[str, ...] = ()

    # ---- hyper-parameters
    def _check_params(self) -> None:
        _check_common(self)
        check_choice(self.loss, "loss", LOSSES)

    def _module_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._MODULE_PARAMS}

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in the order of ``input_dims``."""
        return tuple(_modality_names(self.input_dims)[0])

    def _names_dims(self) -> tuple[list[str], list[int]]:
        return _modality_names(self.input_dims)

    # ---- training
    def fit(self, X: Any, Y: Any = None, *, validation: tuple | None = None,
            lengths: Any = None) -> "_FusionAligner":
        """Train on the task with :func:`mmalign.nn.train.fit` (L1 loss by default, as MulT).

        A new network is built from the training seed first, so ``fit`` always
        starts from scratch and two fits with the same ``train`` seed give the
        same model (on CPU).

        Parameters
        ----------
        X : dict name -> array [shape=(N, T_m, d_m)] or list of (T_i, d_m) arrays; or a tuple
            Training samples (a dict of modalities per sample, batched), padded
            (with ``lengths``) or ragged lists.
        Y : array [shape=(N,) or (N, output_dim)]
            Targets, paired with ``X`` (sentiment score in MulT's setting).
        validation : tuple ``(X_val, Y_val)`` or ``(X_val, Y_val, lengths_val)``, or None
            Keeps the weights of the epoch with the lowest validation MAE; with
            ``train`` ``patience`` set, stops early.
        lengths : dict / tuple of (N,) int arrays, or None
            Valid steps of padded ``X``.

        Returns
        -------
        self
        """
        self._check_params()
        cfg = self.train_config()
        names, dims = self._names_dims()
        if Y is None:
            raise ValueError("Y must be given: the fusion models train on a task")
        data = self._dataset(X, Y, lengths, "X", "Y", "lengths")
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise ValueError("validation must be a tuple (X_val, Y_val) or "
                                 "(X_val, Y_val, lengths_val)")
            lv = validation[2] if len(validation) == 3 else None
            val = self._dataset(validation[0], validation[1], lv, "validation[0]",
                                "validation[1]", "validation[2]")
        if cfg.patience is not None and val is None:
            raise ValueError("train.patience needs validation data "
                             "(fit(..., validation=(X_val, Y_val)))")
        n_mod = len(names)
        loss_name = self.loss
        step = int(cfg.batch_size)

        def _split(batch):
            xs, lens, target = batch[:n_mod], batch[n_mod:2 * n_mod], batch[2 * n_mod]
            # trim every modality to the longest sample of this batch
            xs = [x[:, :int(ln.max())] for x, ln in zip(xs, lens)]
            return dict(zip(names, xs)), dict(zip(names, lens)), target

        def loss_fn(m, batch):
            inputs, lens, target = _split(batch)
            pred = m(inputs, lens)
            if loss_name == "l1":
                return nn.functional.l1_loss(pred, target)
            return nn.functional.mse_loss(pred, target)

        def val_mae(m, batch):
            inputs, lens, target = _split(batch)
            preds = [m(*_chunk(inputs, lens, i, step)) for i in range(0, target.shape[0], step)]
            return float((torch.cat(preds) - target).abs().mean())

        self.n_modalities_ = n_mod
        self._build_module()  # fresh weights from the seed: every fit starts from scratch
        n = data[0].shape[0]
        self._fit_module(loss_fn, data, validation=val,
                         config=dataclasses.replace(cfg, batch_size=min(step, n)),
                         val_metric=val_mae if val is not None else None)
        self.module_.eval()
        return self

    def _dataset(self, X, Y, lengths, name, yname, lname) -> tuple:
        names, dims = self._names_dims()
        b = _prepare(X, lengths, names, dims, name=name, lengths_name=lname)
        if b.single:
            raise ValueError(f"{name} must be a batch (N, T, d) or ragged lists, not one sample")
        target = _as_targets(Y, b.xs[0].shape[0], int(self.output_dim), yname)
        return (*b.xs, *b.lengths, target)

    # ---- inference
    def _eval(self):
        """Context: ``module_`` in eval mode without gradients, its mode restored after."""
        return _EvalMode(self.module_)

    def predict(self, X: Any, lengths: Any = None) -> np.ndarray | torch.Tensor:
        """Task output.

        Parameters
        ----------
        X : a batch or one sample (see the module docstring)
        lengths : dict / tuple of (N,) ints, or None

        Returns
        -------
        prediction : np.ndarray or torch.Tensor [shape=(N,) or (N, output_dim)]
            ``(N,)`` when ``output_dim == 1`` (a scalar's shape ``()`` for one
            sample); a tensor on the input's device when every input is a
            tensor, else a numpy array.
        """
        self._check_fitted()
        net = self.module_
        b = _prepare(X, lengths, net._names, net._dims, name="X")
        step = int(self.train_config().batch_size)
        with self._eval():
            inputs = dict(zip(net._names, b.xs))
            lens = dict(zip(net._names, b.lengths))
            n = b.xs[0].shape[0]
            out = torch.cat([net(*_chunk(inputs, lens, i, step)) for i in range(0, n, step)])
        if int(self.output_dim) == 1:
            out = out[:, 0]
        if b.single:
            out = out[0]
        if b.tensor_in:
            return out.to(b.device) if b.device is not None else out
        return out.cpu().numpy()

    def attention(self, X: Any, lengths: Any = None, *, target: Any = None,
                  source: Any = None) -> torch.Tensor:
        """Attention of ``target`` queries over ``source`` keys for a batch, padded.

        Attention's own layout (queries before keys), as the network returns it;
        :meth:`align` / :meth:`align_batch` give it as alignments with the
        source on side x.

        Parameters
        ----------
        X : a batch (or one sample) of inputs, see the module docstring
            Modalities the pair does not depend on may be None.
        lengths : dict / tuple of (B,) ints, or None
        target, source : str or int
            Modality names (or indices); default target: the first modality;
            default source: the second (the first for any other target).
            ``target == source`` gives the self-attention where the model has one.

        Returns
        -------
        weights : torch.Tensor [shape=(B, layers, heads, T_target, T_source)]
            On the CPU; zero on padded keys and padded queries.
        """
        self._check_fitted()
        t, s = self._pair(target, source)
        net = self.module_
        b = _prepare(X, lengths, net._names, net._dims, name="X",
                     only=[net._names[i] for i in net._pair_inputs(t, s)])
        return self._attention(b, t, s)

    def _attention(self, b: _Batch, t: int, s: int) -> torch.Tensor:
        with self._eval():
            w = self.module_._pair_weights(b.xs, b.lengths, t, s)
        return w.detach().cpu()

    def _pair(self, target: Any, source: Any) -> tuple[int, int]:
        return self.module_._pair_indices(target, source, owner=type(self).__name__)

    def _inputs(self, x: Any, y: Any, t: int, s: int, name: str, yname: str,
                lengths: Any = None, lname: str = "lengths") -> _Batch:
        """Prepared inputs of the (t, s) attention: ``x`` holds the modalities (dict / tuple)
        or, with ``y``, ``x`` is the source stream and ``y`` the target stream."""
        net = self.module_
        names = net._names
        if y is None:
            return _prepare(x, lengths, names, net._dims, name=name, lengths_name=lname,
                            only=[names[i] for i in net._pair_inputs(t, s)])
        if isinstance(x, Mapping):
            raise ValueError(f"{yname}: {name} is a dict of modalities (it holds the "
                             f"{names[t]!r} stream); give {yname} only with {name} as the "
                             f"{names[s]!r} (source) stream")
        if t == s:
            raise ValueError(f"{yname}: a self-attention map ({names[t]!r}) takes one sample "
                             f"as {name}, without {yname}")
        if net._pair_inputs(t, s) != {t, s}:
            raise ValueError(f"{yname}: the {type(self).__name__} attention between "
                             f"{names[t]!r} and {names[s]!r} depends on other modalities too; "
                             f"give one sample with every modality as {name}")
        inputs: dict[str, Any] = {n: None for n in names}
        inputs[names[s]], inputs[names[t]] = x, y
        lens: Any = None
        if lengths is not None:
            if not isinstance(lengths, Mapping) or set(lengths) - {names[s], names[t]}:
                raise ValueError(f"{lname} must be a dict with the keys {names[s]!r} and / or "
                                 f"{names[t]!r} (source and target streams)")
            lens = {n: lengths.get(n) for n in names}
        try:
            return _prepare(inputs, lens, names, net._dims, name=f"{name}|{yname}",
                            lengths_name=lname, only=[names[s], names[t]])
        except ValueError as err:  # name the argument, not the modality slot
            msg = str(err).replace(f"{name}|{yname}[{names[s]!r}]", name)
            msg = msg.replace(f"{name}|{yname}[{names[t]!r}]", yname)
            raise ValueError(msg.replace(f"{name}|{yname}", f"{name} / {yname}")) from None

    def _alignments(self, b: _Batch, t: int, s: int) -> list[Alignment]:
        w = self._attention(b, t, s).numpy()
        lt, ls = b.lengths[t], b.lengths[s]
        names = self.module_._names
        extras = {"target": names[t], "source": names[s], "model": type(self).__name__}
        out = []
        for i in range(w.shape[0]):
            wi = w[i, ..., :int(lt[i]), :int(ls[i])]  # (layers, heads, T_target, T_source)
            out.append(self._alignment(wi, extras))
        return out

    def _alignment(self, w: np.ndarray, extras: dict) -> Alignment:
        """One Alignment from the ``(layers, heads, T_target, T_source)`` weights: source on
        side x, target on side y, each target step's attention a distribution over x."""
        return Alignment(weights=np.swapaxes(w, -1, -2), weight_axes=("layer", "head"),
                         distribution_over="x", monotonic=False, extras=extras)

    def align(self, x: Any, y: Any = None, *, target: Any = None,
              source: Any = None) -> Alignment:
        """Attention of ``target`` over ``source`` in one sample, source on side x.

        Parameters
        ----------
        x : dict name -> array [shape=(T_m, d_m)] (or a tuple in modality order)
            One sample: the modalities of the pair (modalities the pair does
            not depend on may be None). With ``y``: the **source** stream
            ``(T_source, d_source)``.
        y : array [shape=(T_target, d_target)] or None
            The **target** stream, only with ``x`` the source stream, and only
            where the attention depends on those two streams alone (the
            crossmodal stacks of MulT and of the bimodal model). Refused when
            ``x`` is a dict of modalities.
        target, source : str or int
            Modalities (names or indices); default target: the first modality;
            default source: the second (the first for any other target).

        Returns
        -------
        alignment : Alignment
            Side x = the source's steps, side y = the target's steps; weights
            ``(layers, heads, T_source, T_target)`` (``weight_axes=("layer",
            "head")``) with ``distribution_over="x"``: column ``j`` is target
            step ``j``'s attention over the source. ``monotonic=False``; extras
            ``target``, ``source``, ``model``.

        See Also
        --------
        align_batch : many samples (a padded or ragged batch).
        """
        self._check_fitted()
        t, s = self._pair(target, source)
        b = self._inputs(x, y, t, s, "x", "y")
        if not b.single:
            raise ValueError("x: align takes one sample ((T, d) per modality); give a batch "
                             "to align_batch")
        return self._alignments(b, t, s)[0]

    def align_batch(self, X: Any, Y: Any = None, *, target: Any = None, source: Any = None,
                    lengths: Any = None) -> list[Alignment]:
        """:meth:`align` for every sample of a batch.

        Parameters
        ----------
        X : a batch: dict name -> array [shape=(B, T_m, d_m)] or lists of (T_i, d_m) arrays
            Samples (the modalities of the pair; see the module docstring). With
            ``Y``: a batch of **source** streams ``(B, T_source, d_source)`` or a
            list of ``(T_i, d_source)`` arrays.
        Y : a batch of **target** streams, or None
            As ``y`` of :meth:`align`.
        target, source : str or int
        lengths : dict / tuple of (B,) ints, or None
            Valid steps of padded batches, per modality (with ``Y``: a dict
            keyed by the source and / or target modality names).

        Returns
        -------
        alignments : list of Alignment
            One per sample, as :meth:`align` returns it, cropped to the
            sample's valid steps.
        """
        self._check_fitted()
        t, s = self._pair(target, source)
        b = self._inputs(X, Y, t, s, "X", "Y", lengths=lengths)
        if b.single:
            raise ValueError("X: align_batch takes a batch ((B, T, d) per modality or lists "
                             "of (T, d) arrays); give one sample to align")
        return self._alignments(b, t, s)


class _EvalMode:
    """``module`` in eval mode under ``torch.no_grad()``; its training mode is restored."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.no_grad = torch.no_grad()

    def __enter__(self) -> nn.Module:
        self.was = self.module.training
        self.module.eval()
        self.no_grad.__enter__()
        return self.module

    def __exit__(self, *exc: Any) -> None:
        self.no_grad.__exit__(*exc)
        self.module.train(self.was)


def _chunk(inputs: dict, lens: dict, i: int, step: int) -> tuple[dict, dict]:
    ln = {k: v[i:i + step] for k, v in lens.items()}
    return ({k: v[i:i + step, :int(ln[k].max())] for k, v in inputs.items()}, ln)


# =========================================================================== MulT
class CrossmodalTransformer(_FusionAligner):
    """MulT: directional crossmodal attention for every ordered pair of modalities.

    The estimator of :class:`CrossmodalTransformerModule` (``module_`` after
    ``fit``; the network is described there): directional crossmodal stacks
    for every ordered pair of modalities, a self-attention stack per target,
    pooled targets into a residual MLP head.

    ``align(sample, target=t, source=s)``: the crossmodal attention of ``t``
    over ``s`` (the pair form ``align(x_source, y_target, ...)`` too, as it
    depends on those two streams alone), source on side x; ``target == source``
    gives the target's self-attention (``self_layers`` > 0).

    Parameters
    ----------
    input_dims, num_layers, self_layers, targets
        As in :class:`CrossmodalTransformerModule`: feature size per modality,
        blocks per crossmodal stack (MulT: 5 on MOSEI), blocks of each target's
        self-attention stack (0 skips it), and the modalities used as targets
        (default: all).
    %(common)s
    Attributes
    ----------
    module_ : CrossmodalTransformerModule
        The trained network (in eval mode).
    history_ : dict
        :func:`mmalign.nn.train.fit` history (``train_loss``, ``val_metric``, ``best_epoch``, ...).
    device_ : torch.device

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import CrossmodalTransformer
    >>> model = CrossmodalTransformer((4, 3, 2), d_model=8, num_heads=2, num_layers=1,
    ...                               self_layers=1, train={"max_epochs": 2, "batch_size": 4})
    >>> g = torch.Generator().manual_seed(0)
    >>> X = {"text": torch.randn(8, 5, 4, generator=g), "audio": torch.randn(8, 9, 3, generator=g),
    ...      "video": torch.randn(8, 7, 2, generator=g)}
    >>> lengths = {"text": torch.full((8,), 5), "audio": torch.randint(4, 10, (8,), generator=g),
    ...            "video": torch.full((8,), 7)}
    >>> model = model.fit(X, torch.randn(8, generator=g), lengths=lengths)
    >>> model.predict(X, lengths).shape
    torch.Size([8])
    >>> model.attention(X, lengths, target="text", source="audio").shape
    torch.Size([8, 1, 2, 5, 9])
    >>> al = model.align_batch(X, lengths=lengths, target="text", source="audio")[0]
    >>> al.shape == (int(lengths["audio"][0]), 5), al.weights.shape[:2], al.distribution_over
    (True, (1, 2), 'x')
    >>> sample = {name: X[name][0, :int(lengths[name][0])] for name in X}
    >>> model.align(sample, target="text", source="audio").shape == al.shape
    True
    """

    _MODULE_PARAMS = ("input_dims", "d_model", "num_heads", "num_layers", "self_layers", "targets",
                      "attn_dropout", "relu_dropout", "res_dropout", "embed_dropout", "out_dropout",
                      "output_dim", "conv_kernel", "pooling", "positions", "position_scale")

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 3,
                 self_layers: int = 3, targets: Sequence[str] | None = None,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last",
                 positions: str = "index", position_scale: float = 100.0, loss: str = "l1",
                 train: Mapping[str, Any] | TrainConfig | None = None) -> None:
        self.input_dims = input_dims
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.self_layers = self_layers
        self.targets = targets
        self.attn_dropout = attn_dropout
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.embed_dropout = embed_dropout
        self.out_dropout = out_dropout
        self.output_dim = output_dim
        self.conv_kernel = conv_kernel
        self.pooling = pooling
        self.positions = positions
        self.position_scale = position_scale
        self.loss = loss
        self.train = train

    def _check_params(self) -> None:
        names, _ = _check_common(self)
        check_int(self.self_layers, "self_layers", 0)
        _target_indices(names, self.targets)
        check_choice(self.loss, "loss", LOSSES)

    def _make_module(self) -> CrossmodalTransformerModule:
        return CrossmodalTransformerModule(**self._module_kwargs())


# =========================================================================== joint
class JointSelfAttentionFusion(_FusionAligner):
    """Early fusion: one self-attention encoder over all modalities' steps, concatenated.

    The estimator of :class:`JointSelfAttentionFusionModule` (``module_`` after
    ``fit``; the network is described there): the projected streams, with
    positions and modality embeddings, concatenated along time through
    ``num_layers`` self-attention blocks, pooled per modality into a residual
    MLP head.

    ``align(sample, target=t, source=s)`` returns the block of the joint
    attention of ``t``'s queries over ``s``'s keys, source on side x, target
    on side y, renormalised so that each target step's weights sum to 1 over
    the source (``renormalize=False`` keeps the raw mass; the path is the same);
    the raw mass each target step puts on ``s`` is in ``extras["row_mass"]``
    ``(layers, heads, T_target)`` (a row of the attention matrix, queries
    first). All pairs, ``t == s`` included, exist; every map depends on all
    modalities, so ``align`` takes one sample with every modality (no pair
    form).

    Parameters
    ----------
    input_dims : tuple of int or dict name -> int
    num_layers : int
        Self-attention blocks.
    renormalize : bool
        Default of ``align``'s renormalisation of the cross block.
    %(common)s
    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import JointSelfAttentionFusion
    >>> model = JointSelfAttentionFusion((4, 3), d_model=8, num_heads=2, num_layers=1,
    ...                                  train={"max_epochs": 1})
    >>> X = {"m0": torch.randn(6, 5, 4), "m1": torch.randn(6, 7, 3)}
    >>> al = model.fit(X, torch.randn(6)).align({"m0": torch.randn(5, 4), "m1": torch.randn(7, 3)},
    ...                                         target="m0", source="m1")
    >>> al.shape, al.weights.shape, al.extras["row_mass"].shape
    ((7, 5), (1, 2, 7, 5), (1, 2, 5))
    >>> bool(abs(al.weights.sum(axis=-2) - 1).max() < 1e-6)
    True
    """

    _MODULE_PARAMS = ("input_dims", "d_model", "num_heads", "num_layers", "attn_dropout",
                      "relu_dropout", "res_dropout", "embed_dropout", "out_dropout", "output_dim",
                      "conv_kernel", "pooling", "positions", "position_scale")

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 3,
                 renormalize: bool = True,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last",
                 positions: str = "index", position_scale: float = 100.0, loss: str = "l1",
                 train: Mapping[str, Any] | TrainConfig | None = None) -> None:
        self.input_dims = input_dims
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.renormalize = renormalize
        self.attn_dropout = attn_dropout
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.embed_dropout = embed_dropout
        self.out_dropout = out_dropout
        self.output_dim = output_dim
        self.conv_kernel = conv_kernel
        self.pooling = pooling
        self.positions = positions
        self.position_scale = position_scale
        self.loss = loss
        self.train = train

    def _check_params(self) -> None:
        super()._check_params()
        check_bool(self.renormalize, "renormalize")

    def _make_module(self) -> JointSelfAttentionFusionModule:
        return JointSelfAttentionFusionModule(**self._module_kwargs())

    def _renormalized(self, alignments: list[Alignment], renormalize: Any) -> list[Alignment]:
        renorm = self.renormalize if renormalize is None else check_bool(renormalize, "renormalize")
        out = []
        for a in alignments:
            # (layers, heads, T_target, T_source), C-contiguous as the attention it came from
            w = np.ascontiguousarray(np.swapaxes(a.weights, -1, -2), dtype=np.float64)
            mass = w.sum(-1)
            if renorm:
                w = w / np.where(mass > 0, mass, 1.0)[..., None]
            out.append(self._alignment(w, {**a.extras, "row_mass": mass,
                                           "renormalized": bool(renorm)}))
        return out

    def align(self, x: Any, y: Any = None, *, target: Any = None, source: Any = None,
              renormalize: bool | None = None) -> Alignment:
        """Block of the joint attention, target queries over source keys, source on side x.

        Parameters are those of :meth:`CrossmodalTransformer.align` without the
        pair form (``y`` is refused: every map depends on all modalities), plus
        ``renormalize`` (None: the constructor's).

        Returns
        -------
        alignment : Alignment
            Weights ``(layers, heads, T_source, T_target)``,
            ``distribution_over="x"``; extras ``target``, ``source``, ``model``,
            ``row_mass`` ``(layers, heads, T_target)`` and ``renormalized``.
        """
        self._reject_pair(y, "y", "x")
        return self._renormalized([super().align(x, target=target, source=source)],
                                  renormalize)[0]

    def align_batch(self, X: Any, Y: Any = None, *, target: Any = None, source: Any = None,
                    lengths: Any = None, renormalize: bool | None = None) -> list[Alignment]:
        """:meth:`align` for every sample of a batch (see :meth:`_FusionAligner.align_batch`;
        ``Y`` is refused), plus ``renormalize``."""
        self._reject_pair(Y, "Y", "X")
        return self._renormalized(super().align_batch(X, target=target, source=source,
                                                      lengths=lengths), renormalize)

    @staticmethod
    def _reject_pair(y: Any, name: str, xname: str) -> None:
        if y is not None:
            raise ValueError(f"{name}: the joint attention depends on every modality; give "
                             f"every modality in {xname} (a dict name -> stream)")


# =========================================================================== bimodal
class BimodalTransformer(_FusionAligner):
    """Pairwise fusion: one crossmodal stack per pair of modalities, pooled, concatenated.

    The estimator of :class:`BimodalTransformerModule` (``module_`` after
    ``fit``; the network is described there): one crossmodal stack per pair in
    ``pairs``, pooled into a residual MLP head. No per-target self-attention
    and no concatenation across sources (the two things MulT adds).

    ``align``: the attention of a pair in ``pairs``, source on side x (the pair
    form ``align(x_source, y_target, ...)`` too).

    Parameters
    ----------
    input_dims : tuple of int or dict name -> int
    pairs : sequence of (target, source) names, or None
    num_layers : int
        Blocks per pair.
    %(common)s
    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import BimodalTransformer
    >>> model = BimodalTransformer((4, 3, 2), d_model=8, num_heads=2, num_layers=1,
    ...                            train={"max_epochs": 1})
    >>> X = {"text": torch.randn(6, 5, 4), "audio": torch.randn(6, 9, 3),
    ...      "video": torch.randn(6, 7, 2)}
    >>> model = model.fit(X, torch.randn(6))
    >>> al = model.align(torch.randn(9, 3), torch.randn(5, 4), source="audio", target="text")
    >>> al.shape, al.weights.shape
    ((9, 5), (1, 2, 9, 5))
    """

    _MODULE_PARAMS = ("input_dims", "d_model", "num_heads", "num_layers", "pairs", "attn_dropout",
                      "relu_dropout", "res_dropout", "embed_dropout", "out_dropout", "output_dim",
                      "conv_kernel", "pooling", "positions", "position_scale")

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 2,
                 pairs: Sequence[tuple[str, str]] | None = None,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last",
                 positions: str = "index", position_scale: float = 100.0, loss: str = "l1",
                 train: Mapping[str, Any] | TrainConfig | None = None) -> None:
        self.input_dims = input_dims
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.pairs = pairs
        self.attn_dropout = attn_dropout
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.embed_dropout = embed_dropout
        self.out_dropout = out_dropout
        self.output_dim = output_dim
        self.conv_kernel = conv_kernel
        self.pooling = pooling
        self.positions = positions
        self.position_scale = position_scale
        self.loss = loss
        self.train = train

    def _check_params(self) -> None:
        names, _ = _check_common(self)
        _pair_list(names, self.pairs)
        check_choice(self.loss, "loss", LOSSES)

    def _make_module(self) -> BimodalTransformerModule:
        return BimodalTransformerModule(**self._module_kwargs())


for _cls in (CrossmodalTransformerModule, JointSelfAttentionFusionModule, BimodalTransformerModule):
    _cls.__doc__ = _cls.__doc__.replace("    %(network)s\n", _NETWORK_DOC.lstrip("\n") + "\n")
for _cls in (CrossmodalTransformer, JointSelfAttentionFusion, BimodalTransformer):
    _cls.__doc__ = _cls.__doc__.replace("    %(common)s\n", _ESTIMATOR_DOC.lstrip("\n") + "\n")
del _cls
