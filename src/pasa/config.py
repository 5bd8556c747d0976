"""Settings from the environment (``PASA_*``). Defaults give the embedded SQLite set-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASA_", extra="ignore")

    # SQLite file under ./var/ by default; PostgreSQL with postgresql+psycopg://...
    database_url: str = Field(default="sqlite:///var/pasa.db")
    # Share of active assignments an import may end before the guard holds it for approval.
    guard_threshold: float = Field(default=0.05, ge=0.0, le=1.0)
    # Where exports, demo files and the SQLite database live.
    var_dir: Path = Field(default=Path("var"))
    log_level: str = Field(default="INFO")
    log_json: bool = False
    # Attempts before an operation is parked as a visible, retryable failure.
    max_attempts: int = Field(default=5, ge=1)
    # Organisation time zone: "as at" dates and end-of-day leavers are evaluated here.
    timezone: str = "Europe/London"


def get_settings() -> Settings:
    return Settings()
