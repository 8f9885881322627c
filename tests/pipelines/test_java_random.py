"""``java.util.Random`` in expressions gives the JVM's numbers for a seed, as Spinnaker's SpEL does.

The expected values are what ``new java.util.Random(seed)`` gives on any JVM (the class documents its
algorithm); an unseeded generator differs from run to run, as Java's does.
"""

from __future__ import annotations

import pytest

from apps.pipelines.evaluation import evaluate_batch
from apps.pipelines.expressions.java_random import JavaGenerator


def value(expression: str):
    [outcome] = evaluate_batch([{"expression": expression, "context": {}}])
    return outcome["value"]


@pytest.mark.django_db
@pytest.mark.parametrize(("expression", "expected"), [
    ("${new java.util.Random(42).nextInt()}", -1170105035),
    ("${new java.util.Random(0).nextInt()}", -1155484576),
    ("${new java.util.Random(42).nextLong()}", -5025562857975149833),
    ("${new java.util.Random(0).nextDouble()}", 0.730967787376657),
    ("${new java.util.Random(0).nextGaussian()}", 0.8025330637390305),
    ("${new java.util.Random(0).nextBoolean()}", True),
])
def test_a_seeded_generator_gives_the_jvms_first_number(expression, expected):
    assert value(expression) == expected


def test_bounded_ints_follow_javas_rejection_and_power_of_two_rules():
    generator = JavaGenerator(42)
    assert [generator.next_int(10) for _ in range(10)] == [0, 3, 8, 4, 0, 5, 5, 8, 9, 3]
    assert JavaGenerator(42).next_int(16) == (16 * JavaGenerator(42).next(31)) >> 31  # the high bits


def test_the_second_gaussian_is_the_cached_one():
    generator = JavaGenerator(7)
    first, second = generator.next_gaussian_value(), generator.next_gaussian_value()
    assert generator.next_gaussian is None and first != second


@pytest.mark.django_db
def test_an_unseeded_generator_is_not_the_same_each_time():
    assert len({value("${new java.util.Random().nextLong()}") for _ in range(5)}) > 1


@pytest.mark.django_db
def test_a_bound_that_is_not_positive_is_refused_with_the_reason():
    [outcome] = evaluate_batch([{"expression": "${new java.util.Random(1).nextInt(0)}", "context": {}}])
    assert outcome["value"] == "${new java.util.Random(1).nextInt(0)}"
    [entry] = outcome["summary"].values()
    assert "the bound must be positive" in entry[0]["description"]
