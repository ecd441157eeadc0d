"""Standard Webhooks v1 signatures (the `standardwebhooks` package): `webhook-id`,
`webhook-timestamp` and `webhook-signature`, an HMAC-SHA256 of `id.timestamp.body` by each
valid secret."""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def headers(
    *, message_id: str, sent_at: datetime, body: str, secrets_: list[str]
) -> dict[str, str]:
    signatures = " ".join(Webhook(secret).sign(message_id, sent_at, body) for secret in secrets_)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
