"""LXD request paths as endpoint templates, for metric labels: the names in a path are
replaced (`/1.0/instances/web1/snapshots/s1` -> `/1.0/instances/{name}/snapshots/{name}`), so
that a label never holds a name and the number of series stays bounded."""

from __future__ import annotations

import re
from functools import lru_cache

# A segment after one of these is a name (or a fingerprint, an operation id...).
COLLECTIONS = frozenset(
    {
        "instances",
        "snapshots",
        "backups",
        "logs",
        "storage-pools",
        "volumes",
        "networks",
        "projects",
        "profiles",
        "images",
        "aliases",
        "operations",
        "certificates",
        "warnings",
        "acls",
        "forwards",
        "load-balancers",
        "peers",
        "zones",
        "records",
        "members",
        "buckets",
        "keys",
    }
)
# Words that follow a collection without being a name.
SUBCOLLECTIONS = {"images": frozenset({"aliases"})}
VOLUME_TYPES = frozenset({"custom", "container", "virtual-machine", "image"})
# What may stay as it is elsewhere: an action or a fixed endpoint (`state`, `wait`, `metrics`).
_WORD = re.compile(r"^[a-z][a-z-]{0,31}$")
NAME = "{name}"


@lru_cache(maxsize=4096)
def lxd_endpoint(path: str) -> str:
    """The endpoint template of an LXD request path (no query string)."""
    segments = path.split("?", 1)[0].strip("/").split("/")
    if not segments or segments[0] != "1.0":
        return "other"
    out = ["", "1.0"]
    previous = ""
    for segment in segments[1:]:
        if previous in COLLECTIONS and segment not in SUBCOLLECTIONS.get(previous, ()):
            if previous == "volumes" and segment in VOLUME_TYPES:
                out.append(segment)
                previous = "volumes"  # the volume's name comes next
                continue
            out.append(NAME)
            previous = NAME
            continue
        out.append(segment if _WORD.match(segment) else NAME)
        previous = segment
    return "/".join(out) if len(out) > 2 else "/1.0"
