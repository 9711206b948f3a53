"""The score grammar: names, weighted sums, functions, old spellings, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.errors import InputError
from tgsage.scores import parse_name, parse_score
from tgsage.scores.grammar import Call, Ref, Sum


@pytest.mark.parametrize(
    ("text", "canonical", "names"),
    [
        ("P", "P", ("P",)),
        ("p", "P", ("P",)),
        ("p+tg", "P + TG", ("P", "TG")),
        ("P + 0.5*TG", "P + 0.5*TG", ("P", "TG")),
        ("P+TG+rank(synflow)", "P + TG + rank(synflow)", ("P", "TG", "synflow")),
        ("Z:synflow", "synflow", ("synflow",)),
        ("S:stack1", "S_stack1", ("S_stack1",)),
        ("S-cka:stack1", "S-cka_stack1", ("S-cka_stack1",)),
        ("SoTL-E", "SoTL-E", ("SoTL-E",)),
        ("sotl-e", "SoTL-E", ("SoTL-E",)),
        ("TG-relation", "TG-rel", ("TG-rel",)),
        ("P - TG", "P - TG", ("P", "TG")),
        ("P -0.5*TG", "P - 0.5*TG", ("P", "TG")),
        ("2*(P+TG)", "2*(P + TG)", ("P", "TG")),
        ("P*3 + TG*0", "3*P + 0*TG", ("P", "TG")),
        ("0.5*rank(P)*2", "rank(P)", ("P",)),
        ("meanrank(synflow, naswot, TG)", "meanrank(synflow, naswot, TG)", None),
        ("logrank(jacob_cov,params)", "logrank(jacob_cov, params)", None),
        ("ridge(synflow, P, ops)", "ridge(synflow, P, ops)", ("synflow", "P")),
        ('"S_layer 1" + P', '"S_layer 1" + P', ("S_layer 1", "P")),
    ],
)
def test_expressions_parse_to_their_canonical_form(text, canonical, names) -> None:
    expr = parse_score(text)
    assert str(expr) == canonical
    if names is not None:
        assert expr.names == names
    # the canonical text means the same thing
    assert parse_score(str(expr)).node == expr.node


def test_what_an_expression_needs() -> None:
    assert not parse_score("P + 0.5*TG").population
    assert parse_score("P + rank(synflow)").population
    assert parse_score("gbm(synflow, ops)").fitted and parse_score("gbm(synflow, ops)").uses_ops
    assert not parse_score("meanrank(a, b)").fitted
    assert parse_score("TG").is_base() and not parse_score("2*TG").is_base()


def test_old_weighted_spellings_take_alpha_and_beta() -> None:
    assert str(parse_score("P+TG", alpha=2)) == "P + 2*TG"
    assert str(parse_score("p+tg", alpha=0.5)) == "P + 0.5*TG"
    assert str(parse_score("P+TG+rank(synflow)", alpha=2, beta=0.25)) == (
        "P + 2*TG + 0.25*rank(synflow)"
    )
    assert str(parse_score("P+rank(Z:params)", beta=3)) == "P + 3*rank(params)"
    # new expressions carry their own weights: alpha does not touch them
    assert str(parse_score("P + 0.5*TG", alpha=2)) == "P + 0.5*TG"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("P*TG", "multiplied by numbers"),
        ("", "empty score"),
        ("rank(a, b)", "meanrank"),
        ("foo(P)", "unknown function"),
        ("ops", "fitted combiner only"),
        ("P +", "ends too early"),
        ("3", "constant"),
        ("P + $", "cannot read"),
        ("ridge(ridge(a))", "cannot be nested"),
        ("(P", "expected ')'"),
        ("P TG", "unexpected"),
    ],
)
def test_bad_expressions_name_the_problem(text, fragment) -> None:
    with pytest.raises(InputError, match=None) as err:
        parse_score(text)
    assert fragment in str(err.value)


def test_base_names() -> None:
    s = parse_name("S-rel_block3")
    assert (s.family, s.comparison, s.layer) == ("S", "relation", "block3")
    t = parse_name("tg-cka-deep")
    assert (t.name, t.family, t.comparison, t.deep) == ("TG-cka-deep", "TG", "cka", True)
    assert parse_name("P").needs_training and not parse_name("P").needs_teacher
    assert parse_name("S_L1").needs_teacher and parse_name("naswot").is_proxy


_names = st.sampled_from(["P", "TG", "SoTL", "synflow", "S_L1", "TG-cka"])
_weights = st.floats(-5, 5, allow_nan=False).map(lambda w: round(w, 3))


@st.composite
def _expr_text(draw, depth=0):
    kind = draw(st.integers(0, 3 if depth < 2 else 0))
    if kind == 0:
        return draw(_names)
    if kind == 1:
        return f"{draw(_weights)}*{draw(_expr_text(depth + 1))}"
    if kind == 2:
        return f"{draw(_expr_text(depth + 1))} + {draw(_expr_text(depth + 1))}"
    args = draw(st.lists(_expr_text(depth + 1), min_size=1, max_size=3))
    return f"meanrank({', '.join(args)})"


@settings(max_examples=150, deadline=None)
@given(_expr_text())
def test_canonical_text_round_trips(text) -> None:
    try:
        expr = parse_score(text)
    except InputError as exc:  # e.g. weights that cancel to a constant
        assert "constant" in str(exc)
        return
    again = parse_score(str(expr))
    assert again.node == expr.node
    assert set(again.names) <= {"P", "TG", "SoTL", "synflow", "S_L1", "TG-cka"}
    assert isinstance(expr.node, Ref | Sum | Call)


def test_split_scores_keeps_function_arguments_together() -> None:
    from tgsage.scores import split_scores

    assert split_scores("P+TG+rank(synflow),P+rank(synflow)") == [
        "P+TG+rank(synflow)",
        "P+rank(synflow)",
    ]
    assert split_scores(" meanrank(a, b), ridge(a, ops) ,") == ["meanrank(a, b)", "ridge(a, ops)"]
