"""Schemas of exec: the non-interactive request and result, and the WebSocket protocol's frames."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TERMINAL_SIZE = 10_000
MAX_ARGS = 4096

Command = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=65536)]],
    Field(min_length=1, max_length=MAX_ARGS, description="Program and its arguments"),
]
Environment = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^=\x00]+$")], str],
    Field(description="Extra environment variables (LXD adds PATH, HOME, USER, LANG)"),
]
UserId = Annotated[int, Field(ge=0, le=2**32 - 2, description="uid to run as (default 0)")]
GroupId = Annotated[int, Field(ge=0, le=2**32 - 2, description="gid to run as (default 0)")]
Cwd = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/[^\x00]*$")]
TerminalSize = Annotated[int, Field(ge=1, le=MAX_TERMINAL_SIZE)]


class OutputEncoding(StrEnum):
    text = "text"
    base64 = "base64"


class ExecRequest(BaseModel):
    """`POST /instances/{name}/exec`: run a command without a terminal."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"command": ["sh", "-c", "uname -a; id"], "wait": True},
                {
                    "command": ["cat", "/etc/hostname"],
                    "environment": {"LC_ALL": "C"},
                    "cwd": "/root",
                    "user": 0,
                    "wait": True,
                    "timeout": 30,
                    "output": "base64",
                },
            ]
        },
    )

    command: Command
    environment: Environment = Field(default_factory=dict)
    cwd: Cwd | None = Field(default=None, description="Working directory (absolute)")
    user: UserId | None = None
    group: GroupId | None = None
    wait: bool = Field(
        default=True,
        description="Wait and answer with the output (200); false: 202 + operation reference",
    )
    timeout: int = Field(
        default=60, ge=1, le=3600, description="With wait: seconds to wait for the command"
    )
    output: OutputEncoding = Field(
        default=OutputEncoding.text,
        description="`text`: UTF-8 decoded (bad bytes replaced); `base64`: byte-exact",
    )


class ExecResult(BaseModel):
    """What a waited non-interactive command gave."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "return_code": 0,
                    "stdout": "Linux web1 6.1.0 x86_64 GNU/Linux\n",
                    "stderr": "",
                    "output": "text",
                    "truncated": False,
                    "error": None,
                }
            ]
        }
    )

    return_code: int = Field(description="The command's exit status (128+N after signal N)")
    stdout: str
    stderr: str
    output: OutputEncoding = Field(description="How stdout and stderr are encoded")
    truncated: bool = Field(
        default=False, description="True when an output passed the size kept in a reply"
    )
    error: str | None = Field(
        default=None, description="LXD's reason when it could not run the command at all"
    )


# --- WebSocket protocol (`/instances/{name}/exec/ws`) ---------------------------------------
class ExecStart(BaseModel):
    """The first frame a client sends on the exec WebSocket (a JSON text frame)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"command": ["sh"], "interactive": True, "width": 80, "height": 24},
                {"command": ["sh", "-c", "cat; echo done >&2"], "interactive": False},
            ]
        },
    )

    command: Command
    interactive: bool = Field(
        default=True, description="A terminal (PTY); false: stdin/stdout/stderr apart"
    )
    width: TerminalSize = 80
    height: TerminalSize = 24
    environment: Environment = Field(default_factory=dict)
    cwd: Cwd | None = None
    user: UserId | None = None
    group: GroupId | None = None


class ResizeFrame(BaseModel):
    """`{"type": "resize", "width": 132, "height": 40}`: the terminal's new size."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["resize"]
    width: TerminalSize
    height: TerminalSize


class SignalFrame(BaseModel):
    """`{"type": "signal", "signal": 15}`: a signal for the command."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["signal"]
    signal: int = Field(ge=1, le=64)


class EofFrame(BaseModel):
    """`{"type": "eof"}`: no more stdin (a PTY gets Ctrl-D, a pipe is closed)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["eof"]


ControlFrame = Annotated[ResizeFrame | SignalFrame | EofFrame, Field(discriminator="type")]
