"""Who may do what: the permission matrix (role x action x record type) as data, and `authorize`, its one check.

Each cell is a scope. `none`: the role may never do it (403). `visible`: on any record the caller can see (which
records those are is visibility.py's rule, applied before). `tenant`: on records of the caller's own tenant.
`own`: on records of its own tenant that this very key created. A record of another tenant that a scope does
not reach reads as not found (404), so that a write never reveals that it exists; a record of its own tenant
that the role may not touch is refused (403) with a detail that says why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from matcher.errors import Forbidden, NotFound

ROLES: tuple[str, ...] = ("admin", "officer", "platform")
# the roles a person's account (matcher/accounts) may have; platforms are machines and use API keys only
PERSON_ROLES: tuple[str, ...] = ("admin", "officer")

Scope = Literal["none", "visible", "tenant", "own"]


class Principal(Protocol):
    """Who is asking (store.keys.Caller): a tenant, a role, and the key that made the request, if any."""

    @property
    def tenant(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def key_id(self) -> int | None: ...


@dataclass(frozen=True)
class Grant:
    """The scope each role has for one action on one record type."""

    admin: Scope
    officer: Scope
    platform: Scope

    def scope(self, role: str) -> Scope:
        return getattr(self, role) if role in ROLES else "none"


_READ = Grant("visible", "visible", "visible")
_PARK = Grant("tenant", "tenant", "none")  # the park's staff: its admins and technology-transfer officers
_PLATFORM_OWN = Grant("tenant", "tenant", "own")  # and a platform on the records its key created
_ADMIN = Grant("tenant", "none", "none")


def _crud(write: Grant) -> dict[str, Grant]:
    return {"read": _READ, "create": write, "update": write, "delete": write}


# record type -> action -> grant; the README's "Roles and permissions" table is rendered from this
MATRIX: dict[str, dict[str, Grant]] = {
    "enterprise": _crud(_PARK),
    "need": _crud(_PLATFORM_OWN),
    "result": _crud(_PARK),
    "scenario": _crud(_PLATFORM_OWN),
    "fund": _crud(_PARK),
    "incubator": _crud(_PARK),
    "import": {"create": _PARK},
    "feedback": {"read": _READ, "create": Grant("tenant", "tenant", "tenant")},
    # an enterprise's pinned and blocked resources and the notes on them, kept by the park's staff
    "curation": {"read": _PARK, "update": _PARK},
    "digest": {"run": _PARK, "preview": _PARK},
    # lifting an unsubscribe: the recipient (by the signed link) or an admin, never an officer's PUT
    "subscription": {"read": _PARK, "update": _PARK, "resubscribe": _ADMIN},
    "webhook": {"read": _PARK, "create": _PARK, "delete": _PARK},
    "key": {"read": _ADMIN, "create": _ADMIN, "delete": _ADMIN},
    "user": {"read": _ADMIN, "create": _ADMIN, "update": _ADMIN},
    "model": {"read": _PARK, "activate": _ADMIN, "rollback": _ADMIN, "trial": _ADMIN},
    "stats": {"read": _PARK},
    "audit": {"read": _ADMIN},
    # what a park office runs: docking events, industry-chain maps, the cultivation pipeline, relay incubation
    "event": {"read": _PARK, "create": _PARK, "update": _PARK, "delete": _PARK},
    "chain": {"read": _PARK, "create": _PARK, "update": _PARK, "delete": _PARK},
    "cultivation": {"read": _PARK, "update": _PARK},
    "graduation": {"read": _PARK, "create": _PARK, "delete": _PARK},
}


def _allowed_roles(grant: Grant) -> str:
    return ", ".join(role for role in ROLES if grant.scope(role) != "none") or "none"


def authorize(
    caller: Principal,
    action: str,
    record_type: str,
    *,
    owner_tenant: str | None,
    created_by: int | None = None,
    record: str | None = None,
) -> None:
    """Raise Forbidden or NotFound unless the caller may do `action` on a `record_type` owned by `owner_tenant`.

    `owner_tenant` None asks before any record is read whether the role may do this at all; for a create it is
    the caller's own tenant. `record` names the record in a not-found message ('resource with id 12')."""
    grant = MATRIX[record_type][action]
    scope = grant.scope(caller.role)
    if scope == "none":
        raise Forbidden(
            f"the {caller.role} role may not {action} {record_type} records (allowed: {_allowed_roles(grant)})"
        )
    if owner_tenant is None or scope == "visible":
        return
    if owner_tenant != caller.tenant:
        raise NotFound(f"no {record}" if record else f"no such {record_type}")
    if scope == "own" and (created_by is None or created_by != caller.key_id):
        raise Forbidden(
            f"a {caller.role} key may {action} only the {record_type} records it created itself, "
            f"and this one it did not create"
        )


# ---------------------------------------------------------------- the matrix as a README table

_CELLS: dict[Scope, str] = {
    "none": "—",
    "visible": "visible",
    "tenant": "own tenant",
    "own": "created by the key",
}


def matrix_markdown() -> str:
    """The matrix as a Markdown table, one row per record type and action."""
    lines = [
        "| record | action | " + " | ".join(ROLES) + " |",
        "|---|---|" + "---|" * len(ROLES),
    ]
    for record_type, actions in MATRIX.items():
        for action, grant in actions.items():
            cells = " | ".join(_CELLS[grant.scope(role)] for role in ROLES)
            lines.append(f"| {record_type} | {action} | {cells} |")
    return "\n".join(lines) + "\n"
