"""Bahdanau attention seq2seq (``mmalign.Seq2SeqAttention``): the task and its attention as an alignment.

Three tasks from :mod:`mmalign.datasets` (generated offline from a seed, each
sample with gold sure / possible links), models trained per task and seed on
the CPU with one thread (three seeds, one for dates):

- **reversal**: :func:`~mmalign.datasets.reversal_task`, lengths 3-12, 20 symbols;
- **reordering**: :func:`~mmalign.datasets.reordering_task`, SVO -> SOV with
  adjective-noun swap, many-to-one merges and case markers; and the same
  grammar without case markers (target words with no source word);
- **dates**: :func:`~mmalign.datasets.date_task`, Babel-rendered dates in 12
  locales and 10 formats, character by character, to ISO ``YYYY-MM-DD``.

Reported on a held-out test set (a different seed):

- **exact match** and corpus **BLEU** (sacrebleu, ``tokenize="none"`` on the
  space-joined tokens) of greedy decoding, and exact match of beam search (k = 4);
- **AER** (Och & Ney 2003, corpus level, sure / possible links) of the argmax of
  the teacher-forced attention on the gold target, one link per target token
  (target tokens without any gold link, the ``-`` of dates, are not scored);
- **attention mass on padding**: total attention weight on padded source
  positions over all decoder steps of ragged test batches (must be exactly 0);
- training time (seconds, one CPU thread).

Attention configuration: every task is trained with attention computed from the
*current* decoder state ``s_i`` (``attention_state="current"``, Luong-style
order: the decoder reads ``y_{i-1}`` first, then attends) and the doubly
stochastic attention penalty of Xu et al. (2015), ``coverage_penalty=3.0``
(every real source position should receive a total attention of 1 over the
decoder steps; a generic regulariser, no gold links). Without them (the paper's
attention from ``s_{i-1}``), the case markers of reordering attend ahead, into
the next phrase, and reordering AER is ~11%; the dates row with the paper's
attention is kept as a reference.

Target (issue #6): AER <= 5% on reversal and reordering. An attention heatmap of
one test sentence per task, with the gold links drawn over it, is written to
``benchmarks/results/seq2seq_attention_<task>.png``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .common import RESULTS_DIR, machine_info, machine_markdown, markdown_table, write_report

NAME = "seq2seq_attention"

# the attention of every model: from the current decoder state s_i, doubly stochastic penalty
ATTENTION = dict(attention_state="current", coverage_penalty=3.0)
# the paper's (Bahdanau et al.): from the previous state s_{i-1}, no penalty (the reference row)
PAPER_ATTENTION = dict(attention_state="previous", coverage_penalty=0.0)
_SMALL = dict(embed_dim=32, hidden_dim=64, attention_dim=64, batch_size=64, lr=3e-3)
# the entries of a task's "model" settings that go to the estimator's ``train`` configuration
TRAIN_KEYS = ("max_epochs", "batch_size", "lr")

# per task: data sizes and the model's hyper-parameters (full run; --quick shrinks them)
TASKS = {
    "reversal": dict(n_train=4000, n_test=500, model=dict(_SMALL, max_epochs=10, **ATTENTION)),
    "reordering": dict(n_train=4000, n_test=500, model=dict(_SMALL, max_epochs=10, **ATTENTION)),
    "reordering, no case markers": dict(n_train=4000, n_test=500,
                                        model=dict(_SMALL, max_epochs=10, **ATTENTION)),
    "dates": dict(n_train=8000, n_test=500, model=dict(_SMALL, max_epochs=12, **ATTENTION)),
    "dates, paper attention": dict(n_train=8000, n_test=500,
                                   model=dict(_SMALL, max_epochs=12, **PAPER_ATTENTION)),
}
TARGET_AER = {"reversal": 0.05, "reordering": 0.05, "reordering, no case markers": 0.05}
SEEDS = {"reversal": (0, 1, 2), "reordering": (0, 1, 2), "reordering, no case markers": (0, 1, 2),
         "dates": (0,), "dates, paper attention": (0,)}
STEMS = {"reversal": "reversal", "reordering": "reordering",
         "reordering, no case markers": "reordering_no_markers", "dates": "dates",
         "dates, paper attention": "dates_paper_attention"}


def _attention_label(params: dict) -> str:
    state = "s_i" if params.get("attention_state", "previous") == "current" else "s_{i-1}"
    return f"from {state}, penalty {params.get('coverage_penalty', 0.0):g}"


def _examples(task: str, n: int, seed: int):
    from mmalign.datasets import date_task, reordering_task, reversal_task

    if task == "reversal":
        return reversal_task(n, min_len=3, max_len=12, vocab_size=20, seed=seed)
    if task == "reordering":
        return reordering_task(n, seed=seed)
    if task == "reordering, no case markers":
        return reordering_task(n, seed=seed, case_markers=False)
    return date_task(n, seed=seed)  # both dates rows


def _bleu(hyps: list[list[str]], refs: list[list[str]]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                       tokenize="none").score)


def _padding_mass(model, src_ids: list[list[int]], tgt_ids: list[list[int]]) -> tuple[float, int]:
    """Attention weight on padded source positions, summed over ragged test batches."""
    from mmalign.nn.functional import lengths_to_padding_mask

    total, n_padded = 0.0, 0
    net = model.module_  # the Seq2SeqAttentionModule: (B, T, S) attention of padded batches
    net.eval()
    with torch.no_grad():
        for i in range(0, len(src_ids), 64):
            src, src_len, tgt_in, _ = model._pairs(src_ids[i:i + 64], tgt_ids[i:i + 64], None, None)
            _, att = net(src, src_len, tgt_in)
            pad = lengths_to_padding_mask(src_len, src.shape[1])
            total += float(att.masked_select(pad[:, None, :].expand_as(att)).sum())
            n_padded += int(pad.sum())
    return total, n_padded


def _run_task(task: str, quick: bool, seed: int = 0) -> dict:
    import mmalign
    from mmalign.datasets import build_vocabularies
    from mmalign.metrics import corpus_alignment_error_rate
    from mmalign.plot import save_attention_heatmap

    cfg = TASKS[task]
    n_train, n_test = cfg["n_train"], cfg["n_test"]
    params = dict(cfg["model"])
    if quick:
        n_train, n_test = n_train // 2, 100
        params["max_epochs"] = max(2, params["max_epochs"] // 2)
    train = _examples(task, n_train, seed=0)
    test = _examples(task, n_test, seed=1)
    src_vocab, tgt_vocab = build_vocabularies(train, test)
    enc = lambda exs, side, v: [v.encode(getattr(ex, side)) for ex in exs]  # noqa: E731
    tr_src, tr_tgt = enc(train, "source", src_vocab), enc(train, "target", tgt_vocab)
    te_src, te_tgt = enc(test, "source", src_vocab), enc(test, "target", tgt_vocab)

    train_cfg = {k: params[k] for k in TRAIN_KEYS if k in params}
    model = mmalign.Seq2SeqAttention(len(src_vocab), len(tgt_vocab),
                                     **{k: v for k, v in params.items() if k not in TRAIN_KEYS},
                                     train=dict(train_cfg, seed=seed, device="cpu"))
    t0 = time.perf_counter()
    model.fit(tr_src, tr_tgt)
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    greedy = model.translate(te_src)
    greedy_s = time.perf_counter() - t0
    n_beam = min(len(te_src), 100 if quick else 200)
    t0 = time.perf_counter()
    beam = model.translate(te_src[:n_beam], beam_size=4)
    beam_s = time.perf_counter() - t0
    hyp_tokens = [tgt_vocab.decode(h.tokens) for h in greedy]
    refs = [ex.target for ex in test]
    exact = float(np.mean([h == r for h, r in zip(hyp_tokens, refs)]))
    exact_beam = float(np.mean([h.tokens == t for h, t in zip(beam, te_tgt[:n_beam])]))
    exact_greedy_same = float(np.mean([h.tokens == t for h, t in zip(greedy[:n_beam], te_tgt[:n_beam])]))
    beam_not_worse = float(np.mean([b.log_prob >= g.log_prob - 1e-6 for b, g in zip(beam, greedy[:n_beam])]))
    bleu = _bleu(hyp_tokens, refs)

    # teacher-forced on the gold targets: source on side x, target on side y, links (s, t)
    alignments = model.align_batch(te_src, te_tgt)
    ignore = task.startswith("dates")
    aer = corpus_alignment_error_rate(alignments, [ex.sure for ex in test], [ex.possible for ex in test],
                                      ignore_unlinked_targets=ignore)
    pad_mass, n_padded = _padding_mass(model, te_src, te_tgt)
    # where the argmax misses: target tokens without a sure link (case markers, date digits
    # of unrendered fields) against the others
    miss = {"with a sure link": [0, 0], "without a sure link": [0, 0]}
    for al, ex in zip(alignments, test):
        sure_targets = {t for _, t in ex.sure}
        linked_targets = {t for _, t in ex.possible}
        for s, t in al.path():  # one (argmax source, target) link per target token
            if ignore and t not in linked_targets:
                continue
            key = "with a sure link" if t in sure_targets else "without a sure link"
            miss[key][0] += (int(s), int(t)) not in ex.possible
            miss[key][1] += 1
    miss_rate = {k: (v[0] / v[1] if v[1] else None) for k, v in miss.items()}

    # heatmap of the longest of the first 50 test sentences
    k = int(np.argmax([len(ex.source) for ex in test[:50]]))
    from mmalign.datasets import gold_alignment

    sure, possible = gold_alignment(test[k])
    png = RESULTS_DIR / f"{NAME}_{STEMS[task]}.png"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if seed == 0:
        # drawn as Bahdanau et al.'s Fig. 3: target tokens down the rows, source tokens across
        save_attention_heatmap(alignments[k].transpose(), png, x_labels=test[k].target,
                               y_labels=test[k].source, sure=sure.T, possible=possible.T,
                               title=f"{task}, seed 0 (test AER {100 * aer:.1f}%)")
    return {
        "task": task, "seed": seed, "n_train": n_train, "n_test": n_test, "params": params,
        "src_vocab": len(src_vocab), "tgt_vocab": len(tgt_vocab),
        "train_seconds": train_s, "epochs": model.history_["epochs_run"],
        "final_train_loss": model.history_["train_loss"][-1],
        "exact_match": exact, "bleu": bleu, "exact_match_beam4": exact_beam,
        "exact_match_greedy_same_subset": exact_greedy_same, "n_beam": n_beam,
        "beam_logprob_not_below_greedy": beam_not_worse,
        "greedy_seconds": greedy_s, "beam_seconds": beam_s,
        "aer": aer, "target_aer": TARGET_AER.get(task), "argmax_miss_rate": miss_rate,
        "argmax_counts": miss,
        "padding_mass": pad_mass, "padded_positions": n_padded,
        "heatmap": str(png.relative_to(RESULTS_DIR.parent.parent)) if seed == 0 else None,
    }


def _mean(runs: list[dict], key: str):
    values = [r[key] for r in runs]
    return None if values[0] is None else float(np.mean(values))


def _miss(runs: list[dict], which: str):
    hit = sum(r["argmax_counts"][which][0] for r in runs)
    total = sum(r["argmax_counts"][which][1] for r in runs)
    return 100 * hit / total if total else "—"


def run(quick: bool = False) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_task = {task: [_run_task(task, quick, seed) for seed in ((0,) if quick else SEEDS[task])]
                    for task in TASKS}
    finally:
        torch.set_num_threads(threads)
    info = machine_info()
    rows, seed_rows = [], []
    for task, runs in per_task.items():
        target = TARGET_AER.get(task)
        aers = [r["aer"] for r in runs]
        aer = float(np.mean(aers))
        ok = "—" if target is None else ("yes" if aer <= target else "NO")
        spread = f"{100 * aer:.2f}" if len(runs) == 1 else \
            f"{100 * aer:.2f} [{100 * min(aers):.2f}–{100 * max(aers):.2f}]"
        rows.append([task, _attention_label(runs[0]["params"]), runs[0]["n_train"], runs[0]["epochs"], len(runs), _mean(runs, "train_seconds"),
                     _mean(runs, "exact_match"), _mean(runs, "exact_match_beam4"), _mean(runs, "bleu"),
                     spread, "—" if target is None else f"≤ {100 * target:.0f}", ok,
                     _miss(runs, "with a sure link"), _miss(runs, "without a sure link"),
                     max(r["padding_mass"] for r in runs)])
        seed_rows.append([task] + [f"{100 * r['aer']:.2f}" for r in runs])
    n_beam = next(iter(per_task.values()))[0]["n_beam"]
    table = markdown_table(["task", "attention", "train pairs", "epochs", "seeds", "train s per seed (1 thread)",
                            "exact match (greedy)", f"exact match (beam 4, first {n_beam})", "BLEU",
                            "AER % (mean [min–max] over seeds)", "target AER %", "met",
                            "argmax outside P %, tokens with a sure link",
                            "argmax outside P %, tokens without one", "attention on padding (max)"], rows)
    n_seeds = max(len(r) for r in seed_rows) - 1
    seed_table = markdown_table(["task"] + [f"AER % seed {k}" for k in range(n_seeds)],
                                [r + ["—"] * (n_seeds + 1 - len(r)) for r in seed_rows])
    heatmaps = ", ".join(f"`benchmarks/results/{NAME}_{STEMS[t]}.png`" for t in per_task)
    mode = " (--quick: smaller data, fewer epochs, one seed; not the reported numbers)" if quick else ""
    md = (f"# Bahdanau attention seq2seq: task and alignment{mode}\n\n"
          "`python -m benchmarks seq2seq_attention` — `mmalign.Seq2SeqAttention` (bidirectional GRU "
          "encoder, GRU decoder with additive attention, maxout deep output; attention computed from the "
          "current decoder state s_i with the doubly stochastic attention penalty "
          "(`attention_state='current'`, `coverage_penalty=3`), except the reference row "
          "'dates, paper attention': from the previous state s_{i-1}, no penalty, as in Bahdanau et al.), "
          "trained per task and seed "
          "on the CPU with one thread (the seed sets the initial weights and the batch order; the data "
          "are fixed: training set seed 0, test set seed 1). Exact match and BLEU "
          "(sacrebleu corpus BLEU, `tokenize='none'` on space-joined tokens) of the decoded output; "
          "AER (corpus level, sure/possible gold links) of the per-target-token argmax of the "
          "teacher-forced attention on the gold target (dates: the unlinked `-` are not scored); "
          "attention on padding = total weight on padded source positions over every decoder step "
          "of ragged test batches. The two 'argmax outside P' columns split the argmax links by "
          "target token: those with a sure gold link, and those with possible links only (the case "
          "markers `ga` / `o` of reordering, which have no source word and are possible to every word "
          "of their noun phrase; date digits with no rendered counterpart).\n\n"
          f"{table}\n\n{seed_table}\n\n"
          f"Heatmaps (seed 0, the longest of the first 50 test sentences, gold links drawn over): {heatmaps}\n\n"
          + machine_markdown(info))
    write_report(NAME, md, {"quick": quick, "results": per_task, "machine": info})
    return md
