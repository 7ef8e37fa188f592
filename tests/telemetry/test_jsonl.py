"""The JSON-lines log reader: window edges, malformed lines, the line budget, and a large file
read without reading it whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.telemetry.errors import LogSourceError
from console.telemetry.logs import JsonlLogSource
from console.telemetry.times import format_ts

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def line(ts: float, message: str = "ok", level: str = "INFO", **extra: object) -> str:
    return json.dumps(
        {"ts": format_ts(ts), "level": level, "message": message, "service": "demo-service", "version": "v1",
         "pid": 7, **extra}
    )  # fmt: skip


def write_lines(path: Path, count: int, every_s: float, start: float = T0) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(
                line(start + i * every_s, f"GET /items/{i} 200", "ERROR" if i % 50 == 0 else "INFO") + "\n"
            )
    return path


def test_window_edges_are_inclusive_and_records_take_the_snapshot_shape(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "svc.log", 100, 1.0)  # one line a second
    result = JsonlLogSource(path).read(T0 + 10, T0 + 20)
    assert [r["ts"] for r in result.records] == [format_ts(T0 + s) for s in range(10, 21)]
    assert result.records[0] == {
        "ts": "2027-01-15T08:00:10Z",
        "level": "INFO",
        "message": "GET /items/10 200",
        "source": "demo-service@v1",
    }
    assert result.notes == [] and not result.cut and result.malformed == 0
    # without the end: [start, end)
    half_open = JsonlLogSource(path).read(T0 + 10, T0 + 20, include_end=False)
    assert half_open.records[-1]["ts"] == format_ts(T0 + 19)
    # before the first line, after the last line, and the whole file
    assert JsonlLogSource(path).read(T0 - 100, T0 - 1).records == []
    assert JsonlLogSource(path).read(T0 + 1000, T0 + 2000).records == []
    assert len(JsonlLogSource(path).read(T0 - 1, T0 + 1000).records) == 100
    assert JsonlLogSource(path, source="api-pod-1").read(T0, T0).records[0]["source"] == "api-pod-1"
    other = tmp_path / "other.log"
    other.write_text(json.dumps({"ts": T0, "level": "warning", "message": "disk 91% full"}) + "\n")
    assert JsonlLogSource(other).read(T0, T0).records == [
        {"ts": "2027-01-15T08:00:00Z", "level": "WARN", "message": "disk 91% full", "source": "other.log"}
    ]  # Unix-seconds ts, WARNING spelled WARN, no service field: the file's name as source


def test_malformed_lines_are_counted_skipped_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    rows = [
        line(T0 + 1),
        "not json at all",
        '{"ts": "2027-01-15T08:00:02Z", "level": "INFO"}',  # no message
        '{"ts": "yesterday", "level": "INFO", "message": "x"}',
        '["a list"]',
        "",  # blank lines are not malformed
        '{"ts": true, "message": "x"}',
        line(T0 + 3, "out of memory: cannot allocate", "error"),
        '{"ts": "2027-01-15T08:00:04Z", "message": {"structured": 1}}',  # no level, message not text
        "\x00\xff garbage",
        line(T0 + 5, "x" * 20_000),
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = JsonlLogSource(path).read(T0, T0 + 10)
    assert [r["ts"] for r in result.records] == [format_ts(T0 + s) for s in (1, 3, 4, 5)]
    assert result.records[1]["level"] == "ERROR"  # upper-cased
    assert result.records[2]["level"] == "INFO" and result.records[2]["message"] == '{"structured": 1}'
    assert len(result.records[3]["message"]) == 8000  # bounded
    assert result.malformed == 6
    offset = len(rows[0]) + 1
    assert result.notes == [f"logs: skipped 6 malformed lines in svc.log (first at byte {offset}: not JSON)"]


def test_the_line_budget_keeps_the_first_lines_and_says_so(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "svc.log", 1000, 0.01)
    result = JsonlLogSource(path, max_lines=100).read(T0, T0 + 100)
    assert len(result.records) == 100 and result.cut
    assert result.records[-1]["ts"] == format_ts(T0 + 0.99)
    assert result.notes == [
        "logs: cut at 100 lines from svc.log: lines after 2027-01-15T08:00:00.990Z "
        "in that window were left out"
    ]
    exact = JsonlLogSource(path, max_lines=1000).read(T0, T0 + 100)
    assert len(exact.records) == 1000 and not exact.cut  # exactly the budget is not a cut


def test_lines_slightly_out_of_order_are_still_found(tmp_path: Path) -> None:
    """Two processes appending to one file: a line may be written after a newer one."""
    path = tmp_path / "svc.log"
    order = [0, 1, 2, 4, 3, 5, 7, 6, 8, 9]
    path.write_text("".join(line(T0 + s, f"m{s}") + "\n" for s in order), encoding="utf-8")
    result = JsonlLogSource(path).read(T0 + 3, T0 + 6)
    assert [r["message"] for r in result.records] == ["m3", "m4", "m5", "m6"]  # sorted by time


def test_a_missing_or_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LogSourceError, match=r"^log file .*nope\.log does not exist$"):
        JsonlLogSource(tmp_path / "nope.log").read(T0, T0 + 1)
    with pytest.raises(LogSourceError, match="cannot be read"):
        JsonlLogSource(tmp_path).read(T0, T0 + 1)  # a directory


def test_a_large_file_is_not_read_whole(tmp_path: Path) -> None:
    """100k lines (~15 MB) over ~28 h: a 1-minute window at the end is found by bisection; the
    forward scan starts within 64 KB (plus the 5 s slack) of the window."""
    path = tmp_path / "big.log"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(100_000):
            fh.write(line(T0 + i, f"GET /items/{i} 200") + "\n")
            if i % 997 == 0:
                fh.write("{broken\n")  # malformed lines on the way: the bisection steps past them
    size = path.stat().st_size
    source = JsonlLogSource(path)
    start, end = T0 + 99_940, T0 + 99_999
    result = source.read(start, end)
    assert len(result.records) == 60
    assert result.records[0]["message"] == "GET /items/99940 200"
    assert result.records[-1]["message"] == "GET /items/99999 200"
    with path.open("rb") as fh:
        offset = source._seek_start(fh, size, start - source.slack_s)
        fh.seek(offset)
        scanned_to_window = 0
        for raw in fh:
            if b"/items/99940 " in raw:
                break
            scanned_to_window += len(raw)
    assert offset > size - 200_000
    assert scanned_to_window <= JsonlLogSource.LINEAR_BYTES + 20 * 200
    # a window in the middle, and one spanning a malformed line
    middle = source.read(T0 + 50_000, T0 + 50_009)
    assert middle.records[0]["message"] == "GET /items/50000 200" and len(middle.records) == 10
    spanning = source.read(T0 + 996, T0 + 998)
    assert len(spanning.records) == 3 and spanning.malformed == 1
