"""The API's own metrics, in the Prometheus text format (`prometheus-client`).

One `APIMetrics` per app (`app.state.metrics`, made by `create_app()`), with its own
`CollectorRegistry`: several apps in one process (tests) never share or clash. What it holds:

* `lxd_api_http_requests_total{method,route,status}` and
  `lxd_api_http_request_duration_seconds{method,route}`: every HTTP request, by the matched
  route's template (`/api/v1/instances/{name}`, never the name itself; `unmatched` for a path
  no route has), counted by `MetricsMiddleware` once the response was sent.
* `lxd_api_lxd_requests_total{method,endpoint,status}` and
  `lxd_api_lxd_request_duration_seconds{method,endpoint}`: the calls made to LXD through the
  client (time to LXD's response headers), by LXD endpoint template (`/1.0/instances/{name}`);
  `status` is LXD's HTTP status, or `error` when no answer came (timeout, connection).
* Read when scraped (`StateCollector`), from what the app holds: open WebSocket sessions by
  kind (`lxd_api_ws_sessions{kind="exec|console|events"}`), event-hub upstream connections
  and their subscribers, the audit appender's written, dropped and queued entries, the read
  model's stream, size, hits, misses and events.

`GET /metrics` (app.api.metrics) serves it, when METRICS_TOKEN is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from app.metrics.endpoints import lxd_endpoint
from app.metrics.middleware import MetricsMiddleware

__all__ = ["CONTENT_TYPE", "APIMetrics", "MetricsMiddleware", "lxd_endpoint"]

# Seconds: from a cached read (sub-millisecond) to a long LXD operation wait.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WS_KINDS = ("exec", "console", "events")
# The classic text format (0.0.4): what every Prometheus and agent reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class APIMetrics:
    """The app's metrics and their registry."""

    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "lxd_api_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "lxd_api_http_request_duration_seconds",
            "Time to answer an HTTP request (until its last body byte was sent).",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.lxd_requests = Counter(
            "lxd_api_lxd_requests",
            "Requests to LXD, by endpoint template and LXD's status (error: no answer).",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.lxd_seconds = Histogram(
            "lxd_api_lxd_request_duration_seconds",
            "Time until LXD's response headers arrived.",
            ["method", "endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StateCollector(app))

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def observe_lxd(self, method: str, path: str, status: int | None, seconds: float) -> None:
        """One LXD call: `path` is the request's path (templated here), `status` None when
        LXD gave no answer."""
        endpoint = lxd_endpoint(path)
        self.lxd_requests.labels(method, endpoint, str(status) if status else "error").inc()
        self.lxd_seconds.labels(method, endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Gauges and counters read from the app's state at scrape time (nothing to keep in step
    with the code that opens and closes sessions)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        state = self.app.state
        sessions = GaugeMetricFamily(
            "lxd_api_ws_sessions", "Open WebSocket sessions, by kind.", labels=["kind"]
        )
        registry = getattr(state, "ws_sessions", None)
        counts = registry.by_kind() if registry is not None else {}
        for kind in WS_KINDS:
            sessions.add_metric([kind], counts.get(kind, 0))
        yield sessions

        hub = getattr(state, "event_hub", None)
        upstreams = hub.state()["upstreams"] if hub is not None else []
        yield GaugeMetricFamily(
            "lxd_api_event_upstreams",
            "Event-stream connections to LXD held by the hub.",
            value=len(upstreams),
        )
        yield GaugeMetricFamily(
            "lxd_api_event_subscribers",
            "Event-stream subscribers (WebSocket clients) of the hub.",
            value=sum(up["subscribers"] for up in upstreams),
        )

        model = getattr(state, "read_model", None)
        if model is not None:
            figures = model.state()
            yield GaugeMetricFamily(
                "lxd_api_read_model_connected",
                "1 while the read model's LXD event stream is up.",
                value=1 if figures["connected"] else 0,
            )
            yield GaugeMetricFamily(
                "lxd_api_read_model_instances",
                "Instances held by the read model, all projects.",
                value=sum(figures["projects"].values()),
            )
            for name, help_text in (
                ("hits", "Reads the read model answered."),
                ("misses", "Reads sent to LXD because the model could not answer."),
                ("events", "LXD lifecycle events the read model received."),
            ):
                yield CounterMetricFamily(
                    f"lxd_api_read_model_{name}", help_text, value=figures[name]
                )

        audit = getattr(state, "audit_log", None)
        if audit is not None:
            yield CounterMetricFamily(
                "lxd_api_audit_entries_written",
                "Audit entries written to the user store.",
                value=audit.written,
            )
            yield CounterMetricFamily(
                "lxd_api_audit_entries_dropped",
                "Audit entries dropped because the queue was full (the store down for long).",
                value=audit.dropped,
            )
            yield GaugeMetricFamily(
                "lxd_api_audit_queue", "Audit entries waiting to be written.", value=audit.pending
            )
