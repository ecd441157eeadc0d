from app.errors import Code, Conflict, NotFound


class TenantNotFound(NotFound):
    code = "tenant-not-found"
    default_rule = Code.tenant_not_found


class SipDomainTaken(Conflict):
    code = "sip-domain-taken"
    default_rule = Code.sip_domain_taken


class EmergencyNumberInUse(Conflict):
    code = "emergency-number-in-use"
    default_rule = Code.emergency_number_in_use
