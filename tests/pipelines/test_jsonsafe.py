"""Stage results are made JSON-safe where the conversion is unambiguous, and refused with the key path otherwise."""

import json
from datetime import date, time
from decimal import Decimal

import pytest

from apps.pipelines.jsonsafe import NotJsonSafe, json_safe


def test_plain_json_is_returned_as_it_is_not_copied():
    value = {"a": [1, 2.5, "x", None, True, {"b": []}]}

    assert json_safe(value, "outputs") is value


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        (date(2026, 1, 2), "2026-01-02"),
        (time(9, 30), "09:30:00"),
        (Decimal("10"), 10),
        (Decimal("0.1"), 0.1),
        (Decimal("3.14159265358979323846"), "3.14159265358979323846"),
        (Decimal("NaN"), "NaN"),
        ((1, (2, 3)), [1, [2, 3]]),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"b"}), ["b"]),
        (b"\xff", "base64:/w=="),
        ({2: "a", None: "b", False: "c"}, {"2": "a", "null": "b", "false": "c"}),
    ],
)
def test_values_json_lacks_a_type_for_are_converted(value, safe):
    converted = json_safe({"k": value}, "outputs")

    assert converted == {"k": safe}
    json.dumps(converted, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"report": {"by": object()}}, "outputs.report.by: object of type object is not JSON-serializable"),
        ({"items": [1, {"x": float("inf")}]}, "outputs.items[1].x: inf is not a JSON number"),
        ({1: "a", "1": "b"}, "outputs.1: key 1 would become '1', which is already a key"),
        ({"text": "a\x00b"}, "outputs.text: text containing a NUL character"),
    ],
)
def test_anything_else_is_refused_naming_its_key_path(value, message):
    with pytest.raises(NotJsonSafe) as refused:
        json_safe(value, "outputs")

    assert str(refused.value).startswith(message)
