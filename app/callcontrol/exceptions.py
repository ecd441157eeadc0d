from app.errors import NotFound


class SipAccountNotFound(NotFound):
    code = "sip-account-not-found"
    title = "SIP account not found"


class CallerNotFound(NotFound):
    code = "caller-not-found"
    title = "Caller not found"
