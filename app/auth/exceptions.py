from app.errors import Code, NotFound


class ApiKeyNotFound(NotFound):
    code = "api-key-not-found"
    default_rule = Code.api_key_not_found
