"""Settings for a test app: a fixed secret key, no bootstrap, no scheduler, no key cache."""

from typing import Any

from app.settings import Settings

TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": TEST_SECRET_KEY,
        "bootstrap": False,
        "scheduler_enabled": False,
        # Tests drive the delivery worker themselves, and receive on 127.0.0.1.
        "webhooks_enabled": False,
        "webhooks_allow_private_urls": True,
        "api_key_cache_seconds": 0,
        # Tests fail authentications on purpose, all from one address.
        "auth_failure_limit": "100000/minute",
        "sip_proxy_host": "sip.test.example",
        "sip_websocket_url": "wss://sip.test.example:7443/ws",
    }
    values.update(overrides)
    return Settings(**values)
