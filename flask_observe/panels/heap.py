"""Memory measurements behind the Memory panel, in three cost tiers.

1. :func:`sample` and :class:`Tier1`: process RSS (Pympler's process memory info), GC
   counts and collections, tracemalloc figures; a fraction of a millisecond.
2. :func:`summarize_heap` and :func:`diff_rows`: an object summary (Pympler's
   ``summary``) of the whole heap, taken in chunks under a deadline, so a heap diff
   around a view can stop when its time budget is spent. Only summary rows are kept.
3. :func:`asizeof_rows`: ``asizeof`` of chosen objects, for the on-demand pages.

Pympler is imported when a function needs it, never at import time.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import tracemalloc
import types
from time import perf_counter

#: Objects summarised between two deadline checks.
CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class Sample:
    """Process memory figures at one instant."""

    #: Resident set size in bytes (0 when the platform does not tell).
    rss: int
    #: Collections run so far, per GC generation.
    collections: tuple[int, ...]
    #: Allocations minus deallocations per generation (``gc.get_count()``).
    counts: tuple[int, ...]
    #: tracemalloc ``(current, peak)`` in bytes, ``None`` when not tracing.
    traced: tuple[int, int] | None


def sample() -> Sample:
    """Take a :class:`Sample` (about 0.1-0.2 ms: two ``/proc`` reads)."""
    from pympler.process import ProcessMemoryInfo

    info = ProcessMemoryInfo()
    collections = tuple(generation["collections"] for generation in gc.get_stats())
    traced = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else None
    return Sample(int(info.rss), collections, tuple(gc.get_count()), traced)


@dataclasses.dataclass(frozen=True)
class Tier1:
    """Tier 1 of the Memory panel: what the process did around the view.

    :param before: the sample taken just before the view.
    :param after: the sample taken just after it.
    :param cost: seconds spent taking both samples.
    """

    before: Sample
    after: Sample
    cost: float

    @property
    def rss_delta(self) -> int:
        """RSS growth during the view, in bytes."""
        return self.after.rss - self.before.rss

    @property
    def collections(self) -> tuple[int, ...]:
        """Garbage collections run during the view, per generation."""
        pairs = zip(self.after.collections, self.before.collections, strict=True)
        return tuple(after - before for after, before in pairs)


@dataclasses.dataclass(frozen=True)
class HeapSummary:
    """A summary of the heap: per type, how many objects and their ``getsizeof`` bytes.

    :param rows: type name to ``(count, size)``.
    :param objects: objects summarised.
    :param complete: ``False`` when the deadline stopped the walk early.
    :param seconds: time the summary took.
    """

    rows: dict[str, tuple[int, int]]
    objects: int
    complete: bool
    seconds: float

    @property
    def total_size(self) -> int:
        """Bytes of all the objects summarised (shallow sizes)."""
        return sum(size for _, size in self.rows.values())

    def top(self, limit: int = 30) -> list[tuple[str, int, int]]:
        """The *limit* types holding the most bytes, as ``(type, count, size)``."""
        ordered = sorted(self.rows.items(), key=lambda item: item[1][1], reverse=True)
        return [(name, count, size) for name, (count, size) in ordered[:limit]]


def _ids_of(summary: HeapSummary | None) -> set[int]:
    """Ids of the objects a summary is made of, so the next walk leaves them out."""
    if summary is None:
        return set()
    ids = {id(summary), id(summary.rows)}
    for key, value in summary.rows.items():
        ids.add(id(key))
        ids.add(id(value))
    return ids


def type_name(cls: type) -> str:
    """``module.QualName`` of a type, as the heap tables show it (builtins unqualified).

    :param cls: the type.
    """
    module = getattr(cls, "__module__", None)
    name = str(getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?"))
    return name if module in (None, "builtins") else f"{module}.{name}"


#: The package whose objects the heap summaries leave out: the panels' own samples,
#: records and timers are not the app's memory.
OWN_PACKAGE = "flask_observe"


def is_own_type(cls: type) -> bool:
    """Whether *cls* belongs to Flask-Observe (its module is ``flask_observe`` or below).

    :param cls: a type found on the heap.

    .. versionadded:: 0.3.0
    """
    module = getattr(cls, "__module__", None)
    return isinstance(module, str) and (
        module == OWN_PACKAGE or module.startswith(OWN_PACKAGE + ".")
    )


def summarize_heap(deadline: float | None = None, ignore: HeapSummary | None = None) -> HeapSummary:
    """Summarise every live object by type: count and ``sys.getsizeof`` bytes.

    Walks the heap the way Pympler's ``muppy.get_objects`` does (a ``gc.collect()``,
    the GC-tracked objects, then the untracked objects they refer to, such as strings
    and numbers, each once) and counts like ``summary.summarize``, keyed by the type
    object rather than a formatted string, which makes it several times faster. The
    walk goes in chunks of :data:`CHUNK` objects and stops at *deadline*: the result
    then says ``complete=False``. Flask-Observe's own objects (:func:`is_own_type`) are
    left out, so the diff around a view shows the app's growth, not the panels'
    samples and the request's record.

    :param deadline: a :func:`time.perf_counter` value, or ``None`` for no limit.
    :param ignore: an earlier summary whose own objects are not counted.
    """
    start = perf_counter()
    gc.collect()
    containers = gc.get_objects()
    skip = _ids_of(ignore)
    skip.add(id(containers))
    skip.add(id(skip))
    seen: set[int] = set()
    skip.add(id(seen))
    by_type: dict[type, list[int]] = {}
    skip.add(id(by_type))
    done = 0
    complete = True
    frame_type = types.FrameType
    get_referents = gc.get_referents
    is_tracked = gc.is_tracked
    getsizeof = sys.getsizeof
    own = [0, 0]  # the row of Flask-Observe's own types: not counted
    for offset in range(0, len(containers), CHUNK):
        if deadline is not None and perf_counter() > deadline:
            complete = False
            break
        for obj in containers[offset : offset + CHUNK]:
            cls = type(obj)
            if cls is frame_type or id(obj) in skip:
                continue
            row = by_type.get(cls)
            if row is None:
                row = by_type[cls] = own if is_own_type(cls) else [0, 0]
            if row is own:  # nor the plain values only it holds
                continue
            row[0] += 1
            row[1] += getsizeof(obj, 0)
            done += 1
            for ref in get_referents(obj):
                if not is_tracked(ref):
                    key = id(ref)
                    if key not in seen:
                        seen.add(key)
                        cls = type(ref)
                        row = by_type.get(cls)
                        if row is None:
                            row = by_type[cls] = own if is_own_type(cls) else [0, 0]
                        row[0] += 1
                        row[1] += getsizeof(ref, 0)
                        done += 1
    del containers, seen
    rows: dict[str, tuple[int, int]] = {}
    for cls, (count, size) in by_type.items():
        if by_type[cls] is own:
            continue
        name = type_name(cls)
        if name in rows:  # two classes with one name (e.g. redefined in a test)
            count, size = count + rows[name][0], size + rows[name][1]
        rows[name] = (count, size)
    return HeapSummary(rows, done, complete, perf_counter() - start)


def pympler_summary(limit: int = 50) -> tuple[list[tuple[str, int, int]], int, float]:
    """Pympler's own full heap summary (``muppy.get_objects`` + ``summary.summarize``),
    unbounded: ``(top rows by size, objects, seconds)``.

    :param limit: how many rows to return.
    """
    from pympler import muppy
    from pympler import summary

    start = perf_counter()
    objects = muppy.get_objects()
    count = len(objects)
    rows = summary.summarize(objects)  # type: ignore[no-untyped-call]
    del objects
    rows.sort(key=lambda row: row[2], reverse=True)
    top = [(str(name), int(number), int(size)) for name, number, size in rows[:limit]]
    return top, count, perf_counter() - start


def diff_rows(
    before: HeapSummary, after: HeapSummary, limit: int = 20
) -> list[tuple[str, int, int]]:
    """The types that grew most between two summaries, as ``(type, +count, +size)``.

    Rows are ordered by size growth, then count growth; unchanged types are left out.

    :param before: the summary taken before the view.
    :param after: the summary taken after it.
    :param limit: how many rows to keep.
    """
    rows: list[tuple[str, int, int]] = []
    for name in before.rows.keys() | after.rows.keys():
        count_before, size_before = before.rows.get(name, (0, 0))
        count_after, size_after = after.rows.get(name, (0, 0))
        count, size = count_after - count_before, size_after - size_before
        if count or size:
            rows.append((name, count, size))
    rows.sort(key=lambda row: (row[2], row[1]), reverse=True)
    return rows[:limit]


@dataclasses.dataclass(frozen=True)
class Tier2:
    """Tier 2 of the Memory panel: the heap diff around the view.

    :param rows: ``(type, count growth, size growth)``, biggest growth first.
    :param budget: the time budget in seconds.
    :param seconds: time spent on both summaries.
    :param complete: ``False`` when the budget cut the diff short (then *rows* is empty).
    :param objects: objects summarised before and after the view.
    """

    rows: list[tuple[str, int, int]]
    budget: float
    seconds: float
    complete: bool
    objects: tuple[int, int]


def heap_before(budget: float) -> HeapSummary:
    """The summary taken before the view: it may use half of *budget*.

    :param budget: seconds for both summaries of the diff.
    """
    return summarize_heap(perf_counter() + budget / 2.0)


def heap_after(budget: float, before: HeapSummary) -> Tier2:
    """Finish the heap diff after the view, within what *before* left of *budget*.

    The view's own time does not count. When a summary ran out of time the diff is
    dropped (a partial summary would show growth that is not there).

    :param budget: seconds for both summaries.
    :param before: the summary from :func:`heap_before`.
    """
    if not before.complete:
        return Tier2([], budget, before.seconds, False, (before.objects, 0))
    after = summarize_heap(perf_counter() + max(budget - before.seconds, 0.0), ignore=before)
    seconds = before.seconds + after.seconds
    rows = diff_rows(before, after) if after.complete else []
    return Tier2(rows, budget, seconds, after.complete, (before.objects, after.objects))


def asizeof_rows(objects: dict[str, object]) -> list[tuple[str, int, float]]:
    """``asizeof`` each named object: ``(name, deep size in bytes, seconds taken)``.

    :param objects: what to size, by display name.
    """
    from pympler import asizeof

    rows: list[tuple[str, int, float]] = []
    for name, obj in objects.items():
        start = perf_counter()
        try:
            size = int(asizeof.asizeof(obj))  # type: ignore[no-untyped-call]
        except Exception:
            size = -1
        rows.append((name, size, perf_counter() - start))
    return rows
