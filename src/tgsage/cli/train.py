"""``tgsage train`` and ``tgsage export``: final training of a found architecture, and files
other tools load (safetensors + model card, ONNX)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _is_run(target: str) -> bool:
    """Whether TARGET names a search's run folder (it holds the search's journal)."""
    return (Path(target) / "search.journal").is_file()


def _data_for(target: str, data: str | None, **options: Any) -> Any:
    """``--data`` if given, else the search's own data when TARGET is a run folder, else the
    synthetic objects."""
    if data is None and _is_run(target):
        from tgsage.data.registry import get_dataset
        from tgsage.search.locate import resolve_run

        cfg = resolve_run(target).config
        console.print(f"data: the search's ({cfg.data.name})")
        return get_dataset(cfg.data.name, **cfg.data.options)
    return load_data(data or "synthetic", **options)


def _default_out(target: str, spec_hash: str) -> Path:
    if _is_run(target):
        return Path(target) / "final"
    return Path("runs") / f"final-{spec_hash}"


@friendly_errors
def train(
    target: str = typer.Argument(
        ...,
        help="A search run folder (its best candidate: rerank.json's choice, else the top "
        "score), a spec JSON file, inline JSON, preset:NAME or random:SPACE[:SEED].",
    ),
    preset: str = typer.Option(
        "cifar_final", help="Final preset: cifar_final, imagenet_mobile, imagenet64."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder: checkpoint, model.safetensors, model.json, final.json "
        "(default: RUN_DIR/final, or runs/final-<spec hash>).",
    ),
    data: str | None = typer.Option(
        None, help=DATA_HELP + " Default: the search's data for a run folder, else synthetic."
    ),
    data_root: Path | None = typer.Option(None, help="Folder holding the dataset files."),
    train_size: int | None = typer.Option(None, help="Training images."),
    val_size: int | None = typer.Option(None, help="Validation images."),
    resolution: int | None = typer.Option(None, help="Synthetic image size."),
    epochs: float | None = typer.Option(
        None, help="Schedule length (default: the preset's, e.g. 600 for cifar_final)."
    ),
    num_cells: int | None = typer.Option(None, help="Cell networks: N (cells per stage)."),
    filters: int | None = typer.Option(None, help="Cell networks: F (first-stage filters)."),
    width_mult: float = typer.Option(1.0, help="Width multiplier (CPU-scale runs: 0.25-0.5)."),
    auxiliary: bool | None = typer.Option(
        None, "--aux/--no-aux", help="Auxiliary head (default: the preset's)."
    ),
    drop_path: float | None = typer.Option(None, help="Final drop-path rate (preset's)."),
    train_option: list[str] = typer.Option(
        [],
        "--train-option",
        help="Override a training-config field, KEY=VALUE (repeatable), e.g. batch_size=64.",
    ),
    train_on: str = typer.Option(
        "auto",
        help="auto (train+val when there is a test split, which is then held out; else "
        "train, with val held out), train, train+val.",
    ),
    onnx: bool = typer.Option(
        False, "--onnx", help="Also write model.onnx (needs the onnx extra)."
    ),
    restart: bool = typer.Option(
        False, "--restart", help="Ignore a checkpoint in the output folder and start over."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda, ..."),
    threads: int | None = threads_option(),
    seed: int = typer.Option(0, help="Seed of weights, data order and augmentation."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a found architecture with the paper's final recipe; resumes after a kill."""
    use_threads(threads)
    from tgsage.experiments import best_candidate
    from tgsage.train import parse_train_options
    from tgsage.train.final import get_final_preset, resolve_spec, train_final

    fp = get_final_preset(preset)
    overrides = parse_train_options(train_option)
    spec, origin = resolve_spec(best_candidate(target) if _is_run(target) else target, fp.setting)
    splits = _data_for(
        target,
        data,
        root=data_root,
        train_size=train_size,
        val_size=val_size,
        resolution=resolution,
        seed=seed,
    )
    out_dir = out if out is not None else _default_out(target, spec.spec_hash)
    cfg = fp.config(**({**overrides, "epochs": epochs} if epochs is not None else overrides))
    has_test = splits.test is not None and len(splits.test) > 0
    n_train = len(splits.train) + (len(splits.val) if has_test and train_on != "train" else 0)
    total = cfg.examples_for("mature", n_train)
    if not (quiet or as_json):
        console.print(f"training {origin} ({spec.kind}, {spec.spec_hash}) -> {out_dir}")
    with training_progress(f"{preset}", total, not (quiet or as_json)) as cb:
        result = train_final(
            target if isinstance(target, str) and target.startswith("preset:") else spec,
            splits,
            preset,
            out_dir,
            epochs=epochs,
            num_cells=num_cells,
            filters=filters,
            width_mult=width_mult,
            auxiliary=auxiliary,
            drop_path=drop_path,
            train_options=overrides,
            train_on=train_on,  # type: ignore[arg-type]
            device=device,
            seed=seed,
            resume=not restart,
            onnx=onnx,
            progress=cb,
        )
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        table = Table(title=f"final training ({preset})")
        table.add_column("field")
        table.add_column("value")
        rows = {
            "architecture": f"{origin} ({result.spec.kind}, {result.spec.spec_hash})",
            "parameters": f"{result.params:,} (auxiliary head excluded)",
            "epochs": f"{result.epochs:g}"
            + (f" (resumed at {result.resumed_from})" if result.resumed_from else ""),
            f"{result.held_out} accuracy": "-"
            if result.accuracy is None
            else f"{result.accuracy:.4f}",
            "examples": f"{result.examples:,}",
            "train seconds": f"{result.seconds:.0f}",
            "output": str(out_dir),
        }
        rows.update({f"note {i + 1}": n for i, n in enumerate(result.notes)})
        for k, v in rows.items():
            table.add_row(k, v)
        console.print(table)
    if not result.ok:
        console.print(
            f"[bold red]training failed:[/] {result.failure_reason}: {result.message} "
            f"(the checkpoint of epoch {len(result.history)} is kept)"
        )
        raise typer.Exit(code=1)


@friendly_errors
def export(
    source: str = typer.Argument(
        ...,
        help="A model folder (model.safetensors), a .safetensors file, or the output folder "
        "of an unfinished 'tgsage train' (exports its last checkpointed epoch).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder to write (default: the source folder)."
    ),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Write model.onnx."),
    check: bool = typer.Option(
        True, "--check/--no-check", help="Compare ONNX and PyTorch outputs (onnxruntime)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write a trained network as safetensors + model card and ONNX, and check the ONNX file."""
    import torch

    from tgsage.export import (
        CARD_FILE,
        ONNX_ATOL,
        ONNX_FILE,
        ONNX_RTOL,
        WEIGHTS_FILE,
        check_onnx,
        export_onnx,
        load_model,
        save_model,
    )
    from tgsage.train.final import CHECKPOINT_FILE, model_from_checkpoint

    src = Path(source)
    folder = src if src.is_dir() else src.parent
    dest = out if out is not None else folder
    report: dict[str, Any] = {"source": str(src), "out": str(dest)}
    if src.is_dir() and not (src / WEIGHTS_FILE).exists() and (src / CHECKPOINT_FILE).exists():
        model, ident = model_from_checkpoint(src)
        save_model(
            model,
            dest,
            ident["spec"],
            num_classes=ident["num_classes"],
            input_shape=ident["input_shape"],
            width_mult=ident["width_mult"],
            provenance={"checkpoint": str(src / CHECKPOINT_FILE), "epoch": ident["epoch"]},
        )
        report["from_checkpoint_epoch"] = ident["epoch"]
        model = load_model(dest)
    else:
        model = load_model(src)
        if dest.resolve() != folder.resolve():
            card = model.card  # type: ignore[attr-defined]
            save_model(
                model,
                dest,
                card.arch,
                num_classes=card.num_classes,
                input_shape=card.input_shape,
                width_mult=card.width_mult,
                normalize=card.normalize,
                metrics=card.metrics,
                provenance=card.provenance,
            )
    card = model.card  # type: ignore[attr-defined]
    report["weights"] = str(dest / WEIGHTS_FILE)
    report["card"] = str(dest / CARD_FILE)
    if onnx:
        path = export_onnx(model, dest / ONNX_FILE, card.input_shape)
        report["onnx"] = str(path)
        if check:
            images = torch.randn(8, *card.input_shape, generator=torch.Generator().manual_seed(0))
            diff, ok = check_onnx(path, model, images)
            report["onnx_max_abs_diff"] = diff
            report["onnx_within_tolerance"] = ok
            report["onnx_tolerance"] = {"rtol": ONNX_RTOL, "atol": ONNX_ATOL}
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        console.print(f"{key}: {value}")
    if report.get("onnx_within_tolerance") is False:
        console.print("[bold red]ONNX outputs differ from PyTorch beyond the tolerance[/]")
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``export`` to ``app``."""
    app.command("train")(train)
    app.command("export")(export)
