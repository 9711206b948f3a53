"""Predictivity pools (paper 4.1): P, S_i and TG at premature budgets, then mature accuracy.

Each architecture is trained ONCE: one resumable :class:`~tgsage.train.Trainer` is taken to
each premature budget in turn (P on the validation set, and the teacher similarity of its
probe-set RDMs, at each), then on to the mature budget on the same trajectory. The premature
points therefore lie on the same run that gives the mature accuracy, which is what the paper
correlates.

Zero-cost proxies (``proxies=[...]``, see :mod:`tgsage.proxies`) are measured on the freshly
initialised network from one fixed training minibatch, before any training, and stored with
the record. With ``ground_truth`` (a :class:`~tgsage.experiments.ground_truth.GroundTruth`
table, e.g. NAS-Bench-201's 200-epoch accuracies) the mature accuracy is read from the table
and training stops after the last premature budget, so a pool costs only its premature
budgets. A budget of zero (``"0ep"``) measures P and TG of the untrained network.

Crash safety: with ``store=path`` every finished architecture (ok or failed) is appended to a
JSON-lines file and fsynced before the next starts; a re-run reads the file and skips the
architectures it holds (by spec hash), so an interrupted pool resumes where it stopped.
Failures (invalid architecture, divergence, out of memory, scoring errors) are recorded with
their reason and left out of the statistics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tgsage.data.base import DataSplits
from tgsage.data.pipeline import get_augmentation
from tgsage.data.probe import ProbeSet
from tgsage.errors import InputError, SpecError, TgsageError
from tgsage.evaluate import build_candidate, measure_guidance, measure_proxies
from tgsage.experiments.records import (
    BudgetPoint,
    PoolRecord,
    append_jsonl,
    as_candidate_records,
    read_pool_records,
)
from tgsage.features import as_feature_net
from tgsage.spaces import get_space
from tgsage.spaces.choices import RandomSuggester, SearchSpace
from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json
from tgsage.teacher import Teacher
from tgsage.train import Trainer

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- pools
def as_spec(item: Any) -> ArchSpec:
    """A spec from a spec object, its dict, its JSON text or a NAS-Bench-201 arch string."""
    if isinstance(item, ArchSpec):
        return item
    if isinstance(item, str):
        if item.lstrip().startswith("|"):  # an official NAS-Bench-201 architecture string
            from tgsage.spaces.nb201 import NB201Spec

            return NB201Spec.from_arch_string(item.strip())
        return spec_from_json(item)
    if isinstance(item, dict):
        return spec_from_dict(item)
    raise SpecError(f"pool: expected a spec, its dict or its JSON, got {type(item).__name__}")


def _dedupe(specs: Iterable[ArchSpec]) -> list[ArchSpec]:
    seen: dict[str, ArchSpec] = {}
    for s in specs:
        seen.setdefault(s.spec_hash, s)
    return list(seen.values())


def pool_from_specs(items: Iterable[Any]) -> list[ArchSpec]:
    """Specs (objects, dicts or JSON) in the given order, duplicates (same hash) dropped."""
    return _dedupe(as_spec(i) for i in items)


def random_pool(
    space: str | SearchSpace,
    n: int,
    seed: int = 0,
    max_tries: int | None = None,
    **space_options: Any,
) -> list[ArchSpec]:
    """``n`` distinct uniformly random architectures of ``space`` (a name or a SearchSpace)."""
    sp = get_space(space, **space_options) if isinstance(space, str) else space
    rng = np.random.default_rng(seed)
    out: dict[str, ArchSpec] = {}
    tries = max_tries if max_tries is not None else 20 * n + 100
    for _ in range(tries):
        if len(out) >= n:
            break
        spec = sp.sample(RandomSuggester(rng))
        out.setdefault(spec.spec_hash, spec)
    if len(out) < n:
        raise InputError(
            f"random_pool: found only {len(out)} distinct architectures in "
            f"{tries} draws; the space is too small for n={n}"
        )
    return list(out.values())


def pool_from_records(
    records: Iterable[Any], top: int | None = None, by: str = "score"
) -> list[ArchSpec]:
    """The specs of a finished search's candidates (all, or the ``top`` by ``by``).

    ``records``: CandidateRecords (e.g. :func:`records_from_study`) or plain dicts. Failed
    candidates and those without a spec are skipped; ties keep trial order.
    """
    recs = [r for r in as_candidate_records(records) if r.ok and r.spec]
    if top is not None:
        recs = sorted(
            (r for r in recs if r.value(by) is not None),
            key=lambda r: (-(r.value(by) or 0.0), r.number),
        )[:top]
    return _dedupe(spec_from_json(r.spec) for r in recs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- measurement
def _ordered_budgets(
    trainer: Trainer, budgets: Sequence[str], mature: str | None
) -> tuple[list[tuple[str, int]], int | None]:
    """The budgets in training order with their steps, and the mature steps (None: no mature
    run, e.g. mature accuracy from a table)."""
    steps = sorted(((b, trainer.budget_steps(b)) for b in budgets), key=lambda t: t[1])
    if mature is None:
        return steps, None
    mature_steps = trainer.check_budget(mature)  # a bad mature budget fails now
    if steps and mature_steps <= steps[-1][1]:
        raise InputError(
            f"the mature budget {mature!r} ({mature_steps} steps) must be longer "
            f"than every premature budget (the longest is {steps[-1][0]!r}, "
            f"{steps[-1][1]} steps)"
        )
    return steps, mature_steps


def _teachers(teacher: Teacher | Mapping[str, Teacher] | None) -> dict[str, Teacher]:
    """Teachers by name (one Teacher is named ``"teacher"``)."""
    if teacher is None:
        return {}
    if isinstance(teacher, Teacher):
        return {"teacher": teacher}
    return dict(teacher)


def _last_epoch(losses: Sequence[float], steps_per_epoch: int) -> float | None:
    """Sum of the losses of the most recent epoch's worth of steps (SoTL-E's sum)."""
    if not losses:
        return None
    return math.fsum(losses[-max(1, steps_per_epoch) :])


def measure_architecture(
    spec: ArchSpec,
    data: DataSplits,
    teacher: Teacher | Mapping[str, Teacher] | None,
    *,
    budgets: Sequence[str],
    mature: str,
    config: Any,
    probe: ProbeSet | None,
    width_mult: float,
    device: str | torch.device | None,
    seed: int,
    batch_size: int,
    index: int = 0,
    proxies: Sequence[str] = (),
    proxy_batch: int = 64,
    ground_truth: Any = None,
    comparisons: Sequence[str] = ("pearson",),
    checkpoint_dir: str | Path | None = None,
    **train_overrides: Any,
) -> PoolRecord:
    """Train one architecture through ``budgets`` to ``mature``; never raises on a bad one.

    ``teacher``: one teacher or several by name (all measured at every budget, in one pass
    of the probe images); ``comparisons``: "pearson" (the teacher's RDM comparison), "cka",
    "relation". ``proxies``: zero-cost proxies measured at initialisation; ``ground_truth``:
    a table giving the mature accuracy (``mature`` is then ignored and training ends after
    ``budgets``). ``checkpoint_dir``: the weights at every budget are saved there as
    ``<spec hash>_s<seed>_<budget>.pt``, so teachers added later can score the same networks."""
    teachers = _teachers(teacher)
    rec_default = next(iter(teachers), None) if len(teachers) > 1 else None
    t0 = time.perf_counter()
    rec = PoolRecord(
        spec_hash=spec.spec_hash,
        spec=spec.to_json(),
        status="failed",
        mature_budget=None if ground_truth is not None else str(mature),
        index=index,
        seed=seed,
        mature_source="table" if ground_truth is not None else "trained",
        default_teacher=rec_default,
    )

    def fail(reason: str, message: str) -> PoolRecord:
        rec.failure_reason, rec.message = reason, message
        rec.seconds = time.perf_counter() - t0
        return rec

    try:
        # seeded weights without touching the caller's RNG: a re-run measures the same run
        model, _ = build_candidate(spec, data, width_mult, seed=seed)
        net = as_feature_net(model)
    except (SpecError, InputError) as exc:
        return fail("invalid_architecture", str(exc))
    rec.params = int(sum(p.numel() for p in net.parameters()))
    if ground_truth is not None:
        truth = ground_truth.lookup(spec)
        if truth is None:
            return fail(
                "not_in_table",
                f"{spec.spec_hash} is not in the ground-truth table "
                f"{getattr(ground_truth, 'source', '')}",
            )
    trainer = Trainer(net, data, config, device=device, seed=seed, **train_overrides)
    order, rec.mature_steps = _ordered_budgets(
        trainer, budgets, None if ground_truth is not None else mature
    )
    if proxies:
        try:
            rec.proxies = measure_proxies(
                net,
                data,
                proxies,
                device=trainer.device,
                batch=proxy_batch,
                seed=seed,
                normalize=get_augmentation(trainer.config.augment).normalize,
            )
        except torch.OutOfMemoryError as exc:
            return fail("out_of_memory", str(exc))
        except TgsageError as exc:
            return fail("proxy_error", str(exc))
    for budget, _ in order:
        res = trainer.train_until(budget)
        if not res.ok:
            return fail(res.failure_reason or "error", res.message or "training failed")
        accuracy = res.val_accuracy
        if accuracy is None and res.steps == 0 and data.val is not None and len(data.val):
            accuracy = trainer.evaluate()  # a zero budget: P of the untrained network
        point = BudgetPoint(
            budget=budget,
            steps=res.steps,
            examples=res.examples,
            epochs=float(res.epochs),
            accuracy=accuracy,
            train_seconds=res.seconds,
        )
        point.loss_sum, point.loss_steps = res.loss_sum, res.loss_steps
        point.loss_last_epoch = _last_epoch(res.losses, trainer.budget_steps("1ep"))
        if checkpoint_dir is not None:
            ckpt = Path(checkpoint_dir) / f"{spec.spec_hash}_s{seed}_{budget}.pt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), ckpt)
        if teachers and probe is not None:
            t1 = time.perf_counter()
            try:
                g = measure_guidance(
                    net,
                    probe,
                    teachers,
                    comparisons,
                    device=trainer.device,
                    batch_size=batch_size,
                    normalize=get_augmentation(trainer.config.augment).normalize,
                )
            except torch.OutOfMemoryError as exc:
                return fail("out_of_memory", str(exc))
            except TgsageError as exc:
                reason = "nan_activations" if "NaN" in str(exc) else "scoring_error"
                return fail(reason, str(exc))
            point.guidance = {
                t: {c: dict(zip(x.teacher_layers, x.per_layer, strict=True)) for c, x in gs.items()}
                for t, gs in g.items()
            }
            first = next(iter(g.values())).get("pearson")
            if first is not None:
                point.tg = float(first.tg)
                point.per_layer = dict(zip(first.teacher_layers, first.per_layer, strict=True))
            point.score_seconds = time.perf_counter() - t1
        rec.points.append(point)
    if ground_truth is not None:
        rec.mature_accuracy, rec.status = float(truth), "ok"
        rec.seconds = time.perf_counter() - t0
        return rec
    res = trainer.train_until(mature)
    if not res.ok:
        return fail(res.failure_reason or "error", res.message or "training failed")
    if res.val_accuracy is None or not math.isfinite(res.val_accuracy):
        return fail("no_validation", "no validation accuracy (empty validation set?)")
    rec.mature_accuracy, rec.mature_examples = float(res.val_accuracy), int(res.examples)
    rec.status = "ok"
    rec.seconds = time.perf_counter() - t0
    return rec


def run_predictivity(
    pool: Iterable[Any],
    data: DataSplits,
    teacher: Teacher | Mapping[str, Teacher] | None = None,
    *,
    budgets: Sequence[str] = ("0.2ep", "1ep", "2ep"),
    mature: str = "mature",
    config: Any = None,
    alpha: float = 1.0,
    width_mult: float = 1.0,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    store: str | Path | None = None,
    probe: ProbeSet | None = None,
    batch_size: int = 250,
    retry_failed: bool = False,
    on_record: Callable[[PoolRecord], None] | None = None,
    proxies: Sequence[str] = (),
    proxy_batch: int = 64,
    ground_truth: Any = None,
    comparisons: Sequence[str] = ("pearson",),
    checkpoint_dir: str | Path | None = None,
    **train_overrides: Any,
) -> list[PoolRecord]:
    """Measure a pool: for each architecture P/TG/S_i at ``budgets``, then mature accuracy.

    Args:
        pool: specs (objects, dicts or JSON); see :func:`random_pool`, :func:`pool_from_specs`,
            :func:`pool_from_records`.
        teacher: gives TG and S_i (None: P only). Its probe images are used unless ``probe``.
            Several teachers by name (``{"weak": t1, "strong": t2}``, same probe images) are
            all measured on the same networks; ``PoolRecord.scores_at(budget, teacher=name)``
            reads one, the first is the default.
        comparisons: teacher comparisons measured at every budget: "pearson" (RDMs, the
            paper's), "cka" and "relation" (Gram matrices; the teacher files must carry them).
        checkpoint_dir: save the weights at every budget there (see measure_architecture).
        budgets: premature budgets ("0.2ep", "500steps", ...), measured in increasing order.
        mature: the mature budget ("mature" = the training preset's full length).
        config: training preset name or TrainConfig (as in :class:`~tgsage.train.Trainer`).
        alpha: kept in each record's provenance; P+TG is formed at analysis time, so any alpha
            can be studied later (:func:`~tgsage.experiments.alpha_sweep`).
        store: JSON-lines file; finished architectures are appended, and ones already in it
            are skipped (``retry_failed`` re-runs those that failed).
        on_record: called with each newly measured record (progress reporting).
        proxies: zero-cost proxies to measure at initialisation (:func:`tgsage.proxies.
            list_proxies`), on ``proxy_batch`` seeded training images.
        ground_truth: a table of mature accuracies (``lookup(spec) -> float | None``, e.g.
            :func:`~tgsage.experiments.ground_truth.load_nb201_table`); architectures not in
            it fail with reason "not_in_table"; ``mature`` is not trained.

    Returns the records of the pool, in pool order (stored ones included).
    """
    specs = pool_from_specs(pool)
    if not budgets and not proxies:
        raise InputError("budgets: give at least one premature budget, e.g. ['1ep', '2ep']")
    if proxies:
        from tgsage.proxies import get_proxy

        for name in proxies:
            get_proxy(name)  # an unknown name fails now, not after the first architecture
    teachers = _teachers(teacher)
    first = next(iter(teachers.values()), None)
    probe = probe if probe is not None else (first.probe if first is not None else None)
    if teachers:
        if probe is None:
            raise InputError("the teacher carries no probe images; pass probe=...")
        for t in teachers.values():
            t.check_probe(probe.fingerprint)
        if any(c in ("cka", "relation") for c in comparisons):
            bare = [n for n, t in teachers.items() if t.grams is None]
            if bare:
                raise InputError(
                    f"teachers {bare} carry no Gram matrices, which CKA / relation guidance "
                    "need; rebuild their files with `tgsage teacher build`"
                )
    stored = read_pool_records(store) if store is not None else []
    done = {r.spec_hash: r for r in stored if r.seed == seed}
    out = []
    for i, spec in enumerate(specs):
        prev = done.get(spec.spec_hash)
        if prev is not None and not set(proxies) <= set(prev.proxies) and prev.ok:
            prev = None  # stored before these proxies were asked for: measure again
        if prev is not None and (prev.ok or not retry_failed):
            prev.index = i
            out.append(prev)
            continue
        rec = measure_architecture(
            spec,
            data,
            teachers or None,
            budgets=list(budgets),
            mature=mature,
            config=config,
            probe=probe,
            width_mult=width_mult,
            device=device,
            seed=seed,
            batch_size=batch_size,
            index=i,
            proxies=proxies,
            proxy_batch=proxy_batch,
            ground_truth=ground_truth,
            comparisons=comparisons,
            checkpoint_dir=checkpoint_dir,
            **train_overrides,
        )
        if store is not None:
            append_jsonl(store, {**rec.as_dict(), "alpha": alpha})
        log.info("predictivity %d/%d %s: %s", i + 1, len(specs), spec.spec_hash, rec.status)
        if on_record is not None:
            on_record(rec)
        out.append(rec)
    return out


def require_measured(records: Sequence[PoolRecord]) -> None:
    """Refuse a pool with no successfully measured architecture (InputError naming the failure
    reasons): an empty predictivity table would hide that nothing was measured."""
    if any(r.ok for r in records):
        return
    if not records:
        raise InputError("no architecture was measured: the pool is empty")
    reasons = pool_summary(records)["failure_reasons"]
    why = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    raise InputError(
        f"no architecture to correlate: all {len(records)} failed ({why}); see the records' "
        "messages (for 'diverged': a lower learning rate or grad_clip in the train options)"
    )


def pool_summary(records: Sequence[PoolRecord]) -> dict[str, Any]:
    """Counts and cost of a measured pool (examples to maturity, failures by reason)."""
    reasons: dict[str, int] = {}
    for r in records:
        if not r.ok:
            reasons[r.failure_reason or "error"] = reasons.get(r.failure_reason or "error", 0) + 1
    return {
        "architectures": len(records),
        "ok": sum(r.ok for r in records),
        "failed": sum(not r.ok for r in records),
        "failure_reasons": reasons,
        "examples": int(sum(r.mature_examples or 0 for r in records)),
        "seconds": float(sum(r.seconds for r in records)),
    }


__all__ = [
    "as_spec",
    "measure_architecture",
    "pool_from_records",
    "pool_from_specs",
    "pool_summary",
    "random_pool",
    "require_measured",
    "run_predictivity",
]


def pool_from_string(value: str, seed: int = 0, ground_truth: Any = None) -> list[ArchSpec]:
    """A pool named the way ``tgsage predictivity --pool`` takes it: ``random:SPACE:N[:SEED]``,
    ``table:N[:SEED]`` (a sample of ``ground_truth``), a specs file (one spec JSON or
    NAS-Bench-201 arch string a line) or ``RUN_DIR[:TOP]`` (a search's best candidates).
    ``seed`` is the sampling seed when the string names none."""
    if value.startswith("table:"):
        if ground_truth is None:
            raise InputError(
                f"pool {value!r} samples the ground-truth table: give the table too "
                "(--ground-truth TABLE.csv)"
            )
        n, pool_seed = _count_and_seed(value, 1, seed, "table:N[:SEED], e.g. table:60")
        return list(ground_truth.sample(n, seed=pool_seed))
    if value.startswith("random:"):
        n, pool_seed = _count_and_seed(
            value, 2, seed, "random:SPACE:N[:SEED], e.g. random:layer:50"
        )
        return random_pool(value.split(":")[1], n, seed=pool_seed)
    path = Path(value)
    if path.is_file() or path.suffix in (".jsonl", ".json", ".txt"):
        if not path.is_file():
            raise InputError(f"pool: specs file {path} not found")
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        if not lines:
            raise InputError(f"pool: {path} holds no specs (one spec JSON per line)")
        return pool_from_specs(lines)
    run, top = value, None
    head, sep, tail = value.rpartition(":")
    if sep and tail.isdigit() and not Path(value).exists():
        run, top = head, int(tail)
    if not Path(run).is_dir():
        raise InputError(
            f"pool {value!r}: not random:SPACE:N[:SEED], table:N[:SEED], a specs file, nor a "
            "search's run folder[:TOP]"
        )
    from tgsage.experiments.records import records_from_study
    from tgsage.search.locate import resolve_run

    specs = pool_from_records(records_from_study(resolve_run(run).study), top=top)
    if not specs:
        raise InputError(f"pool {value!r}: the search has no scored candidates")
    return specs


def _count_and_seed(value: str, at: int, seed: int, form: str) -> tuple[int, int]:
    """N (field ``at``) and the optional SEED after it of a ``KIND:...:N[:SEED]`` pool."""
    parts = value.split(":")
    try:
        n = int(parts[at])
        pool_seed = int(parts[at + 1]) if len(parts) > at + 1 else seed
    except (IndexError, ValueError):
        raise InputError(f"pool {value!r}: expected {form}") from None
    if len(parts) > at + 2 or n < 1:
        raise InputError(f"pool {value!r}: expected {form} with N >= 1")
    return n, pool_seed
