"""dependsOn ordering: every dependency first, ties in the rules' order, located errors for
undefined dependencies and cycles (from real rule files, so positions are the parser's)."""

from __future__ import annotations

from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Problems, RuleError
from engine.evaluate.order import dependencies, dependency_order
from engine.model import Kustomization, NamespacedRef, RuleSet, SourceRef
from engine.rules.parse import parse_rules


def ks(ref: str, *deps: str) -> Kustomization:
    ns, _, name = ref.rpartition("/")
    refs = tuple(NamespacedRef(d.rpartition("/")[2], d.rpartition("/")[0]) for d in deps)
    return Kustomization(name=name, namespace=ns or "flux-system", source_ref=SourceRef("flux-system"),
                         depends_on=refs)


def refs(items: tuple[Kustomization, ...]) -> list[str]:
    return [k.key.ref for k in items]


def rules(text: str) -> RuleSet:
    problems = Problems()
    parsed = parse_rules("clusters/layers.rules", dedent(text), problems)
    problems.raise_if_errors()
    return RuleSet.of(parsed)


@pytest.mark.parametrize(("kustomizations", "expected"), [
    pytest.param([ks("apps", "infra"), ks("infra")], ["flux-system/infra", "flux-system/apps"],
                 id="dependency-first-though-it-sorts-last"),
    pytest.param([ks("a"), ks("b"), ks("c")], ["flux-system/a", "flux-system/b", "flux-system/c"],
                 id="independent-keep-rules-order"),
    pytest.param([ks("apps", "infra", "crds"), ks("crds"), ks("infra", "crds")],
                 ["flux-system/crds", "flux-system/infra", "flux-system/apps"], id="chain-with-shortcut"),
    pytest.param([ks("app", "left", "right"), ks("base"), ks("left", "base"), ks("right", "base")],
                 ["flux-system/base", "flux-system/left", "flux-system/right", "flux-system/app"],
                 id="diamond"),
    pytest.param([ks("team/app", "infra"), ks("team/infra"), ks("infra")],
                 ["flux-system/infra", "team/infra", "team/app"],
                 id="dependency-without-namespace-means-the-referrers"),
    pytest.param([ks("team/app", "flux-system/infra"), ks("team/infra"), ks("infra")],
                 ["flux-system/infra", "team/app", "team/infra"], id="explicit-namespace"),
])
def test_every_dependency_goes_before_its_dependents(kustomizations: list[Kustomization],
                                                     expected: list[str]) -> None:
    ordered = RuleSet.of(list(kustomizations)).kustomizations
    assert refs(dependency_order(ordered)) == expected


def test_targets_are_ordered_among_themselves_and_nothing_else_is_added() -> None:
    known = RuleSet.of([ks("apps", "infra"), ks("infra", "crds"), ks("crds"), ks("other")]).kustomizations
    by_ref = {k.key.ref: k for k in known}
    chosen = [by_ref["flux-system/apps"], by_ref["flux-system/crds"]]
    assert refs(dependency_order(known, chosen)) == ["flux-system/crds", "flux-system/apps"]


def test_dependencies_resolve_namespaces_and_drop_repeats() -> None:
    k = ks("team/app", "infra", "flux-system/infra", "infra")
    assert [d.ref for d in dependencies(k)] == ["team/infra", "flux-system/infra"]


def test_an_undefined_dependency_is_located_with_a_suggestion() -> None:
    rs = rules("""\
        source git flux-system { url "https://example.com/r.git" }
        kustomization infra { source git flux-system }
        kustomization apps {
          source git flux-system
          depends-on infr
        }
        """)
    with pytest.raises(RuleError) as raised:
        dependency_order(rs.kustomizations)
    [problem] = raised.value.problems
    assert problem.code == "missing-dependency"
    assert problem.message == ('Kustomization flux-system/apps depends on flux-system/infr, which is '
                               'not defined (did you mean "flux-system/infra"?)')
    assert problem.pos is not None
    assert (problem.pos.path, problem.pos.line) == ("clusters/layers.rules", 5)
    assert str(problem.pos).startswith("clusters/layers.rules:5:")


def test_a_cycle_is_reported_once_located_at_a_dependsOn_entry() -> None:
    rs = rules("""\
        source git flux-system { url "https://example.com/r.git" }
        kustomization a {
          source git flux-system
          depends-on b
        }
        kustomization b {
          source git flux-system
          depends-on c
        }
        kustomization c {
          source git flux-system
          depends-on a
        }
        kustomization d {
          source git flux-system
          depends-on a
        }
        """)
    with pytest.raises(RuleError) as raised:
        dependency_order(rs.kustomizations)
    [problem] = raised.value.problems
    assert problem.code == "dependency-cycle"
    assert problem.message == ("Kustomization flux-system/a: dependency cycle flux-system/a -> "
                               "flux-system/b -> flux-system/c -> flux-system/a")
    assert problem.pos is not None and problem.pos.line == 4
    assert "error: Kustomization flux-system/a: dependency cycle" in str(raised.value)


def test_a_kustomization_that_depends_on_itself_is_a_cycle() -> None:
    with pytest.raises(RuleError, match=r"dependency cycle flux-system/a -> flux-system/a"):
        dependency_order([ks("a", "a")])


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RuleError) as raised:
        dependency_order([ks("a", "b"), ks("b", "a"), ks("c", "nowhere")])
    assert sorted(p.code for p in raised.value.problems) == ["dependency-cycle", "missing-dependency"]


def test_a_cycle_outside_the_targets_does_not_block_them() -> None:
    known = [ks("a", "b"), ks("b", "a"), ks("c"), ks("d", "c")]
    assert refs(dependency_order(known, [known[3]])) == ["flux-system/d"]
    with pytest.raises(RuleError, match="dependency cycle"):
        dependency_order(known, [known[0]])


def test_the_inputs_are_not_changed() -> None:
    known = [ks("apps", "infra"), ks("infra")]
    before = list(known)
    dependency_order(known)
    assert known == before


@st.composite
def acyclic(draw: st.DrawFn) -> list[Kustomization]:
    """Random DAGs: node i may depend only on nodes with a lower index (then shuffled)."""
    n = draw(st.integers(min_value=1, max_value=12))
    nodes = []
    for i in range(n):
        deps = draw(st.lists(st.integers(min_value=0, max_value=max(i - 1, 0)), max_size=3)) if i else []
        nodes.append(ks(f"k{i}", *(f"k{d}" for d in deps)))
    return draw(st.permutations(nodes))


@settings(max_examples=200, deadline=None)
@given(acyclic())
def test_any_acyclic_graph_is_ordered_completely_and_dependencies_first(nodes: list[Kustomization]) -> None:
    ordered = dependency_order(nodes)
    assert sorted(refs(ordered)) == sorted(k.key.ref for k in nodes)
    position = {k.key: i for i, k in enumerate(ordered)}
    for k in ordered:
        for dep in dependencies(k):
            assert position[dep] < position[k.key]
    assert dependency_order(nodes) == ordered  # deterministic
