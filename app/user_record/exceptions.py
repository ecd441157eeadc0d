from app.errors import Conflict, NotFound


class UserNotFound(NotFound):
    code = "user-not-found"
    title = "User not found"


class ExternalRefTaken(Conflict):
    code = "external-ref-taken"
    title = "External reference taken"
