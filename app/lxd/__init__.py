"""The LXD client package: what the services use to talk to LXD, and nothing else.

Read it like LXD's own Go client (`client/` in canonical/lxd): `client` is the transport and
the envelope, `paths` builds URLs, `errors` turns LXD's answers into typed errors, `operation`
is what every asynchronous write hands back, `websockets` and `downloads` are the two ways of
streaming. Services import from `app.lxd` only, never from its modules.
"""

from app.lxd.client import LXDClient, LXDResponse, StreamedResponse
from app.lxd.downloads import Download, open_download
from app.lxd.edits import WriteLost, edit_with_etag, is_conflict, one_edit_at_a_time
from app.lxd.errors import LXD_REQUEST_MISTAKES, error_from_lxd
from app.lxd.operation import (
    FOREVER,
    OPERATION_RETENTION_HINT,
    STATUS_FAILURE,
    WRITE_WAIT,
    Operation,
    is_final,
    public_operation,
    raise_if_failed,
)
from app.lxd.paths import LXD_API_ROOT, check_segment, lxd_path, name_from_url
from app.lxd.websockets import close_sockets

__all__ = [
    "FOREVER",
    "LXD_API_ROOT",
    "LXD_REQUEST_MISTAKES",
    "OPERATION_RETENTION_HINT",
    "STATUS_FAILURE",
    "WRITE_WAIT",
    "Download",
    "LXDClient",
    "LXDResponse",
    "Operation",
    "StreamedResponse",
    "WriteLost",
    "check_segment",
    "close_sockets",
    "edit_with_etag",
    "error_from_lxd",
    "is_conflict",
    "is_final",
    "lxd_path",
    "name_from_url",
    "one_edit_at_a_time",
    "open_download",
    "public_operation",
    "raise_if_failed",
]
