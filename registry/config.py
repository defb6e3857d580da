"""Configuration, as Flask users expect it: an instance folder, environment variables, an optional file.

Precedence: explicit arguments > environment (REGISTRY_*) > config file > defaults.
Every setting is documented in docs/configuration.md (a test checks it).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "REGISTRY_"
SEARCH_BACKENDS = ("whoosh", "postgresql")


@dataclass(frozen=True)
class Settings:
    home: Path = Path("instance")
    database_url: str = ""
    index_dir: str = ""
    results_due_months: int = 12
    max_upload_bytes: int = 64 * 1024 * 1024
    max_rows: int = 1_000_000
    base_url: str = "http://127.0.0.1:5000"
    secret_key: str = ""
    search_backend: str = "whoosh"
    api_write_rate_limit: str = "60 per minute"
    shared_dir: str = ""

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'registry.sqlite3').resolve()}"

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir) if self.index_dir else self.home / "index"

    @property
    def shared_path(self) -> Path:
        """Where a server's processes share pages and counts (`registry/shared_files.py`)."""
        return Path(self.shared_dir) if self.shared_dir else self.home


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(value)
    if kind == "Path":
        return Path(value)
    return str(value)


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the config file (REGISTRY_CONFIG or <home>/registry.toml), then env, then overrides."""
    env = {n: os.environ[ENV_PREFIX + n.upper()] for n in setting_names() if ENV_PREFIX + n.upper() in os.environ}
    home = Path(overrides.get("home") or env.get("home") or Settings.home)
    path = config_file or Path(os.environ.get(ENV_PREFIX + "CONFIG", home / "registry.toml"))
    values: dict[str, Any] = {}
    if path.is_file():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - set(setting_names())
        if unknown:
            raise ValueError(f"{path}: paramètre(s) inconnu(s) : {', '.join(sorted(unknown))}")
        values.update(data)
    values.update(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["home"] = home
    settings = replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
    if settings.search_backend not in SEARCH_BACKENDS:
        raise ValueError(f"search_backend : « {settings.search_backend} » inconnu ; valeurs possibles : "
                         f"{', '.join(SEARCH_BACKENDS)}.")
    if settings.search_backend == "postgresql" and not settings.db_url.startswith("postgresql"):
        raise ValueError("search_backend = \"postgresql\" demande une base PostgreSQL (database_url).")
    return settings
