"""The README stays true: its configuration table is the settings' own."""

from __future__ import annotations

from tests.support.server import ROOT
from whisper_api.config import settings_table


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "run: python -m whisper_api.config --update-readme"


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in ("scripts/serve", "scripts/test"):
        assert script in readme
        assert (ROOT / script).is_file()
