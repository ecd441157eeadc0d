from app.errors import Code, NotFound


class CallerNotFound(NotFound):
    code = "caller-not-found"
    default_rule = Code.caller_not_found
