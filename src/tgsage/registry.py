"""Things chosen by name (timm / Optuna style): one :class:`Registry` per kind.

Data sets, models, search spaces, strategies, zero-cost proxies, training presets and published
cells are each a ``Registry``: configs and the command line pick them with a string, users add
their own with ``register`` (also a decorator), and every unknown name is the same one-line
error naming the choices. A registry reads like a dict (``name in r``, ``r[name]``,
``r.items()``, ``list(r)``) in registration order; only ``register`` writes to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView
from typing import Any, Generic, TypeVar, overload

from tgsage.errors import ConfigError, TgsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named ``T``s of one ``kind`` ("dataset", "space", ...); lookups of unknown names raise
    ``error`` (a :class:`~tgsage.errors.TgsageError` subclass) listing the registered names."""

    def __init__(self, kind: str, error: type[TgsageError] = ConfigError) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    @overload
    def register(
        self, name: str, item: None = None, *, replace: bool = False
    ) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, item: T, *, replace: bool = False) -> T: ...

    def register(self, name: str, item: T | None = None, *, replace: bool = False) -> Any:
        """Add ``item`` under ``name`` and return it; without ``item``, a decorator that does.
        A name already taken is an error unless ``replace`` (e.g. a user's own version)."""
        if item is None:
            return lambda obj: self.register(name, obj, replace=replace)
        if not isinstance(name, str) or not name:
            raise self.error(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items and not replace:
            raise self.error(
                f"{self.kind} {name!r} is already registered; pick another name or pass "
                "replace=True"
            )
        self._items[name] = item
        return item

    def unregister(self, name: str) -> T:
        """Remove and return ``name`` (tests and plugins that clean up after themselves)."""
        self.get(name)
        return self._items.pop(name)

    def get(self, name: str) -> T:
        """The item registered as ``name``; an unknown name raises ``error``."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise self.error(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for an unknown name: what was asked and every choice."""
        return f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}"

    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """Call the factory registered as ``name``; options it does not take raise ``error``
        naming the option and the factory (instead of a bare TypeError)."""
        factory: Any = self.get(name)
        try:
            inspect.signature(factory).bind(*args, **options)
        except TypeError as exc:
            raise self.error(f"bad option for {self.kind} {name!r}: {exc}") from None
        except ValueError:  # no signature (some builtins): let the call decide
            pass
        try:
            return factory(*args, **options)
        except TypeError as exc:  # an option forwarded through **kwargs to the real loader
            if "unexpected keyword argument" not in str(exc):
                raise
            raise self.error(f"bad option for {self.kind} {name!r}: {exc}") from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def keys(self) -> KeysView[str]:
        return self._items.keys()

    def values(self) -> ValuesView[T]:
        return self._items.values()

    def items(self) -> ItemsView[str, T]:
        return self._items.items()

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"


__all__ = ["Registry"]
