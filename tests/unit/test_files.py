"""Files in an instance with a mocked LXD: every path rule (422 before LXD is asked), what
reaches LXD (only its files endpoint, the path as a query value), the headers sent, LXD's
refusals as the client hears them, and what a real daemon does not do on demand (unreadable
metadata, a client that goes away in the middle of a download or an upload)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from app.errors import InvalidNameError
from app.services.files import MAX_NAME_BYTES, MAX_PATH_BYTES, Owner, check_path
from tests.support.auth import auth_for
from tests.support.lxd_replies import error, sync, sync_body

URL = "/api/v1/instances/web1/files"
FILES = "/1.0/instances/web1/files"
Handler = Callable[[httpx.Request], httpx.Response]

# --- the path rules ---------------------------------------------------------------------------
segment = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))


@given(st.lists(segment, min_size=0, max_size=8))
def test_normalised_absolute_paths_pass_unchanged(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    assert check_path(path) == path
    assert posixpath.normpath(path) == path


@given(
    st.lists(segment, min_size=1, max_size=6), st.integers(0, 6), st.sampled_from([".", "..", ""])
)
def test_dot_and_empty_segments_are_refused(parts: list[str], at: int, bad: str) -> None:
    parts.insert(min(at, len(parts) - 1), bad)  # never last when empty: that is a trailing /
    with pytest.raises(InvalidNameError):
        check_path("/" + "/".join(parts))


@given(st.lists(segment, min_size=1, max_size=6))
def test_relative_and_trailing_slash_paths_are_refused(parts: list[str]) -> None:
    with pytest.raises(InvalidNameError, match="absolute"):
        check_path("/".join(parts))
    with pytest.raises(InvalidNameError, match="end with"):
        check_path("/" + "/".join(parts) + "/")


@given(st.text(max_size=30), st.text(max_size=30))
def test_nul_is_refused_anywhere(before: str, after: str) -> None:
    with pytest.raises(InvalidNameError, match="NUL"):
        check_path("/" + before + "\x00" + after)


def test_length_bounds() -> None:
    name = "a" * MAX_NAME_BYTES
    assert check_path("/" + name)
    with pytest.raises(InvalidNameError, match="name longer"):
        check_path("/" + name + "a")
    long_ok = ("/" + "b" * 99) * (MAX_PATH_BYTES // 100)
    assert check_path(long_ok)
    with pytest.raises(InvalidNameError, match="longer than"):
        check_path(long_ok + "/" + "c" * 200)
    with pytest.raises(InvalidNameError, match="name longer"):
        check_path("/" + "é" * 128)  # 256 bytes in UTF-8
    assert check_path("/") == "/"


def test_owner_headers_send_the_mode_as_octal_with_a_leading_zero() -> None:
    assert Owner(uid=0, gid=5, mode=0o644).headers() == {
        "X-LXD-uid": "0",
        "X-LXD-gid": "5",
        "X-LXD-mode": "0644",
    }
    assert Owner().headers() == {}
    assert Owner(mode=0o600).headers(mode=0o755) == {"X-LXD-mode": "0755"}


# --- a fake LXD -----------------------------------------------------------------------------
class Body(httpx.AsyncByteStream):
    """A streamed body (a `content=` response is read at once, as no transport does)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def meta(kind: str = "file", mode: str = "0644") -> dict[str, str]:
    return {"X-LXD-Type": kind, "X-LXD-Uid": "0", "X-LXD-Gid": "0", "X-LXD-Mode": mode}


class FakeFiles:
    """LXD's files endpoint over a dict of path -> type; records every request."""

    def __init__(self, tree: dict[str, str] | None = None) -> None:
        self.tree = tree if tree is not None else {"/": "directory", "/etc": "directory"}
        self.requests: list[httpx.Request] = []
        self.bodies: dict[str, bytes] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == FILES, request.url  # nothing else is ever asked
        path = request.url.params["path"]
        kind = self.tree.get(path)
        if request.method == "HEAD":
            return httpx.Response(200, headers=meta(kind)) if kind else httpx.Response(404)
        if request.method == "POST":
            self.tree[path] = request.headers["x-lxd-type"]
            self.bodies[path] = request.content
            return sync({})
        if kind is None:
            return error(404, "Not Found")
        if request.method == "DELETE":
            del self.tree[path]
            return sync()
        if kind == "directory":
            names = [p.rsplit("/", 1)[1] for p in self.tree if posixpath.dirname(p) == path != p]
            listing = json.dumps(sync_body(names)).encode()
            return httpx.Response(200, stream=Body(listing), headers=meta(kind))
        return httpx.Response(200, stream=Body(b"data"), headers=meta(kind))


@pytest.fixture
async def make(make_unit_app: Callable[..., Any]) -> Callable[..., Any]:
    async def build(handler: Handler) -> tuple[FastAPI, httpx.AsyncClient, Any]:
        app: FastAPI = await make_unit_app(lxd_handler=handler)
        auth = await auth_for(app)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        return app, http, auth

    return build


BAD_PATHS = ["", "etc", "./etc", "/etc/..", "/etc/../root", "/./etc", "//etc", "/etc/", "/a\x00"]


@pytest.mark.parametrize("path", BAD_PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_bad_paths_are_refused_before_lxd(make: Any, method: str, path: str) -> None:
    fake = FakeFiles()
    _, http, auth = await make(fake)
    async with http:
        reply = await http.request(method, URL, params={"path": path}, headers=auth.headers())
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] in {"invalid_path", "validation_error"}
    assert fake.requests == []


@pytest.mark.parametrize(
    "path", ["/a?b=c", "/a#frag", "/x&project=other", "/%2e%2e/1.0/instances", "/a b+c", "/ü/ñ"]
)
async def test_the_path_only_ever_travels_as_the_query_value(make: Any, path: str) -> None:
    fake = FakeFiles({"/": "directory", path: "file"})
    _, http, auth = await make(fake)
    async with http:
        reply = await http.get(URL, params={"path": path}, headers=auth.headers("viewer"))
    assert reply.status_code == 200, reply.text
    [request] = fake.requests
    assert request.url.path == FILES
    assert dict(request.url.params) == {"project": "default", "path": path}


async def test_upload_headers_and_owner_from_query_or_headers(make: Any) -> None:
    fake = FakeFiles()
    _, http, auth = await make(fake)
    async with http:
        reply = await http.put(
            URL,
            params={"path": "/etc/x", "uid": "12", "mode": "600"},
            headers={**auth.headers("operator"), "X-File-Uid": "99", "X-File-Gid": "13"},
            content=b"hello",
        )
    assert reply.status_code == 201, reply.text
    post = next(r for r in fake.requests if r.method == "POST")
    assert post.headers["content-type"] == "application/octet-stream"
    assert (post.headers["x-lxd-type"], post.headers["x-lxd-write"]) == ("file", "overwrite")
    assert [post.headers[f"x-lxd-{k}"] for k in ("uid", "gid", "mode")] == ["12", "13", "0600"]
    assert fake.bodies["/etc/x"] == b"hello"


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"mode": "999"}, {}),
        ({"mode": "07777"}, {}),
        ({"uid": "-1"}, {}),
        ({"gid": str(2**32)}, {}),
        ({}, {"X-File-Mode": "rwx"}),
        ({}, {"X-File-Uid": "abc"}),
    ],
)
async def test_bad_owner_or_mode_is_422(
    make: Any, params: dict[str, str], headers: dict[str, str]
) -> None:
    fake = FakeFiles()
    _, http, auth = await make(fake)
    async with http:
        reply = await http.put(
            URL,
            params={"path": "/etc/x", **params},
            headers={**auth.headers(), **headers},
            content=b"x",
        )
    assert reply.status_code == 422, reply.text
    assert not any(r.method == "POST" for r in fake.requests)


async def test_mkdir_makes_each_missing_parent_top_down(make: Any) -> None:
    fake = FakeFiles()
    _, http, auth = await make(fake)
    async with http:
        reply = await http.put(
            URL,
            params={"path": "/etc/a/b/c", "mkdir": "true", "gid": "3"},
            headers=auth.headers(),
            content=b"x",
        )
    assert reply.status_code == 201, reply.text
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [(r.url.params["path"], r.headers["x-lxd-type"]) for r in posts] == [
        ("/etc/a", "directory"),
        ("/etc/a/b", "directory"),
        ("/etc/a/b/c", "file"),
    ]
    assert posts[0].headers["x-lxd-mode"] == "0755"
    assert posts[0].headers["x-lxd-gid"] == "3"


@pytest.mark.parametrize(
    ("status", "message", "expected", "code"),
    [
        (500, 'sftp: "remove /etc: directory not empty" (SSH_FX_FAILURE)', 409, "conflict"),
        (500, 'sftp: "open /etc/x: is a directory" (SSH_FX_FAILURE)', 409, "conflict"),
        (500, "sftp: something else entirely", 502, "lxd_error"),
        (404, "Instance not found", 404, "not_found"),
        (403, "not authorized", 403, "lxd_forbidden"),
    ],
)
async def test_lxd_refusals_of_a_delete(
    make: Any, status: int, message: str, expected: int, code: str
) -> None:
    _, http, auth = await make(lambda request: error(status, message))
    async with http:
        reply = await http.delete(URL, params={"path": "/etc"}, headers=auth.headers())
    assert (reply.status_code, reply.json()["code"]) == (expected, code), reply.text
    assert "sftp" not in reply.json()["detail"] or expected == 502


async def test_root_is_not_deleted_nor_written(make: Any) -> None:
    fake = FakeFiles()
    _, http, auth = await make(fake)
    async with http:
        assert (
            await http.delete(URL, params={"path": "/"}, headers=auth.headers())
        ).status_code == 409
        assert (
            await http.put(URL, params={"path": "/"}, headers=auth.headers(), content=b"")
        ).status_code == 409
    assert fake.requests == []


LISTING = b'{"type": "sync", "metadata": [1, 2]}'


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({**meta(), "X-LXD-Mode": "rw-"}, b"x"),
        ({**meta(), "X-LXD-Uid": "x"}, b"x"),
        ({**meta(), "X-LXD-Type": "fifo"}, b"x"),
        (meta("directory"), LISTING),  # names that are not strings
        (meta("directory"), b"not json"),
    ],
)
async def test_unreadable_answers_are_a_bad_gateway(
    make: Any, headers: dict[str, str], body: bytes
) -> None:
    _, http, auth = await make(
        lambda request: httpx.Response(200, stream=Body(body), headers=headers)
    )
    async with http:
        reply = await http.get(URL, params={"path": "/etc/x"}, headers=auth.headers("viewer"))
    assert reply.status_code == 502
    assert reply.json()["code"] == "lxd_bad_reply"


class Endless(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 1
            await asyncio.sleep(0)
            yield b"x" * 65536

    async def aclose(self) -> None:
        self.closed = True


def scope(method: str, query: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def test_a_download_closes_lxd_when_the_client_leaves(make: Any) -> None:
    stream = Endless()
    app, http, auth = await make(lambda request: httpx.Response(200, headers=meta(), stream=stream))
    gone = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) > 3:
            gone.set()
            raise OSError("client went away")

    with contextlib.suppress(Exception):
        await app(scope("GET", b"path=/big", auth.headers("viewer")), receive, send)
    await http.aclose()
    assert sent[0]["status"] == 200
    assert stream.closed
    assert stream.sent < 100


async def test_an_upload_cut_short_is_not_written(make: Any) -> None:
    fake = FakeFiles()
    app, http, auth = await make(fake)
    messages = [
        {"type": "http.request", "body": b"x" * 1000, "more_body": True},
        {"type": "http.request", "body": b"y" * 1000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = {**auth.headers("operator"), "Content-Length": "1000000"}
    await app(scope("PUT", b"path=/etc/cut", headers), receive, send)
    await http.aclose()
    assert sent[0]["status"] == 400
    assert b"upload_incomplete" in sent[1]["body"]
    assert "/etc/cut" not in fake.bodies  # the mock reads a body whole: it never got one


async def test_uploads_get_their_own_body_limit(
    make: Any, make_settings: Any, make_unit_app: Any
) -> None:
    fake = FakeFiles()
    _, http, auth = await make(fake)
    async with http:
        big = b"z" * (3 * 1024 * 1024)  # over MAX_BODY_BYTES (1 MiB)
        reply = await http.put(
            URL, params={"path": "/etc/big"}, headers=auth.headers(), content=big
        )
        assert reply.status_code == 201, reply.text
        assert fake.bodies["/etc/big"] == big
        other = await http.post("/api/v1/instances", headers=auth.headers(), content=big)
        assert other.status_code == 413
    small: FastAPI = await make_unit_app(
        make_settings(MAX_FILE_UPLOAD_BYTES=1000), lxd_handler=fake
    )
    small_auth = await auth_for(small)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=small), base_url="http://t"
    ) as h:
        reply = await h.put(
            URL, params={"path": "/etc/b2"}, headers=small_auth.headers(), content=b"q" * 1001
        )
    assert reply.status_code == 413
    assert reply.json()["code"] == "payload_too_large"


async def test_a_download_names_the_file_for_every_client(make: Any) -> None:
    fake = FakeFiles({"/": "directory", '/d/ñ "x".txt': "file"})
    _, http, auth = await make(fake)
    async with http:
        reply = await http.get(URL, params={"path": '/d/ñ "x".txt'}, headers=auth.headers("viewer"))
    assert reply.status_code == 200, reply.text
    assert reply.content == b"data"
    assert reply.headers["content-disposition"] == (
        "attachment; filename=\"_ _x_.txt\"; filename*=UTF-8''%C3%B1%20%22x%22.txt"
    )
    assert [reply.headers[f"x-file-{k}"] for k in ("type", "uid", "gid", "mode")] == [
        "file",
        "0",
        "0",
        "0644",
    ]
