"""The ``tgsage`` command line: a thin layer over the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from tgsage import __version__
from tgsage.cli_common import (
    console,
    err_console,
    expected_examples,
    friendly_errors,
    load_data,
    read_spec,
    training_progress,
)

app = typer.Typer(
    name="tgsage",
    help="Teacher-guided neural architecture search (TG-SAGE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tgsage {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Teacher-guided neural architecture search (TG-SAGE)."""


def _example_activations(seed: int = 0) -> tuple[dict, dict, np.ndarray]:
    """A toy 'teacher' and 'candidate' seeing 64 images of 8 categories (for --example)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(8), 8)
    prototypes = rng.standard_normal((8, 32))
    latent = prototypes[labels] + 0.8 * rng.standard_normal((64, 32))
    teacher = {
        f"L{i + 1}": np.maximum(latent @ rng.standard_normal((32, 256)), 0) for i in range(3)
    }
    candidate = {
        "conv1": rng.standard_normal((64, 128)) + 0.2 * latent[:, :1],
        "conv2": np.maximum(latent[:, :16] @ rng.standard_normal((16, 128)), 0)
        + rng.standard_normal((64, 128)),
        "conv3": np.maximum(latent @ rng.standard_normal((32, 128)), 0),
    }
    return teacher, candidate, labels


@app.command()
@friendly_errors
def compare(
    teacher: Path | None = typer.Argument(
        None, help="Teacher activations: .npz (one array per layer) or .npy."
    ),
    candidate: Path | None = typer.Argument(None, help="Candidate activations, same images."),
    rdm: str = typer.Option("correlation", help="RDM distance: correlation, cosine, euclidean."),
    comparison: str = typer.Option(
        "pearson", help="pearson, spearman, kendall_a, or cka (features)."
    ),
    groups: Path | None = typer.Option(None, help=".npy of one label per image: grouped RDMs."),
    subsamples: int | None = typer.Option(
        None, help="Average teacher RDMs over K random feature subsamples (paper: 10)."
    ),
    accuracy: float | None = typer.Option(None, help="Premature accuracy P to print P+alpha*TG."),
    alpha: float = typer.Option(1.0, help="Weight of TG in the score."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    example: bool = typer.Option(False, "--example", help="Run on built-in toy activations."),
) -> None:
    """Compare two networks' (or a network's and a brain's) representations: RDMs, TG, score."""
    from tgsage import rsa
    from tgsage.errors import InputError
    from tgsage.rsa.files import load_activations

    if example:
        t_layers, c_layers, labels = _example_activations()
        accuracy = 0.42 if accuracy is None else accuracy
    else:
        if teacher is None or candidate is None:
            raise InputError("give TEACHER and CANDIDATE activation files, or --example")
        t_layers, c_layers = load_activations(teacher), load_activations(candidate)
        labels = np.load(groups, allow_pickle=False) if groups is not None else None
    if comparison == "cka":
        sim = rsa.cka(t_layers, c_layers, groups=labels)
        guidance = rsa.teacher_guidance(sim, list(t_layers), list(c_layers))
    else:
        t_rdms = rsa.compute_rdms(t_layers, rdm, groups=labels, subsamples=subsamples)
        guidance = rsa.score_against_teacher(t_rdms, c_layers, comparison, groups=labels)
    result = guidance.as_dict()
    if accuracy is not None:
        result["accuracy"] = accuracy
        result["alpha"] = alpha
        result["score"] = guidance.score(accuracy, alpha)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(
        title=f"{comparison} similarity of {rdm} RDMs" if comparison != "cka" else "linear CKA"
    )
    table.add_column("teacher layer")
    for name in guidance.candidate_layers:
        table.add_column(name, justify="right")
    table.add_column("S_i (best)", justify="right", style="bold")
    for i, t_name in enumerate(guidance.teacher_layers):
        row = [f"{v:.3f}" for v in guidance.similarity[i].tolist()]
        table.add_row(t_name, *row, f"{guidance.per_layer[i]:.3f} ({guidance.best_match[i]})")
    console.print(table)
    console.print(f"TG = mean S_i = [bold]{guidance.tg:.4f}[/]")
    if accuracy is not None:
        console.print(
            f"score = P + alpha*TG = {accuracy:.4f} + {alpha:g} * {guidance.tg:.4f} "
            f"= [bold]{result['score']:.4f}[/]"
        )


# --------------------------------------------------------------------------- teacher

teacher_app = typer.Typer(
    help="Build and inspect teachers (teacher RDMs on a probe set).", no_args_is_help=True
)
app.add_typer(teacher_app, name="teacher")

DATA_HELP = "Dataset: synthetic (no download), cifar10, cifar100, folder."


@teacher_app.command("build")
@friendly_errors
def teacher_build(
    source: str = typer.Option(
        "resnet",
        help="resnet (train the paper's CIFAR ResNet), module "
        "(a torch module + layers), recording (neural data), rdms.",
    ),
    out: Path = typer.Option(Path("teacher.npz"), "--out", "-o", help="Teacher file to write."),
    data: str = typer.Option("synthetic", help=DATA_HELP),
    data_root: Path | None = typer.Option(None, help="Folder holding the dataset files."),
    train_size: int | None = typer.Option(None, help="Training images (default: dataset's)."),
    val_size: int | None = typer.Option(None, help="Validation images (the probe set)."),
    resolution: int | None = typer.Option(None, help="Synthetic image size (default 32)."),
    probe_size: int | None = typer.Option(
        None, help="Use the first N validation images as probe (default: all, as in the paper)."
    ),
    probe: Path | None = typer.Option(None, help="A saved probe set (.npz) instead."),
    grouping: str | None = typer.Option(
        None, help="Group RDMs by a probe labeling, e.g. category or object (default: per image)."
    ),
    depth_n: int = typer.Option(9, "--n", help="ResNet blocks per stack (6n+2 layers)."),
    width_mult: float = typer.Option(1.0, help="ResNet width multiplier (CPU runs: 0.25-0.5)."),
    budget: str = typer.Option("mature", help="Teacher training budget, e.g. 30ep, mature."),
    preset: str = typer.Option("resnet_cifar_teacher", help="Training preset."),
    module: str | None = typer.Option(
        None, help="source=module: 'pkg.mod:factory' returning an nn.Module."
    ),
    weights: Path | None = typer.Option(None, help="source=module: state_dict file to load."),
    layers: str | None = typer.Option(None, help="Comma-separated layer names to use."),
    recording: Path | None = typer.Option(None, help="source=recording: .nc/.npz/.csv file."),
    rdms: Path | None = typer.Option(None, help="source=rdms: .npz of RDMs (or rsatoolbox)."),
    subsamples: int = typer.Option(
        10, help="Random feature subsamples per teacher RDM (network sources; 0 = none)."
    ),
    method: str = typer.Option("correlation", help="RDM distance."),
    comparison: str = typer.Option("pearson", help="RDM comparison used when scoring."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, ..."),
    seed: int = typer.Option(0, help="Seed for data, training and subsampling."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Build a teacher file from a trained network, any module, recordings or saved RDMs."""
    import importlib

    import torch

    from tgsage.data.neural import load_recording
    from tgsage.data.probe import ProbeSet
    from tgsage.errors import ConfigError
    from tgsage.teacher import teacher_from_network, teacher_from_rdms, teacher_from_recording

    layer_list = [s.strip() for s in layers.split(",")] if layers else None
    needs_data = source in ("resnet",) or probe is None
    splits = (
        load_data(data, data_root, train_size, val_size, resolution, seed) if needs_data else None
    )
    if probe is not None:
        probe_set = ProbeSet.load(probe)
    else:
        assert splits is not None
        probe_set = ProbeSet.from_images(splits.val, max_images=probe_size)
    k = subsamples if subsamples > 0 else None
    if source == "resnet":
        from tgsage.models import get_model
        from tgsage.train import Trainer

        assert splits is not None
        model = get_model(
            "resnet_cifar",
            n=depth_n,
            num_classes=splits.num_classes,
            width_mult=width_mult,
            in_channels=splits.train.image_shape[0],
        )
        trainer = Trainer(model, splits, preset, device=device, seed=seed)
        total = expected_examples(budget, len(splits.train), preset)
        with training_progress(f"teacher ResNet-{6 * depth_n + 2}", total, not quiet) as cb:
            trainer.progress = cb
            result = trainer.train_until(budget)
        result.raise_if_failed()
        console.print(
            f"teacher trained: val accuracy {result.val_accuracy:.4f}, "
            f"{result.examples:,} examples, {result.seconds:.0f} s"
        )
        teacher = teacher_from_network(
            model,
            probe_set,
            grouping=grouping,
            method=method,
            comparison=comparison,
            subsamples=k,
            seed=seed,
            device=device,
            provenance={
                "model": f"resnet_cifar(n={depth_n}, width_mult={width_mult})",
                "data": data,
                "val_accuracy": result.val_accuracy,
                "train_examples": result.examples,
                "budget": budget,
            },
        )
    elif source == "module":
        if module is None or ":" not in module:
            raise ConfigError("source=module needs --module 'package.module:factory'")
        mod_name, fn_name = module.split(":", 1)
        try:
            factory = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import {module}: {exc}") from None
        model = factory()
        if weights is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        teacher = teacher_from_network(
            model,
            probe_set,
            layers=layer_list,
            grouping=grouping,
            method=method,
            comparison=comparison,
            subsamples=k,
            seed=seed,
            device=device,
            provenance={"module": module, "weights": str(weights) if weights else None},
        )
    elif source == "recording":
        if recording is None:
            raise ConfigError("source=recording needs --recording FILE (.nc, .npz or .csv)")
        teacher = teacher_from_recording(
            load_recording(recording),
            probe_set,
            regions=layer_list,
            grouping=grouping,
            method=method,
            comparison=comparison,
            provenance={"recording": str(recording)},
        )
    elif source == "rdms":
        if rdms is None:
            raise ConfigError("source=rdms needs --rdms FILE")
        teacher = teacher_from_rdms(
            rdms,
            probe_set,
            grouping=grouping,
            comparison=comparison,
            provenance={"rdms": str(rdms)},
        )
    else:
        raise ConfigError(f"unknown teacher source {source!r}: resnet, module, recording, rdms")
    teacher.save(out)
    console.print(f"wrote {out}: {teacher!r}")
    if teacher.noise_ceiling:
        console.print(
            "noise ceiling (RDM split-half, Spearman-Brown): "
            + ", ".join(f"{r} {v:.3f}" for r, v in teacher.noise_ceiling.items())
        )


@teacher_app.command("show")
@friendly_errors
def teacher_show(path: Path = typer.Argument(..., help="Teacher file.")) -> None:
    """Summarise a teacher file: layers, conditions, probe, settings, provenance."""
    from tgsage.teacher import Teacher

    t = Teacher.load(path)
    table = Table(title=str(path))
    table.add_column("field")
    table.add_column("value")
    rows = {
        "source": t.source,
        "layers": ", ".join(t.layers),
        "conditions": f"{t.rdms.n_conditions} ({t.grouping or 'images'})",
        "probe fingerprint": t.probe_fingerprint,
        "probe images": "attached" if t.probe is not None else "not attached",
        "RDM method": t.method,
        "comparison": t.comparison,
        "subsampling": json.dumps(
            {k: v for k, v in t.rdms.metadata.items() if k.startswith("subsample")}
        ),
        "provenance": json.dumps(t.provenance),
    }
    if t.noise_ceiling:
        rows["noise ceiling"] = json.dumps(t.noise_ceiling)
    for k, v in rows.items():
        table.add_row(k, v)
    console.print(table)


# --------------------------------------------------------------------------- evaluate


@app.command()
@friendly_errors
def evaluate(
    spec: str = typer.Argument(
        ...,
        help="Spec JSON file, inline JSON, preset:NAME or "
        "random:layer[:SEED] / random:cell[:SEED].",
    ),
    teacher: Path | None = typer.Option(None, help="Teacher file (needed for tg and p+tg)."),
    data: str = typer.Option("synthetic", help=DATA_HELP),
    data_root: Path | None = typer.Option(None, help="Folder holding the dataset files."),
    train_size: int | None = typer.Option(None, help="Training images."),
    val_size: int | None = typer.Option(None, help="Validation images."),
    resolution: int | None = typer.Option(None, help="Synthetic image size."),
    budget: str = typer.Option("2ep", help="Premature budget: 2ep, 0.2ep, 500steps, 20000ex."),
    preset: str | None = typer.Option(None, help="Training preset (default: layer space)."),
    score: str = typer.Option("p+tg", help="p, tg or p+tg."),
    alpha: float = typer.Option(1.0, help="Weight of TG."),
    width_mult: float = typer.Option(1.0, help="Width multiplier for CPU runs."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, ..."),
    seed: int = typer.Option(0, help="Seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train one candidate briefly and report P, per-layer S_i, TG, score and cost."""
    from tgsage.evaluate import evaluate_candidate
    from tgsage.teacher import Teacher

    arch = read_spec(spec)
    t = Teacher.load(teacher) if teacher is not None else None
    splits = load_data(data, data_root, train_size, val_size, resolution, seed)
    total = expected_examples(budget, len(splits.train), preset)
    with training_progress("candidate", total, not (quiet or as_json)) as cb:
        result = evaluate_candidate(
            arch,
            splits,
            t,
            budget=budget,
            config=preset,
            score=score,
            alpha=alpha,
            width_mult=width_mult,
            device=device,
            seed=seed,
            progress=cb,
        )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        table = Table(title=f"candidate {result.spec_hash or ''}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("status", result.status if result.ok else f"failed: {result.failure_reason}")
        if result.accuracy is not None:
            table.add_row("P (val accuracy)", f"{result.accuracy:.4f}")
        for name, s in result.per_layer.items():
            table.add_row(f"S {name} (best: {result.best_match[name]})", f"{s:.4f}")
        if result.tg is not None:
            table.add_row("TG", f"{result.tg:.4f}")
        if result.score is not None:
            table.add_row(f"score ({score}, alpha={alpha:g})", f"{result.score:.4f}")
        table.add_row("cost (examples)", f"{result.examples:,}")
        table.add_row(
            "train / score seconds", f"{result.train_seconds:.1f} / {result.score_seconds:.1f}"
        )
        console.print(table)
        if not result.ok:
            err_console.print(f"[bold red]candidate failed:[/] {result.message}")
    if not result.ok:
        raise typer.Exit(code=1)


# --------------------------------------------------------------------------- demo


@app.command()
@friendly_errors
def demo(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Demo settings (YAML); default: built-in, the same as configs/demo.yaml.",
    ),
    run_dir: Path | None = typer.Option(None, help="Run folder (default runs/demo)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
    seed: int | None = typer.Option(None, help="Seed of data, teacher and search."),
    tiny: bool = typer.Option(
        False, "--tiny", help="A seconds-long smoke run (tiny images, 4 candidates)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The whole pipeline on synthetic objects: teacher, search (TPE, P+TG), rerank, report.

    About 4 minutes on a 2-core CPU; re-running reuses what is cached in the run folder.
    """
    from tgsage.demo import DemoConfig, run_demo

    if tiny:
        cfg = DemoConfig.tiny(run_dir or Path("runs/demo-tiny"))
    else:
        cfg = DemoConfig.load(config, run_dir=run_dir, device=device, seed=seed)
    out = run_demo(cfg, progress=not quiet, console=console)
    console.print(f"\n[bold green]done.[/] report: {out['report']}")


# --------------------------------------------------------------------------- search & co.
from tgsage.experiments.cli_commands import register as _register_experiments  # noqa: E402
from tgsage.search.cli_commands import register as _register_search  # noqa: E402

_register_search(app)
_register_experiments(app)
