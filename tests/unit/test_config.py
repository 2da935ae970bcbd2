"""Settings: defaults, TOML, environment precedence, several Asterisk servers, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config import ConfigError, load_settings, per_queue


def test_defaults_need_nothing() -> None:
    s = load_settings(env={})
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/test"
    assert [a.name for a in s.asterisk] == ["pbx1"]
    assert s.mask_numbers is True
    assert per_queue(s.service_level_seconds, "genel") == 20.0


def test_toml_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "cc.toml"
    path.write_text(
        'http_port = 9000\nlog_format = "json"\nwrapup_seconds = { genel = 5, "*" = 3 }\n'
        '[[asterisk]]\nname = "a"\nhost = "10.0.0.1"\nsecret = "s1"\n'
        '[[asterisk]]\nname = "b"\nhost = "10.0.0.2"\nport = 5039\n',
        encoding="utf-8",
    )
    s = load_settings(
        str(path), env={"CALLCENTER_HTTP_PORT": "9100", "DATABASE_URL": "postgresql://x/y"}
    )
    assert s.http_port == 9100  # the environment wins over the file
    assert s.log_format == "json"
    assert s.database_url == "postgresql://x/y"
    assert [(a.name, a.host, a.port) for a in s.asterisk] == [
        ("a", "10.0.0.1", 5038),
        ("b", "10.0.0.2", 5039),
    ]
    assert per_queue(s.wrapup_seconds, "genel") == 5.0
    assert per_queue(s.wrapup_seconds, "other") == 3.0


def test_several_servers_from_one_variable() -> None:
    s = load_settings(env={"CALLCENTER_AMI_SERVERS": "p1=cc:pw1@10.0.0.1:5038,p2=cc:pw2@10.0.0.2"})
    assert [(a.name, a.username, a.secret, a.port) for a in s.asterisk] == [
        ("p1", "cc", "pw1", 5038),
        ("p2", "cc", "pw2", 5038),
    ]


def test_secret_from_a_file_and_never_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("topsecret\n", encoding="utf-8")
    s = load_settings(env={"CALLCENTER_AMI_SECRET_FILE": str(secret)})
    assert s.asterisk[0].secret == "topsecret"
    assert "topsecret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"CALLCENTER_HTTP_PORT": "eighty"}, "CALLCENTER_HTTP_PORT"),
        ({"CALLCENTER_MASK_NUMBERS": "maybe"}, "CALLCENTER_MASK_NUMBERS"),
        ({"CALLCENTER_LOG_FORMAT": "xml"}, "log_format"),
        ({"CALLCENTER_AMI_SERVERS": "nonsense"}, "CALLCENTER_AMI_SERVERS"),
        ({"CALLCENTER_CONFIG": "/nonexistent.toml"}, "/nonexistent.toml"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_settings(env=env)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cc.toml"
    path.write_text("http_prot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="http_prot"):
        load_settings(str(path), env={})
