"""A pipeline's ``parameterConfig``: checking it, and resolving the parameters an execution gets."""

from __future__ import annotations

from typing import Any

from apps.pipelines.definition.checks import EXPECTED, list_of_objects, optional_types, required_text, unstorable_text
from apps.pipelines.problems import InvalidDocument, Problem, pointer_join


def parameter_config_problems(parameters: Any) -> list[Problem]:
    """The problems of ``parameterConfig``: names present and unique, known keys typed, options and defaults."""
    problems, items = list_of_objects(parameters, "/parameterConfig")
    first_index: dict[str, int] = {}
    for index, parameter in items:
        pointer = pointer_join("/parameterConfig", index)
        name_problems = required_text(parameter, "name", pointer)
        name = parameter.get("name")
        if not name_problems and first_index.setdefault(name, index) != index:
            message = f"duplicate parameter {name!r}: parameter {first_index[name]} already has it"
            name_problems.append(Problem(pointer_join(pointer, "name"), message))
        problems += name_problems
        expected = {"required": bool, "pinned": bool, "hasOptions": bool, "description": str, "label": str}
        problems += optional_types(parameter, pointer, expected)
        problems += _parameter_options_problems(parameter, pointer)
    return problems


def _parameter_options_problems(parameter: dict, pointer: str) -> list[Problem]:
    """Options are ``{"value": ...}`` objects or plain strings; a default must be one of them."""
    problems = []
    options = parameter.get("options")
    if options is not None and not isinstance(options, list):
        problems.append(Problem(pointer_join(pointer, "options"), EXPECTED[list]))
    for index, option in enumerate(options if isinstance(options, list) else ()):
        where = pointer_join(pointer, "options", index)
        if not isinstance(option, dict):
            if _as_parameter_text(option) is None:
                problems.append(Problem(where, 'must be a string or a {"value": "..."} object'))
        elif option.get("value") is None:
            problems.append(Problem(pointer_join(where, "value"), "is required"))
        elif _as_parameter_text(option["value"]) is None:
            problems.append(Problem(pointer_join(where, "value"), EXPECTED[str]))
    default = parameter.get("default")
    if default is not None and _as_parameter_text(default) is None:
        problems.append(Problem(pointer_join(pointer, "default"), EXPECTED[str]))
    choices = parameter_options(parameter)
    if choices and _as_parameter_text(default) not in (None, "", *choices):
        message = f"must be one of the options: {', '.join(choices)}"
        problems.append(Problem(pointer_join(pointer, "default"), message))
    return problems


def parameter_options(parameter: dict) -> list[str]:
    """The values a parameter is limited to, or [] when it takes any value.

    Spinnaker keeps ``options: [{"value": ""}]`` on parameters whose
    ``hasOptions`` is false, so options only count when ``hasOptions`` is not
    false, and empty values never count.
    """
    options = parameter.get("options")
    if parameter.get("hasOptions") is False or not isinstance(options, list):
        return []
    values = [_as_parameter_text(option.get("value") if isinstance(option, dict) else option) for option in options]
    return [value for value in values if value]


def _as_parameter_text(value: Any) -> str | None:
    """A parameter value as the text Spinnaker passes on; None for values that have no such form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def resolve_parameters(doc: dict, given: dict, pass_undeclared: bool = False) -> dict:
    """Return an execution's parameters: the given values, checked, plus defaults for the rest.

    Every parameter declared in ``parameterConfig`` gets a value: the given
    one, else its default, else "" (as Spinnaker passes). Numbers and booleans
    given are turned into text ("true"/"false"). Raises InvalidDocument with
    every problem, at ``/parameters/<name>``: a required parameter left
    empty, a value that is not one of the options, a name the pipeline does
    not declare, a value that is an object or a list.

    With ``pass_undeclared`` (a parent pipeline starting this one), values for names the pipeline does not
    declare are passed on as given, as Orca's DependentPipelineStarter does, instead of being refused.
    """
    config = doc.get("parameterConfig")
    given = given or {}
    declared = [
        parameter
        for parameter in (config if isinstance(config, list) else [])
        if isinstance(parameter, dict) and isinstance(parameter.get("name"), str) and parameter["name"]
    ]
    names = [parameter["name"] for parameter in declared]
    problems: list[Problem] = []
    resolved: dict[str, Any] = {}
    for parameter in declared:
        name = parameter["name"]
        if name in resolved:
            continue  # a duplicate declaration; validate_pipeline reports it
        value, problem = _resolve_parameter(parameter, given.get(name))
        if problem:
            problems.append(Problem(pointer_join("/parameters", name), problem))
        else:
            resolved[name] = value
    known = ", ".join(names) or "(none)"
    for name in given:
        if name in names:
            continue
        where = pointer_join("/parameters", str(name))
        if not pass_undeclared:
            problems.append(Problem(where, f"is not a parameter of this pipeline; known: {known}"))
            continue
        text = _as_parameter_text(given[name])
        reason = unstorable_text(text) if text is not None else None
        if reason:
            problems.append(Problem(where, reason))
        else:
            resolved[str(name)] = given[name] if text is None else text
    if problems:
        raise InvalidDocument(problems)
    return resolved


def _resolve_parameter(parameter: dict, given: Any) -> tuple[str, str | None]:
    """One parameter's value and, when it is refused, why."""
    if given is not None:
        value = _as_parameter_text(given)
        if value is None:
            return "", "must be a string"
        unstorable = unstorable_text(value)
        if unstorable:
            return "", unstorable
        choices = parameter_options(parameter)
        if value and choices and value not in choices:
            return value, f"must be one of: {', '.join(choices)}"
    else:
        value = _as_parameter_text(parameter.get("default")) or ""
    if value == "" and parameter.get("required") is True:
        return value, "is required"
    return value, None
