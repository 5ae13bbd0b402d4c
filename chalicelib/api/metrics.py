"""`GET /metrics`: the pipeline's numbers in Prometheus text format, read from Postgres.

Lambdas keep no counters between invocations, so the figures come from the
records the pipeline already keeps: videos by status, executions by status,
and every stage attempt in `stage_runs` (durations as a histogram, failures
by stage). Any API instance answers the same, and a restart loses nothing.
The same events also reach CloudWatch as EMF metrics (chalicelib.observability);
this endpoint is for Prometheus-style scraping of the local stack or a
deployment, by platform admins only (it shows the whole platform's activity).

prometheus_client renders the exposition (escaping, histogram layout) and is
imported on the first request, never at API import.
"""
from __future__ import annotations

from typing import Any, Iterator

from chalicelib import db
from chalicelib.auth.users import require_platform_admin

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Stage durations span sub-second (finalize) to many minutes (transcode of a long clip).
BUCKETS_S = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)

_FINISHED_RUNS = ("SELECT stage, extract(epoch FROM finished_at - started_at)::float8 AS s"
                  " FROM stage_runs WHERE finished_at IS NOT NULL AND NOT resumed")


class PipelineCollector:
    """A prometheus_client collector whose samples are read from Postgres at each scrape."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield _by_status(GaugeMetricFamily("clipstream_videos", "Videos by processing status.",
                                           labels=["status"]), "videos WHERE deleted_at IS NULL")
        yield _by_status(CounterMetricFamily("clipstream_uploads", "Uploads that started processing, by outcome.",
                                             labels=["status"]), "pipeline_executions")

        runs = CounterMetricFamily("clipstream_stage_runs", "Stage attempts by stage and outcome.",
                                   labels=["stage", "status"])
        failures = CounterMetricFamily("clipstream_stage_failures", "Failed stage attempts by stage.",
                                       labels=["stage"])
        for row in db.fetch_all("SELECT stage, status, count(*) AS n FROM stage_runs WHERE NOT resumed"
                                " GROUP BY stage, status ORDER BY stage, status"):
            runs.add_metric([row["stage"], row["status"]], row["n"])
            if row["status"] == "failed":
                failures.add_metric([row["stage"]], row["n"])
        yield runs
        yield failures
        yield self._durations()

    @staticmethod
    def _durations() -> Any:
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        hist = HistogramMetricFamily("clipstream_stage_duration_seconds",
                                     "Duration of finished stage attempts.", labels=["stage"])
        totals = {r["stage"]: r for r in db.fetch_all(
            f"SELECT stage, count(*) AS n, coalesce(sum(s), 0) AS total FROM ({_FINISHED_RUNS}) r"
            " GROUP BY stage ORDER BY stage")}
        buckets: dict[str, list[tuple[str, float]]] = {stage: [] for stage in totals}
        for row in db.fetch_all(
                f"SELECT r.stage, b.le, count(*) FILTER (WHERE r.s <= b.le) AS n FROM ({_FINISHED_RUNS}) r"
                " CROSS JOIN unnest(%s::float8[]) AS b(le) GROUP BY r.stage, b.le ORDER BY r.stage, b.le",
                (list(BUCKETS_S),)):
            buckets[row["stage"]].append((floatToGoString(row["le"]), row["n"]))
        for stage, total in totals.items():
            hist.add_metric([stage], buckets[stage] + [("+Inf", total["n"])], sum_value=total["total"])
        return hist


def _by_status(family: Any, rows: str) -> Any:
    """One sample per status of the rows (a table name and optional WHERE, never user input)."""
    for row in db.fetch_all(f"SELECT status, count(*) AS n FROM {rows} GROUP BY status ORDER BY status"):
        family.add_metric([row["status"]], row["n"])
    return family


def exposition(user: dict) -> str:
    """The current figures in Prometheus text exposition format 0.0.4 (platform admins)."""
    require_platform_admin(user)
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector())
    return generate_latest(registry).decode()
