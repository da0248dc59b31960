"""Exec: a command with recorded output (`POST .../exec`), and a live session over WebSocket.

A live session relays between a client (`Peer`, whatever socket the route has) and LXD's
websockets of one exec operation, with the terminal plumbing of `app.services.terminal`. It
ends when LXD's output reaches its empty-frame barrier (then the return code is read) or when
the client goes away (then LXD's control socket is closed, which kills the command).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.errors import LXDBadGateway, LXDError
from app.lxd import (
    FOREVER,
    STATUS_FAILURE,
    LXDClient,
    Operation,
    close_sockets,
    error_from_lxd,
    is_final,
    lxd_path,
)
from app.schemas.exec import EofFrame, ExecRequest, ExecStart, ResizeFrame
from app.services.operations import operation_ref
from app.services.terminal import (
    Peer,
    PeerGone,
    TerminalSession,
    error_frame,
    parse_control,
    relay_output,
    resize_message,
)

log = structlog.get_logger(__name__)

# A reply keeps at most this much of each recorded output (the rest is reported as truncated).
MAX_RECORDED_OUTPUT = 64 * 1024 * 1024
# After the output ended, how long LXD may take to report the return code.
EXIT_WAIT = 30.0
# A killed command still reports; bound how long cleanup waits for it.
CLEANUP_WAIT = 10.0

_background: set[asyncio.Task[None]] = set()


# --- non-interactive, recorded output --------------------------------------------------------
def _exec_body(req: ExecRequest | ExecStart, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"command": req.command, "environment": req.environment, **extra}
    for key in ("cwd", "user", "group"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    return body


async def run_command(
    lxd: LXDClient, *, name: str, project: str, req: ExecRequest
) -> tuple[bool, dict[str, Any]]:
    """Run `req.command`. Returns `(True, result)` when waited and finished, else
    `(False, operation reference)`.

    Without `wait`, output is not recorded (LXD keeps only the return code, in the
    operation's `metadata.return`). With `wait`, LXD records it to files that are read and
    then deleted; if the timeout passes first, the files are deleted once the command ends.
    """
    body = _exec_body(
        req, interactive=False, **{"wait-for-websocket": False, "record-output": req.wait}
    )
    response = await lxd.post(lxd_path("instances", name, "exec"), project=project, json_body=body)
    started = response.started()
    if not req.wait:
        return False, operation_ref(started.id)
    # Not `started.wait()`: a failed command is a result to report, not an error to raise.
    operation = await started.get(wait=req.timeout)
    if not is_final(operation):
        _spawn(_delete_outputs_when_done(started, name=name, project=project))
        return False, operation_ref(started.id)
    return True, await _collect(lxd, name=name, project=project, operation=operation, req=req)


async def _collect(
    lxd: LXDClient, *, name: str, project: str, operation: dict[str, Any], req: ExecRequest
) -> dict[str, Any]:
    metadata = operation.get("metadata") or {}
    outputs = metadata.get("output") or {}
    return_code = metadata.get("return")
    try:
        stdout, cut_out = await _read_output(lxd, name, project, outputs.get("1"))
        stderr, cut_err = await _read_output(lxd, name, project, outputs.get("2"))
    finally:
        await _delete_outputs(lxd, name, project, outputs)
    if not isinstance(return_code, int):
        if operation.get("status_code") == STATUS_FAILURE:
            raise error_from_lxd(500, str(operation.get("err") or "The command failed"))
        raise LXDBadGateway("LXD finished the command without a return code")
    error = operation.get("err") or None
    if req.output == "base64":
        encode: Callable[[bytes], str] = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    else:
        encode = lambda b: b.decode("utf-8", errors="replace")  # noqa: E731
    return {
        "return_code": return_code,
        "stdout": encode(stdout),
        "stderr": encode(stderr),
        "output": req.output.value,
        "truncated": cut_out or cut_err,
        "error": error,
    }


def _output_path(name: str, url: Any) -> str:
    """The path of a recorded output file, rebuilt from the URL LXD gave (`logs/exec_<op>.stdout`
    on 5.0, `logs/exec-output/<file>` on 5.21+), refusing anything outside the instance's logs."""
    if not isinstance(url, str):
        raise LXDBadGateway("LXD named a recorded output in an unknown shape")
    parts = [unquote(p) for p in urlsplit(url).path.split("/")]
    if parts[:3] != ["", "1.0", "instances"] or len(parts) < 6 or parts[3:5] != [name, "logs"]:
        raise LXDBadGateway("LXD named a recorded output outside the instance's logs")
    return lxd_path("instances", name, "logs", *parts[5:])


async def _read_output(lxd: LXDClient, name: str, project: str, url: Any) -> tuple[bytes, bool]:
    if not url:
        return b"", False
    chunks: list[bytes] = []
    size = 0
    async with lxd.stream(_output_path(name, url), project=project) as response:
        async for chunk in lxd.iter_bytes(response):
            room = MAX_RECORDED_OUTPUT - size
            if len(chunk) > room:
                chunks.append(chunk[:room])
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks), False


async def _delete_outputs(lxd: LXDClient, name: str, project: str, outputs: Any) -> None:
    if not isinstance(outputs, dict):
        return
    for url in outputs.values():
        try:
            await lxd.delete(_output_path(name, url), project=project)
        except LXDError as exc:
            log.warning("exec.output_not_deleted", instance=name, detail=exc.detail)


async def _delete_outputs_when_done(started: Operation, *, name: str, project: str) -> None:
    try:
        operation = await started.get(wait=FOREVER)
        outputs = (operation.get("metadata") or {}).get("output")
        await _delete_outputs(started.lxd, name, project, outputs)
    except LXDError as exc:
        log.warning("exec.output_cleanup_failed", instance=name, detail=exc.detail)


def _spawn(coro: Awaitable[None]) -> None:
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


# --- live sessions over WebSocket ------------------------------------------------------------
async def open_exec(lxd: LXDClient, *, name: str, project: str, start: ExecStart) -> ExecSession:
    """Start the command and connect to its sockets (control first, within 5 s)."""
    body = _exec_body(
        start,
        interactive=start.interactive,
        width=start.width,
        height=start.height,
        **{"wait-for-websocket": True, "record-output": False},
    )
    response = await lxd.post(lxd_path("instances", name, "exec"), project=project, json_body=body)
    started = response.started()
    streams = ["0"] if start.interactive else ["0", "1", "2"]
    sockets = await started.websockets(["control", *streams])
    return ExecSession(lxd, started.id, sockets, interactive=start.interactive)


class ExecSession(TerminalSession):
    def __init__(
        self,
        lxd: LXDClient,
        operation_id: str,
        sockets: dict[str, ClientConnection],
        *,
        interactive: bool,
    ) -> None:
        super().__init__(lxd, operation_id, sockets)
        self.interactive = interactive
        self.stdin_open = True

    async def run(self, peer: Peer) -> int | None:
        """Relay until the command ends (its return code) or the client leaves (None)."""
        inbound = asyncio.create_task(self._inbound(peer))
        if self.interactive:
            outbound = [asyncio.create_task(relay_output(self.sockets["0"], peer.send_bytes))]
        else:
            outbound = [
                asyncio.create_task(relay_output(self.sockets[fd], _as_json(peer, kind)))
                for fd, kind in (("1", "stdout"), ("2", "stderr"))
            ]
        self.tasks.update([inbound, *outbound])
        try:
            pending: set[asyncio.Task[Any]] = {inbound, *outbound}
            while any(not t.done() for t in outbound):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:
                        if isinstance(task.exception(), PeerGone):
                            await self.kill()
                            return None
                        raise task.exception()  # type: ignore[misc]
                if inbound in done:
                    await self.kill()
                    return None
            # LXD's barrier was reached on every output: stdin must be closed for LXD to
            # finish the operation, then the return code is final.
            inbound.cancel()
            await close_sockets([self.sockets["0"]])
            operation = await self.lxd.operation(self.operation_id).get(wait=EXIT_WAIT)
            code = (operation.get("metadata") or {}).get("return")
            if not isinstance(code, int):
                raise error_from_lxd(500, str(operation.get("err") or "No return code from LXD"))
            return code
        finally:
            await self.close()

    async def _to_stdin(self, data: bytes | str) -> None:
        try:
            await self.sockets["0"].send(data)
        except ConnectionClosed:
            # The command is ending: its output barrier ends the session, not this.
            self.stdin_open = False

    async def _inbound(self, peer: Peer) -> None:
        while True:
            message = await peer.receive()
            if message is None:
                return
            if isinstance(message, bytes):
                if self.stdin_open:
                    await self._to_stdin(message)
                continue
            try:
                frame = parse_control(message)
            except ValueError as exc:
                await peer.send_text(error_frame(str(exc)))
                continue
            if isinstance(frame, ResizeFrame):
                await self.send_control(resize_message(frame.width, frame.height))
            elif isinstance(frame, EofFrame):
                if self.stdin_open:
                    # A PTY reads Ctrl-D as end of input; a pipe is closed by an empty text frame.
                    await self._to_stdin(b"\x04" if self.interactive else "")
                    self.stdin_open = self.stdin_open and self.interactive
            else:
                await self.send_control(json.dumps({"command": "signal", "signal": frame.signal}))


def _as_json(peer: Peer, kind: str) -> Callable[[bytes], Awaitable[None]]:
    # base64 never needs JSON escaping: the frame is built as a string, not through json.dumps.
    head = '{"type":"' + kind + '","data":"'

    async def send(data: bytes) -> None:
        await peer.send_text(head + base64.b64encode(data).decode("ascii") + '"}')

    return send
