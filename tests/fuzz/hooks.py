"""Schemathesis hooks of `make fuzz` (tests/fuzz/run.py), loaded by its configuration.

They keep the fuzz's own setup (tests/fuzz/seed.py) usable while the fuzz changes things: a
deletion or a change of a seeded resource goes to a stand-in made for it on the spot, an IP
phone's fetch carries the tenant's current provisioning credentials, each seeded one-time link
is a fresh one, and each Idempotency-Key is used once; half the generated import files get a
header row, so that the import's row rules are reached. And they excuse, by name, the findings
no schema can prevent: refusals that depend on the clock or on what is stored, and an emptied
list that is still there. Everything else a check finds fails the run.
"""

import ipaddress
import itertools
import json
import os
import re
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case

from tests.fuzz.seed import WEBHOOK_URL, Api, basic, link_token, provisioning_authorization

FETCH_FILE = "GET /provision/{tenant_id}/{filename}"
OPEN_LINK = "GET /provision/links/{token}"
ROTATE_CREDENTIALS = "POST /v1/provisioning/credentials"
DISABLE_PROVISIONING = "DELETE /v1/provisioning"
CHANGE_PROVISIONING = "PATCH /v1/provisioning"
IMPORT = "POST /v1/users/import"
REGISTRATIONS = "GET /v1/devices/{device_id}/registrations"
NOTHING = "00000000-0000-0000-0000-000000000000"

# Refusals (`errors[].code`, or the problem's type) of a schema-valid request that depend on
# something other than the request's form: the service's clock, what is stored, or a relation
# between two fields that JSON Schema cannot state.
NOT_IN_THE_SCHEMA = {
    # The service's clock: a report's `at` ahead of it, a contact that already expired, a call
    # outside the months that may still be charged.
    "reported-at-in-future",
    "expires-at-in-past",
    "started-at-in-future",
    "started-at-too-old",
    # A key's expiry that has passed by the time the request arrives.
    "expiry-in-past",
    # Two fields compared: a contact's expiry after the report's `at`; a contact listed twice.
    "expires-at-before-at",
    "duplicate-contact",
    # A password that contains the device's (stored or new) name.
    "password-contains-device-name",
    "password-contains-new-name",
    # An extension that is one of the tenant's emergency numbers.
    "urn:antring:problem:extension-shadows-emergency",
    # A cursor is opaque: only one a page of the same list gave is read, and it replaces the
    # offset, so a request may not carry both.
    "cursor-invalid",
    "offset-with-cursor",
    # A dial rule's shortest length above its longest; a class both added to an agent and
    # taken away.
    "dial-rule-lengths",
    "class-added-and-removed",
}
# The same, for one operation only: elsewhere the document states the rule.
NOT_IN_THE_SCHEMA_OF = {
    # A MAC address or phone model for a device that, as stored, is not an IP phone (a create
    # states the rule in its schema).
    "PATCH /v1/devices/{device_id}": {"ip-phone-only", "kind-change-needs-null"},
    # An import's file: its columns and rows follow the import's rules, which a JSON Schema
    # string cannot state.
    IMPORT: {"urn:antring:problem:import-rejected"},
}


def _seeded(name: str) -> str:
    return os.environ[f"FUZZ_{name.upper()}"]


def _api(*, platform: bool = False) -> Api:
    tenant = None if platform else _seeded("tenant_id")
    return Api(_seeded("base_url"), key=_seeded("api_key"), tenant_id=tenant)


_numbers = itertools.count(1)


def _user() -> str:
    made = _api().call("POST", "/v1/users", {"display_name": "Fuzz stand-in"}, expect=201)
    return str(made["id"])


def _device(kind: str) -> str:
    body: dict[str, Any] = {"name": f"fuzz.standin{next(_numbers)}", "kind": kind}
    if kind == "ip_phone":
        n = next(_numbers)
        body |= {"mac": f"02:00:00:00:{n // 256 % 256:02x}:{n % 256:02x}", "model": "yealink"}
    path = f"/v1/users/{_seeded('user_id')}/devices"
    return str(_api().call("POST", path, body, expect=201)["id"])


def _extension() -> str:
    number = str(7000 + next(_numbers) % 2999)
    path = f"/v1/users/{_seeded('user_id')}/extensions"
    _api().call("POST", path, {"number": number}, expect=201)
    return number


def _webhook() -> str:
    return str(_api().call("POST", "/v1/webhooks", {"url": WEBHOOK_URL}, expect=201)["id"])


def _tenant() -> str:
    n = next(_numbers)
    body = {"name": f"Fuzz stand-in {n}", "sip_domain": f"standin{n}.fuzz.sip.test"}
    return str(_api(platform=True).call("POST", "/v1/tenants", body, expect=201)["id"])


def _key() -> str:
    path = f"/v1/tenants/{_seeded('spare_tenant_id')}/api-keys"
    body = {"name": "fuzz stand-in", "role": "viewer"}
    return str(_api(platform=True).call("POST", path, body, expect=201)["id"])


# What a deletion or change of a seeded resource acts on instead: (operation, path parameter) ->
# for each seeded value, how to make its stand-in. The fuzz's tenant is changed or deleted as the
# spare one: its SIP domain and existence are what every other operation relies on.
STAND_INS: dict[tuple[str, str], dict[str, Callable[[], str]]] = {
    ("DELETE /v1/users/{user_id}", "user_id"): {"user_id": _user},
    # A disabled user's devices fetch no file and open no link.
    ("PATCH /v1/users/{user_id}", "user_id"): {"user_id": _user},
    ("DELETE /v1/devices/{device_id}", "device_id"): {
        "web_device_id": lambda: _device("web"),
        "ip_phone_id": lambda: _device("ip_phone"),
    },
    ("PATCH /v1/devices/{device_id}", "device_id"): {
        "web_device_id": lambda: _device("web"),
        "ip_phone_id": lambda: _device("ip_phone"),
    },
    ("DELETE /v1/users/{user_id}/extensions/{number}", "number"): {"extension": _extension},
    ("DELETE /v1/webhooks/{webhook_id}", "webhook_id"): {"webhook_id": _webhook},
    ("DELETE /v1/tenants/{tenant_id}", "tenant_id"): {
        "tenant_id": _tenant,
        "spare_tenant_id": _tenant,
    },
    ("PATCH /v1/tenants/{tenant_id}", "tenant_id"): {
        "tenant_id": lambda: _seeded("spare_tenant_id")
    },
    ("DELETE /v1/tenants/{tenant_id}/api-keys/{key_id}", "key_id"): {"key_id": _key},
}


class _Provisioning:
    """The tenant's provisioning credentials as the fuzz last made or saw them, and whether the
    networks it last set let 127.0.0.1 fetch."""

    authorization: str | None = os.environ.get("FUZZ_PROVISIONING_AUTHORIZATION")
    open_to_us = True


_keys = itertools.count(1)
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,240}")


@schemathesis.hook
def before_call(context: Any, case: Case, kwargs: dict[str, Any]) -> None:
    label = case.operation.label
    for name, value in case.path_parameters.items():
        if value is None or value == "None":
            # A link followed to a null (a call's device when it had none): it names nothing,
            # so the request is for an id that does not exist, not for the text "None".
            case.path_parameters[name] = NOTHING
    for (operation, parameter), makers in STAND_INS.items():
        if operation != label:
            continue
        for seeded, make in makers.items():
            if case.path_parameters.get(parameter) == _seeded(seeded):
                case.path_parameters[parameter] = make()
                break
    if label == FETCH_FILE and "authorization" not in {h.lower() for h in case.headers}:
        # An IP phone's fetch, with the tenant's current credentials (made again if the fuzz
        # disabled provisioning).
        if _Provisioning.authorization is None:
            _Provisioning.authorization = provisioning_authorization(_api())
        if not _Provisioning.open_to_us:
            _api().call("PATCH", "/v1/provisioning", {"allowed_networks": []}, expect=200)
            _Provisioning.open_to_us = True
        case.headers["Authorization"] = _Provisioning.authorization
    elif label == OPEN_LINK and case.path_parameters.get("token") == _seeded("link_token"):
        # Each link works once: the seeded one stands for a fresh one.
        case.path_parameters["token"] = link_token(_api(), _seeded("web_device_id"))
    if _is_generated_file(case) and sum(map(ord, case.body)) % 2 == 0:
        # Half the generated files are the generated text under a header row (or one line of
        # JSON each), so that the rows' rules are reached as well as the file's.
        case.body = _as_file(case.body, case.media_type)
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and _IDEMPOTENCY_KEY.fullmatch(key):
        # A key names one request: generated ones repeat, for other bodies too.
        case.headers["Idempotency-Key"] = f"{key}-{next(_keys)}"


def _is_generated_file(case: Case) -> bool:
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    return case.operation.label == IMPORT and isinstance(case.body, str) and positive


def _as_file(text: str, media_type: str | None) -> str:
    lines = text.splitlines() or [text]
    if media_type and "csv" in media_type:
        return "display_name\n" + "\n".join(lines) + "\n"
    return "".join(json.dumps({"display_name": line}) + "\n" for line in lines)


@schemathesis.hook
def after_call(context: Any, case: Case, response: Response) -> None:
    label = case.operation.label
    if label == ROTATE_CREDENTIALS and response.status_code == 200:
        body = response.json()
        _Provisioning.authorization = basic(body["username"], body["password"])
    elif label == DISABLE_PROVISIONING and response.status_code == 204:
        _Provisioning.authorization = None
    elif label == CHANGE_PROVISIONING and response.status_code == 200:
        networks = response.json()["allowed_networks"]
        _Provisioning.open_to_us = not networks or any(
            ipaddress.ip_address("127.0.0.1") in ipaddress.ip_network(n) for n in networks
        )


def _not_in_the_schema(response: Response, allowed: set[str]) -> bool:
    """Whether the problem answered is one of `allowed`, or each of its errors is."""
    try:
        problem = json.loads(response.content)
    except ValueError:
        return False
    if not isinstance(problem, dict):
        return False
    if problem.get("type") in allowed:
        return True
    errors = [e for e in problem.get("errors") or [] if isinstance(e, dict)]
    return bool(errors) and all(e.get("code") in allowed for e in errors)


def excused(failure: Failure, case: Case, response: Response) -> bool:
    """Whether a finding is a refusal no schema can state (see the sets above)."""
    status = response.status_code
    label = case.operation.label
    if failure.code == "ST202":  # a schema-valid request refused
        if status == 412:
            return True  # If-Match named another version than the stored one
        if status == 410 and label == OPEN_LINK:
            return True  # a link already opened
        if status == 422:
            allowed = NOT_IN_THE_SCHEMA | NOT_IN_THE_SCHEMA_OF.get(label, set())
            return _not_in_the_schema(response, allowed)
    if failure.code == "ST301" and label == REGISTRATIONS:
        # Ending a device's registrations empties the list, which stays there, empty: it is not
        # a deleted resource that should now be 404.
        return status == 200
    if failure.code == "ST201":  # a request invalid by the document accepted
        # A dry run of an import answers its report, problems listed, whatever the file is.
        if label == IMPORT and status == 200 and case.query.get("dry_run") in (True, "true"):
            return True
        # A stale If-Match: refused for its precondition, which is checked before the body is
        # read; nothing changed.
        return status == 412
    return False


@schemathesis.hook
def filter_failure(context: Any, failure: Failure, case: Case, response: Response) -> bool:
    return not excused(failure, case, response)
