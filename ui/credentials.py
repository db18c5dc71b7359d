"""Who may use a locked studio, and who a request is: the API tokens (each with a name,
so one script's burst counts against its own token only) and the UI's login.

    STUDIO_API_TOKENS=ci:9f3...,alice:77b...   named tokens
    STUDIO_API_TOKEN=...                      one token, named "token"

Every comparison is of bytes in constant time, so a token with characters outside ASCII
is simply wrong, never an error.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Mapping

TOKEN_COOKIE = "studio-token"


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def tokens_from_env() -> dict[str, str]:
    """name -> token from STUDIO_API_TOKENS (name:token, comma-separated) and STUDIO_API_TOKEN."""
    tokens = {}
    for entry in filter(None, (e.strip() for e in os.environ.get("STUDIO_API_TOKENS", "").split(","))):
        name, _, token = entry.partition(":")
        if not name or not token:
            raise SystemExit(f"STUDIO_API_TOKENS: {entry!r} is not name:token")
        tokens[name] = token
    if os.environ.get("STUDIO_API_TOKEN"):
        tokens.setdefault("token", os.environ["STUDIO_API_TOKEN"])
    return tokens


def cookie_value(headers: Mapping[str, str], name: str) -> str:
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header carries nothing
        return ""
    return cookie[name].value if name in cookie else ""


@dataclass(frozen=True)
class Credentials:
    tokens: dict[str, str] = field(default_factory=dict)  # name -> token
    login: tuple[str, str] | None = None
    metrics_token: str | None = None  # STUDIO_METRICS_TOKEN: opens /metrics and /readyz, and nothing else

    def metrics_bearer(self, headers: Mapping[str, str]) -> bool:
        """The request carries the metrics token as a bearer token."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return bool(self.metrics_token) and scheme.lower() == "bearer" and _same(value.strip(), self.metrics_token)

    @property
    def locked(self) -> bool:
        return bool(self.tokens or self.login)

    def token_name(self, given: str) -> str | None:
        """The name of the token `given` is, if it is one (every token is compared)."""
        matches = [name for name, token in self.tokens.items() if _same(given, token)]
        return matches[0] if given and matches else None

    def bearer(self, headers: Mapping[str, str]) -> str | None:
        """The name of the token in `Authorization: Bearer <token>`."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return self.token_name(value.strip()) if scheme.lower() == "bearer" else None

    def cookie_token(self, headers: Mapping[str, str]) -> str | None:
        """The name of the token in the cookie a browser got from `/?token=<token>`."""
        return self.token_name(cookie_value(headers, TOKEN_COOKIE))

    def basic_user(self, headers: Mapping[str, str]) -> str | None:
        """The user of a right HTTP Basic login, else None."""
        user, password = self.basic_attempt(headers) or ("", "")
        if self.login and _same(user, self.login[0]) & _same(password, self.login[1]):
            return user
        return None

    @staticmethod
    def basic_attempt(headers: Mapping[str, str]) -> tuple[str, str] | None:
        """(user, password) an `Authorization: Basic` header carries, right or wrong."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            return "", ""
        return user, password
