"""The floor for the benchmarks (not a benchmark: `make bench` skips it): a bare ASGI app that
passes one LXD GET through, with nothing of the API in between. No FastAPI, no middleware, no
auth, no parsing; the same server (uvicorn) and the same LXD reader (`app.lxd.stream`)
as the API.

`GET /<anything>?<query>` is answered with LXD's `GET /<anything>?<query>` on the unix socket in
`RELAY_LXD_SOCKET`, streamed, status and `Content-Length` as LXD sent them. What this costs over
asking LXD directly is what any Python relay costs on this machine; what the API costs over
this is the API's own share. Run by `ApiServer(..., app="_relay:app")`.
"""

from __future__ import annotations

import os
from typing import Any

from app.lxd.stream import open_download, unix_connector

CHUNK = 1024 * 1024


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/health/live":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    query = scope["query_string"].decode("latin-1")
    target = scope["path"] + (f"?{query}" if query else "")
    connector = unix_connector(os.environ["RELAY_LXD_SOCKET"])
    download = await open_download(connector, host="lxd", target=target, timeout=60)
    try:
        headers = [(b"content-type", download.headers.get("content-type", "").encode())]
        length = download.headers.get("content-length")
        if length is not None:
            headers.append((b"content-length", length.encode()))
        await send(
            {"type": "http.response.start", "status": download.status_code, "headers": headers}
        )
        async for chunk in download.iter_raw(CHUNK, 60):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await download.aclose()
