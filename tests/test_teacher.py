"""Teachers from every source, the teacher file format and the probe-fingerprint refusal."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy.spatial.distance import pdist, squareform

from tgsage.activations import collect_activations, layer_chunks
from tgsage.data.probe import ProbeSet
from tgsage.data.simulate import simulate_recording
from tgsage.errors import DataError, InputError, ProbeMismatchError
from tgsage.features import HookedFeatures
from tgsage.rsa import RDMs
from tgsage.teacher import (
    Teacher,
    load_rdm_file,
    network_rdms,
    teacher_from_network,
    teacher_from_rdms,
    teacher_from_recording,
)


def test_network_teacher_matches_scipy_on_its_activations(tiny_teacher_net, tiny_probe) -> None:
    teacher = teacher_from_network(tiny_teacher_net, tiny_probe, subsamples=None, device="cpu")
    assert teacher.layers == ("stack1", "stack2", "stack3")
    assert teacher.rdms.n_conditions == len(tiny_probe)
    feats = collect_activations(tiny_teacher_net, tiny_probe.images, device="cpu")
    for i, name in enumerate(teacher.layers):
        expected = pdist(feats[name].double().numpy(), "correlation")
        np.testing.assert_allclose(teacher.rdms.numpy()[i], expected, atol=1e-5)


def test_grouped_network_teacher_averages_within_objects(tiny_teacher_net, tiny_probe) -> None:
    teacher = teacher_from_network(
        tiny_teacher_net, tiny_probe, grouping="category", subsamples=None, device="cpu"
    )
    labels = tiny_probe.labelings["category"].numpy()
    feats = collect_activations(tiny_teacher_net, tiny_probe.images, device="cpu")
    order = np.unique(labels)
    means = np.stack([feats["stack2"].double().numpy()[labels == g].mean(0) for g in order])
    assert teacher.rdms.conditions == tuple(order.tolist())
    np.testing.assert_allclose(teacher.rdms.numpy()[1], pdist(means, "correlation"), atol=1e-5)


def test_layer_chunks_respect_budget() -> None:
    chunks = layer_chunks(
        {"a": 100, "b": 100, "c": 300, "d": 10}, n_images=10, budget_bytes=4 * 10 * 250
    )
    assert chunks == [["a", "b"], ["c"], ["d"]]


def test_per_image_rdms_identical_with_tiny_memory_budget(
    tiny_teacher_net, tiny_probe, monkeypatch
) -> None:
    full = network_rdms(tiny_teacher_net, tiny_probe, device="cpu")
    monkeypatch.setattr("tgsage.teacher.memory_budget", lambda: 1)  # one layer per pass
    chunked = network_rdms(tiny_teacher_net, tiny_probe, device="cpu")
    np.testing.assert_allclose(chunked.numpy(), full.numpy(), atol=1e-7)


def test_any_module_with_named_layers(tiny_probe) -> None:
    torch.manual_seed(0)
    plain = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(8)
    )
    plain(torch.zeros(1, 3, 16, 16))
    teacher = teacher_from_network(plain, tiny_probe, layers=["0", "1"], subsamples=3, device="cpu")
    assert teacher.layers == ("0", "1")
    assert teacher.rdms.metadata["subsamples"] == 3
    with pytest.raises(InputError, match="not submodules"):
        HookedFeatures(plain, ["nope"])
    with pytest.raises(InputError, match="name the layers"):
        teacher_from_network(plain, tiny_probe)


def test_recording_teacher_with_noise_ceiling(tiny_teacher_net, tiny_probe, tmp_path) -> None:
    feats = collect_activations(tiny_teacher_net, tiny_probe.images, device="cpu")
    rec = simulate_recording(
        {"stack2": feats["stack2"], "stack3": feats["stack3"]},
        {"V4": "stack2", "IT": "stack3"},
        sites_per_region=30,
        n_repetitions=6,
        noise=0.5,
        seed=1,
        stimulus_ids=tiny_probe.stimulus_ids,
    )
    path = rec.to_netcdf(tmp_path / "rec.nc")
    from tgsage.data.neural import load_recording

    shuffled = load_recording(path).select_stimuli(np.arange(len(tiny_probe))[::-1].copy())
    teacher = teacher_from_recording(shuffled, tiny_probe)  # aligned back to probe order
    assert teacher.layers == ("V4", "IT")
    assert set(teacher.noise_ceiling) == {"V4", "IT"}
    assert all(0 < v <= 1 for v in teacher.noise_ceiling.values())
    expected = pdist(rec.region_responses("IT").astype(np.float64), "correlation")
    np.testing.assert_allclose(teacher.rdms.numpy()[1], expected, atol=1e-5)


def test_saved_rdms_teacher(tmp_path, tiny_probe) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((len(tiny_probe), 5))
    vector = pdist(x, "correlation")
    np.savez(tmp_path / "rdms.npz", IT=squareform(vector), V4=vector)  # square and triangle
    loaded = load_rdm_file(tmp_path / "rdms.npz")
    assert loaded.names == ("IT", "V4")
    teacher = teacher_from_rdms(tmp_path / "rdms.npz", tiny_probe)
    np.testing.assert_allclose(teacher.rdms.numpy()[0], pdist(x, "correlation"), atol=1e-12)
    with pytest.raises(InputError, match="conditions"):
        teacher_from_rdms(tmp_path / "rdms.npz", tiny_probe, grouping="category")


def test_file_round_trip_and_probe_check(tiny_teacher_net, tiny_probe, tmp_path) -> None:
    teacher = teacher_from_network(tiny_teacher_net, tiny_probe, grouping="object", device="cpu")
    path = teacher.save(tmp_path / "t.npz")
    back = Teacher.load(path)
    assert back.layers == teacher.layers and back.grouping == "object"
    assert back.probe is not None and back.probe.fingerprint == tiny_probe.fingerprint
    assert back.rdms.conditions == teacher.rdms.conditions
    np.testing.assert_allclose(back.rdms.numpy(), teacher.rdms.numpy(), atol=1e-6)
    # no pickle anywhere in the file
    with np.load(path, allow_pickle=False) as z:
        assert "meta" in z.files
    other = ProbeSet(images=tiny_probe.images.flip(0).contiguous())
    with pytest.raises(
        ProbeMismatchError, match=f"{teacher.probe_fingerprint}.*{other.fingerprint}"
    ):
        back.check_probe(other.fingerprint)


def test_loading_bad_teacher_files(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        Teacher.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="not a tgsage teacher"):
        Teacher.load(tmp_path / "other.npz")


@pytest.fixture
def saved_teacher(tmp_path, tiny_probe) -> tuple[Teacher, bytes]:
    rdms = RDMs(torch.rand(2, 64 * 63 // 2), ("a", "b"), 64, "correlation")
    teacher = Teacher(rdms, tiny_probe.fingerprint, probe=tiny_probe)
    return teacher, teacher.save(tmp_path / "good.npz").read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], r"is damaged \(truncated or corrupted: File is not a zip"),
        (
            lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:],
            r"is damaged \(truncated or corrupted: ",
        ),
        (lambda b: b"", r"is empty \(0 bytes\)"),
        (lambda b: bytes(range(256)) * 4, r"is not a teacher file \(not an NPZ archive\)"),
        (lambda b: b"\x93NUMPY" + b[6:], r"is not a teacher file \(a single .npy array\)"),
    ],
)
def test_damaged_teacher_files_are_one_clear_error(
    tmp_path, saved_teacher, damage, message
) -> None:
    """Truncated, bit-flipped, empty, random and wrong-kind files (BadZipFile, Bad CRC-32,
    EOFError and "pickled data" before): one DataError naming the file and the fix."""
    _, good = saved_teacher
    path = tmp_path / "bad.npz"
    path.write_bytes(damage(good))
    with pytest.raises(DataError, match=message) as info:
        Teacher.load(path)
    assert str(path) in str(info.value) and "tgsage teacher build" in str(info.value)
    assert "\n" not in str(info.value)


def test_teacher_with_nan_rdms_is_refused_at_load(tmp_path, saved_teacher) -> None:
    """A file whose RDMs hold NaN used to load, then blame every candidate (nan_activations)."""
    teacher, _ = saved_teacher
    path = tmp_path / "good.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["rdms"][1, 5] = np.nan
    np.savez_compressed(path, **arrays)
    with pytest.raises(DataError, match=r"good.npz: the teacher RDMs of \['b'\] contain NaN"):
        Teacher.load(path)
    with pytest.raises(InputError, match="NaN"):
        Teacher(RDMs(torch.from_numpy(arrays["rdms"]), ("a", "b"), 64), teacher.probe_fingerprint)


def test_nan_activations_are_refused(tiny_probe) -> None:
    class Broken(torch.nn.Module):
        feature_names = ("f",)

        def forward_with_features(self, x):
            return x.mean((1, 2, 3))[:, None], {"f": x * float("nan")}

    with pytest.raises(InputError, match="NaN"):
        collect_activations(Broken(), tiny_probe.images, device="cpu")


def test_pearson_between_two_teachers_of_same_net(tiny_teacher_net, tiny_probe) -> None:
    a = teacher_from_network(tiny_teacher_net, tiny_probe, subsamples=None, device="cpu")
    g = a.guidance(a.rdms, tiny_probe.fingerprint)
    assert g.tg == pytest.approx(1.0)
    b = teacher_from_network(tiny_teacher_net, tiny_probe, subsamples=10, device="cpu")
    r = st.pearsonr(a.rdms.numpy()[0], b.rdms.numpy()[0])[0]
    assert 0.5 < r < 1.0  # subsampled RDMs resemble, but are not, the full ones


def test_rsatoolbox_rdm_file_as_teacher(tmp_path) -> None:
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 6))
    rdm = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="correlation")
    rdm.save(str(tmp_path / "it.hdf5"), file_type="hdf5")
    teacher = teacher_from_rdms(tmp_path / "it.hdf5", "abcdef0123456789")
    assert teacher.probe_fingerprint == "abcdef0123456789" and teacher.method == "correlation"
    np.testing.assert_allclose(teacher.rdms.numpy()[0], pdist(x, "correlation"), atol=1e-12)
