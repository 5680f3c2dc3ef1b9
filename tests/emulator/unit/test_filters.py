"""Lambda event filtering semantics over DynamoDB stream records."""

from typing import Any

import pytest

from ws_emulator.sources.filters import FilterError, matches, matches_any, validate_pattern


def ddb_record(
    event_name: str = "INSERT", new: dict[str, Any] | None = None, old: dict[str, Any] | None = None
) -> dict:
    dynamodb: dict[str, Any] = {"Keys": {"PK": {"S": "k"}}, "SequenceNumber": "100", "SizeBytes": 10}
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


MESSAGE = ddb_record("INSERT", new={"kind": {"S": "message"}, "text": {"S": "Hello"}, "n": {"N": "5"}})
TYPING = ddb_record("MODIFY", new={"kind": {"S": "typing"}}, old={"kind": {"S": "typing"}})
PRESENCE_GONE = ddb_record("REMOVE", old={"kind": {"S": "presence"}})


def test_dynamodb_image_shape() -> None:
    pattern = {"dynamodb": {"NewImage": {"kind": {"S": ["message"]}}}}
    assert matches(pattern, MESSAGE)
    assert not matches(pattern, TYPING)
    assert not matches(pattern, PRESENCE_GONE)  # no NewImage at all


def test_parley_style_filters_are_ored() -> None:
    patterns = [
        {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"kind": {"S": ["typing"]}}}},
        {"eventName": ["REMOVE"], "dynamodb": {"OldImage": {"kind": {"S": ["presence"]}}}},
    ]
    assert matches_any(patterns, TYPING)
    assert matches_any(patterns, PRESENCE_GONE)
    assert not matches_any(patterns, MESSAGE)
    assert matches_any([], MESSAGE)


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (["a"], "a", True),
        (["a"], "A", False),
        ([5], 5, True),
        ([5], 5.0, True),
        ([5], "5", False),
        (["5"], 5, False),
        ([None], None, True),
        ([None], "x", False),
        ([True], True, True),
        ([True], 1, False),
        (["a", "b"], "b", True),
        (["a"], ["x", "a"], True),  # arrays match when any element does
        ([{"prefix": "Hel"}], "Hello", True),
        ([{"prefix": "hel"}], "Hello", False),
        ([{"prefix": {"equals-ignore-case": "hel"}}], "Hello", True),
        ([{"suffix": "lo"}], "Hello", True),
        ([{"suffix": "xx"}], "Hello", False),
        ([{"equals-ignore-case": "hello"}], "HeLLo", True),
        ([{"wildcard": "H*o"}], "Hello", True),
        ([{"wildcard": "H*x"}], "Hello", False),
        ([{"anything-but": ["a", "b"]}], "c", True),
        ([{"anything-but": ["a", "b"]}], "a", False),
        ([{"anything-but": "a"}], "a", False),
        ([{"anything-but": [1, 2]}], 3, True),
        ([{"anything-but": {"prefix": "init"}}], "initial", False),
        ([{"anything-but": {"prefix": "init"}}], "final", True),
        ([{"anything-but": {"suffix": ".tmp"}}], "a.txt", True),
        ([{"anything-but": {"equals-ignore-case": ["A", "B"]}}], "b", False),
        ([{"numeric": [">", 0, "<=", 5]}], 5, True),
        ([{"numeric": [">", 0, "<=", 5]}], 0, False),
        ([{"numeric": [">=", 1.5]}], 2, True),
        ([{"numeric": ["=", 3]}], 3.0, True),
        ([{"numeric": ["<", 3]}], "1", False),  # strings (DynamoDB "N") never match numerically
        ([{"numeric": ["<", 3]}], True, False),
        ([{"exists": True}], "x", True),
        ([{"exists": True}], None, True),  # null is a value that exists
        ([{"exists": False}], "x", False),
        (["a", {"prefix": "zz"}], "zzz", True),
    ],
)
def test_leaf_matchers(rule: list[Any], value: Any, expected: bool) -> None:
    assert matches({"f": rule}, {"f": value}) is expected


@pytest.mark.parametrize(
    "rule",
    [
        ["a"],
        [{"prefix": "a"}],
        [{"anything-but": ["a"]}],
        [{"numeric": [">", 0]}],
        [None],
        [{"exists": True}],
    ],
)
def test_missing_field_matches_only_exists_false(rule: list[Any]) -> None:
    assert not matches({"f": rule}, {"g": 1})
    assert matches({"f": [{"exists": False}]}, {"g": 1})


def test_exists_on_nested_image_attributes() -> None:
    has_thread = {"dynamodb": {"NewImage": {"threadId": [{"exists": True}]}}}
    no_thread = {"dynamodb": {"NewImage": {"threadId": [{"exists": False}]}}}
    with_thread = ddb_record(new={"threadId": {"S": "t1"}})
    assert not matches(has_thread, with_thread)  # the attribute's value is an object, not a leaf
    assert matches({"dynamodb": {"NewImage": {"threadId": {"S": [{"exists": True}]}}}}, with_thread)
    assert matches(no_thread, MESSAGE)
    # a missing parent still satisfies exists: false below it
    assert matches({"dynamodb": {"OldImage": {"kind": {"S": [{"exists": False}]}}}}, MESSAGE)


def test_or_combines_sub_patterns() -> None:
    pattern = {
        "$or": [
            {"dynamodb": {"NewImage": {"kind": {"S": ["message"]}}}},
            {"eventName": ["REMOVE"]},
        ]
    }
    assert matches(pattern, MESSAGE)
    assert matches(pattern, PRESENCE_GONE)
    assert not matches(pattern, TYPING)


def test_all_fields_must_match() -> None:
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["typing"]}}}}
    assert not matches(pattern, MESSAGE)
    assert not matches(pattern, TYPING)  # MODIFY


def test_arrays_of_objects_flatten() -> None:
    assert matches({"items": {"id": ["b"]}}, {"items": [{"id": "a"}, {"id": "b"}]})
    assert not matches({"items": {"id": ["c"]}}, {"items": [{"id": "a"}, {"id": "b"}]})


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"a": "x"},
        {"a": [{"numeric": [">", "1"]}]},
        {"a": [{"numeric": ["~", 1]}]},
        {"a": [{"exists": "yes"}]},
        {"a": [{"cidr": "10.0.0.0/24"}]},
        {"a": [{"prefix": 1}]},
        {"$or": [{"a": ["x"]}]},
        {"a": [{"anything-but": []}]},
    ],
)
def test_invalid_patterns_are_rejected(pattern: dict[str, Any]) -> None:
    with pytest.raises(FilterError):
        validate_pattern(pattern)


def test_valid_patterns_pass_validation() -> None:
    validate_pattern({"dynamodb": {"NewImage": {"kind": {"S": ["message"]}}}, "eventName": ["INSERT"]})
    validate_pattern({"$or": [{"a": [{"prefix": "x"}]}, {"b": [{"numeric": [">", 0, "<", 9]}]}]})
