"""The poller steps every event source shares: filtering by FilterCriteria, after the metadata is added."""

from typing import Any

from ws_emulator.sources.poller import Poller


class ListPoller(Poller[dict[str, Any]]):
    """A poller over a list, tagging each record with its source as Lambda adds eventSource."""

    def __init__(self, raws: list[dict[str, Any]], patterns: list[dict[str, Any]]) -> None:
        self.raws = raws
        self.patterns = patterns

    @property
    def filters(self) -> list[dict[str, Any]]:
        return self.patterns

    async def poll_events(self) -> list[dict[str, Any]]:
        raws, self.raws = self.raws, []
        return raws

    def add_source_metadata(self, raw: dict[str, Any]) -> dict[str, Any]:
        return raw | {"eventSource": "aws:list"}


async def test_records_matching_no_pattern_are_dropped_in_order():
    # GIVEN a poller whose one pattern keeps kind "keep"
    poller = ListPoller(
        [{"kind": "keep", "n": 1}, {"kind": "drop"}, {"kind": "keep", "n": 2}], [{"kind": ["keep"]}]
    )
    # WHEN it polls, adds metadata and filters
    records = [poller.add_source_metadata(raw) for raw in await poller.poll_events()]
    kept, dropped = poller.filter_events(records)
    # THEN the matching records stay in order, with their metadata, and the other is dropped
    assert [r["n"] for r in kept] == [1, 2] and all(r["eventSource"] == "aws:list" for r in kept)
    assert dropped == [{"kind": "drop", "eventSource": "aws:list"}]


def test_patterns_see_the_record_with_its_metadata():
    # GIVEN a pattern on a field only the metadata step adds
    poller = ListPoller([], [{"eventSource": ["aws:list"]}])
    # WHEN a record with its metadata is filtered
    kept, dropped = poller.filter_events([poller.add_source_metadata({"x": 1})])
    # THEN it matches
    assert len(kept) == 1 and dropped == []


def test_without_patterns_every_record_passes():
    # GIVEN a mapping without FilterCriteria
    poller = ListPoller([], [])
    # WHEN records are filtered
    kept, dropped = poller.filter_events([{"a": 1}, {"b": 2}])
    # THEN all are kept
    assert kept == [{"a": 1}, {"b": 2}] and dropped == []
