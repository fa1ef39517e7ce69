"""Reports as JSON: a :class:`~flask_observe.panels.report.Snapshot` to plain JSON
values and back, for the JSON API and the SQLite store.

:func:`dump` gives the whole report (with the memory figures, the heap diff, the
profile's stacks and the timeline); :func:`load` rebuilds the same snapshot from it,
so a report read back from another process shows exactly what this one would.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import typing as t

from .heap import Sample
from .heap import Tier1
from .heap import Tier2
from .profiler.report import RequestProfile
from .profiler.sampler import Profile
from .report import Snapshot
from .sql_report import SqlGroupRow
from .sql_report import SqlReport
from .sql_report import SqlRow
from .timeline import Timeline

#: Version of the JSON layout, stored with each report.
FORMAT = 1

Json = dict[str, t.Any]


def _sample(sample: Sample) -> Json:
    return {
        "rss": sample.rss,
        "collections": list(sample.collections),
        "counts": list(sample.counts),
        "traced": list(sample.traced) if sample.traced is not None else None,
    }


def _load_sample(data: Json) -> Sample:
    traced = data["traced"]
    return Sample(
        int(data["rss"]),
        tuple(data["collections"]),
        tuple(data["counts"]),
        (int(traced[0]), int(traced[1])) if traced is not None else None,
    )


def _memory(tier1: Tier1) -> Json:
    return {
        "before": _sample(tier1.before),
        "after": _sample(tier1.after),
        "cost": tier1.cost,
        "rss_delta": tier1.rss_delta,
    }


def _heap(tier2: Tier2) -> Json:
    return {
        "rows": [list(row) for row in tier2.rows],
        "budget": tier2.budget,
        "seconds": tier2.seconds,
        "complete": tier2.complete,
        "objects": list(tier2.objects),
    }


def _load_heap(data: Json) -> Tier2:
    return Tier2(
        [(str(name), int(count), int(size)) for name, count, size in data["rows"]],
        float(data["budget"]),
        float(data["seconds"]),
        bool(data["complete"]),
        (int(data["objects"][0]), int(data["objects"][1])),
    )


def _profile(profile: RequestProfile) -> Json:
    return {
        "label": profile.label,
        "interval": profile.interval,
        "samples": profile.profile.samples,
        "duration": profile.profile.duration,
        "stacks": [
            [[list(frame) for frame in frames], seconds]
            for frames, seconds in profile.profile.stacks
        ],
    }


def _load_profile(data: Json) -> RequestProfile:
    stacks = tuple(
        (tuple((str(name), str(where), int(line)) for name, where, line in frames), float(seconds))
        for frames, seconds in data["stacks"]
    )
    return RequestProfile(
        str(data["label"]),
        Profile(stacks, int(data["samples"]), float(data["duration"])),
        float(data["interval"]),
    )


def _timeline(timeline: Timeline) -> Json:
    return {
        "final": timeline.final,
        "now": timeline.now,
        "view": list(timeline.view) if timeline.view is not None else None,
        "toolbar": timeline.toolbar,
        "headers": timeline.headers,
        "end": timeline.end,
        "timers": [list(timer) for timer in timeline.timers],
        "toolbar_seconds": timeline.toolbar_seconds,
    }


def _load_timeline(data: Json) -> Timeline:
    view = data["view"]
    return Timeline(
        final=bool(data["final"]),
        now=float(data["now"]),
        view=(float(view[0]), float(view[1])) if view is not None else None,
        toolbar=data["toolbar"],
        headers=data["headers"],
        end=data["end"],
        timers=tuple((str(name), start, float(seconds)) for name, start, seconds in data["timers"]),
    )


def _sql(report: SqlReport) -> Json:
    return {
        "count": report.count,
        "seconds": report.seconds,
        "slow": report.slow,
        "repeats": report.repeats,
        "groups": [
            {**group._asdict(), "call_sites": [list(site) for site in group.call_sites]}
            for group in report.groups
        ],
        "statements": [row._asdict() for row in report.statements],
    }


def _load_sql(data: Json) -> SqlReport:
    return SqlReport(
        count=int(data["count"]),
        seconds=float(data["seconds"]),
        slow=float(data["slow"]),
        repeats=int(data["repeats"]),
        groups=tuple(
            SqlGroupRow(
                **{
                    **group,
                    "call_sites": tuple((str(site), int(n)) for site, n in group["call_sites"]),
                }
            )
            for group in data["groups"]
        ),
        statements=tuple(SqlRow(**row) for row in data["statements"]),
    )


def dump(item: Snapshot) -> Json:
    """The whole report *item* as JSON values (times in seconds, sizes in bytes).

    :param item: a stored snapshot.
    """
    return {
        "format": FORMAT,
        "id": item.id,
        "at": item.at,
        "method": item.method,
        "path": item.path,
        "endpoint": item.endpoint,
        "status": item.status,
        "final": item.final,
        "total": item.total,
        "view": item.view,
        "timers": [
            {"name": name, "seconds": seconds, "metric": metric}
            for name, seconds, metric in item.timers
        ],
        "server_timing": item.server_timing,
        "metric_lines": list(item.metric_lines) if item.metric_lines is not None else None,
        "error": {"type": item.error[0], "message": item.error[1]} if item.error else None,
        "event_id": item.event_id,
        "memory": _memory(item.memory) if item.memory is not None else None,
        "heap": _heap(item.heap) if item.heap is not None else None,
        "profile": _profile(item.profile) if item.profile is not None else None,
        "timeline": _timeline(item.timeline) if item.timeline is not None else None,
        "sql": _sql(item.sql) if item.sql is not None else None,
    }


def load(data: Json) -> Snapshot:
    """The snapshot that :func:`dump` gave *data*.

    :param data: JSON values from :func:`dump`.
    :raises ValueError: *data* is of another format.
    """
    if data.get("format") != FORMAT:
        raise ValueError(f"not a Flask-Observe report of format {FORMAT}")
    memory = data["memory"]
    error = data["error"]
    lines = data["metric_lines"]
    return Snapshot(
        method=str(data["method"]),
        path=str(data["path"]),
        endpoint=data["endpoint"],
        status=int(data["status"]),
        final=bool(data["final"]),
        total=data["total"],
        view=data["view"],
        timers=tuple(
            (str(timer["name"]), float(timer["seconds"]), bool(timer["metric"]))
            for timer in data["timers"]
        ),
        server_timing=data["server_timing"],
        metric_lines=tuple(lines) if lines is not None else None,
        error=(str(error["type"]), str(error["message"])) if error else None,
        event_id=data["event_id"],
        memory=(
            Tier1(_load_sample(memory["before"]), _load_sample(memory["after"]), memory["cost"])
            if memory is not None
            else None
        ),
        heap=_load_heap(data["heap"]) if data["heap"] is not None else None,
        profile=_load_profile(data["profile"]) if data["profile"] is not None else None,
        id=str(data["id"]),
        timeline=_load_timeline(data["timeline"]) if data["timeline"] is not None else None,
        at=float(data["at"]),
        sql=_load_sql(data["sql"]) if data.get("sql") is not None else None,
    )
