"""Configuration: defaults, file, environment, precedence; and no undocumented setting (as Datasette does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import load_settings, setting_names

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in setting_names():
        assert f"`{name}`" in doc and f"`REGISTRY_{name.upper()}`" in doc, f"{name} is not documented"


def test_defaults_need_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in setting_names():
        monkeypatch.delenv(f"REGISTRY_{name.upper()}", raising=False)
    monkeypatch.delenv("REGISTRY_CONFIG", raising=False)
    s = load_settings()
    assert s.db_url == f"sqlite:///{(tmp_path / 'instance' / 'registry.sqlite3').resolve()}"
    assert s.index_path == Path("instance") / "index"
    assert s.results_due_months == 12


def test_file_then_environment_then_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text('results_due_months = 18\nmax_rows = 10\n', encoding="utf-8")
    monkeypatch.setenv("REGISTRY_MAX_ROWS", "20")
    s = load_settings(home=str(tmp_path))
    assert (s.results_due_months, s.max_rows) == (18, 20)
    assert load_settings(home=str(tmp_path), max_rows=30).max_rows == 30


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text('result_due_months = 18\n', encoding="utf-8")
    with pytest.raises(ValueError, match="result_due_months"):
        load_settings(home=str(tmp_path))


def test_every_error_code_is_documented() -> None:
    from registry.validation.messages import MESSAGES

    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for code in MESSAGES:
        assert f"`{code}`" in doc, f"error code {code} is not documented in docs/errors.md"


def test_every_environment_variable_read_is_documented() -> None:
    """Any REGISTRY_* name in the code (settings, language, test services) appears in the configuration doc."""
    import re

    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    code = [p for folder in ("registry", "web", "harvesters") for p in (ROOT / folder).rglob("*.py")]
    code += [ROOT / "tests" / "services.py", ROOT / "scripts" / "setup.sh"]
    names = {n for p in code for n in re.findall(r"\bREGISTRY_[A-Z_]+\b", p.read_text(encoding="utf-8"))}
    names.discard("REGISTRY_")  # the prefix itself (config.ENV_PREFIX)
    assert names, "no environment variable found: the scan is broken"
    assert not [n for n in sorted(names) if f"`{n}`" not in doc]
