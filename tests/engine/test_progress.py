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


def test_a_resumed_log_drops_the_rows_after_its_checkpoint(tmp_path):
    """A run that stopped at step 30 after checkpointing at 20: the resumed run's log holds
    steps 10, 20 and then its own 30, not the lost run's 30 as well."""
    path = tmp_path / "log.csv"
    log = CsvLog(path)
    for step in (10, 20, 30):
        log.write({field: "" for field in LOG_FIELDS} | {"step": step, "loss": "lost"})
    log.close()
    resumed = CsvLog(path, through_step=20)
    resumed.write({field: "" for field in LOG_FIELDS} | {"step": 30, "loss": "again"})
    resumed.close()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["step"], row["loss"]) for row in rows] == [
        ("10", "lost"),
        ("20", "lost"),
        ("30", "again"),
    ]
