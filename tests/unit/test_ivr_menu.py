"""The menu file: the packaged menu is valid, and every kind of error names its line."""

from __future__ import annotations

import pytest

from callcenter.categories import DEFAULT_CATEGORIES
from callcenter.ivr import prompts
from callcenter.ivr.menu import MenuError, load_menu, main, parse_menu, recording_list
from callcenter.ivr.tomlines import LineIndex

ROLES = "\n".join(f'{role} = "s/{role}"' for role in prompts.ROLES)
RECORDED = [f"s/{role}" for role in prompts.ROLES] + ["s/main", "s/sub"]


def menu_text(body: str, recorded: list[str] | None = None, extra_prompts: str = "") -> str:
    """A small valid menu file around ``body`` (the [menus.*] part), with its recordings."""
    lines = "\n".join(f'"{s}" = {{ tr = "metin", en = "text" }}' for s in recorded or RECORDED)
    return f"""[ivr]
start = "main"

[ivr.prompts]
{ROLES}

[queues]
genel = "Genel"
sosyal-yardim = "Sosyal"

{body}

[prompts]
{lines}
{extra_prompts}"""


GOOD = """[menus.main]
prompt = "s/main"

[menus.main.options]
1 = { menu = "sub" }
2 = { queue = "genel", label = "Bilgi" }

[menus.sub]
prompt = "s/sub"

[menus.sub.options]
1 = { queue = "sosyal-yardim" }
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line containing ``fragment``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the text")


def issues_of(text: str, **kwargs: object) -> list[tuple[int | None, str]]:
    with pytest.raises(MenuError) as caught:
        parse_menu(text, "menu.toml", **kwargs)  # type: ignore[arg-type]
    return caught.value.issues


def test_the_packaged_menu_is_valid_against_the_ticket_categories() -> None:
    menu = load_menu(known_categories=[c.code for c in DEFAULT_CATEGORIES])
    assert menu.default_language == "tr" and menu.languages == ("tr", "en")
    assert set(menu.menus) == {"main", "sosyal", "masa-sandalye", "sikayet", "diger"}
    assert {f.kind for f in menu.flows.values()} == {"request_status", "table_chair", "survey"}
    # Every service category of the mission is reachable from the menus.
    categories = {o.category for m in menu.menus.values() for o in m.options.values()}
    categories |= {f.category for f in menu.flows.values()}
    assert {
        "sosyal-yardim",
        "masa-sandalye",
        "cozum-ofisi",
        "depremzede",
        "sikayet-oneri",
        "cimer-acik-kapi",
        "ozel-gun",
        "muhtarlik",
        "bilgi-rehberlik",
    } <= categories


def test_the_recording_list_has_turkish_and_english_for_every_sound() -> None:
    menu = load_menu()
    recorded = dict(recording_list(menu))
    assert (
        "callcenter/mahalle-16" in recorded
        and "Sarıgazi" in recorded["callcenter/mahalle-16"]["tr"]
    )
    for texts in recorded.values():
        assert texts["tr"].strip() and texts["en"].strip()


def test_a_good_file_parses() -> None:
    menu = parse_menu(menu_text(GOOD))
    assert menu.menus["main"].options["2"].label == "Bilgi"
    assert menu.menus["sub"].options["1"].target == "sosyal-yardim"


def test_unknown_queue_names_the_option_line() -> None:
    text = menu_text(GOOD.replace('queue = "genel"', 'queue = "genl"'))
    [(line, message)] = issues_of(text)
    assert line == line_of(text, 'queue = "genl"')
    assert "unknown queue 'genl'" in message


def test_missing_menu_prompt_names_the_menu_table() -> None:
    text = menu_text(GOOD.replace('prompt = "s/sub"\n', ""), recorded=RECORDED[:-1])
    [(line, message)] = issues_of(text)
    assert line == line_of(text, "[menus.sub]")
    assert "missing prompt" in message


def test_prompt_without_recording_names_the_prompt_line() -> None:
    text = menu_text(GOOD, recorded=RECORDED[:-1])  # s/sub is not in [prompts]
    [(line, message)] = issues_of(text)
    assert line == line_of(text, 'prompt = "s/sub"')
    assert "'s/sub' is not in [prompts]" in message


def test_recording_without_english_names_its_line() -> None:
    text = menu_text(GOOD, extra_prompts='"s/extra" = { tr = "yalnız Türkçe" }\n')
    [(line, message)] = issues_of(text)
    assert line == line_of(text, '"s/extra"')
    assert "no en text" in message


def test_unreachable_menu_names_its_table() -> None:
    text = menu_text(GOOD.replace('1 = { menu = "sub" }\n', ""))
    [(line, message)] = issues_of(text)
    assert line == line_of(text, "[menus.sub]")
    assert "unreachable" in message


@pytest.mark.parametrize(
    ("key", "why"),
    [("0", "agent key"), ('"*"', "back key"), ('"#"', "end key"), ("12", "no key")],
)
def test_a_key_nobody_can_press_is_an_unreachable_option(key: str, why: str) -> None:
    text = menu_text(GOOD.replace("2 = {", f"{key} = {{"))
    [(line, message)] = issues_of(text)
    assert line == line_of(text, f'{key} = {{ queue = "genel"')
    assert "unreachable" in message and why in message


def test_unknown_targets_and_typos_name_their_lines() -> None:
    body = GOOD.replace('1 = { queue = "sosyal-yardim" }', '1 = { flow = "nope" }')
    body = body.replace('prompt = "s/main"', 'prompt = "s/main"\npromt = "x"')
    text = menu_text(body)
    issues = issues_of(text)
    assert (
        line_of(text, '1 = { flow = "nope" }'),
        "menu 'sub' option '1': unknown flow 'nope'",
    ) in (issues)
    assert (line_of(text, 'promt = "x"'), "unknown key 'promt' in menus.main") in issues


def test_every_problem_is_reported_in_line_order() -> None:
    body = GOOD.replace('queue = "genel"', 'queue = "x"').replace(
        'queue = "sosyal-yardim"', "x = 1"
    )
    text = menu_text(body)
    issues = issues_of(text)
    lines = [line or 0 for line, _ in issues]
    assert len(issues) >= 3 and lines == sorted(lines)
    assert str(MenuError("menu.toml", issues)).splitlines()[0].startswith(f"menu.toml:{lines[0]}:")


def test_toml_syntax_errors_keep_tomllib_line() -> None:
    text = menu_text(GOOD.replace('label = "Bilgi" }', 'label = "Bilgi"'))
    [(line, message)] = issues_of(text)
    assert line == line_of(text, 'label = "Bilgi"')
    assert "not valid TOML" in message


def test_queues_must_exist_in_asterisk_when_known() -> None:
    text = menu_text(GOOD)
    [(line, message)] = issues_of(text, known_queues={"genel"})
    assert line == line_of(text, "sosyal-yardim = ")
    assert "not configured in Asterisk" in message


def test_categories_must_be_ticket_categories_when_known() -> None:
    text = menu_text(GOOD.replace('label = "Bilgi"', 'label = "Bilgi", category = "bilgi"'))
    [(line, message)] = issues_of(text, known_categories={"bilgi-rehberlik"})
    assert line == line_of(text, 'category = "bilgi"')
    assert "unknown category 'bilgi'" in message


def test_flows_need_their_prompts_recorded() -> None:
    body = GOOD + '\n[flows.survey]\nkind = "survey"\nqueue = "genel"\n'
    text = menu_text(body)
    issues = issues_of(text)
    assert {line for line, _ in issues} == {line_of(text, "[flows.survey]")}
    assert any(prompts.SURVEY_Q1 in message for _, message in issues)


def test_cli_checks_a_file_and_names_the_line(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "menu.toml"
    text = menu_text(GOOD.replace('queue = "genel"', 'queue = "genl"'))
    path.write_text(text, encoding="utf-8")
    assert main([str(path)]) == 1
    assert f"{path}:{line_of(text, 'genl')}: " in capsys.readouterr().err
    assert main([]) == 0
    assert "ok" in capsys.readouterr().out


def test_line_index_understands_quoted_dotted_and_multiline_keys() -> None:
    text = '''a = 1
[t."x.y"]
"k" = """
b = 2
"""
'n'.m = 3
[[arr]]
v = 1
'''
    index = LineIndex(text)
    assert index.line_of(("a",)) == 1
    assert index.line_of(("t", "x.y")) == 2
    assert index.line_of(("t", "x.y", "k")) == 3
    assert index.line_of(("t", "x.y", "b")) == 2  # inside the string: falls back to the table
    assert index.line_of(("t", "x.y", "n", "m")) == 6
    assert index.line_of(("arr", "v")) == 8
    assert index.line_of(("nothing",)) is None
