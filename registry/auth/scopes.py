"""Roles and scopes: what each kind of caller may do. Plain data, checked by ``principals.require``."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    issuer = "issuer"
    partner = "partner"
    holder = "holder"  # only ever from a holder session, never an API client


class Scope(StrEnum):
    catalogue_write = "catalogue:write"
    issuers_write = "issuers:write"
    clients_write = "clients:write"
    certificates_issue = "certificates:issue"
    certificates_revoke = "certificates:revoke"
    certificates_read = "certificates:read"
    recognition_read = "recognition:read"
    recognition_write = "recognition:write"
    audit_read = "audit:read"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.admin: frozenset(
        {
            Scope.catalogue_write,
            Scope.issuers_write,
            Scope.clients_write,
            Scope.certificates_read,
            Scope.certificates_revoke,
            Scope.recognition_read,
            Scope.recognition_write,
            Scope.audit_read,
        }
    ),
    Role.issuer: frozenset({Scope.certificates_issue, Scope.certificates_revoke, Scope.certificates_read}),
    Role.partner: frozenset({Scope.recognition_read}),
    Role.holder: frozenset(),
}
