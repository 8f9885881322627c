"""simpleeval narrowed to the translator's output, with SpEL's rules for names, properties and calls."""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

from apps.pipelines.expressions.budget import Budget, concatenate, multiply, power
from apps.pipelines.expressions.errors import ExpressionError, Refusal, describe_exception
from apps.pipelines.expressions.functions import BUILDING_FUNCTIONS
from apps.pipelines.expressions.java_types import JavaType, construct, java_type, static_field
from apps.pipelines.expressions.methods import check_member_name, java_method
from apps.pipelines.expressions.values import HELPERS, is_integer, type_name

# The node types the translator emits; simpleeval's others (comprehensions, f-strings, slices,
# assignments...) are refused even though the translator never produces them.
_ALLOWED_NODES = frozenset(
    {
        ast.Name,
        ast.Constant,
        ast.Call,
        ast.Attribute,
        ast.Subscript,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.List,
        ast.Dict,
    }
)
# simpleeval's own operators, restricted to those the translator emits directly; those that can build a
# large value (``*``, ``^``, SpEL's ``+``) are the budget's (see __init__).
_OPERATORS = {
    operator_type: simpleeval.DEFAULT_OPERATORS[operator_type]
    for operator_type in (
        *(ast.Sub, ast.Not, ast.USub, ast.UAdd),
        *(ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE),
    )
}
# Nodes whose value is built by the expression (not read from the variables): counted against the budget.
_BUILT = {ast.List: "the inline list", ast.Dict: "the inline map"}


class SpelEvaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval narrowed to the translator's output, with SpEL's rules for names, properties and calls."""

    def __init__(
        self, variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]], budget: Budget | None = None
    ):
        self.budget = budget or Budget()
        callables: dict[str, Callable[..., Any]] = {
            **HELPERS,
            "spel_add": functools.partial(concatenate, self.budget),
            **{f"fn_{name}": function for name, function in functions.items()},
        }
        operators: dict[Any, Callable[..., Any]] = {
            **_OPERATORS,
            ast.Mult: functools.partial(multiply, self.budget),
            ast.Pow: functools.partial(power, self.budget),
        }
        super().__init__(operators=operators, functions=callables, names=variables)
        for name in ("list", "tuple", "dict", "set"):  # added by EvalWithCompoundTypes; never needed here
            self.functions.pop(name, None)
        self.nodes: dict[type, Callable[..., Any]] = {
            node_type: handler for node_type, handler in self.nodes.items() if node_type in _ALLOWED_NODES
        }
        # The elements a selection or projection is visiting, innermost last: names are read from it (#this).
        self._elements: list[Any] = []
        # The calls the translator emits for SpEL constructs that are not plain functions.
        self._special: dict[str, Callable[[list[ast.expr]], Any]] = {
            "spel_var": self._named_variable,
            "spel_root": self._root,
            "spel_this": self._this,
            "spel_type": self._type,
            "spel_new": self._new,
            "spel_select": self._select,
        }

    def _eval(self, node: ast.AST) -> Any:
        self.budget.tick()
        value = super()._eval(node)
        built = _BUILT.get(type(node))
        return value if built is None else self.budget.built(value, built)

    def _variable(self, name: str) -> Any:
        """A bare name: a key of the element being visited, else of the root; unknown keys are null (as in Orca)."""
        scope = self._elements[-1] if self._elements else self.names
        if isinstance(scope, Mapping):
            return scope.get(name)
        raise Refusal(f"a {type_name(scope)} has no property '{name}'")

    def _eval_name(self, node: ast.Name) -> Any:
        # Only the caller's variables: never simpleeval's fallback to the functions table.
        return self._variable(node.id)

    def _receiver(self, node: ast.expr) -> tuple[bool, Any]:
        """Evaluate what a property, index or method applies to; (True, None) when ``?.`` met null."""
        if isinstance(node, ast.Call) and _is_helper_call(node, "spel_safe"):
            value = self._eval(node.args[0])
            return value is None, value
        return False, self._eval(node)

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        check_member_name(node.attr)
        null, container = self._receiver(node.value)
        return None if null else _lookup(container, node.attr, node.value)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        null, container = self._receiver(node.value)
        return None if null else _lookup(container, self._eval(node.slice), node.value)

    def _eval_call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute):
            return self._call_method(node.func, node.args)
        assert isinstance(node.func, ast.Name)  # the translator only emits calls of plain names or of methods
        name = node.func.id
        if name == "spel_elvis":
            # Lazy, like SpEL: the fallback is only evaluated when the value is null or ''.
            value = self._eval(node.args[0])
            return self._eval(node.args[1]) if value is None or value == "" else value
        if name in self._special:
            return self._special[name](node.args)
        if name not in self.functions:
            raise Refusal(f"unknown function #{name.removeprefix('fn_')}")
        arguments = [self._eval(argument) for argument in node.args]
        if not name.startswith("fn_"):
            return self.functions[name](*arguments)
        try:
            result = self.functions[name](*arguments)
        except Refusal:
            raise
        except Exception as error:  # noqa: BLE001  (a function's failure is reported as the expression's)
            reason = error.reason if isinstance(error, ExpressionError) else describe_exception(error)
            raise Refusal(f"#{name[3:]}(...) failed: {reason}") from error
        # A function building a value (#toJson, #readYaml, #jsonFromUrl...) is counted; one reading the
        # execution (#stage...) is not: it hands out what is already there.
        if name[3:] in BUILDING_FUNCTIONS or isinstance(result, str):
            return self.budget.built(result, f"the result of #{name[3:]}(...)")
        return result

    # The calls the translator emits for SpEL constructs that are not plain functions (see self._special).

    def _named_variable(self, arguments: list[ast.expr]) -> Any:
        return self._variable(arguments[0].value)  # type: ignore[attr-defined]

    def _root(self, arguments: list[ast.expr]) -> Any:
        return self.names

    def _this(self, arguments: list[ast.expr]) -> Any:
        return self._elements[-1] if self._elements else self.names

    def _type(self, arguments: list[ast.expr]) -> Any:
        return java_type(arguments[0].value)  # type: ignore[attr-defined]

    def _new(self, arguments: list[ast.expr]) -> Any:
        values = [self._eval(argument) for argument in arguments[1:]]
        try:
            return construct(arguments[0].value, *values)  # type: ignore[attr-defined]
        except TypeError:
            raise Refusal(f"new {arguments[0].value}(...) does not take {len(values)} argument(s)") from None  # type: ignore[attr-defined]

    def _select(self, arguments: list[ast.expr]) -> Any:
        """Selection (``?`` all, ``^`` first, ``$`` last) or projection (``!``) over a list or a map's entries."""
        source = self._eval(arguments[0])
        kind, criterion = arguments[1].value, arguments[2]  # type: ignore[attr-defined]
        if isinstance(source, Mapping):
            elements: list[Any] = [{"key": key, "value": value} for key, value in source.items()]
        elif isinstance(source, list | tuple):
            elements = list(source)
        else:
            raise Refusal(f"selection and projection apply to a list or a map, not to a {type_name(source)}")
        chosen = []
        for element in elements:
            self._elements.append(element)
            try:
                outcome = self._eval(criterion)
            finally:
                self._elements.pop()
            if kind == "!":
                chosen.append(outcome)
            elif not isinstance(outcome, bool):
                raise Refusal(f"a selection's criterion must be true or false, not a {type_name(outcome)}")
            elif outcome:
                chosen.append(element)
                if kind == "^":
                    break
        if kind == "$":
            chosen = chosen[-1:]
        if isinstance(source, Mapping) and kind != "!":
            return self.budget.built({entry["key"]: entry["value"] for entry in chosen}, "the selection")
        if kind in ("^", "$"):
            return chosen[0] if chosen else None
        return self.budget.built(chosen, "the selection" if kind != "!" else "the projection")

    def _call_method(self, func: ast.Attribute, argument_nodes: list[ast.expr]) -> Any:
        null, receiver = self._receiver(func.value)
        if null:
            return None
        method = java_method(receiver, func.attr, _describe(func.value))
        arguments = [self._eval(argument) for argument in argument_nodes]
        try:
            inspect.signature(method).bind(receiver, *arguments)
        except TypeError:
            raise Refusal(f"{func.attr}() does not take {len(arguments)} argument(s)") from None
        try:
            result = method(receiver, *arguments)
        except TypeError as error:
            raise Refusal(f"{func.attr}() cannot be used with these arguments: {error}") from error
        # What a method builds is counted; what it reads out of a value (get) was counted, or is the execution's.
        return result if func.attr == "get" else self.budget.built(result, f"the result of {func.attr}()")


def _is_helper_call(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _lookup(container: Any, key: Any, receiver: ast.expr) -> Any:
    """SpEL property or index access on plain data: map keys, list and string positions; a miss is an error."""
    path = _describe(receiver)
    if isinstance(container, Mapping):
        return container.get(key)  # an unknown key is null, as pipelines evaluate in Orca (allowUnknownKeys)
    if isinstance(container, JavaType) and isinstance(key, str):
        return static_field(container, key)
    if isinstance(container, list | tuple | str):
        if not is_integer(key):
            raise Refusal(f"{path} is a {type_name(container)}; it has no property {key!r}")
        if not 0 <= key < len(container):
            raise Refusal(f"index {key} is out of range for {path} (size {len(container)})")
        return container[key]
    if container is None:
        raise Refusal(f"{path} is null; cannot read {key!r}")
    raise Refusal(f"{path} is a {type_name(container)}; cannot read {key!r}")


def _describe(node: ast.expr) -> str:
    """A SpEL-looking path for error messages, rebuilt from the translated tree: ``trigger.tags[0]``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_describe(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return f"{_describe(node.value)}[{_describe(node.slice)}]"
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return f"{_describe(node.func.value)}.{node.func.attr}()"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "spel_safe":
            return _describe(node.args[0])
        if node.func.id == "spel_var" and isinstance(node.args[0], ast.Constant):
            return str(node.args[0].value)
        if node.func.id.startswith("fn_"):
            return f"#{node.func.id[3:]}(...)"
    return "the value"
