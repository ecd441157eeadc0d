from app.errors import Code, Conflict, NotFound


class UserNotFound(NotFound):
    code = "user-not-found"
    default_rule = Code.user_not_found


class ExternalRefTaken(Conflict):
    code = "external-ref-taken"
    default_rule = Code.external_ref_taken
