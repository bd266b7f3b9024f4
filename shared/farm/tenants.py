"""Tenants, their API keys, their webhook signing secrets, and their share and limits. Keys are
shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from shared.infra.models import ApiKey, Tenant, utcnow

KEY_PREFIX = "lyre_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, tenant_name: str, expires_at: datetime | None = None
) -> tuple[Tenant, str]:
    """Create the tenant if needed and a new key for it (valid until ``expires_at``, if
    given); return the key in clear, once."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        tenant = Tenant(name=tenant_name, webhook_secret=new_webhook_secret())
        session.add(tenant)
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(tenant_id=tenant.id, prefix=key[:12], key_hash=hash_key(key), expires_at=expires_at)
    )
    return tenant, key


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def rotate_webhook_secret(session: Session, tenant_id: uuid.UUID) -> str:
    """A new signing secret for the tenant: deliveries sent from now on are signed with it
    (each is signed when it is sent, retries included), the old one verifies none of them."""
    secret = new_webhook_secret()
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(webhook_secret=secret))
    return secret


def valid_key(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """A key that authenticates at ``now`` (a time, or a parameter bound to one): not revoked,
    not expired."""
    return and_(
        ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
    )


def tenant_for_key(session: Session, key: str) -> Tenant | None:
    return session.scalar(
        select(Tenant).join(ApiKey).where(ApiKey.key_hash == hash_key(key), valid_key(utcnow()))
    )


class KeyNotFound(LookupError):
    """No key that still authenticates is shown with this prefix."""


def current_key(session: Session, prefix: str) -> ApiKey:
    """The key that still authenticates and is shown as ``prefix`` (``lyre_`` and 7 more)."""
    found = session.scalars(
        select(ApiKey).where(ApiKey.prefix == prefix, valid_key(utcnow()))
    ).all()
    if len(found) != 1:
        raise KeyNotFound(
            f"no current key is shown as {prefix!r} (lyre keys list shows them)"
            if not found
            else f"{len(found)} current keys are shown as {prefix!r}: revoke by tenant instead"
        )
    return found[0]


def revoke_key(session: Session, prefix: str) -> ApiKey:
    """From now on the key authenticates nothing, and the web sessions opened with it end."""
    key = current_key(session, prefix)
    key.revoked_at = utcnow()
    return key


def rotate_key(session: Session, prefix: str, grace: timedelta) -> tuple[ApiKey, str]:
    """A new key for the same tenant (with the old one's expiry, if it had one); the old one
    keeps working for ``grace`` (revoked now if none), while its users move over."""
    old = current_key(session, prefix)
    tenant = session.get(Tenant, old.tenant_id)
    assert tenant is not None
    _, new = create_key(session, tenant.name, old.expires_at)
    if grace > timedelta(0):
        old.expires_at = min(utcnow() + grace, old.expires_at or datetime.max.replace(tzinfo=UTC))
    else:
        old.revoked_at = utcnow()
    return old, new


class TenantNotFound(LookupError):
    """No tenant has this name."""


# what `lyre tenants set` may change; None puts a limit back to the farm's setting
TENANT_SETTINGS = ("weight", "running_jobs", "chars_per_day", "requests_per_s", "retention_days")


def set_tenant(session: Session, name: str, changes: dict[str, Any]) -> Tenant:
    """Change a tenant's weight or limits (the names in TENANT_SETTINGS)."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise TenantNotFound(f"no tenant is named {name!r}")
    for field, value in changes.items():
        if field not in TENANT_SETTINGS:
            raise ValueError(f"{field} is not a tenant setting")
        setattr(tenant, field, value)
    return tenant
