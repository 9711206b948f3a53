"""Teacher guidance: ``S_i = max_j sim(T_i, C_j)``, ``TG = mean_i S_i``, ``score = P + alpha TG``.

A candidate is scored against a fixed teacher (network layers or brain regions): every teacher
RDM is compared with every candidate RDM, each teacher layer keeps its best-matching candidate
layer, and TG is the mean of those best similarities (paper section 3.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tgsage.errors import InputError
from tgsage.rsa._tensor import ArrayLike
from tgsage.rsa.compare import compare
from tgsage.rsa.rdm import RDMs, compute_rdms


@dataclass(frozen=True)
class Guidance:
    """The teacher x candidate similarity matrix and what TG-SAGE derives from it."""

    similarity: torch.Tensor  # (n_teacher, n_candidate), float64, on CPU
    teacher_layers: tuple[str, ...]
    candidate_layers: tuple[str, ...]
    per_layer: tuple[float, ...]  # S_i for each teacher layer
    best_match: tuple[str, ...]  # the candidate layer achieving S_i
    tg: float

    def score(self, accuracy: float, alpha: float = 1.0) -> float:
        """``P + alpha * TG`` with P the premature accuracy as a fraction."""
        return combined_score(accuracy, self.tg, alpha)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for logs, databases and JSON."""
        return {
            "tg": self.tg,
            "per_layer": dict(zip(self.teacher_layers, self.per_layer, strict=True)),
            "best_match": dict(zip(self.teacher_layers, self.best_match, strict=True)),
            "teacher_layers": list(self.teacher_layers),
            "candidate_layers": list(self.candidate_layers),
            "similarity": self.similarity.tolist(),
        }


def combined_score(accuracy: float, tg: float, alpha: float = 1.0) -> float:
    """The paper's search score ``P + alpha * TG`` (P as a fraction in [0, 1])."""
    if not (math.isfinite(accuracy) and math.isfinite(tg) and math.isfinite(alpha)):
        raise InputError(f"score inputs must be finite: P={accuracy}, TG={tg}, alpha={alpha}")
    return float(accuracy + alpha * tg)


def teacher_guidance(
    similarity: ArrayLike,
    teacher_layers: Sequence[str] | None = None,
    candidate_layers: Sequence[str] | None = None,
) -> Guidance:
    """TG from a (n_teacher x n_candidate) similarity matrix.

    Ties between candidate layers go to the first (shallowest) one. The result does not depend
    on the order of candidate layers (apart from which of tied names is reported).
    """
    sim = torch.as_tensor(similarity, dtype=torch.float64).detach().cpu()
    if sim.ndim != 2 or sim.shape[0] == 0 or sim.shape[1] == 0:
        raise InputError(
            f"similarity must be a non-empty (teacher x candidate) matrix, got {tuple(sim.shape)}"
        )
    if not bool(torch.isfinite(sim).all()):
        raise InputError("similarity matrix contains NaN or inf")
    t_names = (
        tuple(teacher_layers)
        if teacher_layers is not None
        else tuple(f"T{i + 1}" for i in range(sim.shape[0]))
    )
    c_names = (
        tuple(candidate_layers)
        if candidate_layers is not None
        else tuple(f"C{j + 1}" for j in range(sim.shape[1]))
    )
    if len(t_names) != sim.shape[0] or len(c_names) != sim.shape[1]:
        raise InputError(
            f"{len(t_names)} teacher / {len(c_names)} candidate names for a similarity "
            f"matrix of shape {tuple(sim.shape)}"
        )
    best, arg = sim.max(dim=1)
    per_layer = tuple(float(v) for v in best)
    return Guidance(
        similarity=sim,
        teacher_layers=t_names,
        candidate_layers=c_names,
        per_layer=per_layer,
        best_match=tuple(c_names[j] for j in arg.tolist()),
        tg=float(best.mean()),
    )


def score_against_teacher(
    teacher: RDMs,
    candidate: RDMs | ArrayLike | Mapping[str, ArrayLike],
    comparison: str = "pearson",
    *,
    groups: ArrayLike | None = None,
    probe_fingerprint: str | None = None,
    device: torch.device | str | None = None,
) -> Guidance:
    """Teacher guidance of a candidate given its RDMs or its layer activations.

    Activations are turned into RDMs with the teacher's method and group order, so the two sides
    are always comparable. ``probe_fingerprint`` names the images the activations came from;
    it is checked against the teacher's, and RDMs measured on another probe set are refused.
    """
    if not isinstance(candidate, RDMs):
        if teacher.conditions is not None and groups is None:
            raise InputError(
                "the teacher RDMs are grouped; pass the probe images' group labels (groups=...)"
            )
        candidate = compute_rdms(
            candidate,
            teacher.method,
            groups=groups,
            group_order=teacher.conditions if groups is not None else None,
            device=device if device is not None else teacher.dissimilarities.device,
        )
    if probe_fingerprint is not None:
        candidate = candidate.with_metadata(probe_fingerprint=probe_fingerprint)
    sim = compare(teacher, candidate.to(teacher.dissimilarities.device), comparison)
    return teacher_guidance(sim, teacher.names, candidate.names)
