"""What the fuzz acts on, made through the API before schemathesis runs: a user with an
extension, a web device and an IP phone, provisioning credentials, a webhook with a delivery, an
import job and an API key. The operations that take their ids then reach their rules instead of
answering 404 to made-up ones."""

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

SIP_DOMAIN = "fuzz.sip.test"
SPARE_SIP_DOMAIN = "spare.fuzz.sip.test"
EXTENSION = "101"
IP_PHONE_MAC = "00:15:65:aa:bb:cc"
# Nothing listens there: deliveries fail, and are kept, as they would for a receiver that is down.
WEBHOOK_URL = "http://127.0.0.1:9/fuzz-events"


class Api:
    """Requests to the service under test, as a platform key acting on one tenant."""

    def __init__(self, base_url: str, *, key: str, tenant_id: str | None = None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {key}"}
        if tenant_id is not None:
            self.headers["X-Tenant-ID"] = tenant_id

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: int,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = dict(self.headers)
        if body is not None:
            content = json.dumps(body).encode()
        if content is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            self.base_url + path, data=content, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} (expected {expect}): {raw[:500]!r}")
        return json.loads(raw) if raw else None


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    spare_tenant_id: str
    user_id: str
    extension: str
    web_device_id: str
    web_device_name: str
    ip_phone_id: str
    provisioning_file: str
    provisioning_authorization: str
    link_token: str
    webhook_id: str
    delivery_id: str
    job_id: str
    key_id: str

    def environment(self) -> dict[str, str]:
        """The ids as the fuzz's hooks read them (FUZZ_<NAME>)."""
        return {f"FUZZ_{name.upper()}": value for name, value in asdict(self).items()}


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def link_token(api: Api, device_id: str) -> str:
    """A new one-time provisioning link of the device (each works once)."""
    code = api.call(
        "POST", f"/v1/devices/{device_id}/provisioning-links", {"app": "linphone"}, expect=201
    )
    return str(code["payload"]).rsplit("/", 1)[1]


def provisioning_authorization(api: Api) -> str:
    """New provisioning credentials of the tenant, as an IP phone sends them."""
    rotated = api.call("POST", "/v1/provisioning/credentials", expect=200)
    return basic(rotated["username"], rotated["password"])


def seed(base_url: str, *, key: str, tenant_id: str) -> Seeded:
    platform = Api(base_url, key=key)
    spare = platform.call(
        "POST", "/v1/tenants", {"name": "Fuzz spare", "sip_domain": SPARE_SIP_DOMAIN}, expect=201
    )
    api = Api(base_url, key=key, tenant_id=tenant_id)
    # Before the user: its creation is an event the webhook gets a delivery of.
    webhook = api.call("POST", "/v1/webhooks", {"url": WEBHOOK_URL}, expect=201)
    user = api.call(
        "POST", "/v1/users", {"display_name": "Fuzz Agent", "email": "agent@fuzz.test"}, expect=201
    )
    api.call("POST", f"/v1/users/{user['id']}/extensions", {"number": EXTENSION}, expect=201)
    web_device = user["devices"][0]
    phone = api.call(
        "POST",
        f"/v1/users/{user['id']}/devices",
        {"name": "fuzz.desk", "kind": "ip_phone", "mac": IP_PHONE_MAC, "model": "yealink"},
        expect=201,
    )
    provisioning = api.call("GET", f"/v1/devices/{phone['id']}/provisioning", expect=200)
    key_made = platform.call(
        "POST",
        f"/v1/tenants/{spare['id']}/api-keys",
        {"name": "fuzz viewer", "role": "viewer"},
        expect=201,
    )
    # Two rows: a job, with ANTRING_IMPORT_SYNC_MAX_ROWS=1.
    job = api.call(
        "POST",
        "/v1/users/import",
        content=b"display_name\nImported One\nImported Two\n",
        content_type="text/csv",
        expect=202,
    )
    return Seeded(
        tenant_id=tenant_id,
        spare_tenant_id=spare["id"],
        user_id=user["id"],
        extension=EXTENSION,
        web_device_id=web_device["id"],
        web_device_name=web_device["name"],
        ip_phone_id=phone["id"],
        provisioning_file=str(provisioning["file_url"]).rsplit("/", 1)[1],
        provisioning_authorization=provisioning_authorization(api),
        link_token=link_token(api, web_device["id"]),
        webhook_id=webhook["id"],
        delivery_id=_first_delivery(api, webhook["id"]),
        job_id=job["id"],
        key_id=key_made["id"],
    )


def _first_delivery(api: Api, webhook_id: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = api.call("GET", f"/v1/webhooks/{webhook_id}/deliveries", expect=200)
        if page["items"]:
            return str(page["items"][0]["id"])
        time.sleep(0.2)
    raise RuntimeError(f"no delivery for webhook {webhook_id} in {timeout:.0f} s")
