"""How one commit action is made and pushed, as its automations and its source say.

A commit action gathers the changes of every automation that pushes to the same (source, push
branch). What Flux reads per automation, gitward reads for the action: the signing key
(`spec.git.commit.signingKey`), the push options and the extra refspec (`spec.git.push`), which
must then agree between those automations; and the proxy of the GitRepository
(`spec.proxySecretRef`), which Flux's automation takes from its source.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from engine.act.signing import SigningKey
from engine.errors import GitwardError
from engine.model import CommitAction, GitSource, RuleSet
from engine.observe.git import git_proxy
from engine.observe.transport import SecretReader
from engine.reconcile.transport import git_transport, signing_key

H = TypeVar("H", bound=Hashable)


class PushSettingsError(GitwardError):
    """The automations of one commit disagree on how it is signed or pushed."""


@dataclass(frozen=True)
class PushSettings:
    """The signing key, push options, extra refspec and proxy URL (credentials included) of
    one commit action; none is shown by `repr`."""

    signing: SigningKey | None = None
    push_options: tuple[tuple[str, str], ...] = ()
    refspec: str = ""
    proxy: str | None = field(default=None, repr=False)


def push_settings(rules: RuleSet, action: CommitAction,
                  read_secret: SecretReader | None) -> PushSettings:
    """What the action's automations and source ask of its commit and push; the Secrets they
    name are read from the cluster (`read_secret`)."""
    automations = [u for u in rules.image_updates if u.key.ref in action.automations]

    def agreed(name: str, values: Sequence[H], default: H) -> H:
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            raise PushSettingsError(
                f"ImageUpdateAutomations {', '.join(action.automations)} share the commit to "
                f"{action.target} but set {name} differently: give them the same {name}")
        return distinct[0] if distinct else default

    signer = agreed("spec.git.commit.signingKey",
                    [(u.namespace, u.signing_key_secret) for u in automations], ("", ""))
    key = next((signing_key(u, read_secret) for u in automations
                if (u.namespace, u.signing_key_secret) == signer and signer[1]), None)
    options = agreed("spec.git.push.options", [u.push_options for u in automations], ())
    refspec = agreed("spec.git.push.refspec", [u.push_refspec for u in automations], "")
    source = rules.get(action.source)
    proxy = git_transport(source, read_secret).proxy if isinstance(source, GitSource) else None
    url = git_proxy(proxy, urlsplit(action.url).scheme) if proxy is not None else None
    return PushSettings(key, options, refspec, url)


LOCAL_ONLY = "`gitward reconcile image update`, `apply` and `run` do (on a clone of the source)"


def not_done_locally(rules: RuleSet, action: CommitAction) -> list[str]:
    """What the action's automations ask that `images update` does not do in the user's
    checkout (it commits with GitPython and pushes the user's way), each said as a warning."""
    said = []
    for update in (u for u in rules.image_updates if u.key.ref in action.automations):
        asked = [name for name, value in (
            ("spec.git.commit.signingKey (the commit is not signed)", update.signing_key_secret),
            ("spec.git.push.options (none are sent)", update.push_options),
            ("spec.git.push.refspec (only the branch is pushed)", update.push_refspec)) if value]
        said += [f"ImageUpdateAutomation {update.key.ref}: images update does not use {what}: "
                 f"{LOCAL_ONLY}" for what in asked]
    return said
