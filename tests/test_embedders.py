"""Token, frame and ViT-style patch embedders; audio / sensor frame features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmalign.nn import (FrameEmbedding, PatchEmbedding, TokenEmbedding, audio_frames, frame_signal,
                        sinusoidal_positions)

torch.set_num_threads(1)


# ------------------------------------------------------------------ tokens
def test_token_embedding_is_table_plus_sinusoidal_positions():
    torch.manual_seed(0)
    emb = TokenEmbedding(10, 6, padding_idx=0)
    ids = torch.tensor([[4, 5, 0], [9, 9, 9]])
    out = emb(ids)
    expected = emb.table.weight[ids] + sinusoidal_positions(torch.arange(3), 6)[None]
    assert torch.allclose(out, expected)
    assert torch.equal(emb.table.weight[0], torch.zeros(6))          # padding row
    shifted = emb(ids, positions=torch.arange(5, 8))
    assert torch.allclose(shifted - emb.table.weight[ids], sinusoidal_positions(torch.arange(5, 8), 6)[None])


def test_token_embedding_learned_and_no_positions():
    torch.manual_seed(0)
    learned = TokenEmbedding(10, 4, positions="learned", max_len=3)
    ids = torch.tensor([[4, 5, 6]])
    assert torch.allclose(learned(ids), learned.table.weight[ids] + learned.pos.table.weight[None, :3])
    with pytest.raises(ValueError, match="max_len"):
        learned(torch.tensor([[4, 5, 6, 7]]))
    plain = TokenEmbedding(10, 4, positions=None)
    assert torch.equal(plain(ids), plain.table.weight[ids])


@pytest.mark.parametrize("kw, match", [
    (dict(num_embeddings=0, d_model=4), "num_embeddings"),
    (dict(num_embeddings=5, d_model=4, padding_idx=7), "padding_idx"),
    (dict(num_embeddings=5, d_model=4, positions="rotary"), "positions"),
])
def test_token_embedding_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        TokenEmbedding(**kw)


def test_token_embedding_bad_ids():
    emb = TokenEmbedding(5, 4)
    with pytest.raises(ValueError, match="ids"):
        emb(torch.tensor([[1, 5]]))
    with pytest.raises(ValueError, match="ids"):
        emb(torch.tensor([[1.0, 2.0]]))


# ------------------------------------------------------------------ frames
def test_frame_embedding_linear_is_projection_plus_positions():
    torch.manual_seed(0)
    emb = FrameEmbedding(3, 4)
    x = torch.randn(2, 5, 3)
    expected = x @ emb.proj.weight.T + emb.proj.bias + sinusoidal_positions(torch.arange(5), 4)[None]
    assert torch.allclose(emb(x), expected, atol=1e-6)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_frame_embedding_padding_does_not_leak(kernel):
    torch.manual_seed(0)
    emb = FrameEmbedding(3, 8, conv_kernel=kernel)
    x = torch.randn(2, 9, 3)
    lengths = torch.tensor([9, 4])
    out = emb(x, lengths)
    alone = emb(x[1:, :4])
    assert torch.allclose(out[1, :4], alone[0], atol=1e-6)
    noisy = x.clone()
    noisy[1, 4:] = 100.0                                             # garbage in the padding
    assert torch.allclose(emb(noisy, lengths)[1, :4], out[1, :4], atol=1e-6)
    assert torch.equal(x, x.clone())


def test_frame_embedding_conv_sees_neighbours():
    torch.manual_seed(0)
    emb = FrameEmbedding(2, 4, conv_kernel=3, positions=None)
    x = torch.zeros(1, 7, 2)
    x[0, 3] = 1.0
    changed = (emb(x) - emb(torch.zeros(1, 7, 2))).abs().sum(-1)[0] > 1e-7
    assert changed.tolist() == [False, False, True, True, True, False, False]


@pytest.mark.parametrize("kw, match", [
    (dict(input_dim=0, d_model=4), "input_dim"),
    (dict(input_dim=3, d_model=4, conv_kernel=2), "conv_kernel"),
    (dict(input_dim=3, d_model=4, positions="absolute"), "positions"),
])
def test_frame_embedding_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        FrameEmbedding(**kw)


def test_frame_embedding_bad_input_shape():
    with pytest.raises(ValueError, match="x must have shape"):
        FrameEmbedding(3, 4)(torch.randn(2, 5, 4))


# ------------------------------------------------------------------ patches
def test_patchify_is_row_major_and_round_trips():
    emb = PatchEmbedding((8, 12), 4, in_channels=2, d_model=5)
    assert emb.grid == (2, 3) and emb.n_patches == 6 and emb.patch_dim == 32
    images = torch.arange(2 * 2 * 8 * 12, dtype=torch.float32).reshape(2, 2, 8, 12)
    patches = emb.patchify(images)
    assert patches.shape == (2, 6, 32)
    # patch 4 = grid row 1, column 1: rows 4..7, columns 4..7, channel-major
    assert torch.equal(patches[1, 4], images[1, :, 4:8, 4:8].reshape(-1))
    assert torch.equal(emb.unpatchify(patches), images)


def test_patch_embedding_learned_2d_positions():
    torch.manual_seed(0)
    emb = PatchEmbedding(8, 4, in_channels=1, d_model=3)
    pos = emb.positions()
    for k in range(4):
        r, c = divmod(k, 2)
        assert torch.allclose(pos[k], emb.row.weight[r] + emb.col.weight[c])
    images = torch.rand(2, 8, 8)                                        # (B, H, W) for one channel
    out = emb(images)
    assert torch.allclose(out, emb.proj(emb.patchify(images)) + pos[None])
    out.sum().backward()
    assert emb.row.weight.grad.abs().sum() > 0 and emb.col.weight.grad.abs().sum() > 0


def test_patches_in_boxes():
    emb = PatchEmbedding(16, 4, d_model=2)
    boxes = emb.patch_boxes()
    assert boxes[5].tolist() == [4.0, 4.0, 8.0, 8.0]                    # row 1, column 1
    m = emb.patches_in_boxes([[3.0, 0.0, 5.0, 4.0],                     # straddles columns 0 and 1
                              [4.0, 4.0, 8.0, 8.0],                     # exactly patch 5 (edges touch only)
                              [np.nan] * 4])
    assert m.shape == (3, 16)
    assert m[0].nonzero()[:, 0].tolist() == [0, 1]
    assert m[1].nonzero()[:, 0].tolist() == [5]
    assert not m[2].any()


@pytest.mark.parametrize("kw, match", [
    (dict(image_size=30, patch_size=8), "multiple"),
    (dict(image_size=(16, 16, 3), patch_size=8), "image_size"),
    (dict(image_size=16, patch_size=0), "patch_size"),
])
def test_patch_embedding_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        PatchEmbedding(**kw)


def test_patch_embedding_bad_images():
    emb = PatchEmbedding(16, 8, in_channels=3, d_model=4)
    with pytest.raises(ValueError, match="images must have shape"):
        emb(torch.rand(2, 16, 16))
    with pytest.raises(ValueError, match="boxes"):
        emb.patches_in_boxes([1.0, 2.0, 3.0])


# ------------------------------------------------------------------ features
def test_audio_frames_are_standardised_mfccs():
    from mmalign.features.audio import mfcc

    sr = 8000
    t = np.arange(sr) / sr
    y = (np.sin(2 * np.pi * 300 * t) * np.linspace(0, 1, sr)).astype(np.float32)
    f = audio_frames(y, sr, n_mfcc=13, hop_length=200)
    raw = mfcc(y, sr, n_mfcc=13, hop_length=200)
    assert f.shape == raw.shape and f.dtype == np.float32
    assert np.allclose(f.mean(0), 0.0, atol=1e-4) and np.allclose(f.std(0), 1.0, atol=1e-3)
    assert np.allclose(audio_frames(y, sr, n_mfcc=13, hop_length=200, standardize=False), raw, atol=1e-4)
    assert audio_frames(y, sr, n_mfcc=13, hop_length=200, deltas=True).shape == (raw.shape[0], 26)
    emb = FrameEmbedding(13, 8)
    assert emb(torch.from_numpy(f)[None]).shape == (1, raw.shape[0], 8)


def test_frame_signal_by_hand():
    x = np.arange(12).reshape(6, 2)                                      # 6 samples, 2 channels
    f = frame_signal(x, frame_length=3, hop_length=2)
    assert f.shape == (2, 6)
    assert f[1].tolist() == [4, 5, 6, 7, 8, 9]
    assert frame_signal(np.arange(6), 2).tolist() == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="frame_length"):
        frame_signal(x, frame_length=7)
    with pytest.raises(ValueError, match="NaN"):
        frame_signal([1.0, np.nan, 2.0], frame_length=1)
    with pytest.raises(ValueError, match="hop_length"):
        frame_signal(x, 2, hop_length=0)
