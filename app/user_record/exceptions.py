from app.errors import Code, Conflict, NotFound


class UserNotFound(NotFound):
    code = "user-not-found"
    default_rule = Code.user_not_found


class ExternalRefTaken(Conflict):
    code = "external-ref-taken"
    default_rule = Code.external_ref_taken


class UserNameTaken(Conflict):
    """A SCIM directory's userName that another agent of the tenant has."""

    code = "user-name-taken"
    default_rule = Code.user_name_taken
