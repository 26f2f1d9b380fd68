"""The answer types of catalogue wave 1: git URLs and refs, network lists, database lists."""

from __future__ import annotations

import pytest

from castelet.answers import InvalidAnswer, coerce
from castelet.manifest import Question


def _q(kind: str, optional: bool = True) -> Question:
    return Question(name=kind, type=kind, default="", help={"en": ""}, optional=optional)


@pytest.mark.parametrize("value", [
    "https://gitlab.com/lab/site.git", "https://git.mylab.ca:8443/group/sub/app", "https://h.example.org/a_b~c.d-e",
    "http://10.166.0.1:8000/site.git", "http://192.168.1.5/x", "http://127.0.0.1/r",
])
def test_git_urls_accepted(value):
    assert coerce(_q("git_url"), value) == value


@pytest.mark.parametrize("value", [
    "http://gitlab.com/lab/site.git",          # plain http to a public name
    "http://8.8.8.8/x",                        # plain http to a public address
    "https://user:token@gitlab.com/lab/x",     # credentials
    "https://gitlab.com/lab/x?ref=main",       # query
    "https://gitlab.com/lab/x#frag",
    "git@gitlab.com:lab/x.git", "ssh://git@gitlab.com/lab/x", "file:///srv/repo", "ext::sh -c touch",
    "https://gitlab.com", "https://gitlab.com/a/../../etc", "https://gitlab.com//x", "--upload-pack=touch",
    "https://gitlab.com/a b", "https://gitlab.com/$(id)",
])
def test_git_urls_refused(value):
    with pytest.raises(InvalidAnswer):
        coerce(_q("git_url"), value)


@pytest.mark.parametrize("value", ["main", "v1.2.0", "release/2026-11", "0123abcd" * 5, "feature_x.y"])
def test_git_refs_accepted(value):
    assert coerce(_q("git_ref", optional=False), value) == value


@pytest.mark.parametrize("value", [
    "-main", "--upload-pack=x", "a..b", "a//b", "a/", "a.", "x.lock", "a/.hidden", "a b", "a:b", "a~1", "a^", "@{-1}",
    "x" * 101, "",
])
def test_git_refs_refused(value):
    with pytest.raises(InvalidAnswer):
        coerce(_q("git_ref", optional=False), value)


@pytest.mark.parametrize("value", ["", "10.0.0.0/8", "132.203.0.0/16 2001:db8::/32", "192.0.2.7/32"])
def test_network_lists_accepted(value):
    assert coerce(_q("cidrs"), value) == value


@pytest.mark.parametrize("value, reason", [
    ("0.0.0.0/0", "item 1 is the whole internet"),
    ("10.0.0.0/8 ::/0", "item 2 is the whole internet"),
    ("10.0.0.1/8", "item 1 is not a network in CIDR notation with its host bits zero"),
    ("10.0.0.0/8  192.0.2.0/24", "item 2 is empty (separate items by single spaces)"),
    ("10.0.0.0/8 10.0.0.0/8", "item 2 is given twice"),
    ("10.0.0.0 255.0.0.0", "item 1 is not a network in CIDR notation with its host bits zero"),
])
def test_network_lists_refused_with_a_reason(value, reason):
    with pytest.raises(InvalidAnswer) as refused:
        coerce(_q("cidrs"), value)
    assert refused.value.reason == reason


NOT_AN_IDENTIFIER = "is not lowercase letters, digits and _ starting with a letter (at most 32 characters)"
BAD_NAME = f"item 1: the name {NOT_AN_IDENTIFIER}"
BAD_OWNER = f"item 1: the owner {NOT_AN_IDENTIFIER}"


@pytest.mark.parametrize("value", ["corpus", "corpus survey:lab", "a1_b:owner_2 c", "x" * 32])
def test_database_lists_accepted(value):
    assert coerce(_q("databases"), value) == value


@pytest.mark.parametrize("value, reason", [
    ("postgres", "item 1: the name is reserved"),
    ("lab:root", "item 1: the owner is reserved"),
    ("Corpus", BAD_NAME),
    ("a:b:c", BAD_OWNER),
    ("lab lab:other", "item 2 names a database given twice"),
    ("x" * 33, BAD_NAME),
    ("db;drop", BAD_NAME),
])
def test_database_lists_refused_with_a_reason(value, reason):
    with pytest.raises(InvalidAnswer) as refused:
        coerce(_q("databases"), value)
    assert refused.value.reason == reason


def test_list_answers_are_bounded():
    many = " ".join(f"db{i}" for i in range(101))
    with pytest.raises(InvalidAnswer) as refused:
        coerce(_q("databases"), many)
    assert refused.value.reason == "more than 100 items"
