"""The HTTP side of ``cdp``: where the platform is, the token, and one request at a time to its REST API."""

from __future__ import annotations

import configparser
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = Path("~/.config/cdp/config")
TIMEOUT_SECONDS = 30

# Exit codes a script can rely on.
OK = 0
REFUSED = 1  # the platform refused the request or the input (400, 403, 409): problems printed
USAGE = 2  # a wrong command line (argparse's own code)
NOT_FOUND = 3  # no such object, or one the token may not read (404)
UNAUTHORIZED = 4  # no token, or one the platform does not accept (401)
UNREACHABLE = 5  # the platform could not be reached, or answered with a server error
NOT_SUCCEEDED = 6  # execute --wait: the execution ended, but not SUCCEEDED (or the wait timed out)


class CliError(Exception):
    """A failure to report on stderr, with the exit code it means."""

    def __init__(self, message: str, code: int = REFUSED, *, problems: bool = False):
        super().__init__(message)
        self.code = code
        # The platform's problems, one "pointer: message" a line, printed as they are for scripts to read.
        self.problems = problems


@dataclass
class Settings:
    """The platform's base URL and the token, from the flags, then the environment, then the config file."""

    url: str
    token: str

    @classmethod
    def resolve(cls, url: str | None, token: str | None, config: str | None, profile: str) -> Settings:
        path = Path(config or os.environ.get("CDP_CONFIG") or DEFAULT_CONFIG).expanduser()
        section: dict[str, str] = {}
        if path.is_file():
            parser = configparser.ConfigParser()
            try:
                parser.read(path, encoding="utf-8")
            except configparser.Error as error:
                raise CliError(f"config file {path}: {error}", USAGE) from None
            section = dict(parser[profile]) if parser.has_section(profile) else {}
        elif config:
            raise CliError(f"config file {path} does not exist", USAGE)
        found_url = url or os.environ.get("CDP_URL") or section.get("url")
        found_token = token or os.environ.get("CDP_TOKEN") or section.get("token")
        if not found_url:
            raise CliError("no platform URL: pass --url, set CDP_URL, or put url = ... in the config file", USAGE)
        if not found_token:
            raise CliError("no token: pass --token, set CDP_TOKEN, or put token = ... in the config file "
                           "(issue one at /tokens/)", UNAUTHORIZED)
        return cls(url=found_url.rstrip("/"), token=found_token)


class Client:
    """Requests to ``<url>/api/...`` with the bearer token; answers are JSON, refusals raise CliError."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def request(self, method: str, path: str, *, query: dict | None = None, body=None,
                content_type: str = "application/json"):
        url = f"{self.settings.url}/api/{path.lstrip('/')}"
        pairs = [(k, v) for k, values in (query or {}).items() if values not in (None, "", [])
                 for v in (values if isinstance(values, list) else [values])]
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.settings.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (the user's URL)
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise refusal(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(f"cannot reach {self.settings.url}: {reason}", UNREACHABLE) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query):
        return self.request("GET", path, query=query)

    def post(self, path: str, body=None, **kwargs):
        return self.request("POST", path, body=body if body is not None else {}, **kwargs)

    def all_pages(self, path: str, **query) -> list:
        """Every item of a paginated list, following ``next`` links."""
        items, page = [], self.get(path, **query)
        while True:
            items += page.get("results", []) if isinstance(page, dict) else page
            following = page.get("next") if isinstance(page, dict) else None
            if not following:
                return items
            relative = following.split("/api/", 1)[1]
            page = self.request("GET", relative)


def refusal(status: int, raw: bytes) -> CliError:
    """The API's error shape (``{"errors": [{"pointer", "message"}]}``) as one line per problem."""
    try:
        errors = json.loads(raw).get("errors") or []
        lines = [f"{item.get('pointer') or '/'}: {item.get('message')}" for item in errors]
    except (ValueError, AttributeError):
        lines = []
    message = "\n".join(lines) or f"the platform answered {status}"
    code = {401: UNAUTHORIZED, 404: NOT_FOUND}.get(status, UNREACHABLE if status >= 500 else REFUSED)
    return CliError(message, code, problems=bool(lines))
