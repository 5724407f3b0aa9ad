"""Crossmodal fusion transformers scored as aligners: MulT and two simpler designs.

Three models share one interface (an :class:`~mmalign.aligner.Aligner` that is
also a ``torch.nn.Module``): ``fit`` trains them on a per-sample regression
task (sentiment in MulT's papers) with :func:`mmalign.nn.train.fit`, ``predict``
returns the task output, and ``align`` returns the attention between two
modalities as an :class:`~mmalign.alignment.Alignment` (target on side x,
source on side y, weights ``(layers, heads, T_target, T_source)``).

- :class:`CrossmodalTransformer` — MulT (Tsai et al., ACL 2019): for every
  ordered pair (source → target) a stack of crossmodal blocks whose queries
  come from the target and keys / values from the source; the outputs for one
  target are concatenated and go through a self-attention stack; every
  target is pooled (by default its last valid step, as MulT) into a residual
  MLP head.
- :class:`JointSelfAttentionFusion` — early fusion: all modalities' projected
  steps, each with its own positions plus a learned modality embedding, are
  concatenated into one sequence and go through one self-attention encoder.
  Crossmodal alignment is the (target rows, source columns) block of the joint
  attention.
- :class:`BimodalTransformer` — pairwise fusion: one crossmodal stack per pair
  of modalities (no per-target self-attention), each pooled, concatenated.

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
it re-initialises the weights from ``seed`` first.
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

from ..aligner import Aligner
from ..alignment import Alignment
from ..nn.functional import lengths_to_padding_mask
from ..nn.layers import MultiHeadAttention
from ..nn.positional import ModalityEmbedding, PositionalEncoding, sinusoidal_positions
from ..nn.train import check_fit_params
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_choice, check_fitted, check_float, check_int

__all__ = [
    "CrossmodalLayer",
    "CrossmodalEncoder",
    "CrossmodalTransformer",
    "JointSelfAttentionFusion",
    "BimodalTransformer",
]

POOLINGS = ("last", "mean", "sum")
POSITIONS = ("index", "relative")
LOSSES = ("l1", "mse")
_THREE = ("text", "audio", "video")


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


def _as_targets(y: Any, n: int, output_dim: int) -> torch.Tensor:
    t = as_float(as_tensor(y, "y"), torch.float32, "y")
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] != n or t.shape[1] != output_dim:
        raise ValueError(f"y must have shape ({n},) or ({n}, {output_dim}) (samples, output_dim), "
                         f"got {tuple(as_tensor(y, 'y').shape)}")
    return t


# =========================================================================== base
class _FusionAligner(Aligner, nn.Module):
    """Shared training / prediction / alignment code of the fusion transformers."""

    _model_name = "fusion"

    # ---- subclasses implement
    @abc.abstractmethod
    def _build(self) -> None:
        """Create the submodules from the validated hyper-parameters."""

    @abc.abstractmethod
    def _run(self, xs: list, masks: list, lengths: list, pairs: Sequence[tuple[int, int]],
             predict: bool) -> tuple[torch.Tensor | None, dict]:
        """Forward pass: predictions (when ``predict``) and the attention of ``pairs``."""

    def _pair_ok(self, t: int, s: int) -> bool:
        return True

    def _pair_inputs(self, t: int, s: int) -> set[int]:
        """Modalities whose inputs the (t, s) attention depends on."""
        return {t, s}

    # ---- construction
    def _init_common(self) -> None:
        self._names, self._dims = _modality_names(self.input_dims)
        self._check_params()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            self._build()

    def _check_params(self) -> None:
        d = check_int(self.d_model, "d_model", 1)
        h = check_int(self.num_heads, "num_heads", 1)
        if d % h:
            raise ValueError(f"d_model ({d}) must be a multiple of num_heads ({h})")
        check_int(self.num_layers, "num_layers", 1)
        for p in ("attn_dropout", "relu_dropout", "res_dropout", "embed_dropout", "out_dropout"):
            check_float(getattr(self, p), p, 0.0, 1.0)
            if getattr(self, p) >= 1.0:
                raise ValueError(f"{p} must be < 1, got {getattr(self, p)}")
        check_int(self.output_dim, "output_dim", 1)
        k = check_int(self.conv_kernel, "conv_kernel", 1)
        if k % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (lengths are kept), got {k}")
        if isinstance(self.pooling, Mapping):
            extra = [k for k in self.pooling if k not in self._names]
            if extra or len(self.pooling) != len(self._names):
                raise ValueError(f"pooling as a dict must name every modality {self._names} "
                                 f"once, got keys {list(self.pooling)}")
            for v in self.pooling.values():
                check_choice(v, "pooling", POOLINGS)
        else:
            check_choice(self.pooling, "pooling", POOLINGS)
        check_choice(self.positions, "positions", POSITIONS)
        check_float(self.position_scale, "position_scale", 0.0, low_open=True)
        check_choice(self.loss, "loss", LOSSES)
        check_fit_params(self)

    def _projections(self) -> nn.ModuleDict:
        k = int(self.conv_kernel)
        return nn.ModuleDict({
            n: nn.Conv1d(dim, int(self.d_model), k, padding=k // 2, bias=False)
            for n, dim in zip(self._names, self._dims)})

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

    def _index(self, mod: Any, name: str) -> int:
        if isinstance(mod, numbers.Integral) and not isinstance(mod, bool):
            if 0 <= int(mod) < len(self._names):
                return int(mod)
        elif mod in self._names:
            return self._names.index(mod)
        raise ValueError(f"{name} must be one of {self._names} (or an index), got {mod!r}")

    def _model_device(self) -> torch.device:
        p = next(iter(self.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    # ---- forward
    def forward(self, inputs: Any, lengths: Any = None, *,
                return_weights: bool = False) -> Any:
        """Task output of a batch (and every attention map when asked).

        Parameters
        ----------
        inputs : dict name -> torch.Tensor [shape=(B, T_m, d_m)] or tuple in modality order
        lengths : dict / tuple of (B,) int tensors, or None
            Valid steps per sample and modality; None: all steps are valid.
        return_weights : bool

        Returns
        -------
        prediction : torch.Tensor [shape=(B, output_dim)]
        weights : dict (target, source) -> torch.Tensor [shape=(B, layers, heads, T_target, T_source)]
            Only with ``return_weights``; zero on padded keys and on padded queries.
        """
        dev = self._model_device()
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

    def _all_pairs(self) -> list[tuple[int, int]]:
        n = len(self._names)
        return [(t, s) for t in range(n) for s in range(n) if self._pair_ok(t, s)]

    # ---- training
    def fit(self, X: Any, y: Any = None, lengths: Any = None, *,
            validation: tuple | None = None) -> "_FusionAligner":
        """Train on the task with :func:`mmalign.nn.train.fit` (L1 loss by default, as MulT).

        The weights are re-initialised from ``seed`` first, so ``fit`` always
        starts from scratch and two fits with the same ``seed`` give the same
        model (on CPU).

        Parameters
        ----------
        X : dict name -> array [shape=(N, T_m, d_m)] or list of (T_i, d_m) arrays; or a tuple
            Training inputs, padded (with ``lengths``) or ragged lists.
        y : array [shape=(N,) or (N, output_dim)]
            Targets (sentiment score in MulT's setting).
        lengths : dict / tuple of (N,) int arrays, or None
        validation : tuple ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``, or None
            Keeps the weights of the epoch with the lowest validation MAE; with
            ``patience`` set, stops early.

        Returns
        -------
        self
        """
        from ..nn.train import TrainConfig, fit as train_fit

        self._init_common()  # fresh weights from `seed` (and re-validates the parameters)
        if y is None:
            raise ValueError("y must be given: the fusion models train on a task")
        data = self._dataset(X, y, lengths, "X", "lengths")
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise ValueError("validation must be a tuple (X_val, y_val) or "
                                 "(X_val, y_val, lengths_val)")
            Xv, yv = validation[0], validation[1]
            lv = validation[2] if len(validation) == 3 else None
            val = self._dataset(Xv, yv, lv, "validation[0]", "validation[2]")
        if self.patience is not None and val is None:
            raise ValueError("patience needs validation data (fit(..., validation=(X_val, y_val)))")
        n_mod = len(self._names)
        loss_name = self.loss

        def _split(batch):
            xs, lens, target = batch[:n_mod], batch[n_mod:2 * n_mod], batch[2 * n_mod]
            # trim every modality to the longest sample of this batch
            xs = [x[:, :int(ln.max())] for x, ln in zip(xs, lens)]
            return dict(zip(self._names, xs)), dict(zip(self._names, lens)), target

        def loss_fn(model, batch):
            inputs, lens, target = _split(batch)
            pred = model(inputs, lens)
            if loss_name == "l1":
                return nn.functional.l1_loss(pred, target)
            return nn.functional.mse_loss(pred, target)

        def val_mae(model, batch):
            inputs, lens, target = _split(batch)
            preds = [model(*_chunk(inputs, lens, i, int(self.batch_size)))
                     for i in range(0, target.shape[0], int(self.batch_size))]
            return float((torch.cat(preds) - target).abs().mean())

        n = data[0].shape[0]
        bs = min(int(self.batch_size), n)
        config = TrainConfig(max_epochs=int(self.max_epochs), batch_size=bs, lr=float(self.lr),
                             weight_decay=float(self.weight_decay), grad_clip=self.grad_clip,
                             seed=int(self.seed), device=str(self.device), progress=False,
                             patience=self.patience)
        history = train_fit(self, loss_fn, data, config=config, val_data=val,
                            val_metric=val_mae if val is not None else None)
        self.history_ = history.as_dict()
        self.device_ = self._model_device()
        self.n_modalities_ = n_mod
        self.eval()
        return self

    def _dataset(self, X, y, lengths, name, lname) -> tuple:
        b = _prepare(X, lengths, self._names, self._dims, name=name, lengths_name=lname)
        if b.single:
            raise ValueError(f"{name} must be a batch (N, T, d) or ragged lists, not one sample")
        target = _as_targets(y, b.xs[0].shape[0], int(self.output_dim))
        return (*b.xs, *b.lengths, target)

    # ---- inference
    @torch.no_grad()
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
        check_fitted(self, "history_")
        b = _prepare(X, lengths, self._names, self._dims, name="X")
        was = self.training
        self.eval()
        try:
            inputs = dict(zip(self._names, b.xs))
            lens = dict(zip(self._names, b.lengths))
            n = b.xs[0].shape[0]
            step = int(self.batch_size)
            out = torch.cat([self(*_chunk(inputs, lens, i, step)) for i in range(0, n, step)])
        finally:
            self.train(was)
        if int(self.output_dim) == 1:
            out = out[:, 0]
        if b.single:
            out = out[0]
        if b.tensor_in:
            return out.to(b.device) if b.device is not None else out
        return out.cpu().numpy()

    @torch.no_grad()
    def attention(self, X: Any, lengths: Any = None, *, target: Any = None,
                  source: Any = None) -> torch.Tensor:
        """Attention of ``target`` queries over ``source`` keys for a batch, padded.

        Parameters
        ----------
        X : a batch (or one sample) of inputs, see the module docstring
        lengths : dict / tuple of (B,) ints, or None
        target, source : str or int
            Modality names (or indices); default: the first modality over the
            second (first over first's next for ``source``). ``target == source``
            gives the self-attention where the model has one.

        Returns
        -------
        weights : torch.Tensor [shape=(B, layers, heads, T_target, T_source)]
            On the CPU; zero on padded keys and padded queries.
        """
        t, s = self._pair_indices(target, source)
        b = _prepare(X, lengths, self._names, self._dims, name="X",
                     only=[self._names[i] for i in self._pair_inputs(t, s)])
        return self._attention(b, t, s)

    @torch.no_grad()
    def _attention(self, b: _Batch, t: int, s: int) -> torch.Tensor:
        dev = self._model_device()
        was = self.training
        self.eval()
        try:
            xs = [None if x is None else x.to(dev) for x in b.xs]
            lens = [None if ln is None else ln.to(dev) for ln in b.lengths]
            masks = [None if x is None else lengths_to_padding_mask(ln, x.shape[1])
                     for ln, x in zip(lens, xs)]
            _, weights = self._run(xs, masks, lens, [(t, s)], predict=False)
        finally:
            self.train(was)
        return _zero_pad_rows(weights[(t, s)], masks[t]).detach().cpu()

    def _pair_indices(self, target: Any, source: Any) -> tuple[int, int]:
        t = 0 if target is None else self._index(target, "target")
        s = (1 if t == 0 else 0) if source is None else self._index(source, "source")
        if not self._pair_ok(t, s):
            raise ValueError(f"source={self._names[s]!r} -> target={self._names[t]!r}: this "
                             f"{type(self).__name__} has no attention between them; pairs: "
                             f"{[(self._names[a], self._names[c]) for a, c in self._all_pairs()]}")
        return t, s

    def align(self, x: Any, y: Any = None, *, target: Any = None, source: Any = None,
              lengths: Any = None) -> Alignment | list[Alignment]:
        """Attention of ``target`` over ``source`` as :class:`Alignment` s.

        Parameters
        ----------
        x : one sample, a batch (see the module docstring), or the target stream
            With ``y`` given, ``x`` is the target modality's sequence
            ``(T_target, d_target)`` and ``y`` the source's (only valid when the
            attention depends on those two streams alone, as in MulT's and the
            bimodal crossmodal stacks).
        y : array [shape=(T_source, d_source)] or None
        target, source : str or int
            Modalities (default: first over second).
        lengths : dict / tuple, or None
            For a padded batch.

        Returns
        -------
        alignment : Alignment or list of Alignment
            One per sample (a list for a batch), weights
            ``(layers, heads, T_target, T_source)`` cropped to the sample's true
            lengths; ``monotonic=False``; extras hold ``target``, ``source`` and
            ``model``.
        """
        t, s = self._pair_indices(target, source)
        if y is not None:
            need = self._pair_inputs(t, s)
            if need != {t, s}:
                raise ValueError(f"y: the {type(self).__name__} attention between "
                                 f"{self._names[t]!r} and {self._names[s]!r} depends on other "
                                 "modalities too; pass all inputs as x")
            if t == s:
                raise ValueError("y: give only x for a self-attention map")
            inputs: Any = {n: None for n in self._names}
            inputs[self._names[t]], inputs[self._names[s]] = x, y
            only = [self._names[t], self._names[s]]
        else:
            inputs = x
            only = [self._names[i] for i in self._pair_inputs(t, s)]
        b = _prepare(inputs, lengths, self._names, self._dims, name="x", only=only)
        w = self._attention(b, t, s).numpy()
        lt, ls = b.lengths[t], b.lengths[s]
        out = []
        for i in range(w.shape[0]):
            wi = w[i, ..., :int(lt[i]), :int(ls[i])]
            out.append(Alignment(weights=wi, weight_axes=("layer", "head"), monotonic=False, extras={
                "target": self._names[t], "source": self._names[s], "model": type(self).__name__}))
        return out[0] if b.single else out


def _chunk(inputs: dict, lens: dict, i: int, step: int) -> tuple[dict, dict]:
    ln = {k: v[i:i + step] for k, v in lens.items()}
    return ({k: v[i:i + step, :int(ln[k].max())] for k, v in inputs.items()}, ln)


def _zero_pad_rows(w: torch.Tensor, mask_t: torch.Tensor) -> torch.Tensor:
    return w.masked_fill(mask_t[:, None, None, :, None], 0.0)


_COMMON_DOC = """
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
    positions : {"index", "relative"}
        Where the sinusoidal codes are evaluated: at the step index
        ``0, 1, ...`` of each stream (MulT), or at the relative time
        ``(t + 0.5) / length * position_scale`` of each sample's stream, so
        that streams of different rates start and end at the same positions
        (a prior of a uniform time alignment).
    position_scale : float > 0
        Range of the relative positions.
    pooling : {"last", "mean", "sum"} or dict name -> one of them
        How each target stream is pooled: its last *valid* step (MulT), or
        the mean / sum over valid steps (``"sum"`` suits labels that add up
        per-word evidence; keep it for short streams such as words). A dict
        chooses per modality.
    loss : {"l1", "mse"}
        Training loss (MulT: L1).
    max_epochs, batch_size, lr, weight_decay, grad_clip, patience :
        Passed to :class:`mmalign.nn.train.TrainConfig` (Adam).
    seed : int
        Seeds the weights (in ``__init__`` and again in ``fit``) and training.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` for ``fit``.
"""


# =========================================================================== MulT
class CrossmodalTransformer(_FusionAligner):
    """MulT: directional crossmodal attention for every ordered pair of modalities.

    Per modality a ``Conv1d`` projection to ``d_model``; for every target ``t``
    and every source ``s != t`` a :class:`CrossmodalEncoder` of ``num_layers``
    blocks (queries from ``t``, keys / values from ``s``); the outputs for one
    target are concatenated (``(M - 1) * d_model``) and go through a
    self-attention :class:`CrossmodalEncoder` of ``self_layers`` blocks; each
    target is pooled (last valid step by default) and the pooled vectors are
    concatenated into a residual MLP head.

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
    %(common)s
    Attributes
    ----------
    history_ : dict
        :func:`mmalign.nn.train.fit` history (``train_loss``, ``val_metric``, ``best_epoch``, ...).
    device_ : torch.device

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import CrossmodalTransformer
    >>> model = CrossmodalTransformer((4, 3, 2), d_model=8, num_heads=2, num_layers=1,
    ...                               self_layers=1, max_epochs=2, batch_size=4)
    >>> g = torch.Generator().manual_seed(0)
    >>> X = {"text": torch.randn(8, 5, 4, generator=g), "audio": torch.randn(8, 9, 3, generator=g),
    ...      "video": torch.randn(8, 7, 2, generator=g)}
    >>> lengths = {"text": torch.full((8,), 5), "audio": torch.randint(4, 10, (8,), generator=g),
    ...            "video": torch.full((8,), 7)}
    >>> model = model.fit(X, torch.randn(8, generator=g), lengths)
    >>> model.predict(X, lengths).shape
    torch.Size([8])
    >>> model.attention(X, lengths, target="text", source="audio").shape
    torch.Size([8, 1, 2, 5, 9])
    >>> al = model.align(X, lengths=lengths, target="text", source="audio")[0]
    >>> al.weights.shape == (1, 2, 5, int(lengths["audio"][0]))
    True
    """

    _model_name = "MulT"

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 3,
                 self_layers: int = 3, targets: Sequence[str] | None = None,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last", positions: str = "index",
                 position_scale: float = 100.0, loss: str = "l1",
                 max_epochs: int = 40, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, grad_clip: float | None = 0.8,
                 patience: int | None = None, seed: int = 0, device: str = "cpu") -> None:
        nn.Module.__init__(self)
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
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.seed = seed
        self.device = device
        self._init_common()

    def _target_indices(self) -> list[int]:
        if self.targets is None:
            return list(range(len(self._names)))
        if isinstance(self.targets, str) or not isinstance(self.targets, (tuple, list)):
            raise ValueError(f"targets must be a list of modality names or None, got {self.targets!r}")
        idx = [self._index(t, "targets") for t in self.targets]
        if not idx or len(set(idx)) != len(idx):
            raise ValueError(f"targets must name distinct modalities, got {self.targets!r}")
        return sorted(idx)

    def _build(self) -> None:
        check_int(self.self_layers, "self_layers", 0)
        self._targets = self._target_indices()
        d, h = int(self.d_model), int(self.num_heads)
        drops = dict(attn_dropout=float(self.attn_dropout), relu_dropout=float(self.relu_dropout),
                     res_dropout=float(self.res_dropout), embed_dropout=float(self.embed_dropout))
        n = len(self._names)
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


# =========================================================================== joint
class JointSelfAttentionFusion(_FusionAligner):
    """Early fusion: one self-attention encoder over all modalities' steps, concatenated.

    Each modality is projected (``Conv1d``), scaled by ``sqrt(d_model)``, given
    sinusoidal positions of its own time axis and a learned
    :class:`~mmalign.nn.ModalityEmbedding`; the streams are concatenated
    along time (padding masked) and go through ``num_layers`` pre-norm
    self-attention blocks; each modality's block of the output is pooled and
    the pooled vectors are concatenated into a residual MLP head.

    ``align(target=t, source=s)`` returns the ``(T_t, T_s)`` block of the joint
    attention (queries of ``t`` over keys of ``s``), renormalised per row so
    that it sums to 1 (``renormalize=False`` keeps the raw mass); the raw mass
    each query puts on ``s`` is in ``extras["row_mass"]``
    ``(layers, heads, T_t)``. All pairs, ``t == s`` included, exist; every map
    depends on all modalities.

    Parameters
    ----------
    input_dims : tuple of int or dict name -> int
    num_layers : int
        Self-attention blocks.
    renormalize : bool
        Default of ``align``'s row renormalisation of the cross block.
    %(common)s
    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import JointSelfAttentionFusion
    >>> model = JointSelfAttentionFusion((4, 3), d_model=8, num_heads=2, num_layers=1)
    >>> X = {"m0": torch.randn(2, 5, 4), "m1": torch.randn(2, 6, 3)}
    >>> pred, w = model.eval()(X, {"m0": torch.tensor([5, 3]), "m1": torch.tensor([6, 6])},
    ...                        return_weights=True)
    >>> pred.shape, w[("m0", "m1")].shape
    (torch.Size([2, 1]), torch.Size([2, 1, 2, 5, 6]))
    """

    _model_name = "joint"

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 3,
                 renormalize: bool = True,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last", positions: str = "index",
                 position_scale: float = 100.0, loss: str = "l1",
                 max_epochs: int = 40, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, grad_clip: float | None = 0.8,
                 patience: int | None = None, seed: int = 0, device: str = "cpu") -> None:
        nn.Module.__init__(self)
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
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.seed = seed
        self.device = device
        self._init_common()

    def _build(self) -> None:
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

    def align(self, x: Any, y: Any = None, *, target: Any = None, source: Any = None,
              lengths: Any = None, renormalize: bool | None = None) -> Alignment | list[Alignment]:
        """Block of the joint attention, target queries over source keys (see the class docstring).

        Parameters are those of :meth:`CrossmodalTransformer.align` (``y`` is
        not accepted: every map depends on all modalities) plus
        ``renormalize`` (None: the constructor's).
        """
        if y is not None:
            raise ValueError("y: the joint attention depends on every modality; pass all inputs as x")
        res = super().align(x, target=target, source=source, lengths=lengths)
        renorm = self.renormalize if renormalize is None else bool(renormalize)
        out = []
        for a in ([res] if isinstance(res, Alignment) else res):
            w = np.asarray(a.weights, dtype=np.float64)
            mass = w.sum(-1)
            if renorm:
                w = w / np.where(mass > 0, mass, 1.0)[..., None]
            out.append(Alignment(weights=w, weight_axes=a.weight_axes, monotonic=False,
                                 extras={**a.extras, "row_mass": mass, "renormalized": renorm}))
        return out[0] if isinstance(res, Alignment) else out


# =========================================================================== bimodal
class BimodalTransformer(_FusionAligner):
    """Pairwise fusion: one crossmodal stack per pair of modalities, pooled, concatenated.

    For each pair ``(target, source)`` in ``pairs`` (default: every unordered
    pair once, the earlier modality as target: text←audio, text←video,
    audio←video), a :class:`CrossmodalEncoder` of ``num_layers`` blocks
    attends from the target over the source; each output is pooled over the
    target's valid steps and the pooled vectors go into a residual MLP head.
    No per-target self-attention and no concatenation across sources (the two
    things MulT adds).

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
    >>> model = BimodalTransformer((4, 3, 2), d_model=8, num_heads=2, num_layers=1).eval()
    >>> al = model.align(torch.randn(5, 4), torch.randn(9, 3), target="text", source="audio")
    >>> al.weights.shape
    (1, 2, 5, 9)
    """

    _model_name = "bimodal"

    def __init__(self, input_dims: Sequence[int] | Mapping[str, int] = (300, 74, 35),
                 d_model: int = 30, num_heads: int = 5, num_layers: int = 2,
                 pairs: Sequence[tuple[str, str]] | None = None,
                 attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25, out_dropout: float = 0.0, output_dim: int = 1,
                 conv_kernel: int = 1, pooling: str | Mapping[str, str] = "last", positions: str = "index",
                 position_scale: float = 100.0, loss: str = "l1",
                 max_epochs: int = 40, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, grad_clip: float | None = 0.8,
                 patience: int | None = None, seed: int = 0, device: str = "cpu") -> None:
        nn.Module.__init__(self)
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
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.seed = seed
        self.device = device
        self._init_common()

    def _pair_list(self) -> list[tuple[int, int]]:
        n = len(self._names)
        if self.pairs is None:
            return [(t, s) for t in range(n) for s in range(t + 1, n)]
        if isinstance(self.pairs, str) or not isinstance(self.pairs, (tuple, list)) or not self.pairs:
            raise ValueError(f"pairs must be a non-empty list of (target, source) names, "
                             f"got {self.pairs!r}")
        out = []
        for p in self.pairs:
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise ValueError(f"pairs must hold (target, source) pairs, got {p!r}")
            t, s = self._index(p[0], "pairs"), self._index(p[1], "pairs")
            if t == s or (t, s) in out:
                raise ValueError(f"pairs must hold distinct pairs of different modalities, got {p!r}")
            out.append((t, s))
        return out

    def _build(self) -> None:
        d, h = int(self.d_model), int(self.num_heads)
        self._pairs = self._pair_list()
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


for _cls in (CrossmodalTransformer, JointSelfAttentionFusion, BimodalTransformer):
    _cls.__doc__ = _cls.__doc__.replace("    %(common)s\n", _COMMON_DOC.lstrip("\n") + "\n")
del _cls
