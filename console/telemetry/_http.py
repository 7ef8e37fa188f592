"""The HTTP part the Prometheus and Loki sources share: auth, timeouts, and turning every transport
failure into one line of the source's own error family."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from console.domain.text import one_line
from console.settings import Secret
from console.telemetry.errors import SourceError


@dataclass(frozen=True)
class ErrorKinds:
    unreachable: type[SourceError]
    timeout: type[SourceError]
    auth: type[SourceError]
    query: type[SourceError]
    server: type[SourceError]
    bad_response: type[SourceError]


def display_url(url: str) -> str:
    """The URL as shown in messages: no credentials, no query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def body_excerpt(response: requests.Response, limit: int = 200) -> str:
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        return "(undecodable body)"
    return one_line(text, limit) or "(empty body)"


class HttpClient:
    """One base URL, its credentials and timeout. Secrets stay in :class:`Secret` and in headers."""

    def __init__(
        self,
        name: str,
        base_url: str,
        kinds: ErrorKinds,
        *,
        timeout_s: float,
        bearer: Secret | None = None,
        basic: tuple[str, Secret] | None = None,
        headers: dict[str, str] | None = None,
        ca_file: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.kinds = kinds
        self.timeout_s = timeout_s
        self._bearer = bearer
        self._basic = basic
        self._headers = dict(headers or {})
        self._verify: bool | str = ca_file or True
        self._session = session or requests.Session()

    @property
    def where(self) -> str:
        return f"{self.name} at {display_url(self.base_url)}"

    def __repr__(self) -> str:
        auth = "bearer" if self._bearer else "basic" if self._basic else "none"
        return f"HttpClient({self.name!r}, {display_url(self.base_url)!r}, auth={auth})"

    def _auth_headers(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        headers = dict(self._headers)
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer.get()}"
        basic = (self._basic[0], self._basic[1].get()) if self._basic else None
        return headers, basic

    def send(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> requests.Response:
        """Send one request; transport failures and 401/403 raise, every other answer returns.
        ``timeout_s`` shortens the client's timeout for this request (a health probe)."""
        headers, basic = self._auth_headers()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                data=data,
                params=params,
                headers=headers,
                auth=basic,
                timeout=timeout,
                verify=self._verify,
            )
        except requests.Timeout:
            raise self.kinds.timeout(f"{self.where} did not answer within {timeout:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise self.kinds.unreachable(f"{self.where} is unreachable (TLS: {_reason(exc)})") from None
        except requests.ConnectionError as exc:
            raise self.kinds.unreachable(f"{self.where} is unreachable ({_reason(exc)})") from None
        except requests.RequestException as exc:
            raise self.kinds.unreachable(f"{self.where}: request failed ({_reason(exc)})") from None
        if response.status_code in (401, 403):
            hint = "check the credentials (token_env, or username + password_env)"
            if not (self._bearer or self._basic):
                hint = "it needs credentials: set token_env (bearer) or username + password_env"
            raise self.kinds.auth(
                f"{self.where} refused the request (HTTP {response.status_code} {response.reason}): {hint}"
            )
        return response

    def json(self, response: requests.Response) -> Any:
        """The decoded body, or a bad-response error that says what came instead."""
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise self.kinds.bad_response(
                f"{self.where} answered HTTP {response.status_code} with a body that is not JSON "
                f"({kind}: {body_excerpt(response, 120)}); is the URL the {self.name} server?"
            ) from None


def _reason(exc: Exception) -> str:
    """The innermost useful reason of a requests/urllib3 error ('connection refused')."""
    text = str(exc)
    lowered = text.lower()
    for marker, short in (
        ("connection refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network is unreachable"),
        ("connection reset", "connection reset"),
        ("remotedisconnected", "the server closed the connection"),
        ("certificate verify failed", "certificate verify failed"),
    ):
        if marker in lowered:
            return short
    return one_line(text, 160) or type(exc).__name__
