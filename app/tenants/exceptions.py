from app.errors import Conflict, NotFound


class TenantNotFound(NotFound):
    code = "tenant-not-found"
    title = "Tenant not found"


class SipDomainTaken(Conflict):
    code = "sip-domain-taken"
    title = "SIP domain taken"


class EmergencyNumberInUse(Conflict):
    code = "emergency-number-in-use"
    title = "Emergency number in use as an extension"
