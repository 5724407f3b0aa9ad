"""Class templates for GunPoint: Euclidean mean, DBA, soft-DTW barycenter, a soft-DTW-trained template.

GunPoint (UCR archive; 50 training and 150 test series of 150 samples, two
classes: an actor drawing a gun or only pointing a finger) is loaded with
``aeon.datasets.load_gunpoint``, each series z-normalised.  For each class four
templates of 150 samples are built from its training series:

- ``euclidean mean``  the sample-wise mean;
- ``DBA``             :func:`mmalign.dba` (DTW barycenter averaging);
- ``soft-DTW bary``   :func:`mmalign.soft_dtw_barycenter` (L-BFGS-B, ``gamma``);
- ``torch template``  a ``torch.nn.Parameter`` fitted with Adam on
  ``mmalign.SoftDTWLoss(normalize=True)`` against the class's series plus a
  small curvature penalty: the soft-DTW divergence as an ordinary torch loss.

Each test series gets the class of its nearest template under DTW (full window,
squared-Euclidean local cost); the script prints the test error of each kind of
template and saves ``soft_dtw_templates.png`` (per class: training series in
grey, templates overlaid).  CPU only, well under a minute.

Usage::

    python recipes/soft_dtw_templates.py --out /tmp/x            # full run
    python recipes/soft_dtw_templates.py --out /tmp/x --quick    # fewer iterations
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import mmalign

FIGURE = "soft_dtw_templates.png"
KINDS = ("euclidean mean", "DBA", "soft-DTW bary", "torch template")


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    """GunPoint ``split`` as z-normalised ``(N, 150)`` float64 series and their labels."""
    from aeon.datasets import load_gunpoint

    X, y = load_gunpoint(split=split)
    X = np.asarray(X, dtype=np.float64)[:, 0, :]
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    return X, np.asarray(y)


def torch_template(X: np.ndarray, *, gamma: float, steps: int, lr: float = 0.05,
                   smoothness: float = 1.0) -> tuple[np.ndarray, list[float]]:
    """Fit one ``(n,)`` template to the series ``X`` (N, n) with Adam on the soft-DTW divergence.

    The loss is ``SoftDTWLoss(normalize=True)`` (mean over the series) plus
    ``smoothness * sum((second difference of the template) ** 2)``.  Starts from
    the Euclidean mean; returns the template and the loss at every step.
    """
    target = torch.from_numpy(X[:, :, None])                            # (N, n, 1)
    template = torch.nn.Parameter(target.mean(dim=0).clone())           # (n, 1)
    divergence = mmalign.SoftDTWLoss(gamma=gamma, normalize=True)
    optimizer = torch.optim.Adam([template], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        # Unpenalised, Adam turns a free per-sample template into a sawtooth: the
        # divergence's -soft_dtw(z, z) / 2 term rewards a jagged z.
        curvature = template[2:] - 2 * template[1:-1] + template[:-2]
        loss = (divergence(template.expand(len(target), -1, -1), target)
                + smoothness * (curvature ** 2).sum())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return template.detach().numpy()[:, 0], losses


def fit_templates(X: np.ndarray, y: np.ndarray, classes: np.ndarray, *, gamma: float,
                  quick: bool) -> tuple[dict, dict, list]:
    """Templates ``{kind: (n_classes, n)}``, fitting seconds ``{kind: float}``, torch losses."""
    templates = {kind: [] for kind in KINDS}
    seconds = dict.fromkeys(KINDS, 0.0)
    losses = []
    for c in classes:
        Xc = X[y == c]
        for kind in KINDS:
            start = time.perf_counter()
            if kind == "euclidean mean":
                t = Xc.mean(axis=0)
            elif kind == "DBA":
                t = mmalign.dba(Xc, n_iter=5 if quick else 30)[:, 0]
            elif kind == "soft-DTW bary":
                t = mmalign.soft_dtw_barycenter(Xc, gamma=gamma,
                                                max_iter=20 if quick else 100)[:, 0]
            else:
                t, history = torch_template(Xc, gamma=gamma, steps=20 if quick else 150)
                losses.append(history)
            seconds[kind] += time.perf_counter() - start
            templates[kind].append(t)
    return {k: np.stack(v) for k, v in templates.items()}, seconds, losses


def nearest_template_error(templates: np.ndarray, classes: np.ndarray, X: np.ndarray,
                           y: np.ndarray) -> float:
    """Fraction of ``X`` whose DTW-nearest template (one per class) has the wrong class."""
    distances = mmalign.cdist_dtw(X, templates)                          # (N, n_classes)
    return float(np.mean(classes[distances.argmin(axis=1)] != y))


def save_figure(path: str, X: np.ndarray, y: np.ndarray, classes: np.ndarray,
                templates: dict, n_series: int = 6) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(5 * len(classes), 3.6), layout="constrained")
    axes = fig.subplots(1, len(classes), sharey=True, squeeze=False)[0]
    styles = {"euclidean mean": dict(color="tab:blue", lw=2),
              "DBA": dict(color="tab:orange", lw=2),
              "soft-DTW bary": dict(color="tab:red", lw=2),
              "torch template": dict(color="black", lw=1, ls=":")}
    for k, (ax, c) in enumerate(zip(axes, classes)):
        for x in X[y == c][:n_series]:
            ax.plot(x, color="0.7", lw=0.8)
        for kind, style in styles.items():
            ax.plot(templates[kind][k], label=kind, **style)
        ax.set_title(f"GunPoint class {c}: {n_series} training series (grey) and templates")
        ax.set_xlabel("time step")
    axes[0].set_ylabel("z-normalised value")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=".", help="folder for the figure (default: .)")
    parser.add_argument("--gamma", type=float, default=1.0, help="soft-DTW smoothing")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for tests)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    X_train, y_train = load("train")
    X_test, y_test = load("test")
    classes = np.unique(y_train)
    templates, seconds, losses = fit_templates(X_train, y_train, classes, gamma=args.gamma,
                                       quick=args.quick)
    errors = {kind: nearest_template_error(templates[kind], classes, X_test, y_test)
              for kind in KINDS}

    print(f"GunPoint: {len(X_train)} train / {len(X_test)} test series of {X_train.shape[1]} "
          f"samples, z-normalised; gamma={args.gamma}{', quick' if args.quick else ''}")
    print("nearest template under DTW (one template per class)")
    print(f"  {'template':<16}{'test error':>11}{'fit seconds':>13}")
    for kind in KINDS:
        print(f"  {kind:<16}{errors[kind]:>11.4f}{seconds[kind]:>13.2f}")
    print("torch template loss (soft-DTW divergence + curvature), first -> last Adam step:")
    for c, history in zip(classes, losses):
        print(f"  class {c}: {history[0]:.2f} -> {history[-1]:.2f} in {len(history)} steps")

    os.makedirs(args.out, exist_ok=True)
    figure = os.path.join(args.out, FIGURE)
    save_figure(figure, X_train, y_train, classes, templates)
    print(f"figure: {figure}")
    return {"errors": errors, "seconds": seconds, "figure": figure, "templates": templates,
            "torch_losses": losses}


if __name__ == "__main__":
    main()
