"""Answers files: read strictly and cheaply, whatever a stranger (or a colleague) puts in them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castelet.answers import AnswersError, validate
from castelet.answers_file import MAX_BYTES, read_answers_file
from castelet.manifest import load
from castelet.render import new
from helpers import REPO_ROOT

LAMP = REPO_ROOT / "blueprints" / "lamp"


def write(tmp_path: Path, text: str | bytes, name: str = "answers.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, "utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(AnswersError) as caught:
        read_answers_file(path)
    message = str(caught.value)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].field == "--answers"
    assert len(message) < 500, message
    return message


def test_a_mapping_of_answers_is_read_as_written(tmp_path):
    path = write(tmp_path, "# my answers\nproject_slug: atlas\ndomain: 'atlas.mylab.ca'\ndata_volume_gb: 250\n"
                           "project_name: Atlas de l'été\n")
    assert read_answers_file(path) == {"project_slug": "atlas", "domain": "atlas.mylab.ca", "data_volume_gb": 250,
                                       "project_name": "Atlas de l'été"}


def test_plain_scalars_stay_text_unless_they_are_plainly_typed(tmp_path):
    path = write(tmp_path, "a: no\nb: 010\nc: 1:30\nd: 2024-01-01\ne: 1.5\nf: true\ng: -5\nh:\ni: ~\nj: '20'\n"
                           "k: !!str 30\nl: Off\nm: 0x10\n")
    assert read_answers_file(path) == {"a": "no", "b": "010", "c": "1:30", "d": "2024-01-01", "e": "1.5", "f": True,
                                       "g": -5, "h": None, "i": None, "j": "20", "k": "30", "l": "Off", "m": "0x10"}


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n...\n", "~\n"])
def test_an_empty_file_has_no_answers(tmp_path, text):
    assert read_answers_file(write(tmp_path, text)) == {}


def test_the_answers_of_an_earlier_render_are_accepted(tmp_path):
    given = {"project_slug": "atlas", "domain": "atlas.mylab.ca", "project_name": "no", "data_volume_gb": "250",
             "cloud": "lxd"}
    target = new(LAMP, given, tmp_path / "out")
    again = read_answers_file(target / ".castelet-answers.yaml")
    bp = load(LAMP)
    assert again == validate(bp, given)
    assert validate(bp, again) == again


def test_an_earlier_render_file_is_checked_like_any_other(tmp_path):
    good = "blueprint: lamp\nblueprint_version: 0.1.0\nanswers:\n  project_slug: atlas\n  data_volume_gb: 20\n"
    assert read_answers_file(write(tmp_path, good)) == {"project_slug": "atlas", "data_volume_gb": 20}
    assert "twice" in refusal(write(tmp_path, good + "  project_slug: other\n"))
    assert "twice" in refusal(write(tmp_path, good + "answers:\n  domain: a.ca\n"))
    assert "nested" in refusal(write(tmp_path, good + "  domain: [a.ca]\n"))
    assert "line 1" in refusal(write(tmp_path, "blueprint: [lamp]\n" + good.split("\n", 1)[1]))


# --- size -----------------------------------------------------------------------------------------

def test_files_over_64_kib_are_refused_before_parsing(tmp_path):
    assert MAX_BYTES == 64 * 1024
    big = write(tmp_path, "project_slug: atlas\n" + "#" * MAX_BYTES + "\n")
    message = refusal(big)
    assert f"{big.stat().st_size} bytes" in message and "65536" in message and "64 KiB" in message
    broken_but_big = write(tmp_path, b"\xff&*[" * (MAX_BYTES // 2), "broken.yaml")  # never decoded or parsed
    assert "more than the limit" in refusal(broken_but_big)


def test_a_file_of_exactly_64_kib_is_read(tmp_path):
    head = "project_slug: atlas\n"
    path = write(tmp_path, head + "#" * (MAX_BYTES - len(head) - 1) + "\n")
    assert path.stat().st_size == MAX_BYTES
    assert read_answers_file(path) == {"project_slug": "atlas"}


def test_an_endless_device_is_refused(tmp_path):
    assert "more than the limit" in refusal(Path("/dev/zero"))


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_paths_are_refused(tmp_path, name):
    assert "cannot be read" in refusal(tmp_path / name)


# --- anchors and aliases ----------------------------------------------------------------------------

def billion_laughs(levels: int = 10) -> str:
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_bomb_is_refused_at_once_with_a_short_message(tmp_path):
    path = write(tmp_path, billion_laughs(10))  # 10**9 strings if expanded
    started = time.perf_counter()
    message = refusal(path)
    assert time.perf_counter() - started < 0.5
    assert len(message) < 500
    assert "line 1: anchors" in message and "lol" not in message.split("is not valid")[1]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [("domain: &d a.ca\n", 1, "anchors"), ("domain: a.ca\nadmin_email: *d\n", 2, "aliases"),
     ("project_slug: atlas\n<<: *base\n", 2, "aliases"), ("x: &a [1]\n", 1, "anchors"),
     ("&top {domain: a.ca}\n", 1, "anchors"), ("? &k domain\n: a.ca\n", 1, "anchors")],
)
def test_any_anchor_or_alias_is_refused_with_its_line(tmp_path, text, line, what):
    message = refusal(write(tmp_path, text))
    assert f"line {line}: {what}" in message


# --- structure -------------------------------------------------------------------------------------

def test_duplicate_questions_are_refused(tmp_path):
    message = refusal(write(tmp_path, "domain: a.ca\nproject_slug: atlas\ndomain: b.ca\n"))
    assert "line 3: 'domain' is given twice (first on line 1)" in message


@pytest.mark.parametrize(
    ("text", "what"),
    [("domain: {host: a, tld: ca}\n", "is a mapping"), ("admin_ssh_keys: [a, b]\n", "is a list"),
     ("domain:\n  - a.ca\n", "is a list"), ("domain: [[[[[[[[a]]]]]]]]\n", "nested"),
     ("[" * 20_000 + "]" * 20_000 + "\n", "nested")],
)
def test_answers_are_single_values(tmp_path, text, what):
    assert what in refusal(write(tmp_path, text))


@pytest.mark.parametrize("key", ["1", "true", "~", "null", "[a]", "{a: b}", "!!int '7'"])
def test_question_names_are_text(tmp_path, key):
    assert "question names must be text" in refusal(write(tmp_path, f"{key}: x\n"))


@pytest.mark.parametrize(
    ("text", "what"),
    [("- a\n- b\n", "not a mapping"), ("just text\n", "not a mapping"), ("a: b\n---\nc: d\n", "single document"),
     ("domain: !!binary aGVsbG8=\n", "tag"), ("domain: !!python/object:os.system x\n", "tag"),
     ("domain: !!float 1\n", "tag"), ("domain: !custom x\n", "tag"), ("domain: 'a\n", "not valid YAML"),
     ("domain: a\n\tb: c\n", "not valid YAML"), ("data_volume_gb: " + "9" * 5000 + "\n", "cannot be read"),
     ("domain: a\x01b\n", "U+0001"), (b"domain: \xff\n", "not UTF-8")],
)
def test_malformed_files_are_refused_briefly(tmp_path, text, what):
    assert what in refusal(write(tmp_path, text))


def test_nothing_is_stripped_validation_refuses(tmp_path):
    path = write(tmp_path, 'domain: "atlas.mylab.ca "\nproject_name: "tab\\there"\nadmin_cidr: "0.0.0.0/0"\n'
                           "project_slug: |\n  atlas\n")
    read = read_answers_file(path)
    assert read == {"domain": "atlas.mylab.ca ", "project_name": "tab\there", "admin_cidr": "0.0.0.0/0",
                    "project_slug": "atlas\n"}
    with pytest.raises(AnswersError) as caught:
        validate(load(LAMP), {**read, "cloud": "lxd"})
    assert sorted(p.field for p in caught.value.problems) == ["admin_cidr", "domain", "project_name", "project_slug"]


# --- messages are bounded ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    ["k" * 60_000 + ": a\n" + "k" * 60_000 + ": b\n", "domain: " + "x" * 60_000 + ": y\n",
     "domain: '" + "\\x1b[2J" * 8000 + "\n", "!" + "t" * 60_000 + " x\n", "a: !" + "t" * 60_000 + " x\n",
     "? " + "[" * 30_000 + "\n"],
)
def test_messages_never_echo_a_whole_file(tmp_path, text):
    refusal(write(tmp_path, text))


yaml_ish = st.text(alphabet=st.sampled_from([*"ab:-[]{}&*!|>'\"#,? \n\t\\x0", "\u00e9", "\x00", "\u2028"]),
                   max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_ish)
def test_any_file_gives_scalar_answers_or_a_short_refusal(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "answers.yaml"
    path.write_text(text, "utf-8")
    try:
        answers = read_answers_file(path)
    except AnswersError as exc:
        assert len(str(exc)) < 500 and len(exc.problems) == 1
    else:
        assert all(isinstance(k, str) for k in answers)
        assert all(v is None or isinstance(v, str | int | bool) for v in answers.values())
