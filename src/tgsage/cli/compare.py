"""``tgsage compare``: RDMs, TG and the score of two sets of activations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tgsage.cli.common import console, friendly_errors

if TYPE_CHECKING:
    import numpy as np


def _example_activations(seed: int = 0) -> tuple[dict, dict, np.ndarray]:
    """A toy 'teacher' and 'candidate' seeing 64 images of 8 categories (for --example)."""
    import numpy as np

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
    import numpy as np

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


def register(app: typer.Typer) -> None:
    """Add ``compare`` to ``app``."""
    app.command("compare")(compare)
