"""Spatial transformer (``mmalign.SpatialTransformer``) on distorted MNIST: error and pose.

``python -m benchmarks spatial_transformer [--quick]``

Protocol (Jaderberg et al., NeurIPS 2015, Sect. 4.1, on a CPU budget):

- **data**: the 4,000 / 1,000 split of :func:`mmalign.datasets.load_mnist`;
  :func:`mmalign.datasets.distorted_digits` with kinds R (±90° rotation),
  RTS (±45°, scale 0.7–1.2, random placement in 42 × 42), P (projective),
  E (elastic, 4 × 4 TPS grid) and TC (translated and cluttered 60 × 60, the
  generator's default 6 pieces of 6 × 6). Training images are regenerated
  every epoch from the training split (``seed = 1 + epoch``); the 1,000 test
  digits are distorted once (``seed = 10_000``), the same for every model.
- **models**: the plain CNN is :func:`~mmalign.attention.spatial_transformer.digit_cnn`
  (two 5 × 5 conv-pool blocks, ``width`` channels, pooled to 4 × 4, two linear
  layers) on the distorted image; the ST-CNN is a ``SpatialTransformer``
  whose head (``classifier=``) is the **same** CNN with the **same initial
  weights** (same seed), reading the transformer's output. The transformer's output is
  28 × 28 — the digit frame — for every kind (so it must zoom in on RTS and
  TC, where the CNN reads the whole 42 × 42 / 60 × 60 image). Its
  localisation net reads the input average-pooled 2× (14 and 21 pixels):
  two 5 × 5 conv-pool blocks, pooled to 3 × 3, 32 units, then the linear
  layer to the transform (initialised to the identity).
- **TC** differs in two ways (``INITIAL_SCALE``, ``clutter_localization_net``):
  the transform starts on the middle half of the 60 × 60 image
  (``SpatialTransformer(initial_scale=0.5)``: a 30 × 30 frame, about the
  digit's size), and the localisation net reads the input max-pooled 2×
  and passes its whole 7 × 7 feature map, not one pooled to 3 × 3, to the
  32 units. Started at the identity (the run at commit 54979a7, 3 seeds)
  the transform learnt no per-digit pose on TC (pose error 12.8 digit px,
  13.0 for doing nothing): a frame that already sees the whole image gains
  little by moving, one that cuts the digit off gains a lot. The
  resampling control below stays at the identity.
- **training**: Adam, the same learning rate, batch size and number of
  epochs for both (15, but 40 on TC: ``kind_epochs``; at 15 epochs on the
  60 × 60 cluttered images the ST-CNN learnt no pose and its error, 10.9 ±
  1.9 %, was not clearly below the CNN's, 13.0 ± 5.2 %, whose seeds spanned
  9–19 %), cross-entropy, one CPU thread per model (``workers``
  models train at once, in separate processes); the CNN is trained with
  :func:`mmalign.nn.train.fit`, the ST-CNN with ``SpatialTransformer.fit`` (which
  calls the same loop), one run whose training set is regenerated every
  epoch (``fit(..., regenerate=...)``: Adam's state carries over). No early
  stopping: the last weights are tested.
- **error %** on the fixed test set. For RTS and TC, where the transformer
  also shrinks the input to 28 × 28, a control row trains the ST-CNN with
  its transform frozen at the identity (``localization_lr_scale=0``: the CNN
  on the whole input resampled to 28 × 28), which separates the gain of resampling from that of the
  learned transform.
- **localisation learning rate**: the localisation net trains at 0.3 times
  the base rate (``loc_lr_scale = 0.3``, ``SpatialTransformer``'s default
  ``localization_lr_scale=0.3``); one more affine ST-CNN per kind trains it
  at Jaderberg et al.'s tenth (``alt_loc_lr_scale = 0.1``). The run of this
  benchmark at commit 5a6a9cf compared 0.1 with 1: at 0.1 the transform
  learnt little pose in 15 epochs and clearly beat the CNN only on RTS; at
  1 one seed in three collapsed on TC (90 % error).
- **seeds**: every model is trained with each seed of ``seeds`` (0–4),
  which sets the initial weights (the CNN's and the localisation net's,
  seeded locally, so a model's numbers do not depend on which jobs ran before
  it in the worker) and the batch order; the data are the same for every
  seed. Errors and pose errors are reported as mean ± sample standard
  deviation over the seeds. Single runs were not enough: the initial weights
  alone moved a model's error by 1–2 points, and at the full rate one seed's
  transform collapsed on TC (90 % error) while another's did not. An ST-CNN
  *clearly beats* the CNN when its mean error is lower by more than 2
  standard errors (seed-to-seed variance of both means plus the variance of
  the paired per-image difference over the 1,000 test digits,
  :func:`benchmarks.common.clearly_lower`).
- **pose error**: the transformer is free to rectify digits to any canonical
  pose (it learns roughly the mean pose of the data), so its transform is
  compared with the truth *after removing one global similarity* ``S``:
  with ``T_i`` the true source-frame → input map (``stn_theta``; for E the
  thin-plate spline through ``tps_displaced``) and ``A_i`` the predicted
  output → input map, ``S`` (scale, rotation, translation; 4 numbers) is
  fitted by least squares over the 5 reference points ``p`` (corners and
  centre of the digit frame) of all test samples, minimising
  ``Σ_i Σ_p |A_i(S p) − T_i(p)|²`` in input coordinates; the reported number
  is the mean of ``|A_i(S p) − T_i(p)|`` converted to **pixels of the 28-px
  digit frame** (input pixels divided by the sample's digit scale). The row
  "identity" is the same number for a transformer that does nothing
  (``A_i = identity``, ``S`` fitted the same way): how far the digits' poses
  spread around their mean, the error the ST has to remove.
- **figures**: ``benchmarks/results/spatial_transformer_<kind>.png``, 8 test
  digits per kind with :func:`mmalign.plot.plot_spatial_transform` (input with
  the sampled frame, and the transformer's output).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .common import RESULTS_DIR, clearly_lower, device_text, machine_info, machine_markdown, markdown_table, \
    mean_sd, mean_sd_text, mistakes, mistakes_array, to_cpu, write_report

NAME = "spatial_transformer"
KINDS = ("R", "RTS", "P", "E", "TC")
REFERENCE_POINTS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]])
PAPER = {  # Jaderberg et al. 2015, Table 1 (60,000 training digits): CNN, ST-CNN affine, ST-CNN TPS
    "R": (1.2, 0.7, 0.7), "RTS": (0.8, 0.5, 0.5), "P": (1.5, 0.8, 0.8), "E": (1.4, 1.2, 1.1),
    "TC": (3.5, 1.7, None),
}
FULL = dict(epochs=15, n_train=4000, n_test=1000, width=16, batch_size=64, lr=3e-3,
            seeds=(0, 1, 2, 3, 4), tps_kinds=("E",), workers=2, loc_lr_scale=0.3, alt_loc_lr_scale=0.1,
            kind_epochs={"TC": 40},     # TC: at 15 epochs neither model had converged (see the docstring)
            device="cpu")               # where the models train; they are tested on the CPU
QUICK = dict(epochs=2, n_train=1000, n_test=300, width=8, batch_size=64, lr=3e-3, seeds=(0,),
             tps_kinds=("E",), workers=2, loc_lr_scale=0.3, alt_loc_lr_scale=0.1, device="cpu")
LOC_POOL = {"R": 2, "RTS": 2, "P": 2, "E": 2}        # TC: clutter_localization_net
# where the transform starts (SpatialTransformer(initial_scale=...)): on TC the middle
# half of the 60 x 60 image, a 30 x 30 frame about the digit's size; at the identity
# (the whole image) the transform learnt no per-digit pose there
INITIAL_SCALE = {"TC": 0.5}
OUTPUT_SIZE = (28, 28)
RESAMPLED_KINDS = ("RTS", "TC")     # inputs larger than the ST's 28 x 28 output
TEST_SEED = 10_000


# --------------------------------------------------------------------------- models

def localization_net(pool: int, width: int = 16, features: int = 32) -> nn.Module:
    """Localisation net on an input average-pooled by ``pool``: two conv-pool blocks, ``features`` units."""
    return nn.Sequential(
        nn.AvgPool2d(pool) if pool > 1 else nn.Identity(),
        nn.Conv2d(1, width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(3), nn.Flatten(),
        nn.Linear(2 * width * 9, features), nn.ReLU(),
    )


def clutter_localization_net(image_size: int, width: int = 16, features: int = 32) -> nn.Module:
    """Localisation net for cluttered images: the input max-pooled 2× (thin strokes
    survive it), two 5 × 5 conv-pool blocks, and the **whole** feature map (not one
    pooled to 3 × 3) into the ``features`` units, so that where the digit is survives."""
    side = image_size // 2 // 2 // 2
    return nn.Sequential(
        nn.MaxPool2d(2),
        nn.Conv2d(1, width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * side * side, features), nn.ReLU(),
    )


def _localization(kind: str) -> nn.Module:
    return clutter_localization_net(60) if kind == "TC" else localization_net(LOC_POOL[kind])


def _classifier(cfg: dict) -> nn.Module:
    from mmalign.attention.spatial_transformer import digit_cnn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]))
        return digit_cnn(1, 10, width=int(cfg["width"]))


def _spatial_transformer(kind: str, transform: str, cfg: dict, loc_lr_scale: float | None = None,
                         initial_scale: float | None = None):
    from mmalign.attention.spatial_transformer import SpatialTransformer

    scale = float(cfg["loc_lr_scale"] if loc_lr_scale is None else loc_lr_scale)
    with torch.random.fork_rng(devices=[]):   # the same initial weights whatever ran before in the process
        torch.manual_seed(int(cfg["seed"]))
        localization = _localization(kind)
    return SpatialTransformer(localization=localization, localization_features=32,
                              transform=transform, output_size=OUTPUT_SIZE, n_classes=10,
                              classifier=_classifier(cfg),   # the plain CNN's architecture and weights
                              localization_lr_scale=scale,
                              initial_scale=INITIAL_SCALE.get(kind, 1.0) if initial_scale is None
                              else initial_scale,
                              train={"max_epochs": int(cfg["epochs"]), "batch_size": int(cfg["batch_size"]),
                                     "lr": float(cfg["lr"]), "seed": int(cfg["seed"]),
                                     "device": cfg["device"]})


def _fit_cnn(model: nn.Module, regenerate, cfg: dict) -> list[float]:
    """Train the plain CNN like ``SpatialTransformer.fit`` trains the ST-CNN: one
    :func:`mmalign.nn.train.fit` run, a regenerated training set per epoch."""
    from mmalign.nn.train import TrainConfig, fit

    def loss_fn(m, batch):
        return F.cross_entropy(m(batch[0]), batch[1])

    def data(epoch):
        x, y = regenerate(epoch)
        return torch.as_tensor(x), torch.as_tensor(y)

    config = TrainConfig(max_epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]), lr=float(cfg["lr"]),
                         seed=int(cfg["seed"]), device=cfg["device"], progress=False)
    return fit(model, loss_fn, data(0), config=config, regenerate=data).train_loss


@torch.no_grad()
def _cnn_predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return torch.cat([model(torch.as_tensor(x[i:i + 500])).argmax(1) for i in range(0, len(x), 500)]).numpy()


# --------------------------------------------------------------------------- pose metric

def true_reference_points(d) -> np.ndarray:
    """``(n, 5, 2)`` where the digit frame's corners and centre lie in the input (normalised).

    Matrix kinds: ``stn_theta`` (source → output) with the homogeneous divide.
    E: the corners are TPS control points, so ``tps_displaced`` holds them
    exactly; the centre is the thin-plate spline through the control points
    evaluated at ``(0, 0)`` (the generator samples with the inverse spline, so
    this is accurate to a small fraction of a pixel at 1.5-px perturbations).
    """
    if d.kind == "E":
        from mmalign.attention.spatial_transformer import tps_grid

        corners = d.tps_displaced[:, [0, 3, 15, 12]]
        centre = tps_grid(torch.as_tensor(d.tps_displaced), torch.as_tensor(d.tps_source[0]),
                          (1, 1)).reshape(-1, 1, 2).numpy()            # (1, 1) grid = the point (0, 0)
        return np.concatenate([corners, centre], axis=1)
    homog = np.concatenate([REFERENCE_POINTS, np.ones((5, 1))], 1)
    mapped = np.einsum("nij,pj->npi", d.stn_theta, homog)
    return mapped[..., :2] / mapped[..., 2:3]


def _map_points(pred: dict, points: torch.Tensor) -> torch.Tensor:
    """Apply predicted transforms to ``(n, P, 2)`` points (output frame → input), differentiably."""
    if "matrix" in pred:
        m = pred["matrix"]
        homog = torch.cat([points, torch.ones_like(points[..., :1])], -1)
        mapped = homog @ m.transpose(1, 2)
        return mapped[..., :2] / mapped[..., 2:3]
    # TPS: f(q) = sum_k w_k U(|q - c_k|) + a0 + a1 x + a2 y, coefficients from the system inverse
    control, inverse, source = pred["control"], pred["inverse"], pred["source"]
    rhs = torch.cat([source, source.new_zeros(source.shape[0], 3, 2)], 1)
    coef = inverse @ rhs                                                       # (n, K + 3, 2)
    d2 = ((points[:, :, None, :] - control[None, None]) ** 2).sum(-1)
    kern = 0.5 * d2 * torch.log(d2.clamp_min(1e-12))
    feats = torch.cat([kern, torch.ones_like(points[..., :1]), points], -1)     # (n, P, K + 3)
    return feats @ coef


def fit_similarity(pred: dict, true_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity ``S`` (``s R p + t``) with ``A_i(S p) ≈ T_i(p)``.

    Returns ``(S as a 3 × 3 matrix, residual distances (n, 5) in normalised input units)``.
    Affine predictions make this a linear least-squares problem; L-BFGS
    (float64, from the identity) solves it and the TPS case alike.
    """
    target = torch.as_tensor(true_points, dtype=torch.float64)
    ref = torch.as_tensor(REFERENCE_POINTS, dtype=torch.float64)
    theta = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)

    def apply(th):
        a, b, tx, ty = th
        s_mat = torch.stack([torch.stack([a, -b]), torch.stack([b, a])])
        q = ref @ s_mat.T + torch.stack([tx, ty])
        return _map_points(pred, q.expand(target.shape[0], -1, -1))

    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((apply(theta) - target) ** 2).sum(-1).mean()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        resid = (apply(theta) - target).norm(dim=-1).numpy()
        a, b, tx, ty = theta.tolist()
    return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]]), resid


def pose_error(pred: dict, d) -> dict:
    """Mean point error after one global similarity (see the module docstring)."""
    s_mat, resid = fit_similarity(pred, true_reference_points(d))
    w = d.image_size[1]
    per_sample_px = resid.mean(1) * w / 2                     # input-image pixels
    digit_px = per_sample_px / d.scales                        # pixels of the 28-px digit frame
    scale = float(np.sqrt(abs(np.linalg.det(s_mat[:2, :2]))))
    return {"digit_px": float(digit_px.mean()), "input_px": float(per_sample_px.mean()),
            "median_digit_px": float(np.median(digit_px)), "similarity": s_mat.tolist(),
            "similarity_scale": scale,
            "similarity_angle_deg": float(np.degrees(np.arctan2(s_mat[1, 0], s_mat[0, 0])))}


@torch.no_grad()
def predicted_transforms(st, x: np.ndarray) -> dict:
    """The ST's transforms on ``x`` in the form :func:`_map_points` takes (float64), from
    its trained layer (``st.module_.layer``, a :class:`SpatialTransformerLayer`)."""
    layer = st.module_.layer
    was = layer.training
    layer.eval()
    try:
        locs = [layer.localize(torch.as_tensor(x[i:i + 500])) for i in range(0, len(x), 500)]
    finally:
        layer.train(was)
    if layer.transform == "tps":
        params = torch.cat([lo["params"][:, -1] for lo in locs]).double()
        return {"source": params.view(params.shape[0], -1, 2), "control": layer.tps_control.double(),
                "inverse": layer.tps_inverse.double()}
    return {"matrix": torch.cat([lo["matrix"] for lo in locs]).double()}


def identity_transforms(n: int) -> dict:
    return {"matrix": torch.eye(3, dtype=torch.float64).expand(n, 3, 3)}


# --------------------------------------------------------------------------- one kind

def _figure(st, test, kind: str, path, n: int = 8) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mmalign.plot import plot_spatial_transform

    x = test.images[:n, None]
    alignments = st.align_batch(x)
    warped = st.warp(x)
    pred = st.predict(x)
    fig = Figure(figsize=(12, 3.4))
    FigureCanvasAgg(fig)
    for k in range(n):
        ax = fig.add_subplot(2, n // 2, k + 1)
        plot_spatial_transform(x[k, 0], alignments[k], warped[k, 0], ax=ax, n_lines=3,
                               title=f"label {test.labels[k]} → {pred[k]}")
    fig.suptitle(f"ST-CNN ({st.transform}) on {kind}: input with the sampled frame | output", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _job(args) -> dict:
    """Train and test one model (``"cnn"``, ``"affine"``, ``"tps"``, ``"resampled"`` or
    ``"affine_alt"``, the affine ST with the localisation net at ``alt_loc_lr_scale``) on
    one kind, in a worker (one thread)."""
    kind, model, seed, cfg = args
    from mmalign.datasets import distorted_digits, load_mnist

    figure = seed == cfg["seeds"][0]
    cfg = dict(cfg, seed=seed, epochs=epochs_for(kind, cfg))

    torch.set_num_threads(1)
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    x_train, y_train = x_train[:cfg["n_train"]], y_train[:cfg["n_train"]]
    test = distorted_digits(x_test[:cfg["n_test"]], y_test[:cfg["n_test"]], kind, seed=TEST_SEED)

    def regenerate(epoch):
        d = distorted_digits(x_train, y_train, kind, seed=1 + epoch)
        return d.images[:, None], d.labels

    x_test = test.images[:, None]
    t0 = time.perf_counter()
    if model == "cnn":
        cnn = _classifier(cfg)
        out = {"cnn_loss": _fit_cnn(cnn, regenerate, cfg)}
        to_cpu(cnn)
        out["cnn_seconds"] = time.perf_counter() - t0
        predicted = _cnn_predict(cnn, x_test)
        out["cnn_error"] = float((predicted != test.labels).mean())
        out["cnn_wrong"] = mistakes(predicted, test.labels)
        error = out["cnn_error"]
    elif model == "resampled":
        # control: the ST-CNN with its transform frozen at the identity (localization_lr_scale=0),
        # i.e. the CNN on the input bilinearly resampled to 28 x 28: what the ST gains by
        # resampling alone
        st = _spatial_transformer(kind, "affine", cfg, loc_lr_scale=0.0, initial_scale=1.0)
        x0, y0 = regenerate(0)
        st.fit(x0, y0, regenerate=regenerate)
        st.to("cpu")
        predicted = st.predict(x_test)
        out = {"resampled_seconds": time.perf_counter() - t0,
               "resampled_error": float((predicted != test.labels).mean()),
               "resampled_wrong": mistakes(predicted, test.labels)}
        error = out["resampled_error"]
    else:
        alt = model == "affine_alt"
        st = _spatial_transformer(kind, "affine" if alt else model, cfg,
                                  cfg["alt_loc_lr_scale"] if alt else None)
        x0, y0 = regenerate(0)
        st.fit(x0, y0, regenerate=regenerate)
        st.to("cpu")
        key = f"st_{model}"
        predicted = st.predict(x_test)
        out = {f"{key}_seconds": time.perf_counter() - t0, f"{key}_loss": st.history_["train_loss"],
               f"{key}_error": float((predicted != test.labels).mean()),
               f"{key}_wrong": mistakes(predicted, test.labels),
               f"{key}_pose": pose_error(predicted_transforms(st, x_test), test)}
        error = out[f"{key}_error"]
        if model == "affine" and figure:
            png = RESULTS_DIR / f"{NAME}_{kind}.png"
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            _figure(st, test, kind, png)
            out["figure"] = str(png.relative_to(RESULTS_DIR.parent.parent))
    print(f"  [{NAME}] {kind} {model} seed {seed}: {100 * error:.2f} % ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    return {"kind": kind, "seed": seed, **out}


def summarise(runs: list[dict]) -> dict:
    """One kind's numbers over its seeds: ``(mean, sd)`` of each error and pose error,
    and whether each ST-CNN clearly beats the CNN (:func:`benchmarks.common.clearly_lower`)."""
    out = {"kind": runs[0]["kind"], "image_size": runs[0]["image_size"], "seeds": [r["seed"] for r in runs],
           "identity_pose": runs[0]["identity_pose"]["digit_px"], "beats_cnn": {}}
    for key in ("cnn", "resampled", "st_affine", "st_affine_alt", "st_tps"):
        if all(f"{key}_error" in r for r in runs):
            out[f"{key}_error"] = mean_sd([r[f"{key}_error"] for r in runs])
            if key.startswith("st_"):
                out[f"{key}_pose"] = mean_sd([r[f"{key}_pose"]["digit_px"] for r in runs])
                out["beats_cnn"][key] = clearly_lower(mistakes_array([r[f"{key}_wrong"] for r in runs]),
                                                      mistakes_array([r["cnn_wrong"] for r in runs]))
    out["similarity"] = (mean_sd([r["st_affine_pose"]["similarity_scale"] for r in runs])[0],
                         mean_sd([r["st_affine_pose"]["similarity_angle_deg"] for r in runs])[0])
    for key in ("cnn_seconds", "st_affine_seconds"):
        out[key] = mean_sd([r[key] for r in runs])[0]
    return out


# relative cost of one epoch of the jobs (for scheduling the longest first)
_COST = {"R": 1.0, "P": 1.0, "E": 1.0, "RTS": 1.6, "TC": 3.0}


def epochs_for(kind: str, cfg: dict) -> int:
    """Training epochs of every model on ``kind``: ``cfg["kind_epochs"][kind]``, else ``cfg["epochs"]``."""
    return int(cfg.get("kind_epochs", {}).get(kind, cfg["epochs"]))


def _longer(cfg: dict, kinds) -> str:
    """`` (TC: 40)`` for the kinds trained longer than ``cfg["epochs"]``."""
    longer = [f"{k}: {epochs_for(k, cfg)}" for k in kinds if epochs_for(k, cfg) != int(cfg["epochs"])]
    return f" ({', '.join(longer)})" if longer else ""


def run(quick: bool = False, kinds=KINDS, **overrides) -> str:
    from mmalign.datasets import distorted_digits, load_mnist

    cfg = dict(QUICK if quick else FULL, **overrides)
    t_start = time.perf_counter()
    jobs = [(kind, model, seed, cfg) for seed in cfg["seeds"] for kind in kinds
            for model in ("cnn", "affine", "affine_alt", *(("tps",) if kind in cfg["tps_kinds"] else ()),
                          *(("resampled",) if kind in RESAMPLED_KINDS else ()))]
    jobs.sort(key=lambda j: -_COST[j[0]] * epochs_for(j[0], cfg) * (2.0 if j[1] == "cnn" else 1.0))
    parts = []
    if cfg["workers"] > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(max_workers=cfg["workers"], mp_context=mp.get_context("spawn")) as pool:
            parts = list(pool.map(_job, jobs))
    else:
        threads = torch.get_num_threads()
        try:
            parts = [_job(j) for j in jobs]
        finally:
            torch.set_num_threads(threads)
    x_test, y_test = load_mnist("test")
    results = []       # one per kind and seed
    for kind in kinds:
        test = distorted_digits(x_test[:cfg["n_test"]], y_test[:cfg["n_test"]], kind, seed=TEST_SEED)
        identity = pose_error(identity_transforms(len(test)), test)
        for seed in cfg["seeds"]:
            r = {"kind": kind, "seed": seed, "image_size": list(test.image_size), "identity_pose": identity}
            for part in parts:
                if part["kind"] == kind and part["seed"] == seed:
                    r.update(part)
            results.append(r)
    wall = time.perf_counter() - t_start
    info = machine_info()
    summaries = [summarise([r for r in results if r["kind"] == kind]) for kind in kinds]
    several = len(cfg["seeds"]) > 1

    def pm(key, s, scale=100.0):
        return mean_sd_text(*s[key], scale=scale, spread=several) if key in s else "—"

    rows = []
    for s in summaries:
        paper = PAPER[s["kind"]]
        beats = " / ".join(("yes" if s["beats_cnn"][key] else "NO") if key in s["beats_cnn"] else "—"
                           for key in ("st_affine", "st_affine_alt", "st_tps"))
        scale, angle = s["similarity"]
        rows.append([
            s["kind"], "×".join(map(str, s["image_size"])), pm("cnn_error", s), pm("resampled_error", s),
            pm("st_affine_error", s), pm("st_affine_alt_error", s), pm("st_tps_error", s), beats,
            f"{s['identity_pose']:.3g}", pm("st_affine_pose", s, 1.0), pm("st_affine_alt_pose", s, 1.0),
            pm("st_tps_pose", s, 1.0), f"{scale:.2f} / {angle:.0f}°",
            f"{s['cnn_seconds']:.0f} / {s['st_affine_seconds']:.0f}",
            f"{paper[0]} / {paper[1]}" + ("" if paper[2] is None else f" / {paper[2]}"),
        ])
    table = markdown_table(
        ["kind", "input", "CNN error %", "CNN on input resampled to 28×28 %",
         f"ST-CNN affine ({cfg['loc_lr_scale']:g}×) error %",
         f"ST-CNN affine ({cfg['alt_loc_lr_scale']:g}×) error %", f"ST-CNN TPS ({cfg['loc_lr_scale']:g}×) error %",
         f"clearly beats CNN: affine {cfg['loc_lr_scale']:g}× / {cfg['alt_loc_lr_scale']:g}× / TPS",
         "pose error, identity (digit px)", f"pose error, ST affine {cfg['loc_lr_scale']:g}× (digit px)",
         f"pose error, ST affine {cfg['alt_loc_lr_scale']:g}×", "pose error, ST TPS",
         f"fitted S of affine {cfg['loc_lr_scale']:g}×: scale / angle", "train s CNN / ST",
         "paper % CNN / Aff / TPS"], rows)
    mode = " (--quick: less data, fewer epochs, a narrower CNN; not the reported numbers)" if quick else ""
    md = (
        f"# Spatial transformer on distorted MNIST{mode}\n\n"
        f"`python -m benchmarks spatial_transformer{' --quick' if quick else ''}` — "
        f"{cfg['n_train']:,} training digits regenerated every epoch, {cfg['n_test']:,} test digits "
        f"distorted once; {len(cfg['seeds'])} seed(s) per model ({', '.join(map(str, cfg['seeds']))}: initial "
        "weights and batch order; the data are the same), errors as mean ± sample standard deviation over the "
        f"seeds; {cfg['epochs']} epochs{_longer(cfg, kinds)}, Adam lr {cfg['lr']:g} (the ST's localisation net "
        f"{cfg['loc_lr_scale']:g} × that), batch {cfg['batch_size']}, trained on "
        f"{device_text(cfg['device'])}, one CPU thread per model ({cfg['workers']} at a time); "
        f"CNN = `digit_cnn(width={cfg['width']})` on the "
        "distorted image, ST-CNN = the same CNN "
        "(same initial weights) on the 28 × 28 output of a `SpatialTransformer` whose localisation net "
        "reads the input average-pooled to 14 or 21 px; on TC the transform starts on the middle half of "
        "the image (`initial_scale=0.5`) and its localisation net reads the input max-pooled to 30 px and "
        "keeps the whole feature map (`clutter_localization_net`).\n\n"
        f"{table}\n\n"
        f"*ST-CNN affine ({cfg['alt_loc_lr_scale']:g}×)*: the same affine ST-CNN with its "
        f"localisation net trained at {cfg['alt_loc_lr_scale']:g} times the learning rate instead of "
        f"{cfg['loc_lr_scale']:g} times (`SpatialTransformer`'s default `localization_lr_scale=0.3`; "
        "0.1 is Jaderberg et al.'s ratio). *Clearly beats CNN*: mean error lower than the CNN's by more than "
        "2 standard errors (seed-to-seed variance of both means plus the variance of the paired per-image "
        "difference over the test images: `benchmarks.common.clearly_lower`).\n\n"
        "*CNN on input resampled to 28×28* (RTS, TC): the ST-CNN with its transform frozen at the "
        "identity — the same CNN on the whole input bilinearly resampled to the ST's 28 × 28 output; "
        "the ST's own contribution is the difference between this column and the ST-CNN's.\n\n"
        "**Pose error**: mean distance, in pixels of the 28-px digit frame, between where the predicted "
        "transform and the true one put the digit frame's 4 corners and centre, after one global "
        "similarity S (scale, rotation, shift) fitted by least squares over all test samples — the ST "
        "may rectify to any fixed canonical pose, S removes that choice. *identity* = the same for a "
        "transformer that does nothing: the spread of the poses it has to undo. The fitted S of the "
        "affine ST is listed (scale > 1: the ST's 28-px output shows a larger area than the digit frame).\n\n"
        "Published errors (Jaderberg et al. 2015, Table 1) were obtained with 60,000 training digits "
        "and far longer training; they are a ceiling, not a target, for this CPU-sized run.\n\n"
        "Figures (8 test digits each: input with the frame the ST samples, in red, and its output): "
        + ", ".join(f"`{r['figure']}`" for r in results if "figure" in r)
        + f"\n\nWall time: {wall:.0f} s.\n\n" + machine_markdown(info)
    )
    write_report(NAME, md, {"quick": quick, "config": cfg, "results": results, "summaries": summaries,
                            "wall_seconds": wall,
                            "machine": info})
    return md
