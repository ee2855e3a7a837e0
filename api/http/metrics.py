"""Prometheus metrics, in a registry of the app's own (several apps may share a process)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

from api.bootstrap import Platform
from api.store.group_commit import GroupCommitter
from projections.runner import read_positions


@dataclass
class ProjectionState:
    name: str
    position: int
    lag: int


def log_head(platform: Platform) -> int:
    return int(platform.app.recorder.max_notification_id() or 0)


def projection_states(platform: Platform) -> tuple[int, list[ProjectionState]]:
    """The log head and, for each projection, its position and how far it trails."""
    head = log_head(platform)
    with platform.db.read() as cur:
        positions = read_positions(cur, [p.name for p in platform.runner.projections])
    return head, [
        ProjectionState(name, position, max(head - position, 0))
        for name, position in positions.items()
    ]


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.events_stored = Counter(
            "crm_events_stored",
            "Events stored through the HTTP API, by type",
            ["type"],
            registry=self.registry,
        )
        self.requests = Counter(
            "crm_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crm_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.log_head = Gauge(
            "crm_event_log_head", "Position of the newest event", registry=self.registry
        )
        self.projection_position = Gauge(
            "crm_projection_position",
            "Last event applied, by projection",
            ["projection"],
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "crm_projection_lag_events",
            "Events in the log not yet applied, by projection",
            ["projection"],
            registry=self.registry,
        )

    def observe_request(
        self, method: str, route: str, status: int, seconds: float
    ) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # `labels()` takes a lock and builds its key on every call: the
            # children are kept (as many as the metrics' own label sets).
            children = self._request_children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def refresh_projections(self, platform: Platform) -> None:
        head, states = projection_states(platform)
        self.log_head.set(head)
        for state in states:
            self.projection_position.labels(state.name).set(state.position)
            self.projection_lag.labels(state.name).set(state.lag)


class GroupCommitCounts:
    """This process's group commit, read at scrape time: groups saved, the posts
    they held and the groups that waited for company (`GroupCommitter`)."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer

    def collect(self) -> Iterator[Metric]:
        committer = self.committer
        yield CounterMetricFamily(
            "crm_group_commit_groups",
            "Groups of posts stored together (a lone post is a group of one)",
            value=committer.groups,
        )
        yield CounterMetricFamily(
            "crm_group_commit_requests",
            "Posts taken in those groups (their ratio to groups: the mean group)",
            value=committer.grouped_requests,
        )
        yield CounterMetricFamily(
            "crm_group_commit_waits",
            "Groups that waited for company before they were closed",
            value=committer.waits,
        )
