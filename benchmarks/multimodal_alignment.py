"""Fusion transformers on synthetic multimodal streams: MulT's task metrics and crossmodal alignment.

Data: :func:`mmalign.datasets.multimodal_streams` (1-6 words per utterance, an
audio-like and a video-like stream at different rates and offsets, true word
spans in both streams; every word contributes ``valence * (tone + expression)
/ 2`` to a sentiment score in [-3, 3], its tone only in its audio frames and its
expression only in its video frames, its valence only in the text), in its
unaligned form and in its word-aligned form (streams averaged over each word's
span, MulT's "aligned" protocol). Words enter the models as one-hot vectors
(a 37-word vocabulary). The rates are lowered from the generator's defaults
(audio 50 -> 20 frames/s, video 15 -> 10 frames/s) to fit the CPU budget.

Models (same width / depth / epochs / optimiser, one attention head and one
block per stack, no dropout): ``CrossmodalTransformer`` with the text stream
as its only target (MulT's language-only ablation "[V, A -> L]": the text
queries attend over audio and over video, no self-attention stack) -- the
model whose attention is scored against the gold spans -- and with every
modality as a target; ``JointSelfAttentionFusion`` (one encoder over the
concatenated streams with modality embeddings); ``BimodalTransformer``
(text<-audio, text<-video, audio<-video stacks). All sum the text stream over
its words and average the audio and video streams (the label is a clipped
*sum* over words), and use MulT's L1 loss with Adam (lr 3e-3, no gradient
clipping); the weights of the epoch with the lowest validation MAE are kept.
One CPU thread. The scored MulT is also trained from two more seeds (same
data and hyper-parameters) to show the spread.

Task metrics (MulT's protocol): Acc2 with zeros (``pred >= 0`` vs
``y >= 0``), Acc2 / F1 without zeros (samples with ``y = 0`` dropped,
``pred > 0`` vs ``y > 0``, weighted F1), Acc7 (round and clip both to
[-3, 3]), MAE, Pearson correlation.

Alignment (the same rule for every model and seed, fixed before the runs):
the argmax over a stream's frames of each word's attention -- the model's
returned weights averaged over layers and heads (one of each here) -- inside
the word's true span (:func:`span_hit_rate`), over every test word; the
attention mass inside the span; audio -> video at word level (the audio rows
of a word's audio span averaged, argmax inside the same word's video span)
where the model has that attention. Explicit baselines on the same unaligned
streams (one path per sample, a word's pointer = median of the frames the
path pairs with it):

- *uniform*: word ``k`` of ``T`` -> frame ``(k + 0.5) * n / T``;
- *DTW, frame energy*: :func:`mmalign.dtw_path` between a word / pause
  indicator sequence ``[0, 1, 0, 1, ..., 1, 0]`` (one step per word and per
  gap) and the stream's per-frame feature norm (scaled by its 10 / 90 %
  quantiles) -- a speech-activity aligner that knows silence is quiet;
- *CTW, one-hot words*: :class:`mmalign.CTW` between the words' one-hot
  vectors, each repeated ``n // T`` times, and the raw stream (one-word
  utterances, whose one-hot sequence is constant: the uniform pointer);
- audio -> video: DTW on the two streams' frame energies and CTW on the raw
  streams.

Comparability: the attention models learn the alignment only as a by-product
of the sentiment loss (no span, time or position information reaches them
beyond the streams themselves) and the baselines use no labels; both see the
same test streams.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

import mmalign
from mmalign.attention import BimodalTransformer, CrossmodalTransformer, JointSelfAttentionFusion
from mmalign.datasets import STREAM_LEXICON, multimodal_streams
from mmalign.metrics import attention_mass_inside, span_masks

from .common import RESULTS_DIR, machine_info, machine_markdown, markdown_table, write_report

RATES = dict(audio_rate=20.0, video_rate=10.0)
FULL = dict(n_train=3000, n_val=300, n_test=300, max_epochs=30, n_baseline=150, extra_seeds=(1, 2))
QUICK = dict(n_train=300, n_val=60, n_test=60, max_epochs=2, n_baseline=30, extra_seeds=(1,))
MODEL_PARAMS = dict(d_model=30, num_heads=1, num_layers=1,
                    pooling={"text": "sum", "audio": "mean", "video": "mean"},
                    attn_dropout=0.0, relu_dropout=0.0, res_dropout=0.0, embed_dropout=0.0,
                    out_dropout=0.0)
# the models' ``train`` settings (``max_epochs`` and ``seed`` are set per run)
TRAIN = dict(batch_size=16, lr=3e-3, grad_clip=None, seed=0, device="cpu")
SCORED = "MulT (text target)"
MODELS = {
    SCORED: (CrossmodalTransformer, dict(self_layers=0, targets=["text"])),
    "MulT (all targets)": (CrossmodalTransformer, dict(self_layers=0)),
    "joint self-attention": (JointSelfAttentionFusion, {}),
    "bimodal (pairwise)": (BimodalTransformer, {}),
}


# --------------------------------------------------------------------------- data

def _inputs(ds) -> tuple[dict, np.ndarray]:
    eye = np.eye(len(ds.vocab), dtype=np.float32)
    return {"text": [eye[w] for w in ds.words], "audio": list(ds.audio),
            "video": list(ds.video)}, np.asarray(ds.labels, dtype=np.float32)


def _word_kinds(ds) -> dict[int, str]:
    return {ds.vocab[w]: kind for kind, words in STREAM_LEXICON.items() for w in words}


# --------------------------------------------------------------------------- metrics

def sentiment_metrics(pred, y) -> dict:
    """MulT's regression-task metrics (Acc2 with / without zeros, F1, Acc7, MAE, Corr)."""
    from sklearn.metrics import f1_score

    pred, y = np.asarray(pred, dtype=np.float64), np.asarray(y, dtype=np.float64)
    nz = y != 0
    return {
        "acc2_with_zeros": float(np.mean((pred >= 0) == (y >= 0))),
        "acc2_non_zero": float(np.mean((pred[nz] > 0) == (y[nz] > 0))),
        "f1_non_zero": float(f1_score(y[nz] > 0, pred[nz] > 0, average="weighted")),
        "acc7": float(np.mean(np.round(np.clip(pred, -3, 3)) == np.round(np.clip(y, -3, 3)))),
        "mae": float(np.mean(np.abs(pred - y))),
        "corr": float(np.corrcoef(pred, y)[0, 1]) if np.std(pred) > 0 else 0.0,
    }


def _pointer_weights(path: np.ndarray, owner: np.ndarray, n_words: int, n_y: int) -> np.ndarray:
    """One-hot (n_words, n_y): each word points at the median y frame its x steps are paired with."""
    w = np.zeros((n_words, n_y))
    owned = owner[path[:, 0]]
    for k in range(n_words):
        js = path[owned == k, 1]
        w[k, int(np.median(js)) if len(js) else 0] = 1.0
    return w


def _word_rows(weights: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """(T_a, T_v) frame-level weights -> (T_text, T_v): mean of each word's audio-span rows."""
    return np.stack([weights[a0:a1].mean(axis=0) for a0, a1 in spans])


def _hits(weights: np.ndarray, spans: np.ndarray) -> np.ndarray:
    m = span_masks(spans, weights.shape[1])
    return m[np.arange(len(weights)), weights.argmax(axis=1)]


def _attention_scores(model, X: dict, ds) -> dict:
    """Span hit / mass of the layer- and head-averaged attention (``Alignment.matrix()``).

    The models' alignments put the source stream on side x and the text (the target) on
    side y; transposed, each row is one word's attention over the stream's frames."""
    out: dict[str, list] = {}
    kinds = _word_kinds(ds)
    for stream in ("audio", "video"):
        als = model.align_batch(X, target="text", source=stream)
        for i, a in enumerate(als):
            w = a.transpose().matrix()  # (T_text, T_stream)
            spans = ds.true_spans(stream)[i]
            hit = _hits(w, spans)
            out.setdefault(f"text<-{stream}", []).extend(hit)
            neutral = np.array([kinds[int(t)] == "neutral" for t in ds.words[i]])
            out.setdefault(f"text<-{stream} (neutral words)", []).extend(hit[neutral])
            out.setdefault(f"mass text<-{stream}", []).append(
                attention_mass_inside(w, span_masks(spans, w.shape[1])))
    try:
        als = model.align_batch(X, target="audio", source="video")
    except ValueError:  # no audio <- video attention in this model
        als = None
    if als is not None:
        for i, a in enumerate(als):
            out.setdefault("audio->video", []).extend(
                _hits(_word_rows(a.transpose().matrix(), ds.audio_spans[i]), ds.video_spans[i]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def _activity(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1)
    lo, hi = np.quantile(n, 0.1), np.quantile(n, 0.9)
    return ((n - lo) / max(hi - lo, 1e-9))[:, None]


def _word_pause_sequence(n_words: int) -> tuple[np.ndarray, np.ndarray]:
    seq, owner = [0.0], [-1]
    for k in range(n_words):
        seq += [1.0, 0.0]
        owner += [k, -1]
    return np.array(seq)[:, None], np.array(owner)


def _baselines(ds, n: int) -> tuple[dict, float]:
    scores: dict[str, dict[str, list]] = {}
    eye = np.eye(len(ds.vocab))
    kinds = _word_kinds(ds)
    t0 = time.perf_counter()

    def add(method, column, values):
        scores.setdefault(method, {}).setdefault(column, []).extend(values)

    for i in range(min(n, len(ds))):
        words = ds.words[i]
        T = len(words)
        neutral = np.array([kinds[int(t)] == "neutral" for t in words])
        for stream in ("audio", "video"):
            y = getattr(ds, stream)[i]
            spans = ds.true_spans(stream)[i]
            m = len(y)
            uni = np.zeros((T, m))
            uni[np.arange(T), np.minimum(((np.arange(T) + 0.5) * m / T).astype(int), m - 1)] = 1.0
            x, owner = _word_pause_sequence(T)
            dtw_w = _pointer_weights(mmalign.dtw_path(x, _activity(y)).path(), owner, T, m)
            r = max(1, m // T)
            if T > 1:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ctw_path = mmalign.CTW(reg=1e-3).align(np.repeat(eye[words], r, axis=0), y).path()
                ctw_w = _pointer_weights(ctw_path, np.repeat(np.arange(T), r), T, m)
            else:  # one word: a constant one-hot sequence has nothing to correlate
                ctw_w = uni
            for method, w in (("uniform", uni), ("DTW, frame energy", dtw_w),
                              ("CTW, one-hot words", ctw_w)):
                hit = _hits(w, spans)
                add(method, f"text<-{stream}", hit)
                add(method, f"text<-{stream} (neutral words)", hit[neutral])
        a, v = ds.audio[i], ds.video[i]
        owner_a = -np.ones(len(a), dtype=np.int64)
        for k, (s0, s1) in enumerate(ds.audio_spans[i]):
            owner_a[s0:s1] = k
        uni = np.zeros((T, len(v)))
        centres = ds.audio_spans[i].mean(axis=1) * len(v) / len(a)
        uni[np.arange(T), np.minimum(centres.astype(int), len(v) - 1)] = 1.0
        add("uniform", "audio->video", _hits(uni, ds.video_spans[i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for method, fn in (("DTW, frame energy", lambda: mmalign.dtw_path(_activity(a), _activity(v))),
                               ("CTW, one-hot words", lambda: mmalign.CTW(reg=1e-3).align(a, v))):
                p = fn().path()
                add(method, "audio->video", _hits(_pointer_weights(p, owner_a, T, len(v)),
                                                  ds.video_spans[i]))
    seconds = time.perf_counter() - t0
    return {m: {k: float(np.mean(v)) for k, v in cols.items()} for m, cols in scores.items()}, seconds


def _text_expectation(ds) -> np.ndarray:
    """Label from the words alone: E[c_w | text] = v_w * (E[t_w] + E[e_w]) / 2 with the
    generator's contradiction rate (slang: E[t_w] = 0), summed and clipped -- what a
    model that reads the text perfectly but never sees the voice or the face can predict."""
    kinds = _word_kinds(ds)
    p = float(ds.meta["contradiction"])
    out = []
    for val, words in zip(ds.valence, ds.words):
        et = np.array([0.0 if kinds[int(w)] == "ambiguous" else 1 - 2 * p for w in words])
        out.append(np.clip(np.sum(val * (et + (1 - 2 * p)) / 2), -3, 3))
    return np.array(out, dtype=np.float64)


def _heatmap(model, X: dict, ds, path, i: int = 0) -> None:
    from mmalign.plot import save_attention_heatmap

    sample = {k: v[i] for k, v in X.items()}
    a = model.align(sample, target="text", source="audio").transpose()  # words on side x
    spans = ds.audio_spans[i]
    words = [ds.vocab.itos[w] for w in ds.words[i]]
    save_attention_heatmap(a.matrix(), path, x_labels=words, sure=span_masks(spans, a.shape[1]),
                           colorbar=True, figsize=(10.0, 3.0), cmap="Greys",
                           title=f"{SCORED}, text <- audio attention; circles: true spans")


def _fmt(v):
    return "—" if v is None else v


# --------------------------------------------------------------------------- run

def run(quick: bool = False) -> str:
    torch.set_num_threads(1)  # 2 threads were 10x slower on the shared 2-core machine
    cfg = QUICK if quick else FULL
    info = machine_info()
    t_all = time.perf_counter()
    data = {}
    for variant, aligned in (("unaligned", False), ("aligned", True)):
        data[variant] = tuple(
            multimodal_streams(n, seed=seed, aligned=aligned, **RATES)
            for n, seed in ((cfg["n_train"], 1), (cfg["n_val"], 2), (cfg["n_test"], 3)))
    test_u = data["unaligned"][2]

    task_rows, align_rows = [], []
    results = {"config": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
                          **RATES, **MODEL_PARAMS, **TRAIN,
                          "models": {k: v[1] for k, v in MODELS.items()},
                          "scored_attention": "Alignment.matrix(): mean over layers and heads"}}
    y_test = np.asarray(test_u.labels, dtype=np.float64)
    trivial = np.full_like(y_test, float(np.mean(data["unaligned"][0].labels)))
    for name, pred in (("mean training label (trivial)", trivial),
                       ("text only (expected label given the words)", _text_expectation(test_u))):
        m = sentiment_metrics(pred, y_test)
        results[name] = m
        task_rows.append([name, "—", m["acc2_with_zeros"], m["acc2_non_zero"], m["f1_non_zero"],
                          m["acc7"], m["mae"], m["corr"], None, None])

    runs = [(name, variant, 0) for variant in ("unaligned", "aligned") for name in MODELS]
    runs += [(SCORED, "unaligned", s) for s in cfg["extra_seeds"]]
    seed_rows = []
    for name, variant, seed in runs:
        cls, own = MODELS[name]
        train, val, test = data[variant]
        (Xtr, ytr), (Xva, yva), (Xte, yte) = _inputs(train), _inputs(val), _inputs(test)
        model = cls((len(train.vocab), train.audio[0].shape[1], train.video[0].shape[1]),
                    **MODEL_PARAMS, **own,
                    train={**TRAIN, "seed": seed, "max_epochs": cfg["max_epochs"]})
        t0 = time.perf_counter()
        model.fit(Xtr, ytr, validation=(Xva, yva))
        seconds = time.perf_counter() - t0
        m = sentiment_metrics(model.predict(Xte), yte)
        hits = _attention_scores(model, Xte, test)
        key = f"{name} / {variant}" + (f" / seed {seed}" if seed else "")
        results[key] = {"task": m, "alignment": hits, "fit_seconds": seconds,
                        "history": model.history_}
        if name == SCORED and variant == "unaligned":
            seed_rows.append([seed, hits["text<-audio"], hits["text<-video"],
                              hits["mass text<-audio"], hits["mass text<-video"], m["mae"],
                              m["acc2_non_zero"], model.history_["best_epoch"] + 1, seconds])
        if seed:
            continue
        task_rows.append([name, variant, m["acc2_with_zeros"], m["acc2_non_zero"], m["f1_non_zero"],
                          m["acc7"], m["mae"], m["corr"], model.history_["best_epoch"] + 1, seconds])
        align_rows.append([f"{name} ({variant})", hits["text<-audio"], hits["text<-video"],
                           _fmt(hits.get("audio->video")), hits["text<-audio (neutral words)"],
                           hits["text<-video (neutral words)"], hits["mass text<-audio"],
                           hits["mass text<-video"]])
        if name == SCORED and variant == "unaligned":
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            _heatmap(model, Xte, test, RESULTS_DIR / "multimodal_alignment_heatmap.png")

    base, base_seconds = _baselines(test_u, cfg["n_baseline"])
    results["baselines"] = base
    results["baseline_seconds"] = base_seconds
    for method, cols in base.items():
        align_rows.append([f"{method} (unaligned, no labels)", cols["text<-audio"],
                           cols["text<-video"], cols["audio->video"],
                           cols["text<-audio (neutral words)"], cols["text<-video (neutral words)"],
                           None, None])
    total = time.perf_counter() - t_all
    results["total_seconds"] = total

    task_table = markdown_table(
        ["model", "input", "Acc2 (with zeros)", "Acc2 (non-zero)", "F1 (non-zero)", "Acc7", "MAE",
         "Corr", "best epoch", "fit seconds"], task_rows)
    align_table = markdown_table(
        ["method", "text<-audio hit", "text<-video hit", "audio->video hit",
         "text<-audio hit, neutral words", "text<-video hit, neutral words",
         "mass in span text<-audio", "mass in span text<-video"], align_rows)
    seed_table = markdown_table(
        ["seed", "text<-audio hit", "text<-video hit", "mass in span text<-audio",
         "mass in span text<-video", "MAE", "Acc2 (non-zero)", "best epoch", "fit seconds"],
        seed_rows)
    n_words = int(sum(len(w) for w in test_u.words))
    markdown = "\n".join([
        "# Fusion transformers on synthetic multimodal streams (MulT protocol)", "",
        machine_markdown(info),
        f"- Data: `multimodal_streams` defaults (1-6 words, contradiction 0.25, connotation 1, "
        f"noise 0.2) at audio {RATES['audio_rate']:g} frames/s, video {RATES['video_rate']:g} "
        f"frames/s; {cfg['n_train']} train / {cfg['n_val']} val / {cfg['n_test']} test samples, "
        f"seeds 1 / 2 / 3; {n_words} test words; text as one-hot words.",
        f"- Models: d_model {MODEL_PARAMS['d_model']}, {MODEL_PARAMS['num_heads']} head, "
        f"{MODEL_PARAMS['num_layers']} block per stack, no MulT self-attention stack "
        f"(`self_layers=0`), no dropout; {cfg['max_epochs']} epochs, batch "
        f"{TRAIN['batch_size']}, Adam lr {TRAIN['lr']:g}, no gradient clipping, L1 "
        "loss, text summed / audio and video averaged, CPU, 1 thread, model seed 0; "
        "best-validation-MAE epoch kept.",
        f"- Total time {total:.0f} s.{' **--quick: smoke test, numbers not meaningful.**' if quick else ''}",
        "",
        "## Task metrics (test set)", "",
        task_table, "",
        "Reference: MulT on CMU-MOSEI (unaligned) reports Acc7 50.7, Acc2 81.6, F1 81.6, MAE 0.591, "
        "Corr 0.694 -- a different (real) data set; only the protocol is shared.", "",
        "## Crossmodal alignment: attention argmax inside the true word span (test set)", "",
        "`hit` = fraction of test words whose most-attended frame lies in the word's true span "
        "(attention = `Alignment.matrix()`, the model's weights averaged over layers and heads -- "
        "one of each here; the same rule for every model and seed); target >= 0.9 for "
        "text<-audio and text<-video. `neutral words`: the words of the lexicon's neutral kind "
        "only. `mass`: mean attention mass inside the span. audio->video: the audio rows of a "
        "word's audio span averaged, argmax in the word's video span (— where the model has no "
        "audio<-video attention). In the aligned variant the spans are the diagonal "
        f"(word k <-> step k). Baselines: one path per unaligned test sample (first "
        f"{min(cfg['n_baseline'], cfg['n_test'])}), {base_seconds:.1f} s in all.", "",
        align_table, "",
        f"### {SCORED}, unaligned: model seeds (same data)", "",
        seed_table, "",
        f"Heatmap ({SCORED}, unaligned, first test sample, text <- audio): "
        "`benchmarks/results/multimodal_alignment_heatmap.png`.", "",
    ])
    write_report("multimodal_alignment", markdown, results)
    return markdown
