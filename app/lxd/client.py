"""The raw LXD REST client: transport, envelope, typed errors, streaming and websockets.

One `LXDClient` lives for the whole process (made in the lifespan, closed on shutdown). It talks
to LXD over its unix socket (local mode) or over HTTPS with a client certificate (remote mode)
and knows nothing of users, roles or our own routes.

Paths are always built by `lxd_path()` (`app.lxd.paths`) from validated, percent-encoded
segments, so no input can reach an LXD endpoint other than the one the caller named.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pydantic_core
import structlog
from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import InvalidStatus, WebSocketException

from app.core.config import ConnectionMode, Settings
from app.errors import LXDBadGateway, LXDTimeout, LXDUnavailable
from app.lxd.errors import error_from_lxd, reason, transport_errors
from app.lxd.operation import WRITE_WAIT, Operation
from app.lxd.stream import (
    Connector,
    LXDDownload,
    open_download,
    tls_connector,
    unix_connector,
)

log = structlog.get_logger(__name__)

STREAM_CHUNK_SIZE = 1024 * 1024
# The unix socket's send buffer (the kernel caps it at net.core.wmem_max): with 4 MiB instead
# of ~200 KiB, a streamed file upload to LXD costs half the CPU (`bench/files.py`).
UDS_SOCKET_OPTIONS = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)]
# What `stream()` yields: an httpx response (injected transports), else a raw download.
StreamedResponse = httpx.Response | LXDDownload


@dataclass(slots=True)
class LXDResponse:
    """One parsed LXD reply. An async reply started `operation` (its `metadata` is the
    operation as LXD first described it)."""

    type: str
    status_code: int
    metadata: Any
    operation_url: str = ""
    etag: str | None = None
    location: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    operation: Operation | None = None

    @property
    def is_async(self) -> bool:
        return self.type == "async"

    @property
    def operation_id(self) -> str:
        """The id of the operation an async reply started."""
        if isinstance(self.metadata, dict) and isinstance(self.metadata.get("id"), str):
            return str(self.metadata["id"])
        return self.operation_url.rstrip("/").rsplit("/", 1)[-1]

    async def wait(self, timeout: float = WRITE_WAIT, *, what: str | None = None) -> Any:
        """The reply's outcome: a sync reply's metadata at once; for an async one, the
        operation once it finished (`Operation.wait`: its failure raised, a timeout a 504)."""
        if self.operation is not None:
            return await self.operation.wait(timeout, what=what)
        return self.metadata

    def started(self) -> Operation:
        """The operation an async reply started (LXDBadGateway if LXD answered at once)."""
        if self.operation is None:
            raise LXDBadGateway("LXD answered at once where it starts an operation")
        return self.operation


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    if settings.LXD_TRUSTED_CA_PATH:
        ctx = ssl.create_default_context(cafile=settings.LXD_TRUSTED_CA_PATH)
        # LXD's certificate is self-signed and names the host, not the address we dial: trusting
        # exactly that certificate (pinning) is the check; the host name adds nothing to it.
        ctx.check_hostname = False
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(settings.LXD_CLIENT_CERT_PATH, settings.LXD_CLIENT_KEY_PATH)
    return ctx


def _query(
    project: str | None, target: str | None, params: Mapping[str, Any] | None
) -> dict[str, str]:
    query: dict[str, str] = {}
    if project:
        query["project"] = project
    if target:
        query["target"] = target
    for key, value in (params or {}).items():
        if value is None:
            continue
        query[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return query


class LXDClient:
    """Async client of the LXD REST API (`/1.0/...`)."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.mode = settings.LXD_CONNECTION_MODE
        self.timeout = settings.LXD_TIMEOUT
        self.socket_path = settings.LXD_SOCKET_PATH
        self.ssl_context: ssl.SSLContext | None = None
        timeout = httpx.Timeout(settings.LXD_TIMEOUT)
        # Downloads bypass httpx on the real transport (see `stream`); not with an injected one.
        self._download_connector: Connector | None = None
        self._host = "lxd"
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        if self.mode is ConnectionMode.remote:
            self.base_url = settings.LXD_REMOTE_URL.rstrip("/")
            self.ssl_context = _ssl_context(settings)
            if transport is None:
                url = urlsplit(self.base_url)
                host, port = url.hostname or "localhost", url.port or 8443
                self._host = f"{host}:{port}"
                self._download_connector = tls_connector(host, port, self.ssl_context)
            transport = transport or httpx.AsyncHTTPTransport(
                verify=self.ssl_context, limits=limits
            )
        else:
            self.base_url = "http://lxd"
            if transport is None:
                self._download_connector = unix_connector(self.socket_path)
            transport = transport or httpx.AsyncHTTPTransport(
                uds=self.socket_path, limits=limits, socket_options=UDS_SOCKET_OPTIONS
            )
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)
        # Told of every request: (method, path, LXD's status or None without an answer,
        # seconds). The app's metrics set it (app.metrics.APIMetrics.observe_lxd).
        self.observer: Callable[[str, str, int | None, float], None] | None = None
        if self.mode is ConnectionMode.remote and not settings.LXD_TRUSTED_CA_PATH:
            log.warning(
                "lxd.tls_verification_disabled",
                reason="LXD_TRUSTED_CA_PATH is empty: the LXD server's certificate is not checked",
            )

    async def close(self) -> None:
        await self._http.aclose()

    # --- plain requests ---------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        project: str | None = None,
        target: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> LXDResponse:
        """Send one request and return the parsed envelope; raise a typed error otherwise.
        `content` streams a body (an upload) as it is iterated, never held whole. `HEAD`
        answers the status and headers only (`metadata` None)."""
        query = _query(project, target, params)
        request_timeout = (
            httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT
        )
        began, status = time.perf_counter(), None
        try:
            with transport_errors(method, path):
                response = await self._http.request(
                    method,
                    path,
                    params=query,
                    json=json_body,
                    content=content,
                    headers=headers,
                    timeout=request_timeout,
                )
            status = response.status_code
        finally:
            self._observe(method, path, status, began)
        reply = self._parse(method, path, response)
        if reply.is_async:
            reply.operation = Operation(self, reply.operation_id, reply.metadata)
        return reply

    def operation(self, operation_id: str) -> Operation:
        """An operation named by its id, to `get`, `wait` on or `cancel`."""
        return Operation(self, operation_id)

    def _observe(self, method: str, path: str, status: int | None, began: float) -> None:
        if self.observer is not None:
            self.observer(method, path, status, time.perf_counter() - began)

    async def get(self, path: str, **kwargs: Any) -> LXDResponse:
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> LXDResponse:
        return await self.request("HEAD", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> LXDResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> LXDResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> LXDResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> LXDResponse:
        return await self.request("DELETE", path, **kwargs)

    @staticmethod
    def _parse(method: str, path: str, response: httpx.Response) -> LXDResponse:
        if method == "HEAD":  # no body: the status and the headers are the whole answer
            if response.status_code >= 400:
                raise error_from_lxd(response.status_code, "")
            return LXDResponse("sync", response.status_code, None, headers=response.headers)
        try:
            # pydantic-core parses LXD's (often large) replies at twice the speed of `json`.
            body = pydantic_core.from_json(response.content)
        except ValueError as exc:
            if response.status_code >= 400:
                # Some LXD errors (e.g. a missing websocket upgrade) come as plain text.
                text = response.text.strip()[:500]
                raise error_from_lxd(response.status_code, text) from exc
            raise LXDBadGateway(f"LXD sent a reply that is not JSON for {method} {path}") from exc
        if not isinstance(body, dict) or "type" not in body:
            raise LXDBadGateway(f"LXD sent a reply without its envelope for {method} {path}")
        kind = body.get("type")
        if kind == "error" or response.status_code >= 400:
            status = body.get("error_code") or response.status_code
            message = body.get("error") or ""
            if not isinstance(status, int) or not isinstance(message, str):
                raise LXDBadGateway(f"LXD sent a malformed error for {method} {path}")
            raise error_from_lxd(status, message)
        if kind not in {"sync", "async"}:
            raise LXDBadGateway(f"LXD sent an unknown reply type {kind!r} for {method} {path}")
        operation = body.get("operation") or ""
        if kind == "async" and not (isinstance(operation, str) and operation):
            raise LXDBadGateway(f"LXD started an operation without naming it for {method} {path}")
        return LXDResponse(
            type=kind,
            status_code=response.status_code,
            metadata=body.get("metadata"),
            operation_url=operation,
            etag=response.headers.get("etag"),
            location=response.headers.get("location"),
            headers=response.headers,
        )

    async def get_list(
        self, path: str, *, project: str | None = None, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """GET a collection and return its items. Read through `stream()` and parsed by
        pydantic-core: for 50 instances that is half the CPU of `get()` (httpx's h11 body path),
        and on two cores shared with LXD every millisecond of ours is latency
        (`bench/list_overhead.py`)."""
        async with self.stream(path, project=project, params=params) as response:
            body = b"".join([chunk async for chunk in self.iter_bytes(response)])
            status = response.status_code
        reply = self._parse("GET", path, httpx.Response(status, content=body))
        if reply.type != "sync":
            raise LXDBadGateway(f"LXD sent a reply without its envelope for GET {path}")
        if not isinstance(reply.metadata, list | None):
            raise LXDBadGateway(f"LXD sent a list that is not a list for GET {path}")
        return reply.metadata or []

    # --- streamed downloads -----------------------------------------------------------------
    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        project: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        """GET `path` without reading the body; the caller iterates it with `iter_bytes()`.

        Errors are raised before the body is handed out; leaving the block closes the upstream
        stream, also when the caller stops early (a client went away). On the real transport
        the download gets a connection of its own, read in large reads (`lxd_stream`); an
        injected transport (tests) goes through httpx.
        """
        if self._download_connector is not None:
            async with self._raw_stream(path, project=project, params=params) as download:
                yield download
            return
        query = _query(project, None, params)
        request = self._http.build_request("GET", path, params=query)
        began, status = time.perf_counter(), None
        try:
            with transport_errors("GET", path):
                response = await self._http.send(request, stream=True)
            status = response.status_code
        finally:
            self._observe("GET", path, status, began)
        try:
            if response.status_code >= 400:
                await response.aread()
                self._parse("GET", path, response)
            yield response
        finally:
            await response.aclose()

    @asynccontextmanager
    async def _raw_stream(
        self, path: str, *, project: str | None, params: Mapping[str, Any] | None
    ) -> AsyncIterator[LXDDownload]:
        assert self._download_connector is not None
        query = urlencode(_query(project, None, params))
        target = f"{path}?{query}" if query else path
        began, status = time.perf_counter(), None
        try:
            download = await open_download(
                self._download_connector, host=self._host, target=target, timeout=self.timeout
            )
            status = download.status_code
        finally:
            self._observe("GET", path, status, began)
        try:
            if download.status_code >= 400:
                body = await download.read_error_body(self.timeout)
                reply = httpx.Response(download.status_code, headers=download.headers, content=body)
                self._parse("GET", path, reply)
            yield download
        finally:
            await download.aclose()

    async def iter_bytes(self, response: StreamedResponse) -> AsyncIterator[bytes]:
        """The body of a streamed response in large chunks, with transport errors typed."""
        if isinstance(response, LXDDownload):
            async for chunk in response.iter_raw(STREAM_CHUNK_SIZE, self.timeout):
                yield chunk
            return
        with transport_errors("GET", str(response.request.url.path), midway=True):
            async for chunk in response.aiter_raw(STREAM_CHUNK_SIZE):
                yield chunk

    # --- websockets -------------------------------------------------------------------------
    async def websocket(
        self, path: str, *, params: Mapping[str, Any] | None = None
    ) -> ClientConnection:
        """Open a websocket to LXD over the same transport (socket or mTLS) as the client.

        Pings are off: LXD pings us, and client pings made LXD close with 1011.
        """
        query = urlencode(_query(None, None, params))
        suffix = f"{path}?{query}" if query else path
        options: dict[str, Any] = {
            "ping_interval": None,
            "max_size": None,
            "compression": None,
            "open_timeout": self.timeout,
            "close_timeout": 2,
        }
        try:
            if self.mode is ConnectionMode.remote:
                ws_base = "wss://" + self.base_url.removeprefix("https://")
                return await connect(ws_base + suffix, ssl=self.ssl_context, **options)
            return await unix_connect(self.socket_path, "ws://lxd" + suffix, **options)
        except TimeoutError as exc:
            raise LXDTimeout("LXD did not accept the websocket in time") from exc
        except OSError as exc:
            raise LXDUnavailable(f"LXD is unreachable: {reason(exc)}") from exc
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise error_from_lxd(status, f"LXD refused the websocket (HTTP {status})") from exc
        except WebSocketException as exc:
            # The message could quote the URL, and with it a websocket secret: name the kind only.
            raise LXDBadGateway(f"LXD websocket handshake failed ({type(exc).__name__})") from exc
