from app.errors import NotFound


class ApiKeyNotFound(NotFound):
    code = "api-key-not-found"
    title = "API key not found"
