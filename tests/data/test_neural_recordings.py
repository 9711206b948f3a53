"""Neural recordings: NetCDF / NPZ / CSV readers, alignment, simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

from tgsage.data.neural import (
    Recording,
    load_recording,
    read_csv,
    read_netcdf,
    read_npz,
)
from tgsage.data.probe import ProbeSet
from tgsage.data.simulate import default_regions, simulate_recording
from tgsage.errors import DataError
from tgsage.rsa import split_half_noise_ceiling


def _brainscore_assembly(path: Path, shuffle: bool = True) -> dict:
    """3 stimuli x 2-3 repetitions x 4 sites (2 V4, 2 IT), rows shuffled, time_bin of size 1."""
    rng = np.random.default_rng(0)
    stim = np.array(["im_b", "im_a", "im_c"])
    obj = {"im_b": "car1", "im_a": "dog3", "im_c": "car2"}
    cat = {"im_b": "car", "im_a": "animal", "im_c": "car"}
    reps = {"im_b": 3, "im_a": 2, "im_c": 3}
    rows = [(s, r) for r in range(3) for s in stim if r < reps[s]]
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    values = rng.normal(size=(len(rows), 4, 1)).astype(np.float32)
    da = xr.DataArray(
        values,
        dims=("presentation", "neuroid", "time_bin"),
        coords={
            "stimulus_id": ("presentation", [s for s, _ in rows]),
            "repetition": ("presentation", [r for _, r in rows]),
            "object_name": ("presentation", [obj[s] for s, _ in rows]),
            "category_name": ("presentation", [cat[s] for s, _ in rows]),
            "neuroid_id": ("neuroid", ["a1", "a2", "b1", "b2"]),
            "region": ("neuroid", ["V4", "V4", "IT", "IT"]),
            "time_bin_start": ("time_bin", [70]),
        },
    )
    da.to_netcdf(path, engine="h5netcdf")
    return {"rows": rows, "values": values[:, :, 0]}


def test_netcdf_reader_groups_repetitions(tmp_path: Path) -> None:
    ref = _brainscore_assembly(tmp_path / "a.nc")
    rec = read_netcdf(tmp_path / "a.nc")
    first_seen = list(dict.fromkeys(s for s, _ in ref["rows"]))
    assert rec.stimulus_id.tolist() == first_seen
    assert rec.responses.shape == (3, 3, 4)
    assert rec.regions() == ("V4", "IT")
    assert rec.repetition_counts().tolist() == [{"im_a": 2}.get(s, 3) for s in first_seen]
    for (s, r), row in zip(ref["rows"], ref["values"], strict=True):
        np.testing.assert_array_equal(rec.responses[r, first_seen.index(s)], row)
    # repetition means by hand
    for s in first_seen:
        idx = [i for i, (t, _) in enumerate(ref["rows"]) if t == s]
        want = ref["values"][idx].mean(axis=0)
        np.testing.assert_allclose(rec.mean()[first_seen.index(s)], want, rtol=1e-6)
    np.testing.assert_allclose(rec.region_responses("IT"), rec.mean()[:, 2:])
    assert rec.stimulus_meta["category_name"][first_seen.index("im_a")] == "animal"
    codes, names = rec.labels("category_name")
    assert len(names) == 2 and codes[first_seen.index("im_b")] == codes[first_seen.index("im_c")]
    assert rec.averaged().responses.shape == (1, 3, 4)


def test_align_to_probe_set(tmp_path: Path) -> None:
    _brainscore_assembly(tmp_path / "a.nc")
    rec = read_netcdf(tmp_path / "a.nc")
    probe = ProbeSet(
        torch.zeros(3, 3, 2, 2, dtype=torch.uint8), stimulus_ids=("im_c", "im_a", "im_b")
    )
    aligned = rec.align(probe)
    assert aligned.stimulus_id.tolist() == ["im_c", "im_a", "im_b"]
    np.testing.assert_array_equal(aligned.mean()[1], rec.mean()[rec.stimulus_id == "im_a"][0])
    with pytest.raises(DataError, match=r"1 probe stimuli missing.*im_z"):
        rec.align(["im_a", "im_b", "im_c", "im_z"])
    with pytest.raises(DataError, match=r"1 recorded stimuli not in the probe set.*im_c"):
        rec.align(["im_a", "im_b"])


def test_npz_and_csv_readers(tmp_path: Path) -> None:
    _brainscore_assembly(tmp_path / "a.nc")
    rec = read_netcdf(tmp_path / "a.nc")
    rec.to_npz(tmp_path / "r.npz")
    back = read_npz(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.responses, rec.responses)
    assert back.stimulus_meta["object_name"].tolist() == rec.stimulus_meta["object_name"].tolist()
    # row layout NPZ: duplicate stimulus ids are repetitions
    np.savez(
        tmp_path / "rows.npz",
        responses=np.array([[1.0, 2], [3, 4], [5, 6]]),
        stimulus_id=np.array(["x", "y", "x"]),
        region=np.array(["IT", "IT"]),
    )
    rows = read_npz(tmp_path / "rows.npz")
    np.testing.assert_allclose(rows.mean(), [[3, 4], [3, 4]])
    assert rows.repetition_counts().tolist() == [2, 1]
    csv = tmp_path / "r.csv"
    csv.write_text(
        "stimulus_id,repetition,category_name,V4/s1,IT/s2,IT/s3\n"
        "7,0,car,1,2,3\n"
        "8,0,dog,4,5,6\n"
        "7,1,car,3,4,5\n"
    )
    c = load_recording(csv)
    assert c.stimulus_id.tolist() == ["7", "8"] and c.regions() == ("V4", "IT")
    assert c.neuroid_id.tolist() == ["s1", "s2", "s3"]
    np.testing.assert_allclose(c.mean(), [[2, 3, 4], [4, 5, 6]])
    assert c.stimulus_meta["category_name"].tolist() == ["car", "dog"]


def test_reader_errors(tmp_path: Path) -> None:
    da = xr.DataArray(
        np.zeros((2, 2)),
        dims=("presentation", "neuroid"),
        coords={"stimulus_id": ("presentation", ["a", "b"])},
    )
    da.to_netcdf(tmp_path / "noregion.nc", engine="h5netcdf")
    with pytest.raises(DataError, match="region"):
        read_netcdf(tmp_path / "noregion.nc")
    with pytest.raises(DataError, match="not found"):
        load_recording(tmp_path / "missing.nc")
    with pytest.raises(DataError, match="unknown recording format"):
        load_recording(tmp_path / "x.mat")
    (tmp_path / "bad.csv").write_text("stimulus_id,a\n1,2\n")
    with pytest.raises(DataError, match="site columns"):
        read_csv(tmp_path / "bad.csv")
    np.savez(
        tmp_path / "dup.npz",
        responses=np.zeros((2, 1)),
        stimulus_id=np.array(["a", "a"]),
        repetition=np.array([0, 0]),
        region=np.array(["IT"]),
    )
    with pytest.raises(DataError, match="repetition 0 twice"):
        read_npz(tmp_path / "dup.npz")
    with pytest.raises(DataError, match="regions are"):
        Recording(np.zeros((2, 1)), ["a", "b"], ["IT"]).region_responses("V4")


# ----------------------------------------------------------------- simulator
def test_simulator_roundtrip_through_netcdf(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    acts = {
        "conv1": torch.randn(40, 4, 3, 3, generator=g),
        "conv2": torch.randn(40, 8, 2, 2, generator=g),
        "fc": torch.randn(40, 16, generator=g),
    }
    meta = {"category_name": np.array(["a", "b"] * 20)}
    rec = simulate_recording(
        acts,
        sites_per_region=12,
        n_repetitions=4,
        noise=0.5,
        seed=3,
        stimulus_ids=[f"s{i}" for i in range(40)],
        stimulus_meta=meta,
    )
    assert default_regions(list(acts)) == {"V4": "conv2", "IT": "fc"}
    assert rec.responses.shape == (4, 40, 24) and rec.regions() == ("V4", "IT")
    again = simulate_recording(
        acts,
        sites_per_region=12,
        n_repetitions=4,
        noise=0.5,
        seed=3,
        stimulus_ids=[f"s{i}" for i in range(40)],
        stimulus_meta=meta,
    )
    np.testing.assert_array_equal(rec.responses, again.responses)
    path = rec.to_netcdf(tmp_path / "sim.nc")
    back = load_recording(path)
    np.testing.assert_array_equal(back.responses, rec.responses)
    assert back.stimulus_id.tolist() == rec.stimulus_id.tolist()
    assert back.region.tolist() == rec.region.tolist()
    assert back.neuroid_id.tolist() == rec.neuroid_id.tolist()
    assert back.stimulus_meta["category_name"].tolist() == meta["category_name"].tolist()
    # and it is a genuine Brain-Score-style assembly
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        da = ds["responses"]
        assert da.dims == ("presentation", "neuroid") and da.shape == (160, 24)
        assert set(np.unique(da["repetition"].values)) == {0, 1, 2, 3}


def test_simulator_noise_sets_reliability() -> None:
    rng = np.random.default_rng(0)
    acts = {"it": rng.normal(size=(1500, 30))}
    noisy = simulate_recording(acts, sites_per_region=20, n_repetitions=8, noise=2.0, seed=1)
    clean = simulate_recording(acts, sites_per_region=20, n_repetitions=8, noise=0.2, seed=1)
    nc_noisy = split_half_noise_ceiling(noisy, n_splits=3, rdm=False)["IT"].site_median
    nc_clean = split_half_noise_ceiling(clean, n_splits=3, rdm=False)["IT"].site_median
    assert nc_noisy == pytest.approx(1 / (1 + 4 / 8), abs=0.04)
    assert nc_clean > 0.99
    # the regions carry the layer's stimulus structure: the teacher RDM tracks the layer RDM
    layer_rdm = pdist(acts["it"][:200], "correlation")
    rec_rdm = pdist(clean.region_responses("IT")[:200], "correlation")
    assert pearsonr(layer_rdm, rec_rdm)[0] > 0.3


def test_simulator_errors() -> None:
    with pytest.raises(DataError, match="not among"):
        simulate_recording({"a": np.zeros((3, 2))}, regions={"IT": "b"})
    with pytest.raises(DataError, match="stimuli"):
        simulate_recording({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))})


def test_a_site_without_responses_is_named() -> None:
    """One all-NaN site made every RDM NaN, reported as "the network probably diverged"."""
    rng = np.random.default_rng(0)
    resp = rng.standard_normal((3, 6, 5)).astype(np.float32)
    resp[:, :, 3] = np.nan
    with pytest.raises(DataError, match=r"site 'n3' \(region 'IT'\) has no response at all"):
        Recording(
            resp,
            [f"s{i}" for i in range(6)],
            ["V4"] * 3 + ["IT"] * 2,
            list("n0 n1 n2 n3 n4".split()),
        )
    resp[:, :, 3] = 1.0
    resp[:, 4, 1] = np.nan  # site n1 never answered stimulus s4 (in no repetition)
    with pytest.raises(
        DataError, match=r"site 'n1' \(region 'V4'\) has no response to stimulus 's4'"
    ):
        Recording(
            resp,
            [f"s{i}" for i in range(6)],
            ["V4"] * 3 + ["IT"] * 2,
            list("n0 n1 n2 n3 n4".split()),
        )
    resp[0, 4, 1] = 0.5  # one repetition is enough: the mean is defined
    rec = Recording(resp, [f"s{i}" for i in range(6)], ["V4"] * 3 + ["IT"] * 2)
    assert np.isfinite(rec.mean()).all()
