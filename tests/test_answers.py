"""Answer validation: good and bad input, and (property-based) nothing written for bad answers."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castelet.answers import AnswersError, validate
from castelet.manifest import load
from castelet.render import new
from helpers import REPO_ROOT

OMEKA = REPO_ROOT / "blueprints" / "omeka-s"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"


@pytest.fixture(scope="module")
def omeka():
    return load(OMEKA)


def test_defaults_are_valid(omeka):
    answers = validate(omeka, {})
    assert answers["project_slug"] == "omeka"
    assert answers["data_volume_gb"] == 20  # typed, not the string cookiecutter passes


@pytest.mark.parametrize(
    ("field", "value"),
    [("domain", "portal.mylab.ca"), ("domain", "xn--bcher-kva.example"), ("admin_email", "a.b+c@lab.ulaval.ca"),
     ("admin_cidr", "132.203.0.0/16"), ("admin_cidr", "2001:db8::/32"), ("admin_ssh_keys", f"{KEY}, {KEY}"),
     ("data_volume_gb", "500"), ("project_slug", "atlas-2"), ("omeka_release_sha256", "a" * 64)],
)
def test_good_answers_pass(omeka, field, value):
    validate(omeka, {field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("domain", "not_a_domain"), ("domain", "localhost"), ("domain", "Portal.Lab.CA"), ("domain", "a..b.ca"),
     ("admin_email", "admin"), ("admin_email", "a@b"), ("admin_cidr", "10.0.0.1/8"), ("admin_cidr", "10.0.0.0"),
     ("admin_cidr", "300.1.1.0/24"), ("admin_ssh_keys", "ssh-dss AAAA"), ("data_volume_gb", "0"),
     ("data_volume_gb", "lots"), ("project_slug", "Atlas"), ("project_slug", "a"), ("cloud", "aws"),
     ("image", "debian 12"), ("project_name", "two\nlines"), ("omeka_release_sha256", "abc")],
)
def test_bad_answers_name_the_field(omeka, field, value):
    with pytest.raises(AnswersError) as caught:
        validate(omeka, {field: value})
    assert [p.field for p in caught.value.problems] == [field]
    assert field in str(caught.value) and "expected" in str(caught.value)


def test_unknown_question_is_an_error(omeka):
    with pytest.raises(AnswersError, match="colour"):
        validate(omeka, {"colour": "blue"})


junk = st.text(alphabet=string.printable, max_size=40)
bad_answer_sets = st.fixed_dictionaries(
    {},
    optional={
        "domain": st.one_of(junk, st.just("bad_domain")),
        "admin_email": st.one_of(junk, st.just("nobody")),
        "admin_cidr": st.one_of(junk, st.just("10.0.0.1/8")),
        "data_volume_gb": st.one_of(st.integers(-5, 0), junk),
        "project_slug": junk,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=bad_answer_sets)
def test_no_invalid_answer_set_ever_produces_a_directory(omeka, tmp_path_factory, answers):
    try:
        validate(omeka, answers)
    except AnswersError:
        out: Path = tmp_path_factory.mktemp("out")
        with pytest.raises(AnswersError):
            new(OMEKA, answers, out)
        assert list(out.iterdir()) == []
