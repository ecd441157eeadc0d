"""Every event type the service emits, with what it means. Stable: a type once published keeps
its name and its meaning; new fields may appear in `data`, none disappear."""

EVENT_TYPES: dict[str, str] = {
    "tenant.created": "A tenant was created.",
    "tenant.updated": "A tenant's settings changed (`data.changed` names the new values).",
    "tenant.deleted": "A tenant was deleted with everything it had (a platform event).",
    "api_key.created": "An API key was created (its name, role and prefix; never the key).",
    "api_key.revoked": "An API key was revoked.",
    "user.created": "A user (agent) was created.",
    "user.updated": "A user's details or switches changed (`data.changed`).",
    "user.deleted": "A user was deleted with their devices and extensions.",
    "quota.updated": "A user's monthly limit changed.",
    "quota.threshold_reached": "A user's month reached 80 % or 100 % of the limit (each once "
    "a month; `data.percent`).",
    "quota.used_changed": "A user's minutes used this month changed: a call was charged, or "
    "the month closed (`data.period`, `data.used_seconds`, `data.used_minutes`). One event for "
    "the calls of a few seconds.",
    "call.refused_for_quota": "A user's outbound call was first refused this month because "
    "the minutes are used up (once a month).",
    "call.refused": "A user's outbound call was refused (`data.reason`, "
    "`data.destination_class`): one event for an agent's refusals for one reason in ten "
    "minutes.",
    "user.outbound_suspended": "A user made more outbound calls in a minute than the tenant's "
    "velocity limit allows: outbound calls are suspended until an operator lifts it "
    "(`data.calls_in_a_minute`, `data.max_calls_per_minute`).",
    "month.closed": "A tenant's month was closed and its limits kept for the history.",
    "device.created": "A SIP account was created.",
    "device.updated": "A SIP account was renamed, enabled, disabled or changed kind.",
    "device.deleted": "A SIP account was deleted: an edge should drop what it cached.",
    "device.password_rotated": "A SIP account's password changed: an edge should drop what it "
    "cached (the password is not in the event).",
    "device.registered": "A SIP account got its first live registration at an edge: the "
    "device is online (`data.contact_count`, `data.edge`).",
    "device.unregistered": "A SIP account lost its last live registration: the device is "
    "offline (`data.reason`: `reported` by an edge, `expired`, `ended` by an operator, or the "
    "change that ended it, such as `password_rotated`).",
    "device.provisioning_code_created": "A QR code to set up a softphone with a SIP account was "
    "made (`data.app`; a linphone link's `data.expires_at`; never the code).",
    "provisioning.enabled": "A tenant's provisioning credentials were made: its phones can "
    "fetch their files (the user name; never the secret).",
    "provisioning.credentials_rotated": "A tenant's provisioning secret was rotated: phones "
    "with the old one are refused (never the secret).",
    "provisioning.updated": "The networks a tenant's phones may fetch their files from changed.",
    "provisioning.disabled": "A tenant's provisioning credentials were deleted: no phone can "
    "fetch its file.",
    "extension.added": "A user was given an extension.",
    "extension.removed": "An extension was taken from a user.",
    "webhook_endpoint.created": "A webhook endpoint was registered.",
    "webhook_endpoint.updated": "A webhook endpoint changed.",
    "webhook_endpoint.deleted": "A webhook endpoint was deleted.",
    "webhook_endpoint.secret_rotated": "A webhook endpoint's secret was rotated.",
}
