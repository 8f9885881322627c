"""The expression sandbox, fuzzed with Hypothesis: no escape to Python, no unbounded time or size.

Expressions are generated from SpEL's own pieces — names, Python internals pretending to be properties
(``__class__``, ``__globals__``, ``mro``), the allowed Java types and some refused ones, methods, helper
functions, selections, operators that grow values (``*``, ``^``, ``+``) — combined at random, plus arbitrary
text. Whatever comes out, evaluation either gives plain JSON data or raises ExpressionError: never another
exception, never a Python object, never more CPU time than the budget allows (with a margin), and never a
value larger than EXPRESSION_MAX_VALUE_SIZE. Derandomized so CI runs the same cases; FUZZ_EXAMPLES=N digs
deeper (``FUZZ_EXAMPLES=5000 bin/test tests/pipelines/test_expression_fuzz.py``).
"""

from __future__ import annotations

import json
import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.pipelines.expressions import Budget, ExpressionError, Limits, evaluate

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = Limits(time_ms=100, max_value_size=100_000, max_total_size=1_000_000, max_integer_bits=4096)
VARIABLES = {
    "trigger": {"user": "alice", "tags": ["a", "b", "c"], "payload": {"n": 3, "text": "x" * 50}},
    "parameters": {"env": "prod", "count": "12"},
    "execution": {"stages": [{"name": "Bake", "status": "SUCCEEDED", "outputs": {"image": "app:1"}}]},
}
ATOMS = st.sampled_from([
    "trigger", "parameters", "execution", "trigger.tags", "trigger.payload", "execution.stages", "nope",
    "#root", "#this", "'ab'", "'x'", "\"%s\"", "1", "7", "999", "2.5", "true", "null", "{1, 2, 3}", "{'k': 'v'}",
    "T(java.lang.Math)", "T(java.util.UUID)", "T(java.time.LocalDate)", "T(java.lang.Integer)", "T(java.lang.System)",
    "T(java.lang.Runtime)", "new java.util.Date()", "new java.util.Random(1)", "new Integer('5')",
    "new java.text.SimpleDateFormat('yyyy')", "new java.net.URL('http://example.com/a?b')", "new java.io.File('/')",
    "#toJson(trigger)", "#readJson('[1,2]')", "#readYaml('a: [1, 2]')", "#fromBase64('eA==')", "#stage('Bake')",
])
SUFFIXES = st.sampled_from([
    ".__class__", ".__globals__", ".__dict__", ".mro()", ".format('x')", ".__init__", "._private", ".gi_frame",
    ".size()", ".length()", ".toString()", ".keySet()", ".toUpperCase()", ".split(',')", ".replace('a', 'bb')",
    ".now()", ".randomUUID()", ".max(1, 2)", ".pow(10, 400)", ".parseInt('9')", ".plusDays(100000000)",
    ".getRuntime()", ".exit(1)", ".openConnection()", ".getHost()", ".nextInt(5)", ".format(new java.util.Date())",
    ".?[true]", ".![#this]", ".^[#this != null]", ".$[true]", "[0]", "['k']", "?.user", ".n", ".tags",
])
OPERATORS = st.sampled_from([" + ", " * ", " ^ ", " - ", " / ", " % ", " == ", " ?: ", " and ", " matches "])


@st.composite
def expressions(draw) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        term = draw(ATOMS) + "".join(draw(st.lists(SUFFIXES, max_size=3)))
        parts.append(term)
        parts.append(draw(OPERATORS))
    return "${" + "".join(parts[:-1]) + "}"


def _plain(value) -> bool:
    """Only JSON data: what json.dumps writes without help, all the way down."""
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _check(text: str) -> None:
    started = time.thread_time()
    try:
        value = evaluate(text, VARIABLES, budget=Budget(LIMITS))
    except ExpressionError:
        value = None
    elapsed = time.thread_time() - started
    assert _plain(value), (text, type(value))
    assert elapsed < 2.0, (text, elapsed)  # the budget is 0.1 s; checks are every few nodes
    assert len(json.dumps(value)) <= 4 * LIMITS.max_value_size, text


@FUZZ
@given(expressions())
def test_composed_expressions_give_plain_data_or_an_expression_error(text):
    _check(text)


@FUZZ
@given(st.text(alphabet=st.sampled_from("${}[]()'\".#?!^$:*+-/ abcT_0123456789"), max_size=60))
def test_arbitrary_text_gives_plain_data_or_an_expression_error(text):
    _check(text)


@FUZZ
@given(st.integers(1, 64), st.integers(1, 64))
def test_growing_values_stops_at_the_size_limit(width, depth):
    text = "${" + "'" + "a" * width + "'" + " * 1000" * depth + "}"
    _check(text)
