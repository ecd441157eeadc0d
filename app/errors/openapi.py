"""What the OpenAPI document says of errors: a route's own (`responses(...)`), those any route
may answer, problem+json as their body, and the links between operations."""

from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field, create_model

from app.errors.catalogue import DEFAULT_LANGUAGE, LANGUAGES, title
from app.errors.codes import Code
from app.errors.types import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    FieldError,
    PreconditionFailed,
    Problem,
    problem_types,
)


@dataclass(frozen=True)
class ResponseHeaders:
    """Headers a route's answer with this status carries, for the OpenAPI document."""

    status: int
    headers: dict[str, str]


# A 201 says where the new resource is; a versioned resource's answer carries its ETag.
CREATED = ResponseHeaders(201, {"Location": "Where the new resource can be read."})
VERSIONED = ResponseHeaders(
    200, {"ETag": "The resource's version: send it as If-Match with a change."}
)
# A read that answers If-None-Match: the tag of what it shows, and 304 while that is unchanged.
_READ_TAG = (
    "The tag of what is shown: send it as If-None-Match to get 304 while nothing shown "
    'changed; a versioned resource\'s tag (`"3.<digest>"`) may be sent as If-Match, which '
    "compares its version."
)
READ_TAGGED = ResponseHeaders(200, {"ETag": _READ_TAG})
NOT_MODIFIED = ResponseHeaders(304, {"ETag": _READ_TAG})
CREATED_VERSIONED = ResponseHeaders(
    201,
    {
        "Location": "Where the new resource can be read.",
        "ETag": "The new resource's version: send it as If-Match with a change.",
    },
)


@dataclass(frozen=True)
class Stale:
    """A change sent with a stale If-Match: 412, with the ETag now and the resource as it is
    now (`current`, of this schema)."""

    shown: type[BaseModel]


@cache
def _stale_problem(shown: type[BaseModel]) -> type[Problem]:
    model: type[Problem] = create_model(
        f"PreconditionFailed{shown.__name__}",
        __base__=Problem,
        current=(
            shown,
            Field(description="The resource as it is now; its ETag is in the ETag header."),
        ),
    )
    return model


def responses(
    *items: type[AppError] | ResponseHeaders | Stale,
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, from the errors it can raise and the headers it sends."""
    out: dict[int | str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, Stale):
            out[PreconditionFailed.status_code] = {
                "model": _stale_problem(item.shown),
                "description": title(PreconditionFailed.code, DEFAULT_LANGUAGE),
                "headers": {
                    "ETag": {
                        "description": "The resource's version now.",
                        "schema": {"type": "string"},
                    }
                },
            }
            continue
        if isinstance(item, ResponseHeaders):
            entry = out.setdefault(item.status, {})
            entry["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in item.headers.items()
            }
            continue
        entry = out.setdefault(item.status_code, {"model": Problem, "description": ""})
        item_title = title(item.code, DEFAULT_LANGUAGE)
        entry["description"] = "; ".join(filter(None, [entry["description"], item_title]))
    return out


# What any route may answer besides its own errors, and when.
_EVERY_ROUTE = {"431": "Request header fields too large"}
_WITH_A_KEY = {
    "401": "Unauthorized",
    "429": "Too many failed authentications from this address; see Retry-After",
    "503": "The database cannot be reached or did not answer in time; retry after Retry-After",
}
_WITH_A_BODY = {
    "413": "Request body too large",
    "415": "The body is not declared JSON",
    "422": "Invalid input: `errors` names each bad field",
}


def _without_null(schema: dict[str, Any]) -> None:
    """A parameter is either sent as text or not sent: FastAPI's `anyOf [..., null]` for an
    optional one would have clients send the text `null`."""
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    if len(variants) == 1:
        del schema["anyOf"]
        schema.update(variants[0])
    elif variants:
        schema["anyOf"] = variants


# What an operation's answer gives the operations that act on what it made or listed: its
# operationId and status, and each path parameter with where its value is (a runtime expression).
Producers = dict[tuple[str, str], dict[str, str]]


def _link(schema: dict[str, Any], producers: Producers) -> None:
    """OpenAPI links from each producer's answer to every operation whose path parameters it
    gives values for: the id a create answers reaches the routes that act on it."""
    operations = [
        (
            operation["operationId"],
            {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"},
        )
        for item in schema["paths"].values()
        for operation in item.values()
    ]
    by_id = {
        operation["operationId"]: operation
        for item in schema["paths"].values()
        for operation in item.values()
    }
    for (producer, status), given in producers.items():
        response = by_id[producer]["responses"][status]
        links = response.setdefault("links", {})
        for target, needed in operations:
            if target != producer and needed and needed <= given.keys():
                links[target] = {
                    "operationId": target,
                    "parameters": {name: given[name] for name in sorted(needed)},
                }


# What every problem answer carries besides its body.
_PROBLEM_HEADERS = {
    "Content-Language": {
        "description": "The language of the title, detail and messages: "
        + " or ".join(LANGUAGES)
        + ", as Accept-Language asks (English when it names neither).",
        "schema": {"type": "string", "enum": list(LANGUAGES)},
    },
}


def _enumerate(components: dict[str, Any]) -> None:
    """The problem types and the rules' codes as enums a client can list and switch on."""
    codes = sorted(code.value for code in Code)
    components["Code"] = {
        "type": "string",
        "enum": codes,
        "title": "Code",
        "description": "A rule an error names: the key of its sentence in the catalogues.",
    }
    problem = components["Problem"]["properties"]
    problem["type"]["enum"] = problem_types()
    problem["code"] = {
        "anyOf": [{"$ref": "#/components/schemas/Code"}, {"type": "null"}],
        "description": problem["code"]["description"],
        "examples": problem["code"].get("examples", []),
    }
    field = components["FieldError"]["properties"]
    field["code"] = {
        "$ref": "#/components/schemas/Code",
        "description": field["code"]["description"],
        "examples": field["code"].get("examples", []),
    }


def problem_openapi(app: FastAPI, *, links: Producers | None = None) -> None:
    """Makes /docs tell the truth: every error response is problem+json, 422 included (FastAPI
    documents its own validation body otherwise), every route lists the statuses any route may
    answer (431; with a key 401, 429, 503; with a body 413, 415, 422), and an optional parameter
    is one that may be left out, not one that may be null."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for path, item in schema["paths"].items():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    _without_null(parameter["schema"])
                answers = operation.setdefault("responses", {})
                extra = dict(_EVERY_ROUTE)
                if path.startswith("/v1/"):
                    extra.update(_WITH_A_KEY)
                if path == "/health/ready":
                    extra["503"] = "The database cannot be reached"
                if "requestBody" in operation:
                    extra.update(_WITH_A_BODY)
                for status, description in extra.items():
                    answers.setdefault(status, {"description": description})
                for status, response in answers.items():
                    own_body = path.startswith("/health") and status == "503"
                    if status.startswith(("4", "5")) and not own_body:
                        # A 412's problem shows the route's own resource (`current`).
                        own = response.get("content", {}).get("application/json", problem)
                        body = own if status == "412" else problem
                        response["content"] = {PROBLEM_MEDIA_TYPE: body}
                        response["description"] = response.get("description") or (
                            HTTPStatus(int(status)).phrase
                        )
                    if status == "422":
                        response["description"] = _WITH_A_BODY["422"]
                    if status == "503":
                        response.setdefault("headers", {})["Retry-After"] = {
                            "description": "Seconds to wait before retrying.",
                            "schema": {"type": "integer"},
                        }
        _link(schema, links or {})
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for model in (Problem, FieldError):
            components.setdefault(
                model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}")
            )
        _enumerate(components)
        for response in (
            r
            for item in schema["paths"].values()
            for o in item.values()
            for r in o["responses"].values()
        ):
            if PROBLEM_MEDIA_TYPE in response.get("content", {}):
                response.setdefault("headers", {}).update(_PROBLEM_HEADERS)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
