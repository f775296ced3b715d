"""Who a key speaks for, and what they may do: the roles and permissions every route checks.

A request's key becomes a ``Principal``. Two kinds of key exist:

- **Organisation keys**: the bootstrap admin key (``SWITCHYARD_ADMIN_KEY``, compared by digest
  in constant time, acting as the organisation's owner) and admin API keys. An admin API key
  acts with its owner's organisation roles and project roles; one without an owner acts as the
  organisation's owner. Their tenant is ``admin``.
- **Project keys**, held by a service account of the project (with the account's role) or by a
  person in it (with their role in that project). Their tenant is the project: they see and
  spend in that project only, whatever else their holder may do elsewhere.

Roles are fixed sets of permissions (``ROLES``), named in OpenAI's style. An organisation role
applies to every project; a project role to its project. The check is always
``principal.can(permission, project_id)``, so no route decides on a role by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.governance import AdminKeyRecord, ModelAccess
from services.common.admin_key import digest_matches, key_digest
from services.common.governance import GovernanceView

ADMIN = "admin"


class Permission(StrEnum):
    ORG_READ = "api.organization.read"  # list projects and people
    ORG_WRITE = "api.organization.write"  # create projects, people, admin keys; assign roles
    PROJECT_READ = "api.projects.read"  # a project, its keys, limits and settings
    PROJECT_WRITE = "api.projects.write"  # a project's keys, members and spend alerts
    # What a project may use and keep: its model permissions, rate limits, spend limit and data
    # retention. The organisation's, not the project's: a project owner must not lift them.
    POLICY_WRITE = "api.policies.write"
    MODEL_REQUEST = "api.model.request"  # call models
    USAGE_READ = "api.usage.read"  # usage and cost
    AUDIT_READ = "api.audit_logs.read"
    CREDIT_READ = "api.credit.read"
    CREDIT_WRITE = "api.credit.write"  # top up prepaid credit


class Scope(StrEnum):
    ORGANIZATION = "api.organization"
    PROJECT = "api.project"


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    scope: Scope
    description: str
    permissions: frozenset[Permission]


_P = Permission
_PROJECT_OWNER = frozenset(
    {_P.PROJECT_READ, _P.PROJECT_WRITE, _P.MODEL_REQUEST, _P.USAGE_READ, _P.AUDIT_READ}
    | {_P.CREDIT_READ}
)
_ROLE_LIST = (
    Role(
        "role_org_owner",
        "owner",
        Scope.ORGANIZATION,
        "The organization's owner: everything.",
        frozenset(Permission),
    ),
    Role(
        "role_org_reader",
        "reader",
        Scope.ORGANIZATION,
        "Reads projects and people.",
        frozenset({_P.ORG_READ, _P.PROJECT_READ}),
    ),
    Role(
        "role_org_analyst",
        "analyst",
        Scope.ORGANIZATION,
        "Reads usage, cost and credit of every project.",
        frozenset({_P.ORG_READ, _P.PROJECT_READ, _P.USAGE_READ, _P.CREDIT_READ}),
    ),
    Role(
        "role_org_auditor",
        "auditor",
        Scope.ORGANIZATION,
        "Reads the audit log of the whole organization.",
        frozenset({_P.ORG_READ, _P.PROJECT_READ, _P.AUDIT_READ}),
    ),
    Role(
        "role_project_owner",
        "owner",
        Scope.PROJECT,
        "Manages the project's keys, members and alerts; reads its usage and audit log.",
        _PROJECT_OWNER,
    ),
    Role(
        "role_project_member",
        "member",
        Scope.PROJECT,
        "Calls models in the project.",
        frozenset({_P.PROJECT_READ, _P.MODEL_REQUEST}),
    ),
    Role(
        "role_project_analyst",
        "analyst",
        Scope.PROJECT,
        "Reads the project's usage, cost and credit.",
        frozenset({_P.PROJECT_READ, _P.USAGE_READ, _P.CREDIT_READ}),
    ),
    Role(
        "role_project_auditor",
        "auditor",
        Scope.PROJECT,
        "Reads the project's audit log.",
        frozenset({_P.PROJECT_READ, _P.AUDIT_READ}),
    ),
)
ROLES: Mapping[str, Role] = {role.id: role for role in _ROLE_LIST}


def role_named(scope: Scope, name: str) -> Role | None:
    return next((r for r in _ROLE_LIST if r.scope is scope and r.name == name), None)


def _permissions(scope: Scope, names: object) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for name in names if isinstance(names, list | tuple | frozenset | set) else [names]:
        role = role_named(scope, str(name))
        if role is not None:
            granted |= role.permissions
    return frozenset(granted)


class KeyKind(StrEnum):
    BOOTSTRAP = "admin"  # SWITCHYARD_ADMIN_KEY
    ADMIN_KEY = "admin_api_key"
    SERVICE_ACCOUNT = "service_account"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str  # the project a project key belongs to; "admin" for organisation keys
    kind: KeyKind = KeyKind.BOOTSTRAP
    user_id: str | None = None
    service_account_id: str | None = None
    org_permissions: frozenset[Permission] = frozenset(Permission)
    project_permissions: Mapping[str, frozenset[Permission]] = field(default_factory=dict)
    # The project's model permissions, as they stood when the key was checked; None: any model.
    model_access: ModelAccess | None = None
    # When this key stops working; a key it makes must stop no later (epoch seconds).
    expires_at: int | None = None

    @property
    def is_admin(self) -> bool:
        """The organisation's owner."""
        return Permission.ORG_WRITE in self.org_permissions

    @property
    def project_id(self) -> str | None:
        """The project a project key is bound to; None for organisation keys."""
        return None if self.tenant == ADMIN else self.tenant

    def can(self, permission: Permission, project_id: str | None = None) -> bool:
        if permission in self.org_permissions:
            return True
        if project_id is None:
            return False
        return permission in self.project_permissions.get(project_id, frozenset())

    def projects_with(self, permission: Permission) -> frozenset[str] | None:
        """The projects where this key holds ``permission``; None: every project."""
        if permission in self.org_permissions:
            return None
        return frozenset(p for p, held in self.project_permissions.items() if permission in held)


class KeyRing:
    def __init__(self, admin_key: str | None, governance: GovernanceView | None = None) -> None:
        self._admin = key_digest(admin_key) if admin_key else None
        self.governance = governance or GovernanceView()

    def authenticate(self, key: str | None) -> Principal | None:
        if key is None:
            return None
        if digest_matches(key, self._admin):
            return Principal(key_id=ADMIN, tenant=ADMIN)
        view = self.governance
        found = view.key_for(key)
        if found is None:
            return None
        if isinstance(found, AdminKeyRecord):
            if found.user_id is None:
                return Principal(
                    key_id=found.id,
                    tenant=ADMIN,
                    kind=KeyKind.ADMIN_KEY,
                    expires_at=found.expires_at,
                )
            user = view.users[found.user_id]
            return Principal(
                key_id=found.id,
                tenant=ADMIN,
                kind=KeyKind.ADMIN_KEY,
                user_id=user.id,
                expires_at=found.expires_at,
                org_permissions=_permissions(Scope.ORGANIZATION, user.roles),
                project_permissions={
                    project: _permissions(Scope.PROJECT, role)
                    for project, role in view.roles_in_projects(user.id).items()
                },
            )
        project = found.project_id
        role: str
        if found.service_account_id is not None:
            account = view.service_accounts[found.service_account_id]
            kind, role = KeyKind.SERVICE_ACCOUNT, account.role
        else:
            assert found.user_id is not None  # key_for checked the holder is in the project
            kind, role = KeyKind.USER, view.project_role(project, found.user_id) or ""
        return Principal(
            key_id=found.id,
            tenant=project,
            kind=kind,
            user_id=found.user_id,
            service_account_id=found.service_account_id,
            org_permissions=frozenset(),
            project_permissions={project: _permissions(Scope.PROJECT, role)},
            model_access=view.model_access(project),
            expires_at=found.expires_at,
        )
