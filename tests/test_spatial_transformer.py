"""Spatial transformer: identity start, the grid convention, TPS, composition, training, Alignment."""

import numpy as np
import pytest
import torch

from ddp_spy import spy_on_training
from mmalign import Aligner
from mmalign.attention.spatial_transformer import (
    SpatialTransformer,
    base_grid,
    matrix_grid,
    params_to_matrix,
    tps_control_points,
    tps_grid,
)


def _images(b=3, h=12, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g)


@pytest.mark.parametrize("kind", ["affine", "projective", "attention", "tps"])
def test_starts_at_identity(kind):
    st = SpatialTransformer(transform=kind)
    x = _images()
    assert torch.allclose(st(x), x, atol=1e-5)
    a = st.align(x[0])
    assert np.array_equal(a.path()[:, 0], a.path()[:, 1])


@pytest.mark.parametrize("kind", ["affine", "projective", "attention", "tps"])
def test_initial_scale_starts_on_the_central_part_of_the_input(kind):
    # a 4 x 4 output at scale 0.5 on an 8 x 8 input: the output's pixel centres
    # (±0.75, ±0.25), halved, are exactly the centres of input pixels 2..5
    st = SpatialTransformer(transform=kind, output_size=(4, 4), initial_scale=0.5)
    x = _images(h=8, w=8)
    middle = x[..., 2:6, 2:6]
    whole = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear",
                                            align_corners=False)      # what the identity gives
    out = st(x)
    grid = st.localize(x)["grid"]
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-0.375, -0.375]), atol=1e-6)
    assert torch.allclose(grid[0, -1, -1], torch.tensor([0.375, 0.375]), atol=1e-6)
    assert torch.allclose(out, middle, atol=1e-5)       # 4 x 4 from the middle 4 x 4: pixel for pixel
    assert not torch.allclose(out, whole, atol=1e-3)
    assert st.get_params()["initial_scale"] == 0.5
    default = SpatialTransformer(transform=kind)
    assert torch.equal(default.initial_params(), default.identity_params())


@pytest.mark.parametrize("value", [0, -0.5, float("nan"), float("inf"), True, "0.5"])
def test_bad_initial_scale(value):
    with pytest.raises(ValueError, match="initial_scale"):
        SpatialTransformer(initial_scale=value)


def test_base_grid_is_pixel_centres_align_corners_false():
    g = base_grid(2, 4)
    assert torch.allclose(g[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(g[:, 0, 1], torch.tensor([-0.5, 0.5]))


def test_translation_moves_content_by_whole_pixels():
    st = SpatialTransformer(transform="affine")
    w = 10
    with torch.no_grad():  # sample the input one pixel to the right of each output pixel
        st.loc_head.bias.copy_(torch.tensor([1.0, 0, 2.0 / w, 0, 1, 0]))
    x = _images(w=w)
    out = st(x)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-5)
    assert torch.allclose(out[..., -1], torch.zeros_like(out[..., -1]))   # zeros outside


def test_projective_with_affine_last_row_equals_affine():
    p = torch.tensor([[0.9, 0.1, 0.05, -0.2, 1.1, 0.0]])
    a = matrix_grid(params_to_matrix(p, "affine"), (7, 5))
    pr = matrix_grid(params_to_matrix(torch.cat([p, torch.zeros(1, 2)], 1), "projective"), (7, 5))
    assert torch.allclose(a, pr, atol=1e-6)


def test_projective_divides_by_the_homogeneous_coordinate():
    m = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0.5, 0, 1.0]]])
    g = matrix_grid(m, (3, 4))
    pts = base_grid(3, 4)
    expect = pts / (1 + 0.5 * pts[..., :1])
    assert torch.allclose(g[0], expect, atol=1e-6)


def test_attention_transform_is_scale_and_translation():
    m = params_to_matrix(torch.tensor([[0.5, 0.2, -0.1]]), "attention")[0]
    assert torch.allclose(m, torch.tensor([[0.5, 0, 0.2], [0, 0.5, -0.1], [0, 0, 1.0]]))


def test_tps_reproduces_an_affine_map_exactly():
    control = tps_control_points(4, dtype=torch.float64)
    A = torch.tensor([[0.8, -0.3], [0.2, 1.1]], dtype=torch.float64)
    t = torch.tensor([0.1, -0.05], dtype=torch.float64)
    src = (control @ A.T + t)[None]
    g = tps_grid(src, control, (6, 5))
    expect = base_grid(6, 5, dtype=torch.float64) @ A.T + t
    assert torch.allclose(g[0], expect, atol=1e-8)


def test_tps_interpolates_its_control_points():
    control = tps_control_points(3, dtype=torch.float64)
    src = control + 0.1 * torch.randn(control.shape, generator=torch.Generator().manual_seed(1),
                                       dtype=torch.float64)
    # a 3x3 output grid whose pixel centres are not the control points: check through the formula
    from mmalign.attention.spatial_transformer import _tps_kernel, _tps_system_inverse
    inv = _tps_system_inverse(control)
    coef = inv @ torch.cat([src, torch.zeros(3, 2, dtype=torch.float64)])
    feats = torch.cat([_tps_kernel(control, control), torch.ones(9, 1, dtype=torch.float64), control], 1)
    assert torch.allclose(feats @ coef, src, atol=1e-9)


@pytest.mark.parametrize("kind", ["attention", "tps"])
def test_iterations_compose_transforms(kind):
    st = SpatialTransformer(transform=kind, n_iterations=2)
    with torch.no_grad():
        if kind == "attention":
            st.loc_head.bias.copy_(torch.tensor([1.0, 0.2, 0.0]))
        else:
            st.loc_head.bias.copy_((tps_control_points(4) + torch.tensor([0.2, 0.0])).reshape(-1))
    loc = st.localize(_images(b=1, h=16, w=16))
    shift = loc["grid"][0] - base_grid(16, 16)
    inner = shift[:, :6] if kind == "tps" else shift     # TPS composition clamps at the border
    assert torch.allclose(inner[..., 0], torch.full_like(inner[..., 0], 0.4), atol=1e-4)
    assert torch.allclose(inner[..., 1], torch.zeros_like(inner[..., 1]), atol=1e-4)


def test_gradients_reach_the_localisation_network():
    st = SpatialTransformer(transform="affine")
    x = _images()
    st(x).pow(2).sum().backward()
    assert st.loc_head.weight.grad.abs().sum() > 0
    assert torch.isfinite(st.loc_head.weight.grad).all()


def test_output_size_and_alignment_contents():
    st = SpatialTransformer(transform="affine", output_size=(6, 5))
    a = st.align(_images(b=1, h=12, w=10)[0])
    assert a.shape == (30, 120)
    assert a.extras["grid"].shape == (6, 5, 2)
    assert a.extras["params"].shape == (1, 6)
    assert np.allclose(a.extras["matrix"], np.eye(3))
    batch = st.align(_images(b=4, h=12, w=10))
    assert isinstance(batch, list) and len(batch) == 4


def test_fit_learns_digits_and_round_trips(tmp_path):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images[:600] / 16.0, dtype=torch.float32)[:, None]
    x = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    y = d.target[:600]
    st = SpatialTransformer(n_classes=10, max_epochs=4, batch_size=32, lr=2e-3, seed=0)
    st.fit(x[:500], y[:500], val_data=(x[500:], y[500:]))
    accuracy = (st.predict(x[500:]) == y[500:]).mean()
    assert accuracy > 0.6          # chance is 0.1
    assert len(st.history_["train_loss"]) >= 1
    path = tmp_path / "st.npz"
    st.save(path)
    again = Aligner.load(path)
    assert np.array_equal(again.predict(x[500:]), st.predict(x[500:]))


def test_seeded_construction_is_reproducible():
    a, b = SpatialTransformer(seed=3), SpatialTransformer(seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_inputs_not_modified():
    st = SpatialTransformer()
    x = _images()
    before = x.clone()
    st(x)
    st.align(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("kwargs, name", [
    ({"transform": "rotation"}, "transform"),
    ({"n_iterations": 0}, "n_iterations"),
    ({"tps_grid_size": 1}, "tps_grid_size"),
    ({"output_size": (0, 4)}, "output_size"),
    ({"n_classes": 1}, "n_classes"),
])
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SpatialTransformer(**kwargs)


def test_bad_images():
    st = SpatialTransformer(n_classes=10)
    x = _images()
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        st(bad)
    with pytest.raises(ValueError, match="channels"):
        st(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        st(torch.rand(8))
    with pytest.raises(ValueError, match="labels"):
        st.fit(x, [0, 1, 10])
    with pytest.raises(ValueError, match="labels"):
        st.fit(x, [0, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    st = SpatialTransformer(transform="tps")
    with torch.no_grad():
        st.loc_head.bias.add_(0.05)
    x = _images()
    cpu = st(x)
    gpu = st.to("cuda")(x.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)


# --------------------------------------------------------------------------- optimiser groups, DDP
def test_localization_learns_at_a_tenth_of_the_rate():
    """Adam's first step moves every parameter with a gradient by about its group's rate."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images[:64] / 16.0, dtype=torch.float32)[:, None]
    y = d.target[:64]
    lr = 1e-2
    moved = {}
    for scale in (0.1, 1.0):
        st = SpatialTransformer(n_classes=10, max_epochs=1, batch_size=64, lr=lr, seed=0,
                                localization_lr_scale=scale)
        assert st.get_params()["localization_lr_scale"] == scale
        before = {k: v.clone() for k, v in st.state_dict().items()}
        st.fit(x, y)
        step = {k: float((st.state_dict()[k] - before[k]).abs().max()) for k in before}
        moved[scale] = step
        assert step["loc_head.bias"] == pytest.approx(scale * lr, rel=1e-3)
        assert step["classifier.0.weight"] == pytest.approx(lr, rel=1e-3)
    assert SpatialTransformer().localization_lr_scale == 0.3          # the default
    groups = SpatialTransformer(n_classes=10).param_groups()
    assert [g["lr_scale"] for g in groups] == [0.3, 1.0]
    n_loc = sum(p.numel() for p in groups[0]["params"])
    st = SpatialTransformer(n_classes=10)
    assert n_loc == sum(p.numel() for m in (st.loc_net, st.loc_head) for p in m.parameters())
    with pytest.raises(ValueError, match="localization_lr_scale"):
        SpatialTransformer(localization_lr_scale=0)


def test_train_fit_param_groups():
    from mmalign.nn.train import TrainConfig, fit
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    before = [p.detach().clone() for p in net.parameters()]
    data = (torch.randn(16, 3), torch.randn(16, 1))
    mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
    cfg = TrainConfig(max_epochs=1, batch_size=16, lr=0.01, device="cpu")
    fit(net, mse, data, config=cfg, param_groups=lambda m: [{"params": m[0].parameters(), "lr_scale": 0.5}])
    steps = [float((p.detach() - b).abs().max()) for p, b in zip(net.parameters(), before)]
    assert steps[0] == pytest.approx(0.005, rel=1e-3)          # first layer: 0.5 x lr
    assert steps[2] == pytest.approx(0.01, rel=1e-3)           # not listed: lr
    with pytest.raises(ValueError, match="param_groups"):
        fit(net, mse, data, config=cfg, param_groups=[{"params": net.parameters()}, {"params": net[0].parameters()}])
    with pytest.raises(ValueError, match="lr_scale"):
        fit(net, mse, data, config=cfg, param_groups=[{"params": net.parameters(), "lr_scale": -1.0}])


def test_fit_loss_goes_through_the_wrapped_forward(monkeypatch):
    spies = spy_on_training(monkeypatch)
    st = SpatialTransformer(n_classes=10, max_epochs=1, batch_size=4, seed=0)
    st.fit(_images(b=8, h=16, w=16), np.arange(8))
    assert spies and all(s.calls == 2 for s in spies)                 # two batches


def _ddp_worker(rank, world, out, rendezvous):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        x = _images(b=32, h=16, w=16)
        y = np.arange(32) % 10
        st = SpatialTransformer(n_classes=10, max_epochs=2, batch_size=4, lr=1e-2, seed=0)
        st.fit(x, y)                        # each rank reads its own half of the data
        torch.save({k: v for k, v in st.state_dict().items()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="no gloo")
def test_ddp_keeps_the_processes_in_step(tmp_path):
    import torch.multiprocessing as mp
    out = str(tmp_path / "st.pt")
    mp.spawn(_ddp_worker, args=(2, out, str(tmp_path / "rendezvous")), nprocs=2, join=True)
    a, b = (torch.load(f"{out}.{r}", weights_only=True) for r in (0, 1))
    init = SpatialTransformer(n_classes=10, seed=0).state_dict()
    assert not torch.equal(a["loc_head.bias"], init["loc_head.bias"])        # it trained
    for k in a:                                   # gradients were averaged: identical weights
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
