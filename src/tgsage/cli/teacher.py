"""``tgsage teacher build`` / ``tgsage teacher show``: make and inspect teacher files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from tgsage.cli.common import (
    DATA_HELP,
    console,
    friendly_errors,
    load_data,
    threads_option,
    use_threads,
)
from tgsage.cli.display import training_progress

teacher_app = typer.Typer(
    help="Build and inspect teachers (teacher RDMs on a probe set).", no_args_is_help=True
)


@teacher_app.command("build")
@friendly_errors
def teacher_build(
    source: str = typer.Option(
        "resnet",
        help="resnet (train the paper's CIFAR ResNet), module "
        "(a torch module + layers), export (a network tgsage trained and exported: "
        "--model-dir), recording (neural data), rdms.",
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
    model_dir: Path | None = typer.Option(
        None,
        help="source=export: a model folder written by 'tgsage train' / 'tgsage export' "
        "(default layers: the end of each stage, from its model card).",
    ),
    layers: str | None = typer.Option(None, help="Comma-separated layer names to use."),
    recording: Path | None = typer.Option(None, help="source=recording: .nc/.npz/.csv file."),
    rdms: Path | None = typer.Option(None, help="source=rdms: .npz of RDMs (or rsatoolbox)."),
    subsamples: int = typer.Option(
        10, help="Random feature subsamples per teacher RDM (network sources; 0 = none)."
    ),
    method: str = typer.Option("correlation", help="RDM distance."),
    comparison: str = typer.Option("pearson", help="RDM comparison used when scoring."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, ..."),
    threads: int | None = threads_option(),
    seed: int = typer.Option(0, help="Seed for data, training and subsampling."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Build a teacher file from a trained network, any module, recordings or saved RDMs."""
    use_threads(threads)
    import importlib

    import torch

    from tgsage.data.neural import load_recording
    from tgsage.data.probe import ProbeSet
    from tgsage.errors import ConfigError, DataError
    from tgsage.teacher import (
        teacher_from_export,
        teacher_from_network,
        teacher_from_rdms,
        teacher_from_recording,
    )

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
        total = trainer.expected_examples(budget)
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
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except FileNotFoundError:
                raise DataError(f"weights file {weights} not found") from None
            except Exception as exc:  # torch: not a state_dict, unpickling refused, bad keys
                detail = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                raise DataError(
                    f"cannot load {weights} into {module}: {detail}; give a state_dict saved "
                    "with torch.save(model.state_dict(), path) for that module"
                ) from None
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
    elif source == "export":
        if model_dir is None:
            raise ConfigError("source=export needs --model-dir FOLDER (from 'tgsage train')")
        teacher = teacher_from_export(
            model_dir,
            probe_set,
            layers=layer_list,
            grouping=grouping,
            method=method,
            comparison=comparison,
            subsamples=k,
            seed=seed,
            device=device,
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
        raise ConfigError(
            f"unknown teacher source {source!r}: resnet, module, export, recording, rdms"
        )
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


def register(app: typer.Typer) -> None:
    """Add the ``teacher`` group to ``app``."""
    app.add_typer(teacher_app, name="teacher")
