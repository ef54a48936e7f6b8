"""Keep secrets out of what the suite prints and writes: credentials in tracking URIs, and secret-looking values.

A tracking URI may carry credentials (`http://user:pass@host:5000`, `postgresql://user:pass@host/db`). The CLI
moves them into the environment variables the clients read (`MLFLOW_TRACKING_USERNAME` / `_PASSWORD` for an
MLflow server, `PGPASSWORD` for PostgreSQL), so the URI that travels on (into worker processes, Slurm job files,
records, MLflow params and printed lines) has none; anything printed is also passed through `redact_text`.
"""
from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^/@:\s]*)(?::[^/@\s]*)?@")

# where each scheme's client reads a password from, when the URI gives none
_PASSWORD_ENV = {"http": ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
                 "https": ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
_PG_SCHEMES = ("postgresql", "postgresql+psycopg2", "postgres")


def redact_uri(uri: str) -> str:
    """`scheme://user:secret@host/...` -> `scheme://user:***@host/...`; other URIs unchanged."""
    return redact_text(uri)


def redact_text(text: str) -> str:
    """Every URI's password in `text` replaced by `***` (the user name is kept: it says whose run it was)."""
    def mask(match: re.Match) -> str:
        has_password = ":" in match.group(0)[len(match.group("scheme")):]
        return f"{match.group('scheme')}{match.group('user')}{':***' if has_password else ''}@"

    return _USERINFO.sub(mask, text)


def move_credentials_to_env(uri: str, environ=os.environ) -> str:
    """Take the credentials out of an MLflow server or PostgreSQL URI, into the environment its client reads
    (values already set there win); -> the URI without them. Other URIs are returned as they are."""
    parts = urlsplit(uri)
    if parts.password is None and not (parts.username and parts.scheme in _PASSWORD_ENV):
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.scheme in _PASSWORD_ENV:
        user_env, password_env = _PASSWORD_ENV[parts.scheme]
        if parts.username:
            environ.setdefault(user_env, parts.username)
        if parts.password is not None:
            environ.setdefault(password_env, parts.password)
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    if parts.scheme in _PG_SCHEMES:
        environ.setdefault("PGPASSWORD", parts.password)  # libpq reads it when the URI has no password
        netloc = f"{parts.username}@{host}" if parts.username else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return uri  # a scheme whose client has no password variable: kept, and redacted wherever it is shown
