"""The parts of Flux's API that gitward reads and writes: groups, versions, its own annotations.

Shared by the reader (fluxread.py and the per-group readers) and the writer (fluxwrite.py).
gitward's gates that Flux has no field for travel as `gitward.dev/*` annotations.
"""

SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
IMAGE_GROUP = "image.toolkit.fluxcd.io"
VERSIONS = ("v1", "v1beta2", "v1beta1")
"""API versions read, newest first; the writer uses v1."""

PAGE_SIZE_ANNOTATION = "gitward.dev/page-size"
HOLD_ANNOTATION = "gitward.dev/hold"
NEVER_DOWNGRADE_ANNOTATION = "gitward.dev/never-downgrade"
PIN_ANNOTATION = "gitward.dev/pin"
GITWARD_PREFIX = "gitward.dev/"
