#!/usr/bin/env python3
"""Build `lxd-api.postman_collection.json` (Postman v2.1) from `api.http`.

api.http is the one hand-written request collection; the Postman collection is derived from
it so the two never drift (a test checks that the committed file is this script's output).
Run: `python3 scripts/build_postman.py` after changing api.http.

What it maps: folders per section; collection-level bearer auth with `{{accessToken}}`, which
the login request's test script stores (with `refreshToken`); a reference to an earlier
response (`{{req.response.body.$.a}}`) becomes a collection variable that request's test
script sets; `# @expect` codes become a status test. WebSocket routes are listed as requests to
open in Postman's WebSocket tab.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_collection import HttpRequest, load

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "api.http"
TARGET = REPO / "lxd-api.postman_collection.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
_RESPONSE_REF = re.compile(r"\{\{\s*(\w+)\.response\.(body\.\$\.[\w.]+|headers\.[\w-]+)\s*\}\}")
# Inline these file variables: Postman resolves variables in URLs, not inside other variables.
INLINE = {"api": "{{baseUrl}}/api/v1", "wsApi": "{{wsBaseUrl}}/api/v1"}
SPECIAL = {
    "baseUrl": "http://localhost:8000",
    "wsBaseUrl": "ws://localhost:8000",
    "accessToken": "",
    "refreshToken": "",
}


def _variable_for(name: str, path: str) -> str:
    tail = path.removeprefix("body.$.").removeprefix("headers.")
    return name + "_" + re.sub(r"\W+", "_", tail)


def _rewrite(text: str, captures: dict[str, dict[str, str]]) -> str:
    """api.http references -> Postman variables (collecting what each request must capture)."""

    def response_ref(match: re.Match[str]) -> str:
        name, path = match.group(1), match.group(2)
        if name == "login" and path == "body.$.access_token":
            return "{{accessToken}}"
        if name == "login" and path == "body.$.refresh_token":
            return "{{refreshToken}}"
        variable = _variable_for(name, path)
        captures.setdefault(name, {})[variable] = path
        return "{{" + variable + "}}"

    text = _RESPONSE_REF.sub(response_ref, text)
    for key, value in INLINE.items():
        text = text.replace("{{" + key + "}}", value)
    return text.replace("{{token}}", "{{accessToken}}")


def _url(raw: str) -> dict[str, Any]:
    base, _, query = raw.partition("?")
    host, _, path = base.partition("}}")
    url: dict[str, Any] = {
        "raw": raw,
        "host": [host + "}}"],
        "path": [p for p in path.split("/") if p],
    }
    if query:
        url["query"] = [{"key": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)]
    return url


def _script(lines: list[str]) -> list[dict[str, Any]]:
    return [{"listen": "test", "script": {"type": "text/javascript", "exec": lines}}]


def _item(request: HttpRequest, captures: dict[str, dict[str, str]]) -> dict[str, Any]:
    url = _rewrite(request.url, captures)
    item: dict[str, Any] = {"name": request.title}
    if request.method == "WEBSOCKET":
        item["request"] = {
            "method": "GET",
            "url": _url(url),
            "description": "A WebSocket route: open this URL in a Postman WebSocket request.",
        }
        return item
    headers = []
    auth: dict[str, Any] | None = None
    for key, value in request.headers.items():
        value = _rewrite(value, captures)
        if key.lower() == "authorization":
            token = value.removeprefix("Bearer ").strip()
            if token != "{{accessToken}}":  # noqa: S105 - a variable name, not a secret
                auth = {"type": "bearer", "bearer": [{"key": "token", "value": token}]}
            continue
        headers.append({"key": key, "value": value})
    body_text = _rewrite(request.body, captures)
    req: dict[str, Any] = {"method": request.method, "header": headers, "url": _url(url)}
    if auth is not None:
        req["auth"] = auth
    elif "Authorization" not in request.headers:
        req["auth"] = {"type": "noauth"}
    if body_text:
        content_type = request.headers.get("Content-Type", "")
        if content_type == "application/x-www-form-urlencoded":
            pairs = parse_qsl(body_text, keep_blank_values=True)
            req["body"] = {
                "mode": "urlencoded",
                "urlencoded": [{"key": k, "value": v} for k, v in pairs],
            }
        else:
            json_options = {"raw": {"language": "json"}}
            req["body"] = {"mode": "raw", "raw": body_text, "options": json_options}
    item["request"] = req
    return item


def _tests(request: HttpRequest, captures: dict[str, str]) -> list[str]:
    codes = sorted(request.expect) if request.expect else None
    if codes:
        check = f"pm.expect(pm.response.code).to.be.oneOf({codes})"
        lines = [f'pm.test("answers {codes}", () => {check});']
    else:
        lines = ['pm.test("succeeds", () => pm.expect(pm.response.code).to.be.below(400));']
    if request.name == "login":
        lines += [
            "const tokens = pm.response.json();",
            'pm.collectionVariables.set("accessToken", tokens.access_token);',
            'pm.collectionVariables.set("refreshToken", tokens.refresh_token);',
        ]
    for variable, path in sorted(captures.items()):
        if path.startswith("headers."):
            source = f'pm.response.headers.get("{path.removeprefix("headers.")}")'
        else:
            source = "pm.response.json()" + "".join(
                f'["{part}"]' for part in path.removeprefix("body.$.").split(".")
            )
        lines.append(f'pm.collectionVariables.set("{variable}", {source});')
    return lines


def build() -> dict[str, Any]:
    collection = load(SOURCE)
    captures: dict[str, dict[str, str]] = {}
    items = [(request, _item(request, captures)) for request in collection.requests]
    folders: dict[str, list[dict[str, Any]]] = {}
    for request, item in items:
        if request.method != "WEBSOCKET":
            item["event"] = _script(_tests(request, captures.get(request.name or "", {})))
        folders.setdefault(request.section or "Requests", []).append(item)
    variables = dict(SPECIAL)
    for key, value in collection.variables.items():
        if key not in INLINE and key != "token" and "{{" not in value and key not in variables:
            variables[key] = value
    for captured in captures.values():
        for variable in captured:
            variables.setdefault(variable, "")
    return {
        "info": {
            "name": "lxd-api",
            "description": "Every route of lxd-api, in the order of a runnable scenario "
            "(built from api.http by scripts/build_postman.py). Run `Log in` first: its test "
            "script stores the tokens the other requests use.",
            "schema": SCHEMA,
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{accessToken}}"}]},
        "variable": [{"key": k, "value": v} for k, v in variables.items()],
        "item": [{"name": name, "item": entries} for name, entries in folders.items()],
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(REPO)}")
