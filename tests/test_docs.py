"""The README and docs/security.md stay true: their tables are the settings' own."""

from __future__ import annotations

import dataclasses

from tests.support.server import ROOT
from whisper_api.config import Settings, settings_table
from whisper_api.limits import LIMITS, limits_table


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "run: python -m whisper_api.config --update-readme"


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in ("scripts/serve", "scripts/test"):
        assert script in readme
        assert (ROOT / script).is_file()


def test_security_limits_table_matches_the_settings() -> None:
    security = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert limits_table() in security, "run: python -m whisper_api.limits --update docs/security.md"


def test_security_lists_every_endpoint_and_every_limit_setting() -> None:
    security = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    for path in ("/v1/chat/completions", "/v1/audio/translations", "/metrics", "/docs", "`GET /`"):
        assert path in security
    env = {f.name: f.metadata["env"] for f in dataclasses.fields(Settings)}
    for limit in LIMITS:
        assert limit.settings or limit.fixed, limit.what
        for name in limit.settings:
            assert env[name] in security
