"""`/` and `/docs` are served with their assets by the app itself (no external URL anywhere)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.support.fakes import fake_loader
from whisper_api.config import Settings
from whisper_api.web import create_app

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def _get(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    text = response.get_data(as_text=True)
    response.close()
    assert response.status_code == 200, url
    return text


def _assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html)


def test_docs_page_renders_the_openapi_document_with_local_assets(client: FlaskClient) -> None:
    html = _get(client, "/docs")
    assert 'data-spec-url="/openapi.json"' in html
    assets = _assets(html)
    assert {
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
    } <= set(assets)
    for asset in assets:
        _get(client, asset)
    assert not EXTERNAL.search(html)


def test_swagger_ui_is_told_not_to_call_the_online_validator(client: FlaskClient) -> None:
    assert "validatorUrl: null" in _get(client, "/static/docs.js")


def test_try_it_page_and_its_assets_are_served_locally(client: FlaskClient) -> None:
    html = _get(client, "/")
    assert 'data-api-base="/v1"' in html
    assets = _assets(html)
    assert {"/static/ui/ui.js", "/static/ui/ui.css"} <= set(assets)
    for asset in assets:
        assert not EXTERNAL.search(_get(client, asset))
    assert not EXTERNAL.search(html)


def test_pages_load_without_a_key_when_the_api_needs_one() -> None:
    app = create_app(Settings(model="base", api_keys=("sk-team",)), loader=fake_loader({}))
    client = app.test_client()
    for url in ("/", "/static/ui/ui.js", "/docs", "/static/vendor/swagger-ui/swagger-ui.css"):
        _get(client, url)
    refused = client.get("/v1/models")
    refused.close()
    assert refused.status_code == 401
