"""mmalign.nn.decoding: greedy decoding and beam search over a step callable, on toy Markov models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mmalign.nn.decoding import Hypothesis, beam_search, greedy_decode, length_normalised_score
from mmalign.utils.token_ids import as_id_batch, as_int_array, is_single_sequence

BOS, EOS = 1, 2


def markov_step(logits: torch.Tensor, n_keys: int = 3):
    """A step whose next-token log-probabilities depend on the previous token only; the
    attention is one-hot at ``prev % n_keys``; the state counts the steps."""
    logp = torch.log_softmax(logits, -1)

    def step(prev, state):
        alpha = torch.nn.functional.one_hot(prev % n_keys, n_keys).double()
        return logp[prev], alpha, state + 1
    return step


def sequence_log_prob(logits: torch.Tensor, tokens: list[int], finished: bool) -> float:
    logp = torch.log_softmax(logits.double(), -1)
    prev, total = BOS, 0.0
    for t in tokens + ([EOS] if finished else []):
        total += float(logp[prev, t])
        prev = t
    return total


# a model where greedy (3 first) loses to 4 followed by EOS
LOGITS = torch.full((5, 5), -20.0)
LOGITS[BOS, 3], LOGITS[BOS, 4] = 1.0, 0.9
LOGITS[3, 3], LOGITS[3, 4], LOGITS[3, EOS] = 0.0, 0.0, 0.0
LOGITS[4, EOS] = 5.0


def test_greedy_takes_the_argmax_and_counts_its_log_prob():
    hyp, = greedy_decode(markov_step(LOGITS), torch.zeros(1), batch_size=1, bos=BOS, eos=EOS,
                         max_len=6, device="cpu")
    assert isinstance(hyp, Hypothesis)
    assert hyp.tokens[0] == 3 and hyp.score == hyp.log_prob
    assert hyp.log_prob == pytest.approx(sequence_log_prob(LOGITS, hyp.tokens, hyp.finished), abs=1e-5)
    assert hyp.attention.shape == (len(hyp.tokens), 3) and hyp.attention.dtype == np.float64


def test_greedy_limits_and_key_counts_per_input():
    step = markov_step(LOGITS)
    short, long = greedy_decode(step, torch.zeros(2), batch_size=2, bos=BOS, eos=EOS, max_len=[1, 6],
                                device="cpu", n_keys=[2, 3])
    assert short.tokens == [3] and not short.finished and short.eos_attention is None
    assert short.attention.shape == (1, 2)
    alone, = greedy_decode(step, torch.zeros(1), batch_size=1, bos=BOS, eos=EOS, max_len=6, device="cpu")
    assert long.tokens == alone.tokens and long.log_prob == alone.log_prob
    np.testing.assert_array_equal(long.attention, alone.attention)


def test_beam_search_finds_the_most_probable_output():
    hyp = beam_search(markov_step(LOGITS), torch.zeros(1), n_keys=3, dtype=torch.float64, device="cpu",
                      bos=BOS, eos=EOS, beam_size=2, max_len=4, length_penalty=0.0)
    best = max((sequence_log_prob(LOGITS, list(seq), True), list(seq))
               for n in range(4) for seq in itertools.product((3, 4), repeat=n))
    assert hyp.finished and hyp.tokens == best[1] == [4]
    assert hyp.log_prob == pytest.approx(best[0], abs=1e-5)
    assert hyp.eos_attention is not None and hyp.attention.shape == (1, 3)


def test_length_normalised_score():
    assert length_normalised_score(-6.0, 3, 1.0) == -2.0
    assert length_normalised_score(-6.0, 0, 1.0) == -6.0  # n counted as at least 1
    assert length_normalised_score(-6.0, 3, 0.0) == -6.0


def test_token_id_batches():
    assert is_single_sequence(np.arange(3)) and not is_single_sequence([[1], [2]])
    padded, lengths = as_id_batch(torch.tensor([[3, 4, 9], [5, 9, 9]]), [3, 1], "srcs", 10)
    assert padded.tolist() == [[3, 4, 9], [5, 0, 0]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="src_lengths"):
        as_id_batch([[3, 4]], [3], "srcs", 10)
    with pytest.raises(ValueError, match="reserved"):
        as_id_batch([[3, 2]], None, "targets", 10, reserved=(0, 1, 2))
    with pytest.raises(ValueError, match="integer token ids"):
        as_int_array(np.ones(2), "x")
