"""Synthetic objects: determinism, shapes, labels, balance and real per-category variety."""

from __future__ import annotations

import pytest
import torch

from tgsage.data.synthetic import (
    CATEGORY_NAMES,
    NUM_OBJECTS,
    RenderConfig,
    SyntheticObjects,
    balanced_objects,
    make_synthetic_objects,
)
from tgsage.errors import DataError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def splits():
    return make_synthetic_objects(128, 64, 64, resolution=32, seed=3)


def test_shapes_dtypes_and_label_ranges(splits) -> None:
    for part, n in ((splits.train, 128), (splits.val, 64), (splits.test, 64)):
        assert part.images.shape == (n, 3, 32, 32)
        assert part.images.dtype == torch.uint8
        assert part.labels.dtype == torch.int64
        assert part.num_classes == 8 and part.class_names == CATEGORY_NAMES
        assert int(part.labels.min()) >= 0 and int(part.labels.max()) < 8
        obj, cat = part.groups["object"], part.groups["category"]
        assert torch.equal(cat, obj // 8)
        assert torch.equal(part.labels, cat)
        assert int(obj.min()) >= 0 and int(obj.max()) < NUM_OBJECTS
    # 128 training images cycle through the 64 objects exactly twice
    assert torch.equal(
        torch.bincount(splits.train.groups["object"], minlength=64), torch.full((64,), 2)
    )


def test_deterministic_from_seed(splits) -> None:
    again = make_synthetic_objects(128, 64, 64, resolution=32, seed=3)
    for a, b in ((splits.train, again.train), (splits.val, again.val), (splits.test, again.test)):
        assert torch.equal(a.images, b.images)
        assert torch.equal(a.groups["object"], b.groups["object"])
    other = make_synthetic_objects(128, 64, 0, resolution=32, seed=4)
    assert not torch.equal(other.train.images, splits.train.images)
    assert other.test is None


def test_splits_do_not_share_images(splits) -> None:
    tr = splits.train.images.flatten(1).float()
    va = splits.val.images.flatten(1).float()
    d = torch.cdist(va, tr)
    assert float(d.min()) > 100.0  # far from any identical copy


def test_object_labels_option() -> None:
    s = make_synthetic_objects(64, 64, resolution=16, seed=0, label="object")
    assert s.train.num_classes == 64 and len(s.train.class_names) == 64
    assert torch.equal(s.train.labels, s.train.groups["object"])
    assert sorted(s.train.labels.tolist()) == list(range(64))


def test_resolution_64() -> None:
    s = make_synthetic_objects(8, 8, resolution=64, seed=1)
    assert s.train.images.shape == (8, 3, 64, 64)


def test_same_object_varies_in_pose_and_background() -> None:
    lib = SyntheticObjects(0)
    imgs = lib.render(torch.zeros(16, dtype=torch.long), resolution=32, seed=5).float()
    diffs = (imgs[:, None] - imgs[None]).abs().mean(dim=(2, 3, 4))
    off = diffs[~torch.eye(16, dtype=torch.bool)]
    assert float(off.min()) > 5.0  # every pair differs by > 5 grey levels on average


def test_object_is_visible_against_background() -> None:
    """Rendering the same pose/background seed with no object differs only where the object is."""
    lib = SyntheticObjects(0)
    no_obj = SyntheticObjects(0)
    no_obj.parts = no_obj.parts.clone()
    no_obj.parts[:, :, 2:4] = 0  # remove every part
    ids = torch.arange(64)
    with_o = lib.render(ids, 32, seed=9).float()
    without = no_obj.render(ids, 32, seed=9).float()
    changed = ((with_o - without).abs().amax(dim=1) > 20).float().mean(dim=(1, 2))
    assert float(changed.min()) > 0.01  # each object covers some pixels
    assert float(changed.max()) < 0.6  # but is not the whole image


def test_objects_share_structure_within_category() -> None:
    """Nearest neighbour (in shape-parameter space) of every object is in its own category."""
    lib = SyntheticObjects(7)
    feats = lib.parts[:, :, :4].flatten(1)
    d = torch.cdist(feats, feats) + torch.eye(NUM_OBJECTS) * 1e9
    nn_cat = lib.category_of_object[d.argmin(dim=1)]
    assert torch.equal(nn_cat, lib.category_of_object)
    # ... yet the 8 objects of a category are all distinct members
    within = d.view(8, 8, 8, 8).diagonal(dim1=0, dim2=2)  # (8, 8, cat)
    assert float(within.min()) > 0.05


def test_balanced_objects_counts() -> None:
    ids = balanced_objects(200, seed=1)
    counts = torch.bincount(ids, minlength=64)
    assert int(counts.max()) - int(counts.min()) <= 1


def test_config_changes_images() -> None:
    a = SyntheticObjects(0).render(torch.arange(8), 16, seed=0)
    b = SyntheticObjects(0, RenderConfig(rotation=0.0)).render(torch.arange(8), 16, seed=0)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [dict(label="colour"), dict(n_train=-1), dict(resolution=4)])
def test_bad_arguments_raise_data_error(kwargs) -> None:
    args = dict(n_train=4, n_val=4) | kwargs
    with pytest.raises(DataError):
        make_synthetic_objects(**args)
