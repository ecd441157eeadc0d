from app.errors import NotFound


class CallerNotFound(NotFound):
    code = "caller-not-found"
    title = "Caller not found"
