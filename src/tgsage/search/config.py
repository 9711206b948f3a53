"""The search configuration: one YAML file (or dict) validated before any work starts.

``SearchConfig`` names the study, the space, the strategy, the score, the budget, the data, the
teacher, how many completed candidates are wanted, how many local worker processes run them and
where the tracker lives (``storage``). It is stored in the study itself (JSON), so a worker that
joins with only ``--storage URL --study NAME`` knows everything else. Every invalid field is one
:class:`~tgsage.errors.ConfigError` naming the field.

Relative paths (``run_dir``, ``teacher``, ``data.root``) are resolved against the current working
directory when the config is loaded, and stored absolute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tgsage.errors import ConfigError
from tgsage.search.cascade import CascadeConfig

Objective = Literal["train", "simulate"]
# Fields a restarted search may change without starting a new study.
MUTABLE_FIELDS = frozenset(
    {
        "n_candidates",
        "workers",
        "max_failures",
        "heartbeat_interval",
        "grace_period",
        "max_retries",
        "torch_threads",
        "simulate",
        "local_pid_check",
        "device",
    }
)


# The training preset a search uses when its config names none: each space's paper recipe.
SPACE_PRESETS = {
    "layer": "cifar_layer_space",
    "cell": "cifar_cell_search",
    "nb201": "nas_bench_201",
}


class DataConfig(BaseModel):
    """A registered dataset (``tgsage.data.registry``) and its loader options (extra keys)."""

    model_config = ConfigDict(extra="allow")
    name: str = "synthetic"

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SimulateConfig(BaseModel):
    """The cheap fake objective (``objective: simulate``) used by tests and benchmarks.

    P and TG are deterministic functions of the spec hash (so dedup and leaderboards behave as
    with real training); each candidate sleeps ``sleep`` seconds, costs ``examples`` examples,
    and a deterministic ``fail_fraction`` of hashes fail with reason ``simulated_failure``.
    """

    model_config = ConfigDict(extra="forbid")
    sleep: float = Field(0.0, ge=0)
    examples: int = Field(1000, ge=0)
    fail_fraction: float = Field(0.0, ge=0, le=1)


class SearchConfig(BaseModel):
    """Everything a search needs (see the module docstring; ``configs/`` holds examples)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("search", min_length=1, description="Study name in the storage.")
    space: str = "layer"
    space_options: dict[str, Any] = Field(default_factory=dict)
    strategy: str = "random"
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    score: str = Field(
        "p+tg",
        description="A score expression (tgsage.scores): p, tg, p+tg, 'P + 0.5*TG-cka', "
        "'SoTL-E', 'TG + rank(synflow)' ...; or 'proxy' for the proxy alone.",
    )
    alpha: float = 1.0
    proxy: str | None = Field(
        None,
        description="Zero-cost proxy (tgsage.proxies): the whole "
        "score with score: proxy, else added as beta * rank(proxy).",
    )
    beta: float = Field(
        0.0,
        description="Weight of rank(proxy), the proxy's percentile among "
        "random architectures of the space, added to p, tg or p+tg.",
    )
    proxy_reference: int = Field(
        64, ge=2, description="Random architectures that rank() and aggregations compare with."
    )
    ground_truth: Path | None = Field(
        None,
        description="A NAS-Bench-201 accuracy table: a fitted score (ridge/forest/gbm) learns "
        "from proxy_reference architectures drawn from it (space nb201).",
    )
    ground_truth_dataset: str = Field("cifar10", description="The table's accuracy column.")
    budget: str = "2ep"
    train: str | None = Field(
        None, description="Training preset (default: the space's, see SPACE_PRESETS)."
    )
    train_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the preset's fields, e.g. {epochs: 30, lr: 0.05}.",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    teacher: Path | None = None
    n_candidates: int = Field(..., ge=1, description="Completed candidates wanted.")
    workers: int = Field(1, ge=1, description="Local worker processes.")
    storage: str | None = Field(None, description="Default: journal file in run_dir.")
    run_dir: Path | None = None
    seed: int = 0
    device: str = "auto"
    width_mult: float = Field(1.0, gt=0)
    objective: Objective = "train"
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    heartbeat_interval: int = Field(10, ge=1, description="Seconds between heartbeats.")
    grace_period: int = Field(60, ge=2, description="Seconds without heartbeat = worker lost.")
    max_retries: int = Field(3, ge=0, description="Retries of a candidate whose worker died.")
    max_failures: int | None = Field(
        None, ge=0, description="Failed candidates before the search stops (default: n_candidates)."
    )
    local_pid_check: bool = Field(
        True,
        description="A RUNNING candidate of a dead process on "
        "this host is lost at once (no grace period).",
    )
    torch_threads: int | None = Field(None, ge=1)
    cascade: CascadeConfig | None = Field(
        None,
        description="Multi-fidelity search: screen n_candidates proposals for free, then "
        "successive halving over cascade.budgets (see tgsage.search.cascade).",
    )

    @field_validator("budget")
    @classmethod
    def _budget(cls, v: str) -> str:
        from tgsage.train import Budget

        try:
            return Budget.check(v)
        except Exception as exc:
            raise ValueError(f"{exc}") from None

    @field_validator("score")
    @classmethod
    def _score(cls, v: str) -> str:
        return _score_text(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if any(c in v for c in "/\\\n"):
            raise ValueError("must not contain slashes or newlines")
        return v

    @model_validator(mode="after")
    def _consistency(self) -> SearchConfig:
        if self.score == "proxy" and self.proxy is None:
            raise ValueError("score 'proxy' needs 'proxy: <name>' (e.g. synflow, naswot)")
        if self.beta != 0 and self.proxy is None:
            raise ValueError("beta weighs rank(proxy): set 'proxy: <name>' too (or beta: 0)")
        if self.score == "proxy" and self.beta != 0:
            raise ValueError("score 'proxy' is the proxy alone; beta applies to p, tg or p+tg")
        if self.needs_teacher and self.objective == "train" and self.teacher is None:
            raise ValueError(
                f"score {self.score!r} needs 'teacher: <teacher file>' (or use score: p)"
            )
        if self.score != "proxy":
            from tgsage.scores import parse_score

            if parse_score(self.score).fitted and self.ground_truth is None:
                raise ValueError(
                    f"score {self.score!r} is fitted on labelled architectures: set "
                    "'ground_truth: <NAS-Bench-201 table>' (space nb201)"
                )
        if self.cascade is not None:
            self._check_cascade(self.cascade)
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError("grace_period must be longer than heartbeat_interval")
        if self.storage is not None and self.storage.startswith("sqlite") and self.workers > 1:
            raise ValueError(
                "SQLite storage serves a single process only; use workers: 1, "
                "the default journal file, or PostgreSQL for many workers"
            )
        return self

    def _check_screen(self, field: str, text: str) -> None:
        """A training-free rung's score: a zero-cost proxy or an expression over them."""
        from tgsage.proxies import PROXIES
        from tgsage.scores import parse_score

        if text not in PROXIES:
            try:
                screen = parse_score(text)
            except Exception as exc:
                raise ValueError(
                    f"{field}: {text!r} is neither a registered zero-cost "
                    f"proxy {sorted(PROXIES)} nor a score expression over them ({exc})"
                ) from None
            others = [n for n in screen.names if n not in PROXIES]
            if screen.names == (text.strip(),):
                raise ValueError(
                    f"{field}: {text!r} is not a registered zero-cost proxy {sorted(PROXIES)}"
                )
            if others:
                raise ValueError(
                    f"{field} {text!r} reads {others}, which are not zero-cost "
                    f"proxies {sorted(PROXIES)}: the screen scores untrained networks (trained "
                    "scores belong in score / cascade.rung_scores)"
                )
            if screen.fitted and self.ground_truth is None:
                raise ValueError(
                    f"{field} {text!r} has a fitted combiner; it learns from "
                    "labelled architectures: set ground_truth (a NAS-Bench-201 table)"
                )

    def _check_cascade(self, cascade: CascadeConfig) -> None:
        if "budget" in self.model_fields_set and self.budget != cascade.budgets[-1]:
            raise ValueError(
                "a cascade trains to cascade.budgets; leave budget out (or set it to the "
                f"last of them, {cascade.budgets[-1]!r})"
            )
        if self.beta != 0:
            raise ValueError("beta * rank(proxy) does not apply to a cascade; use cascade.screen")
        from tgsage.scores import parse_name, parse_score

        for field, text in (("screen", cascade.screen), ("prescreen", cascade.prescreen)):
            if text is not None:
                self._check_screen(f"cascade.{field}", text)
        for text in cascade.rung_scores or [self.score]:
            if text == "proxy":
                raise ValueError(
                    "in a cascade the training-free score is cascade.screen; score (and "
                    "cascade.rung_scores) rank the trained rungs: P, TG, P+TG, SoTL, ..."
                )
            try:
                _score_text(text)
                expr = parse_score(text, alpha=self.alpha)
            except Exception as exc:
                raise ValueError(f"cascade rung score {text!r}: {exc}") from None
            if expr.population:
                raise ValueError(
                    f"cascade rung score {text!r} ranks among other architectures (rank, "
                    "meanrank, logrank, fitted terms); a rung's score must be a candidate's "
                    "own (e.g. P, TG, P + 0.5*TG, SoTL)"
                )
            names = [parse_name(n) for n in expr.names]
            if any(n.family == "P-slope" for n in names):
                raise ValueError("P-slope needs a run from the start; not a cascade rung score")
            if self.objective == "train" and self.teacher is None:
                if any(n.needs_teacher for n in names):
                    raise ValueError(f"cascade rung score {text!r} needs 'teacher: <teacher file>'")
        self.budget = cascade.budgets[-1]  # what the answer was trained to

    # ------------------------------------------------------------------ derived
    @property
    def score_expression(self) -> str:
        """The whole score as one :mod:`tgsage.scores` expression: ``score`` (``p+tg`` with
        ``alpha``), plus ``beta * rank(proxy)`` when ``proxy`` and ``beta`` are set; with
        ``score: proxy`` the proxy alone."""
        from tgsage.scores import parse_score

        if self.score == "proxy":
            return str(self.proxy)
        text = str(parse_score(self.score, alpha=self.alpha))
        if self.proxy is not None and self.beta != 0:
            text = f"{text} + {self.beta!r}*rank({self.proxy})"
        return text

    @property
    def needs_teacher(self) -> bool:
        """Whether the score reads TG or S_i (then a train objective needs a teacher)."""
        if self.score == "proxy":
            return False
        from tgsage.scores import parse_name, parse_score

        return any(parse_name(n).needs_teacher for n in parse_score(self.score).names)

    @property
    def train_config(self) -> Any:
        """The TrainConfig candidates are trained with: ``train`` (default: the space's preset,
        :data:`SPACE_PRESETS`) plus ``train_options``."""
        from tgsage.train import get_preset

        name = self.train if self.train is not None else SPACE_PRESETS.get(self.space)
        return get_preset(name, **self.train_options)

    @property
    def resolved_run_dir(self) -> Path:
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name

    @property
    def storage_url(self) -> str:
        """The storage URL; the default is the journal file ``<run_dir>/search.journal``."""
        if self.storage is not None:
            return self.storage
        return f"journal:{self.resolved_run_dir / 'search.journal'}"

    @property
    def failure_limit(self) -> int:
        return self.max_failures if self.max_failures is not None else max(self.n_candidates, 10)

    def resolve_paths(self) -> SearchConfig:
        """Absolute run_dir, teacher, data root, journal path and the cascade's cache and
        checkpoint folder (stored in the study)."""
        update: dict[str, Any] = {"run_dir": self.resolved_run_dir.expanduser().resolve()}
        if self.teacher is not None:
            update["teacher"] = self.teacher.expanduser().resolve()
        if self.ground_truth is not None:
            update["ground_truth"] = self.ground_truth.expanduser().resolve()
        data = self.data
        if "root" in data.options and data.options["root"] is not None:
            opts = data.options | {"root": str(Path(data.options["root"]).expanduser().resolve())}
            data = DataConfig(name=data.name, **opts)
        update["data"] = data
        if self.cascade is not None:
            paths = {
                k: getattr(self.cascade, k).expanduser().resolve()
                for k in ("cache", "checkpoints")
                if getattr(self.cascade, k) is not None
            }
            update["cascade"] = self.cascade.model_copy(update=paths)
        cfg = self.model_copy(update=update)
        if cfg.storage is not None and is_journal_url(cfg.storage):
            cfg = cfg.model_copy(update={"storage": f"journal:{journal_path(cfg.storage)}"})
        return cfg

    def to_json(self) -> str:
        return self.model_dump_json()

    def differences(self, other: SearchConfig) -> list[str]:
        """Fields (other than those a restart may change) whose values differ."""
        a, b = json.loads(self.to_json()), json.loads(other.to_json())
        return sorted(k for k in a if k not in MUTABLE_FIELDS and a[k] != b.get(k))


def _score_text(v: str) -> str:
    """A search score: ``proxy`` or a :mod:`tgsage.scores` expression whose names are scores
    or registered proxies (ValueError naming the unknown one)."""
    if v.strip().lower() == "proxy":
        return "proxy"
    from tgsage.scores import parse_score

    expr = parse_score(v)  # InputError -> a validation error naming the field
    from tgsage.proxies import PROXIES
    from tgsage.scores import parse_name

    for name in expr.names:
        if parse_name(name).is_proxy and name not in PROXIES:
            hint = "; to subtract two scores write 'a - b'" if "-" in name else ""
            raise ValueError(
                f"{name!r} is neither a score (P, TG, TG-cka, S_<layer>, SoTL, ...) nor "
                f"a registered proxy {sorted(PROXIES)}{hint}"
            )
    return v


def is_journal_url(url: str) -> bool:
    return url.startswith("journal:") or "://" not in url


def journal_path(url: str) -> Path:
    """The file of a journal URL: ``journal:PATH``, ``journal:///ABS`` or a plain path."""
    path = url.removeprefix("journal:")
    if path.startswith("//"):
        path = path[2:]
    return Path(path).expanduser().resolve()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line report as one line: the problem and where (1-based line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def load_config(
    source: SearchConfig | Mapping[str, Any] | str | Path, **overrides: Any
) -> SearchConfig:
    """A validated config from a YAML/JSON file, a dict or a config; ``overrides`` win.

    Overrides whose value is None are ignored (so CLI flags left unset do not override).
    """
    if isinstance(source, SearchConfig):
        data: dict[str, Any] = json.loads(source.to_json())
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"config file {path} not found")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"config file {path} is not valid YAML: {_yaml_problem(exc)}"
            ) from None
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"config file {path}: expected a mapping of fields at the top")
        data = dict(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = SearchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid search config: {_format_error(exc)}") from None
    return cfg.resolve_paths()


def config_from_json(text: str) -> SearchConfig:
    try:
        return SearchConfig.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(
            f"the config stored in the study is invalid: {_format_error(exc)}"
        ) from None
