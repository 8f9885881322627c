"""Tests for the sandboxed SpEL-subset evaluator in apps.pipelines.expressions."""

import copy

import pytest

from apps.pipelines.expressions import ExpressionError, evaluate, expression_syntax_errors, is_truthy
from apps.pipelines.expressions.java_types import ALLOWED_TYPES

VARIABLES = {
    "trigger": {
        "tag": "v12",
        "buildNumber": 7,
        "tags": ["alpha", "beta"],
        "payload": {"branch": "main", "size": 3, "from": "ci"},
        "missing": None,
        "blank": "",
        "flag": "false",
    },
    "parameters": {"env": "prod", "count": "3", "ratio": 2.5},
    "execution": {"id": "abc-123", "stages": [{"name": "Bake", "status": "SUCCEEDED"}]},
    "from": 10,
}


def run(text, variables=None, functions=None):
    return evaluate(text, VARIABLES if variables is None else variables, functions)


def error_for(text, variables=None, functions=None) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        run(text, variables, functions)
    return caught.value


# Typed results and interpolation


def test_it_returns_typed_value_for_whole_string_expression():
    assert run("${trigger.buildNumber}") == 7
    assert run("${trigger.tags}") == ["alpha", "beta"]
    assert run("${trigger.payload}") == {"branch": "main", "size": 3, "from": "ci"}
    assert run("${trigger.missing}") is None
    assert run("${1 == 1}") is True


def test_it_ignores_whitespace_around_a_single_expression():
    assert run("  ${trigger.buildNumber}\n") == 7


def test_it_interpolates_text_around_an_expression_as_a_string():
    assert run("build-${trigger.buildNumber}") == "build-7"


def test_it_interpolates_several_expressions():
    assert run("${trigger.tag}-${parameters.env}") == "v12-prod"


def test_it_renders_values_as_text_when_interpolating():
    text = "${trigger.missing}|${true}|${false}|${trigger.tags}|${trigger.payload}|${parameters.ratio}"
    assert run(text) == '|true|false|["alpha","beta"]|{"branch":"main","size":3,"from":"ci"}|2.5'


def test_it_returns_strings_without_expressions_unchanged():
    assert run("plain text with { braces }") == "plain text with { braces }"


def test_it_returns_non_strings_unchanged():
    assert run(42) == 42
    assert run(None) is None
    assert run(True) is True


def test_it_walks_nested_dicts_and_lists():
    value = {"a": ["${trigger.tag}", {"b": "${trigger.buildNumber + 1}"}], "c": 5}
    assert run(value) == {"a": ["v12", {"b": 8}], "c": 5}


def test_it_leaves_dict_keys_alone():
    assert run({"${trigger.tag}": "${trigger.tag}"}) == {"${trigger.tag}": "v12"}


def test_it_does_not_mutate_the_input():
    value = {"a": ["${trigger.tag}", {"b": "${trigger.payload}"}]}
    before = copy.deepcopy(value)
    run(value)
    assert value == before


def test_it_returns_a_copy_of_structures_taken_from_variables():
    variables = copy.deepcopy(VARIABLES)
    result = run("${trigger.payload}", variables)
    result["branch"] = "changed"
    assert variables["trigger"]["payload"]["branch"] == "main"


def test_it_does_not_evaluate_expressions_found_in_results():
    assert run("${'${trigger.tag}'}") == "${trigger.tag}"


# Scanning


def test_it_is_not_confused_by_braces_inside_string_literals():
    assert run("${'{' + trigger.tag + '}'}") == "{v12}"
    assert run("<${'}'}>") == "<}>"


def test_it_is_not_confused_by_nested_map_literals():
    assert run("${{'a': {'b': 1}}}") == {"a": {"b": 1}}


def test_it_reports_an_unterminated_expression_with_the_whole_string():
    error = error_for("abc ${trigger.tag")
    assert error.expression == "abc ${trigger.tag"
    assert "unterminated" in error.reason


def test_it_reports_an_unterminated_string_literal_inside_an_expression():
    assert "unterminated string literal" in error_for("${'abc}").reason


# Literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${'single'}", "single"),
        ("${'it''s'}", "it's"),
        ('${"double"}', "double"),
        ('${"say ""hi"""}', 'say "hi"'),
        ("${42}", 42),
        ("${007}", 7),
        ("${3.5}", 3.5),
        ("${1e3}", 1000.0),
        ("${true}", True),
        ("${FALSE}", False),
        ("${null}", None),
        ("${{1, 2, 3}}", [1, 2, 3]),
        ("${{}}", []),
        ("${{:}}", {}),
        ("${{name: 'x', 'other key': 2}}", {"name": "x", "other key": 2}),
    ],
)
def test_it_reads_literals(text, expected):
    assert run(text) == expected


# Property and index access


def test_it_reads_map_keys_with_dots():
    assert run("${trigger.payload.branch}") == "main"


def test_it_reads_map_keys_and_list_positions_with_brackets():
    assert run("${trigger['payload']['branch']}") == "main"
    assert run("${trigger.tags[1]}") == "beta"
    assert run("${execution.stages[0].name}") == "Bake"


def test_it_reads_string_characters_by_index():
    assert run("${trigger.tag[0]}") == "v"


def test_it_reads_properties_named_like_python_keywords():
    assert run("${trigger.payload.from}") == "ci"
    assert run("${from + 1}") == 11


def test_it_reads_a_map_key_rather_than_a_python_method():
    assert run("${trigger.payload.size}") == 3
    # A name that is a Python method of dict (or str.format) reads the map key: absent, so null.
    assert run("${trigger.keys}") is None
    assert run("${trigger.format}") is None


def test_it_returns_null_from_safe_navigation_on_null():
    assert run("${trigger.missing?.anything}") is None
    assert run("${trigger.missing?.toUpperCase()}") is None
    assert run("${trigger?.tag}") == "v12"


def test_a_missing_map_key_is_null_as_in_orca_pipelines():
    # Orca evaluates pipelines with unknown keys allowed: a key a map lacks reads as null.
    assert run("${trigger.payload.nope}") is None
    assert run("${trigger?.nope}") is None
    assert run("${trigger['nope']}") is None
    assert run("${parameters['region'] ?: 'us-east-1'}") == "us-east-1"


def test_reading_a_property_of_a_missing_key_names_the_null_path():
    error = error_for("${trigger.payload.nope.deeper}")
    assert str(error) == "${trigger.payload.nope.deeper}: trigger.payload.nope is null; cannot read 'deeper'"


def test_it_reports_a_list_index_out_of_range():
    assert "index 5 is out of range for trigger.tags" in error_for("${trigger.tags[5]}").reason


def test_it_reports_reading_a_property_of_null():
    assert "trigger.missing is null" in error_for("${trigger.missing.foo}").reason


# Operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${1 == 1}", True),
        ("${1 != 1}", False),
        ("${1 < 2}", True),
        ("${2 <= 2}", True),
        ("${1 > 2}", False),
        ("${3 >= 2}", True),
        ("${1 eq 1}", True),
        ("${1 ne 1}", False),
        ("${1 lt 2}", True),
        ("${2 le 1}", False),
        ("${2 gt 1}", True),
        ("${2 ge 3}", False),
        ("${parameters.env == 'prod'}", True),
        ("${parameters.env != 'prod'}", False),
    ],
)
def test_it_compares_values(text, expected):
    assert run(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${true and false}", False),
        ("${true && true}", True),
        ("${false or true}", True),
        ("${false || false}", False),
        ("${not true}", False),
        ("${!false}", True),
        ("${!(1 == 2)}", True),
        ("${1 != 2 && !false}", True),
        ("${trigger.flag or false}", False),
    ],
)
def test_it_combines_booleans(text, expected):
    assert run(text) is expected


def test_it_short_circuits_and_and_or():
    assert run("${false and trigger.nope}") is False
    assert run("${true or trigger.nope}") is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${1 + 2}", 3),
        ("${5 - 7}", -2),
        ("${3 * 4}", 12),
        ("${7 / 2}", 3),
        ("${-7 / 2}", -3),
        ("${7.0 / 2}", 3.5),
        ("${7 % 3}", 1),
        ("${-7 % 3}", -1),
        ("${7 div 2}", 3),
        ("${7 mod 2}", 1),
        ("${2 ^ 10}", 1024),
        ("${-trigger.buildNumber}", -7),
        ("${(1 + 2) * 3}", 9),
        ("${1 + 2 * 3}", 7),
    ],
)
def test_it_does_arithmetic_like_java(text, expected):
    assert run(text) == expected


def test_it_converts_the_other_side_to_text_when_concatenating_a_string():
    assert run("${'build-' + trigger.buildNumber}") == "build-7"
    assert run("${trigger.buildNumber + '-' + true + '-' + null}") == "7-true-null"


def test_it_evaluates_nested_ternaries():
    assert run("${trigger.buildNumber > 5 ? 'big' : 'small'}") == "big"
    assert run("${1 > 2 ? 'a' : 2 > 3 ? 'b' : 'c'}") == "c"
    assert run("${(true ? 'x' : 'y') + '!'}") == "x!"
    assert run("${#toJson(false ? 1 : {2})}") == "[2]"


def test_it_only_evaluates_the_chosen_ternary_branch():
    assert run("${true ? 1 : trigger.nope}") == 1


def test_it_falls_back_with_elvis_on_null_or_empty_string():
    assert run("${trigger.missing ?: 'default'}") == "default"
    assert run("${trigger.blank ?: 'default'}") == "default"
    assert run("${trigger.tag ?: 'default'}") == "v12"
    assert run("${trigger.tag ?: trigger.nope}") == "v12"


def test_it_matches_regular_expressions_against_the_whole_value():
    assert run("${trigger.tag matches '^v[0-9]+'}") is True
    assert run("${trigger.tag matches 'v1'}") is False
    assert run("${trigger.tag matches '[a-z]+[0-9]+$'}") is True


# Methods


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${trigger.tag.startsWith('v')}", True),
        ("${trigger.tag.endsWith('2')}", True),
        ("${trigger.tag.contains('1')}", True),
        ("${trigger.tag.toUpperCase()}", "V12"),
        ("${'ABC'.toLowerCase()}", "abc"),
        ("${'  x  '.trim()}", "x"),
        ("${trigger.tag.length()}", 3),
        ("${'abcdef'.substring(2)}", "cdef"),
        ("${'abcdef'.substring(1, 3)}", "bc"),
        ("${'a-b-c'.replace('-', '_')}", "a_b_c"),
        ("${'a1b22'.replaceAll('[0-9]+', '#')}", "a#b#"),
        ("${'v1.2'.replaceFirst('v([0-9])', '$1')}", "1.2"),
        ("${'a,b,,c,,'.split(',')}", ["a", "b", "", "c"]),
        ("${'a1b2c'.split('[0-9]')}", ["a", "b", "c"]),
        ("${'abcabc'.indexOf('c')}", 2),
        ("${'abcabc'.lastIndexOf('c')}", 5),
        ("${''.isEmpty()}", True),
        ("${'x'.equals('x')}", True),
        ("${'ABC'.equalsIgnoreCase('abc')}", True),
        ("${'abc'.charAt(1)}", "b"),
        ("${trigger.tag.matches('v[0-9]+')}", True),
        ("${trigger.buildNumber.toString()}", "7"),
    ],
)
def test_it_supports_java_string_methods(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${trigger.tags.size()}", 2),
        ("${trigger.tags.isEmpty()}", False),
        ("${trigger.tags.contains('beta')}", True),
        ("${trigger.tags.get(0)}", "alpha"),
        ("${trigger.tags.indexOf('beta')}", 1),
        ("${trigger.payload.size()}", 3),
        ("${trigger.payload.isEmpty()}", False),
        ("${trigger.payload.containsKey('branch')}", True),
        ("${trigger.payload.containsKey('nope')}", False),
        ("${trigger.payload.get('branch')}", "main"),
        ("${trigger.payload.get('nope')}", None),
        ("${{}.isEmpty()}", True),
    ],
)
def test_it_supports_java_list_and_map_methods(text, expected):
    assert run(text) == expected


def test_it_refuses_a_method_the_value_does_not_have():
    assert "size() is not available on trigger.tag" in error_for("${trigger.tag.size()}").reason


def test_it_refuses_an_unknown_method():
    error = error_for("${trigger.tag.foo()}")
    assert str(error) == "${trigger.tag.foo()}: method foo() is not supported"


def test_it_refuses_a_method_called_with_the_wrong_number_of_arguments():
    assert "does not take" in error_for("${trigger.tag.startsWith()}").reason


def test_it_refuses_a_substring_out_of_range():
    assert "out of range" in error_for("${'abc'.substring(1, 9)}").reason


# Functions


def test_it_calls_a_function_passed_by_the_caller():
    stages = {"Bake": {"outputs": {"imageId": "ami-1"}}}
    functions = {"stage": lambda name: stages[name]}
    assert run("${#stage('Bake').outputs.imageId}", functions=functions) == "ami-1"


def test_it_lets_caller_functions_override_builtins():
    assert run("${#toJson(1)}", functions={"toJson": lambda value: "mine"}) == "mine"


def test_it_reports_a_failing_caller_function_as_an_expression_error():
    def stage(name):
        raise LookupError(f"no stage named {name!r}")

    error = error_for("${#stage('Nope')}", functions={"stage": stage})
    assert error.reason == "#stage(...) failed: no stage named 'Nope'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${#toJson({'a': {1, true, null}})}", '{"a":[1,true,null]}'),
        ("${#fromJson('{\"a\": [1, 2]}')}", {"a": [1, 2]}),
        ("${#readJson('[1]')}", [1]),
        ("${#alphanumerical('my-app_v1.2')}", "myappv12"),
        ("${#toInt(parameters.count) + 1}", 4),
        ("${#toFloat('2.5')}", 2.5),
        ("${#toBoolean('TRUE')}", True),
        ("${#toBoolean('yes')}", False),
        ("${#toBase64('hello')}", "aGVsbG8="),
        ("${#fromBase64('aGVsbG8=')}", "hello"),
        # Orca's #doNotEval: the text as written, an expression in it left as text.
        ("${#doNotEval('${parameters.count}')}", "${parameters.count}"),
        ("keep ${#doNotEval(\"#{x}\")} as is", "keep #{x} as is"),
    ],
)
def test_it_provides_builtin_functions(text, expected):
    assert run(text) == expected


def test_it_has_no_json_from_url_function():
    assert error_for("${#jsonFromUrl('http://example.com')}").reason == "unknown function #jsonFromUrl"


def test_it_reports_bad_input_to_a_builtin_function():
    assert "#toInt(...) failed" in error_for("${#toInt('abc')}").reason


# Errors


def test_an_unknown_variable_is_null_and_reading_from_it_names_it():
    assert run("${nope}") is None
    assert run("${nope ?: 'fallback'}") == "fallback"
    error = error_for("${nope.foo}")
    assert error.expression == "nope.foo"
    assert error.reason == "nope is null; cannot read 'foo'"


def test_it_reports_an_unknown_function_by_name():
    assert error_for("${#nope(1)}").reason == "unknown function #nope"


def test_it_reports_division_by_zero():
    assert error_for("${1 / 0}").reason == "division by zero"
    assert error_for("${1 % 0}").reason == "division by zero"


def test_it_reports_type_errors_as_expression_errors():
    assert isinstance(error_for("${trigger.tags - 1}"), ExpressionError)
    assert isinstance(error_for("${trigger.tag < 3}"), ExpressionError)


def test_it_reports_an_invalid_regular_expression():
    assert "invalid regular expression" in error_for("${'a' matches '('}").reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("${T(java.lang.Runtime).getRuntime()}", "the type java.lang.Runtime is not allowed in expressions"),
        ("${new java.io.File('x')}", "the type java.io.File is not allowed in expressions"),
        ("${T(java.time.LocalDate).now().atStartOfDay()}", "method atStartOfDay() is not supported"),
        ("${new java.net.URL('http://example.com').openConnection()}", "method openConnection() is not supported"),
        ("${trigger.tag = 'x'}", "assignment (=) is not supported"),
        ("${@bean}", "bean references (@name) are not supported"),
        ("${trigger.tags.?[#this.length()]}", "a selection's criterion must be true or false"),
        ("${trigger.tag.?[true]}", "selection and projection apply to a list or a map"),
        ("${(1 + 2}", "unbalanced parentheses: missing ')'"),
        ("${1 + 2)}", "unbalanced parentheses: unexpected ')'"),
        ("${1 +}", "unexpected end of the expression"),
        ("${}", "empty expression"),
        ("${size()}", "functions are called as #size(...)"),
        ("${#stage}", "must be called as a function"),
        ("${true ? 1}", "needs a ':' branch"),
    ],
)
def test_it_explains_unsupported_or_malformed_syntax(text, reason):
    assert reason in error_for(text).reason


# Sandbox


@pytest.mark.parametrize(
    "text",
    [
        "${'a'.__class__}",
        "${'a'.__class__.__mro__}",
        "${trigger.__dict__}",
        "${trigger._private}",
        "${T(java.lang.String).__class__}",
        "${T(java.util.UUID).randomUUID().__class__}",
        "${new java.util.Date().__reduce__()}",
        "${T(java.lang.Math).random.__self__}",
        "${trigger.tag.mro()}",
        "${trigger.tag.format('x')}",
        "${trigger.tag.upper()}",
        "${#toJson.__globals__}",
        "${(#toJson(1)).__class__}",
    ],
)
def test_it_refuses_python_attributes_and_dunder_access(text):
    error = error_for(text)
    assert error.reason


def test_it_refuses_a_replace_that_would_build_a_huge_string():
    variables = {"s": "a" * 1000}
    assert "too long" in error_for("${s.replace('a', s)}", variables).reason


def test_it_never_lets_other_exception_types_escape():
    def explode():
        raise RuntimeError("boom")

    error = error_for("${#explode()}", functions={"explode": explode})
    assert error.reason == "#explode(...) failed: boom"


# expression_syntax_errors


def test_it_finds_no_syntax_errors_in_good_text():
    assert expression_syntax_errors("plain") == []
    assert expression_syntax_errors("v${trigger.tag}-${#stage('Bake').outputs.x ?: 'none'}") == []


def test_it_does_not_need_variables_to_check_syntax():
    assert expression_syntax_errors("${unknownVariable.foo + #unknownFunction()}") == []


def test_it_reports_one_syntax_error_per_malformed_expression():
    errors = expression_syntax_errors("${(1 + 2} ok ${trigger.tag} ${T(java.lang.System)} ${a = 1}")
    assert errors == [
        "${(1 + 2}: unbalanced parentheses: missing ')'",
        "${T(java.lang.System)}: the type java.lang.System is not allowed in expressions; the allowed types are: "
        + ", ".join(sorted(ALLOWED_TYPES)),
        "${a = 1}: assignment (=) is not supported; use == to compare",
    ]


def test_it_reports_an_unterminated_expression_as_a_syntax_error():
    errors = expression_syntax_errors("${trigger.tag} and ${oops")
    assert len(errors) == 1
    assert "unterminated" in errors[0]


def test_it_reports_unparsable_tokens_as_syntax_errors():
    assert expression_syntax_errors("${trigger.tag ~ 1}") == [
        "${trigger.tag ~ 1}: unexpected character '~' at position 12"
    ]
    assert expression_syntax_errors("${'a'.__class__}") == ["${'a'.__class__}: access to '__class__' is not allowed"]


# is_truthy


@pytest.mark.parametrize("value", [False, None, 0, "", "false", "False", "FALSE", "0", " false ", [], {}])
def test_it_reads_falsy_values_as_false(value):
    assert is_truthy(value) is False


@pytest.mark.parametrize("value", [True, 1, "true", "True", "yes", [0], {"a": 1}])
def test_it_reads_truthy_values_as_true(value):
    assert is_truthy(value) is True


# ExpressionError


def test_it_formats_expression_errors_with_the_expression_and_reason():
    error = ExpressionError("trigger.tag.foo()", "method foo() is not supported")
    assert str(error) == "${trigger.tag.foo()}: method foo() is not supported"
    assert error.expression == "trigger.tag.foo()"
    assert error.reason == "method foo() is not supported"
