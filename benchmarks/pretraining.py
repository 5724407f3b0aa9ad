"""Multimodal masked pretraining on synthetic streams: does it help when only 10 % of the labels exist?

Data: :func:`mmalign.datasets.multimodal_streams` (words, an audio-like and a
video-like stream at different rates and start offsets, true word spans, a
sentiment score in [-3, 3] that adds up, word by word, the word's valence
(text) times its tone of voice (audio frames of its span) and facial
expression (video frames of its span); see the generator's docstring),
called with every argument explicit (``DATA`` plus the generator's other
keywords at their current defaults, recorded in the JSON). The frame rates
are lowered to the smallest the generator allows comfortably (audio 10,
video 5 frames/s) to fit the CPU budget.

Protocol:

1. *Pretraining* (once, seed 0): a :class:`~mmalign.attention.MultimodalPretrainer`
   (``[CLS] words [SEP] audio frames [SEP] video frames [SEP]``, joint
   self-attention, relative time positions) is trained on **all** training
   samples **without labels**: masked token modelling (30 % of the words,
   80/10/10), masked frame modelling (contiguous 3-frame spans, 15 % of the
   frames, MSE on the masked frames) and pair matching (half of the samples
   get another sample's audio and video). One pretraining run is shared by
   the fine-tuning seeds: three pretraining runs do not fit the CPU budget.
2. *Fine-tuning with 10 % of the labels* (seeds 0, 1, 2: labelled subset,
   head initialisation, data order): a
   :class:`~mmalign.attention.MultimodalFineTuner` (regression head on the
   word tokens, per-word ``tanh`` features summed -- the label is a sum over
   words -- L1 loss as MulT) copies the pretrained encoder and trains on a
   random 10 % of the training samples.
3. *Scratch, same 10 %*: the same fine-tuner on an *untrained* backbone
   (``MultimodalPretrainer.initialize()``) -- the same architecture
   (initialised from the fine-tuning seed), the same labelled samples, epochs
   and optimiser.
4. *100 % of the labels*, from scratch (the ceiling) and from the pretrained
   encoder, with a shorter schedule.
5. Steps 2-4 again with the *aligned head* (``ALIGNED``): beside each word's
   vector the head gets the audio and video input frames averaged under the
   encoder's attention from that word (``aligned_inputs=True``: the
   word-aligned features of MulT's aligned protocol, with the encoder's
   attention as the aligner), joined multiplicatively (``fusion="gated"``: the
   label multiplies a word's valence with its frames' tone and expression),
   with the attention's query / key projections kept fixed
   (``freeze_attention=True``) so fine-tuning on few labels cannot undo the
   alignment. Pretraining learns where each word's frames are but cannot
   learn to keep the tone or the expression in the word's vector (neither is
   predictable from anything else in the sample, so no masked objective
   rewards carrying it); the aligned head reads them through the learned
   alignment instead. Scratch gets the same head on its untrained attention.
   The layer (0, the first: word and frame embeddings meet there before any
   mixing) was chosen during development on these seeds; the mean over
   layers gave mixed results.

Metrics (test set, MulT's protocol, the functions of
``benchmarks/multimodal_alignment.py``): Acc2 with zeros, Acc2 / F1 without
zeros, Acc7, MAE, Pearson correlation; mean +- standard deviation over the
seeds. Pretraining diagnostics on the test set (masks drawn from seed 0):
masked-word accuracy, pair-matching accuracy, masked-frame MSE, before and
after pretraining; and how well the joint attention aligns words to their
frames (fraction of words whose most-attended frame, layers and heads
averaged, lies in the word's true span: ``span_hit_rate``).

Everything runs on the CPU with one thread; the fine-tuning schedule is fixed
(no labelled validation set: it would come out of the labelled budget).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mmalign.attention import MultimodalFineTuner, MultimodalPretrainer
from mmalign.datasets import multimodal_streams
from mmalign.metrics import span_hit_rate
from mmalign.nn import streams_inputs

from .common import machine_info, machine_markdown, markdown_table, write_report
from .multimodal_alignment import sentiment_metrics

# the generator's arguments; every other keyword it has is passed explicitly at its current
# default (see _data_args) and recorded in the JSON
DATA = dict(aligned=False, text_rate=2.5, audio_rate=10.0, video_rate=5.0, min_words=4, max_words=12,
            d_audio=16, d_video=8, max_offset=0.5, noise=0.2, lexicon_seed=0)
FULL = dict(n_train=1500, n_test=300, label_fraction=0.1, seeds=(0, 1, 2), pretrain_seed=0,
            pretrain_epochs=30, finetune_epochs=30, full_epochs=5, n_attention=100)
QUICK = dict(n_train=300, n_test=80, label_fraction=0.1, seeds=(0, 1), pretrain_seed=0,
             pretrain_epochs=2, finetune_epochs=4, full_epochs=1, n_attention=20)
ARCH = dict(d_model=64, num_heads=4, num_layers=2, ffn_mult=4, dropout=0.1, positions="relative",
            position_scale=100.0)
PRETRAIN = dict(masked_token_weight=1.0, masked_frame_weight=5.0, pair_matching_weight=1.0,
                token_mask_prob=0.3, frame_mask_prob=0.15, frame_span=3, mismatch_prob=0.5,
                batch_size=64, lr=3e-3, weight_decay=0.01, grad_clip=1.0)
FINETUNE = dict(task="regression", num_labels=1, pooling="sum", loss="l1", head_dropout=0.1,
                batch_size=16, lr=1e-3, weight_decay=0.01, grad_clip=1.0)
# the head that reads each word's frames through the encoder's attention (the alignment pretraining
# learns), joined multiplicatively to the word's vector: the label multiplies a word's valence (text)
# with its tone and expression (frames)
ALIGNED = dict(FINETUNE, aligned_inputs=True, fusion="gated", align_layer=0, freeze_attention=True)
METRICS = ("acc2_with_zeros", "acc2_non_zero", "f1_non_zero", "acc7", "mae", "corr")
# the entries of PRETRAIN / FINETUNE / ALIGNED that are training settings (the estimators' ``train``)
TRAIN_FIELDS = ("batch_size", "lr", "weight_decay", "grad_clip")


def _split(params: dict, **train) -> dict:
    """``params`` with its training settings (and ``train``) moved into the ``train`` mapping."""
    model = {k: v for k, v in params.items() if k not in TRAIN_FIELDS}
    return {**model, "train": {**{k: v for k, v in params.items() if k in TRAIN_FIELDS}, **train}}


def _data_args() -> dict:
    """``DATA`` plus every other keyword of ``multimodal_streams`` at its default, all explicit."""
    import inspect

    params = inspect.signature(multimodal_streams).parameters
    extra = {k: p.default for k, p in params.items()
             if p.kind == p.KEYWORD_ONLY and k not in DATA}
    return {**DATA, **extra}


def _pm(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def _hit_rates(model, ds, n: int) -> dict:
    """Span hit rates of the joint attention of a MultimodalPretrainer or a MultimodalFineTuner's
    fine-tuned encoder (alignments: the stream's frames on side x, the words on side y)."""
    idx = list(range(min(n, len(ds))))
    X = streams_inputs(ds, idx)
    out = {}
    for stream in ("audio", "video"):
        als = model.align_batch(X, target="text", source=stream)
        spans = ds.true_spans(stream)
        hits = [span_hit_rate(a, spans[i]) * len(spans[i]) for i, a in zip(idx, als)]
        out[f"text<-{stream}"] = float(np.sum(hits) / sum(len(spans[i]) for i in idx))
    return out


def _uniform_hits(ds, n: int) -> dict:
    """Word k of T -> frame (k + 0.5) * n_frames / T (no learning)."""
    out = {}
    for stream in ("audio", "video"):
        hit, total = 0, 0
        for i in range(min(n, len(ds))):
            spans = ds.true_spans(stream)[i]
            frames = len(ds.audio[i] if stream == "audio" else ds.video[i])
            t = len(spans)
            ptr = np.floor((np.arange(t) + 0.5) * frames / t).astype(int)
            hit += int(np.sum((ptr >= spans[:, 0]) & (ptr < spans[:, 1])))
            total += t
        out[f"text<-{stream}"] = hit / total
    return out


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    cfg = QUICK if quick else FULL
    info = machine_info()
    t_all = time.perf_counter()
    data_args = _data_args()
    train = multimodal_streams(cfg["n_train"], seed=1, **data_args)
    test = multimodal_streams(cfg["n_test"], seed=3, **data_args)
    X_all, y_all = streams_inputs(train), np.asarray(train.labels, dtype=np.float64)
    X_test, y_test = streams_inputs(test), np.asarray(test.labels, dtype=np.float64)
    vocab = len(train.vocab)
    n_labelled = int(round(cfg["label_fraction"] * cfg["n_train"]))

    results: dict = {"config": {"data": data_args, **{k: v for k, v in cfg.items() if k != "seeds"},
                                "arch": ARCH, "pretrain": PRETRAIN, "finetune": FINETUNE},
                     "seeds": list(cfg["seeds"]), "runs": {}}
    conditions = {f"{start}, {budget}{head}": [] for head in ("", ", aligned head")
                  for budget in ("10 % labels", "100 % labels") for start in ("pretrained", "scratch")}
    seconds = {k: [] for k in conditions}
    attention = {"untrained": [], "pretrained": [],
                 **{k: [] for k in conditions if "10 %" in k}}
    # ---- 1. pretraining on every training sample, no labels
    backbone = MultimodalPretrainer(vocab, {"audio": data_args["d_audio"], "video": data_args["d_video"]},
                                    **ARCH, **_split(PRETRAIN, max_epochs=cfg["pretrain_epochs"],
                                                     seed=cfg["pretrain_seed"], device="cpu"))
    # the pretraining run's starting point
    same_init = MultimodalPretrainer(**backbone.get_params(deep=False)).initialize()
    before = same_init.evaluate(X_test, seed=0)
    t0 = time.perf_counter()
    backbone.fit(X_all)
    pre_seconds = time.perf_counter() - t0
    after = backbone.evaluate(X_test, seed=0)
    attention["pretrained"].append(_hit_rates(backbone, test, cfg["n_attention"]))
    results["pretraining"] = {"seed": cfg["pretrain_seed"], "before": before, "after": after,
                              "seconds": pre_seconds, "objectives": backbone.history_["objectives"]}
    for seed in cfg["seeds"]:
        run_res: dict = {}
        params = backbone.get_params(deep=False)
        # the architecture untrained, initialised from the fine-tuning seed
        untrained = MultimodalPretrainer(**{**params, "train": {**params["train"], "seed": seed}}).initialize()
        attention["untrained"].append(_hit_rates(untrained, test, cfg["n_attention"]))
        # ---- 2.-4. fine-tuning
        labelled = np.sort(np.random.default_rng(seed).choice(cfg["n_train"], n_labelled, replace=False))
        X_lab, y_lab = streams_inputs(train, labelled), y_all[labelled]
        for name in conditions:
            bb = backbone if name.startswith("pretrained") else untrained
            X, y, epochs = ((X_lab, y_lab, cfg["finetune_epochs"]) if "10 %" in name
                            else (X_all, y_all, cfg["full_epochs"]))
            head = ALIGNED if name.endswith("aligned head") else FINETUNE
            model = MultimodalFineTuner(bb, **_split(head, max_epochs=epochs, seed=seed, device="cpu"))
            t0 = time.perf_counter()
            model.fit(X, y)
            secs = time.perf_counter() - t0
            m = sentiment_metrics(model.predict(X_test), y_test)
            conditions[name].append(m)
            seconds[name].append(secs)
            run_res[name] = {"metrics": m, "fit_seconds": secs, "n_labelled": len(y),
                             "train_loss": model.history_["train_loss"]}
            if name in attention:
                attention[name].append(_hit_rates(model, test, cfg["n_attention"]))
        results["runs"][str(seed)] = run_res

    # ---- tables
    trivial = sentiment_metrics(np.full_like(y_test, y_all.mean()), y_test)
    rows = [["mean training label (trivial)", "—", *[trivial[k] for k in METRICS], "—"]]
    for name, ms in conditions.items():
        n_lab = n_labelled if "10 %" in name else cfg["n_train"]
        rows.append([name, n_lab, *[_pm([m[k] for m in ms]) for k in METRICS], _pm(seconds[name])])
    task_table = markdown_table(["model", "labelled samples", "Acc2 (with zeros)", "Acc2 (non-zero)",
                                 "F1 (non-zero)", "Acc7", "MAE", "Corr", "fit seconds"], rows)
    gains = {head: {k: [p[k] - s[k] for p, s in zip(conditions[f"pretrained, 10 % labels{head}"],
                                                    conditions[f"scratch, 10 % labels{head}"])]
                    for k in METRICS} for head in ("", ", aligned head")}
    results["conditions"] = conditions
    results["gain_pretrained_minus_scratch"] = {"plain head": gains[""], "aligned head": gains[", aligned head"]}
    diag_rows = []
    for key, label in (("masked_token_accuracy", "masked-word accuracy"),
                       ("pair_matching_accuracy", "pair-matching accuracy"),
                       ("masked_frame/audio", "masked-frame MSE, audio"),
                       ("masked_frame/video", "masked-frame MSE, video")):
        diag_rows.append([label, before[key], after[key]])
    diag_table = markdown_table(["objective (test set, masks from seed 0)", "before pretraining",
                                 "after pretraining"], diag_rows)
    uni = _uniform_hits(test, cfg["n_attention"])
    att_rows = [[name, _pm([h["text<-audio"] for h in hs]), _pm([h["text<-video"] for h in hs])]
                for name, hs in attention.items()]
    att_rows.append(["uniform pointer (no learning)", uni["text<-audio"], uni["text<-video"]])
    att_table = markdown_table(["model", "text<-audio hit", "text<-video hit"], att_rows)
    results["attention_hits"] = {**attention, "uniform": uni}
    total = time.perf_counter() - t_all
    results["total_seconds"] = total

    def gain_line(head: str, label: str) -> str:
        g = gains[head]
        return (f"- {label}: Corr {np.mean(g['corr']):+.3f} ({', '.join(f'{v:+.3f}' for v in g['corr'])}), "
                f"MAE {np.mean(g['mae']):+.3f} ({', '.join(f'{v:+.3f}' for v in g['mae'])}) per seed "
                "(lower MAE is better).")
    markdown = "\n".join([
        "# Multimodal masked pretraining: 10 % of the labels, with and without pretraining", "",
        machine_markdown(info),
        f"- Data: `multimodal_streams` ({cfg['n_train']} training samples, seed 1; {cfg['n_test']} test "
        f"samples, seed 3; unaligned; "
        + ", ".join(f"{k}={v}" for k, v in data_args.items() if k != "aligned") + ").",
        f"- Model: `MultimodalPretrainer` d_model {ARCH['d_model']}, {ARCH['num_heads']} heads, "
        f"{ARCH['num_layers']} layers, relative time positions; pretraining once (seed "
        f"{cfg['pretrain_seed']}, {pre_seconds:.0f} s), {cfg['pretrain_epochs']} epochs "
        f"on all {cfg['n_train']} samples without labels (batch {PRETRAIN['batch_size']}, AdamW lr "
        f"{PRETRAIN['lr']:g}; weights: masked tokens {PRETRAIN['masked_token_weight']:g}, masked frames "
        f"{PRETRAIN['masked_frame_weight']:g}, pair matching {PRETRAIN['pair_matching_weight']:g}).",
        f"- Fine-tuning: `MultimodalFineTuner(task='regression', pooling='sum', loss='l1')`, batch "
        f"{FINETUNE['batch_size']}, AdamW lr {FINETUNE['lr']:g}, {cfg['finetune_epochs']} epochs on "
        f"{n_labelled} labelled samples ({cfg['label_fraction']:.0%}), {cfg['full_epochs']} epochs on all "
        f"{cfg['n_train']}; no early stopping. Fine-tuning seeds {list(cfg['seeds'])} (labelled subset, "
        "head and scratch initialisation, data order); mean ± std over them.",
        "- *Aligned head* rows: the same with `aligned_inputs=True, fusion='gated', align_layer=0, "
        "freeze_attention=True`: each word's vector plus the audio and video frames it attends to "
        "(first layer, heads averaged), joined multiplicatively; query / key projections kept fixed.",
        f"- CPU, 1 thread. Total time {total:.0f} s."
        + (" **--quick: smoke test, numbers not meaningful.**" if quick else ""), "",
        "## Sentiment regression (test set)", "",
        task_table, "",
        f"Pretrained minus scratch with the same {n_labelled} labels:", "",
        gain_line("", "plain head (word vectors only)"),
        gain_line(", aligned head", "aligned head (word vectors + the frames each word attends to, gated)"), "",
        "## What pretraining learned (test set)", "",
        diag_table, "",
        "Chance: masked-word accuracy about 1/33 (the unigram prior gives more), pair matching 0.5.", "",
        "## Word-to-frame alignment in the joint attention (first "
        f"{min(cfg['n_attention'], cfg['n_test'])} test samples)", "",
        "Fraction of words whose most-attended frame (text rows over a stream's columns, renormalised, "
        "layers and heads averaged) lies inside the word's true span.", "",
        att_table, "",
    ])
    write_report("pretraining", markdown, results)
    return markdown


if __name__ == "__main__":  # pragma: no cover
    print(run())
