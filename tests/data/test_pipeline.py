"""Input pipeline: vectorised crop/flip and standardisation against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.data.base import ImageSet
from tgsage.data.pipeline import (
    Augmentation,
    BatchIterator,
    crop_flip,
    get_augmentation,
    iterate_batches,
    standardize,
)
from tgsage.errors import ConfigError

torch.set_num_threads(1)


def _imageset(n: int = 37, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 5
    return ImageSet(images=images, labels=labels, num_classes=5, name="rand")


def _reference_crop_flip(x: np.ndarray, pad: int, offsets, flips) -> np.ndarray:
    """Per-image loop: pad with zeros, slice the window, reverse columns if flipped."""
    n, c, h, w = x.shape
    out = np.empty_like(x)
    for i in range(n):
        p = np.zeros((c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
        p[:, pad : pad + h, pad : pad + w] = x[i]
        dy, dx = (pad, pad) if offsets is None else (int(offsets[i, 0]), int(offsets[i, 1]))
        crop = p[:, dy : dy + h, dx : dx + w]
        if flips is not None and flips[i]:
            crop = crop[:, :, ::-1]
        out[i] = crop
    return out


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 3),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    pad=st.integers(0, 4),
    seed=st.integers(0, 10_000),
    use_flip=st.booleans(),
)
def test_crop_flip_matches_per_image_reference(n, c, h, w, pad, seed, use_flip):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=g)
    flips = torch.rand(n, generator=g) < 0.5 if use_flip else None
    got = crop_flip(x, pad, offsets, flips).numpy()
    want = _reference_crop_flip(
        x.numpy(), pad, offsets.numpy(), None if flips is None else flips.numpy()
    )
    np.testing.assert_array_equal(got, want)


def test_crop_extremes_shift_content():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    top_left = crop_flip(x, 2, torch.tensor([[0, 0]]), None)[0, 0]
    # Window starts two rows/cols into the zero border: original pixel (0,0) lands at (2,2).
    assert top_left[2, 2] == 0 and top_left[3, 3] == 5 and top_left[:2].sum() == 0
    bottom_right = crop_flip(x, 2, torch.tensor([[4, 4]]), None)[0, 0]
    assert bottom_right[0, 0] == 10 and bottom_right[2:].sum() == 0


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 5), c=st.integers(1, 3), hw=st.integers(1, 6), seed=st.integers(0, 999))
def test_standardize_matches_numpy_tf_semantics(n, c, hw, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, c, hw, hw)).astype(np.uint8)
    x[0] = 77  # one constant image: std floor applies, output must be zeros
    want = np.empty((n, c, hw, hw), dtype=np.float64)
    for i in range(n):
        img = x[i].astype(np.float64)
        adj = max(img.std(), 1.0 / np.sqrt(img.size))
        want[i] = (img - img.mean()) / adj
    got = standardize(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.all(got[0] == 0)


def test_batches_cover_permutation_and_are_seeded():
    ds = _imageset(n=37)
    batches = list(iterate_batches(ds, 10, device="cpu", augment="none", shuffle=True, seed=3))
    assert [b[0].shape[0] for b in batches] == [10, 10, 10, 7]
    labels = torch.cat([b[1] for b in batches])
    assert sorted(labels.tolist()) == sorted(ds.labels.tolist())
    # Every yielded image equals the standardised source image with the same label order.
    x = torch.cat([b[0] for b in batches])
    std_all = standardize(ds.images)
    match = (x[:, None] - std_all[None]).abs().flatten(2).amax(2) < 1e-5  # (37, 37)
    assert torch.all(match.sum(1) >= 1)
    assert labels.tolist() != ds.labels.tolist()  # actually shuffled
    again = list(iterate_batches(ds, 10, device="cpu", augment="cifar", shuffle=True, seed=3))
    again2 = list(iterate_batches(ds, 10, device="cpu", augment="cifar", shuffle=True, seed=3))
    other = list(iterate_batches(ds, 10, device="cpu", augment="cifar", shuffle=True, seed=4))
    for (a, la), (b, lb) in zip(again, again2, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(again, other, strict=True))


def test_epochs_differ_and_drop_last():
    ds = _imageset(n=25)
    it = BatchIterator(ds, 10, device="cpu", shuffle=True, seed=0, drop_last=True)
    assert len(it) == 2
    e0 = torch.cat([y for _, y in it])
    e1 = torch.cat([y for _, y in it.with_epoch(1)])
    assert e0.numel() == 20 and not torch.equal(e0, e1)


def test_augmented_batch_is_crop_flip_of_source():
    """With shuffle off, each augmented image must be some crop/flip of its source image."""
    ds = _imageset(n=6, h=6, w=6)
    ((x, _),) = list(iterate_batches(ds, 6, device="cpu", augment="cifar", seed=1))
    src = ds.images.numpy()
    for i in range(6):
        cands = []
        for dy in range(9):
            for dx in range(9):
                for fl in (False, True):
                    ref = _reference_crop_flip(src[i : i + 1], 4, np.array([[dy, dx]]), [fl])
                    cands.append(standardize(torch.from_numpy(ref))[0])
        assert min(float((x[i] - c).abs().max()) for c in cands) < 1e-5


def test_channels_last_and_unit_normalisation():
    ds = _imageset(n=4)
    ((x, _),) = list(
        iterate_batches(
            ds, 4, device="cpu", augment=Augmentation(normalize="unit"), channels_last=True
        )
    )
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, ds.images.float() / 255)


def test_unknown_augmentation_names_choices():
    with pytest.raises(ConfigError, match="cifar"):
        get_augmentation("bogus")


def test_start_batch_regenerates_the_same_batches():
    ds = _imageset(n=50)
    kw = {"device": "cpu", "augment": "cifar", "shuffle": True, "seed": 9, "epoch": 2}
    full = list(iterate_batches(ds, 8, **kw))
    tail = list(iterate_batches(ds, 8, start_batch=3, **kw))
    assert len(tail) == len(full) - 3
    for (a, la), (b, lb) in zip(full[3:], tail, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_users_register_their_own_augmentation_preset_by_name() -> None:
    from tgsage.data.pipeline import AUGMENTATIONS

    mine = Augmentation(pad=2, flip=False, normalize="unit")
    AUGMENTATIONS.register("pad2_unit", mine)
    try:
        assert get_augmentation("pad2_unit") is mine
        with pytest.raises(ConfigError, match="already registered"):
            AUGMENTATIONS.register("pad2_unit", Augmentation())
    finally:
        AUGMENTATIONS.unregister("pad2_unit")
    with pytest.raises(ConfigError, match="unknown augmentation 'pad2_unit'.*cifar"):
        get_augmentation("pad2_unit")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_cuda_on_a_cpu_only_torch_is_a_config_error(device: str) -> None:
    """--device cuda:3 on a CPU-only torch was an AssertionError deep inside torch."""
    from tgsage.data.pipeline import resolve_device

    with pytest.raises(ConfigError, match=f"device '{device}': this torch sees no CUDA GPU"):
        resolve_device(device)


def test_device_names_are_checked() -> None:
    from tgsage.data.pipeline import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="'gpu' is not a device name"):
        resolve_device("gpu")
    if torch.cuda.is_available():  # an index past the GPUs there are
        with pytest.raises(ConfigError, match="only"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
