"""Synthetic unaligned multimodal streams with word-level ground truth (MulT protocol).

A toy version of multimodal sentiment data (CMU-MOSI / MOSEI as used by the
Multimodal Transformer, Tsai et al., ACL 2019): each sample is an utterance of
words, an audio-like feature stream and a video-like feature stream, at
different frame rates and with different start offsets; the label is a
sentiment score in ``[-3, 3]``. Because every word's time span is known, the
true span of each word in each stream is known exactly, so crossmodal attention
can be scored against it (:func:`mmalign.metrics.span_hit_rate`).

Generative story (per sample)
-----------------------------
*Words.* ``n_words ~ U{min_words, ..., max_words}`` words are drawn without
replacement from a fixed 33-word lexicon of 5 kinds: neutral, positive,
negative, *ambiguous* slang (``"sick"``, ``"wicked"``, ...) and the negator
``"not"``. Each word has a lexical *valence* ``v_w``: +1 positive, -1
negative, +1 slang (its sign is carried by the voice, see below), a fixed weak
connotation ``+-connotation`` for each neutral word (sign drawn once per word
from ``lexicon_seed``) and ``-connotation`` for ``"not"``, which also flips the
valence of the next word. ``polarity`` is the effective sign of the polar and
slang words in ``{-1, 0, +1}`` (0 for neutral words and the negator).

*Voice and face.* Every word is spoken with a *tone* ``t_w in {-1, +1}`` (-1:
the voice contradicts the word, probability ``contradiction``; 1/2 for slang,
whose sign only the voice tells) and shown with a signed facial *expression*
``e_w = s_w * i_w`` (``s_w = -1`` with probability ``contradiction``,
intensity ``i_w ~ U(0.5, 1.5)``), independently per word.

*Label.* Word ``w`` contributes ``c_w = v_w * (t_w + e_w) / 2`` and
``y = clip(sum_w c_w, -3, 3)``. Every word's contribution depends on its
own tone, only present in the audio frames of its span, and on its own
expression, only present in the video frames of its span, with a sign that
only the text tells (its valence); so every word has to find its own frames
in both streams.

*Timing.* Word ``w`` lasts ``d_w = U(0.6, 1.4) / text_rate`` seconds, followed
by a pause of ``U(0, 0.3) / text_rate`` seconds. The audio stream starts
``audio_offset ~ U(0, max_offset)`` seconds before the first word and the video
stream ``video_offset ~ U(0, max_offset)`` seconds before it (independently);
both run on for a tail of ``U(0, max_offset)`` seconds after the last word.
Durations, pauses and offsets are drawn per sample, so the word sequence
alone does not tell where a word's frames are.

*Frames.* Word ``w`` occupies frames ``[start, end)`` of a stream at ``rate``
frames/s with ``start = round((offset + t0_w) * rate)``, ``end =
round((offset + t1_w) * rate)``; spans never overlap and hold at least one
frame (the generator requires ``0.6 / text_rate >= 1 / min(rate)``).

*Audio* ``(T_a, d_audio)``: feature 0 "tone" ``t_w``, feature 1 "energy" (1),
features 2.. a fixed unit-norm per-word "phonetic" embedding, on every frame
of word ``w``'s span. *Video* ``(T_v, d_video)``: feature 0 "expression"
``e_w``, features 1.. a second fixed unit-norm per-word embedding ("lip
shape"). Pauses, lead-in and tail are 0. Gaussian noise of standard
deviation ``noise`` is added to every frame. The embeddings are what lets a
word's query find its own frames (their identity); the tone and expression
are what the label needs from them.

*Aligned variant* (``aligned=True``, MulT's "aligned" protocol): the audio and
video features are averaged over each word's span, so all three streams have
``T_text`` steps; spans become ``[w, w + 1)``.

The lexicon (kinds, valences, embeddings) depends on ``lexicon_seed`` only, so
splits generated with different ``seed`` share it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..utils.validation import check_int
from .sequence_tasks import Vocabulary, _as_rng

__all__ = [
    "MultimodalStreams",
    "StreamBatch",
    "multimodal_streams",
    "collate_streams",
    "STREAM_LEXICON",
]

STREAM_LEXICON: dict[str, tuple[str, ...]] = {
    "neutral": ("the", "a", "movie", "film", "plot", "actor", "story", "was", "is", "this",
                "it", "and", "scene", "ending", "really", "quite"),
    "positive": ("good", "great", "funny", "brilliant", "love", "beautiful"),
    "negative": ("bad", "boring", "awful", "dull", "hate", "terrible"),
    "ambiguous": ("sick", "wicked", "crazy", "unreal"),
    "negator": ("not",),
}
"""Words of :func:`multimodal_streams` by kind."""

_KIND_PROBS = {"neutral": 0.45, "positive": 0.17, "negative": 0.17, "ambiguous": 0.13,
               "negator": 0.08}
_WORD_DUR = (0.6, 1.4)   # times 1 / text_rate
_PAUSE = (0.0, 0.3)      # times 1 / text_rate
_INTENSITY = (0.5, 1.5)
_LABEL_RANGE = 3.0


def _check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} "
                         f"and finite, got {value}")
    return value


def _lexicon_vocab() -> Vocabulary:
    return Vocabulary([w for kind in STREAM_LEXICON.values() for w in kind])


@dataclass
class MultimodalStreams:
    """A generated set of samples (see :func:`multimodal_streams`).

    Per-sample arrays are held in lists of length ``n``; ``ds[i]`` returns
    sample ``i`` as a dict (usable as a ``torch.utils.data.Dataset`` with
    :func:`collate_streams` as ``collate_fn``).

    Attributes
    ----------
    words : list of np.ndarray [int64], shape (T_text,)
        Word ids in :attr:`vocab` (``>= 4``; 0 is padding).
    polarity : list of np.ndarray [int64], shape (T_text,)
        Effective polarity of each word in ``{-1, 0, 1}`` (negation applied; the
        voice's sign for slang; 0 for neutral words and the negator).
    intensity : list of np.ndarray [float64], shape (T_text,)
        Signed facial expression ``e_w`` of each word (what video feature 0
        carries in the word's span): ``+-U(0.5, 1.5)``, negative when the face
        contradicts the word.
    audio : list of np.ndarray [float32], shape (T_a, d_audio)
        ``T_a = T_text`` when aligned.
    video : list of np.ndarray [float32], shape (T_v, d_video)
        ``T_v = T_text`` when aligned.
    audio_spans, video_spans : list of np.ndarray [int64], shape (T_text, 2)
        True ``[start, end)`` frames of each word in each stream.
    word_times : list of np.ndarray [float64], shape (T_text, 2)
        ``[t0, t1)`` of each word in seconds from the first word's onset.
    audio_offset, video_offset : np.ndarray [float64], shape (n,)
        Seconds of stream before the first word.
    labels : np.ndarray [float32], shape (n,)
        Sentiment scores in ``[-3, 3]``.
    vocab : Vocabulary
    aligned : bool
    audio_rate, video_rate : float
        Frames per second (of the unaligned streams).
    meta : dict
        The generator's settings.
    valence : list of np.ndarray [float64], shape (T_text,)
        Lexical valence ``v_w`` of each word (negation applied).
    tone : list of np.ndarray [float64], shape (T_text,)
        Tone of voice ``t_w in {-1, 1}`` of each word (what audio feature 0
        carries in the word's span).
    contribution : list of np.ndarray [float64], shape (T_text,)
        ``c_w = v_w * (t_w + e_w) / 2``; ``labels = clip(sum_w c_w, -3, 3)``.
    """

    words: list
    polarity: list
    intensity: list
    audio: list
    video: list
    audio_spans: list
    video_spans: list
    word_times: list
    audio_offset: np.ndarray
    video_offset: np.ndarray
    labels: np.ndarray
    vocab: Vocabulary
    aligned: bool
    audio_rate: float
    video_rate: float
    meta: dict = field(default_factory=dict)
    valence: list = field(default_factory=list)
    tone: list = field(default_factory=list)
    contribution: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int) -> dict:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, numbers.Integral):
            raise ValueError(f"index must be an integer, got {i!r}")
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        return {
            "words": self.words[i], "polarity": self.polarity[i], "intensity": self.intensity[i],
            "audio": self.audio[i], "video": self.video[i],
            "audio_spans": self.audio_spans[i], "video_spans": self.video_spans[i],
            "label": float(self.labels[i]), "valence": self.valence[i], "tone": self.tone[i],
            "contribution": self.contribution[i],
        }

    def true_spans(self, modality: str) -> list:
        """True word spans in ``"audio"`` or ``"video"``: list of (T_text, 2) ``[start, end)``."""
        if modality == "audio":
            return self.audio_spans
        if modality == "video":
            return self.video_spans
        raise ValueError(f"modality must be 'audio' or 'video', got {modality!r}")

    def batch(self, indices: Sequence[int] | None = None) -> "StreamBatch":
        """Padded tensors of the samples ``indices`` (all when None), see :func:`collate_streams`."""
        idx = range(len(self)) if indices is None else indices
        return collate_streams([self[int(i)] for i in idx])


def _spans(t0: np.ndarray, t1: np.ndarray, offset: float, rate: float) -> np.ndarray:
    start = np.round((offset + t0) * rate).astype(np.int64)
    end = np.round((offset + t1) * rate).astype(np.int64)
    end = np.maximum(end, start + 1)
    return np.stack([start, end], axis=1)


def multimodal_streams(
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    aligned: bool = False,
    text_rate: float = 2.5,
    audio_rate: float = 50.0,
    video_rate: float = 15.0,
    min_words: int = 1,
    max_words: int = 6,
    d_audio: int = 16,
    d_video: int = 8,
    max_offset: float = 0.5,
    noise: float = 0.2,
    lexicon_seed: int = 0,
    contradiction: float = 0.25,
    connotation: float = 1.0,
) -> MultimodalStreams:
    """Generate word / audio-like / video-like streams with true word spans and a sentiment label.

    See the module docstring for the generative story.

    Parameters
    ----------
    n : int >= 1
        Number of samples.
    seed : int or np.random.Generator
    aligned : bool
        If True, average audio and video over each word span (MulT "aligned"
        protocol): all streams then have ``T_text`` steps.
    text_rate : float > 0
        Mean words per second (word + pause lasts ``1.15 / text_rate`` s on
        average).
    audio_rate, video_rate : float > 0
        Frames per second of the two streams. ``0.6 / text_rate`` must be at
        least one frame of either stream.
    min_words, max_words : int
        Words per sample are drawn uniformly from ``[min_words, max_words]``
        (ragged), without replacement from the lexicon (so at most 33).
    d_audio : int >= 3
        Audio features: tone, energy, ``d_audio - 2`` embedding dims.
    d_video : int >= 2
        Video features: expression, ``d_video - 1`` embedding dims.
    max_offset : float >= 0
        Largest stream lead-in (and tail) in seconds.
    noise : float >= 0
        Standard deviation of the Gaussian noise on every frame.
    lexicon_seed : int >= 0
        Seed of the per-word embeddings and connotation signs (keep it fixed
        across splits).
    contradiction : float in [0, 1]
        Probability that a word's tone (resp. expression) contradicts it
        (-1); the tone of slang is +-1 with probability 1/2 whatever this is.
    connotation : float >= 0
        Magnitude of the valence of neutral words and of ``"not"``.

    Returns
    -------
    streams : MultimodalStreams

    Examples
    --------
    >>> from mmalign.datasets import multimodal_streams
    >>> ds = multimodal_streams(3, seed=0)
    >>> len(ds), ds.words[0].shape, ds.audio[0].shape, ds.video[0].shape
    (3, (6,), (186, 16), (58, 8))
    >>> ds.audio_spans[0][:2]  # [start, end) audio frames of the first two words
    array([[22, 40],
           [43, 71]])
    >>> [round(float(y), 3) for y in ds.labels]
    [1.303, 1.728, 0.78]
    >>> multimodal_streams(3, seed=0, aligned=True).audio[0].shape
    (6, 16)
    """
    n = check_int(n, "n", 1)
    rng = _as_rng(seed)
    text_rate = _check_positive(text_rate, "text_rate")
    audio_rate = _check_positive(audio_rate, "audio_rate")
    video_rate = _check_positive(video_rate, "video_rate")
    min_words = check_int(min_words, "min_words", 1)
    max_words = check_int(max_words, "max_words", 1)
    vocab = _lexicon_vocab()
    n_lex = len(vocab) - len(Vocabulary.SPECIALS)
    if max_words < min_words:
        raise ValueError(f"max_words must be >= min_words = {min_words}, got {max_words}")
    if max_words > n_lex:
        raise ValueError(f"max_words must be <= {n_lex} (the lexicon size), got {max_words}")
    d_audio = check_int(d_audio, "d_audio", 3)
    d_video = check_int(d_video, "d_video", 2)
    max_offset = _check_positive(max_offset, "max_offset", allow_zero=True)
    noise = _check_positive(noise, "noise", allow_zero=True)
    lexicon_seed = check_int(lexicon_seed, "lexicon_seed", 0)
    contradiction = _check_positive(contradiction, "contradiction", allow_zero=True)
    if contradiction > 1:
        raise ValueError(f"contradiction must be a probability in [0, 1], got {contradiction}")
    connotation = _check_positive(connotation, "connotation", allow_zero=True)
    min_dur = _WORD_DUR[0] / text_rate
    for name, rate in (("audio_rate", audio_rate), ("video_rate", video_rate)):
        if min_dur * rate < 1.0:
            raise ValueError(
                f"{name}: the shortest word ({min_dur:.3g} s at text_rate={text_rate}) must last "
                f"at least one frame, got {min_dur * rate:.3g} frames; raise {name} or lower text_rate"
            )

    # fixed lexicon: kinds, embeddings and valences (independent of `seed`)
    lex_rng = np.random.default_rng(lexicon_seed)
    emb_a = lex_rng.standard_normal((len(vocab), d_audio - 2))
    emb_a /= np.linalg.norm(emb_a, axis=1, keepdims=True)
    emb_v = lex_rng.standard_normal((len(vocab), d_video - 1))
    emb_v /= np.linalg.norm(emb_v, axis=1, keepdims=True)
    kinds = list(STREAM_LEXICON)
    word_kind = np.zeros(len(vocab), dtype=np.int64)
    base_pol = np.zeros(len(vocab), dtype=np.int64)
    for k, kind in enumerate(kinds):
        for w in STREAM_LEXICON[kind]:
            word_kind[vocab[w]] = k
            base_pol[vocab[w]] = {"positive": 1, "negative": -1}.get(kind, 0)
    lex_ids = np.arange(len(Vocabulary.SPECIALS), len(vocab))
    # lexical valence: +-1 for polar words, +1 for slang (its sign is in the tone), a fixed
    # connotation +-`connotation` for neutral words, -`connotation` for the negator
    conn_sign = np.where(np.random.default_rng([lexicon_seed, 1]).random(len(vocab)) < 0.5, -1.0, 1.0)
    base_val = np.zeros(len(vocab))
    for k, kind in enumerate(kinds):
        for w in STREAM_LEXICON[kind]:
            base_val[vocab[w]] = {"positive": 1.0, "negative": -1.0, "ambiguous": 1.0,
                                  "negator": -connotation}.get(kind, connotation * conn_sign[vocab[w]])
    # sampling weight per lexicon word: the kind's probability split over its words
    weights = np.array([_KIND_PROBS[kinds[word_kind[i]]] / len(STREAM_LEXICON[kinds[word_kind[i]]])
                        for i in lex_ids])
    weights /= weights.sum()
    amb, neg = kinds.index("ambiguous"), kinds.index("negator")

    out: dict[str, list] = {k: [] for k in ("words", "polarity", "intensity", "audio", "video",
                                            "audio_spans", "video_spans", "word_times", "valence",
                                            "tone", "contribution")}
    labels = np.zeros(n, dtype=np.float32)
    offsets_a = np.zeros(n)
    offsets_v = np.zeros(n)
    for i in range(n):
        t_text = int(rng.integers(min_words, max_words + 1))
        words = rng.choice(lex_ids, size=t_text, replace=False, p=weights).astype(np.int64)
        kind = word_kind[words]
        ambiguous = kind == amb
        flip = np.zeros(t_text, dtype=bool)
        flip[1:] = kind[:-1] == neg
        val = np.where(flip, -1.0, 1.0) * base_val[words]
        # voice and face: +1 agrees with the word, -1 contradicts it (probability
        # `contradiction`; 1/2 for the voice of slang, whose sign only the voice tells)
        p_tone = np.where(ambiguous, 0.5, contradiction)
        tone = np.where(rng.random(t_text) < p_tone, -1.0, 1.0)
        expression = (np.where(rng.random(t_text) < contradiction, -1.0, 1.0)
                      * rng.uniform(*_INTENSITY, size=t_text))
        pol = np.sign(base_pol[words] * np.where(flip, -1, 1)).astype(np.int64)
        pol[ambiguous] = np.sign(val[ambiguous] * tone[ambiguous]).astype(np.int64)
        contribution = val * (tone + expression) / 2.0
        label = float(np.clip(np.sum(contribution), -_LABEL_RANGE, _LABEL_RANGE))

        dur = rng.uniform(*_WORD_DUR, size=t_text) / text_rate
        pause = rng.uniform(*_PAUSE, size=t_text) / text_rate
        t0 = np.concatenate([[0.0], np.cumsum(dur + pause)[:-1]])
        t1 = t0 + dur
        off_a, off_v = rng.uniform(0.0, max_offset, size=2)
        tail_a, tail_v = rng.uniform(0.0, max_offset, size=2)
        spans_a = _spans(t0, t1, off_a, audio_rate)
        spans_v = _spans(t0, t1, off_v, video_rate)
        n_a = max(int(np.ceil((off_a + t1[-1] + tail_a) * audio_rate)), int(spans_a[-1, 1]))
        n_v = max(int(np.ceil((off_v + t1[-1] + tail_v) * video_rate)), int(spans_v[-1, 1]))

        audio = np.zeros((n_a, d_audio))
        video = np.zeros((n_v, d_video))
        for w in range(t_text):
            a0, a1 = spans_a[w]
            audio[a0:a1, 0] = tone[w]
            audio[a0:a1, 1] = 1.0
            audio[a0:a1, 2:] = emb_a[words[w]]
            v0, v1 = spans_v[w]
            video[v0:v1, 0] = expression[w]
            video[v0:v1, 1:] = emb_v[words[w]]
        audio += noise * rng.standard_normal(audio.shape)
        video += noise * rng.standard_normal(video.shape)

        if aligned:
            audio = np.stack([audio[a0:a1].mean(axis=0) for a0, a1 in spans_a])
            video = np.stack([video[v0:v1].mean(axis=0) for v0, v1 in spans_v])
            diag = np.stack([np.arange(t_text), np.arange(1, t_text + 1)], axis=1).astype(np.int64)
            spans_a, spans_v = diag, diag.copy()

        out["words"].append(words)
        out["polarity"].append(pol.astype(np.int64))
        out["intensity"].append(expression)
        out["valence"].append(val)
        out["tone"].append(tone)
        out["contribution"].append(contribution)
        out["audio"].append(audio.astype(np.float32))
        out["video"].append(video.astype(np.float32))
        out["audio_spans"].append(spans_a)
        out["video_spans"].append(spans_v)
        out["word_times"].append(np.stack([t0, t1], axis=1))
        labels[i] = label
        offsets_a[i], offsets_v[i] = off_a, off_v

    return MultimodalStreams(
        **out, audio_offset=offsets_a, video_offset=offsets_v, labels=labels, vocab=vocab,
        aligned=bool(aligned), audio_rate=audio_rate, video_rate=video_rate,
        meta={"text_rate": text_rate, "noise": noise, "max_offset": max_offset,
              "lexicon_seed": lexicon_seed, "contradiction": contradiction, "connotation": connotation},
    )


# --------------------------------------------------------------------------- batching


@dataclass
class StreamBatch:
    """Padded tensors of a batch of stream samples (see :func:`collate_streams`).

    Attributes
    ----------
    words : torch.LongTensor, shape (B, T_max)
        Padded with 0 (``<pad>``).
    text_lengths : torch.LongTensor, shape (B,)
    polarity : torch.LongTensor, shape (B, T_max)
        Padded with 0.
    audio : torch.FloatTensor, shape (B, Ta_max, d_audio)
        Padded with 0.
    audio_lengths : torch.LongTensor, shape (B,)
    video : torch.FloatTensor, shape (B, Tv_max, d_video)
    video_lengths : torch.LongTensor, shape (B,)
    audio_spans, video_spans : torch.LongTensor, shape (B, T_max, 2)
        True ``[start, end)`` frames per word; padding rows are ``[0, 0)``.
    labels : torch.FloatTensor, shape (B,)
    """

    words: Any
    text_lengths: Any
    polarity: Any
    audio: Any
    audio_lengths: Any
    video: Any
    video_lengths: Any
    audio_spans: Any
    video_spans: Any
    labels: Any

    def to(self, device: Any) -> "StreamBatch":
        """The same batch with every tensor moved to ``device``."""
        return StreamBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


def collate_streams(samples: Sequence[dict]) -> StreamBatch:
    """Pad a list of samples (``MultimodalStreams[i]`` dicts) into tensors.

    Parameters
    ----------
    samples : sequence of dict, length B >= 1

    Returns
    -------
    batch : StreamBatch
        On the CPU; ``batch.to(device)``.

    Examples
    --------
    >>> from mmalign.datasets import multimodal_streams, collate_streams
    >>> ds = multimodal_streams(4, seed=0)
    >>> b = collate_streams([ds[0], ds[1]])
    >>> tuple(b.words.shape) == (2, int(b.text_lengths.max()))
    True
    >>> b.audio.shape[2], b.audio_spans.shape[2]
    (16, 2)
    """
    import torch

    samples = list(samples)
    if not samples:
        raise ValueError("samples must not be empty")
    keys = ("words", "polarity", "audio", "video", "audio_spans", "video_spans", "label")
    for k, s in enumerate(samples):
        if not isinstance(s, dict) or any(key not in s for key in keys):
            raise ValueError(f"samples[{k}] must be a dict with keys {keys} (MultimodalStreams[i])")
    b = len(samples)
    t_len = [len(s["words"]) for s in samples]
    a_len = [len(s["audio"]) for s in samples]
    v_len = [len(s["video"]) for s in samples]
    d_a, d_v = samples[0]["audio"].shape[1], samples[0]["video"].shape[1]
    words = torch.zeros((b, max(t_len)), dtype=torch.long)
    polarity = torch.zeros((b, max(t_len)), dtype=torch.long)
    audio = torch.zeros((b, max(a_len), d_a), dtype=torch.float32)
    video = torch.zeros((b, max(v_len), d_v), dtype=torch.float32)
    spans_a = torch.zeros((b, max(t_len), 2), dtype=torch.long)
    spans_v = torch.zeros((b, max(t_len), 2), dtype=torch.long)
    for i, s in enumerate(samples):
        if s["audio"].shape[1] != d_a or s["video"].shape[1] != d_v:
            raise ValueError(f"samples[{i}] has feature sizes ({s['audio'].shape[1]}, "
                             f"{s['video'].shape[1]}), expected ({d_a}, {d_v})")
        words[i, : t_len[i]] = torch.as_tensor(s["words"], dtype=torch.long)
        polarity[i, : t_len[i]] = torch.as_tensor(s["polarity"], dtype=torch.long)
        audio[i, : a_len[i]] = torch.as_tensor(s["audio"], dtype=torch.float32)
        video[i, : v_len[i]] = torch.as_tensor(s["video"], dtype=torch.float32)
        spans_a[i, : t_len[i]] = torch.as_tensor(s["audio_spans"], dtype=torch.long)
        spans_v[i, : t_len[i]] = torch.as_tensor(s["video_spans"], dtype=torch.long)
    return StreamBatch(
        words=words, text_lengths=torch.tensor(t_len, dtype=torch.long), polarity=polarity,
        audio=audio, audio_lengths=torch.tensor(a_len, dtype=torch.long),
        video=video, video_lengths=torch.tensor(v_len, dtype=torch.long),
        audio_spans=spans_a, video_spans=spans_v,
        labels=torch.tensor([float(s["label"]) for s in samples], dtype=torch.float32),
    )
