import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import mmalign  # noqa: E402
from mmalign.plot import plot_alignment, save_alignment_plot  # noqa: E402


@pytest.fixture
def problem():
    t_x = np.linspace(0, 1, 40)
    t_y = np.linspace(0, 1, 55) ** 1.3
    x = np.stack([np.sin(6 * t_x), np.cos(4 * t_x)], axis=1)
    y = np.stack([np.sin(6 * t_y), np.cos(4 * t_y)], axis=1)
    alignment = mmalign.dtw_path(x, y)
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    reference = np.stack([np.arange(40.0), np.interp(t_x, t_y, np.arange(55.0))], axis=1)
    return alignment, cost, reference


def test_save_writes_a_nontrivial_png(tmp_path, problem):
    alignment, cost, reference = problem
    out = tmp_path / "alignment.png"
    save_alignment_plot(alignment, out, cost=cost, reference=reference, title="toy")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_save_without_cost(tmp_path, problem):
    alignment, _, _ = problem
    out = tmp_path / "path_only.png"
    save_alignment_plot(alignment, str(out))
    assert out.stat().st_size > 5_000


def test_plot_draws_path_and_reference(problem):
    alignment, cost, reference = problem
    ax = Figure().add_subplot()
    returned = plot_alignment(alignment, cost=cost, reference=reference, ax=ax, title="T")
    assert returned is ax
    path_line, ref_line = ax.get_lines()
    np.testing.assert_array_equal(path_line.get_xdata(), alignment.path()[:, 0])
    np.testing.assert_array_equal(path_line.get_ydata(), alignment.path()[:, 1])
    np.testing.assert_allclose(ref_line.get_ydata(), reference[:, 1])
    assert ref_line.get_linestyle() == "--" and path_line.get_linestyle() == "-"
    # Cost drawn transposed: x along the horizontal axis.
    image = ax.get_images()[0]
    assert image.get_array().shape == (55, 40)
    assert ax.get_xlabel() == "x frames" and ax.get_ylabel() == "y frames" and ax.get_title() == "T"


def test_plot_in_seconds(problem):
    alignment, cost, _ = problem
    ax = plot_alignment(alignment, cost=cost, ax=Figure().add_subplot(), frame_rate=10.0)
    assert ax.get_xlabel() == "x time (s)"
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), alignment.path()[:, 0] / 10.0)
    assert ax.get_xlim() == pytest.approx((-0.05, 3.95))


def test_plot_does_not_modify_inputs(problem):
    alignment, cost, reference = problem
    cost_before, ref_before = cost.copy(), reference.copy()
    plot_alignment(alignment, cost=cost, reference=reference, ax=Figure().add_subplot(), frame_rate=5.0)
    np.testing.assert_array_equal(cost, cost_before)
    np.testing.assert_array_equal(reference, ref_before)


def test_plot_rejects_bad_inputs(problem):
    alignment, cost, reference = problem
    ax = Figure().add_subplot()
    with pytest.raises(ValueError, match="cost"):
        plot_alignment(alignment, cost=cost.T, ax=ax)
    with pytest.raises(ValueError, match="reference"):
        plot_alignment(alignment, reference=reference[:, :1], ax=ax)
    with pytest.raises(ValueError, match="reference"):
        plot_alignment(alignment, reference=np.array([[0.0, np.nan]]), ax=ax)
    with pytest.raises(ValueError, match="frame_rate"):
        plot_alignment(alignment, ax=ax, frame_rate=0)


def test_plot_glimpses_draws_track_patches_and_box():
    import torch

    from mmalign.attention.glimpse import GlimpseAttention
    from mmalign.plot import plot_glimpses

    ram = GlimpseAttention(image_size=(20, 20), n_glimpses=3, glimpse_size=4, n_scales=2,
                           train={"max_epochs": 1})
    ram.fit(torch.rand(4, 20, 20), [0, 1, 2, 3])
    image = torch.rand(20, 20)
    a = ram.align(image)
    ax = plot_glimpses(image, a, ax=Figure().add_subplot(), box=(2, 3, 9, 12), title="toy")
    track = ax.lines[0].get_xydata()
    assert np.allclose(track, a.extras["centres_px"])
    assert len(ax.patches) == 3 + 1 + 1            # 3 finest squares, the first's coarse one, the box
    assert ax.get_title() == "toy"
    with pytest.raises(ValueError, match="centres_px"):
        plot_glimpses(image, mmalign.Alignment(path=[[0, 0]], shape=(1, 1)), ax=Figure().add_subplot())


def test_plot_spatial_transform_outline_is_the_sampled_frame():
    import torch

    from mmalign.attention.spatial_transformer import SpatialTransformer
    from mmalign.plot import plot_spatial_transform

    # sample the central half of the input (x, y in [-0.5, 0.5]): the transform starts there
    # and, its localisation frozen (localization_lr_scale=0), stays there
    st = SpatialTransformer(output_size=(10, 10), initial_scale=0.5, n_classes=2,
                            localization_lr_scale=0, train={"max_epochs": 1})
    st.fit(torch.rand(4, 1, 20, 20), [0, 1, 0, 1])
    x = torch.rand(1, 1, 20, 20)
    a = st.align(x[0])
    ax = plot_spatial_transform(x[0], a, st.warp(x)[0], ax=Figure().add_subplot(), n_lines=2)
    assert len(ax.images) == 2
    outline = ax.lines[0].get_xydata()
    # the frame's edges at +-0.5 normalised are pixels 4.5 and 14.5 of the 20-pixel input
    assert np.isclose(outline[:, 0].min(), 4.5) and np.isclose(outline[:, 0].max(), 14.5)
    assert np.isclose(outline[:, 1].min(), 4.5) and np.isclose(outline[:, 1].max(), 14.5)
    assert len(ax.lines) == 1 + 2 + 2
    with pytest.raises(ValueError, match="size"):
        plot_spatial_transform(x[0], a, torch.rand(8, 8), ax=Figure().add_subplot())
