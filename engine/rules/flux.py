"""Flux manifests <-> the rule model: the two public entry points.

`read_flux` turns the Flux documents of a YAML file (GitRepository, Kustomization,
ImageRepository, ImagePolicy, ImageUpdateAutomation at v1, v1beta2 or v1beta1) into model
objects and reports every problem of the file at its field: a wrong type, a missing or unknown
field, a bad duration or enum value. Fields Flux has and gitward does not model are kept
verbatim in the rule's `flux_fields` (a warning where gitward does not act on them).
Other documents are not ours and are skipped. Deprecated forms with a model equivalent are read
into it (`patchesJson6902` becomes a Patch with a target).

`write_flux` prints objects as `flux export` does: the v1 of each group, keys in alphabetical
order (Flux marshals through JSON), Go durations, defaults omitted. gitward's own gates, which
Flux has no field for, travel as `gitward.dev/*` annotations and are read back, and the kept
Flux fields go back where they were read (fluxfields.py), so every model object round-trips.

The work is split by direction: fluxread.py (with a reader per API group: fluxsource.py,
fluxkustomize.py, fluximage.py, on the shared fluxmanifest.py) and fluxwrite.py; the API
groups, versions and annotation keys both sides use are in fluxapi.py.
"""

from engine.rules.fluxread import read_flux
from engine.rules.fluxwrite import flux_expressible, write_flux

__all__ = ["flux_expressible", "read_flux", "write_flux"]
