from __future__ import annotations

import csv
import math

from sepconv.engine.progress import LOG_FIELDS, CsvLog, format_duration


def test_format_duration_is_hours_minutes_seconds():
    assert format_duration(0) == "0:00:00"
    assert format_duration(3 * 3600 + 5 * 60 + 7.9) == "3:05:07"
    assert format_duration(math.inf) == "?"
    assert format_duration(math.nan) == "?"


def test_csv_log_writes_the_header_once_across_reopenings(tmp_path):
    path = tmp_path / "run" / "log.csv"
    for step in (1, 2):
        log = CsvLog(path)
        log.write({field: "" for field in LOG_FIELDS} | {"step": step})
        log.close()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["1", "2"]
