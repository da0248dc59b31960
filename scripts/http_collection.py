"""Read `api.http` (the VS Code REST Client / JetBrains format) into plain request records.

Used by `scripts/build-postman.py` (api.http -> the Postman collection) and by the tests that
keep both files true to the app. Understands what api.http uses: `@name = value` file
variables, `### Title` separators, `# @name x` and `# @expect 404,409` comments, a request line,
headers, a body, and `{{x}}` / `{{req.response.body.$.a.b}}` / `{{req.response.headers.H}}`
references.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "WEBSOCKET"}
_VARIABLE = re.compile(r"^@([A-Za-z_][\w-]*)\s*=\s*(.*)$")
_REFERENCE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@dataclass
class HttpRequest:
    title: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    name: str | None = None
    expect: set[int] | None = None
    section: str = ""


@dataclass
class HttpCollection:
    variables: dict[str, str]
    requests: list[HttpRequest]


def parse(text: str) -> HttpCollection:
    variables: dict[str, str] = {}
    requests: list[HttpRequest] = []
    section = ""
    for block in re.split(r"^###", text, flags=re.MULTILINE):
        lines = block.splitlines()
        title = lines[0].strip() if lines else ""
        if set(title) <= {"#"}:  # a banner: `####...` / `# Section` / `####...`
            comments = [ln.strip("# ").strip() for ln in lines[1:] if ln.strip().startswith("#")]
            section = next((c for c in comments if c and not c.startswith("@")), section)
            title = ""
        pending: dict[str, Any] = {}
        request: HttpRequest | None = None
        in_body = False
        body_lines: list[str] = []
        for line in lines[1:]:
            stripped = line.strip()
            if request is None:
                if match := _VARIABLE.match(stripped):
                    variables[match.group(1)] = match.group(2).strip()
                elif stripped.startswith("# @name "):
                    pending["name"] = stripped.removeprefix("# @name ").strip()
                elif stripped.startswith("# @expect "):
                    codes = stripped.removeprefix("# @expect ").split(",")
                    pending["expect"] = {int(code) for code in codes}
                elif stripped and stripped.split(" ", 1)[0] in METHODS:
                    method, _, url = stripped.partition(" ")
                    request = HttpRequest(
                        title=title,
                        method=method,
                        url=url.strip(),
                        name=pending.get("name"),
                        expect=pending.get("expect"),
                        section=section,
                    )
            elif not in_body:
                if not stripped:
                    in_body = True
                elif not stripped.startswith("#"):
                    key, _, value = stripped.partition(":")
                    request.headers[key.strip()] = value.strip()
            else:
                body_lines.append(line)
        if request is not None:
            request.body = "\n".join(body_lines).strip()
            requests.append(request)
    return HttpCollection(variables=variables, requests=requests)


def load(path: Path) -> HttpCollection:
    return parse(path.read_text())


def _lookup(data: Any, dotted: str) -> Any:
    for part in [p for p in dotted.split(".") if p]:
        if isinstance(data, Mapping):
            data = data[part]
        elif isinstance(data, list):
            data = data[int(part)]
        else:
            raise KeyError(dotted)
    return data


def substitute(
    text: str,
    variables: Mapping[str, str],
    responses: Mapping[str, Any] | None = None,
) -> str:
    """Replace every `{{...}}` reference; file variables may refer to each other."""

    def resolve(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in variables:
            return substitute(variables[ref], variables, responses)
        name, _, rest = ref.partition(".response.")
        if rest and responses is not None and name in responses:
            response = responses[name]
            if rest.startswith("body.$"):
                value = _lookup(response.json(), rest.removeprefix("body.$"))
                return value if isinstance(value, str) else json.dumps(value)
            if rest.startswith("headers."):
                return str(response.headers[rest.removeprefix("headers.")])
        raise KeyError(f"unresolved reference {{{{{ref}}}}}")

    return _REFERENCE.sub(resolve, text)
