"""`/` and `/docs` are served with their assets by the app itself (no external URL anywhere)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

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
