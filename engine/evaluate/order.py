"""The order Kustomizations are reconciled in: every dependency before its dependents.

Flux reconciles Kustomizations concurrently and lets a dependent wait until its `dependsOn`
are Ready; a one-shot run (`gitward reconcile kustomization --all`) gets the same effect by
going in topological order. Pure: the graph comes from the rules alone. A dependency that is
not defined, or a cycle, is a located error (the `dependsOn` entry at fault), since Flux would
leave such a Kustomization waiting forever.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

from engine.errors import Problems, did_you_mean
from engine.model import Kustomization, ObjectKey


def dependencies(ks: Kustomization) -> tuple[ObjectKey, ...]:
    """The Kustomizations `ks` depends on; a `dependsOn` without a namespace means its own."""
    keys = (ObjectKey(Kustomization.KIND, *dep.resolve(ks.namespace)) for dep in ks.depends_on)
    return tuple(dict.fromkeys(keys))


def dependency_order(kustomizations: Iterable[Kustomization],
                     targets: Iterable[Kustomization] | None = None) -> tuple[Kustomization, ...]:
    """`targets` (default: every Kustomization) with each dependency before its dependents.

    Only the targets and what they depend on (transitively) are checked, so a cycle elsewhere
    does not block an unrelated reconcile. Among Kustomizations free to go, the one first in
    `kustomizations` goes first (the rules' order: namespace, name). Raises RuleError naming
    every undefined dependency and every cycle.
    """
    known = list(kustomizations)
    by_key = {ks.key: ks for ks in known}
    chosen = known if targets is None else list(targets)
    wanted = _closure(chosen, by_key)
    problems = Problems()
    _check_defined(wanted, by_key, problems)
    _check_cycles(wanted, by_key, problems)
    problems.raise_if_errors()
    rank = {ks.key: i for i, ks in enumerate(known)}
    ordered = _topological(wanted, by_key, rank)
    keep = {ks.key for ks in chosen}
    return tuple(by_key[key] for key in ordered if key in keep)


def _closure(targets: Sequence[Kustomization], by_key: dict[ObjectKey, Kustomization]) -> list[ObjectKey]:
    """The targets and every defined Kustomization they reach through dependsOn."""
    seen: dict[ObjectKey, None] = {}
    stack = [ks.key for ks in reversed(targets)]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen[key] = None
        ks = by_key.get(key)
        if ks is not None:
            stack.extend(dep for dep in reversed(dependencies(ks)) if dep not in seen)
    return [key for key in seen if key in by_key]


def _check_defined(wanted: list[ObjectKey], by_key: dict[ObjectKey, Kustomization],
                   problems: Problems) -> None:
    names = [key.ref for key in by_key]
    for key in wanted:
        ks = by_key[key]
        for dep in ks.depends_on:
            dep_key = ObjectKey(Kustomization.KIND, *dep.resolve(ks.namespace))
            if dep_key not in by_key:
                problems.error(f"Kustomization {ks.key.ref} depends on {dep_key.ref}, which is not "
                               f"defined{did_you_mean(dep_key.ref, names)}",
                               dep.origin or ks.origin, code="missing-dependency")


def _check_cycles(wanted: list[ObjectKey], by_key: dict[ObjectKey, Kustomization],
                  problems: Problems) -> None:
    """Report each cycle once, from the Kustomization first in the rules' order."""
    done: set[ObjectKey] = set()
    reported: set[frozenset[ObjectKey]] = set()
    for start in sorted(wanted):
        if start in done:
            continue
        path: list[ObjectKey] = []
        on_path: set[ObjectKey] = set()
        # Iterative depth-first search: (node, its remaining dependencies).
        stack: list[tuple[ObjectKey, list[ObjectKey]]] = []

        def enter(key: ObjectKey) -> None:
            path.append(key)
            on_path.add(key)
            stack.append((key, [d for d in dependencies(by_key[key]) if d in by_key]))

        enter(start)
        while stack:
            key, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                on_path.discard(key)
                done.add(key)
                continue
            dep = pending.pop(0)
            if dep in on_path:
                cycle = path[path.index(dep):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    _report_cycle(cycle, by_key, problems)
            elif dep not in done:
                enter(dep)


def _report_cycle(cycle: list[ObjectKey], by_key: dict[ObjectKey, Kustomization],
                  problems: Problems) -> None:
    first = min(range(len(cycle)), key=lambda i: cycle[i])
    turn = cycle[first:] + cycle[:first]
    ks, dep_key = by_key[turn[0]], turn[1 % len(turn)]
    entry = next((d for d in ks.depends_on if d.resolve(ks.namespace) == (dep_key.namespace, dep_key.name)),
                 None)
    chain = " -> ".join(key.ref for key in (*turn, turn[0]))
    problems.error(f"Kustomization {ks.key.ref}: dependency cycle {chain}",
                   (entry.origin if entry else None) or ks.origin, code="dependency-cycle",
                   hint="a Kustomization in a cycle never becomes ready; remove one dependsOn")


def _topological(wanted: list[ObjectKey], by_key: dict[ObjectKey, Kustomization],
                 rank: dict[ObjectKey, int]) -> list[ObjectKey]:
    """Kahn's algorithm over an acyclic graph; ties go to the lower rank."""
    members = set(wanted)
    waiting = {key: {d for d in dependencies(by_key[key]) if d in members} for key in wanted}
    dependents: dict[ObjectKey, list[ObjectKey]] = {key: [] for key in wanted}
    for key, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(key)
    ready = [(rank[key], key) for key, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    out: list[ObjectKey] = []
    while ready:
        _, key = heapq.heappop(ready)
        out.append(key)
        for dependent in dependents[key]:
            waiting[dependent].discard(key)
            if not waiting[dependent]:
                heapq.heappush(ready, (rank[dependent], dependent))
    return out
