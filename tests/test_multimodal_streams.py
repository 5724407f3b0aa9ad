import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from mmalign.alignment import Alignment
from mmalign.datasets import STREAM_LEXICON, collate_streams, multimodal_streams
from mmalign.metrics import span_hit_rate, span_masks


def fields(ds):
    return [ds.words, ds.polarity, ds.audio, ds.video, ds.audio_spans, ds.video_spans]


def assert_same(a, b):
    for fa, fb in zip(fields(a), fields(b)):
        for x, y in zip(fa, fb):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_deterministic_by_seed():
    assert_same(multimodal_streams(10, seed=3), multimodal_streams(10, seed=3))
    a, b = multimodal_streams(10, seed=3), multimodal_streams(10, seed=4)
    assert not np.array_equal(a.labels, b.labels)


def test_shapes_ragged_lengths_and_spans():
    ds = multimodal_streams(60, seed=0, min_words=3, max_words=9, d_audio=6, d_video=4)
    assert len(ds) == 60 and len({len(w) for w in ds.words}) > 3
    for i in range(len(ds)):
        t = len(ds.words[i])
        assert 3 <= t <= 9 and len(set(ds.words[i].tolist())) == t
        assert ds.words[i].min() >= 4 and ds.polarity[i].shape == (t,)
        assert ds.audio[i].dtype == np.float32 and ds.audio[i].shape[1] == 6
        assert ds.video[i].shape[1] == 4
        for spans, stream, rate, offset in (
            (ds.audio_spans[i], ds.audio[i], ds.audio_rate, ds.audio_offset[i]),
            (ds.video_spans[i], ds.video[i], ds.video_rate, ds.video_offset[i]),
        ):
            assert spans.shape == (t, 2)
            assert (spans[:, 1] > spans[:, 0]).all()          # at least one frame
            assert (spans[1:, 0] >= spans[:-1, 1]).all()      # ordered, no overlap
            assert spans[0, 0] >= 0 and spans[-1, 1] <= len(stream)
            expected = np.round((offset + ds.word_times[i]) * rate)
            np.testing.assert_array_equal(spans, expected)
    # the audio runs at a higher rate than the video
    assert np.mean([len(a) for a in ds.audio]) > 2 * np.mean([len(v) for v in ds.video])
    # per-sample offsets differ between the streams
    assert not np.allclose(ds.audio_offset, ds.video_offset)


def test_labels_follow_valence_tone_and_expression():
    ds = multimodal_streams(300, seed=1)
    vocab = ds.vocab
    kind = {vocab[w]: k for k, words in STREAM_LEXICON.items() for w in words}
    lexical = {}  # word -> valence before negation (fixed by the lexicon)
    saw_flip = saw_contradiction = False
    for i in range(len(ds)):
        words, val, tone, expr = ds.words[i], ds.valence[i], ds.tone[i], ds.intensity[i]
        c = val * (tone + expr) / 2
        np.testing.assert_allclose(ds.contribution[i], c)
        assert ds.labels[i] == pytest.approx(np.clip(c.sum(), -3, 3), abs=1e-5)
        assert -3 <= ds.labels[i] <= 3
        assert set(np.unique(tone)) <= {-1.0, 1.0}
        assert ((np.abs(expr) >= 0.5) & (np.abs(expr) <= 1.5)).all()
        saw_contradiction |= bool((tone < 0).any() and (expr < 0).any())
        for k, w in enumerate(words):
            w = int(w)
            flipped = k > 0 and words[k - 1] == vocab["not"]
            saw_flip |= flipped
            base = val[k] * (-1 if flipped else 1)
            assert lexical.setdefault(w, base) == base            # one valence per word
            assert abs(base) == 1.0                               # connotation 1 by default
            if kind[w] == "positive":
                assert base == 1 and ds.polarity[i][k] == (-1 if flipped else 1)
            elif kind[w] == "negative":
                assert base == -1 and ds.polarity[i][k] == (1 if flipped else -1)
            elif kind[w] == "ambiguous":                          # the sign is in the voice
                assert base == 1 and ds.polarity[i][k] == np.sign(val[k] * tone[k])
            else:
                assert ds.polarity[i][k] == 0
                if kind[w] == "negator":
                    assert base == -1
    assert saw_flip and saw_contradiction
    # neutral words carry both connotation signs across the lexicon
    assert {lexical[w] for w in lexical if kind[w] == "neutral"} == {-1.0, 1.0}
    # connotation scales neutral words and the negator only; contradiction 0: voice and face agree
    weak = multimodal_streams(50, seed=1, connotation=0.5, contradiction=0.0)
    for i in range(50):
        for k, w in enumerate(weak.words[i]):
            if kind[int(w)] in ("neutral", "negator"):
                assert abs(weak.valence[i][k]) == 0.5
            else:
                assert abs(weak.valence[i][k]) == 1.0
                if kind[int(w)] != "ambiguous":
                    assert weak.tone[i][k] == 1.0
        assert (weak.intensity[i] > 0).all()


def test_aligned_variant_is_the_span_average():
    un = multimodal_streams(8, seed=5)
    al = multimodal_streams(8, seed=5, aligned=True)
    assert al.aligned and not un.aligned
    np.testing.assert_array_equal(al.labels, un.labels)
    for i in range(8):
        t = len(un.words[i])
        assert al.audio[i].shape == (t, un.audio[i].shape[1])
        assert al.video[i].shape == (t, un.video[i].shape[1])
        expect = np.stack([un.audio[i][a:b].mean(0) for a, b in un.audio_spans[i]])
        np.testing.assert_allclose(al.audio[i], expect, atol=1e-5)
        expect = np.stack([un.video[i][a:b].mean(0) for a, b in un.video_spans[i]])
        np.testing.assert_allclose(al.video[i], expect, atol=1e-5)
        np.testing.assert_array_equal(al.audio_spans[i][:, 0], np.arange(t))
        np.testing.assert_array_equal(al.video_spans[i][:, 1], np.arange(1, t + 1))


def test_word_cues_are_only_in_their_spans():
    ds = multimodal_streams(100, seed=2)
    noise = ds.meta["noise"]
    for i in range(len(ds)):
        for k in range(len(ds.words[i])):
            a, b = ds.audio_spans[i][k]
            v0, v1 = ds.video_spans[i][k]
            tol_a, tol_v = 5 * noise / np.sqrt(b - a), 5 * noise / np.sqrt(v1 - v0)  # 5 sigma
            assert ds.audio[i][a:b, 0].mean() == pytest.approx(ds.tone[i][k], abs=tol_a)
            assert ds.audio[i][a:b, 1].mean() == pytest.approx(1.0, abs=tol_a)  # energy
            assert ds.video[i][v0:v1, 0].mean() == pytest.approx(ds.intensity[i][k], abs=tol_v)
        # nothing outside the words but noise
        inside = span_masks(ds.audio_spans[i], len(ds.audio[i])).any(0)
        assert np.abs(ds.audio[i][~inside].mean(0)).max() < 5 * noise / np.sqrt(max(1, (~inside).sum()))
        inside = span_masks(ds.video_spans[i], len(ds.video[i])).any(0)
        if (~inside).any():
            assert np.abs(ds.video[i][~inside].mean(0)).max() < 5 * noise / np.sqrt((~inside).sum())


def _features(ds, use_spans):
    """Per-word (tone, expression) from the true spans, or from the whole stream."""
    n_vocab, not_id = len(ds.vocab), ds.vocab["not"]
    x = np.zeros((len(ds), 2 * n_vocab * 3))
    for i in range(len(ds)):
        words, audio, video = ds.words[i], ds.audio[i], ds.video[i]
        for k, w in enumerate(words):
            if use_spans:
                (a0, a1), (v0, v1) = ds.audio_spans[i][k], ds.video_spans[i][k]
                p, it = audio[a0:a1, 0].mean(), video[v0:v1, 0].mean()
            else:
                p, it = audio[:, 0].mean(), video[:, 0].mean()
            negated = k > 0 and words[k - 1] == not_id
            j = 3 * (negated * n_vocab + w)
            x[i, j: j + 3] += [1.0, p, it]
    return x


def test_frames_identify_their_word():
    """A matched filter (per-word mean frame learned from another split) finds each word's span."""
    train, test = multimodal_streams(300, seed=20), multimodal_streams(100, seed=21)
    for stream, feats in (("audio", slice(2, None)), ("video", slice(1, None))):
        sums = {}
        for i in range(len(train)):
            x = getattr(train, stream)[i]
            for w, (a, b) in zip(train.words[i], train.true_spans(stream)[i]):
                sums.setdefault(int(w), []).append(x[a:b, feats].mean(0))
        proto = {w: np.mean(v, axis=0) for w, v in sums.items()}
        hits = []
        for i in range(len(test)):
            x = getattr(test, stream)[i][:, feats]
            scores = np.stack([x @ proto[int(w)] for w in test.words[i]])
            hits.append(span_hit_rate(scores - scores.min(1, keepdims=True) + 1e-9,
                                      test.true_spans(stream)[i]))
        assert np.mean(hits) > 0.9, (stream, np.mean(hits))  # about 1.0 (audio), 0.99 (video)


def test_label_needs_alignment():
    """Linear regression on span-averaged features beats the same model on global averages."""
    train, test = multimodal_streams(800, seed=10), multimodal_streams(300, seed=11)
    err = {}
    for use_spans in (True, False):
        model = Ridge(alpha=1e-3).fit(_features(train, use_spans), train.labels)
        pred = np.clip(model.predict(_features(test, use_spans)), -3, 3)
        err[use_spans] = np.mean(np.abs(pred - test.labels))
    assert err[True] < 0.2          # about 0.11
    assert err[False] > 4 * err[True]  # about 0.82 (constant predictor: 1.02)


def test_collate_pads_and_keeps_values():
    ds = multimodal_streams(5, seed=0)
    b = collate_streams([ds[i] for i in range(5)])
    assert b.words.dtype == torch.long and b.audio.dtype == torch.float32
    assert b.audio_spans.shape == (5, int(b.text_lengths.max()), 2)
    for i in range(5):
        t, na, nv = len(ds.words[i]), len(ds.audio[i]), len(ds.video[i])
        assert (b.text_lengths[i], b.audio_lengths[i], b.video_lengths[i]) == (t, na, nv)
        np.testing.assert_array_equal(b.words[i, :t].numpy(), ds.words[i])
        assert (b.words[i, t:] == 0).all() and (b.audio[i, na:] == 0).all()
        np.testing.assert_array_equal(b.audio[i, :na].numpy(), ds.audio[i])
        np.testing.assert_array_equal(b.video_spans[i, :t].numpy(), ds.video_spans[i])
        assert (b.video_spans[i, t:] == 0).all()
        assert b.labels[i].item() == pytest.approx(float(ds.labels[i]))
    assert ds.batch([1, 3]).words.shape[0] == 2 and ds.batch().labels.shape == (5,)
    assert ds.true_spans("audio") is ds.audio_spans
    assert {"valence", "tone", "contribution", "intensity"} <= set(ds[0])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_streams)
    assert next(iter(loader)).audio.shape[0] == 2
    with pytest.raises(ValueError, match="samples"):
        collate_streams([])
    with pytest.raises(ValueError, match="modality"):
        ds.true_spans("text")


def test_span_hit_rate_oracle_and_baseline():
    ds = multimodal_streams(10, seed=0)
    for i in range(10):
        masks = span_masks(ds.audio_spans[i], len(ds.audio[i]))
        oracle = masks / masks.sum(1, keepdims=True)
        assert span_hit_rate(oracle, ds.audio_spans[i]) == 1.0
        assert span_hit_rate(torch.tensor(oracle), ds.audio_spans[i]) == 1.0
        assert span_hit_rate(Alignment(weights=oracle + 1e-3, monotonic=False),
                             ds.audio_spans[i]) == 1.0
        # the attention aligners' sides: frames on side x, words on side y (a distribution
        # over x per word), read the same way
        flipped = Alignment(weights=oracle.T + 1e-3, distribution_over="x", monotonic=False)
        assert span_hit_rate(flipped, ds.audio_spans[i]) == 1.0
        assert span_hit_rate(flipped.transpose(), ds.audio_spans[i]) == 1.0
        # heads are averaged: one good head out of two still wins the argmax
        heads = np.stack([oracle, np.full_like(oracle, 1.0 / oracle.shape[1])])
        assert span_hit_rate(heads, ds.audio_spans[i]) == 1.0
        # everything on the first frame: only a word starting at frame 0 could hit
        first = np.zeros_like(oracle)
        first[:, 0] = 1
        assert span_hit_rate(first, ds.audio_spans[i]) <= 1 / len(oracle)


def test_span_hit_rate_and_masks_errors():
    w = np.ones((2, 5)) / 5
    with pytest.raises(ValueError, match="spans"):
        span_hit_rate(w, [[0, 1]])
    with pytest.raises(ValueError, match="spans"):
        span_hit_rate(w, [[0.0, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="spans"):
        span_masks([[0, 9]], 5)
    with pytest.raises(ValueError, match="weights"):
        span_hit_rate(np.full((2, 5), np.nan), [[0, 1], [1, 2]])
    # padding rows (end <= start) are skipped
    assert span_hit_rate(np.eye(3, 5), [[0, 1], [1, 2], [0, 0]]) == 1.0
    # an Alignment's words are its rows (side x) unless its weights are a distribution over x
    with pytest.raises(ValueError, match="spans has 2 words but weights has 5 rows"):
        span_hit_rate(Alignment(weights=w.T, distribution_over="y", monotonic=False),
                      [[0, 1], [1, 2]])
    assert span_hit_rate(Alignment(weights=w.T, distribution_over="x", monotonic=False),
                         [[0, 1], [1, 2]]) == 0.5


def test_argument_errors():
    with pytest.raises(ValueError, match="video_rate"):
        multimodal_streams(2, video_rate=1.0)
    with pytest.raises(ValueError, match="max_words"):
        multimodal_streams(2, max_words=100)
    with pytest.raises(ValueError, match="max_words"):
        multimodal_streams(2, min_words=5, max_words=4)
    with pytest.raises(ValueError, match="d_audio"):
        multimodal_streams(2, d_audio=2)
    with pytest.raises(ValueError, match="noise"):
        multimodal_streams(2, noise=-1.0)
    with pytest.raises(ValueError, match="text_rate"):
        multimodal_streams(2, text_rate=float("nan"))
    with pytest.raises(ValueError, match="contradiction"):
        multimodal_streams(2, contradiction=1.5)
    with pytest.raises(ValueError, match="connotation"):
        multimodal_streams(2, connotation=-0.5)
    with pytest.raises(IndexError):
        multimodal_streams(2)[5]


def test_lexicon_is_shared_across_seeds():
    a, b = multimodal_streams(30, seed=0), multimodal_streams(30, seed=1)
    assert a.vocab == b.vocab
    # the same word carries the same (noisy) embedding in both splits
    w = int(a.words[0][0])
    j = [k for k in range(30) if w in b.words[k]][0]
    ka = 0
    kb = int(np.where(b.words[j] == w)[0][0])
    ea = a.audio[0][slice(*a.audio_spans[0][ka]), 2:].mean(0)
    eb = b.audio[j][slice(*b.audio_spans[j][kb]), 2:].mean(0)
    assert np.corrcoef(ea, eb)[0, 1] > 0.9
