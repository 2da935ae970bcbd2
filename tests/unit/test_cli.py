"""The command line turns a configuration error into one clear line and exit status 2."""

from __future__ import annotations

import pytest

from callcenter.__main__ import main


@pytest.mark.parametrize("command", [["migrate"], ["run"], ["record", "--out", "x.jsonl"]])
def test_a_bad_setting_exits_2_with_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTER_HTTP_PORT", "eighty")
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "callcenter: setting 'CALLCENTER_HTTP_PORT': cannot use 'eighty' "
        "(invalid literal for int() with base 10: 'eighty')"
    ]
