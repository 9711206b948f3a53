"""Finding a search from what a user types: a run folder, a config file, or a storage URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tgsage.errors import ConfigError


@dataclass
class SearchRun:
    """A finished (or running) search: its study, stored config, storage URL and run folder."""

    study: Any
    config: Any
    storage: str
    run_dir: Path


def resolve_run(
    target: str | None, storage: str | None = None, study: str | None = None
) -> SearchRun:
    """The search named the way ``tgsage status`` accepts it: a run folder (its
    ``search.journal``), a config file (its storage and name), or ``--storage [--study]``."""
    from tgsage.search.config import is_journal_url, journal_path, load_config
    from tgsage.search.storage import load_study, redact, study_names

    run_dir: Path | None = None
    if target is not None and storage is None:
        path = Path(target)
        if path.is_dir():
            journal = path / "search.journal"
            if not journal.exists():
                raise ConfigError(
                    f"{path} holds no search.journal (not a search run folder?); "
                    "give the run folder of a search, or --storage URL"
                )
            storage, run_dir = f"journal:{journal.resolve()}", path
        elif path.is_file():
            cfg = load_config(path)
            storage, study = cfg.storage_url, study or cfg.name
        else:
            raise ConfigError(
                f"run {target!r} not found: give a search's run folder, its "
                "config file, or --storage URL [--study NAME]"
            )
    if storage is None:
        raise ConfigError(
            "give a search's run folder, its config file, or --storage URL [--study NAME]"
        )
    if is_journal_url(storage) and not journal_path(storage).exists():
        raise ConfigError(f"no journal file at {journal_path(storage)}; is the storage right?")
    if study is None:
        names = study_names(storage)
        if len(names) != 1:
            raise ConfigError(
                f"{redact(storage)} holds {len(names)} studies "
                f"({', '.join(names) or 'none'}); choose one with --study"
            )
        study = names[0]
    st, cfg = load_study(storage, study)
    return SearchRun(st, cfg, storage, run_dir if run_dir is not None else cfg.resolved_run_dir)


def dashboard_target(storage: str) -> str:
    """What to hand optuna-dashboard for ``storage``: a journal's bare path, else the URL
    with its password hidden."""
    from tgsage.search.config import is_journal_url, journal_path
    from tgsage.search.storage import redact

    return str(journal_path(storage)) if is_journal_url(storage) else redact(storage)
