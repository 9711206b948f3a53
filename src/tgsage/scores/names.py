"""The named base scores: what each name means, what measuring it needs, and its spelling.

Every score is "higher is better" (losses are negated). A base score is one number per
measured candidate; expressions (:mod:`tgsage.scores.grammar`) combine them.

==================  =====================================================================
name                meaning
==================  =====================================================================
``P``               premature validation accuracy (a fraction) after the budget
``TG``              teacher guidance: mean over teacher layers of ``S_i`` (RDM Pearson)
``S_<layer>``       ``S_i`` of one teacher layer: max over candidate layers of the RDM
                    similarity (old spelling ``S:<layer>``)
``TG-cka``          TG with linear CKA instead of RDM Pearson (``S-cka_<layer>`` per layer)
``TG-rel``          TG with the relation (batch Gram) similarity of DisWOT (Dong et al.
                    CVPR 2023): mean over images of the cosine between the two networks'
                    rows of the image x image Gram matrix (``S-rel_<layer>`` per layer)
``TG-deep``         S_i of the deepest teacher layer only (also ``TG-cka-deep``,
                    ``TG-rel-deep``)
``SoTL``            minus the sum of training losses over all steps so far (Ru et al.
                    NeurIPS 2021)
``SoTL-E``          minus the sum of training losses over the most recent epoch's worth of
                    steps (all steps when fewer)
``P-slope``         least-squares slope of P against training examples over the premature
                    checkpoints up to the budget, per 10,000 examples (needs two or more)
``<proxy>``         a zero-cost proxy of the untrained network (``synflow``, ``naswot``,
                    ...; old spelling ``Z:<proxy>``); any registered proxy
``params``          parameter count (also a proxy)
==================  =====================================================================

TG and its variants of the untrained network are TG at a budget of zero examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tgsage.errors import InputError

#: Comparison behind each TG family: RDM Pearson (the paper's), linear CKA, relation.
COMPARISONS = ("pearson", "cka", "relation")
#: The suffix a comparison gives a TG/S name ("" for the paper's RDM Pearson).
COMPARISON_TAGS = {"pearson": "", "cka": "-cka", "relation": "-rel"}
_TAG_COMPARISON = {"": "pearson", "-cka": "cka", "-rel": "relation", "-relation": "relation"}

FIXED = {
    "P": "premature validation accuracy after the budget",
    "TG": "teacher guidance (mean S_i, RDM Pearson)",
    "TG-cka": "teacher guidance with linear CKA",
    "TG-rel": "teacher guidance with the relation (batch Gram) similarity",
    "TG-deep": "S_i of the deepest teacher layer (RDM Pearson)",
    "TG-cka-deep": "linear CKA with the deepest teacher layer",
    "TG-rel-deep": "relation similarity with the deepest teacher layer",
    "SoTL": "minus the sum of training losses so far",
    "SoTL-E": "minus the sum of training losses over the last epoch of steps",
    "P-slope": "slope of P against examples (per 10,000) over the checkpoints",
}
_LOWER = {k.lower(): k for k in FIXED} | {
    "tg-relation": "TG-rel",
    "tg-relation-deep": "TG-rel-deep",
}
_LAYER = re.compile(r"^S(?P<tag>-cka|-rel|-relation)?[_:](?P<layer>.+)$")
_TG = re.compile(r"^TG(?P<tag>-cka|-rel)?(?P<deep>-deep)?$")

#: Names that only make sense after training (they need a premature run).
TRAINED = frozenset({"P", "SoTL", "SoTL-E", "P-slope"})


@dataclass(frozen=True)
class ScoreName:
    """A parsed base score name: its family and, where it has them, comparison and layer."""

    name: str  # canonical spelling
    family: str  # "P", "TG", "S", "SoTL", "SoTL-E", "P-slope", "proxy"
    comparison: str | None = None  # for TG / S
    layer: str | None = None  # for S
    deep: bool = False  # TG of the deepest teacher layer only

    @property
    def needs_teacher(self) -> bool:
        return self.family in ("TG", "S")

    @property
    def needs_training(self) -> bool:
        return self.family in ("P", "SoTL", "SoTL-E", "P-slope")

    @property
    def is_proxy(self) -> bool:
        return self.family == "proxy"


def canonical(name: str) -> str:
    """The canonical spelling of a base score name (old spellings and case variants of the
    fixed names accepted); proxy and layer names keep their case."""
    return parse_name(name).name


def parse_name(name: str) -> ScoreName:
    """What a base score name means (see the module table)."""
    text = name.strip()
    if not text:
        raise InputError("empty score name")
    fixed = _LOWER.get(text.lower())
    if fixed is not None:
        if fixed in ("P", "SoTL", "SoTL-E", "P-slope"):
            return ScoreName(fixed, fixed)
        m = _TG.match(fixed)
        assert m is not None
        comp = _TAG_COMPARISON[m["tag"] or ""]
        return ScoreName(fixed, "TG", comp, deep=bool(m["deep"]))
    m = _LAYER.match(text)
    if m is not None:
        comp = _TAG_COMPARISON[m["tag"] or ""]
        tag = COMPARISON_TAGS[comp]
        return ScoreName(f"S{tag}_{m['layer']}", "S", comp, layer=m["layer"])
    if text.startswith("Z:"):
        text = text[2:]
        if not text:
            raise InputError("'Z:' needs a proxy name, e.g. Z:synflow")
    return ScoreName(text, "proxy")


def tg_name(comparison: str = "pearson", deep: bool = False) -> str:
    """The TG-family name for a comparison (``"cka"`` -> ``"TG-cka"``)."""
    return f"TG{COMPARISON_TAGS[comparison]}{'-deep' if deep else ''}"


def layer_name(layer: str, comparison: str = "pearson") -> str:
    """The per-layer name for a teacher layer and comparison (``S_stack3``, ``S-cka_stack3``)."""
    return f"S{COMPARISON_TAGS[comparison]}_{layer}"


def list_score_names() -> dict[str, str]:
    """The fixed base names and what they mean (parametric ones: ``S_<layer>``, proxies)."""
    return dict(FIXED) | {
        "S_<layer>": "S_i of one teacher layer (also S-cka_<layer>, S-rel_<layer>)",
        "<proxy>": "a zero-cost proxy of the untrained network (tgsage.proxies)",
    }


__all__ = [
    "COMPARISONS",
    "TRAINED",
    "ScoreName",
    "canonical",
    "layer_name",
    "list_score_names",
    "parse_name",
    "tg_name",
]
