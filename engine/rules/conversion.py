"""`gitward convert`: rules from one syntax printed in the other, and what the output leaves out.

Nothing is lost in silence. What gitward models is printed with its keywords, the Flux fields it
does not model travel as `flux` fields (DSL) or back in place (Flux YAML), and gitward's own
gates as `gitward.dev/*` annotations. What still cannot travel is a located warning with the code
NOT_KEPT: a value the reader could not keep (SOPS ciphertext, `status`, fields the API server
sets; the reader warns), an object the target syntax has no statement or kind for (a HelmRelease
in the DSL, an alert in Flux YAML; warned here).
"""

from __future__ import annotations

from enum import StrEnum

from engine.errors import Problems
from engine.model import FluxObject, RuleSet
from engine.rules.flux import flux_expressible, write_flux
from engine.rules.fluxapi import NOT_KEPT
from engine.rules.printer import dsl_expressible, print_rules


class Syntax(StrEnum):
    DSL = "dsl"
    FLUX = "flux"


def convert(rules: RuleSet, target: Syntax, problems: Problems) -> str:
    """`rules` printed in `target`; every object left out is a NOT_KEPT warning in `problems`."""
    expressible, lacks = ((flux_expressible, "has no Flux equivalent") if target is Syntax.FLUX
                          else (dsl_expressible, "has no gitward rules statement"))
    kept = []
    for rule in rules.all():
        key = rule.key
        name = f"{rule.KIND} {key.ref if key.namespace else key.name}"
        if isinstance(rule, FluxObject):
            problems.warning(f"{name} is not a gitward rule (gitward does not reconcile it): left out of "
                             "the output; keep it as YAML", rule.origin, code=NOT_KEPT)
        elif not expressible(rule):
            problems.warning(f"{name} {lacks}: left out of the output", rule.origin, code=NOT_KEPT)
        else:
            kept.append(rule)
    return write_flux(kept) if target is Syntax.FLUX else print_rules(kept)


def left_out(problems: Problems) -> int:
    """How many things the output does not hold (objects and fields), as `problems` says."""
    return sum(p.code == NOT_KEPT for p in problems.warnings)
