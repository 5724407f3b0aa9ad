"""Bahdanau attention seq2seq (Bahdanau, Cho & Bengio, ICLR 2015) scored as an alignment.

An RNN encoder-decoder over integer token ids whose additive attention is the
alignment: :class:`Seq2SeqAttention` learns a sequence-to-sequence task
(``fit``), translates greedily or with beam search (``translate``), and hands
back its attention as an :class:`~mmalign.alignment.Alignment` with the
**source** on side x (rows) and the **target** on side y (columns), the
order of ``align(src, tgt)``'s arguments; each target token's weights are a
distribution over the source (``distribution_over="x"``). ``align`` takes
one pair, ``align_batch`` many. The network is :class:`Seq2SeqAttentionModule`
(a plain ``torch.nn.Module``, ``module_`` after ``fit``).

Model (the paper's "RNNsearch", with GRUs)
------------------------------------------
- **Encoder**: embedding, then a bidirectional GRU over the packed (ragged)
  source; annotation ``h_j = [→h_j; ←h_j]`` (size ``2 * hidden_dim``).
  Padded positions never enter the recurrence (``pack_padded_sequence``).
- **Initial decoder state**: ``s_0 = tanh(W_s ←h_1)``, the backward GRU's
  state at the first source token (after it has read the whole source), as in
  the paper (``init_state="backward"``), or ``tanh(W_s mean_j h_j)`` over the
  real (unpadded) annotations (``init_state="mean"``).
- **Attention** from the *previous* decoder state (``attention_state="previous"``,
  the default, as in the paper):
  ``e_ij = vᵀ tanh(W s_{i-1} + U h_j)``, ``α_ij = softmax_j(e_ij)`` over the
  real source positions (exactly 0 on padding), context ``c_i = Σ_j α_ij h_j``
  (:class:`~mmalign.nn.layers.AdditiveAttention`).
- **Decoder GRU**: ``s_i = GRU([E y_{i-1}; c_i], s_{i-1})``.
- With ``attention_state="current"`` (Luong et al. 2015's order) the decoder
  first reads the previous token, ``s_i = GRU(E y_{i-1}, s_{i-1})``, and then
  attends from the *current* state: ``e_ij = vᵀ tanh(W s_i + U h_j)``. The
  context then feeds only the output of its own step (not the recurrence), so
  attending ahead earns nothing.
- Options: ``input_feeding=True`` also feeds the previous context ``c_{i-1}``
  into the GRU input (Luong et al.'s input feeding); ``coverage=True`` adds
  the coverage ``β_ij = Σ_{k<i} α_kj`` to the scores,
  ``e_ij = vᵀ tanh(W q_i + U h_j + w_c β_ij)`` (Tu et al. 2016);
  ``coverage_penalty=λ > 0`` adds the doubly stochastic attention penalty of
  Xu et al. (2015) to the training loss,
  ``λ · mean_j (1 - Σ_i α_ij)²`` over the real source positions ``j`` of the
  batch (the sum over every decoder step, EOS included): each source word
  should receive a total attention of one. None of them uses gold links.
- **Deep output**: ``t_i = maxout_2(U_o [s_i; c_i; E y_{i-1}])`` (``hidden_dim``
  units, pool size 2), ``p(y_i | y_<i, x) = softmax(W_o t_i)``; ``pad_id`` and
  ``bos_id`` get probability 0 (they are never outputs).

Token-id conventions
--------------------
Sequences are 1-d integer ids in ``[0, vocab_size)``; ``pad_id``, ``bos_id``,
``eos_id`` (0, 1, 2 by default, as in :class:`mmalign.datasets` vocabularies)
are reserved. Give sequences **without** BOS/EOS: the model feeds ``bos_id``
first and learns to emit ``eos_id`` after the last target token. Targets must
not contain the reserved ids; sources may contain any id (padding is told by
the lengths, never by the id).

Attention columns
-----------------
Decoder step ``i`` attends (from ``s_{i-1}``, or ``s_i``) and then predicts target token
``y_i``, so column ``i`` of the alignment's weights (row ``i`` of the network's
``(T, S)`` attention) aligns target token ``i`` with the source. ``align``
returns one column per target token; the attention of the step that predicts
EOS is in ``extras["eos_weights"]``.

Attention is not always alignment: a target token that the decoder can
predict from the target history alone (a case marker, a negation suffix after
its verb) is not tied to its source word by the training loss, and its
attention often rests on a neighbouring source word (typically the one the
*next* target token needs). ``python -m benchmarks seq2seq_attention``
measures this (AER per task, split by token type). On the reordering task
(case markers ``ga`` / ``o`` with no source word), attention from ``s_{i-1}``
gives ~11% AER, most misses being case markers that attend into the next
phrase; ``attention_state="current", coverage_penalty=3.0`` (the benchmark's
configuration) brings it to ~3.4% with the same exact match (1.0), and lowers
the reversal (~0.9% -> ~0.2%) and dates (17.7% -> 15.6%) AER too; dates exact
match drops slightly (1.0 -> 0.996), so the default stays the paper's model.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..alignment import Alignment
from ..nn.decoding import (MAX_BEAM_SIZE, MAX_DECODE_LEN, Hypothesis, beam_search, greedy_decode,
                           length_normalised_score)
from ..nn.estimator import TorchAligner
from ..nn.functional import lengths_to_padding_mask, masked_softmax
from ..nn.layers import AdditiveAttention
from ..utils.token_ids import as_id_batch, as_int_array, infer_vocab_size, is_single_sequence, one_id_sequence
from ..utils.validation import check_bool, check_choice, check_float, check_int

__all__ = ["Seq2SeqAttention", "Seq2SeqAttentionModule"]

_IGNORE = -100  # cross-entropy ignore index at padded target positions
_INIT_STATES = ("backward", "mean")
_ATTENTION_STATES = ("previous", "current")
# the training defaults of Seq2SeqAttention (TorchEstimator.TRAIN_DEFAULTS): those of the flat
# arguments the model took before (30 epochs, batches of 64, Adam at 3e-3 with cosine annealing,
# gradients clipped at norm 1, seed 0, on the CPU)
_TRAINING = {"max_epochs": 30, "batch_size": 64, "lr": 3e-3, "scheduler": "cosine", "grad_clip": 1.0,
             "seed": 0, "device": "cpu"}


# --------------------------------------------------------------------------- network
class Seq2SeqAttentionModule(nn.Module):
    """The network of :class:`Seq2SeqAttention`: bidirectional GRU encoder, additive attention,
    GRU decoder with a maxout deep output (see the module docstring).

    A plain ``torch.nn.Module`` that can sit inside other models; :class:`Seq2SeqAttention`
    builds it (seeded), trains it with teacher forcing and reads its attention out as
    :class:`~mmalign.alignment.Alignment` objects.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size, embed_dim, hidden_dim, attention_dim, dropout,
    teacher_forcing, init_state, attention_state, input_feeding, coverage, pad_id, bos_id, eos_id
        As in :class:`Seq2SeqAttention` (checked there).

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import Seq2SeqAttentionModule
    >>> net = Seq2SeqAttentionModule(8, 9, embed_dim=4, hidden_dim=4, attention_dim=4).eval()
    >>> src = torch.tensor([[3, 4, 5], [6, 7, 0]])
    >>> logits, attention = net(src, torch.tensor([3, 2]), torch.tensor([[1, 5, 4], [1, 7, 6]]))
    >>> tuple(logits.shape), tuple(attention.shape), bool((attention[1, :, 2] == 0).all())  # padding
    ((2, 3, 9), (2, 3, 3), True)
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 attention_dim: int = 128, dropout: float = 0.0, teacher_forcing: float = 1.0,
                 init_state: str = "backward", attention_state: str = "previous", input_feeding: bool = False,
                 coverage: bool = False, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2) -> None:
        super().__init__()
        check_choice(init_state, "init_state", _INIT_STATES)
        check_choice(attention_state, "attention_state", _ATTENTION_STATES)
        E, H, A = int(embed_dim), int(hidden_dim), int(attention_dim)
        self.hidden_dim = H
        self.teacher_forcing = float(teacher_forcing)
        self.init_state = init_state
        self.attention_state = attention_state
        self.input_feeding = bool(input_feeding)
        self.coverage = bool(coverage)
        self.src_embed = nn.Embedding(int(src_vocab_size), E, padding_idx=int(pad_id))
        self.tgt_embed = nn.Embedding(int(tgt_vocab_size), E, padding_idx=int(pad_id))
        self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.init_proj = nn.Linear(H if init_state == "backward" else 2 * H, H)
        self.attention = AdditiveAttention(query_dim=H, key_dim=2 * H, hidden_dim=A)
        n_in = E + (2 * H if attention_state == "previous" else 0) + (2 * H if self.input_feeding else 0)
        self.decoder = nn.GRUCell(n_in, H)
        self.readout = nn.Linear(H + 2 * H + E, 2 * H)
        self.output = nn.Linear(H, int(tgt_vocab_size))
        self.drop = nn.Dropout(float(dropout))
        if self.coverage:
            # Tu et al. (2016): e_ij = vᵀ tanh(W q_i + U h_j + w_c β_ij), β_ij = Σ_{k<i} α_kj
            self.coverage_proj = nn.Linear(1, A, bias=False)
        # pad and bos are never outputs: their logits are -inf (not saved, rebuilt from the ids)
        self.register_buffer("_never_emitted", torch.tensor([int(pad_id), int(bos_id)]), persistent=False)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Annotations, padding mask and initial decoder state of a padded batch.

        Parameters
        ----------
        src : torch.LongTensor [shape=(B, S)]
        src_lengths : torch.LongTensor [shape=(B,)]
            ``1 <= src_lengths <= S``.

        Returns
        -------
        annotations : torch.Tensor [shape=(B, S, 2 * hidden_dim)]
            ``[→h_j; ←h_j]``; zero at padded positions.
        padding_mask : torch.BoolTensor [shape=(B, S)]
            True at padded positions.
        s0 : torch.Tensor [shape=(B, hidden_dim)]
        """
        B, S = src.shape
        emb = self.drop(self.src_embed(src))
        packed = pack_padded_sequence(emb, src_lengths.detach().cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        annotations, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        mask = lengths_to_padding_mask(src_lengths, S, device=src.device)
        if self.init_state == "backward":
            first = h_n[1]  # backward GRU after reading x_T ... x_1: its state at the first token
        else:
            first = annotations.sum(1) / src_lengths.to(annotations.dtype)[:, None]
        return annotations, mask, torch.tanh(self.init_proj(first))

    def initial_state(self, s0: torch.Tensor, n_source: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoder state ``(s, c_prev, β)``: GRU state, previous context (input feeding) and coverage."""
        B = s0.shape[0]
        feed = s0.new_zeros(B, 2 * self.hidden_dim if self.input_feeding else 0)
        cov = s0.new_zeros(B, n_source if self.coverage else 0)
        return s0, feed, cov

    def _attend(self, query: torch.Tensor, annotations: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Context ``(B, 2H)`` and weights ``(B, S)`` of the additive attention (with coverage if on)."""
        if not self.coverage:
            return self.attention(query, annotations, key_padding_mask=mask, projected_keys=keys)
        pre = self.attention.query_proj(query)[:, None, :] + keys + self.coverage_proj(cov[..., None])
        alpha = masked_softmax(torch.tanh(pre) @ self.attention.v, mask)
        return torch.bmm(alpha[:, None, :], annotations)[:, 0], alpha

    def step(self, y_prev: torch.Tensor, state: tuple, annotations: torch.Tensor,
             keys: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """One decoder step from embedded previous tokens ``y_prev (B, E)``.

        ``keys`` are ``attention.project_keys(annotations)``; ``state`` comes from
        :meth:`initial_state` or the previous step. Returns ``(logits (B, V), new state, α_i (B, S))``.
        """
        s_prev, feed, cov = state
        fed = [feed] if self.input_feeding else []
        if self.attention_state == "previous":
            context, alpha = self._attend(s_prev, annotations, keys, mask, cov)
            s = self.decoder(torch.cat([y_prev, context] + fed, dim=-1), s_prev)
        else:
            s = self.decoder(torch.cat([y_prev] + fed, dim=-1), s_prev)
            context, alpha = self._attend(s, annotations, keys, mask, cov)
        t = self.readout(torch.cat([s, context, y_prev], dim=-1))
        t = t.view(*t.shape[:-1], -1, 2).amax(-1)  # maxout, pool size 2
        logits = self.output(self.drop(t)).index_fill(-1, self._never_emitted, float("-inf"))
        new_state = (s, context if self.input_feeding else feed, cov + alpha if self.coverage else cov)
        return logits, new_state, alpha

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits and attention of a padded batch.

        In training mode with ``teacher_forcing < 1``, each step feeds, with
        probability ``1 - teacher_forcing`` per sequence, the model's own
        previous argmax instead of ``tgt_in``; in eval mode it is always
        teacher-forced.

        Parameters
        ----------
        src : torch.LongTensor [shape=(B, S)]
        src_lengths : torch.LongTensor [shape=(B,)]
        tgt_in : torch.LongTensor [shape=(B, T)]
            Decoder inputs: ``bos_id`` followed by the target tokens (padded).

        Returns
        -------
        logits : torch.Tensor [shape=(B, T, tgt_vocab_size)]
            ``logits[:, i]`` predicts the token after ``tgt_in[:, i]``.
        attention : torch.Tensor [shape=(B, T, S)]
            Row ``i``: decoder step ``i``'s weights over the source, summing to one over
            the real source positions, exactly 0 on padding (the network's order;
            :meth:`Seq2SeqAttention.align` returns it transposed, source on side x).
        """
        annotations, mask, s0 = self.encode(src, src_lengths)
        keys = self.attention.project_keys(annotations)
        s = self.initial_state(s0, src.shape[1])
        T = tgt_in.shape[1]
        ratio = self.teacher_forcing
        sample = self.training and ratio < 1.0
        emb_all = None if sample else self.drop(self.tgt_embed(tgt_in))
        logits, alphas = [], []
        prev_pred = None
        for i in range(T):
            if emb_all is not None:
                y_prev = emb_all[:, i]
            else:
                tok = tgt_in[:, i]
                if i > 0:
                    keep = torch.rand(tok.shape, device=tok.device) < ratio
                    tok = torch.where(keep, tok, prev_pred)
                y_prev = self.drop(self.tgt_embed(tok))
            out, s, alpha = self.step(y_prev, s, annotations, keys, mask)
            if sample:
                prev_pred = out.detach().argmax(-1)
            logits.append(out)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)


# --------------------------------------------------------------------------- estimator
class Seq2SeqAttention(TorchAligner):
    """Bahdanau additive-attention encoder-decoder whose attention is an alignment.

    See the module docstring for the architecture and the token-id conventions.
    The network is a :class:`Seq2SeqAttentionModule`, built (seeded by the
    training seed) and trained by ``fit`` and held in ``module_``.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int > max(pad_id, bos_id, eos_id), or None
        Sizes of the source and target vocabularies (ids ``0 .. size - 1``).
        None (default): one more than the largest id (reserved ids included)
        in the first ``fit``'s data (``src_vocab_size_``, ``tgt_vocab_size_``).
    embed_dim : int >= 1
        Token embedding size (source and target).
    hidden_dim : int >= 1
        GRU state size of each encoder direction and of the decoder; also the
        number of maxout units of the deep output.
    attention_dim : int >= 1
        Hidden size of the additive alignment model.
    dropout : float in [0, 1)
        Dropout on embeddings and on the deep output (training only).
    teacher_forcing : float in [0, 1]
        Probability, per decoder step and sequence, of feeding the true
        previous token during training (1: always, the paper's setting);
        otherwise the model's own argmax prediction is fed.
    init_state : {"backward", "mean"}
        Initial decoder state ``tanh(W_s ←h_1)`` (the paper) or
        ``tanh(W_s mean_j h_j)``.
    attention_state : {"previous", "current"}
        Attend from the previous decoder state ``s_{i-1}`` before reading
        ``y_{i-1}`` (the paper, default), or from the current state ``s_i``
        after reading it (Luong-style); see the module docstring.
    input_feeding : bool
        Feed the previous context ``c_{i-1}`` into the decoder GRU's input.
    coverage : bool
        Add the coverage ``β_ij = Σ_{k<i} α_kj`` to the attention scores
        (Tu et al. 2016).
    coverage_penalty : float >= 0
        Weight ``λ`` of the doubly stochastic attention penalty
        ``λ · mean_j (1 - Σ_i α_ij)²`` added to the training loss (Xu et al.
        2015); 0 (default) for none. ``attention_state="current",
        coverage_penalty=3.0`` is what the benchmark uses: it keeps target
        words without a source word (case markers) inside their phrase.
    pad_id, bos_id, eos_id : int >= 0
        Reserved ids, distinct.
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.estimator.TorchEstimator`,
        :class:`~mmalign.nn.train.TrainConfig`: Adam, ``max_epochs``,
        ``batch_size``, ``lr``, ``scheduler``, ``grad_clip``, ``patience``
        (early stopping on the validation loss, needs ``validation``), ``seed``
        (the initial weights and the training loop, deterministic on CPU),
        ``device``, ``progress``, ...). The defaults: ``max_epochs=30``,
        ``batch_size=64``, ``lr=3e-3``, ``scheduler="cosine"`` (cosine
        annealing over ``max_epochs`` settles the attention sharply),
        ``grad_clip=1.0``, ``seed=0``, ``device="cpu"``. ``batch_size`` also
        sets the chunks of decoding and of ``align_batch``.

    Attributes
    ----------
    module_ : Seq2SeqAttentionModule
        The network.
    src_vocab_size_, tgt_vocab_size_ : int
        The vocabulary sizes the network was built with.
    history_ : dict
        The :func:`mmalign.nn.train.fit` history (``train_loss``, ``val_metric``, ...).
    n_train_ : int
        Number of training pairs.
    max_target_len_ : int
        Longest training target; sets the default decoding limit.

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import Seq2SeqAttention
    >>> _ = torch.set_num_threads(1)
    >>> src = [[3, 4, 5], [6, 7], [5, 3, 6, 4]] * 20
    >>> tgt = [s[::-1] for s in src]
    >>> model = Seq2SeqAttention(8, 8, embed_dim=16, hidden_dim=16, attention_dim=16,
    ...                          train={"max_epochs": 2, "batch_size": 20}).fit(src, tgt)
    >>> al = model.align([3, 4, 5], [5, 4, 3, 3])   # source on side x, target on side y
    >>> al.shape, al.distribution_over, al.matrix().sum(axis=0).round(6).tolist()
    ((3, 4), 'x', [1.0, 1.0, 1.0, 1.0])
    >>> hyp = model.translate([3, 4, 5], beam_size=2, max_len=5)
    >>> hyp.attention.shape == (len(hyp.tokens), 3)
    True
    """

    TRAIN_DEFAULTS = _TRAINING

    def __init__(self, src_vocab_size: int | None = None, tgt_vocab_size: int | None = None,
                 embed_dim: int = 64,
                 hidden_dim: int = 128, attention_dim: int = 128, dropout: float = 0.0,
                 teacher_forcing: float = 1.0, init_state: str = "backward",
                 attention_state: str = "previous", input_feeding: bool = False, coverage: bool = False,
                 coverage_penalty: float = 0.0, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 train: Any = None) -> None:
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.attention_dim = attention_dim
        self.dropout = dropout
        self.teacher_forcing = teacher_forcing
        self.init_state = init_state
        self.attention_state = attention_state
        self.input_feeding = input_feeding
        self.coverage = coverage
        self.coverage_penalty = coverage_penalty
        self.pad_id = pad_id
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.train = train

    # ------------------------------------------------------------------ estimator hooks
    def _check_params(self) -> None:
        for name in ("pad_id", "bos_id", "eos_id"):
            check_int(getattr(self, name), name, 0)
        if len({self.pad_id, self.bos_id, self.eos_id}) != 3:
            raise ValueError(f"pad_id, bos_id and eos_id must be distinct, got "
                             f"{self.pad_id}, {self.bos_id}, {self.eos_id}")
        top = max(self.pad_id, self.bos_id, self.eos_id)
        for name in ("src_vocab_size", "tgt_vocab_size"):
            if getattr(self, name) is None:
                continue
            check_int(getattr(self, name), name, 1)
            if getattr(self, name) <= top:
                raise ValueError(f"{name} must exceed the reserved ids (max {top}), got {getattr(self, name)}")
        for name in ("embed_dim", "hidden_dim", "attention_dim"):
            check_int(getattr(self, name), name, 1)
        check_float(self.dropout, "dropout", 0.0, 1.0)
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        check_float(self.teacher_forcing, "teacher_forcing", 0.0, 1.0)
        check_choice(self.init_state, "init_state", _INIT_STATES)
        check_choice(self.attention_state, "attention_state", _ATTENTION_STATES)
        for name in ("input_feeding", "coverage"):
            check_bool(getattr(self, name), name)
        check_float(self.coverage_penalty, "coverage_penalty", 0.0)

    def _vocab_sizes(self) -> tuple[int, int]:
        """(source, target) vocabulary sizes: the fitted ones, else the hyper-parameters (files
        written before the sizes could be inferred hold only those)."""
        return (int(getattr(self, "src_vocab_size_", None) or self.src_vocab_size),
                int(getattr(self, "tgt_vocab_size_", None) or self.tgt_vocab_size))

    def _infer_vocab_sizes(self, sources: Any, targets: Any, source_lengths: Any,
                           target_lengths: Any) -> None:
        """Set ``src_vocab_size_`` / ``tgt_vocab_size_``: as given, or one more than the largest
        id in the data (at least one more than the reserved ids); kept once the network exists."""
        if getattr(self, "module_", None) is not None:  # a second fit continues: same network
            self.src_vocab_size_, self.tgt_vocab_size_ = self._vocab_sizes()
            return
        top = max(int(self.pad_id), int(self.bos_id), int(self.eos_id))
        sizes = []
        for given, seqs, lengths, name in ((self.src_vocab_size, sources, source_lengths, "sources"),
                                           (self.tgt_vocab_size, targets, target_lengths, "targets")):
            if given is not None:
                sizes.append(int(given))
                continue
            sizes.append(infer_vocab_size(seqs, lengths, name, minimum=top + 1, pad_id=int(self.pad_id)))
        self.src_vocab_size_, self.tgt_vocab_size_ = sizes

    def _make_module(self) -> Seq2SeqAttentionModule:
        src_vocab, tgt_vocab = self._vocab_sizes()
        return Seq2SeqAttentionModule(
            src_vocab, tgt_vocab, embed_dim=int(self.embed_dim),
            hidden_dim=int(self.hidden_dim), attention_dim=int(self.attention_dim), dropout=float(self.dropout),
            teacher_forcing=float(self.teacher_forcing), init_state=self.init_state,
            attention_state=self.attention_state, input_feeding=bool(self.input_feeding),
            coverage=bool(self.coverage), pad_id=int(self.pad_id), bos_id=int(self.bos_id),
            eos_id=int(self.eos_id))

    def _chunk(self) -> int:
        """Rows per forward pass when decoding and aligning: the training batch size."""
        return max(int(self.train_config().batch_size), 1)

    # ------------------------------------------------------------------ data
    def _targets_io(self, tgt: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tgt_in, tgt_out), both (B, T + 1): BOS + y and y + EOS (ignore index beyond)."""
        B, T = tgt.shape
        tgt_in = torch.full((B, T + 1), int(self.pad_id), dtype=torch.long)
        tgt_in[:, 0] = int(self.bos_id)
        tgt_in[:, 1:] = tgt
        tgt_out = torch.full((B, T + 1), _IGNORE, dtype=torch.long)
        valid = torch.arange(T)[None, :] < lengths[:, None]
        tgt_out[:, :T] = torch.where(valid, tgt, torch.full_like(tgt, _IGNORE))
        tgt_out[torch.arange(B), lengths] = int(self.eos_id)
        return tgt_in, tgt_out

    def _pairs(self, sources: Any, targets: Any, source_lengths: Any, target_lengths: Any,
               names: tuple[str, str] = ("sources", "targets")) -> tuple[torch.Tensor, ...]:
        src_vocab, tgt_vocab = self._vocab_sizes()
        src, src_len = as_id_batch(sources, source_lengths, names[0], src_vocab,
                                   pad_id=int(self.pad_id))
        tgt, tgt_len = as_id_batch(targets, target_lengths, names[1], tgt_vocab,
                                   reserved=(self.pad_id, self.bos_id, self.eos_id), pad_id=int(self.pad_id))
        if src.shape[0] != tgt.shape[0]:
            raise ValueError(f"{names[0]} and {names[1]} must hold the same number of sequences, "
                             f"got {src.shape[0]} and {tgt.shape[0]}")
        tgt_in, tgt_out = self._targets_io(tgt, tgt_len)
        return src, src_len, tgt_in, tgt_out

    def _sources(self, src: Any, src_lengths: Any, name: str = "src") -> tuple[torch.Tensor, torch.Tensor]:
        return as_id_batch(src, src_lengths, name, self._vocab_sizes()[0], pad_id=int(self.pad_id))

    def _loss(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        """Cross-entropy of the teacher-forced batch (plus the doubly stochastic attention penalty);
        ``model`` is ``module_`` or the wrapper that trains it (DDP)."""
        src, src_len, tgt_in, tgt_out = batch
        S = int(src_len.max())
        T = int((tgt_out != _IGNORE).sum(1).max())
        logits, att = model(src[:, :S], src_len, tgt_in[:, :T])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           tgt_out[:, :T].reshape(-1), ignore_index=_IGNORE)
        lam = float(self.coverage_penalty)
        if lam > 0:
            # doubly stochastic attention (Xu et al. 2015): every real source position should
            # receive a total attention of 1 over the decoder steps (EOS included)
            steps = (tgt_out[:, :T] != _IGNORE).to(att.device, att.dtype)
            total = (att * steps[..., None]).sum(1)                                  # (B, S)
            real = (torch.arange(S, device=att.device)[None, :] < src_len.to(att.device)[:, None]).to(att.dtype)
            loss = loss + lam * (((1.0 - total) ** 2) * real).sum() / real.sum()
        return loss

    # ------------------------------------------------------------------ fit
    def fit(self, sources: Any, targets: Any = None, *, validation: tuple | None = None,
            source_lengths: Any = None, target_lengths: Any = None) -> "Seq2SeqAttention":
        """Train on (source, target) pairs with teacher forcing and cross-entropy.

        Builds the network (:class:`Seq2SeqAttentionModule`, seeded by the
        training seed) on the first call, and trains it with
        :func:`mmalign.nn.train.fit` (``train``: Adam, ``max_epochs``,
        ``batch_size``, ``lr``, ``scheduler``, ``grad_clip``); with validation
        data, keeps the weights of the epoch with the lowest validation loss
        and stops early after ``patience`` epochs without improvement. A second
        ``fit`` continues from the current weights (``sklearn.base.clone`` gives
        an unfitted copy).

        Parameters
        ----------
        sources : list of 1-d int sequences, or int tensor / array [shape=(N, S)]
            Source token ids in ``[0, src_vocab_size)`` (``X``).
        targets : same forms [shape=(N, T)]
            Target token ids in ``[0, tgt_vocab_size)``, without BOS / EOS / pad ids (``Y``).
        validation : (sources, targets) or None
            Validation pairs, lists of sequences (or full-row arrays).
        source_lengths, target_lengths : int array [shape=(N,)] or None
            Lengths for padded-array inputs (default: full rows).

        Returns
        -------
        self : Seq2SeqAttention
        """
        self._check_params()
        config = self.train_config()
        if targets is None:
            raise ValueError("targets is required: fit(sources, targets)")
        self._infer_vocab_sizes(sources, targets, source_lengths, target_lengths)
        data = self._pairs(sources, targets, source_lengths, target_lengths)
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be a pair (sources, targets)")
            val = self._pairs(validation[0], validation[1], None, None, ("validation[0]", "validation[1]"))
        if config.patience is not None and val is None:
            raise ValueError("train.patience: early stopping needs validation=(sources, targets)")
        self._ensure_module()
        self._fit_module(self._loss, data, validation=val)
        self.n_train_ = int(data[0].shape[0])
        self.max_target_len_ = int((data[3] != _IGNORE).sum(1).max()) - 1
        return self

    # ------------------------------------------------------------------ decoding
    def _default_max_len(self, n_source: int) -> int:
        return max(2 * n_source, getattr(self, "max_target_len_", 0)) + 2

    def _decoder_step(self, annotations: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                      expand: bool = False) -> Callable:
        """The decoding step (:mod:`mmalign.nn.decoding`) over encoded sources.

        With ``expand``, one source (a batch of 1) serves every live hypothesis (beam search).
        """
        m = self.module_

        def step(prev: torch.Tensor, s: tuple) -> tuple[torch.Tensor, torch.Tensor, tuple]:
            ann, k, msk = annotations, keys, mask
            if expand:
                n = s[0].shape[0]
                ann, k, msk = ann.expand(n, -1, -1), k.expand(n, -1, -1), msk.expand(n, -1)
            logits, s_new, alpha = m.step(m.tgt_embed(prev), s, ann, k, msk)
            return torch.log_softmax(logits, -1), alpha, s_new
        return step

    @torch.no_grad()
    def _greedy(self, src: torch.Tensor, lens: torch.Tensor, max_len: int | None) -> list[Hypothesis]:
        """Greedy decoding (:func:`~mmalign.nn.decoding.greedy_decode`) of a padded batch."""
        m = self.module_
        dev = self._module_dtype_device()[1]
        src, lens = src.to(dev), lens.to(dev)
        annotations, mask, s0 = m.encode(src, lens)
        keys = m.attention.project_keys(annotations)
        lens_cpu = [int(L) for L in lens.cpu()]
        limits = [self._default_max_len(L) if max_len is None else max_len for L in lens_cpu]
        return greedy_decode(self._decoder_step(annotations, keys, mask),
                             m.initial_state(s0, src.shape[1]), batch_size=src.shape[0],
                             bos=int(self.bos_id), eos=int(self.eos_id), max_len=limits, device=dev,
                             n_keys=lens_cpu)

    @torch.no_grad()
    def _beam_search(self, src: torch.Tensor, lens: torch.Tensor, beam_size: int, max_len: int | None,
                     length_penalty: float = 0.0) -> list[Hypothesis]:
        """Beam search (:func:`~mmalign.nn.decoding.beam_search`), one sequence at a time."""
        m = self.module_
        dev = self._module_dtype_device()[1]
        src, lens = src.to(dev), lens.to(dev)
        annotations_all, mask_all, s_all = m.encode(src, lens)
        keys_all = m.attention.project_keys(annotations_all)
        results = []
        for b in range(src.shape[0]):
            L = int(lens[b])
            ann, keys, mask = annotations_all[b:b + 1, :L], keys_all[b:b + 1, :L], mask_all[b:b + 1, :L]
            results.append(beam_search(
                self._decoder_step(ann, keys, mask, expand=True), m.initial_state(s_all[b:b + 1], L),
                n_keys=L, dtype=ann.dtype, device=dev, bos=int(self.bos_id), eos=int(self.eos_id),
                beam_size=beam_size, max_len=self._default_max_len(L) if max_len is None else max_len,
                length_penalty=length_penalty))
        return results

    def translate(self, src: Any, beam_size: int = 1, max_len: int | None = None, *,
                  length_penalty: float = 0.0, src_lengths: Any = None) -> Hypothesis | list[Hypothesis]:
        """Decode the output of one source or of a batch, with its attention.

        Parameters
        ----------
        src : 1-d int sequence, list of them, or int tensor [shape=(B, S)]
        beam_size : int in [1, 1024]
            1: greedy decoding (batched); ``k > 1``: beam search (one source
            at a time, ``k`` live hypotheses, each carrying its attention
            history). Beam search can prune the greedy path, so the greedy
            output competes with the beam's: the result's ``score`` is never
            below that of greedy decoding (with ``length_penalty=0``: it is
            at least as likely).
        max_len : int in [1, 10000] or None
            Most output tokens (EOS included); default
            ``max(2 * S, longest training target) + 2``.
        length_penalty : float >= 0
            Beam search ranks finished hypotheses by ``log_prob / n ** length_penalty``
            (``n`` tokens including EOS): 0 (default) ranks by log-probability,
            1 by per-token log-probability.
        src_lengths : int array [shape=(B,)] or None
            For a padded ``src`` tensor.

        Returns
        -------
        hypothesis : Hypothesis, or list of Hypothesis for a batch
            Tokens (without BOS / EOS) and ``attention`` ``(len(tokens), S_b)``
            of the kept hypothesis (one row per output token, the decoder's
            order; :meth:`align` gives it as an Alignment with the source on side x).

        Examples
        --------
        >>> from mmalign.attention import Seq2SeqAttention
        >>> m = Seq2SeqAttention(6, 6, embed_dim=4, hidden_dim=4, attention_dim=4, train={"max_epochs": 1})
        >>> hyp = m.fit([[3, 4]], [[4, 3]]).translate([3, 4, 5], max_len=4)
        >>> hyp.attention.shape[1], len(hyp.tokens) <= 4
        (3, True)
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        beam_size = check_int(beam_size, "beam_size", 1, MAX_BEAM_SIZE)
        if max_len is not None:
            max_len = check_int(max_len, "max_len", 1, MAX_DECODE_LEN)
        length_penalty = check_float(length_penalty, "length_penalty", 0.0)
        single = is_single_sequence(src)
        if single:
            src = [src]
            if src_lengths is not None:
                src_lengths = as_int_array(src_lengths, "src_lengths").reshape(-1)
        padded, lens = self._sources(src, src_lengths)
        m = self.module_
        was_training = m.training
        m.eval()
        try:
            outs: list[Hypothesis] = []
            step = self._chunk()
            for i in range(0, padded.shape[0], step):
                S = int(lens[i:i + step].max())
                chunk, clen = padded[i:i + step, :S], lens[i:i + step]
                if beam_size == 1:
                    outs += self._greedy(chunk, clen, max_len)
                else:
                    beams = self._beam_search(chunk, clen, beam_size, max_len, length_penalty)
                    # beam search can prune the greedy path; the greedy output competes too,
                    # so the result is never worse (by score) than greedy decoding
                    for h, g in zip(beams, self._greedy(chunk, clen, max_len)):
                        g.score = length_normalised_score(g.log_prob, len(g.tokens) + g.finished, length_penalty)
                        outs.append(g if g.score > h.score else h)
        finally:
            m.train(was_training)
        return outs[0] if single else outs

    # ------------------------------------------------------------------ alignment
    @torch.no_grad()
    def _teacher_forced(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor,
                        tgt_out: torch.Tensor) -> list[tuple[np.ndarray, float]]:
        """Per pair: attention (n_tgt + 1, S_b) including the EOS step, and log p(y + EOS | x)."""
        m = self.module_
        dev = self._module_dtype_device()[1]
        out = []
        step = self._chunk()
        for i in range(0, src.shape[0], step):
            sl = src_len[i:i + step]
            to = tgt_out[i:i + step]
            S, T = int(sl.max()), int((to != _IGNORE).sum(1).max())
            logits, att = m(src[i:i + step, :S].to(dev), sl.to(dev), tgt_in[i:i + step, :T].to(dev))
            logp = torch.log_softmax(logits, -1).double()
            to_d = to[:, :T].to(dev)
            valid = to_d != _IGNORE
            picked = logp.gather(-1, to_d.clamp(min=0)[..., None])[..., 0]
            lp = torch.where(valid, picked, torch.zeros_like(picked)).sum(1).cpu().numpy()
            att_np = att.double().cpu().numpy()
            for b in range(att_np.shape[0]):
                n, L = int(valid[b].sum()), int(sl[b])
                out.append((att_np[b, :n, :L].copy(), float(lp[b])))
        return out

    @staticmethod
    def _alignment(weights: np.ndarray, extras: dict) -> Alignment:
        """``weights`` ``(n_target, n_source)`` (the decoder's rows) as an Alignment with the
        source on side x and the target on side y, each target step a distribution over x."""
        return Alignment(weights=np.ascontiguousarray(weights.T), distribution_over="x", monotonic=False,
                         extras=extras)

    def _decoded(self, padded: torch.Tensor, lens: torch.Tensor, beam_size: int, max_len: int | None,
                 include_eos: bool, names: list[str]) -> list[Alignment]:
        """Alignments of the model's own outputs for the sources ``padded`` (names for messages)."""
        hyps = self.translate(padded, beam_size=beam_size, max_len=max_len, src_lengths=lens)
        out = []
        for b, h in enumerate(hyps):
            w = h.attention
            if include_eos and h.eos_attention is not None:
                w = np.concatenate([w, h.eos_attention[None]], 0)
            if w.shape[0] == 0:
                raise ValueError(f"the model decoded an empty output for {names[b]}: nothing to align "
                                 "(pass include_eos=True to get the EOS step's attention)")
            out.append(self._alignment(w, {
                "tokens": list(h.tokens), "source_tokens": padded[b, :int(lens[b])].tolist(),
                "log_prob": h.log_prob, "score": h.score, "finished": h.finished,
                "eos_weights": h.eos_attention}))
        return out

    def _forced(self, src: Any, tgt: Any, src_lengths: Any, tgt_lengths: Any, include_eos: bool,
                names: tuple[str, str]) -> list[Alignment]:
        """Alignments of the model reading the given targets (teacher forcing)."""
        src_p, src_l, tgt_in, tgt_out = self._pairs(src, tgt, src_lengths, tgt_lengths, names)
        m = self.module_
        was_training = m.training
        m.eval()
        try:
            pairs = self._teacher_forced(src_p, src_l, tgt_in, tgt_out)
        finally:
            m.train(was_training)
        out = []
        for b, (att, lp) in enumerate(pairs):
            n = att.shape[0] - 1
            w = att if include_eos else att[:n]
            out.append(self._alignment(w, {
                "tokens": tgt_in[b, 1:n + 1].tolist(), "source_tokens": src_p[b, :int(src_l[b])].tolist(),
                "log_prob": lp, "eos_weights": att[n].copy()}))
        return out

    def align(self, src: Any, tgt: Any = None, *, beam_size: int = 1, max_len: int | None = None,
              include_eos: bool = False) -> Alignment:
        """The attention of the model on one (source, target) pair as an :class:`~mmalign.alignment.Alignment`.

        With a target, the teacher-forced attention of the model reading that
        target; with ``tgt=None`` the model **decodes the target first**
        (:meth:`translate` with ``beam_size``) and returns the attention of its
        own output.

        Parameters
        ----------
        src : 1-d int sequence
            Source ids (side x).
        tgt : 1-d int sequence or None
            Target ids without BOS / EOS (side y); None: the model's own output.
        beam_size, max_len : int
            Decoding options when ``tgt`` is None.
        include_eos : bool
            Append the step that predicts EOS as a last target position (then
            side y has ``n_target + 1`` positions).

        Returns
        -------
        alignment : Alignment
            ``weights`` ``(n_source, n_target)``: column ``t`` is the attention of
            the decoder step that predicts target token ``t`` over the source,
            summing to one (``distribution_over="x"``), ``monotonic=False``
            (``path()`` takes, for every target token, its most attended source
            position: pairs ``(s, t)``). ``extras``: ``"tokens"`` (target ids),
            ``"source_tokens"``, ``"log_prob"`` (``log p(target + EOS |
            source)``), ``"eos_weights"`` (the EOS step's attention over the
            source, None if decoding never emitted EOS) and, when decoding,
            ``"score"`` and ``"finished"``.

        Raises
        ------
        ValueError
            Bad ids, empty sequences, a batch (use :meth:`align_batch`); a
            decoded output with no token (nothing to align) unless ``include_eos``.

        Examples
        --------
        >>> from mmalign.attention import Seq2SeqAttention
        >>> m = Seq2SeqAttention(6, 6, embed_dim=4, hidden_dim=4, attention_dim=4, train={"max_epochs": 1})
        >>> m = m.fit([[3, 4, 5]], [[5, 4, 3]])
        >>> al = m.align([3, 4, 5], [5, 4])
        >>> al.shape, al.extras["tokens"]
        ((3, 2), [5, 4])
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        src_a = one_id_sequence(src, "src")
        if tgt is None:
            padded, lens = self._sources(src_a, None)
            return self._decoded(padded, lens, beam_size, max_len, include_eos, ["src"])[0]
        return self._forced(src_a, one_id_sequence(tgt, "tgt"), None, None, include_eos, ("src", "tgt"))[0]

    def align_batch(self, src: Any, tgt: Any = None, *, src_lengths: Any = None, tgt_lengths: Any = None,
                    beam_size: int = 1, max_len: int | None = None, include_eos: bool = False
                    ) -> list[Alignment]:
        """:meth:`align` over many pairs: one :class:`~mmalign.alignment.Alignment` per pair.

        Equal to ``[align(s, t) for s, t in zip(src, tgt)]`` (to rounding: pairs are
        run in padded batches of ``batch_size``).

        Parameters
        ----------
        src : list of 1-d int sequences, or int tensor / array [shape=(B, S)]
        tgt : same forms [shape=(B, T)], or None
            Target ids without BOS / EOS; None: the model decodes each target first.
        src_lengths, tgt_lengths : int array [shape=(B,)] or None
            For padded tensor / array inputs.
        beam_size, max_len, include_eos
            As in :meth:`align`.

        Returns
        -------
        alignments : list of Alignment
            As :meth:`align` returns, source on side x and target on side y.

        Examples
        --------
        >>> from mmalign.attention import Seq2SeqAttention
        >>> m = Seq2SeqAttention(6, 6, embed_dim=4, hidden_dim=4, attention_dim=4, train={"max_epochs": 1})
        >>> m = m.fit([[3, 4, 5]], [[5, 4, 3]])
        >>> [al.shape for al in m.align_batch([[3, 4, 5], [4, 5]], [[5, 4], [5, 4, 3]])]
        [(3, 2), (2, 3)]
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        for name, value in (("src", src), ("tgt", tgt)):
            if value is not None and is_single_sequence(value):
                raise ValueError(f"{name} must be a collection of sequences (a list of them or a "
                                 "(batch, steps) array); align aligns one pair")
        if tgt is None:
            padded, lens = self._sources(src, src_lengths)
            return self._decoded(padded, lens, beam_size, max_len, include_eos,
                                 [f"src[{b}]" for b in range(padded.shape[0])])
        return self._forced(src, tgt, src_lengths, tgt_lengths, include_eos, ("src", "tgt"))
