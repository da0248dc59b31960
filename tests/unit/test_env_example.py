"""`.env.example` lists every setting the app reads, and nothing it does not."""

from __future__ import annotations

from pathlib import Path

from app.core.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


COMPOSE_ONLY_MARKER = "# --- docker compose only"


def example_keys(*, app_only: bool = True) -> list[str]:
    keys = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if app_only and line.startswith(COMPOSE_ONLY_MARKER):
            break
        if line and not line.startswith("#"):
            keys.append(line.split("=", 1)[0])
    return keys


def test_every_setting_is_in_env_example() -> None:
    assert sorted(example_keys()) == sorted(Settings.model_fields)


def test_no_duplicates_in_env_example() -> None:
    keys = example_keys(app_only=False)
    assert len(keys) == len(set(keys))


def test_env_example_loads_as_settings() -> None:
    settings = Settings(_env_file=ENV_EXAMPLE)
    assert settings.APP_PORT == 8000
    assert settings.LXD_CONNECTION_MODE == "local"
