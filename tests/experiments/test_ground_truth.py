"""NAS-Bench-201 ground truth: the table reader on generated files, its errors, the API path."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tgsage.errors import InputError
from tgsage.experiments.ground_truth import GroundTruth, load_nb201_api, load_nb201_table
from tgsage.spaces import NB201Space, NB201Spec

HEADER = (
    "Index,CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,"
    "ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString"
)


def official_string(o: tuple[str, ...]) -> str:
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


@pytest.fixture(scope="module")
def table() -> tuple[list[tuple[str, ...]], np.ndarray]:
    """40 distinct random cells and their (cifar10, cifar100, imagenet) accuracies in percent."""
    rng = np.random.default_rng(7)
    every = NB201Space.all_specs()
    cells = [every[i].ops for i in rng.choice(len(every), 40, replace=False)]
    acc = np.round(rng.uniform([80, 50, 20], [95, 75, 47], size=(40, 3)), 4)
    return cells, acc


def write_official(path: Path, cells, acc, extra_rows: list[str] = ()) -> Path:
    lines = [HEADER]
    for i, (ops, (a, b, c)) in enumerate(zip(cells, acc, strict=True)):
        lines.append(f"{i * 3},{a},{b},{c},{official_string(ops)},u{i}")
    path.write_text("\n".join([*lines, *extra_rows]) + "\n")
    return path


def test_reads_the_official_format(tmp_path: Path, table) -> None:
    cells, acc = table
    path = write_official(tmp_path / "nats.csv", cells, acc)
    truth = load_nb201_table(path)
    assert len(truth) == 40 and truth.scale == "percent"
    assert truth.dataset == "cifar10" and truth.column == "CIFAR10TestAccuracy200Epochs"
    assert truth.source == str(path)
    assert [s.ops for s in truth.specs] == cells
    for ops, a in zip(cells, acc[:, 0], strict=True):
        spec = NB201Spec(ops)
        assert truth.lookup(spec) == pytest.approx(a / 100, abs=1e-12)
        assert truth.lookup(official_string(ops)) == truth.lookup(spec)
        assert spec.spec_hash in truth and truth[spec.spec_hash] == truth.lookup(spec)
    missing = next(s for s in NB201Space.all_specs() if s.ops not in cells)
    assert truth.lookup(missing) is None
    got = truth.accuracies_of([NB201Spec(cells[3]), missing])
    assert got[0] == pytest.approx(acc[3, 0] / 100) and np.isnan(got[1])
    np.testing.assert_allclose(truth.accuracies, acc[:, 0] / 100)


@pytest.mark.parametrize(
    ("dataset", "col", "name"),
    [
        ("cifar10", 0, "cifar10"),
        ("CIFAR-10", 0, "cifar10"),
        ("cifar100", 1, "cifar100"),
        ("imagenet16-120", 2, "imagenet16-120"),
        ("ImageNet", 2, "imagenet16-120"),
        ("cifar100testaccuracy200epochs", 1, "CIFAR100TestAccuracy200Epochs"),
    ],
)
def test_dataset_names_and_column_names_find_the_column(
    tmp_path: Path, table, dataset: str, col: int, name: str
) -> None:
    cells, acc = table
    truth = load_nb201_table(write_official(tmp_path / "t.csv", cells, acc), dataset)
    np.testing.assert_allclose(truth.accuracies, acc[:, col] / 100)
    assert truth.dataset == name


def test_api_style_columns_fractions_tsv_and_explicit_scale(tmp_path: Path, table) -> None:
    cells, acc = table
    frac = acc[:, 0] / 100
    rows = ["arch_str\tcifar10-valid\tcifar10"]
    rows += [f"{official_string(o)}\t{v - 0.01}\t{v}" for o, v in zip(cells, frac, strict=True)]
    path = tmp_path / "api.tsv"
    path.write_text("\n".join(rows) + "\n")
    truth = load_nb201_table(path)  # cifar10, not cifar10-valid
    assert truth.scale == "fraction" and truth.column == "cifar10"
    np.testing.assert_allclose(truth.accuracies, frac)
    valid = load_nb201_table(path, "cifar10-valid")
    np.testing.assert_allclose(valid.accuracies, frac - 0.01)
    forced = load_nb201_table(path, scale="percent")  # the caller says these are percent
    np.testing.assert_allclose(forced.accuracies, frac / 100)
    with pytest.raises(InputError, match="scale"):
        load_nb201_table(path, scale="per-mille")


def test_identical_duplicates_are_kept_once(tmp_path: Path, table) -> None:
    cells, acc = table
    again = f"99,{acc[5, 0]},1,1,{official_string(cells[5])},x"
    truth = load_nb201_table(write_official(tmp_path / "d.csv", cells, acc, [again]))
    assert len(truth) == 40


def _error(tmp_path: Path, text: str, **kw) -> str:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_nb201_table(path, **kw)
    msg = str(info.value)
    assert str(path) in msg
    return msg


def test_errors_name_the_file_the_line_and_the_fix(tmp_path: Path, table) -> None:
    cells, _acc = table
    good = official_string(cells[0])
    msg = _error(tmp_path, "arch,top1\n" + good + ",91\n")
    assert "no accuracy column for dataset 'cifar10'" in msg and "['arch', 'top1']" in msg
    msg = _error(tmp_path, "name,cifar10\n" + good + ",91\n")
    assert "no architecture-string column" in msg and "['name', 'cifar10']" in msg
    assert "arch_column=" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},91\n|nor_conv_3x3~0|+|none~0|bad_op~1|+x,90\n")
    assert "line 3" in msg and "'bad_op~1'" in msg
    msg = _error(tmp_path, "arch,cifar10\n")
    assert "no rows below the header" in msg
    msg = _error(tmp_path, "")
    assert "empty file" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},91\n{official_string(cells[1])},92\n{good},93\n")
    assert "line 4" in msg and "line 2" in msg and "91" in msg and "93" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},\n")
    assert "line 2" in msg and "not a number" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},nan\n")
    assert "line 2" in msg and "'nan' is not a number" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},91,extra\n")
    assert "line 2: 3 fields, the header has 2" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},91\n{official_string(cells[1])},101\n")
    assert "line 3" in msg and "101" in msg and "[0, 100]" in msg
    msg = _error(tmp_path, f"arch,cifar10\n{good},91\n", scale="fraction")
    assert "line 2" in msg and "[0, 1]" in msg
    msg = _error(tmp_path, f"arch,cifar10_acc_a,cifar10_acc_b\n{good},91,92\n")
    assert "several columns" in msg and "cifar10_acc_a" in msg
    msg = _error(tmp_path, f"arch,cifar10-valid\n{good},91\n")  # valid is not the test accuracy
    assert "no accuracy column" in msg
    with pytest.raises(InputError, match="no such file"):
        load_nb201_table(tmp_path / "nowhere.csv")


def test_sample_is_distinct_and_seeded(tmp_path: Path, table) -> None:
    cells, acc = table
    truth = load_nb201_table(write_official(tmp_path / "s.csv", cells, acc))
    a = truth.sample(15, seed=3)
    assert len({s.spec_hash for s in a}) == 15 and all(truth.lookup(s) is not None for s in a)
    assert truth.sample(15, seed=3) == a and truth.sample(15, seed=4) != a
    every = truth.sample(40, seed=0)
    assert sorted(s.spec_hash for s in every) == sorted(truth)
    assert truth.sample(0) == []
    with pytest.raises(InputError, match=r"\[0, 40\]"):
        truth.sample(41)


def test_constructor_checks() -> None:
    spec = NB201Spec(("none",) * 6)
    with pytest.raises(InputError, match="not a fraction"):
        GroundTruth([spec], [91.0], source="x", dataset="cifar10", column="c")
    with pytest.raises(InputError, match="appears twice"):
        GroundTruth([spec, spec], [0.1, 0.1], source="x", dataset="cifar10", column="c")
    with pytest.raises(InputError, match="empty"):
        GroundTruth([], [], source="x", dataset="cifar10", column="c")


class FakeAPI:
    """The few methods of nats_bench's topology API that from_api uses (accuracies in %)."""

    def __init__(self, cells, acc) -> None:
        self.cells, self.acc, self.calls = cells, acc, []

    def __len__(self) -> int:
        return len(self.cells)

    def arch(self, index: int) -> str:
        return official_string(self.cells[index])

    def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
        self.calls.append((dataset, hp, is_random))
        col = {"cifar10": 0, "cifar100": 1, "ImageNet16-120": 2}[dataset]
        return {"test-accuracy": float(self.acc[index, col]), "test-loss": 0.3}


class OldFakeAPI(FakeAPI):
    """nas_201_api v1.0: ``use_12epochs_result`` instead of ``hp``."""

    def get_more_info(self, index, dataset, iepoch=None, use_12epochs_result=False, is_random=True):
        return super().get_more_info(
            index, dataset, hp="12" if use_12epochs_result else "200", is_random=is_random
        )


def test_from_api_reads_every_architecture(table) -> None:
    cells, acc = table
    api = FakeAPI(cells, acc)
    truth = GroundTruth.from_api(api, "cifar100")
    np.testing.assert_allclose(truth.accuracies, acc[:, 1] / 100)
    assert set(api.calls) == {("cifar100", "200", False)} and len(api.calls) == 40
    assert truth.dataset == "cifar100" and truth.column == "test-accuracy@hp=200"
    old = OldFakeAPI(cells, acc)
    truth = GroundTruth.from_api(old, "ImageNet16-120")
    np.testing.assert_allclose(truth.accuracies, acc[:, 2] / 100)
    assert truth.dataset == "imagenet16-120" and {c[1] for c in old.calls} == {"200"}
    with pytest.raises(InputError, match="no 'valid-accuracy'.*test-loss"):
        GroundTruth.from_api(api, "cifar10", metric="valid-accuracy")


def test_load_nb201_api_is_guarded(monkeypatch: pytest.MonkeyPatch, table) -> None:
    cells, acc = table
    monkeypatch.setitem(sys.modules, "nats_bench", None)
    monkeypatch.setitem(sys.modules, "nas_201_api", None)
    with pytest.raises(InputError, match="pip install nats_bench"):
        load_nb201_api("bench.pickle.pbz2")
    fake = types.ModuleType("nats_bench")
    opened = []
    fake.create = lambda path, space, **kw: opened.append((path, space)) or FakeAPI(cells, acc)
    monkeypatch.setitem(sys.modules, "nats_bench", fake)
    truth = load_nb201_api("bench.pickle.pbz2", "cifar10")
    assert opened == [("bench.pickle.pbz2", "tss")] and len(truth) == 40
    np.testing.assert_allclose(truth.accuracies, acc[:, 0] / 100)


def test_a_fraction_among_percent_values_is_refused(tmp_path: Path, table) -> None:
    """One row written as a fraction (0.925) in a percent table was read as 0.925 %."""
    cells, acc = table
    mixed = acc.copy()
    mixed[7, 0] = 0.925
    msg = _error(tmp_path, write_official(tmp_path / "bad.csv", cells, mixed).read_text())
    assert "line 9" in msg and "0.925 looks like a fraction" in msg and "write it as 92.5" in msg
    forced = load_nb201_table(tmp_path / "bad.csv", scale="percent")  # the caller insists
    assert forced.lookup(NB201Spec(cells[7])) == pytest.approx(0.00925)


def test_chance_level_percent_values_below_one_are_kept(tmp_path: Path, table) -> None:
    """Dead cells score at chance: 1.0 % on CIFAR-100 and 0.83 % on ImageNet16-120 - above
    every other value if read as fractions, so not a mixed scale."""
    cells, acc = table
    dead = acc.copy()
    dead[3, 1], dead[4, 2] = 1.0, 0.8333
    path = write_official(tmp_path / "dead.csv", cells, dead)
    assert load_nb201_table(path, "cifar100").lookup(NB201Spec(cells[3])) == pytest.approx(0.01)
    assert load_nb201_table(path, "imagenet16-120").lookup(NB201Spec(cells[4])) == pytest.approx(
        0.008333
    )
