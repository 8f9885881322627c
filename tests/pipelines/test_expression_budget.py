"""Hard limits on expressions: each finding of the security review, now refused, bounded or fixed.

Every expression here once held a worker (and the row lock it evaluated under) for seconds to hours.
"""

import time

import pytest
from django.db import connection
from rq import SimpleWorker

from apps.pipelines.choices import Status
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.expressions import Budget, ExpressionError, Limits, evaluate, expression_syntax_errors
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_start_execution
from apps.pipelines.stages.evaluate_variables import EvaluateVariablesStage
from tests.conftest import wait_for_execution
from tests.scenarios import row_lock_free, save, stages_of


def error_for(text, variables=None, budget=None) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        evaluate(text, variables or {}, budget=budget)
    return caught.value


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def test_a_nested_repetition_of_ten_billion_items_is_refused_before_it_is_built():
    error, seconds = timed(lambda: error_for("${ { {1}*100000 }*100000 }"))

    assert "would hold 10,000,200,000 items" in error.reason
    assert "EXPRESSION_MAX_VALUE_SIZE" in error.reason
    assert seconds < 0.5


def test_a_huge_power_is_refused_from_its_estimated_size():
    error, seconds = timed(lambda: error_for("${4000000^4000000 > 1}"))

    assert "the power would be an integer of about" in error.reason
    assert "EXPRESSION_MAX_INTEGER_BITS" in error.reason
    assert seconds < 0.5


def test_powers_and_products_within_the_limit_still_compute():
    assert evaluate("${2 ^ 100}", {}) == 2**100
    assert evaluate("${2 ^ -1}", {}) == 0.5
    assert "EXPRESSION_MAX_INTEGER_BITS" in error_for("${(2 ^ 4000) * (2 ^ 4000)}").reason


def test_a_catastrophic_regex_answers_at_once():
    text = "'aaaaaaaaaaaaaaaaaaaaaaaa!' matches '(a+)+$'"
    result, seconds = timed(lambda: evaluate("${" + text + "}", {}))
    assert result is False
    assert seconds < 0.5
    # Linear in the input: a hundred thousand characters still take no time.
    long_text = {"s": "a" * 100_000 + "!"}
    result, seconds = timed(lambda: evaluate("${s matches '(a+)+$'}", long_text))
    assert result is False and seconds < 0.5
    assert evaluate("${'abc' matches 'a.c'}", {}) is True


@pytest.mark.parametrize("pattern", [r"(a)\1", "a(?=b)", "a(?!b)", "(?<=a)b", "(?>a)", "a*+"])
def test_regex_features_re2_lacks_are_refused_with_a_clear_message(pattern):
    error = error_for("${'ab' matches '" + pattern + "'}")

    assert "invalid regular expression" in error.reason
    assert "RE2" in error.reason and "backreferences" in error.reason


def test_split_and_replace_all_run_on_re2_too():
    variables = {"s": "a" * 30 + "!"}
    _, seconds = timed(lambda: evaluate("${s.replaceAll('(a+)+$', 'x')}", variables))
    assert seconds < 0.5
    assert evaluate("${'a1b22c'.split('[0-9]+')}", {}) == ["a", "b", "c"]
    assert evaluate("${'v1.2'.replaceAll('(\\d)', '<$1>')}", {}) == "v<1>.<2>"


def test_an_evaluation_stops_when_its_cpu_time_is_used_up():
    # Each operand is within the size limits; together they need several times the limit.
    chunk = "(('x' * 900000) + ('y' * 90000)).length()"
    expression = "${ {" + ", ".join([chunk] * 200) + "} }"
    budget = Budget(Limits(time_ms=20, max_total_size=10**12))

    error, seconds = timed(lambda: error_for(expression, budget=budget))

    assert "took more than 20 ms of CPU time (EXPRESSION_TIME_LIMIT_MS)" in error.reason
    assert seconds < 1


def test_everything_one_evaluation_builds_is_counted():
    budget = Budget(Limits(max_value_size=1_000, max_total_size=5_000))
    value = {f"k{index}": "${'x' * 900}" for index in range(10)}

    with pytest.raises(ExpressionError) as caught:
        evaluate(value, {}, budget=budget)

    assert "EXPRESSION_MAX_TOTAL_SIZE" in caught.value.reason


def test_inline_lists_of_large_values_are_counted_all_the_way_down():
    variables = {"s": "x" * 400_000}

    error = error_for("${ {s, s, s} }", variables)

    assert "the inline list would hold" in error.reason


def test_a_string_built_of_many_expressions_is_limited():
    variables = {"s": "x" * 600_000}

    error = error_for("${s}-${s}", variables)

    assert "EXPRESSION_MAX_VALUE_SIZE" in error.reason


def test_an_error_names_the_field_holding_the_expression():
    error = error_for({"payload": {"items": ["ok", "${4000000^4000000}"]}})

    assert str(error).startswith("payload.items[1]: ${4000000^4000000}: the power would be")


def test_validation_refuses_an_overlong_expression_without_parsing_it():
    text = "${" + "+".join(["1"] * 20_000) + "}"

    errors, seconds = timed(lambda: expression_syntax_errors(text))

    assert len(errors) == 1 and "(EXPRESSION_MAX_LENGTH)" in errors[0]
    assert seconds < 0.5


def test_the_limits_are_settings(settings):
    settings.EXPRESSION_MAX_INTEGER_BITS = 64

    assert "more than 64" in error_for("${2 ^ 65}").reason


WORST = "${ { {1}*100000 }*100000 }"


def test_a_stage_over_budget_fails_terminal_naming_its_field(workers):
    workers.start(1)
    pipeline = save(
        [
            {"refId": "1", "name": "Vars", "type": "evaluateVariables",
             "variables": [{"key": "big", "value": WORST}]},
        ],
        name="attack",
    )
    execution, seconds = timed(lambda: wait_for_execution(do_start_execution(pipeline).id))

    stages = stages_of(execution)
    assert execution.status == Status.TERMINAL
    vars_error = stages["1"].context["exception"]["details"]["error"]
    assert vars_error.startswith("variable 'big': variables[0].value: ${ { {1}*100000 }*100000 }: the repetition")
    assert "EXPRESSION_MAX_VALUE_SIZE" in vars_error
    assert seconds < 30


def test_a_context_field_over_budget_fails_its_stage_at_start(workers):
    workers.start(1)
    pipeline = save([{"refId": "1", "name": "Wait", "type": "wait", "waitTime": "${4000000^4000000}"}], name="power")

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stage = stages_of(execution)["1"]
    assert stage.status == Status.TERMINAL
    assert stage.context["exception"]["details"]["error"].startswith("waitTime: ${4000000^4000000}: the power")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_a_stage_evaluating_its_variables_holds_no_row_lock(transactional_db, clean_redis, monkeypatch):
    """While evaluateVariables evaluates, a cancel or the sweeper can lock its stage and its execution."""
    seen = []
    original = EvaluateVariablesStage.run

    def observed(self, stage, scope, runtime):
        seen.append((row_lock_free(StageExecution, stage.id), row_lock_free(Execution, stage.execution_id)))
        return original(self, stage, scope, runtime)

    monkeypatch.setattr(EvaluateVariablesStage, "run", observed)
    pipeline = save([{"refId": "1", "name": "Vars", "type": "evaluateVariables",
                      "variables": [{"key": "n", "value": "${1 + 1}"}]}], name="locks")
    execution = do_start_execution(pipeline)
    queue = engine_queue()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert seen == [(True, True)]
