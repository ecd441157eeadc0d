"""What the OpenAPI document says of errors: a route's own (`responses(...)`), those any route
may answer, problem+json as their body, and the links between operations."""

from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field, create_model

from app.errors.types import PROBLEM_MEDIA_TYPE, AppError, FieldError, PreconditionFailed, Problem


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
    return create_model(
        f"PreconditionFailed{shown.__name__}",
        __base__=Problem,
        current=(
            shown,
            Field(description="The resource as it is now; its ETag is in the ETag header."),
        ),
    )


def responses(
    *items: type[AppError] | ResponseHeaders | Stale,
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, from the errors it can raise and the headers it sends."""
    out: dict[int | str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, Stale):
            out[PreconditionFailed.status_code] = {
                "model": _stale_problem(item.shown),
                "description": PreconditionFailed.title,
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
        entry["description"] = "; ".join(filter(None, [entry["description"], item.title]))
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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
