"""LXD paths and names: `lxd_path()` builds a path from checked, percent-encoded segments;
`name_from_url()` reads a name back from one of LXD's URLs."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from app.errors import InvalidNameError

# The root of LXD's REST API; every path `lxd_path()` builds starts here.
LXD_API_ROOT = "/1.0"
# Characters that never belong to one LXD path segment: separators, query/fragment markers,
# percent (no double encoding games), backslash and control characters.
_FORBIDDEN_IN_SEGMENT = re.compile(r"[/?#%\\\x00-\x1f\x7f]")
MAX_SEGMENT_LENGTH = 255


def check_segment(value: str, *, what: str = "name") -> str:
    """Refuse a value that could leave its path segment; return it unchanged otherwise."""
    if not value or value in {".", ".."} or len(value) > MAX_SEGMENT_LENGTH:
        raise InvalidNameError(f"Invalid {what}: {value[:80]!r}")
    if _FORBIDDEN_IN_SEGMENT.search(value):
        raise InvalidNameError(f"Invalid {what}: {value[:80]!r} contains a forbidden character")
    return value


def lxd_path(*segments: str) -> str:
    """`lxd_path("instances", name, "state")` -> `/1.0/instances/<name>/state`, each segment
    checked and percent-encoded."""
    return LXD_API_ROOT + "".join("/" + quote(check_segment(s), safe="") for s in segments)


def name_from_url(url: str) -> str:
    """`/1.0/instances/web%201?project=p` -> `web 1` (LXD's names-only list entries)."""
    return unquote(url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
