"""LXD's own metrics (`GET /1.0/metrics`), cut down to what the caller may see.

LXD labels each instance's samples with its `project`; a sample without one is about the
server (Go runtime, uptime, warnings, operations) and is kept only for a caller who sees every
project. The text is parsed and written again by `prometheus-client`, so what goes out is
well-formed whatever was dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from app.errors import LXDBadGateway
from app.lxd import LXDClient, lxd_path

# LXD's metrics of a few thousand instances are a few MiB; more is not a reply to relay.
MAX_METRICS_BYTES = 64 * 1024 * 1024


async def read_metrics(lxd: LXDClient) -> str:
    """LXD's `/1.0/metrics` text (every project)."""
    body = bytearray()
    async with lxd.stream(lxd_path("metrics")) as response:
        async for chunk in lxd.iter_bytes(response):
            body += chunk
            if len(body) > MAX_METRICS_BYTES:
                raise LXDBadGateway(f"LXD's metrics are larger than {MAX_METRICS_BYTES} bytes")
    return body.decode("utf-8", "replace")


def visible_metrics(text: str, *, keep: Callable[[str], bool], server_wide: bool) -> bytes:
    """The samples of `text` whose `project` label passes `keep` (and, with `server_wide`,
    those without one), in the Prometheus text format. Families left empty are dropped."""
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError) as exc:
        raise LXDBadGateway("LXD sent metrics that do not parse") from exc
    kept: list[Metric] = []
    for family in families:
        out = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            project = sample.labels.get("project")
            if (server_wide if project is None else keep(project)) and sample.value is not None:
                out.samples.append(sample)
        if out.samples:
            kept.append(out)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(kept))
    return generate_latest(registry)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
