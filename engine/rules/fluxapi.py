"""The parts of Flux's API that gitward reads and writes: groups, versions, its own annotations.

Shared by the reader (fluxread.py and the per-group readers) and the writer (fluxwrite.py).
gitward's gates that Flux has no field for travel as `gitward.dev/*` annotations.
"""

SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
IMAGE_GROUP = "image.toolkit.fluxcd.io"
FLUX_GROUP_SUFFIX = ".fluxcd.io"
"""Every Flux API group ends so (toolkit controllers, source extensions, the Flux operator)."""
VERSIONS = ("v1", "v1beta2", "v1beta1")
"""API versions read, newest first; the writer uses v1."""

PAGE_SIZE_ANNOTATION = "gitward.dev/page-size"
HOLD_ANNOTATION = "gitward.dev/hold"
NEVER_DOWNGRADE_ANNOTATION = "gitward.dev/never-downgrade"
PIN_ANNOTATION = "gitward.dev/pin"
ALLOW_ROLLBACK_ANNOTATION = "gitward.dev/allow-rollback"
GITWARD_PREFIX = "gitward.dev/"

NOT_KEPT = "not-kept"
"""The code of a warning about a value gitward cannot carry: read as absent (SOPS ciphertext)
or never read (status, fields the API server sets). `gitward convert` exits 1 on one."""

IGNORED_FIELD = "ignored-field"
"""The code of a warning about a field gitward reads and does not act on (the message says what
it does instead). A reader keeps such warnings on the object (`ignored`), so that `plan` prints
them and `gitward run` records them as the object's events, not only `check`."""

NOT_RECONCILED: dict[str, tuple[str, ...]] = {
    SOURCE_GROUP: ("HelmRepository", "HelmChart", "Bucket", "OCIRepository", "ExternalArtifact"),
    "source.extensions.fluxcd.io": ("ArtifactGenerator",),
    "helm.toolkit.fluxcd.io": ("HelmRelease",),
    "notification.toolkit.fluxcd.io": ("Alert", "Provider", "Receiver"),
    KUSTOMIZE_GROUP: (),
    IMAGE_GROUP: (),
}
"""Flux kinds gitward reads as objects it does not reconcile, by group. A kind of these groups
not listed here (nor read by gitward) is a typo or a newer kind: a warning, then the same.
Groups not listed (the Flux operator's, future ones) are read as such objects without a word."""
