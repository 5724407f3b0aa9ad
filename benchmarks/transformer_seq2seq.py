"""Transformer encoder-decoder (``mmalign.TransformerSeq2Seq``) against Bahdanau attention
(``mmalign.Seq2SeqAttention``): the task, and the cross-attention as an alignment.

The tasks, data and metrics of ``benchmarks/seq2seq_attention.py`` (reversal,
reordering, dates; training set seed 0, test set seed 1, and here a validation
set seed 2 with gold links for the layer / head choice), each model trained per
task and seed on the CPU with one thread:

- **Bahdanau**: ``Seq2SeqAttention`` in the configuration of the
  seq2seq_attention benchmark (attention from ``s_i``, coverage penalty 3);
- **Transformer**: one ``TransformerSeq2Seq`` (2 encoder, 3 decoder layers,
  4 heads, label smoothing 0.1) read out four ways, all teacher-forced on the
  gold test targets: the **last** layer (mean over heads, the "raw"
  cross-attention and the class default), the **penultimate** layer (mean over heads), the **mean** over layers and heads, and the **best** layer / head
  chosen by AER on the validation set (:meth:`select_alignment_head`);
- **Transformer + supervised head**: the same model trained with the supervised
  alignment loss (Garg et al. 2019, ``alignment_supervision=1``) on head 0 of the
  penultimate layer, towards the training set's gold links (each target token's
  sure links, or its possible links when it has no sure one).

Exact match and corpus BLEU (sacrebleu, ``tokenize="none"``) of greedy decoding;
AER (corpus level, sure / possible links) of the per-target-token argmax of the
read-out (dates: the unlinked ``-`` are not scored).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .common import machine_info, machine_markdown, markdown_table, write_report
from .seq2seq_attention import ATTENTION, _bleu, _examples

NAME = "transformer_seq2seq"

# per task: training pairs, Bahdanau epochs (as in seq2seq_attention), transformer epochs
TASKS = {
    "reversal": dict(n_train=2000, n_test=500, epochs=10, t_epochs=15),
    "reordering": dict(n_train=2000, n_test=500, epochs=10, t_epochs=15),
    "dates": dict(n_train=4000, n_test=500, epochs=12, t_epochs=15),
}
# --quick: a smoke run (< 2 minutes on an idle 2-core machine); the models do not learn the tasks
QUICK = dict(n_train=400, n_test=50, epochs=2, t_epochs=2)
SEEDS = {"reversal": (0, 1, 2), "reordering": (0, 1, 2), "dates": (0,)}
BAHDANAU = dict(embed_dim=32, hidden_dim=64, attention_dim=64, **ATTENTION)
TRANSFORMER = dict(d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=128,
                   dropout=0.1, label_smoothing=0.1)
BATCH, T_BATCH, LR_BAHDANAU, LR_TRANSFORMER = 64, 32, 3e-3, 3e-3
VIEWS = (("last layer, mean of heads (raw)", (-1, "mean")), ("penultimate layer, mean of heads", (-2, "mean")),
         ("mean of layers and heads", ("mean", "mean")))


def _links(ex) -> set:
    """Per target token: its sure links, or its possible links when it has no sure one."""
    sure_t = {t for _, t in ex.sure}
    return set(ex.sure) | {(s, t) for s, t in ex.possible if t not in sure_t}


def _scores(model, te_src, te_tgt, test, tgt_vocab, ignore) -> dict:
    hyps = [tgt_vocab.decode(h.tokens) for h in model.translate(te_src)]
    refs = [ex.target for ex in test]
    return {"exact_match": float(np.mean([h == r for h, r in zip(hyps, refs)])), "bleu": _bleu(hyps, refs)}


def _aer(model, src, tgt, exs, ignore) -> float:
    from mmalign.metrics import corpus_alignment_error_rate

    return float(corpus_alignment_error_rate(model.align_batch(src, tgt), [ex.sure for ex in exs],
                                             [ex.possible for ex in exs], ignore_unlinked_targets=ignore))


def _run_task(task: str, quick: bool, seed: int) -> dict:
    import mmalign
    from mmalign.datasets import build_vocabularies

    cfg = TASKS[task]
    n_train, n_test, epochs, t_epochs = cfg["n_train"], cfg["n_test"], cfg["epochs"], cfg["t_epochs"]
    if quick:
        n_train, n_test, epochs, t_epochs = (QUICK[k] for k in ("n_train", "n_test", "epochs", "t_epochs"))
    train, test, val = (_examples(task, n, seed=s) for n, s in ((n_train, 0), (n_test, 1), (n_test, 2)))
    src_vocab, tgt_vocab = build_vocabularies(train, test, val)
    enc = lambda exs, side, v: [v.encode(getattr(ex, side)) for ex in exs]  # noqa: E731
    tr_src, tr_tgt = enc(train, "source", src_vocab), enc(train, "target", tgt_vocab)
    te_src, te_tgt = enc(test, "source", src_vocab), enc(test, "target", tgt_vocab)
    va_src, va_tgt = enc(val, "source", src_vocab), enc(val, "target", tgt_vocab)
    ignore = task == "dates"
    sizes = (len(src_vocab), len(tgt_vocab))
    rows = []

    def timed_fit(model, **kw):
        t0 = time.perf_counter()
        model.fit(tr_src, tr_tgt, **kw)
        return time.perf_counter() - t0

    bahdanau = mmalign.Seq2SeqAttention(*sizes, **BAHDANAU,
                                        train=dict(max_epochs=epochs, batch_size=BATCH, lr=LR_BAHDANAU, seed=seed))
    secs = timed_fit(bahdanau)
    rows.append(dict(model="Seq2SeqAttention (Bahdanau)", readout="additive attention", train_s=secs,
                     aer=_aer(bahdanau, te_src, te_tgt, test, ignore),
                     **_scores(bahdanau, te_src, te_tgt, test, tgt_vocab, ignore)))

    tcfg = dict(max_epochs=t_epochs, batch_size=T_BATCH, lr=LR_TRANSFORMER, seed=seed)
    trans = mmalign.TransformerSeq2Seq(*sizes, **TRANSFORMER, train=tcfg)
    secs = timed_fit(trans)
    task_scores = _scores(trans, te_src, te_tgt, test, tgt_vocab, ignore)
    for label, (layer, heads) in VIEWS:
        trans.alignment_layer_, trans.alignment_heads_ = trans._resolved_view(layer, heads)
        rows.append(dict(model="TransformerSeq2Seq", readout=label, train_s=secs,
                         aer=_aer(trans, te_src, te_tgt, test, ignore), **task_scores))
    trans.select_alignment_head(va_src, va_tgt, [ex.sure for ex in val], [ex.possible for ex in val],
                                ignore_unlinked_targets=ignore)
    rows.append(dict(model="TransformerSeq2Seq", train_s=secs,
                     readout=f"best on validation AER: layer/head {trans.alignment_layer_}/{trans.alignment_heads_}",
                     aer=_aer(trans, te_src, te_tgt, test, ignore), **task_scores))

    sup = mmalign.TransformerSeq2Seq(*sizes, **TRANSFORMER, alignment_layer=-2, alignment_heads=0,
                                     alignment_supervision=1.0, train=tcfg)
    secs = timed_fit(sup, links=[_links(ex) for ex in train])
    rows.append(dict(model="TransformerSeq2Seq + supervised head", readout="penultimate layer, head 0",
                     train_s=secs, aer=_aer(sup, te_src, te_tgt, test, ignore),
                     **_scores(sup, te_src, te_tgt, test, tgt_vocab, ignore)))
    return {"task": task, "seed": seed, "n_train": n_train, "n_test": n_test, "epochs_bahdanau": epochs,
            "epochs_transformer": t_epochs, "rows": rows,
            "validation_aer": trans.alignment_scores_}


def run(quick: bool = False, n_seeds: int | None = None, tasks: tuple[str, ...] | None = None) -> str:
    """The report; ``n_seeds`` keeps the first seeds of each task (None: all, ``--quick``: one);
    ``tasks`` a subset of :data:`TASKS` (its report is named after them)."""
    chosen = tuple(TASKS) if tasks is None else tuple(tasks)
    unknown = [t for t in chosen if t not in TASKS]
    if unknown:
        raise ValueError(f"tasks must be among {tuple(TASKS)}, got {unknown}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_task = {task: [_run_task(task, quick, seed)
                           for seed in ((0,) if quick else SEEDS[task][:n_seeds])]
                    for task in chosen}
    finally:
        torch.set_num_threads(threads)
    info = machine_info()
    table_rows = []
    for task, runs in per_task.items():
        for i, first in enumerate(runs[0]["rows"]):
            got = [r["rows"][i] for r in runs]
            aers = [100 * g["aer"] for g in got]
            spread = f"{np.mean(aers):.2f}" if len(runs) == 1 else \
                f"{np.mean(aers):.2f} [{min(aers):.2f}–{max(aers):.2f}]"
            readout = first["readout"] if len(runs) == 1 or not first["readout"].startswith("best") else \
                "best on validation AER: " + ", ".join(g["readout"].split(": ")[1] for g in got)
            table_rows.append([task, first["model"], readout, runs[0]["n_train"],
                               runs[0]["epochs_bahdanau" if "Bahdanau" in first["model"] else "epochs_transformer"],
                               len(runs), float(np.mean([g["train_s"] for g in got])),
                               float(np.mean([g["exact_match"] for g in got])),
                               float(np.mean([g["bleu"] for g in got])), spread])
    table = markdown_table(["task", "model", "alignment read-out", "train pairs", "epochs", "seeds",
                            "train s per seed (1 thread)", "exact match (greedy)", "BLEU",
                            "AER % (mean [min–max] over seeds)"], table_rows)
    mode = " (--quick: a smoke run, tiny data, 2 epochs, one seed; not the reported numbers)" if quick else ""
    if not quick and n_seeds is not None:
        mode = f" (first {n_seeds} seed(s) per task)"
    if not quick and chosen != tuple(TASKS):
        mode += f" ({', '.join(chosen)} only)"
    md = (f"# Transformer cross-attention vs Bahdanau attention as alignment{mode}\n\n"
          "`python -m benchmarks transformer_seq2seq` — tasks and metrics of `seq2seq_attention` "
          "(training set seed 0, test set seed 1, validation set seed 2 for the layer / head choice). "
          f"Bahdanau: `Seq2SeqAttention({BAHDANAU})`, lr {LR_BAHDANAU}. Transformer: "
          f"`TransformerSeq2Seq({TRANSFORMER})`, lr {LR_TRANSFORMER}, batches of {T_BATCH}, cosine schedule; the same trained model "
          "read out four ways (teacher-forced on the gold targets, argmax link per target token). "
          "Supervised head: `alignment_supervision=1.0` on head 0 of the penultimate layer, trained towards "
          "the gold links of the training pairs (Garg et al. 2019). Exact match and BLEU from greedy decoding; "
          "layer indices count from 0.\n\n"
          f"{table}\n\n" + machine_markdown(info))
    name = NAME if chosen == tuple(TASKS) else "_".join([NAME] + [t.replace(" ", "_") for t in chosen])
    write_report(name, md, {"quick": quick, "results": per_task, "machine": info})
    return md
