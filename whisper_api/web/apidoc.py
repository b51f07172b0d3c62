"""OpenAPI from the views themselves: each view carries its schemas, `build_spec` walks the app.

The pattern is flask-smorest's `@blp.arguments` / `@blp.response`: a view is decorated with
`documented(...)`, naming the marshmallow schema it validates its body with and the schemas its
responses are dumped with. `build_spec` reads those off every route of the app, so a route cannot
exist without its documentation, and a field added to a schema changes the code and the document
in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

import whisper_api
from whisper_api.web.responses import JSON_MIMETYPE, SSE_MIMETYPE, TEXT_MIMETYPE

OPENAPI_VERSION = "3.0.3"
JSON = "application/json"
FORM = "multipart/form-data"
TEXT = TEXT_MIMETYPE
SSE = SSE_MIMETYPE
HTML = "text/html; charset=utf-8"
F = TypeVar("F", bound=Callable[..., Any])

#: What each error status means on this server; every one is OpenAI's error shape.
ERROR_REASONS = {
    400: "The request is invalid (the `param` names the field)",
    401: "A key is required (WHISPER_API_KEYS) and was missing or wrong",
    404: "Unknown model or URL",
    413: "The body, a form field or the number of parts is over its limit",
    429: "The worker is busy: retry after `Retry-After` seconds",
    502: "The upstream chat model failed or could not be reached",
    503: "The model is not loaded yet or cannot be loaded",
    504: "Decoding or transcription overran its audio-scaled deadline",
}

#: A response's content: media type -> schema class, a list of schema classes (one of them), `str`
#: (text) or `bytes` (binary, e.g. audio).
Content = Mapping[str, "type[Schema] | list[type[Schema]] | type[str] | type[bytes]"]


@dataclass(frozen=True)
class Operation:
    """What `documented` attaches to a view."""

    summary: str
    body: type[Schema] | None = None
    body_type: str = JSON
    responses: Mapping[int, tuple[str, Content]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    public: bool = False  # no API key needed


def documented(
    summary: str,
    *,
    body: type[Schema] | None = None,
    body_type: str = JSON,
    responses: Mapping[int, tuple[str, Content]] | None = None,
    errors: tuple[int, ...] = (),
    public: bool = False,
) -> Callable[[F], F]:
    """Attach the view's OpenAPI operation: its body schema, its response schemas, its errors."""
    operation = Operation(summary, body, body_type, dict(responses or {}), errors, public)

    def attach(view: F) -> F:
        view.openapi = operation  # type: ignore[attr-defined]
        return view

    return attach


def build_spec(app: Flask) -> APISpec:
    """The whole API as an apispec object, from every documented route of `app`."""
    spec = APISpec(
        title="whisper_api",
        version=whisper_api.__version__,
        openapi_version=OPENAPI_VERSION,
        info={"description": "Self-hosted, OpenAI-compatible speech-to-text (Whisper) and text-to-speech."},
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=_error_schema())
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        operation: Operation | None = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if operation is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in sorted(rule.arguments)
        ]
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        spec.path(
            path,
            parameters=parameters or None,
            operations={m.lower(): _operation(spec, operation) for m in methods},
        )
    return spec


def _operation(spec: APISpec, operation: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {"summary": operation.summary}
    body["security"] = [{}] if operation.public else [{}, {"bearer": []}]
    if operation.body is not None:
        name = _register(spec, operation.body)
        if operation.body_type == FORM:
            _no_nulls_in_forms(spec.components.schemas[name])
        body["requestBody"] = {"required": True, "content": {operation.body_type: {"schema": name}}}
    responses: dict[str, Any] = {}
    for status, (description, content) in operation.responses.items():
        responses[str(status)] = {
            "description": description,
            "content": {
                media: {"schema": _content_schema(spec, schema)} for media, schema in content.items()
            },
        }
    errors = operation.errors if operation.public else (*operation.errors, 401)
    for status in sorted(set(errors)):
        responses[str(status)] = {
            "description": ERROR_REASONS[status],
            "content": {JSON: {"schema": "Error"}},
        }
    body["responses"] = responses
    return body


def _content_schema(spec: APISpec, schema: type[Schema] | list[type[Schema]] | type[str]) -> Any:
    if schema is str:
        return {"type": "string"}
    if schema is bytes:
        return {"type": "string", "format": "binary"}
    if isinstance(schema, list):
        return {"oneOf": [{"$ref": f"#/components/schemas/{_register(spec, s)}"} for s in schema]}
    return _register(spec, schema)  # type: ignore[arg-type]


def _register(spec: APISpec, schema: type[Schema]) -> str:
    name = _schema_name(schema)
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return name


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def _no_nulls_in_forms(schema: dict[str, Any]) -> None:
    """A multipart field is absent or a string, never null: `load_default=None` means "leave it out"."""
    for prop in schema["properties"].values():
        if prop.pop("nullable", False) and prop.get("default", 0) is None:
            del prop["default"]


def _error_schema() -> type[Schema]:
    from whisper_api.web.errors import ErrorSchema

    return ErrorSchema


__all__ = ["FORM", "HTML", "JSON", "JSON_MIMETYPE", "SSE", "TEXT", "build_spec", "documented"]
