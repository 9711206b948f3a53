"""Mature (fully trained) accuracies of NAS-Bench-201 cells, read from a user-supplied table.

Why: predictivity experiments need the accuracy each architecture reaches after full training.
For the NAS-Bench-201 / NATS-Bench topology space that is published, so instead of training we
look it up. Two sources:

- a CSV (or TSV) table with an architecture-string column and accuracy columns, e.g. the header
  ``Index,CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,
  ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString`` (:func:`load_nb201_table`);
- the official API object (``nats_bench.create(path, "tss")`` or
  ``nas_201_api.NASBench201API(path)``), via :meth:`GroundTruth.from_api` or
  :func:`load_nb201_api`. Neither package is a tgsage dependency.

Accuracies are stored as fractions in ``[0, 1]`` and keyed by ``NB201Spec.spec_hash``, the same
key the search tracker uses, so a candidate's ground truth is ``truth.lookup(spec)``.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tgsage.errors import InputError, SpecError
from tgsage.spaces.nb201 import NB201Spec

#: Architecture-string column names accepted (compared lower-case, punctuation removed).
ARCH_COLUMNS: tuple[str, ...] = (
    "arch_str",
    "ArchitectureString",
    "arch",
    "architecture",
    "arch_string",
    "genotype",
)
#: Dataset name -> column-name stems tried in order (compared lower-case, punctuation removed).
DATASET_STEMS: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar10",),
    "cifar10-valid": ("cifar10valid",),
    "cifar100": ("cifar100",),
    "imagenet16-120": ("imagenet16120", "imagenet16", "imagenet"),
}
_DATASET_ALIASES = {
    "imagenet": "imagenet16-120",
    "imagenet16": "imagenet16-120",
    "imagenet16120": "imagenet16-120",
    "cifar10valid": "cifar10-valid",
}
SCALES = ("auto", "percent", "fraction")


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _canonical_dataset(dataset: str) -> str | None:
    key = _norm(dataset)
    for name in DATASET_STEMS:
        if _norm(name) == key:
            return name
    return _DATASET_ALIASES.get(key)


class GroundTruth(Mapping[str, float]):
    """``spec_hash -> mature accuracy`` (a fraction) for a set of NAS-Bench-201 cells.

    ``specs`` keeps the table order; ``source`` is the file (or API) it came from; ``dataset``
    and ``column`` say which accuracy was used; ``scale`` how the raw numbers were read.
    """

    def __init__(
        self,
        specs: Sequence[NB201Spec],
        accuracies: Sequence[float] | np.ndarray,
        *,
        source: str,
        dataset: str,
        column: str,
        scale: str = "fraction",
    ) -> None:
        acc = np.asarray(accuracies, dtype=np.float64)
        if acc.ndim != 1 or len(acc) != len(specs):
            raise InputError(f"{source}: {len(specs)} specs but {acc.size} accuracies")
        if not len(specs):
            raise InputError(f"{source}: no architectures (an empty table)")
        bad = np.flatnonzero(~np.isfinite(acc) | (acc < 0) | (acc > 1))
        if bad.size:
            raise InputError(
                f"{source}: accuracy {acc[bad[0]]!r} of {specs[bad[0]]} is not a fraction in [0, 1]"
            )
        self._specs = tuple(specs)
        self._acc = acc
        self._index: dict[str, int] = {}
        for i, spec in enumerate(self._specs):
            if not isinstance(spec, NB201Spec):
                raise InputError(f"{source}: item {i} is a {type(spec).__name__}, not an NB201Spec")
            j = self._index.setdefault(spec.spec_hash, i)
            if j != i:
                raise InputError(f"{source}: {spec} appears twice (items {j} and {i})")
        self.source = source
        self.dataset = dataset
        self.column = column
        self.scale = scale

    # ----- Mapping[str, float] -----

    def __getitem__(self, spec_hash: str) -> float:
        return float(self._acc[self._index[spec_hash]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return (
            f"GroundTruth({len(self)} cells, dataset={self.dataset!r}, "
            f"column={self.column!r}, source={self.source!r})"
        )

    # ----- queries -----

    @property
    def specs(self) -> tuple[NB201Spec, ...]:
        """The architectures, in table order."""
        return self._specs

    @property
    def accuracies(self) -> np.ndarray:
        """Accuracies (fractions) aligned with :attr:`specs` (a copy)."""
        return self._acc.copy()

    def lookup(self, spec: NB201Spec | str) -> float | None:
        """The accuracy of ``spec`` (a spec or an official arch string); None if not listed."""
        if isinstance(spec, str):
            spec = NB201Spec.from_arch_string(spec)
        i = self._index.get(spec.spec_hash) if isinstance(spec, NB201Spec) else None
        return None if i is None else float(self._acc[i])

    def accuracies_of(self, specs: Iterable[NB201Spec | str]) -> np.ndarray:
        """Accuracies of ``specs`` in order, NaN where a spec is not in the table."""
        values = [self.lookup(s) for s in specs]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def sample(self, n: int, seed: int | np.random.Generator | None = 0) -> list[NB201Spec]:
        """``n`` distinct architectures of the table, drawn uniformly without replacement."""
        if type(n) is not int or not 0 <= n <= len(self):
            raise InputError(
                f"sample: n={n!r} must be an integer in [0, {len(self)}] (the table's size)"
            )
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return [self._specs[i] for i in rng.choice(len(self), size=n, replace=False)]

    # ----- the official API -----

    @classmethod
    def from_api(
        cls,
        api: Any,
        dataset: str = "cifar10",
        hp: str = "200",
        metric: str = "test-accuracy",
        is_random: bool = False,
        scale: str = "auto",
    ) -> GroundTruth:
        """Read every architecture of an official NAS-Bench-201 / NATS-Bench topology API.

        Uses ``len(api)``, ``api.arch(i)`` (the arch string) and
        ``api.get_more_info(i, dataset, hp=hp, is_random=is_random)[metric]`` (the mean over
        seeds when ``is_random`` is False; accuracies in percent). Old ``nas_201_api`` versions
        without ``hp`` get ``use_12epochs_result=(hp == "12")``.
        """
        source = f"{type(api).__module__}.{type(api).__name__}"
        specs, raw = [], []
        for i in range(len(api)):
            try:
                info = api.get_more_info(i, dataset, hp=hp, is_random=is_random)
            except TypeError:
                info = api.get_more_info(
                    i, dataset, use_12epochs_result=(hp == "12"), is_random=is_random
                )
            if metric not in info:
                raise InputError(
                    f"{source}: architecture {i} has no {metric!r} for dataset {dataset!r} "
                    f"(keys: {sorted(info)}); pass metric= one of those"
                )
            try:
                specs.append(NB201Spec.from_arch_string(api.arch(i)))
            except SpecError as exc:
                raise InputError(f"{source}: architecture {i}: {exc}") from None
            raw.append(float(info[metric]))
        where = [f"architecture {i}" for i in range(len(raw))]
        values, used = _scaled(np.array(raw), scale, source, where)
        name = _canonical_dataset(dataset) or dataset
        return cls(
            specs, values, source=source, dataset=name, column=f"{metric}@hp={hp}", scale=used
        )


def _scaled(
    raw: np.ndarray, scale: str, source: str, where: Sequence[str]
) -> tuple[np.ndarray, str]:
    """Percent or fraction -> fraction; ``auto`` says percent when any value exceeds 1."""
    if scale not in SCALES:
        raise InputError(f"scale: {scale!r} is not one of {SCALES!r}")
    if not len(raw):
        raise InputError(f"{source}: no architectures (an empty table); add rows below the header")
    used = scale if scale != "auto" else ("percent" if np.nanmax(raw) > 1.0 else "fraction")
    top = 100.0 if used == "percent" else 1.0
    bad = np.flatnonzero(~np.isfinite(raw) | (raw < 0) | (raw > top))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{source}, {where[i]}: accuracy {raw[i]!r} is outside [0, {top:g}] for {used} "
            f"values; fix the value or pass scale='percent' / 'fraction' explicitly"
        )
    if scale == "auto" and used == "percent":
        _refuse_mixed_scales(raw, source, where)
    return raw / top, used


def _refuse_mixed_scales(raw: np.ndarray, source: str, where: Sequence[str]) -> None:
    """In a table read as percent, a value <= 1 that would sit among the other values if it
    were a fraction (0.925 among 85.1 .. 94.4) is a fraction written by mistake: reading it as
    0.925 % would silently rank the architecture last. Values at or below chance (1.0 on
    CIFAR-100, 0.83 on ImageNet16-120, i.e. above every other value as fractions) stay."""
    big = raw[raw > 1.0]
    small = np.flatnonzero((raw > 0) & (raw <= 1.0))
    lo, hi = float(big.min()), float(big.max())
    for i in small:
        if lo <= raw[i] * 100.0 <= hi:
            j = int(np.flatnonzero(raw > 1.0)[0])
            raise InputError(
                f"{source}, {where[i]}: accuracy {raw[i]:g} looks like a fraction while the other "
                f"values are percent (e.g. {raw[j]:g} on {where[j]}); write it as "
                f"{raw[i] * 100:g}, or pass scale='percent' if it really is {raw[i]:g} %"
            )


# ----- the CSV reader -----


def _pick_arch_column(header: list[str], arch_column: str | None, source: str) -> int:
    wanted = [arch_column] if arch_column is not None else list(ARCH_COLUMNS)
    norms = [_norm(h) for h in header]
    for name in wanted:
        if _norm(name) in norms:
            return norms.index(_norm(name))
    raise InputError(
        f"{source}, line 1: no architecture-string column "
        f"({'named ' + repr(arch_column) if arch_column else 'looked for ' + ', '.join(ARCH_COLUMNS)}"
        f"); columns found: {header}; pass arch_column=<name of the column holding "
        "'|op~0|+|op~0|op~1|+|...|' strings>"
    )


def _pick_accuracy_column(header: list[str], dataset: str, skip: int, source: str) -> int:
    norms = [_norm(h) for h in header]
    key = _norm(dataset)
    exact = [i for i, n in enumerate(norms) if n == key and i != skip]
    if exact:
        return exact[0]
    canonical = _canonical_dataset(dataset)
    stems = DATASET_STEMS[canonical] if canonical else (key,)
    for stem in stems:
        found = []
        for i, n in enumerate(norms):
            rest = n[len(stem) :]
            if i == skip or not n.startswith(stem) or rest[:1].isdigit():
                continue
            if rest.startswith("valid") and not stem.endswith("valid"):
                continue  # a "cifar10-valid" column is not the cifar10 test accuracy
            found.append(i)
        if len(found) > 1:
            tests = [i for i in found if "test" in norms[i][len(stem) :]]
            found = tests if len(tests) == 1 else found
        if len(found) == 1:
            return found[0]
        if found:
            raise InputError(
                f"{source}, line 1: dataset {dataset!r} matches several columns "
                f"{[header[i] for i in found]}; pass dataset=<the exact column name>"
            )
    raise InputError(
        f"{source}, line 1: no accuracy column for dataset {dataset!r}; columns found: {header}; "
        "pass dataset= one of cifar10, cifar100, imagenet16-120, cifar10-valid or a column name"
    )


def load_nb201_table(
    path: str | os.PathLike[str],
    dataset: str = "cifar10",
    *,
    arch_column: str | None = None,
    scale: str = "auto",
) -> GroundTruth:
    """Read a NAS-Bench-201 accuracy table (CSV, or TSV when the header has tabs only).

    ``dataset`` is a dataset name (``cifar10``, ``cifar100``, ``imagenet16-120``,
    ``cifar10-valid``; matched to a column such as ``CIFAR10TestAccuracy200Epochs``,
    case-insensitively, test accuracy preferred) or a column name. ``arch_column`` overrides
    the architecture column (default: the first of :data:`ARCH_COLUMNS` present). ``scale``:
    ``auto`` reads the numbers as percent when any exceeds 1, else as fractions; ``percent`` or
    ``fraction`` forces it. Rows repeating an architecture with the same accuracy are kept once;
    any other problem raises one :class:`InputError` naming the file, the line and the fix.
    """
    source = os.fspath(path)
    file = Path(source)
    if not file.is_file():
        raise InputError(f"{source}: no such file; give the path of the NAS-Bench-201 table (CSV)")
    with file.open(newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
        if not first.strip():
            raise InputError(
                f"{source}, line 1: empty file; expected a header row such as "
                "'arch_str,cifar10' followed by one row per architecture"
            )
        delimiter = "\t" if "\t" in first and "," not in first else ","
        fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        header = [h.strip() for h in next(reader)]
        a_col = _pick_arch_column(header, arch_column, source)
        v_col = _pick_accuracy_column(header, dataset, a_col, source)
        specs: list[NB201Spec] = []
        raw: list[float] = []
        lines: list[int] = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{source}, line {line}: {len(row)} fields, the header has {len(header)}; "
                    "fix the row (quote fields that contain the delimiter)"
                )
            try:
                spec = NB201Spec.from_arch_string(row[a_col].strip())
            except SpecError as exc:
                raise InputError(
                    f"{source}, line {line}, column {header[a_col]!r}: {exc}"
                ) from None
            text = row[v_col].strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise InputError(
                    f"{source}, line {line}, column {header[v_col]!r}: {text!r} is not a number; "
                    "fill in the accuracy or remove the row"
                )
            j = seen.get(spec.spec_hash)
            if j is not None:
                if raw[j] != value:
                    raise InputError(
                        f"{source}, line {line}: {spec} is also on line {lines[j]} with a "
                        f"different accuracy ({raw[j]!r} vs {value!r}); keep one row per "
                        "architecture"
                    )
                continue
            seen[spec.spec_hash] = len(specs)
            specs.append(spec)
            raw.append(value)
            lines.append(line)
    if not specs:
        raise InputError(f"{source}: no rows below the header; add one row per architecture")
    values, used = _scaled(np.array(raw), scale, source, [f"line {n}" for n in lines])
    name = _canonical_dataset(dataset) or header[v_col]
    return GroundTruth(specs, values, source=source, dataset=name, column=header[v_col], scale=used)


def load_nb201_api(
    path: str | os.PathLike[str] | None = None,
    dataset: str = "cifar10",
    hp: str = "200",
    **options: Any,
) -> GroundTruth:
    """Open the official benchmark file with ``nats_bench`` (or ``nas_201_api``) and read it.

    ``path`` is the benchmark file or directory (None: the package's default location).
    ``options`` go to :meth:`GroundTruth.from_api`. Neither package is installed by tgsage.
    """
    for module, opener in (("nats_bench", "create"), ("nas_201_api", "NASBench201API")):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        where = None if path is None else os.fspath(path)
        if module == "nats_bench":
            api = mod.create(where, "tss", fast_mode=True, verbose=False)
        else:
            api = getattr(mod, opener)(where, verbose=False)
        return GroundTruth.from_api(api, dataset, hp=hp, **options)
    raise InputError(
        "load_nb201_api: neither nats_bench nor nas_201_api is importable; `pip install "
        "nats_bench` and download the benchmark file, or export a CSV and use load_nb201_table"
    )
