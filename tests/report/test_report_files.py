"""Every figure is a real PNG; the HTML page is self-contained and holds the leaderboard."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from tgsage.experiments import (
    BudgetPoint,
    PoolRecord,
    alpha_sweep,
    best_so_far,
    compare_searches,
    predictivity_table,
    rerank,
)
from tgsage.report import (
    Section,
    build_predictivity_report,
    build_search_report,
    draw_cell,
    draw_layer_network,
    draw_spec,
    plot_alpha_sweep,
    plot_best_so_far,
    plot_predictivity,
    plot_rdm_heatmap,
    plot_scatter,
    plot_similarity_matrix,
    table_html,
    write_html_report,
)
from tgsage.rsa import RDMs
from tgsage.spaces import RandomSuggester, get_cell_preset, get_space
from tgsage.teacher import Teacher

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert len(data) > 1000 and data.startswith(PNG), path


def random_rdm(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 2, (n, n))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 0)
    return m


def search_records(n: int = 12) -> list[dict]:
    rng = np.random.default_rng(0)
    layer = get_space("layer", max_layers=6)
    cell = get_space("cell")
    rows = []
    for i in range(n):
        spec = (layer if i % 2 else cell).sample(RandomSuggester(i))
        p, tg = float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.1, 0.9))
        rows.append(
            {
                "number": i,
                "spec": spec.to_json(),
                "spec_hash": spec.spec_hash,
                "P": p,
                "TG": tg,
                "score": p + tg,
                "examples": 1000 + 10 * i,
                "per_layer": {"L1": tg + 0.05, "L2": tg - 0.05},
                "similarity": [[0.1, tg + 0.05], [tg - 0.05, 0.2]],
                "teacher_layers": ["L1", "L2"],
                "candidate_layers": ["layer0", "layer1"],
                "mature_accuracy": p + float(rng.normal(0, 0.05)),
                "order": float(i),
                "train_seconds": 1.0,
                "score_seconds": 0.1,
            }
        )
    rows.append(
        {
            "number": n,
            "status": "failed",
            "failure_reason": "diverged",
            "examples": 300,
            "spec_hash": "dead<b>&beef",
        }
    )
    return rows


def test_every_plot_function_writes_a_png(tmp_path):
    recs = search_records()
    curve = best_so_far(recs)
    assert_png(plot_best_so_far(curve, tmp_path / "a.png"))
    runs = {"P": [recs[:6], recs[6:]], "P+TG": [recs[::2], recs[1::2]]}
    assert_png(plot_best_so_far(compare_searches(runs), tmp_path / "b.png"))
    assert_png(
        plot_scatter(
            [1, 2, 3, np.nan],
            [3, 1, 2, 5],
            tmp_path / "c.png",
            labels=["a", "b", "c", "d"],
            highlight=[0],
        )
    )
    assert_png(plot_rdm_heatmap(random_rdm(8, 0), tmp_path / "d.png", labels=list("abcdefgh")))
    rdms = RDMs.from_matrices(np.stack([random_rdm(6, 1), random_rdm(6, 2)]), ["L1", "L2"])
    assert_png(plot_rdm_heatmap(rdms, tmp_path / "e.png"))
    assert_png(
        plot_similarity_matrix(
            np.random.default_rng(0).uniform(size=(3, 5)),
            ["L1", "L2", "L3"],
            [f"c{i}" for i in range(5)],
            tmp_path / "f.png",
        )
    )
    spec = get_space("layer", max_layers=8).sample(RandomSuggester(5))
    assert_png(draw_layer_network(spec, tmp_path / "g.png"))
    assert_png(draw_layer_network(spec.to_json(), tmp_path / "g2.png"))
    assert_png(draw_cell(get_space("cell").sample(RandomSuggester(2)), tmp_path / "h.png"))
    nasnet = get_cell_preset("nasnet_a")
    paths = draw_spec(nasnet, tmp_path / "nasnet.png")
    assert len(paths) == (2 if nasnet.reduction is not None else 1)
    for p in paths:
        assert_png(p)
    assert_png(draw_cell(nasnet.normal, tmp_path / "i.png", concat="all"))
    pool = toy_pool()
    table = predictivity_table(pool, n_boot=30)
    alphas = alpha_sweep(pool, [0, 1, 2])
    assert_png(plot_predictivity(table, tmp_path / "j.png", alpha_rows=alphas))
    assert_png(
        plot_predictivity([r.as_dict() for r in table], tmp_path / "k.png", metric="precision_at_k")
    )
    assert_png(plot_alpha_sweep(alphas, tmp_path / "l.png"))


def test_plot_input_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plot_rdm_heatmap(np.zeros((3, 4)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="shape"):
        plot_similarity_matrix(np.zeros((2, 2)), ["a"], ["b", "c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="draw_cell"):
        draw_layer_network(get_cell_preset("nasnet_a"), tmp_path / "x.png")


def test_html_is_self_contained_and_escaped(tmp_path):
    img = plot_scatter([1, 2], [2, 1], tmp_path / "s.png")
    page = write_html_report(
        tmp_path / "r.html",
        "Title <&>",
        [
            Section("One", "text with <script>alert(1)</script>", [img], [{"a": "<b>", "n": 1.5}]),
            {"title": "Two", "table": [{"x": None, "y": float("nan")}]},
        ],
    )
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;b&gt;" in text
    assert "Title &lt;&amp;&gt;" in text
    assert_self_contained(text)
    b64 = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text).group(1)
    assert base64.b64decode(b64) == img.read_bytes()
    assert "<em>(no rows)</em>" in table_html([])


def assert_self_contained(text: str) -> None:
    assert "data:image/png;base64," in text
    assert "http://" not in text and "https://" not in text
    for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert ref.startswith("data:"), ref
    assert "<link" not in text and "@import" not in text and "url(" not in text


def test_search_report_files_and_leaderboard(tmp_path):
    recs = search_records()
    rdms = RDMs.from_matrices(np.stack([random_rdm(8, 3), random_rdm(8, 4)]), ["L1", "L2"])
    teacher = Teacher(rdms, probe_fingerprint="f00d")
    long = {r["number"]: {"accuracy": 0.5 + 0.01 * r["number"], "examples": 5000} for r in recs}
    rr = rerank(recs, 3, lambda r: long[r.number])
    files = build_search_report(
        recs,
        tmp_path / "out",
        teacher=teacher,
        rerank=rr,
        candidate_rdms=rdms,
        title="demo <search>",
    )
    names = {f.name for f in files}
    assert {
        "best_so_far.png",
        "best_so_far_mature.png",
        "scatter_score_p.png",
        "scatter_p_tg.png",
        "scatter_score_mature.png",
        "teacher_rdms.png",
        "candidate_rdms.png",
        "best_similarity.png",
        "architecture_1.png",
        "report.html",
    } <= names
    assert files[-1].name == "report.html"
    for f in files:
        assert f.exists() and f.stat().st_size > 0
        if f.suffix == ".png":
            assert_png(f)
    text = files[-1].read_text()
    assert_self_contained(text)
    assert text.count("data:image/png;base64,") == sum(f.suffix == ".png" for f in files)
    # leaderboard: the best 12 distinct candidates by score, each hash in a row
    ranked = sorted((r for r in recs if "score" in r), key=lambda r: -r["score"])
    for r in ranked:
        assert f'<td class="t">{r["spec_hash"]}</td>' in text
    body = text.split("Leaderboard</h2>")[1]
    positions = [body.index(r["spec_hash"]) for r in ranked]
    assert positions == sorted(positions)
    # cost table: search + rerank = total
    e1 = sum(r["examples"] for r in recs)
    assert f"{e1:,}" in text and f"{e1 + 15000:,}" in text
    assert "dead&lt;b&gt;&amp;beef" not in body.split("Cost</h2>")[0]  # failed: not ranked


def test_search_report_with_bare_records(tmp_path):
    # only scores and costs: no specs, no teacher, no similarity -> still a valid page
    recs = [{"number": i, "score": 0.1 * i, "examples": 10} for i in range(4)]
    files = build_search_report(recs, tmp_path)
    assert [f.name for f in files] == ["best_so_far.png", "report.html"]
    assert_self_contained(files[-1].read_text())


def toy_pool() -> list[PoolRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(15):
        m = float(rng.uniform(0.3, 0.8))
        pts = [
            BudgetPoint(
                b,
                5 * (j + 1),
                320 * (j + 1),
                0.5 * (j + 1),
                m / 2 + float(rng.normal(0, 0.1 / (j + 1))),
                float(rng.uniform(0, 1)),
                {"L1": float(rng.uniform(0, 1))},
            )
            for j, b in enumerate(["0.5ep", "1ep", "2ep"])
        ]
        out.append(PoolRecord(f"h{i}", "{}", points=pts, mature_accuracy=m, index=i))
    out.append(PoolRecord("x", "{}", status="failed", failure_reason="diverged"))
    return out


def test_predictivity_report(tmp_path):
    files = build_predictivity_report(toy_pool(), tmp_path, n_boot=30)
    names = [f.name for f in files]
    assert names == [
        "predictivity_pearson.png",
        "predictivity_spearman.png",
        "scatter_P.png",
        "scatter_P_TG.png",
        "predictivity_side_by_side.png",
        "report.html",
    ]
    for f in files[:-1]:
        assert_png(f)
    text = files[-1].read_text()
    assert_self_contained(text)
    assert "Alpha sweep" in text and "precision_at_k" in text and "S_L1" in text
    assert "Side by side: spearman" in text


def test_predictivity_report_with_proxies_and_table_truth(tmp_path):
    pool = toy_pool()
    rng = np.random.default_rng(1)
    for r in pool:
        r.proxies = {"synflow": float(rng.normal()), "params": float(rng.integers(1, 9))}
        r.mature_source = "table"
    files = build_predictivity_report(pool, tmp_path, n_boot=30)
    assert_png(tmp_path / "predictivity_side_by_side.png")
    text = files[-1].read_text()
    # the proxies appear once in each side-by-side grid, and the page says where truth came from
    assert text.count(">synflow<") >= 3 and "ground-truth table" in text
