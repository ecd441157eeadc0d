from app.errors import AppError, Code, InvalidInput

# A client refused for want of room tries again after this long.
RETRY_SECONDS = 30


class TooManyStreams(AppError):
    status_code = 429
    code = "too-many-streams"

    def __init__(self, rule: Code, *, limit: int) -> None:
        super().__init__(rule, limit=limit, retry_after=RETRY_SECONDS)

    def response_headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(RETRY_SECONDS)}


class LastEventIdForm(InvalidInput):
    def __init__(self) -> None:
        super().__init__("header.Last-Event-ID", Code.last_event_id_form)
