"""Intrinsic functions and short-form tags, resolved without a template on disk."""

from pathlib import Path
from typing import Any

import pytest

from ws_emulator.template.intrinsics import NO_VALUE, IntrinsicError, Resolver, load_yaml


def make_resolver(**conditions: bool) -> Resolver:
    refs: dict[str, Any] = {"Name": "chat", "Count": "1", "List": ["a", "b"], "AWS::Region": "eu-west-1"}

    def ref(name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name not in refs:
            raise IntrinsicError(f"unknown {name}")
        return refs[name]

    def get_att(lid: str, attr: str) -> Any:
        return f"{lid}:{attr}"

    def condition(name: str) -> bool:
        return conditions[name]

    return Resolver(
        ref=ref,
        get_att=get_att,
        condition=condition,
        mappings={"Sizes": {"dev": {"mem": 128}}},
        region="eu-west-1",
    )


def test_short_tags_parse_to_long_form(tmp_path: Path) -> None:
    # GIVEN a YAML document using every common short-form tag
    doc = tmp_path / "t.yaml"
    doc.write_text(
        "A: !Ref X\nB: !GetAtt T.StreamArn\nC: !Sub '${X}-y'\nD: !Join [',', [a, b]]\n"
        "E: !If [C1, a, b]\nF: !Equals [a, b]\nG: !Select [0, [a]]\nH: !Split [',', 'a,b']\n"
        "I: !Not [!Condition C1]\nJ: !And [!Condition C1, !Condition C2]\nK: !Or [!Condition C1]\n"
        "L: !FindInMap [M, k1, k2]\nV: 2010-09-09\n",
        encoding="utf-8",
    )
    # WHEN it is loaded
    data = load_yaml(doc)
    # THEN each becomes the JSON form CloudFormation documents
    assert data["A"] == {"Ref": "X"}
    assert data["B"] == {"Fn::GetAtt": ["T", "StreamArn"]}
    assert data["C"] == {"Fn::Sub": "${X}-y"}
    assert data["D"] == {"Fn::Join": [",", ["a", "b"]]}
    assert data["E"] == {"Fn::If": ["C1", "a", "b"]}
    assert data["I"] == {"Fn::Not": [{"Condition": "C1"}]}
    assert data["J"] == {"Fn::And": [{"Condition": "C1"}, {"Condition": "C2"}]}
    assert data["L"] == {"Fn::FindInMap": ["M", "k1", "k2"]}
    assert data["V"] == "2010-09-09"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Name"}, "chat"),
        ({"Fn::Sub": "${Name}-${AWS::Region}"}, "chat-eu-west-1"),
        ({"Fn::Sub": "${T.Arn}/x"}, "T:Arn/x"),
        ({"Fn::Sub": "${!Literal} ${Name}"}, "${Literal} chat"),
        ({"Fn::Sub": ["${a}-${Name}", {"a": {"Ref": "Count"}}]}, "1-chat"),
        ({"Fn::Join": ["/", ["integrations", {"Ref": "Name"}]]}, "integrations/chat"),
        ({"Fn::Select": [1, {"Ref": "List"}]}, "b"),
        ({"Fn::Split": [",", "a,b,c"]}, ["a", "b", "c"]),
        ({"Fn::Select": [2, {"Fn::Split": ["/", "x/y/z"]}]}, "z"),
        ({"Fn::If": ["On", "yes", "no"]}, "yes"),
        ({"Fn::If": ["Off", "yes", "no"]}, "no"),
        ({"Fn::Equals": [{"Ref": "Count"}, 1]}, True),
        ({"Fn::Not": [{"Fn::Equals": ["a", "a"]}]}, False),
        ({"Fn::And": [{"Condition": "On"}, {"Condition": "Off"}]}, False),
        ({"Fn::Or": [{"Condition": "On"}, {"Condition": "Off"}]}, True),
        ({"Fn::FindInMap": ["Sizes", "dev", "mem"]}, 128),
        ({"Fn::GetAtt": "T.Arn"}, "T:Arn"),
        ({"Fn::GetAZs": ""}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ],
)
def test_intrinsics_resolve(value: Any, expected: Any) -> None:
    assert make_resolver(On=True, Off=False).resolve(value) == expected


def test_no_value_removes_keys_and_list_items() -> None:
    resolver = make_resolver(On=False)
    value = {"a": {"Fn::If": ["On", "x", {"Ref": "AWS::NoValue"}]}, "b": [1, {"Ref": "AWS::NoValue"}]}
    assert resolver.resolve(value) == {"b": [1]}


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Fn::ImportValue": "x"},
        {"Fn::Select": [5, ["a"]]},
        {"Fn::FindInMap": ["Sizes", "prod", "mem"]},
        {"Fn::Join": [",", "notalist"]},
    ],
)
def test_unresolvable_intrinsics_raise(value: Any) -> None:
    with pytest.raises(IntrinsicError):
        make_resolver().resolve(value)
