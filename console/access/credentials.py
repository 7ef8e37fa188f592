"""Who decides from the command line (``python -m console approve`` and ``run --approve``): the
person a credential proves, never a name typed alone where the console acts for real.

- a token (``--token``, read without echo, or ``CONSOLE_CLI_TOKEN``) is checked by the same
  :class:`~console.access.tokens.TokenRegistry` as the HTTP API: the identity and the role are the
  token's (a token that acts for people may name one, with the role the configuration gives them);
- a password (``--password``, read without echo or from standard input) for ``--as NAME`` is checked
  like the sign-in form, with the same attempt limits (:mod:`console.access.attempts`);
- a name alone (``--as NAME``) only where a picked demo identity is allowed
  (:mod:`console.access.signin`): it is a demo identity, and the approval service treats it so.

The approval service checks again whatever it is given (:meth:`ApprovalService.checked_identity`):
an identity no credential proved never decides where demo identity is off.
"""

from __future__ import annotations

from console.access.attempts import password_sign_in
from console.access.auth import Identity, InvalidIdentity, PermissionDenied, Role
from console.access.signin import sign_in, why_live
from console.access.tokens import acting_identity, load_tokens
from console.domain.names import same_person
from console.settings import Settings
from console.storage import Store

CLI_ADDRESS = "local command line"
NEEDS_CREDENTIAL = (
    "deciding from the command line needs a credential here ({why}): give --token (or set "
    "CONSOLE_CLI_TOKEN) with an API token, or --password for --as NAME"
)


def cli_identity(
    store: Store,
    settings: Settings,
    *,
    name: str | None,
    token: str | None = None,
    password: str | None = None,
) -> Identity:
    """The identity a command-line decision acts as (module doc). Raises
    :class:`~console.access.auth.PermissionDenied` or :class:`~console.access.auth.InvalidIdentity`,
    one line each; never says whether a name exists."""
    if token:
        registry = load_tokens(settings)
        if registry.problems:
            raise PermissionDenied(
                "the API token configuration cannot be used, so no token is accepted: " + registry.problems[0]
            )
        found = registry.verify(token.strip())
        if found is None:
            store.audit.record("(unknown token)", "signin.failed", None, {"via": "command line token"})
            raise PermissionDenied("the token is not valid: check --token or CONSOLE_CLI_TOKEN")
        actor = name if name and not same_person(name, found.identity.name) else None
        return acting_identity(found, actor, settings)
    if password is not None:
        if not name:
            raise InvalidIdentity("--password needs --as NAME: the person whose password it is")
        return password_sign_in(store, settings, name, password, address=CLI_ADDRESS, via="command line")
    policy = sign_in(settings)
    if not policy.demo_allowed:
        raise PermissionDenied(NEEDS_CREDENTIAL.format(why=policy.error_line() or why_live(policy.live)))
    if not name:
        raise InvalidIdentity("--as NAME: who decides")
    # validated (and a refusal audited) by the approval service, like every identity it is given
    return Identity(name, Role.APPROVER, source="demo")


__all__ = ["CLI_ADDRESS", "cli_identity"]
