"""Spatial transformer: identity start, the grid convention, TPS, composition (the layer);
training, the estimator contract and the Alignment (side x the input image, side y the output
frame)."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone

from ddp_spy import needs_gloo, run_two_ranks, spy_on_training
from test_aligner_roundtrip import write_as_earlier_file
from mmalign import Aligner
from mmalign.attention import SpatialTransformerLayer, SpatialTransformerModule
from mmalign.attention.spatial_transformer import (
    SpatialTransformer,
    base_grid,
    digit_cnn,
    matrix_grid,
    params_to_matrix,
    tps_control_points,
    tps_grid,
)


def _images(b=3, h=12, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g)


def _frozen(b=8, h=12, w=10, **kwargs):
    """A fitted SpatialTransformer whose transform stays where it starts (localisation frozen)."""
    kwargs = {"n_classes": 2, "localization_lr_scale": 0, **kwargs}
    st = SpatialTransformer(train={"max_epochs": 1, "batch_size": 4}, **kwargs)
    return st.fit(_images(b, h, w), np.arange(b) % 2)


def _digits(n=600, size=16):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images[:n] / 16.0, dtype=torch.float32)[:, None]
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                           align_corners=False), d.target[:n]


# --------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("kind", ["affine", "projective", "attention", "tps"])
def test_starts_at_identity(kind):
    layer = SpatialTransformerLayer(transform=kind)
    x = _images()
    assert torch.allclose(layer(x), x, atol=1e-5)
    st = _frozen(transform=kind)                  # the estimator reads it out: pixel i <-> cell i
    a = st.align(x[0])
    assert np.array_equal(a.path()[:, 0], a.path()[:, 1])


@pytest.mark.parametrize("kind", ["affine", "projective", "attention", "tps"])
def test_initial_scale_starts_on_the_central_part_of_the_input(kind):
    # a 4 x 4 output at scale 0.5 on an 8 x 8 input: the output's pixel centres
    # (±0.75, ±0.25), halved, are exactly the centres of input pixels 2..5
    layer = SpatialTransformerLayer(transform=kind, output_size=(4, 4), initial_scale=0.5)
    x = _images(h=8, w=8)
    middle = x[..., 2:6, 2:6]
    whole = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear",
                                            align_corners=False)      # what the identity gives
    out = layer(x)
    grid = layer.localize(x)["grid"]
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-0.375, -0.375]), atol=1e-6)
    assert torch.allclose(grid[0, -1, -1], torch.tensor([0.375, 0.375]), atol=1e-6)
    assert torch.allclose(out, middle, atol=1e-5)       # 4 x 4 from the middle 4 x 4: pixel for pixel
    assert not torch.allclose(out, whole, atol=1e-3)
    assert SpatialTransformer(initial_scale=0.5).get_params()["initial_scale"] == 0.5
    default = SpatialTransformerLayer(transform=kind)
    assert torch.equal(default.initial_params(), default.identity_params())


@pytest.mark.parametrize("value", [0, -0.5, float("nan"), float("inf"), True, "0.5"])
def test_bad_initial_scale(value):
    st = SpatialTransformer(initial_scale=value, n_classes=2)      # stored, not checked
    assert st.initial_scale is value
    with pytest.raises(ValueError, match="initial_scale"):
        st.fit(_images(), [0, 1, 0])
    with pytest.raises(ValueError, match="initial_scale"):
        SpatialTransformerLayer(initial_scale=value)


def test_base_grid_is_pixel_centres_align_corners_false():
    g = base_grid(2, 4)
    assert torch.allclose(g[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(g[:, 0, 1], torch.tensor([-0.5, 0.5]))


def test_translation_moves_content_by_whole_pixels():
    layer = SpatialTransformerLayer(transform="affine")
    w = 10
    with torch.no_grad():  # sample the input one pixel to the right of each output pixel
        layer.loc_head.bias.copy_(torch.tensor([1.0, 0, 2.0 / w, 0, 1, 0]))
    x = _images(w=w)
    out = layer(x)
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
    layer = SpatialTransformerLayer(transform=kind, n_iterations=2)
    with torch.no_grad():
        if kind == "attention":
            layer.loc_head.bias.copy_(torch.tensor([1.0, 0.2, 0.0]))
        else:
            layer.loc_head.bias.copy_((tps_control_points(4) + torch.tensor([0.2, 0.0])).reshape(-1))
    loc = layer.localize(_images(b=1, h=16, w=16))
    shift = loc["grid"][0] - base_grid(16, 16)
    inner = shift[:, :6] if kind == "tps" else shift     # TPS composition clamps at the border
    assert torch.allclose(inner[..., 0], torch.full_like(inner[..., 0], 0.4), atol=1e-4)
    assert torch.allclose(inner[..., 1], torch.zeros_like(inner[..., 1]), atol=1e-4)


def test_gradients_reach_the_localisation_network():
    layer = SpatialTransformerLayer(transform="affine")
    x = _images()
    layer(x).pow(2).sum().backward()
    assert layer.loc_head.weight.grad.abs().sum() > 0
    assert torch.isfinite(layer.loc_head.weight.grad).all()


def test_the_layer_sits_inside_a_users_classifier():
    torch.manual_seed(0)
    net = torch.nn.Sequential(SpatialTransformerLayer(output_size=(8, 8)), digit_cnn(1, 3, width=4))
    x = _images(b=5, h=16, w=16)
    torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0, 1])).backward()
    assert net[0].loc_head.weight.grad.abs().sum() > 0
    module = SpatialTransformerModule(net[0], net[1])
    assert torch.equal(module(x), net(x)) and module.warp(x).shape == (5, 1, 8, 8)
    assert torch.equal(SpatialTransformerModule(net[0])(x), net[0](x))   # no classifier: the warp


@pytest.mark.parametrize("kwargs, name", [
    ({"transform": "rotation"}, "transform"),
    ({"n_iterations": 0}, "n_iterations"),
    ({"tps_grid_size": 1}, "tps_grid_size"),
    ({"output_size": (0, 4)}, "output_size"),
    ({"localization": "conv"}, "localization"),
])
def test_bad_layer_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SpatialTransformerLayer(**kwargs)


# --------------------------------------------------------------------------- the estimator
def test_construction_stores_the_arguments_and_does_nothing():
    localization = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(120, 8))
    st = SpatialTransformer(localization=localization, output_size=[6, 5], n_classes=3,
                            localization_features=8, train={"max_epochs": 2})
    assert st.localization is localization and st.output_size == [6, 5]
    assert not hasattr(st, "module_")
    copy = clone(st)
    assert copy.get_params(deep=False).keys() == st.get_params(deep=False).keys()
    assert copy.train == {"max_epochs": 2} and not hasattr(copy, "module_")
    with pytest.raises(ValueError, match="not fitted"):
        st.align(_images()[0])


def test_side_x_is_the_input_image_and_side_y_the_output_frame():
    st = _frozen(output_size=(6, 5), transform="affine")
    image = _images(b=1, h=12, w=10)[0]
    a = st.align(image)
    assert a.shape == (120, 30)                                      # (H * W, H_out * W_out)
    assert np.array_equal(a.path()[:, 1], np.arange(30))             # one input pixel per cell
    assert a.extras["grid"].shape == (6, 5, 2)
    assert a.extras["params"].shape == (1, 6)
    assert np.allclose(a.extras["matrix"], np.eye(3))
    assert a.extras["image_size"] == (12, 10) and not a.monotonic
    # cell j samples input location grid[j]: the path's pixel is the one nearest to it
    grid = a.extras["grid"].reshape(-1, 2)
    col = np.clip(np.round(((grid[:, 0] + 1) * 10 - 1) / 2), 0, 9)
    row = np.clip(np.round(((grid[:, 1] + 1) * 12 - 1) / 2), 0, 11)
    assert np.array_equal(a.path()[:, 0], row * 10 + col)


def test_align_takes_one_image_and_refuses_a_second_argument():
    st = _frozen()
    x = _images(b=4)
    with pytest.raises(TypeError, match=r"output frame.*\by\b"):
        st.align(x[0], x[1])
    with pytest.raises(TypeError, match=r"\bY\b"):
        st.align_batch(x, x)
    with pytest.raises(ValueError, match="one image.*align_batch"):
        st.align(x)
    assert st.align(x[0, 0]).shape == st.align(x[0]).shape        # (H, W) or (C, H, W)


def test_align_batch_equals_align_image_by_image():
    torch.manual_seed(0)
    st = SpatialTransformer(transform="projective", output_size=(7, 6), n_classes=2,
                            localization_lr_scale=1.0, train={"max_epochs": 2, "batch_size": 4,
                                                                "lr": 0.05})
    x = _images(b=8, h=12, w=10)
    st.fit(x, np.arange(8) % 2)
    batch = st.align_batch(x[:5])
    as_list = st.align_batch([x[i] for i in range(5)])
    assert len(batch) == len(as_list) == 5
    for i, (a, b) in enumerate(zip(batch, as_list)):
        single = st.align(x[i])
        for other in (a, b):
            assert other.shape == single.shape
            np.testing.assert_array_equal(other.path(), single.path())
            for key in ("grid", "params", "matrix"):
                np.testing.assert_allclose(other.extras[key], single.extras[key], rtol=1e-5, atol=1e-6)
            assert other.extras["image_size"] == single.extras["image_size"]
    mixed = st.align_batch([x[0], x[1, :, :8, :8], x[2]])           # a list may mix sizes
    assert [a.shape[0] for a in mixed] == [120, 64, 120]
    with pytest.raises(ValueError, match="images"):
        st.align_batch([])
    with pytest.raises(ValueError, match="batch"):
        st.align_batch(torch.rand(3, 12, 10).numpy()[0])


def test_fit_learns_digits_and_round_trips(tmp_path):
    x, y = _digits()
    st = SpatialTransformer(n_classes=10, train={"max_epochs": 4, "batch_size": 32, "lr": 2e-3,
                                                 "seed": 0})
    st.fit(x[:500], y[:500], validation=(x[500:], y[500:]))
    accuracy = (st.predict(x[500:]) == y[500:]).mean()
    assert accuracy > 0.6          # chance is 0.1
    assert isinstance(st.module_, SpatialTransformerModule)
    assert len(st.history_["train_loss"]) == len(st.history_["val_metric"]) == 4
    path = tmp_path / "st.npz"
    st.save(path)
    again = Aligner.load(path)
    assert np.array_equal(again.predict(x[500:]), st.predict(x[500:]))
    np.testing.assert_array_equal(again.warp(x[:3]), st.warp(x[:3]))
    assert st.warp(x[:3]).shape == (3, 1, 16, 16)


def test_files_written_when_the_estimator_was_a_torch_module_still_load(tmp_path):
    """The earlier form: flat training settings and the layer's state_dict keys at the top."""
    x, y = _digits(n=64)
    flat = {"max_epochs": 1, "batch_size": 32, "lr": 1e-3, "seed": 0, "device": "cpu"}
    st = SpatialTransformer(transform="tps", n_classes=10, output_size=(8, 8), train=dict(flat))
    st.fit(x, y).save(tmp_path / "st.npz")

    def old(key):
        return key.removeprefix("layer.")

    write_as_earlier_file(tmp_path / "st.npz", tmp_path / "old.npz", flat, drop=("classifier",), rename=old)
    with np.load(tmp_path / "old.npz") as npz:
        meta = json.loads(str(npz["__meta__"][()]))
    assert "loc_head.bias" in meta["state_dict"] and "tps_inverse" in meta["state_dict"]
    loaded = SpatialTransformer.load(tmp_path / "old.npz")
    assert loaded.train == flat and loaded.transform == "tps"
    np.testing.assert_array_equal(loaded.predict(x), st.predict(x))
    np.testing.assert_array_equal(loaded.align(x[0]).extras["grid"], st.align(x[0]).extras["grid"])


def test_a_given_classifier_is_the_head():
    torch.manual_seed(0)
    head = digit_cnn(1, 3, width=4)
    st = SpatialTransformer(n_classes=3, classifier=head, output_size=(8, 8),
                            train={"max_epochs": 1, "batch_size": 4})
    st.fit(_images(b=6, h=16, w=16), [0, 1, 2, 0, 1, 2])
    assert st.module_.classifier is head
    with pytest.raises(ValueError, match="n_classes"):
        SpatialTransformer(classifier=head).fit(_images(), [0, 1, 0])
    with pytest.raises(ValueError, match="classifier"):
        SpatialTransformer(n_classes=3, classifier="cnn").fit(_images(), [0, 1, 0])


def test_seeded_build_is_reproducible():
    a = SpatialTransformer(n_classes=10, train={"seed": 3})._build_module()
    b = SpatialTransformer(n_classes=10, train={"seed": 3})._build_module()
    c = SpatialTransformer(n_classes=10, train={"seed": 4})._build_module()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(a.classifier[0].weight, c.classifier[0].weight)


def test_inputs_not_modified():
    st = _frozen()
    x = _images()
    before = x.clone()
    st.align(x[0])
    st.align_batch(x)
    st.warp(x)
    st.predict(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("kwargs, name", [
    ({"transform": "rotation"}, "transform"),
    ({"n_iterations": 0}, "n_iterations"),
    ({"tps_grid_size": 1}, "tps_grid_size"),
    ({"output_size": (0, 4)}, "output_size"),
    ({"n_classes": 1}, "n_classes"),
    ({"localization_lr_scale": -0.1}, "localization_lr_scale"),
    ({"localization_lr_scale": float("nan")}, "localization_lr_scale"),
    ({"train": {"lr": 0}}, "train.lr"),
])
def test_bad_parameters_are_refused_by_fit(kwargs, name):
    st = SpatialTransformer(**{"n_classes": 2, **kwargs})
    with pytest.raises(ValueError, match=name):
        st.fit(_images(), [0, 1, 0])


def test_bad_images():
    st = _frozen(b=4, h=8, w=8, n_classes=10)
    x = _images()
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        st.warp(bad)
    with pytest.raises(ValueError, match="channels"):
        st.predict(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        st.predict(torch.rand(8))
    with pytest.raises(ValueError, match="labels"):
        SpatialTransformer(n_classes=10).fit(x, [0, 1, 10])
    with pytest.raises(ValueError, match="labels"):
        SpatialTransformer(n_classes=10).fit(x, [0, 1])
    with pytest.raises(ValueError, match="labels"):
        SpatialTransformer(n_classes=10).fit(x)
    with pytest.raises(ValueError, match="validation"):
        SpatialTransformer(n_classes=10).fit(x, [0, 1, 2], validation=x)
    with pytest.raises(ValueError, match="n_classes"):
        SpatialTransformer().fit(x, [0, 1, 0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    layer = SpatialTransformerLayer(transform="tps")
    with torch.no_grad():
        layer.loc_head.bias.add_(0.05)
    x = _images()
    cpu = layer(x)
    gpu = layer.to("cuda")(x.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_and_readout():
    x, y = _digits(n=64)
    st = SpatialTransformer(n_classes=10, train={"max_epochs": 1, "batch_size": 32, "device": "cuda"})
    st.fit(x, y)
    assert next(st.module_.parameters()).is_cuda
    on_gpu = st.predict(x), st.align(x[0]).extras["grid"]
    st.to("cpu")
    np.testing.assert_array_equal(st.predict(x), on_gpu[0])
    np.testing.assert_allclose(st.align(x[0]).extras["grid"], on_gpu[1], atol=1e-5)


# --------------------------------------------------------------------------- optimiser groups, DDP
def test_localization_learns_at_a_fraction_of_the_rate():
    """Adam's first step moves every parameter with a gradient by about its group's rate."""
    x, y = _digits(n=64, size=8)
    lr = 1e-2
    for scale in (0.1, 1.0):
        st = SpatialTransformer(n_classes=10, localization_lr_scale=scale,
                                train={"max_epochs": 1, "batch_size": 64, "lr": lr, "seed": 0})
        assert st.get_params()["localization_lr_scale"] == scale
        before = {k: v.clone() for k, v in st._ensure_module().state_dict().items()}
        st.fit(x, y)                      # continues from the module just built
        step = {k: float((st.module_.state_dict()[k] - before[k]).abs().max()) for k in before}
        assert step["layer.loc_head.bias"] == pytest.approx(scale * lr, rel=1e-3)
        assert step["classifier.0.weight"] == pytest.approx(lr, rel=1e-3)
    assert SpatialTransformer().localization_lr_scale == 0.3          # the default


def test_localization_lr_scale_zero_freezes_the_transform():
    x, y = _digits(n=64, size=8)
    st = SpatialTransformer(n_classes=10, localization_lr_scale=0,
                            train={"max_epochs": 2, "batch_size": 16, "lr": 1e-2})
    before = {k: v.clone() for k, v in st._ensure_module().state_dict().items()}
    st.fit(x, y)
    after = st.module_.state_dict()
    for k in before:
        moved = not torch.equal(before[k], after[k])
        assert moved == k.startswith("classifier."), k
    assert all(p.requires_grad for p in st.module_.parameters())   # frozen for the fit only


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
    import mmalign.nn.estimator
    import mmalign.nn.train

    spies = spy_on_training(monkeypatch)
    monkeypatch.setattr(mmalign.nn.estimator, "train_fit", mmalign.nn.train.fit)  # the spying fit
    st = SpatialTransformer(n_classes=10, train={"max_epochs": 1, "batch_size": 4, "seed": 0})
    st.fit(_images(b=8, h=16, w=16), np.arange(8))
    assert spies and all(s.calls == 2 for s in spies)                 # two batches


def _train_one_rank():
    x = _images(b=32, h=16, w=16)
    y = np.arange(32) % 10
    st = SpatialTransformer(n_classes=10, train={"max_epochs": 2, "batch_size": 4, "lr": 1e-2, "seed": 0})
    st.fit(x, y)                        # each rank reads its own half of the data
    return dict(st.module_.state_dict())


@needs_gloo
def test_ddp_keeps_the_processes_in_step(tmp_path):
    a, b = run_two_ranks(_train_one_rank, tmp_path)
    init = SpatialTransformer(n_classes=10, train={"seed": 0})._build_module().state_dict()
    assert not torch.equal(a["layer.loc_head.bias"], init["layer.loc_head.bias"])   # it trained
    for k in a:                                   # gradients were averaged: identical weights
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
