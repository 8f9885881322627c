"""Loading and validating pipeline documents in Spinnaker's format, and resolving an execution's parameters."""

import copy
import json
import time

import pytest

from apps.pipelines.definition import (
    MAX_VALUES,
    check_pipeline,
    parse_document,
    resolve_parameters,
    validate_pipeline,
)
from apps.pipelines.expressions import expression_syntax_errors
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.stages import all_stage_types

MALFORMED = "${parameters.version"  # an expression that is never closed

# A pipeline as Spinnaker's "Edit as JSON" exports it, keys Spinnaker adds included.
SPINNAKER_EXPORT = r"""
{
  "id": "6b1f3c2a-8d4e-4f7a-9c1b-2e5d7a9f0c31",
  "application": "checkout",
  "name": "Deploy to production",
  "index": 2,
  "description": "Promotes a tested build after an approval.",
  "keepWaitingPipelines": false,
  "limitConcurrent": true,
  "disabled": false,
  "spelEvaluator": "v4",
  "schema": "1",
  "lastModifiedBy": "alice@example.com",
  "updateTs": "1714554000000",
  "appConfig": {},
  "expectedArtifacts": [],
  "parameterConfig": [
    {
      "name": "environment",
      "label": "Environment",
      "description": "Where to deploy",
      "default": "staging",
      "required": true,
      "pinned": true,
      "hasOptions": true,
      "options": [{"value": "staging"}, {"value": "production"}]
    },
    {
      "name": "version",
      "label": "",
      "description": "",
      "default": "",
      "required": false,
      "pinned": false,
      "hasOptions": false,
      "options": [{"value": ""}]
    }
  ],
  "triggers": [
    {
      "enabled": true,
      "type": "cron",
      "id": "0c9e6a47-3f0e-4d0c-8f4e-7b8a5d0b1e22",
      "cronExpression": "0 0 12 ? * MON-FRI *",
      "runAsUser": "release-bot"
    }
  ],
  "notifications": [
    {
      "type": "slack",
      "address": "deploys",
      "level": "pipeline",
      "when": ["pipeline.failed"],
      "message": {"pipeline.failed": {"text": "${execution.name} failed"}}
    }
  ],
  "stages": [
    {
      "refId": "1",
      "requisiteStageRefIds": [],
      "type": "evaluateVariables",
      "name": "Pick the image tag",
      "isNew": true,
      "variables": [{"key": "tag", "value": "${parameters.version}"}]
    },
    {
      "refId": "2",
      "requisiteStageRefIds": ["1"],
      "type": "checkPreconditions",
      "name": "Check the environment",
      "preconditions": [
        {
          "type": "expression",
          "failPipeline": true,
          "context": {"expression": "${parameters.environment != ''}", "failureMessage": "no environment"}
        }
      ]
    },
    {
      "refId": "3",
      "requisiteStageRefIds": ["2"],
      "type": "manualJudgment",
      "name": "Approve",
      "instructions": "Check the dashboards first.",
      "judgmentInputs": [{"value": "ship"}, {"value": "hold"}],
      "selectedStageRoles": ["release-managers"],
      "notifications": [],
      "propagateAuthenticationContext": true,
      "failPipeline": true,
      "stageEnabled": {"type": "expression", "expression": "parameters.environment == 'production'"}
    },
    {
      "refId": "4",
      "requisiteStageRefIds": ["3"],
      "type": "wait",
      "name": "Soak",
      "comments": "Give the canaries time.",
      "waitTime": 300,
      "stageTimeoutMs": 900000,
      "continuePipeline": false,
      "completeOtherBranchesThenFail": false,
      "restrictExecutionDuringTimeWindow": false
    }
  ]
}
"""

# The same pipeline written as YAML.
SPINNAKER_EXPORT_YAML = """
id: 6b1f3c2a-8d4e-4f7a-9c1b-2e5d7a9f0c31
application: checkout
name: Deploy to production
index: 2
description: Promotes a tested build after an approval.
keepWaitingPipelines: false
limitConcurrent: true
disabled: false
spelEvaluator: v4
schema: "1"
lastModifiedBy: alice@example.com
updateTs: "1714554000000"
appConfig: {}
expectedArtifacts: []
parameterConfig:
  - name: environment
    label: Environment
    description: Where to deploy
    default: staging
    required: true
    pinned: true
    hasOptions: true
    options:
      - value: staging
      - value: production
  - name: version
    label: ""
    description: ""
    default: ""
    required: false
    pinned: false
    hasOptions: false
    options:
      - value: ""
triggers:
  - enabled: true
    type: cron
    id: 0c9e6a47-3f0e-4d0c-8f4e-7b8a5d0b1e22
    cronExpression: 0 0 12 ? * MON-FRI *
    runAsUser: release-bot
notifications:
  - type: slack
    address: deploys
    level: pipeline
    when: [pipeline.failed]
    message:
      pipeline.failed:
        text: ${execution.name} failed
stages:
  - refId: "1"
    requisiteStageRefIds: []
    type: evaluateVariables
    name: Pick the image tag
    isNew: true
    variables:
      - key: tag
        value: ${parameters.version}
  - refId: "2"
    requisiteStageRefIds: ["1"]
    type: checkPreconditions
    name: Check the environment
    preconditions:
      - type: expression
        failPipeline: true
        context:
          expression: ${parameters.environment != ''}
          failureMessage: no environment
  - refId: "3"
    requisiteStageRefIds: ["2"]
    type: manualJudgment
    name: Approve
    instructions: Check the dashboards first.
    judgmentInputs:
      - value: ship
      - value: hold
    selectedStageRoles: [release-managers]
    notifications: []
    propagateAuthenticationContext: true
    failPipeline: true
    stageEnabled:
      type: expression
      expression: parameters.environment == 'production'
  - refId: "4"
    requisiteStageRefIds: ["3"]
    type: wait
    name: Soak
    comments: Give the canaries time.
    waitTime: 300
    stageTimeoutMs: 900000
    continuePipeline: false
    completeOtherBranchesThenFail: false
    restrictExecutionDuringTimeWindow: false
"""


def stage(ref_id="1", type="wait", name=None, **fields) -> dict:
    """A valid stage of ``type`` unless ``fields`` say otherwise."""
    required = {"wait": {"waitTime": 5}, "checkPreconditions": {"preconditions": [_precondition()]}}
    required["evaluateVariables"] = {"variables": [{"key": "x", "value": "1"}]}
    return {"refId": ref_id, "type": type, "name": name or f"Stage {ref_id}", **required.get(type, {}), **fields}


def _precondition() -> dict:
    return {"type": "expression", "context": {"expression": "${true}"}}


def pipeline(*stages: dict, **fields) -> dict:
    return {"application": "checkout", "name": "Deploy", "stages": list(stages), **fields}


def problems_of(doc: dict) -> list[tuple[str, str]]:
    return [(problem.pointer, problem.message) for problem in validate_pipeline(doc)]


def pointers_of(doc: dict) -> list[str]:
    return [problem.pointer for problem in validate_pipeline(doc)]


def message_at(doc: dict, pointer: str) -> str:
    messages = [message for where, message in problems_of(doc) if where == pointer]
    assert len(messages) == 1, f"expected one problem at {pointer}, got {problems_of(doc)}"
    return messages[0]


def parse_problem(text) -> Problem:
    with pytest.raises(InvalidDocument) as raised:
        parse_document(text)
    assert len(raised.value.problems) == 1, raised.value.problems
    return raised.value.problems[0]


def resolve_problems(doc: dict, given: dict) -> list[tuple[str, str]]:
    with pytest.raises(InvalidDocument) as raised:
        resolve_parameters(doc, given)
    return [(problem.pointer, problem.message) for problem in raised.value.problems]


# --- A real Spinnaker export ---------------------------------------------------------------------


def test_a_spinnaker_export_loads_and_validates_without_problems():
    doc = parse_document(SPINNAKER_EXPORT)

    assert validate_pipeline(doc) == []


def test_a_spinnaker_export_round_trips_unchanged_unknown_keys_included():
    doc = parse_document(SPINNAKER_EXPORT)
    before = copy.deepcopy(doc)

    assert check_pipeline(doc) is doc
    assert doc == before == json.loads(SPINNAKER_EXPORT)
    assert json.dumps(doc) == json.dumps(json.loads(SPINNAKER_EXPORT))
    assert doc["appConfig"] == {} and doc["stages"][0]["isNew"] is True


def test_the_same_pipeline_written_as_yaml_parses_to_the_same_dict():
    assert parse_document(SPINNAKER_EXPORT_YAML) == json.loads(SPINNAKER_EXPORT)


def test_bytes_are_read_as_utf8_with_or_without_a_byte_order_mark():
    text = '{"application": "checkout", "name": "Déploiement"}'

    assert parse_document(text.encode()) == parse_document(b"\xef\xbb\xbf" + text.encode()) == json.loads(text)


def test_an_empty_pipeline_is_valid():
    assert validate_pipeline({"application": "checkout", "name": "Nothing yet"}) == []
    assert validate_pipeline(pipeline()) == []


def test_null_optional_keys_count_as_absent():
    doc = pipeline(stage(requisiteStageRefIds=None, stageEnabled=None), triggers=None, parameterConfig=None)

    assert validate_pipeline(doc) == []


# --- Parse errors --------------------------------------------------------------------------------


def test_broken_json_is_reported_with_its_line_and_column():
    problem = parse_problem('{\n  "application": "checkout",\n  "name": "x" "stages": []\n}')

    assert problem.pointer == ""
    assert "not valid JSON" in problem.message and "line 3, column 15" in problem.message


def test_broken_yaml_is_reported_with_its_line_and_column():
    problem = parse_problem("application: checkout\nname: x\nstages:\n  - refId: [1\n")

    assert problem.pointer == ""
    assert "not valid YAML" in problem.message and "line 5, column 1" in problem.message


@pytest.mark.parametrize("text", ["", "   \n\t", b""])
def test_an_empty_document_is_an_error(text):
    assert "is empty" in parse_problem(text).message


@pytest.mark.parametrize("text", ["[1, 2]", '"a pipeline"', "just some words", "42", "null"])
def test_a_top_level_that_is_not_an_object_is_an_error(text):
    problem = parse_problem(text)

    assert problem.pointer == "" and "must be an object" in problem.message


def test_bytes_that_are_not_utf8_are_an_error():
    assert "not UTF-8" in parse_problem(b'{"name": "\xff"}').message


def test_a_yaml_date_stays_the_text_it_was_written_as():
    assert parse_document("application: checkout\nupdateTs: 2024-05-01\n")["updateTs"] == "2024-05-01"


def test_a_duplicate_json_key_is_reported_at_its_pointer():
    problem = parse_problem('{"application": "checkout", "stages": [{"refId": "1", "refId": "2"}]}')

    assert problem.pointer == "/stages/0/refId" and "duplicate key" in problem.message


def test_a_duplicate_yaml_key_is_reported_with_its_line():
    problem = parse_problem("application: checkout\nname: a\nname: b\n")

    assert "duplicate key 'name'" in problem.message and "line 3, column 1" in problem.message


def test_values_json_cannot_hold_are_reported_at_their_pointers():
    with pytest.raises(InvalidDocument) as raised:
        parse_document("application: checkout\nsecret: !!binary aGVsbG8=\nstages:\n  - 1: one\nratio: .nan\n")

    assert {problem.pointer for problem in raised.value.problems} == {"/secret", "/stages/0", "/ratio"}


def test_nan_in_json_is_reported_rather_than_kept():
    assert parse_problem('{"application": "checkout", "limit": NaN}').pointer == "/limit"


def test_a_yaml_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]

    problem = parse_problem("\n".join(lines))

    assert problem.pointer == "" and f"the limit is {MAX_VALUES}" in problem.message


def test_yaml_aliases_of_a_reasonable_size_are_accepted():
    doc = parse_document("defaults: &defaults {failPipeline: true}\nstages:\n  - *defaults\n  - *defaults\n")

    assert doc["stages"] == [{"failPipeline": True}, {"failPipeline": True}]


# --- The pipeline's own keys ---------------------------------------------------------------------


def test_a_missing_application_and_name_are_both_reported():
    assert problems_of({}) == [("/application", "is required"), ("/name", "is required")]


def test_an_application_name_with_a_space_or_a_slash_is_reported_with_the_naming_rule():
    rule = "letters, digits, hyphens, underscores and dots"
    assert rule in message_at(pipeline(application="check out"), "/application")
    assert rule in message_at(pipeline(application="a/b"), "/application")


def test_a_blank_or_too_long_pipeline_name_is_reported():
    assert message_at(pipeline(name="  "), "/name") == "must not be empty"
    assert message_at(pipeline(name="x" * 201), "/name") == "must be at most 200 characters long (it has 201)"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("stages", {"1": {}}, "must be a list"),
        ("limitConcurrent", "true", "must be true or false"),
        ("keepWaitingPipelines", 1, "must be true or false"),
        ("disabled", "no", "must be true or false"),
        ("description", ["a"], "must be a string"),
        ("spelEvaluator", 4, "must be a string"),
        ("triggers", {}, "must be a list"),
        ("notifications", "slack", "must be a list"),
        ("parameterConfig", {"name": "x"}, "must be a list"),
    ],
)
def test_a_pipeline_key_of_the_wrong_type_names_the_expected_type(key, value, message):
    assert problems_of(pipeline(**{key: value})) == [(f"/{key}", message)]


# --- Stages --------------------------------------------------------------------------------------


def test_an_unknown_stage_type_is_reported_at_its_type_listing_the_known_types():
    message = message_at(pipeline(stage(type="teleport")), "/stages/0/type")

    assert message == f"unknown stage type 'teleport'; known types: {', '.join(sorted(all_stage_types()))}"
    assert {"checkPreconditions", "evaluateVariables", "manualJudgment", "wait"} <= set(all_stage_types())


def test_a_stage_that_is_not_an_object_is_reported():
    assert problems_of(pipeline(stage(), "wait")) == [("/stages/1", "must be an object")]


def test_a_stage_without_ref_id_or_type_is_reported_for_each():
    # A stage without a name is named after its type, as Orca does.
    assert problems_of(pipeline({"waitTime": 5})) == [
        ("/stages/0/refId", "is required"),
        ("/stages/0/type", "is required"),
    ]


def test_an_integer_ref_id_must_be_a_string():
    assert message_at(pipeline(stage(ref_id=1)), "/stages/0/refId").startswith("must be a string")


def test_a_numeric_looking_string_ref_id_is_fine():
    assert validate_pipeline(pipeline(stage("1"), stage("2", requisiteStageRefIds=["1"]))) == []


def test_a_duplicate_ref_id_is_reported_at_the_second_stage_naming_the_first():
    doc = pipeline(stage("1"), stage("2"), stage("1"))

    assert problems_of(doc) == [("/stages/2/refId", "duplicate refId '1': stage 0 already has it")]


def test_a_requisite_naming_no_stage_is_reported_at_its_position():
    doc = pipeline(stage("1"), stage("2", requisiteStageRefIds=["1", "9"]))

    assert problems_of(doc) == [("/stages/1/requisiteStageRefIds/1", "no stage has refId '9'")]


def test_a_requisite_that_is_a_number_must_be_a_string():
    doc = pipeline(stage("1"), stage("2", requisiteStageRefIds=[1]))

    assert message_at(doc, "/stages/1/requisiteStageRefIds/0").startswith("must be a string")


def test_requisites_that_are_not_a_list_are_reported():
    assert pointers_of(pipeline(stage("1", requisiteStageRefIds="2"))) == ["/stages/0/requisiteStageRefIds"]


def test_a_stage_requiring_itself_is_reported():
    doc = pipeline(stage("1", requisiteStageRefIds=["1"]))

    assert problems_of(doc) == [("/stages/0/requisiteStageRefIds/0", "a stage cannot require itself")]


def test_a_cycle_is_reported_once_naming_its_ref_ids_in_running_order():
    doc = pipeline(
        stage("1", requisiteStageRefIds=["3"]),
        stage("2", requisiteStageRefIds=["1"]),
        stage("3", requisiteStageRefIds=["2"]),
        stage("4", requisiteStageRefIds=["3"]),
    )

    assert problems_of(doc) == [("/stages/0/requisiteStageRefIds", "cycle: 1 → 2 → 3 → 1")]


def test_two_separate_cycles_are_reported_separately():
    doc = pipeline(
        stage("a", requisiteStageRefIds=["b"]),
        stage("b", requisiteStageRefIds=["a"]),
        stage("c"),
        stage("d", requisiteStageRefIds=["c", "e"]),
        stage("e", requisiteStageRefIds=["d"]),
    )

    assert problems_of(doc) == [
        ("/stages/0/requisiteStageRefIds", "cycle: a → b → a"),
        ("/stages/3/requisiteStageRefIds", "cycle: d → e → d"),
    ]


def test_a_diamond_is_not_a_cycle():
    doc = pipeline(
        stage("1"),
        stage("2", requisiteStageRefIds=["1"]),
        stage("3", requisiteStageRefIds=["1"]),
        stage("4", requisiteStageRefIds=["2", "3"]),
    )

    assert validate_pipeline(doc) == []


@pytest.mark.parametrize(
    ("type_name", "field"),
    [("evaluateVariables", "variables"), ("webhook", "url")],
)
def test_a_built_in_stage_type_reports_its_missing_required_field(type_name, field):
    bare = {key: value for key, value in stage(type=type_name).items() if key != field}

    assert problems_of(pipeline(bare)) == [(f"/stages/0/{field}", f"is required for a {type_name} stage")]


def test_a_manual_judgment_needs_no_field_beyond_ref_id_type_and_name():
    assert validate_pipeline(pipeline(stage(type="manualJudgment"))) == []


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"type": "wait", "waitTime": "soon"}, "/stages/0/waitTime"),
        ({"type": "checkPreconditions", "preconditions": [{"type": "cluster"}]}, "/stages/0/preconditions/0/type"),
        ({"type": "evaluateVariables", "variables": [{"key": "not a name", "value": 1}]}, "/stages/0/variables/0/key"),
        ({"type": "manualJudgment", "judgmentInputs": "ship"}, "/stages/0/judgmentInputs"),
    ],
)
def test_a_stage_types_own_checks_are_reported_at_their_pointers(fields, pointer):
    assert pointers_of(pipeline(stage(**fields))) == [pointer]


@pytest.mark.parametrize(
    ("fields", "pointer", "message"),
    [
        ({"failPipeline": "yes"}, "/stages/0/failPipeline", "must be true or false"),
        ({"continuePipeline": 1}, "/stages/0/continuePipeline", "must be true or false"),
        (
            {"completeOtherBranchesThenFail": "false"},
            "/stages/0/completeOtherBranchesThenFail",
            "must be true or false",
        ),
        ({"stageTimeoutMs": 0}, "/stages/0/stageTimeoutMs", "must be a positive whole number of milliseconds"),
        ({"stageTimeoutMs": True}, "/stages/0/stageTimeoutMs", "must be a positive whole number of milliseconds"),
        ({"stageTimeoutMs": "60000"}, "/stages/0/stageTimeoutMs", "must be a positive whole number of milliseconds"),
        ({"stageTimeoutMs": 1.5}, "/stages/0/stageTimeoutMs", "must be a positive whole number of milliseconds"),
        ({"stageEnabled": "true"}, "/stages/0/stageEnabled", None),
        ({"stageEnabled": {"expression": "true"}}, "/stages/0/stageEnabled/type", 'must be "expression"'),
        ({"stageEnabled": {"type": "expression"}}, "/stages/0/stageEnabled/expression", "is required"),
        (
            {"stageEnabled": {"type": "expression", "expression": 1}},
            "/stages/0/stageEnabled/expression",
            "must be a string or true or false",
        ),
    ],
)
def test_a_stage_option_of_the_wrong_type_is_reported_at_its_pointer(fields, pointer, message):
    problems = problems_of(pipeline(stage(**fields)))

    assert [where for where, _ in problems] == [pointer]
    assert message is None or problems[0][1] == message


def test_stage_enabled_accepts_a_boolean_or_a_bare_expression():
    doc = pipeline(
        stage("1", stageEnabled={"type": "expression", "expression": False}),
        stage("2", stageEnabled={"type": "expression", "expression": "parameters.deploy == 'true'"}),
    )

    assert validate_pipeline(doc) == []


# --- Expressions ---------------------------------------------------------------------------------


def test_a_malformed_expression_deep_in_a_stage_is_reported_at_that_string():
    messages = expression_syntax_errors(f"v-{MALFORMED}")
    doc = pipeline(stage(type="evaluateVariables", variables=[{"key": "tag", "value": f"v-{MALFORMED}"}]))

    assert messages
    assert problems_of(doc) == [("/stages/0/variables/0/value", message) for message in messages]


def test_a_malformed_expression_under_a_key_with_a_slash_uses_an_escaped_pointer():
    doc = pipeline(stage(context={"labels": {"app/version~1": [MALFORMED]}}))

    assert pointers_of(doc) == ["/stages/0/context/labels/app~1version~01/0"]


def test_a_malformed_stage_enabled_expression_is_reported_at_it():
    doc = pipeline(stage(stageEnabled={"type": "expression", "expression": MALFORMED}))

    assert pointers_of(doc) == ["/stages/0/stageEnabled/expression"]


def test_a_bare_stage_enabled_expression_is_checked_as_if_written_inside_braces():
    bare = pipeline(stage(stageEnabled={"type": "expression", "expression": "parameters.deploy =="}))

    assert pointers_of(bare) == ["/stages/0/stageEnabled/expression"]


def test_malformed_expressions_in_triggers_and_notifications_are_reported():
    doc = pipeline(
        triggers=[{"type": "webhook", "source": "hooks", "payloadConstraints": {"ref": MALFORMED}}],
        notifications=[{"type": "email", "address": "ops@example.com", "when": ["pipeline.complete"],
                        "message": {"pipeline.complete": {"text": MALFORMED}}}],
    )

    assert pointers_of(doc) == [
        "/triggers/0/payloadConstraints/ref",
        "/notifications/0/message/pipeline.complete/text",
    ]


def test_well_formed_expressions_are_not_problems():
    doc = pipeline(stage(comments="${trigger.user} asked for ${parameters.version}"))

    assert validate_pipeline(doc) == []


# --- Triggers and notifications ------------------------------------------------------------------


def test_trigger_problems_are_reported_at_their_pointers():
    # A trigger with none of its fields filled in is a placeholder (tests/triggers/test_placeholders.py):
    # this cron trigger names its time zone, so its missing expression is a problem.
    doc = pipeline(triggers=[{"type": "cron", "enabled": "yes", "timeZone": "UTC"}, {"enabled": True}, "cron",
                             {"type": 3}])

    assert problems_of(doc) == [
        ("/triggers/2", "must be an object"),
        ("/triggers/0/enabled", "must be true or false"),
        ("/triggers/0/cronExpression", "is required"),
        ("/triggers/1/type", "is required"),
        ("/triggers/3/type", "must be a string"),
    ]


def test_a_notification_that_is_not_an_object_is_reported():
    assert problems_of(pipeline(notifications=[{"type": "slack", "address": "deploys", "when": ["pipeline.failed"]},
                                               "slack"])) == [
        ("/notifications/1", "must be an object")
    ]


# --- parameterConfig -----------------------------------------------------------------------------


def test_a_parameter_without_a_name_is_reported():
    assert problems_of(pipeline(parameterConfig=[{"label": "Version"}, {"name": ""}])) == [
        ("/parameterConfig/0/name", "is required"),
        ("/parameterConfig/1/name", "must not be empty"),
    ]


def test_a_duplicate_parameter_name_is_reported_at_the_second_naming_the_first():
    doc = pipeline(parameterConfig=[{"name": "version"}, {"name": "region"}, {"name": "version"}])

    assert problems_of(doc) == [
        ("/parameterConfig/2/name", "duplicate parameter 'version': parameter 0 already has it")
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("required", "true", "must be true or false"),
        ("pinned", 0, "must be true or false"),
        ("hasOptions", "no", "must be true or false"),
        ("description", 5, "must be a string"),
        ("label", {}, "must be a string"),
        ("options", "a,b", "must be a list"),
        ("default", ["a"], "must be a string"),
    ],
)
def test_a_parameter_key_of_the_wrong_type_is_reported(key, value, message):
    assert problems_of(pipeline(parameterConfig=[{"name": "p", key: value}])) == [
        (f"/parameterConfig/0/{key}", message)
    ]


def test_a_default_that_is_not_one_of_the_options_is_reported():
    parameter = {"name": "env", "default": "qa", "hasOptions": True, "options": [{"value": "dev"}, {"value": "prod"}]}

    assert problems_of(pipeline(parameterConfig=[parameter])) == [
        ("/parameterConfig/0/default", "must be one of the options: dev, prod")
    ]


def test_options_may_be_plain_strings():
    parameter = {"name": "env", "default": "dev", "options": ["dev", "prod"]}

    assert validate_pipeline(pipeline(parameterConfig=[parameter])) == []
    assert pointers_of(pipeline(parameterConfig=[{**parameter, "default": "qa"}])) == ["/parameterConfig/0/default"]


def test_options_are_ignored_when_has_options_is_false():
    parameter = {"name": "env", "default": "qa", "hasOptions": False, "options": [{"value": "dev"}]}

    assert validate_pipeline(pipeline(parameterConfig=[parameter])) == []


def test_malformed_options_are_reported_at_their_pointers():
    parameter = {"name": "env", "options": [{"value": "dev"}, {"label": "Prod"}, ["prod"], {"value": {"a": 1}}]}

    assert problems_of(pipeline(parameterConfig=[parameter])) == [
        ("/parameterConfig/0/options/1/value", "is required"),
        ("/parameterConfig/0/options/2", 'must be a string or a {"value": "..."} object'),
        ("/parameterConfig/0/options/3/value", "must be a string"),
    ]


# --- Many problems at once -----------------------------------------------------------------------


def test_every_problem_is_reported_not_just_the_first():
    doc = {
        "application": "Bad Name",
        "stages": [
            stage("1", type="teleport"),
            stage("1", failPipeline="no"),
            stage("3", requisiteStageRefIds=["7"], comments=MALFORMED),
        ],
        "parameterConfig": [{"name": "p"}, {"name": "p"}],
        "limitConcurrent": "yes",
    }

    assert pointers_of(doc) == [
        "/application",
        "/name",
        "/limitConcurrent",
        "/stages/0/type",
        "/stages/1/refId",
        "/stages/1/failPipeline",
        "/stages/2/requisiteStageRefIds/0",
        "/stages/2/comments",
        "/parameterConfig/1/name",
    ]


def test_check_pipeline_raises_with_every_problem():
    with pytest.raises(InvalidDocument) as raised:
        check_pipeline({"stages": "none"})

    assert [problem.pointer for problem in raised.value.problems] == ["/application", "/name", "/stages"]


def test_validating_something_that_is_not_an_object_is_a_problem_not_a_crash():
    assert pointers_of(["not", "a", "pipeline"]) == [""]


# --- resolve_parameters --------------------------------------------------------------------------

PARAMETERS = pipeline(
    parameterConfig=[
        {"name": "env", "required": True, "default": "staging", "options": [{"value": "staging"}, {"value": "prod"}]},
        {"name": "version", "required": True},
        {"name": "note", "default": ""},
        {"name": "replicas", "default": "2"},
        {"name": "dryRun", "hasOptions": False, "options": [{"value": ""}]},
    ]
)


def test_defaults_fill_the_parameters_not_given_and_the_rest_are_empty_strings():
    assert resolve_parameters(PARAMETERS, {"version": "1.4.2"}) == {
        "env": "staging",
        "version": "1.4.2",
        "note": "",
        "replicas": "2",
        "dryRun": "",
    }


def test_given_values_win_over_defaults():
    resolved = resolve_parameters(PARAMETERS, {"version": "1.4.2", "env": "prod", "replicas": "5"})

    assert resolved["env"] == "prod" and resolved["replicas"] == "5"


def test_numbers_and_booleans_given_become_strings():
    resolved = resolve_parameters(PARAMETERS, {"version": 2, "replicas": 3.5, "dryRun": True, "note": False})

    assert (resolved["version"], resolved["replicas"], resolved["dryRun"], resolved["note"]) == (
        "2",
        "3.5",
        "true",
        "false",
    )


def test_a_required_parameter_without_a_value_or_default_is_reported():
    assert resolve_problems(PARAMETERS, {}) == [("/parameters/version", "is required")]
    assert resolve_problems(PARAMETERS, {"version": ""}) == [("/parameters/version", "is required")]


def test_a_value_not_among_the_options_is_reported_with_the_options():
    assert resolve_problems(PARAMETERS, {"version": "1", "env": "qa"}) == [
        ("/parameters/env", "must be one of: staging, prod")
    ]


def test_a_name_the_pipeline_does_not_declare_is_reported_with_the_known_names():
    assert resolve_problems(PARAMETERS, {"version": "1", "enviroment": "prod"}) == [
        ("/parameters/enviroment", "is not a parameter of this pipeline; known: env, version, note, replicas, dryRun")
    ]


def test_an_object_or_list_given_as_a_value_is_reported():
    assert resolve_problems(PARAMETERS, {"version": {"major": 1}, "note": ["a"]}) == [
        ("/parameters/version", "must be a string"),
        ("/parameters/note", "must be a string"),
    ]


def test_every_parameter_problem_is_reported_at_once():
    problems = resolve_problems(PARAMETERS, {"env": "qa", "a/b": "x"})

    assert [pointer for pointer, _ in problems] == ["/parameters/env", "/parameters/version", "/parameters/a~1b"]


def test_a_pipeline_without_parameters_resolves_to_none_and_refuses_any():
    assert resolve_parameters(pipeline(), {}) == {}
    assert resolve_problems(pipeline(), {"x": "1"}) == [
        ("/parameters/x", "is not a parameter of this pipeline; known: (none)")
    ]


def test_the_spinnaker_export_resolves_its_parameters():
    doc = parse_document(SPINNAKER_EXPORT)

    assert resolve_parameters(doc, {"environment": "production"}) == {"environment": "production", "version": ""}


def test_yaml_aliases_that_expand_a_small_document_into_a_huge_one_are_refused_quickly():
    # 1 MB of text, aliased 20 times, and that list 10 times: 200 MB once expanded, in a few hundred values.
    text = f"application: shop\nname: big\nblob: &blob {'x' * 1_000_000}\n"
    text += f"twenty: &twenty [{', '.join(['*blob'] * 20)}]\n"
    text += f"stages: [{', '.join(['*twenty'] * 10)}]\n"
    started = time.monotonic()

    problem = parse_problem(text)

    assert time.monotonic() - started < 5
    assert problem.pointer == "" and "once YAML aliases are expanded" in problem.message
    assert "bytes as JSON" in problem.message and "PIPELINE_DOCUMENT_MAX_BYTES" in problem.message


def test_a_document_under_the_byte_limit_once_expanded_is_accepted():
    text = f"application: shop\nname: small\nblob: &blob {'x' * 100_000}\ncopies: [*blob, *blob, *blob]\n"

    assert parse_document(text)["copies"] == ["x" * 100_000] * 3


def test_many_duplicate_keys_are_reported_in_linear_time():
    # 60,000 keys (about 650 KB), half of them repeated: quadratic checking took 90 s.
    body = ", ".join(f'"k{index % 30_000}": {index}' for index in range(60_000))
    started = time.monotonic()

    with pytest.raises(InvalidDocument) as raised:
        parse_document("{" + body + "}")

    assert time.monotonic() - started < 5
    assert len(raised.value.problems) == 30_000
    assert raised.value.problems[0].message == "is a duplicate key; only the last value would be kept"
