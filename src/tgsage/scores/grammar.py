"""One grammar for every score: base names, weighted sums, rank transforms, aggregations, fits.

::

    expr    := term (("+" | "-") term)*
    term    := factor ("*" factor)*        # at most one factor that is not a number
    factor  := NUMBER | NAME | FUNC "(" expr ("," expr)* ")" | "(" expr ")" | "-" factor

Examples: ``P``, ``TG-cka``, ``P + 0.5*TG``, ``P+TG+rank(synflow)``, ``0.5*rank(naswot)``,
``meanrank(synflow, naswot, TG)``, ``logrank(jacob_cov, params)``,
``ridge(synflow, naswot, P, TG, ops)``.

Names are the base scores of :mod:`tgsage.scores.names` (``S_<layer>``, ``SoTL-E``, proxies
...). A ``-`` directly between two letters belongs to the name (``SoTL-E``, ``TG-cka``); to
subtract, write a space or a number after it (``P - TG``, ``P -0.5*TG``). Odd layer names can be
quoted (``"S_layer 1"``). Old spellings keep working: ``p``, ``tg``, ``p+tg``, ``S:<layer>``,
``Z:<proxy>`` and ``<score>+rank(<proxy>)``.

Functions (all over a *population*, see :mod:`tgsage.scores.population`):

* ``rank(x)``: x's mid-rank percentile in (0, 1) within the population (or against a
  reference population);
* ``meanrank(a, b, ...)``: the mean of ``rank`` of each argument;
* ``logrank(a, b, ...)``: the sum of ``log(rank)`` of each argument (AZ-NAS's aggregation);
* ``ridge(...)``, ``forest(...)``, ``gbm(...)``: a regressor fitted on labelled architectures
  (ridge on within-population ranks of the features; random forest; gradient boosting), with
  the feature ``ops`` standing for the spec's operation counts (:mod:`tgsage.scores.fitted`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tgsage.errors import InputError
from tgsage.scores.names import parse_name

RANK_FUNCS = ("rank", "meanrank", "logrank")
FIT_FUNCS = ("ridge", "forest", "gbm")
FUNCS = RANK_FUNCS + FIT_FUNCS
#: The spec-encoding feature, usable only inside a fitted combiner.
OPS = "ops"


# ---------------------------------------------------------------------- syntax tree
@dataclass(frozen=True)
class Ref:
    """A base score by its canonical name."""

    name: str

    def __str__(self) -> str:
        return self.name if _NAME_FULL.match(self.name) else f'"{self.name}"'


@dataclass(frozen=True)
class Const:
    value: float

    def __str__(self) -> str:
        return _num(self.value)


@dataclass(frozen=True)
class Sum:
    """``const + sum(weight * node)``."""

    terms: tuple[tuple[float, Node], ...]
    const: float = 0.0

    def __str__(self) -> str:
        parts = []
        for w, node in self.terms:
            inner = f"({node})" if isinstance(node, Sum) else str(node)
            text = inner if w == 1 else f"-{inner}" if w == -1 else f"{_num(w)}*{inner}"
            parts.append(text)
        if self.const:
            parts.append(_num(self.const))
        out = parts[0]
        for p in parts[1:]:
            out += f" - {p[1:]}" if p.startswith("-") else f" + {p}"
        return out


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]

    def __str__(self) -> str:
        return f"{self.func}({', '.join(str(a) for a in self.args)})"


Node = Ref | Const | Sum | Call


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


# ---------------------------------------------------------------------- tokens
_NAME = r"[A-Za-z_][A-Za-z0-9_.:]*(?:-[A-Za-z][A-Za-z0-9_.:]*)*"
_NAME_FULL = re.compile(f"^{_NAME}$")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    rf"|(?P<name>{_NAME})"
    r"|\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'"
    r"|(?P<op>[-+*(),]))"
)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InputError(
                f"score {text!r}: cannot read {text[pos:].strip()[:20]!r} at position {pos}; "
                "write names, numbers, + - * , ( ) (e.g. 'P + 0.5*TG')"
            )
        kind = m.lastgroup
        value = m.group(kind)  # type: ignore[arg-type]
        yield ("name" if kind in ("dq", "sq") else kind), value, m.start(kind)  # type: ignore[misc]
        pos = m.end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = list(_tokens(text))
        self.i = 0

    def error(self, what: str) -> InputError:
        return InputError(f"score {self.text!r}: {what}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, op: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise self.error("ends too early" + (f"; expected {op!r}" if op else ""))
        if op is not None and (tok[0] != "op" or tok[1] != op):
            raise self.error(f"expected {op!r} at position {tok[2]}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise InputError("empty score; name one, e.g. 'P' or 'P + TG'")
        node = self.expr()
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected {tok[1]!r} at position {tok[2]}")
        return node

    def expr(self) -> Node:
        terms = [(1.0, self.term())]
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in "+-":
            self.take()
            sign = 1.0 if tok[1] == "+" else -1.0
            terms.append((sign, self.term()))
        return _make_sum(terms)

    def term(self) -> Node:
        weight, node = 1.0, None
        while True:
            f = self.factor()
            w, f = _split_weight(f)
            weight *= w
            if f is not None:
                if node is not None:
                    raise self.error("scores can only be multiplied by numbers (weighted sums)")
                node = f
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] != "*":
                break
            self.take()
        if node is None:
            return Const(weight)
        return node if weight == 1 else Sum(((weight, node),))

    def factor(self) -> Node:
        kind, value, pos = self.take()
        if kind == "num":
            return Const(float(value))
        if kind == "op" and value == "-":
            return _make_sum([(-1.0, self.factor())])
        if kind == "op" and value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[0] == "op" and nxt[1] == "(":
                return self.call(value, pos)
            if value.lower() == OPS:
                return Ref(OPS)
            return Ref(parse_name(value).name)
        raise self.error(f"unexpected {value!r} at position {pos}")

    def call(self, func: str, pos: int) -> Node:
        fn = func.lower()
        if fn not in FUNCS:
            raise self.error(f"unknown function {func!r} at position {pos}; use one of {FUNCS}")
        self.take("(")
        args = [self.expr()]
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        if fn == "rank" and len(args) != 1:
            raise self.error("rank() takes one score; use meanrank(a, b, ...) for several")
        return Call(fn, tuple(args))


def _split_weight(node: Node) -> tuple[float, Node | None]:
    if isinstance(node, Const):
        return node.value, None
    if isinstance(node, Sum) and len(node.terms) == 1 and not node.const:
        return node.terms[0]
    return 1.0, node


def _make_sum(terms: list[tuple[float, Node]]) -> Node:
    flat: list[tuple[float, Node]] = []
    const = 0.0
    for w, node in terms:
        if isinstance(node, Const):
            const += w * node.value
        elif isinstance(node, Sum):
            flat += [(w * w2, n2) for w2, n2 in node.terms]
            const += w * node.const
        else:
            flat.append((w, node))
    if not flat:
        return Const(const)
    merged: dict[Node, float] = {}
    for w, node in flat:
        merged[node] = merged.get(node, 0.0) + w
    items = tuple((w, n) for n, w in merged.items())
    if len(items) == 1 and items[0][0] == 1 and not const:
        return items[0][1]
    return Sum(items, const)


# ---------------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Expression:
    """A parsed score: its text as given, its syntax tree, and what it needs."""

    text: str
    node: Node

    def __str__(self) -> str:
        return str(self.node)

    @property
    def names(self) -> tuple[str, ...]:
        """The base score names it reads, in first-use order (``ops`` excluded)."""
        return tuple(dict.fromkeys(n for n in _refs(self.node) if n != OPS))

    @property
    def population_names(self) -> tuple[str, ...]:
        """The base names read inside ``rank``/aggregations/fits: what a reference population
        of other architectures must have measured."""
        out: dict[str, None] = {}
        for n in _walk(self.node):
            if isinstance(n, Call):
                out.update(dict.fromkeys(r for r in _refs(n) if r != OPS))
        return tuple(out)

    @property
    def population(self) -> bool:
        """Whether its value for one candidate depends on other architectures (ranks, fits)."""
        return any(isinstance(n, Call) for n in _walk(self.node))

    @property
    def fitted(self) -> bool:
        """Whether it contains a fitted combiner (needs labelled architectures)."""
        return any(isinstance(n, Call) and n.func in FIT_FUNCS for n in _walk(self.node))

    @property
    def uses_ops(self) -> bool:
        return OPS in set(_refs(self.node))

    def is_base(self) -> bool:
        return isinstance(self.node, Ref)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Sum):
        for _, n in node.terms:
            yield from _walk(n)
    elif isinstance(node, Call):
        for a in node.args:
            yield from _walk(a)


def _refs(node: Node) -> Iterator[str]:
    for n in _walk(node):
        if isinstance(n, Ref):
            yield n.name


def _check(node: Node, text: str, inside_fit: bool = False) -> None:
    if isinstance(node, Ref) and node.name == OPS and not inside_fit:
        raise InputError(
            f"score {text!r}: 'ops' (the spec's operation counts) is a feature of a fitted "
            "combiner only, e.g. ridge(synflow, ops)"
        )
    if isinstance(node, Sum):
        for _, n in node.terms:
            _check(n, text, inside_fit)
    if isinstance(node, Call):
        fit = node.func in FIT_FUNCS
        if fit and inside_fit:
            raise InputError(f"score {text!r}: fitted combiners cannot be nested")
        for a in node.args:
            if fit and not isinstance(a, Ref) and not (isinstance(a, Call) or isinstance(a, Sum)):
                raise InputError(f"score {text!r}: {node.func}() takes scores as features")
            _check(a, text, inside_fit or fit)


def parse_score(text: str | Expression, *, alpha: float = 1.0, beta: float = 1.0) -> Expression:
    """Parse a score expression (see the module docstring).

    ``alpha`` and ``beta`` serve the old spellings only: ``P+TG`` written exactly that way means
    ``P + alpha*TG``, and a trailing ``+rank(<x>)`` on it means ``+ beta*rank(<x>)``, as the
    predictivity tables and search configs always read them. New expressions carry their
    weights inline (``P + 0.5*TG + 2*rank(synflow)``).
    """
    if isinstance(text, Expression):
        return text
    if not isinstance(text, str):
        raise InputError(f"a score is a string such as 'P + TG', got {type(text).__name__}")
    source = _legacy(text, alpha, beta)
    node = _Parser(source).parse()
    _check(node, text)
    if isinstance(node, Const):
        raise InputError(f"score {text!r} is a constant; name at least one score")
    return Expression(text.strip(), node)


_LEGACY_PTG = re.compile(r"^\s*(p|P)\s*\+\s*(tg|TG)\s*$")
_LEGACY_RANK = re.compile(r"^(?P<base>.+?)\s*\+\s*rank\((?P<arg>[^()]+)\)\s*$")


def _legacy(text: str, alpha: float, beta: float) -> str:
    """Rewrite the two old weighted forms when a non-default weight is given."""
    for name, w in (("alpha", alpha), ("beta", beta)):
        if not math.isfinite(w):
            raise InputError(f"{name} must be finite, got {w}")
    base, arg = text, None
    m = _LEGACY_RANK.match(text)
    if m is not None and beta != 1.0:
        base, arg = m["base"], m["arg"]
    if _LEGACY_PTG.match(base) and alpha != 1.0:
        base = f"P + {_num(alpha)}*TG"
    if arg is not None:
        return f"{base} + {_num(beta)}*rank({arg})"
    return base


def split_scores(text: str) -> list[str]:
    """Comma-separated score expressions (commas inside parentheses belong to a function):
    ``"P+TG, meanrank(synflow, naswot)"`` -> ``["P+TG", "meanrank(synflow, naswot)"]``."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


__all__ = [
    "FIT_FUNCS",
    "FUNCS",
    "OPS",
    "RANK_FUNCS",
    "Call",
    "Const",
    "Expression",
    "Ref",
    "Sum",
    "parse_score",
    "split_scores",
]
