"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers a delivery
carries, signed with the tenant's ``whsec_`` secret."""

from __future__ import annotations

from datetime import datetime


def sign_headers(secret: str, delivery_id: str, body: str) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    now = datetime.now().astimezone()
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery_id, now, body),
        "content-type": "application/json",
    }
