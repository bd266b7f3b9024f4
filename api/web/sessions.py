"""The web page's sign-in: an API key exchanged for a server-side session.

The browser holds only a random token, in an httpOnly, SameSite=Strict cookie; the row keeps its
SHA-256, the tenant, the key it was opened with (a key revoked or expired ends it) and the CSRF
token that every form of the session carries. The key itself is read once, from the sign-in
form, and is never written into a page or a cookie.

The sign-in form has no session yet: it carries a token that must equal a cookie of its own
(double submit), so that another site cannot sign a browser in to the attacker's tenant.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy import delete, select

from shared.farm.context import FarmContext
from shared.farm.tenants import hash_key, valid_key
from shared.infra.models import ApiKey, Tenant, WebSession, utcnow

SESSION_COOKIE = "lyre_session"
SIGN_IN_COOKIE = "lyre_sign_in"  # the sign-in form's CSRF token


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: whose it is and the token its forms must carry."""

    tenant: Tenant
    csrf: str


def open_session(farm: FarmContext, key: str) -> str | None:
    """A new session's token for a valid key; None for a key that is not one. Sessions that
    have expired are cleared on the way."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    with farm.sessions() as session:
        found = session.execute(
            select(ApiKey.id, ApiKey.tenant_id).where(
                ApiKey.key_hash == hash_key(key), valid_key(now)
            )
        ).first()
        if found is None:
            return None
        session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.add(
            WebSession(
                token_hash=hash_key(token),
                tenant_id=found.tenant_id,
                key_id=found.id,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(hours=farm.settings.web.session_hours),
            )
        )
    return token


def signed_in(farm: FarmContext, request: Request) -> Signed | None:
    """The browser's session, if its cookie names one that is current and its key valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with farm.sessions() as session:
        row = session.execute(
            select(Tenant, WebSession.csrf)
            .join(WebSession, WebSession.tenant_id == Tenant.id)
            .join(ApiKey, ApiKey.id == WebSession.key_id)
            .where(
                WebSession.token_hash == hash_key(token),
                WebSession.expires_at > utcnow(),
                valid_key(utcnow()),
            )
        ).first()
    return Signed(row[0], row[1]) if row else None


def close_session(farm: FarmContext, request: Request) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with farm.sessions() as session:
            session.execute(delete(WebSession).where(WebSession.token_hash == hash_key(token)))


def same_token(sent: object, expected: str | None) -> bool:
    """A form's CSRF token against the one expected, in constant time."""
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent, expected or "")


def set_cookie(
    response: Response, name: str, value: str, farm: FarmContext, max_age_s: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=farm.settings.web.secure_cookies,
    )


def session_cookie(response: Response, token: str, farm: FarmContext) -> None:
    set_cookie(response, SESSION_COOKIE, token, farm, int(farm.settings.web.session_hours * 3600))
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
