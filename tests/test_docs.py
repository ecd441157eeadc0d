"""The documentation's promises that a machine can check: every setting is on the settings page,
and the README keeps the two commands of its quickstart."""

import re
from pathlib import Path

from pydantic import AliasChoices

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_PAGE = ROOT / "docs" / "operations" / "settings.md"


def _environment_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"ANTRING_{field.upper()}"


def _documented_names() -> set[str]:
    """The variables in the first column of the page's tables, each written out in full."""
    names: set[str] = set()
    for line in SETTINGS_PAGE.read_text(encoding="utf-8").splitlines():
        cells = line.split("|")
        if len(cells) > 2:
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[1]))
    return names


def test_every_setting_is_on_the_settings_page() -> None:
    expected = {_environment_name(field) for field in Settings.model_fields}
    missing = expected - _documented_names()
    assert not missing, f"add these to {SETTINGS_PAGE.relative_to(ROOT)}: {sorted(missing)}"


def test_the_settings_page_names_no_setting_the_service_does_not_read() -> None:
    known = {_environment_name(field) for field in Settings.model_fields}
    unknown = _documented_names() - known
    assert not unknown, f"not settings of the service: {sorted(unknown)}"


def test_the_readme_shows_the_quickstart_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    assert "Python 3.11+" in readme
