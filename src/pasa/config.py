"""Settings from the environment (``PASA_*``). Defaults give the embedded SQLite set-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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

    # --- sign-in and sessions (docs/operations.md, "Sign-in and sessions") ---------------
    # OpenID Connect provider (NHS CIS2, Entra ID, ...): the issuer, or its discovery URL.
    oidc_issuer: str | None = None
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile email"
    # Claims tried in order for the sign-in name (comma-separated).
    oidc_name_claims: str = "preferred_username,email"
    # How pages name the provider ("NHS Care Identity Service 2", "Microsoft", ...).
    oidc_provider_name: str = "The sign-in service"
    # The public address of PASA (https://pasa.example.nhs.uk); the callback URL is built
    # from it. Unset: from the request (run behind a proxy with --proxy-headers).
    public_url: str | None = None
    # Demo only: a sign-in page that trusts whoever types a name. Never with an OIDC issuer.
    dev_signin: bool = False
    session_secret: SecretStr | None = None
    session_cookie_name: str = "pasa_session"
    # Off only for plain-http demos and tests; also turns Strict-Transport-Security on/off.
    session_cookie_secure: bool = True
    session_idle_minutes: float = Field(default=30, gt=0)
    session_absolute_hours: float = Field(default=12, gt=0)
    # Requests per minute: per client IP on the sign-in endpoints, per bearer token on
    # everything else (0 switches a limit off).
    signin_rate_limit: int = Field(default=30, ge=0)
    token_rate_limit: int = Field(default=1200, ge=0)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    # --- email notifications (docs/web.md, "Access requests and approvals") ---------------
    # No host: messages stay in the outbox and are written to the log instead of sent.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "pasa@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None

    # --- benefits dashboard baseline (docs/web.md, "Benefits dashboard") --------------------
    # The business case: 33 WTE, £1.1m a year of manual provisioning at a 7,000-staff trust.
    benefits_baseline_wte: float = Field(default=33.0, gt=0)
    benefits_baseline_cost_gbp: float = Field(default=1_100_000.0, gt=0)
    benefits_baseline_staff: int = Field(default=7_000, gt=0)
    # 37.5 h x 52.14 weeks = 1,955 h, less 35 days of leave and bank holidays (Agenda for
    # Change on appointment, 262.5 h) and ~2.5% sickness and mandatory training: ~1,650 h.
    benefits_hours_per_wte: float = Field(default=1_650.0, gt=0)


def get_settings() -> Settings:
    return Settings()
