"""Bad input across the command line: each case is a real ``tgsage`` invocation that must end
in exactly one line naming the problem and the fix, with exit code 2 (never a traceback, an
empty progress bar above the error, or a multi-line report).

========================  ======================================  ===============================
command                   bad input                               the line says (start)
========================  ======================================  ===============================
compare                   missing / text / empty activation file  no such file / is not an
                                                                  activation file / is empty
compare                   10 vs 12 images, 7 group labels         different numbers of conditions
                                                                  / group labels have shape
compare                   --subsamples 0, --rdm / --comparison    subsamples must be at least 1 /
                          unknown                                 unknown RDM method / comparison
teacher show              missing, truncated, empty, random       not found / is damaged / is
                          bytes, a .npy, NaN RDMs, another NPZ    empty / not an NPZ archive / a
                                                                  single .npy / contain NaN / not
                                                                  a tgsage teacher file
teacher build             unknown source, --module missing or     unknown teacher source / needs
                          not importable, bad --weights, a        --module / cannot import /
                          recording with a silent site, damaged   cannot load / site ... has no
                          --rdms / --probe, missing recording     response / is damaged / not found
evaluate                  random:layer:abc, random:nospace,       seed 'abc' is not an integer /
                          preset:nope, bad JSON, not a spec       space / preset / layers /
                                                                  neither a spec file
evaluate                  --device cuda:3 (no CUDA), gpu;         sees no CUDA GPU / not a device
                          --budget 5parsecs, past the schedule;   name / cannot read budget /
                          --score, --preset, --data unknown       longer than the 15-epoch /
                                                                  score must be / unknown ...
evaluate                  damaged teacher, probe at 32 px for     is damaged / 3x32x32 but the
                          16 px data, p+tg without teacher,       data has 3x16x16 / needs a
                          empty folder / CIFAR folder             teacher / no images / not found
search                    missing / broken YAML / unknown field   not found / not valid YAML ...
                                                                  at line 2 / unknown field
search                    budget past schedule, empty data        longer than / data: no images
                          folder, probe resolution, damaged       / 3x32x32 / is damaged / needs
                          teacher, p+tg without teacher           'teacher
search                    unreachable PostgreSQL, SQLite with 2   cannot reach the database /
                          workers, changed config, read-only      SQLite / different config /
                          run folder                              is not writable
worker / status           no journal, unknown study, a folder     no journal file / no study /
                          without a search, a missing folder      holds no search.journal / not
                                                                  found
report / rerank           missing folder, read-only run folder,   not found / Read-only file
                          --k 0, --budget zz                      system / --k must be / budget
predictivity              --pool random:layer:abc, a fraction in  expected random:SPACE:N / line
                          a percent table, missing table,         6: ... looks like a fraction /
                          --budgets zz, --train-option bogus=1,   no such file / cannot read
                          every architecture diverged             budget / bogus / all 2 failed
========================  ======================================  ===============================

The read-only run folder is made read-only for real: by permissions for a normal user, by a
read-only bind mount for root (skipped where root may not mount).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tgsage.cli import app

pytestmark = pytest.mark.slow
TINY = ["--resolution", "16", "--train-size", "32", "--val-size", "16"]


@dataclass
class Files:
    """Every input the cases need, made once per module."""

    d: Path

    def __truediv__(self, name: str) -> str:
        return str(self.d / name)

    def config(self, name: str, **fields: object) -> str:
        """A search config (train objective, tiny synthetic data) written as YAML."""
        c: dict[str, object] = {
            "name": name,
            "objective": "train",
            "score": "p",
            "train": "cpu_demo",
            "n_candidates": 2,
            "device": "cpu",
            "budget": "32ex",
            "data": {"name": "synthetic", "n_train": 64, "n_val": 16, "resolution": 16},
            "run_dir": str(self.d / f"run_{name}"),
        }
        c.update(fields)
        path = self.d / f"{name}.yaml"
        path.write_text(json.dumps(c))
        return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    from tgsage.data import ProbeSet, make_synthetic_objects
    from tgsage.models import get_model
    from tgsage.search import run_search
    from tgsage.spaces import NB201Space
    from tgsage.teacher import teacher_from_network

    torch.set_num_threads(1)
    f = Files(tmp_path_factory.mktemp("bad"))
    d = f.d
    net = get_model("resnet_cifar", n=1, num_classes=8, width_mult=0.25)
    probes = {}
    for px in (16, 32):
        probes[px] = ProbeSet.from_images(make_synthetic_objects(8, 16, resolution=px).val)
        teacher = teacher_from_network(net, probes[px], subsamples=None, device="cpu")
        teacher.save(d / f"t{px}.npz")
    good = (d / "t16.npz").read_bytes()
    (d / "trunc.npz").write_bytes(good[: len(good) // 2])
    (d / "empty.npz").write_bytes(b"")
    (d / "rand.npz").write_bytes(bytes(range(256)) * 4)
    np.save(d / "one.npy", np.zeros(3))
    shutil.copy(d / "one.npy", d / "one_array.npz")
    with np.load(d / "t16.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["rdms"][0, 3] = np.nan
    np.savez_compressed(d / "nan.npz", **arrays)
    np.savez(d / "other.npz", x=np.zeros(3))
    rng = np.random.default_rng(0)
    np.savez(d / "a10.npz", L1=rng.standard_normal((10, 3)))
    np.savez(d / "a12.npz", conv=rng.standard_normal((12, 3)))
    np.save(d / "groups7.npy", np.arange(7))
    resp = rng.standard_normal((2, 16, 4)).astype(np.float32)
    resp[:, :, 1] = np.nan
    ids = np.array([str(i) for i in range(16)])
    np.savez(
        d / "rec.npz", responses=resp, stimulus_id=ids, region=np.array(["V4"] * 2 + ["IT"] * 2)
    )
    probes[16].save(d / "probe.npz")
    raw = (d / "probe.npz").read_bytes()
    (d / "probe_bad.npz").write_bytes(raw[: len(raw) // 3])
    (d / "text.txt").write_text("not weights\n")
    (d / "empty_dir").mkdir()
    cells = NB201Space.all_specs()[100:110]
    rows = ["arch,cifar10"] + [
        f"{c.to_arch_string()},{90 + i * 0.3:.1f}" for i, c in enumerate(cells)
    ]
    rows[5] = f"{cells[4].to_arch_string()},0.925"  # line 6: a fraction among percent
    (d / "gt.csv").write_text("\n".join(rows) + "\n")
    (d / "broken.yaml").write_text("name: [unclosed\n")
    summary = run_search(f.config("sim", objective="simulate"))
    assert summary.finished
    return f


Argv = Callable[[Files], list[str]]
CASES: list[tuple[str, Argv, str]] = [
    # compare
    ("compare-missing", lambda f: ["compare", f / "nope.npz", f / "a10.npz"], r"no such file"),
    ("compare-text", lambda f: ["compare", f / "gt.csv", f / "a10.npz"], r"is not an activation file \(not an NPZ archive\)"),
    ("compare-empty", lambda f: ["compare", f / "empty.npz", f / "a10.npz"], r"activation file .* is empty \(0 bytes\)"),
    ("compare-counts", lambda f: ["compare", f / "a10.npz", f / "a12.npz"], r"different numbers of conditions: 10 vs 12"),
    ("compare-groups", lambda f: ["compare", f / "a10.npz", f / "a10.npz", "--groups", f / "groups7.npy"], r"group labels have shape \(7,\), expected \(10,\)"),
    ("compare-subsamples-0", lambda f: ["compare", f / "a10.npz", f / "a10.npz", "--subsamples", "0"], r"subsamples must be at least 1"),
    ("compare-rdm", lambda f: ["compare", f / "a10.npz", f / "a10.npz", "--rdm", "bogus"], r"unknown RDM method 'bogus'"),
    ("compare-comparison", lambda f: ["compare", f / "a10.npz", f / "a10.npz", "--comparison", "bogus"], r"unknown comparison 'bogus'"),
    # teacher show
    ("show-missing", lambda f: ["teacher", "show", f / "nope.npz"], r"teacher file .*nope.npz not found"),
    ("show-truncated", lambda f: ["teacher", "show", f / "trunc.npz"], r"is damaged \(truncated or corrupted"),
    ("show-empty", lambda f: ["teacher", "show", f / "empty.npz"], r"is empty \(0 bytes\)"),
    ("show-random-bytes", lambda f: ["teacher", "show", f / "rand.npz"], r"is not a teacher file \(not an NPZ archive\)"),
    ("show-npy", lambda f: ["teacher", "show", f / "one_array.npz"], r"is not a teacher file \(a single .npy array\)"),
    ("show-nan-rdms", lambda f: ["teacher", "show", f / "nan.npz"], r"teacher RDMs of \['stack1'\] contain NaN"),
    ("show-other-npz", lambda f: ["teacher", "show", f / "other.npz"], r"is not a tgsage teacher file"),
    # teacher build
    ("build-source", lambda f: ["teacher", "build", "--source", "bogus", *TINY, "-o", f / "x.npz"], r"unknown teacher source 'bogus'"),
    ("build-no-module", lambda f: ["teacher", "build", "--source", "module", *TINY, "-o", f / "x.npz"], r"source=module needs --module"),
    ("build-module-import", lambda f: ["teacher", "build", "--source", "module", "--module", "no.such:thing", *TINY, "-o", f / "x.npz"], r"cannot import no.such:thing"),
    ("build-bad-weights", lambda f: ["teacher", "build", "--source", "module", "--module", "torch.nn:Identity", "--weights", f / "text.txt", "--probe", f / "probe.npz", "-o", f / "x.npz"], r"cannot load .*text.txt into torch.nn:Identity"),
    ("build-silent-site", lambda f: ["teacher", "build", "--source", "recording", "--recording", f / "rec.npz", "--probe", f / "probe.npz", "-o", f / "x.npz"], r"site 'site1' \(region 'V4'\) has no response at all"),
    ("build-missing-recording", lambda f: ["teacher", "build", "--source", "recording", "--recording", f / "nope.npz", "--probe", f / "probe.npz", "-o", f / "x.npz"], r"recording file .* not found"),
    ("build-damaged-rdms", lambda f: ["teacher", "build", "--source", "rdms", "--rdms", f / "trunc.npz", "--probe", f / "probe.npz", "-o", f / "x.npz"], r"RDM file .* is damaged"),
    ("build-damaged-probe", lambda f: ["teacher", "build", "--source", "rdms", "--rdms", f / "a10.npz", "--probe", f / "probe_bad.npz", "-o", f / "x.npz"], r"probe-set file .* is damaged"),
    # evaluate: the spec
    ("evaluate-seed", lambda f: ["evaluate", "random:layer:abc", "--score", "p"], r"the seed 'abc' is not an integer"),
    ("evaluate-space", lambda f: ["evaluate", "random:nospace", "--score", "p"], r"space.*'nospace'"),
    ("evaluate-preset-spec", lambda f: ["evaluate", "preset:nope", "--score", "p"], r"preset.*'nope'"),
    ("evaluate-bad-json", lambda f: ["evaluate", '{"kind": "layer", "layers": 3}', "--score", "p"], r"layers: expected a list"),
    ("evaluate-not-a-spec", lambda f: ["evaluate", "hello", "--score", "p"], r"is neither a spec file"),
    # evaluate: options
    ("evaluate-gpu-name", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--device", "gpu", *TINY], r"device 'gpu' is not a device name"),
    ("evaluate-budget", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--budget", "5parsecs", *TINY], r"cannot read budget '5parsecs'"),
    ("evaluate-past-schedule", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--preset", "cpu_demo", "--budget", "100ep", *TINY], r"100ep is longer than the 15-epoch cosine schedule"),
    ("evaluate-score", lambda f: ["evaluate", "random:layer:1", "--score", "bogus", *TINY], r"'bogus'"),
    ("evaluate-preset", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--preset", "nope", *TINY], r"unknown training preset 'nope'"),
    ("evaluate-dataset", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--data", "nosuch"], r"unknown dataset 'nosuch'"),
    ("evaluate-no-teacher", lambda f: ["evaluate", "random:layer:1", *TINY], r"score 'p\+tg' needs a teacher"),
    ("evaluate-damaged-teacher", lambda f: ["evaluate", "random:layer:1", "--teacher", f / "trunc.npz"], r"is damaged"),
    ("evaluate-probe-resolution", lambda f: ["evaluate", "random:layer:1", "--teacher", f / "t32.npz", "--preset", "cpu_demo", "--budget", "32ex", *TINY], r"3x32x32 but the data has 3x16x16"),
    ("evaluate-empty-folder", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--data", "folder", "--data-root", f / "empty_dir"], r"no images .* found under"),
    ("evaluate-empty-cifar", lambda f: ["evaluate", "random:layer:1", "--score", "p", "--data", "cifar10", "--data-root", f / "empty_dir"], r"CIFAR-10 file 'data_batch_1' not found"),
    # search
    ("search-missing-config", lambda f: ["search", f / "nope.yaml"], r"config file .* not found"),
    ("search-broken-yaml", lambda f: ["search", f / "broken.yaml"], r"is not valid YAML: .* at line 2, column 1"),
    ("search-unknown-field", lambda f: ["search", f.config("field", bogus=1)], r"bogus: unknown field"),
    ("search-past-schedule", lambda f: ["search", f.config("sched", budget="100ep")], r"100ep is longer than the 15-epoch"),
    ("search-empty-data", lambda f: ["search", f.config("data", data={"name": "folder", "root": f / "empty_dir"})], r"^error: data: no images"),
    ("search-probe-resolution", lambda f: ["search", f.config("probe", score="p+tg", teacher=f / "t32.npz")], r"3x32x32 but data 'synthetic' has 3x16x16"),
    ("search-damaged-teacher", lambda f: ["search", f.config("tdam", score="p+tg", teacher=f / "trunc.npz")], r"teacher file .* is damaged"),
    ("search-no-teacher", lambda f: ["search", f.config("notea", score="p+tg")], r"needs 'teacher: <teacher file>'"),
    ("search-unreachable-db", lambda f: ["search", f.config("pg", storage="postgresql://u:p@127.0.0.1:1/db")], r"cannot reach the database postgresql://u:\*\*\*@127.0.0.1:1/db"),
    ("search-sqlite-workers", lambda f: ["search", f.config("sq", storage="sqlite:///" + f / "s.db", workers=2)], r"SQLite storage serves a single process"),
    ("search-changed-config", lambda f: ["search", f / "sim.yaml", "--budget", "64ex"], r"already exists .* with a different config \(budget differ\)"),
    # worker, status, report, rerank
    ("worker-no-journal", lambda f: ["worker", "--storage", "journal:" + f / "nope.journal", "--study", "x"], r"no journal file at"),
    ("worker-unknown-study", lambda f: ["worker", "--storage", "journal:" + f / "run_sim/search.journal", "--study", "nosuch"], r"no study 'nosuch'"),
    ("status-not-a-run", lambda f: ["status", f / "empty_dir"], r"holds no search.journal"),
    ("status-missing", lambda f: ["status", f / "nope_dir"], r"run '.*nope_dir' not found"),
    ("report-missing", lambda f: ["report", f / "nope_dir"], r"run '.*nope_dir' not found"),
    ("rerank-k", lambda f: ["rerank", f / "run_sim", "--k", "0"], r"--k must be >= 1"),
    ("rerank-budget", lambda f: ["rerank", f / "run_sim", "--budget", "zz"], r"cannot read budget 'zz'"),
    # predictivity
    ("predictivity-pool", lambda f: ["predictivity", "--pool", "random:layer:abc", "-o", f / "p1"], r"expected random:SPACE:N"),
    ("predictivity-mixed-scales", lambda f: ["predictivity", "--pool", "table:5", "--ground-truth", f / "gt.csv", "-o", f / "p2"], r"gt.csv, line 6: accuracy 0.925 looks like a fraction"),
    ("predictivity-missing-table", lambda f: ["predictivity", "--pool", "table:5", "--ground-truth", f / "nope.csv", "-o", f / "p3"], r"no such file"),
    ("predictivity-budgets", lambda f: ["predictivity", "--pool", "random:layer:2", "--budgets", "zz", "-o", f / "p4"], r"cannot read budget 'zz'"),
    ("predictivity-train-option", lambda f: ["predictivity", "--pool", "random:layer:2", "--train-option", "bogus=1", "-o", f / "p5"], r"bogus: Extra inputs"),
    ("predictivity-all-diverged", lambda f: ["predictivity", "--pool", "random:layer:2", "--train-option", "lr=1e12", "--preset", "cpu_demo", "--budgets", "64ex", "--mature", "192ex", "--resolution", "16", "--train-size", "128", "--val-size", "16", "--width-mult", "0.25", "--device", "cpu", "-q", "-o", f / "p6"], r"all 2 failed \(diverged: 2\)"),
]  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, list[str]]:
    res = CliRunner().invoke(app, argv)
    assert "Traceback" not in res.output, res.output
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, [line for line in res.output.splitlines() if line.strip()]


def check_one_line(code: int, lines: list[str], pattern: str) -> None:
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(("argv", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(files: Files, argv: Argv, pattern: str) -> None:
    check_one_line(*run_cli(argv(files)), pattern)


def test_the_table_covers_at_least_30_inputs() -> None:
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_on_a_cpu_only_torch(files: Files) -> None:
    """--device cuda:3 was an AssertionError from inside torch."""
    argv = ["evaluate", "random:layer:1", "--score", "p", "--device", "cuda:3", *TINY]
    check_one_line(*run_cli(argv), r"device 'cuda:3': this torch sees no CUDA GPU")


@pytest.fixture
def read_only_run(files: Files, tmp_path: Path) -> Iterator[Path]:
    """A copy of the finished search's run folder that this process cannot write."""
    src = tmp_path / "src"
    shutil.copytree(files.d / "run_sim", src)
    if os.geteuid() != 0:
        for p in [src, *src.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        yield src
        for p in [src, *src.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        return
    ro = tmp_path / "ro"  # root writes anywhere: a read-only bind mount is read-only for root
    ro.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("root without mount(8): cannot make a read-only folder")
    ok = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip("root may not mount here: cannot make a read-only folder")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_resume_in_a_read_only_run_folder(files: Files, read_only_run: Path) -> None:
    """Resuming there was a PermissionError traceback from the search log."""
    config = json.loads((files.d / "sim.yaml").read_text()) | {"run_dir": str(read_only_run)}
    path = read_only_run.parent / "ro.yaml"
    path.write_text(json.dumps(config))
    check_one_line(*run_cli(["search", str(path), "-q"]), r"run folder .* is not writable")


def test_report_in_a_read_only_run_folder(read_only_run: Path) -> None:
    """``tgsage report`` there was a PermissionError traceback."""
    check_one_line(
        *run_cli(["report", str(read_only_run)]),
        r"cannot use .*report: (Permission denied|Read-only file system)",
    )
