"""Autoregressive decoding with attention: greedy and beam search, one decoder step as a callable.

A model hands the decoders its step::

    step(prev_tokens, state) -> (log_probs, attention, new_state)

``prev_tokens`` ``(n,)`` are the ids fed at this step (``bos`` first),
``log_probs`` ``(n, V)`` the log-probabilities of the next token (ids a model
never emits at ``-inf``), ``attention`` ``(n, n_keys)`` the weights of the
step over the input, and ``state`` the decoder state: a tensor or a tuple of
tensors, batch first. :func:`greedy_decode` runs one batch of inputs at once;
:func:`beam_search` one input, its live hypotheses as the batch. Both return
:class:`Hypothesis` objects: the output ids without BOS / EOS, the attention
row of the step that emitted each of them, and the log-probability.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["Hypothesis", "greedy_decode", "beam_search", "length_normalised_score", "MAX_DECODE_LEN",
           "MAX_BEAM_SIZE"]

# A model that never emits EOS decodes max_len steps: a bound keeps a typo from hanging the call.
MAX_DECODE_LEN = 10_000
# Live hypotheses grow up to the beam size (times the vocabulary per step): bounded for the same reason.
MAX_BEAM_SIZE = 1_024

Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, torch.Tensor, Any]]


@dataclass
class Hypothesis:
    """One decoded output and the attention that produced it.

    Attributes
    ----------
    tokens : list of int
        Output ids, without BOS and EOS.
    attention : np.ndarray [shape=(len(tokens), n_source)]
        Attention of the step that emitted each token (row-stochastic).
    eos_attention : np.ndarray [shape=(n_source,)] or None
        Attention of the step that emitted EOS; None when decoding stopped at
        ``max_len`` without EOS.
    log_prob : float
        ``Σ log p(y_i | y_<i, x)`` over the tokens and, when finished, EOS.
    score : float
        ``log_prob / n ** length_penalty``, ``n = len(tokens) + finished``:
        what beam search ranks by.
    finished : bool
        Whether EOS was emitted.
    """

    tokens: list[int]
    attention: np.ndarray
    eos_attention: np.ndarray | None
    log_prob: float
    score: float
    finished: bool


def length_normalised_score(log_prob: float, n: int, length_penalty: float) -> float:
    """``log_prob / n ** length_penalty`` (``n`` counted as at least 1): what beam search ranks by.

    Parameters
    ----------
    log_prob : float
        Total log-probability of a hypothesis.
    n : int >= 0
        Its length in tokens, EOS included when emitted.
    length_penalty : float >= 0
        0 ranks by log-probability, 1 by per-token log-probability.

    Returns
    -------
    score : float

    Examples
    --------
    >>> length_normalised_score(-6.0, 3, 1.0), length_normalised_score(-6.0, 3, 0.0)
    (-2.0, -6.0)
    """
    return log_prob / (max(n, 1) ** length_penalty) if length_penalty else log_prob


def greedy_decode(step: Step, state: Any, *, batch_size: int, bos: int, eos: int,
                  max_len: int | Sequence[int], device: torch.device | str,
                  n_keys: Sequence[int] | None = None) -> list[Hypothesis]:
    """Greedy decoding of a batch: at each step every input takes its most probable token.

    The batch runs until every input has emitted EOS or reached its
    ``max_len``; an input that finished earlier keeps being stepped (its later
    tokens are dropped and add nothing to its log-probability).

    Parameters
    ----------
    step : callable
        ``step(prev_tokens (B,), state) -> (log_probs (B, V), attention (B, n_keys), new_state)``
        (see the module docstring).
    state : torch.Tensor or tuple of torch.Tensor
        Initial decoder state of the batch.
    batch_size : int
        ``B``.
    bos, eos : int
        Ids fed first and ending an output.
    max_len : int or sequence of int [shape=(B,)]
        Most steps (EOS included), for the whole batch or per input.
    device : torch.device or str
        Where the fed tokens live (that of the model).
    n_keys : sequence of int [shape=(B,)] or None
        Real input positions per input: the attention rows are cut to them
        (for a padded batch); None keeps every column.

    Returns
    -------
    hypotheses : list of Hypothesis
        One per input; ``score`` is the log-probability.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0, 0.0, 0.0],
    ...                        [-9.0, -9.0, 1.0, 2.0],    # after BOS (1): 3, or EOS (2)
    ...                        [0.0, 0.0, 0.0, 0.0],
    ...                        [-9.0, -9.0, 3.0, 0.0]])   # after 3: EOS
    >>> step = lambda prev, s: (torch.log_softmax(logits[prev], -1), torch.ones(len(prev), 1), s)
    >>> hyp, = greedy_decode(step, torch.zeros(1), batch_size=1, bos=1, eos=2, max_len=5, device="cpu")
    >>> hyp.tokens, hyp.finished, hyp.attention.shape
    ([3], True, (1, 1))
    """
    B = int(batch_size)
    limits = [int(max_len)] * B if isinstance(max_len, numbers.Integral) else [int(m) for m in max_len]
    limit_t = torch.tensor(limits, device=device)
    tok = torch.full((B,), int(bos), dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    toks, alphas, lps = [], [], []
    for i in range(max(limits)):
        logp, alpha, state = step(tok, state)
        lp, tok = logp.max(-1)
        toks.append(tok)
        alphas.append(alpha)
        lps.append(torch.where(done, torch.zeros_like(lp), lp))
        done = done | (tok == int(eos)) | (limit_t <= i + 1)
        if bool(done.all()):
            break
    toks_np = torch.stack(toks, 1).cpu().numpy()
    alpha_np = torch.stack(alphas, 1).double().cpu().numpy()
    lp_np = torch.stack(lps, 1).double().cpu().numpy()
    out = []
    for b in range(B):
        row = toks_np[b, :limits[b]]
        ends = np.flatnonzero(row == int(eos))
        finished = ends.size > 0
        n = int(ends[0]) if finished else len(row)
        keys = slice(None) if n_keys is None else slice(int(n_keys[b]))
        log_prob = float(lp_np[b, :n + finished].sum())
        out.append(Hypothesis(tokens=row[:n].tolist(), attention=alpha_np[b, :n, keys].copy(),
                              eos_attention=alpha_np[b, n, keys].copy() if finished else None,
                              log_prob=log_prob, score=log_prob, finished=finished))
    return out


def _take(state: Any, idx: torch.Tensor) -> Any:
    """Rows ``idx`` of a decoder state (a tensor or a tuple of them, batch first)."""
    if isinstance(state, tuple):
        return tuple(part[idx] for part in state)
    return state[idx]


def beam_search(step: Step, state: Any, *, n_keys: int, dtype: torch.dtype, device: torch.device | str,
                bos: int, eos: int, beam_size: int, max_len: int, length_penalty: float) -> Hypothesis:
    """Beam search for one input, the live hypotheses as the batch.

    Each step expands every live hypothesis by its ``2k`` best tokens and
    keeps the ``k`` best non-EOS extensions by total log-probability
    (accumulated in float64); extensions ending in EOS join the finished
    list, ranked by :func:`length_normalised_score`. Each hypothesis carries
    its own attention history (re-indexed with its parent at every step).
    Search stops when no live hypothesis can still beat the best finished one
    (log-probabilities only fall, so a live one's score is bounded by its
    log-prob over ``max_len ** length_penalty``), or at ``max_len``, where
    unfinished hypotheses compete too.

    Parameters
    ----------
    step : callable
        ``step(prev_tokens (n,), state) -> (log_probs (n, V), attention (n, n_keys), new_state)``
        (see the module docstring).
    state : torch.Tensor or tuple of torch.Tensor
        Initial decoder state of the input (batch of 1).
    n_keys : int
        Attention width.
    dtype : torch.dtype
        Of the attention history.
    device : torch.device or str
    bos, eos : int
    beam_size : int >= 1
        ``k``, live hypotheses kept per step.
    max_len : int >= 1
        Most steps (EOS included).
    length_penalty : float >= 0

    Returns
    -------
    hypothesis : Hypothesis
        The best by score (the first found among equals).

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0, 0.0, 0.0],
    ...                        [-9.0, -9.0, 1.0, 2.0],    # after BOS (1): 3, or EOS (2)
    ...                        [0.0, 0.0, 0.0, 0.0],
    ...                        [-9.0, -9.0, 3.0, 0.0]])   # after 3: EOS
    >>> step = lambda prev, s: (torch.log_softmax(logits[prev], -1), torch.ones(len(prev), 1), s)
    >>> hyp = beam_search(step, torch.zeros(1), n_keys=1, dtype=torch.float32, device="cpu", bos=1,
    ...                   eos=2, beam_size=2, max_len=4, length_penalty=0.0)
    >>> hyp.tokens, hyp.finished
    ([3], True)
    """
    k, lpen = int(beam_size), float(length_penalty)
    tokens = torch.zeros((1, 0), dtype=torch.long, device=device)
    history = torch.zeros((1, 0, n_keys), dtype=dtype, device=device)
    scores = torch.zeros(1, dtype=torch.float64, device=device)
    prev = torch.full((1,), int(bos), dtype=torch.long, device=device)
    finished: list[Hypothesis] = []
    for _ in range(max_len):
        logp, alpha, new_state = step(prev, state)
        logp = logp.double()
        width = min(2 * k, logp.shape[1])
        top_lp, top_tok = logp.topk(width, dim=-1)           # (n, width)
        cand = (scores[:, None] + top_lp).reshape(-1)
        order = torch.argsort(cand, descending=True, stable=True)
        parent = torch.div(order, width, rounding_mode="floor")
        tok = top_tok.reshape(-1)[order]
        keep_p, keep_t, keep_s = [], [], []
        for j in range(order.numel()):
            p, t, sc = int(parent[j]), int(tok[j]), float(cand[order[j]])
            if t == eos:
                finished.append(Hypothesis(
                    tokens=tokens[p].tolist(), attention=history[p].double().cpu().numpy().copy(),
                    eos_attention=alpha[p].double().cpu().numpy().copy(), log_prob=sc,
                    score=length_normalised_score(sc, tokens.shape[1] + 1, lpen), finished=True))
            else:
                keep_p.append(p)
                keep_t.append(t)
                keep_s.append(sc)
                if len(keep_p) == k:
                    break
        if not keep_p:
            break
        idx = torch.tensor(keep_p, device=device)
        tokens = torch.cat([tokens[idx], torch.tensor(keep_t, device=device)[:, None]], 1)
        history = torch.cat([history[idx], alpha[idx][:, None]], 1)
        state = _take(new_state, idx)
        scores = torch.tensor(keep_s, dtype=torch.float64, device=device)
        prev = tokens[:, -1]
        if finished:
            best = max(h.score for h in finished)
            # scores are negative and only fall: a live hypothesis ends at best
            # at its current log-prob, divided by at most max_len ** length_penalty
            if best >= float(scores.max()) / (max_len ** lpen):
                break
    else:
        hist = history.double().cpu().numpy()
        for j in range(tokens.shape[0]):
            sc = float(scores[j])
            finished.append(Hypothesis(tokens=tokens[j].tolist(), attention=hist[j].copy(),
                                       eos_attention=None, log_prob=sc,
                                       score=length_normalised_score(sc, tokens.shape[1], lpen),
                                       finished=False))
    best_i = max(range(len(finished)), key=lambda i: (finished[i].score, -i))
    return finished[best_i]
