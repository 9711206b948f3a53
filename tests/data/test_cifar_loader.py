"""CIFAR loader on small generated files in the official python-version format."""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_fakes import make_archive, make_cifar10, make_cifar100

from tgsage.data.cifar import download_cifar, load_cifar, read_cifar_file, split_indices
from tgsage.errors import DataError


def _as_images(flat: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(flat.reshape(-1, 3, 32, 32))


@pytest.mark.parametrize("bytes_keys,protocol", [(False, 4), (True, 4), (True, 2)])
def test_cifar10_roundtrip(tmp_path: Path, bytes_keys: bool, protocol: int) -> None:
    ref = make_cifar10(tmp_path, n_per_batch=20, bytes_keys=bytes_keys, protocol=protocol)
    s = load_cifar("cifar10", tmp_path, seed=1)
    assert len(s.train) == 90 and len(s.val) == 10 and len(s.test) == 20
    assert s.num_classes == 10 and s.train.class_names[3] == "class3"
    # train + val together are exactly the training files, each image with its label
    tr, va = split_indices(100, None, seed=1)
    x_all, y_all = _as_images(ref["train_x"]), torch.as_tensor(ref["train_y"])
    assert torch.equal(s.train.images, x_all[tr]) and torch.equal(s.val.images, x_all[va])
    assert torch.equal(s.train.labels, y_all[tr]) and torch.equal(s.val.labels, y_all[va])
    assert torch.equal(s.test.images, _as_images(ref["test_x"]))
    assert torch.equal(s.test.labels, torch.as_tensor(ref["test_y"]))
    assert s.train.images.dtype == torch.uint8 and s.train.labels.dtype == torch.int64
    # channel-major: the first 1024 bytes of a row are the red plane
    assert torch.equal(s.test.images[0, 0].flatten(), torch.from_numpy(ref["test_x"][0, :1024]))


def test_split_is_seeded_and_disjoint() -> None:
    a_tr, a_va = split_indices(1000, None, seed=0)
    _b_tr, b_va = split_indices(1000, None, seed=0)
    _c_tr, c_va = split_indices(1000, None, seed=1)
    assert torch.equal(a_va, b_va) and not torch.equal(a_va, c_va)
    assert len(a_va) == 100 and len(a_tr) == 900
    assert set(a_tr.tolist()).isdisjoint(a_va.tolist())
    assert sorted(a_tr.tolist() + a_va.tolist()) == list(range(1000))
    assert len(split_indices(50000, None, 0)[1]) == 5000  # the paper's 45k / 5k
    assert len(split_indices(1000, 37, 0)[1]) == 37


def test_cifar10_subset_of_batches_warns(tmp_path: Path) -> None:
    make_cifar10(tmp_path, n_per_batch=10, batches=(1, 2))
    with pytest.warns(UserWarning, match="data_batch_3"):
        s = load_cifar("cifar-10", tmp_path / "cifar-10-batches-py", val_size=4)
    assert len(s.train) == 16 and len(s.val) == 4


def test_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    ref = make_cifar100(tmp_path, bytes_keys=True)
    s = load_cifar("cifar100", tmp_path, val_size=6)
    assert s.num_classes == 100 and len(s.train) == 54 and len(s.test) == 20
    _x, fine, coarse = ref["test"]
    assert torch.equal(s.test.labels, torch.from_numpy(fine))
    assert torch.equal(s.test.groups["coarse"], torch.from_numpy(coarse))
    assert s.test.class_names[7] == "f7"
    c = load_cifar("cifar100", tmp_path, val_size=6, label="coarse")
    assert c.num_classes == 20 and torch.equal(c.test.labels, torch.from_numpy(coarse))
    assert c.test.class_names[2] == "c2"


def test_wrong_directory_names_missing_file_and_fix(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"data_batch_1.*tar -xzf cifar-10-python.tar.gz.*download=True"
    ):
        load_cifar("cifar10", tmp_path / "nowhere")
    with pytest.raises(DataError, match="'train'"):
        load_cifar("cifar100", tmp_path)


@pytest.mark.filterwarnings("ignore:CIFAR-10")
def test_unknown_name_and_bad_contents(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar10"):
        load_cifar("cifar1000", tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with (folder / "data_batch_1").open("wb") as fh:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, fh)
    with pytest.raises(DataError, match="3072"):
        load_cifar("cifar10", tmp_path, val_size=1)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    p = tmp_path / "data_batch_1"
    with p.open("wb") as fh:
        pickle.dump({"data": _Evil()}, fh)
    with pytest.raises(DataError, match="not allowed"):
        read_cifar_file(p)


def _fake_archive(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "src"
    make_cifar10(src, n_per_batch=10)
    archive = make_archive(src, "cifar-10-batches-py", tmp_path / "fake.tar.gz")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_verifies_checksum_and_extracts(tmp_path: Path) -> None:
    archive, md5 = _fake_archive(tmp_path)
    root = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_cifar("cifar10", root, download=True, url=archive.as_uri(), md5=md5)
    assert len(s.train) + len(s.val) == 50
    assert (root / "cifar-10-python.tar.gz").is_file()
    # a second call reuses the extracted folder (no download)
    s2 = load_cifar("cifar10", root, download=True, url="file:///nonexistent", md5=md5)
    assert torch.equal(s2.train.images, s.train.images)


def test_download_checksum_mismatch(tmp_path: Path) -> None:
    archive, _ = _fake_archive(tmp_path)
    root = tmp_path / "cache"
    with pytest.raises(DataError, match=r"checksum mismatch.*expected MD5 0{32}"):
        download_cifar("cifar10", root, url=archive.as_uri(), md5="0" * 32)
    assert not (root / "cifar-10-python.tar.gz").exists()  # corrupt file removed


def test_download_unreachable(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download"):
        download_cifar("cifar100", tmp_path, url=(tmp_path / "missing.tar.gz").as_uri())
