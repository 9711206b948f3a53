"""Teachers: fixed RDMs per teacher layer (network layers or brain regions) on a probe set.

A :class:`Teacher` holds the RDMs, the fingerprint of the probe images they were measured on,
the grouping (e.g. ``"category"``), the comparison settings and provenance; it usually carries
the probe images too, so candidates are always measured on exactly the same images. Teacher
files are NPZ without pickle; loading verifies the probe, and scoring a candidate measured on
other images is refused with a message naming both fingerprints.

Sources: a trained network (the paper's CIFAR ResNet or any ``nn.Module`` with named layers),
neural recordings (one teacher layer per region, with a split-half noise ceiling), or saved
RDMs (NPZ, or rsatoolbox files when rsatoolbox is installed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tgsage import __version__
from tgsage.activations import collect_activations, feature_widths, layer_chunks, memory_budget
from tgsage.data.neural import Recording
from tgsage.data.npz import read_npz
from tgsage.data.probe import ProbeSet
from tgsage.errors import DataError, InputError, ProbeMismatchError, TgsageError
from tgsage.features import FeatureNet, as_feature_net
from tgsage.rsa import (
    Guidance,
    RDMs,
    compute_rdms,
    score_against_teacher,
    split_half_noise_ceiling,
    teacher_guidance,
)
from tgsage.rsa.kernels import Grams, compare_grams, gram_matrices
from tgsage.rsa.rdm import n_conditions_from_pairs

FORMAT = "tgsage-teacher/1"


@dataclass(frozen=True)
class Teacher:
    """Teacher RDMs on a fingerprinted probe set, plus everything needed to compare fairly."""

    rdms: RDMs
    probe_fingerprint: str
    grouping: str | None = None
    comparison: str = "pearson"
    source: str = "network"
    provenance: dict[str, Any] = field(default_factory=dict)
    probe: ProbeSet | None = None
    noise_ceiling: dict[str, float] | None = None
    grams: Grams | None = None  # image x image Gram matrices, for CKA / relation guidance

    def __post_init__(self) -> None:
        finite = torch.isfinite(self.rdms.dissimilarities).all(dim=1)
        if not bool(finite.all()):
            bad = [n for n, ok in zip(self.rdms.names, finite.tolist(), strict=True) if not ok]
            raise InputError(
                f"the teacher RDMs of {bad} contain NaN or infinite dissimilarities (a diverged "
                "teacher network or an edited file); every candidate would be scored against "
                "them - rebuild the teacher"
            )
        if self.probe is not None and self.probe.fingerprint != self.probe_fingerprint:
            raise ProbeMismatchError(
                f"teacher RDMs were measured on probe {self.probe_fingerprint} but the attached "
                f"probe images are {self.probe.fingerprint}"
            )
        if self.rdms.metadata.get("probe_fingerprint") != self.probe_fingerprint:
            object.__setattr__(
                self, "rdms", self.rdms.with_metadata(probe_fingerprint=self.probe_fingerprint)
            )

    @property
    def layers(self) -> tuple[str, ...]:
        return self.rdms.names

    @property
    def method(self) -> str:
        return self.rdms.method

    def __repr__(self) -> str:
        return (
            f"Teacher(source={self.source!r}, layers={list(self.layers)}, "
            f"conditions={self.rdms.n_conditions}, grouping={self.grouping!r}, "
            f"probe={self.probe_fingerprint})"
        )

    # ------------------------------------------------------------------ checks
    def check_probe(self, fingerprint: str) -> None:
        """Refuse activations measured on other probe images (naming both fingerprints)."""
        if fingerprint != self.probe_fingerprint:
            raise ProbeMismatchError(
                f"the teacher was measured on probe set {self.probe_fingerprint} but the "
                f"candidate on {fingerprint}; evaluate candidates on the teacher's probe "
                "images (Teacher.probe) or rebuild the teacher on yours"
            )

    def group_labels(self, probe: ProbeSet) -> torch.Tensor | None:
        """The probe labeling that defines the teacher's groups (None for per-image RDMs)."""
        if self.grouping is None:
            return None
        if self.grouping not in probe.labelings:
            raise InputError(
                f"the teacher groups by {self.grouping!r} but the probe set only has labelings "
                f"{list(probe.labelings)}"
            )
        return probe.labelings[self.grouping]

    def guidance(self, candidate: RDMs | Mapping[str, Any], probe_fingerprint: str) -> Guidance:
        """TG of a candidate from its RDMs or its (already grouped, if grouped) activations."""
        self.check_probe(probe_fingerprint)
        if not isinstance(candidate, RDMs):
            candidate = compute_rdms(candidate, self.method)
            if self.rdms.conditions is not None:
                candidate = RDMs(
                    candidate.dissimilarities,
                    candidate.names,
                    candidate.n_conditions,
                    candidate.method,
                    self.rdms.conditions,
                    candidate.metadata,
                )
        return score_against_teacher(
            self.rdms, candidate, self.comparison, probe_fingerprint=probe_fingerprint
        )

    def kernel_guidance(self, candidate: Grams, probe_fingerprint: str, method: str) -> Guidance:
        """TG with linear CKA (``"cka"``) or the relation similarity (``"relation"``) of the
        candidate's Gram matrices (:mod:`tgsage.rsa.kernels`) with the teacher's."""
        self.check_probe(probe_fingerprint)
        if self.grams is None:
            raise InputError(
                f"this teacher file has no Gram matrices, which TG with {method!r} needs; "
                "rebuild it with `tgsage teacher build` (tgsage 0.1 or later stores them)"
            )
        sim = compare_grams(self.grams, candidate, method)
        return teacher_guidance(sim, self.grams.names, candidate.names)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, include_probe: bool = True) -> Path:
        """Write an NPZ teacher file (no pickle); the probe images go in unless told not to."""
        path = Path(path)
        meta = {
            "format": FORMAT,
            "probe_fingerprint": self.probe_fingerprint,
            "grouping": self.grouping,
            "conditions": _jsonable(self.rdms.conditions),
            "n_conditions": self.rdms.n_conditions,
            "method": self.method,
            "comparison": self.comparison,
            "source": self.source,
            "provenance": _jsonable(self.provenance),
            "rdm_metadata": _jsonable(
                {k: v for k, v in self.rdms.metadata.items() if k != "probe_fingerprint"}
            ),
            "noise_ceiling": self.noise_ceiling,
            "tgsage_version": __version__,
        }
        arrays: dict[str, np.ndarray] = {
            "meta": np.array(json.dumps(meta)),
            "layers": np.array(self.layers, dtype=str),
            "rdms": self.rdms.dissimilarities.detach().cpu().to(torch.float32).numpy(),
        }
        if self.grams is not None:
            arrays["grams"] = self.grams.triangles().to(torch.float32).cpu().numpy()
            arrays["gram_layers"] = np.array(self.grams.names, dtype=str)
        if include_probe and self.probe is not None:
            arrays |= self.probe.to_arrays(prefix="probe.")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Teacher:
        """Read a teacher file; verifies its format and that attached probe images match."""
        path = Path(path)
        data = read_npz(path, "teacher file", "(re)build it with `tgsage teacher build`")
        try:
            meta = json.loads(str(data["meta"]))
            if not isinstance(meta, dict):
                raise ValueError("the metadata is not a mapping")
        except (KeyError, ValueError) as exc:
            raise DataError(
                f"{path} is not a tgsage teacher file (no readable metadata: {exc}); build one "
                "with `tgsage teacher build`"
            ) from None
        if meta.get("format") != FORMAT:
            raise DataError(
                f"{path}: unknown teacher format {meta.get('format')!r}, expected {FORMAT!r}"
            )
        probe = (
            ProbeSet.from_arrays(data, prefix="probe.", source=str(path))
            if "probe.images" in data
            else None
        )
        conditions = meta.get("conditions")
        try:
            rdms = RDMs(
                torch.from_numpy(data["rdms"]),
                tuple(str(s) for s in data["layers"]),
                int(meta["n_conditions"]),
                meta["method"],
                tuple(conditions) if conditions is not None else None,
                dict(meta.get("rdm_metadata") or {}),
            )
            grams = None
            if "grams" in data:
                grams = Grams.from_triangles(
                    data["grams"],
                    [str(x) for x in data["gram_layers"]],
                    tuple(conditions) if conditions is not None else None,
                )
            return cls(
                rdms,
                meta["probe_fingerprint"],
                meta.get("grouping"),
                meta.get("comparison", "pearson"),
                meta.get("source", "unknown"),
                meta.get("provenance") or {},
                probe,
                meta.get("noise_ceiling"),
                grams,
            )
        except KeyError as exc:
            raise DataError(f"{path}: the teacher file lacks {exc}; rebuild it") from None
        except TgsageError as exc:
            raise DataError(f"{path}: {exc}") from None


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars and tuples converted)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


# --------------------------------------------------------------------------- builders


def _feature_net(model: torch.nn.Module, layers: Sequence[str] | None) -> Any:
    """The FeatureNet to read ``layers`` from: the model itself when they are (a subset of)
    its own exposed layers, else the model with hooks on those submodules."""
    exposed = set(getattr(model, "feature_names", ()) or ())
    if layers is not None and isinstance(model, FeatureNet) and set(layers) <= exposed:
        return model  # a subset of the network's own exposed layers: no hooks needed
    return as_feature_net(model, list(layers) if layers is not None else None)


def _probe_labels(probe: ProbeSet, grouping: str | None) -> torch.Tensor | None:
    labels = probe.labelings.get(grouping) if grouping is not None else None
    if grouping is not None and labels is None:
        raise InputError(
            f"the probe set has no labeling {grouping!r}; it has {list(probe.labelings)}"
        )
    return labels


def probe_activations(
    net: Any,
    probe: ProbeSet,
    *,
    layers: Sequence[str] | None = None,
    labels: torch.Tensor | None = None,
    device: str | torch.device | None = "auto",
    batch_size: int = 250,
    normalize: str = "per_image",
) -> Iterator[dict[str, torch.Tensor]]:
    """A FeatureNet's probe-set activations, one chunk of layers at a time (bounded memory).

    Grouped activations (``labels``) are group means, all layers in one pass; per-image ones
    hold float32 activations of as many layers at a time as fit a quarter of free memory
    (more layers -> more forward passes)."""
    chunks: list[Any] = [list(layers) if layers is not None else None]
    if labels is None:
        from tgsage.data.pipeline import resolve_device

        dev = resolve_device(device)
        net.to(dev)
        widths = feature_widths(net, probe.images.shape[1:], dev)
        if layers is not None:
            widths = {k: widths[k] for k in layers}
        chunks = layer_chunks(widths, len(probe), memory_budget())
    for chunk in chunks:
        yield collect_activations(
            net,
            probe.images,
            layers=chunk,
            groups=labels,
            batch_size=batch_size,
            device=device,
            normalize=normalize,
        )


def group_order(labels: torch.Tensor | None) -> tuple[Any, ...] | None:
    """The order of the groups in grouped RDMs and Grams (sorted labels)."""
    return tuple(np.unique(labels.cpu().numpy()).tolist()) if labels is not None else None


def network_rdms(
    model: torch.nn.Module,
    probe: ProbeSet,
    *,
    layers: Sequence[str] | None = None,
    grouping: str | None = None,
    method: str = "correlation",
    subsamples: int | None = None,
    subsample_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    batch_size: int = 250,
    normalize: str = "per_image",
) -> RDMs:
    """RDMs of a network's exposed layers on the probe images (bounded memory).

    Grouped RDMs keep only group sums; per-image RDMs hold float32 activations of as many
    layers at a time as fit a quarter of free memory (more layers -> more forward passes).
    ``layers`` names exposed features of a FeatureNet (e.g. a cell network's "cell4") or, for
    any other module, submodules to hook.
    """
    net = _feature_net(model, layers)
    labels = _probe_labels(probe, grouping)
    result: RDMs | None = None
    offset = 0
    for feats in probe_activations(
        net,
        probe,
        layers=layers,
        labels=labels,
        device=device,
        batch_size=batch_size,
        normalize=normalize,
    ):
        part = compute_rdms(
            feats, method, subsamples=subsamples, subsample_size=subsample_size, seed=seed + offset
        )
        offset += len(feats)
        result = part if result is None else result.concat(part)
        del feats
    assert result is not None
    if labels is not None:
        result = RDMs(
            result.dissimilarities,
            result.names,
            result.n_conditions,
            result.method,
            group_order(labels),
            result.metadata,
        )
    return result.with_metadata(probe_fingerprint=probe.fingerprint)


def network_grams(
    model: torch.nn.Module,
    probe: ProbeSet,
    *,
    layers: Sequence[str] | None = None,
    grouping: str | None = None,
    device: str | torch.device | None = "auto",
    batch_size: int = 250,
    normalize: str = "per_image",
) -> Grams:
    """Gram matrices (image x image inner products) of a network's exposed layers on the probe
    images, or of their group means (what CKA and relation guidance compare)."""
    net = _feature_net(model, layers)
    labels = _probe_labels(probe, grouping)
    result: Grams | None = None
    for feats in probe_activations(
        net,
        probe,
        layers=layers,
        labels=labels,
        device=device,
        batch_size=batch_size,
        normalize=normalize,
    ):
        part = gram_matrices(feats, conditions=group_order(labels))
        result = part if result is None else result.concat(part)
        del feats
    assert result is not None
    return result


def teacher_from_network(
    model: torch.nn.Module,
    probe: ProbeSet,
    *,
    layers: Sequence[str] | None = None,
    grouping: str | None = None,
    method: str = "correlation",
    comparison: str = "pearson",
    subsamples: int | None = 10,
    subsample_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    batch_size: int = 250,
    provenance: Mapping[str, Any] | None = None,
    normalize: str = "per_image",
    with_grams: bool = True,
) -> Teacher:
    """A teacher from a trained network: its exposed layers (or the named ``layers``) become
    teacher layers, each RDM averaged over ``subsamples`` random feature subsamples (paper: 10).
    ``with_grams`` also stores each layer's Gram matrix (all features), so CKA and relation
    guidance (``TG-cka``, ``TG-rel``) work with the file.
    """
    rdms = network_rdms(
        model,
        probe,
        layers=layers,
        grouping=grouping,
        method=method,
        subsamples=subsamples,
        subsample_size=subsample_size,
        seed=seed,
        device=device,
        batch_size=batch_size,
        normalize=normalize,
    )
    grams = (
        network_grams(
            model,
            probe,
            layers=layers,
            grouping=grouping,
            device=device,
            batch_size=batch_size,
            normalize=normalize,
        )
        if with_grams
        else None
    )
    prov = {
        "model": type(model).__name__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(provenance or {}),
    }
    return Teacher(
        rdms, probe.fingerprint, grouping, comparison, "network", prov, probe, None, grams
    )


def teacher_from_export(
    model_dir: str | Path,
    probe: ProbeSet,
    *,
    layers: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    **options: Any,
) -> Teacher:
    """A teacher from a network tgsage trained and saved (``tgsage train``,
    :func:`tgsage.export.save_model`): the next search's guide (iterative bootstrapping).

    The layers default to the model card's ``teacher_layers`` (the end of each stage, as the
    ResNet teacher's stacks); ``options`` go to :func:`teacher_from_network`. The probe images
    must have the shape the network was trained on."""
    from tgsage.export import load_model

    model = load_model(model_dir)
    card = model.card  # type: ignore[attr-defined]
    shape = tuple(probe.images.shape[1:])
    if shape != tuple(card.input_shape):
        raise InputError(
            f"the probe images are {shape} but the network in {model_dir} was trained on "
            f"{tuple(card.input_shape)}; use probe images of the data it was trained on"
        )
    prov = {
        "model_dir": str(model_dir),
        "spec": card.spec,
        "metrics": card.metrics,
        "width_mult": card.width_mult,
        **dict(provenance or {}),
    }
    chosen = list(layers) if layers else list(card.teacher_layers) or None
    return teacher_from_network(model, probe, layers=chosen, provenance=prov, **options)


def teacher_from_recording(
    recording: Recording,
    probe: ProbeSet,
    *,
    regions: Sequence[str] | None = None,
    grouping: str | None = None,
    method: str = "correlation",
    comparison: str = "pearson",
    noise_ceiling: bool = True,
    provenance: Mapping[str, Any] | None = None,
) -> Teacher:
    """A teacher from neural recordings: one teacher layer per region, repetitions averaged,
    stimuli aligned to the probe's stimulus ids; the split-half noise ceiling (Spearman-Brown
    corrected, RDM level, with this ``method`` and ``comparison``) is stored per region where
    repetitions exist."""
    rec = recording.align(probe)
    names = list(regions) if regions is not None else list(rec.regions())
    unknown = [r for r in names if r not in rec.regions()]
    if unknown:
        raise InputError(
            f"regions {unknown} are not in the recording; it has {list(rec.regions())}"
        )
    feats = {r: rec.region_responses(r) for r in names}
    labels = probe.labelings.get(grouping) if grouping is not None else None
    if grouping is not None and labels is None:
        raise InputError(f"the probe set has no labeling {grouping!r}")
    rdms = compute_rdms(feats, method, groups=labels)
    if labels is not None:
        from tgsage.rsa import group_means

        grouped = {
            r: group_means(torch.as_tensor(f), labels, rdms.conditions)[0] for r, f in feats.items()
        }
        grams = gram_matrices(grouped, conditions=rdms.conditions)
    else:
        grams = gram_matrices(feats)
    ceiling = None
    if noise_ceiling and rec.n_repetitions >= 2:
        group = labels.numpy() if labels is not None else None
        nc = split_half_noise_ceiling(rec, group=group, method=method, comparison=comparison)
        ceiling = {r: float(nc[r].rdm_reliability) for r in names if r in nc}
    prov = {
        "recording_sites": {r: int(f.shape[1]) for r, f in feats.items()},
        "repetitions": int(rec.n_repetitions),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(provenance or {}),
    }
    return Teacher(
        rdms.with_metadata(probe_fingerprint=probe.fingerprint),
        probe.fingerprint,
        grouping,
        comparison,
        "recording",
        prov,
        probe,
        ceiling,
        grams,
    )


def load_rdm_file(path: str | Path) -> RDMs:
    """Saved RDMs: NPZ of square matrices or upper triangles (one array per layer), or an
    rsatoolbox file (``.hdf5`` / ``.pkl``) when rsatoolbox is installed."""
    path = Path(path)
    if path.suffix in (".hdf5", ".h5", ".pkl"):
        try:
            import rsatoolbox
        except ImportError:
            raise DataError(
                f"{path}: reading rsatoolbox files needs rsatoolbox; pip install 'tgsage[rsa]'"
            ) from None
        from tgsage.rsa import from_rsatoolbox

        return from_rsatoolbox(rsatoolbox.rdm.load_rdm(str(path)))
    arrays = read_npz(
        path, "RDM file", "save RDMs with numpy.savez(path, layer=matrix_or_upper_triangle)"
    )
    vectors, names = [], []
    for name, arr in arrays.items():
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[0] == arr.shape[1]:
            arr = RDMs.from_matrices(arr).numpy()[0]
        elif arr.ndim != 1:
            raise DataError(
                f"{path}: array {name!r} of shape {arr.shape} is neither an n x n "
                "RDM nor an upper triangle"
            )
        vectors.append(arr)
        names.append(name)
    if len({v.size for v in vectors}) != 1:
        raise DataError(f"{path}: the RDMs have different sizes")
    n = n_conditions_from_pairs(vectors[0].size)
    return RDMs(torch.from_numpy(np.stack(vectors)), tuple(names), n, "unknown")


def teacher_from_rdms(
    rdms: RDMs | str | Path,
    probe: ProbeSet | str,
    *,
    grouping: str | None = None,
    method: str | None = None,
    comparison: str = "pearson",
    provenance: Mapping[str, Any] | None = None,
) -> Teacher:
    """A teacher from saved RDMs; ``probe`` is the probe set (or its fingerprint) they were
    measured on, and ``method`` the distance used (so candidates use the same)."""
    r = load_rdm_file(rdms) if isinstance(rdms, (str, Path)) else rdms
    m = method or (r.method if r.method != "unknown" else "correlation")
    probe_set = probe if isinstance(probe, ProbeSet) else None
    fp = probe.fingerprint if isinstance(probe, ProbeSet) else str(probe)
    conditions = r.conditions
    if probe_set is not None:
        labels = probe_set.labelings.get(grouping) if grouping is not None else None
        expected = len(np.unique(labels.numpy())) if labels is not None else len(probe_set)
        if expected != r.n_conditions:
            raise InputError(
                f"the RDMs cover {r.n_conditions} conditions but the probe set gives {expected} "
                f"({'groups of ' + repr(grouping) if grouping else 'images'})"
            )
        if labels is not None and conditions is None:
            conditions = tuple(np.unique(labels.numpy()).tolist())
    rdms_t = RDMs(r.dissimilarities, r.names, r.n_conditions, m, conditions, dict(r.metadata))
    return Teacher(
        rdms_t.with_metadata(probe_fingerprint=fp),
        fp,
        grouping,
        comparison,
        "rdms",
        dict(provenance or {}),
        probe_set,
    )
