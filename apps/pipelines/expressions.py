"""Sandboxed evaluation of Spinnaker-style ``${...}`` expressions written in a subset of SpEL.

Stage contexts carry strings such as ``"v${trigger.buildNumber}"`` or ``"${parameters.env == 'prod'}"``.
Pipeline authors write them, so they never reach Python's ``eval``. Instead:

1. a scanner finds each ``${...}`` in a string, skipping braces inside string literals and inline maps;
2. a tokenizer and a recursive-descent parser translate the SpEL text into a Python expression string
   made only of literals, names, plain operators and a few ``spel_*`` helper calls for the constructs
   whose SpEL meaning differs from Python's (``+`` on strings, integer ``/``, ``?:``, ``?.``, ``matches``);
   SpEL functions ``#name(...)`` become calls to ``fn_name(...)``;
3. a subclass of ``simpleeval.EvalWithCompoundTypes`` evaluates that string. simpleeval parses it with
   ``ast`` and walks only the node types it knows, with its size limits on strings and powers; the
   subclass narrows it further: only the node types the translator emits are accepted, a property
   (``a.b``) is a map key and never a Python attribute, and ``x.method()`` is looked up in fixed tables
   of Java-style methods for strings, lists, maps and numbers. No Python attribute of any value is read.

A string that is exactly one ``${expr}`` evaluates to the value with its type; a string mixing text and
expressions gets each value rendered as text (see ``evaluate``). Every failure is an ``ExpressionError``.
"""

from __future__ import annotations

import ast
import base64
import copy
import functools
import inspect
import json
import keyword
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import simpleeval


class ExpressionError(Exception):
    """An expression that could not be parsed or evaluated.

    ``expression`` is the text inside ``${}``, or the whole string when no expression could be delimited
    (``whole_string`` is then True); ``reason`` is a plain message meant for the pipeline author.
    """

    def __init__(self, expression: str, reason: str, whole_string: bool = False):
        super().__init__(expression, reason, whole_string)
        self.expression = expression
        self.reason = reason
        self.whole_string = whole_string

    def __str__(self) -> str:
        shown = self.expression if self.whole_string else "${" + self.expression + "}"
        return f"{shown}: {self.reason}"


class _Refusal(Exception):
    """A plain-language failure raised while translating or evaluating; wrapped into ExpressionError."""


# ---------------------------------------------------------------------------------------------------------
# Public API


def evaluate(value: Any, variables: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None) -> Any:
    """Evaluate every ``${...}`` in ``value`` and return a new structure; the input is never changed.

    Dict values and list items are walked recursively (dict keys are kept as they are) and values that are
    not strings come back unchanged. A string without ``${`` comes back as it is. A string that is exactly
    one ``${expr}``, give or take surrounding whitespace, becomes the expression's value with its type
    (dict, list, int, bool, None...). Otherwise each ``${expr}`` is replaced by its value as text: strings
    as they are, None as an empty string, booleans as ``true``/``false``, dicts and lists as compact JSON,
    numbers with ``str()``.

    Bare names in expressions come from ``variables``; ``#name(...)`` calls ``functions['name']``, where
    ``functions`` is merged over ``BUILTIN_FUNCTIONS``. Raises ExpressionError on any failure.
    """
    evaluator = _SpelEvaluator(variables, {**BUILTIN_FUNCTIONS, **(functions or {})})
    return _walk(value, evaluator)


def expression_syntax_errors(text: str) -> list[str]:
    """One message per malformed ``${...}`` in ``text`` (unterminated, unparsable, unsupported); [] when fine.

    Only the syntax is checked, so no variables are needed: an unknown variable or function is not reported.
    """
    if not isinstance(text, str) or "${" not in text:
        return []
    spans, unterminated = _scan(text)
    errors = []
    for span in spans:
        try:
            _compile(span.expression)
        except _Refusal as refusal:
            errors.append(str(ExpressionError(span.expression, str(refusal))))
    if unterminated is not None:
        errors.append(str(unterminated))
    return errors


def has_expressions(value: Any) -> bool:
    """Whether any string inside ``value`` (dict values, list items) contains ``${``."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(has_expressions(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_expressions(item) for item in value)
    return False


def is_truthy(value: Any) -> bool:
    """Read a ``stageEnabled`` or precondition result: Python truthiness, except for strings.

    The strings ``"false"``, ``"0"`` and ``""`` (any case, surrounding whitespace ignored) are false; every
    other string, ``"true"`` included, is true.
    """
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0")
    return bool(value)


# ---------------------------------------------------------------------------------------------------------
# Walking values and finding ${...}


@dataclass(frozen=True)
class _Span:
    start: int  # index of the "$"
    end: int  # index just after the closing "}"
    expression: str  # the text between "${" and "}"


def _walk(value: Any, evaluator: _SpelEvaluator) -> Any:
    if isinstance(value, str):
        return _evaluate_string(value, evaluator)
    if isinstance(value, dict):
        return {key: _walk(item, evaluator) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, evaluator) for item in value]
    if isinstance(value, tuple):
        return tuple(_walk(item, evaluator) for item in value)
    return value


def _evaluate_string(text: str, evaluator: _SpelEvaluator) -> Any:
    if "${" not in text:
        return text
    spans, unterminated = _scan(text)
    if unterminated is not None:
        raise unterminated
    first = spans[0]
    if len(spans) == 1 and not text[: first.start].strip() and not text[first.end :].strip():
        return _evaluate_expression(first.expression, evaluator)
    pieces, position = [], 0
    for span in spans:
        value = _evaluate_expression(span.expression, evaluator)
        pieces += [text[position : span.start], "" if value is None else _to_text(value)]
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def _scan(text: str) -> tuple[list[_Span], ExpressionError | None]:
    """The ``${...}`` spans of ``text``, plus the error for an unterminated one (scanning stops there)."""
    spans: list[_Span] = []
    start = text.find("${")
    while start != -1:
        end, reason = _closing_brace(text, start + 2)
        if reason is not None:
            return spans, ExpressionError(text, reason, whole_string=True)
        spans.append(_Span(start, end + 1, text[start + 2 : end]))
        start = text.find("${", end + 1)
    return spans, None


def _closing_brace(text: str, index: int) -> tuple[int, str | None]:
    """Index of the ``}`` closing an expression body that starts at ``index``, or -1 and the reason."""
    depth = 0  # braces of inline lists and maps opened inside the expression
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = _string_literal_end(text, index)
            if index < 0:
                return -1, "unterminated string literal inside ${...}"
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index, None
            depth -= 1
        index += 1
    return -1, "unterminated ${...}: missing the closing '}'"


def _string_literal_end(text: str, start: int) -> int:
    """Index just after the string literal opening at ``start`` (a doubled quote is an escaped quote), or -1."""
    quote = text[start]
    index = start + 1
    while True:
        index = text.find(quote, index)
        if index < 0:
            return -1
        if not text.startswith(quote, index + 1):
            return index + 1
        index += 2


def _evaluate_expression(expression: str, evaluator: _SpelEvaluator) -> Any:
    try:
        result = evaluator.eval(expression, previously_parsed=_compile(expression))
    except ExpressionError as error:  # raised by a caller's function evaluating expressions of its own
        raise ExpressionError(expression, error.reason) from error
    except _Refusal as refusal:
        raise ExpressionError(expression, str(refusal)) from refusal
    except Exception as error:  # noqa: BLE001  (whatever went wrong, callers only have to handle ExpressionError)
        raise ExpressionError(expression, _describe_exception(error)) from error
    # A typed result may be a structure shared with the variables: hand out a copy the caller may change.
    return copy.deepcopy(result) if isinstance(result, dict | list) else result


def _describe_exception(error: Exception) -> str:
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    if isinstance(error, re.error):
        return f"invalid regular expression: {error}"
    return str(error) or type(error).__name__


# ---------------------------------------------------------------------------------------------------------
# Tokenizer

_TOKEN_PATTERN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<number>(?:\d+\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<function>\#[A-Za-z_]\w*)
    | (?P<name>[A-Za-z_]\w*)
    | (?P<symbol>\?\.|\?:|==|!=|<=|>=|&&|\|\||[-+*/%^<>!?:.,()\[\]{}$])
    """,
    re.VERBOSE | re.ASCII,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "string", "function", "name", "symbol" or "end"
    text: str
    position: int

    @property
    def key(self) -> str:
        """What the parser matches: symbols as written, words in lower case (SpEL's ``AND`` is ``and``)."""
        if self.kind == "symbol":
            return self.text
        return self.text.lower() if self.kind == "name" else ""

    def describe(self) -> str:
        return "the end of the expression" if self.kind == "end" else f"'{self.text}' at position {self.position}"


def _tokenize(expression: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(expression):
        match = _TOKEN_PATTERN.match(expression, position)
        if match is None:
            raise _Refusal(_bad_character(expression, position))
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup or "", match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", position))
    return tokens


def _bad_character(expression: str, position: int) -> str:
    char = expression[position]
    if char == "=":
        return "assignment (=) is not supported; use == to compare"
    if char in "'\"":
        return "unterminated string literal"
    if char == "@":
        return "bean references (@name) are not supported"
    return f"unexpected character {char!r} at position {position}"


# ---------------------------------------------------------------------------------------------------------
# Translator: SpEL tokens to a Python expression string

_LITERAL_WORDS = {"true": "True", "false": "False", "null": "None"}
_COMPARISONS = {
    "==": "==",
    "eq": "==",
    "!=": "!=",
    "ne": "!=",
    "<": "<",
    "lt": "<",
    "<=": "<=",
    "le": "<=",
    ">": ">",
    "gt": ">",
    ">=": ">=",
    "ge": ">=",
}
_OPERATOR_WORDS = {"and", "or", "not", "matches", "instanceof", "between", "div", "mod", *_COMPARISONS}
_MISSING = {
    ")": "unbalanced parentheses: missing ')'",
    "]": "missing ']'",
    "}": "missing '}' closing the inline list or map",
    ":": "the ternary operator needs a ':' branch (condition ? a : b)",
}


@functools.lru_cache(maxsize=2048)
def _compile(expression: str) -> ast.expr:
    """Translate one SpEL expression and parse the result into a Python expression tree; raises _Refusal."""
    try:
        return ast.parse(_translate(expression), mode="eval").body
    except RecursionError:
        raise _Refusal("the expression is nested too deeply") from None
    except (SyntaxError, MemoryError, ValueError) as error:
        raise _Refusal(f"the expression cannot be parsed ({error})") from None


def _translate(expression: str) -> str:
    """The Python text the evaluator runs for one SpEL expression (useful when debugging translations)."""
    return _Translator(_tokenize(expression)).translate()


class _Translator:
    """Recursive-descent parser following SpEL's precedence; each method returns Python source text.

    From loosest to tightest: ternary and Elvis, or, and, comparison and ``matches`` (one per level, as in
    SpEL), ``+ -``, ``* / %``, ``^``, unary ``! - +``, then primaries with ``.``, ``?.`` and ``[...]``.
    Every operand is parenthesized, so Python's own precedence never matters.
    """

    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.index = 0

    def translate(self) -> str:
        if self._peek().kind == "end":
            raise _Refusal("empty expression")
        python = self._ternary()
        token = self._peek()
        if token.key == ")":
            raise _Refusal(f"unbalanced parentheses: unexpected ')' at position {token.position}")
        if token.kind != "end":
            raise _Refusal(f"unexpected {token.describe()}")
        return python

    # Token helpers

    def _peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def _accept(self, *keys: str) -> bool:
        if self._peek().key in keys:
            self.index += 1
            return True
        return False

    def _expect(self, symbol: str) -> None:
        if self._accept(symbol):
            return
        token = self._peek()
        missing = _MISSING.get(symbol, f"missing '{symbol}'")
        raise _Refusal(missing if token.kind == "end" else f"{missing}; found {token.describe()}")

    # Operators, loosest first

    def _ternary(self) -> str:
        condition = self._or()
        if self._accept("?:"):
            return f"spel_elvis({condition}, {self._ternary()})"
        if self._accept("?"):
            when_true = self._ternary()
            self._expect(":")
            when_false = self._ternary()
            return f"(({when_true}) if spel_truth({condition}) else ({when_false}))"
        return condition

    def _or(self) -> str:
        operands = [self._and()]
        while self._accept("or", "||"):
            operands.append(self._and())
        return _boolean_chain(operands, "or")

    def _and(self) -> str:
        operands = [self._relational()]
        while self._accept("and", "&&"):
            operands.append(self._relational())
        return _boolean_chain(operands, "and")

    def _relational(self) -> str:
        left = self._additive()
        word = self._peek().key
        if word in _COMPARISONS:
            self._next()
            return f"(({left}) {_COMPARISONS[word]} ({self._additive()}))"
        if word == "matches":
            self._next()
            return f"spel_matches({left}, {self._additive()})"
        if word in ("instanceof", "between"):
            raise _Refusal(f"the '{word}' operator is not supported")
        return left

    def _additive(self) -> str:
        python = self._multiplicative()
        while True:
            if self._accept("+"):
                python = f"spel_add({python}, {self._multiplicative()})"
            elif self._accept("-"):
                python = f"(({python}) - ({self._multiplicative()}))"
            else:
                return python

    def _multiplicative(self) -> str:
        python = self._power()
        while True:
            if self._accept("*"):
                python = f"(({python}) * ({self._power()}))"
            elif self._accept("/", "div"):
                python = f"spel_div({python}, {self._power()})"
            elif self._accept("%", "mod"):
                python = f"spel_mod({python}, {self._power()})"
            else:
                return python

    def _power(self) -> str:
        base = self._unary()
        if self._accept("^"):
            return f"(({base}) ** ({self._unary()}))"
        return base

    def _unary(self) -> str:
        if self._accept("!", "not"):
            return f"(not spel_truth({self._unary()}))"
        if self._accept("-"):
            return f"(-({self._unary()}))"
        if self._accept("+"):
            return f"(+({self._unary()}))"
        return self._postfix()

    # Primaries and what follows them

    def _postfix(self) -> str:
        python = self._primary()
        while True:
            if self._accept("."):
                python = self._member(python, null_safe=False)
            elif self._accept("?."):
                python = self._member(python, null_safe=True)
            elif self._accept("["):
                index = self._ternary()
                self._expect("]")
                python = f"{python}[{index}]"
            else:
                return python

    def _member(self, receiver: str, null_safe: bool) -> str:
        """A property ``.name`` or a method call ``.name(...)`` on ``receiver`` (the '.' is consumed)."""
        token = self._next()
        if token.kind != "name":
            if token.key in ("?", "!", "^", "$") and self._peek().key == "[":
                raise _Refusal("collection selection and projection (.?[...], .![...]) are not supported")
            raise _Refusal(f"expected a property or method name after '.', found {token.describe()}")
        name = token.text
        _check_member_name(name)
        if null_safe:
            receiver = f"spel_safe({receiver})"
        elif receiver[0].isdigit():
            receiver = f"({receiver})"  # "1.toString()" would read as the float "1." in Python
        if self._accept("("):
            if name not in _ALL_METHOD_NAMES:
                raise _Refusal(f"method {name}() is not supported")
            return f"{receiver}.{name}({self._arguments()})"
        if keyword.iskeyword(name):
            return f"{receiver}[{name!r}]"  # a.from is not valid Python; a['from'] reads the same map key
        return f"{receiver}.{name}"

    def _arguments(self) -> str:
        """Comma-separated arguments up to the closing ')'; the '(' is already consumed."""
        arguments: list[str] = []
        if not self._accept(")"):
            arguments.append(self._ternary())
            while self._accept(","):
                arguments.append(self._ternary())
            self._expect(")")
        return ", ".join(arguments)

    def _primary(self) -> str:
        token = self._next()
        if token.kind == "number":
            return _number_literal(token.text)
        if token.kind == "string":
            quote = token.text[0]
            return repr(token.text[1:-1].replace(quote * 2, quote))
        if token.kind == "function":
            return self._function_call(token.text[1:])
        if token.kind == "name":
            return self._name(token)
        if token.key == "(":
            inner = self._ternary()
            self._expect(")")
            return f"({inner})"
        if token.key == "{":
            return self._inline_collection()
        if token.kind == "end":
            raise _Refusal("unexpected end of the expression")
        raise _Refusal(f"unexpected {token.describe()}")

    def _name(self, token: _Token) -> str:
        word = token.key
        if word in _LITERAL_WORDS:
            return _LITERAL_WORDS[word]
        if token.text == "T" and self._peek().key == "(":
            raise _Refusal("type references T(...) are not supported")
        if word == "new":
            raise _Refusal("constructor calls (new ...) are not supported")
        if word in _OPERATOR_WORDS:
            raise _Refusal(f"unexpected operator {token.describe()}")
        if self._peek().key == "(":
            raise _Refusal(f"'{token.text}(...)' is not supported; functions are called as #{token.text}(...)")
        if keyword.iskeyword(token.text):
            return f"spel_var({token.text!r})"  # a variable called "from" cannot be a Python name
        return token.text

    def _function_call(self, name: str) -> str:
        if not self._accept("("):
            raise _Refusal(f"'#{name}' must be called as a function: #{name}(...)")
        return f"fn_{name}({self._arguments()})"

    def _inline_collection(self) -> str:
        """An inline list ``{1, 2}`` or map ``{key: value}``; ``{}`` is an empty list and ``{:}`` an empty map."""
        if self._accept("}"):
            return "[]"
        if self._peek().key == ":" and self._peek(1).key == "}":
            self.index += 2
            return "{}"
        first = self._map_key()
        if self._accept(":"):
            entries = [f"{first}: {self._ternary()}"]
            while self._accept(","):
                key = self._map_key()
                self._expect(":")
                entries.append(f"{key}: {self._ternary()}")
            self._expect("}")
            return "{" + ", ".join(entries) + "}"
        items = [first]
        while self._accept(","):
            items.append(self._ternary())
        self._expect("}")
        return "[" + ", ".join(items) + "]"

    def _map_key(self) -> str:
        # As in SpEL, a bare word before ':' is a string key: {name: 'x'} is {'name': 'x'}.
        token = self._peek()
        if token.kind == "name" and self._peek(1).key == ":":
            self._next()
            return repr(token.text)
        return self._ternary()


def _boolean_chain(operands: list[str], word: str) -> str:
    if len(operands) == 1:
        return operands[0]
    # SpEL's and/or yield booleans, not Python's "last operand"; short-circuiting is kept.
    return "(" + f" {word} ".join(f"spel_truth({operand})" for operand in operands) + ")"


def _number_literal(text: str) -> str:
    if "." in text or "e" in text.lower():
        number = float(text)
        if not math.isfinite(number):
            raise _Refusal(f"the number {text} is out of range")
        return repr(number)
    try:
        return str(int(text))  # also drops leading zeros, which Python source does not allow
    except ValueError:
        raise _Refusal(f"the number {text[:20]}... is too long") from None


def _check_member_name(name: str) -> None:
    # simpleeval's own attribute rules (no "_" or "func_" prefixes, no format/mro...), applied to every
    # property and method name, even though properties are only ever map keys here.
    if name.startswith(tuple(simpleeval.DISALLOW_PREFIXES)) or name in simpleeval.DISALLOW_METHODS:
        raise _Refusal(f"access to '{name}' is not allowed")


# ---------------------------------------------------------------------------------------------------------
# Values as text and SpEL operators


def _to_text(value: Any) -> str:
    """How SpEL shows a value inside a string: as is for strings, true/false, null, JSON for maps and lists."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return _to_json(value)
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _add(left: Any, right: Any) -> Any:
    """SpEL ``+``: when either side is a string, the other is converted to text and the two are joined."""
    if isinstance(left, str) or isinstance(right, str):
        return simpleeval.safe_add(_to_text(left), _to_text(right))
    return simpleeval.safe_add(left, right)


def _divide(left: Any, right: Any) -> Any:
    """SpEL ``/``: integer division truncating toward zero (as in Java) when both sides are integers."""
    if _is_integer(left) and _is_integer(right):
        quotient = abs(left) // abs(right)
        return quotient if (left < 0) == (right < 0) else -quotient
    return left / right


def _modulo(left: Any, right: Any) -> Any:
    """SpEL ``%``: the remainder takes the sign of the dividend, as in Java (Python's follows the divisor)."""
    if right == 0:
        raise ZeroDivisionError
    if _is_integer(left) and _is_integer(right):
        return left - right * _divide(left, right)
    return math.fmod(left, right)


def _matches(value: Any, pattern: Any) -> bool:
    """SpEL ``matches``: the whole value must match the regular expression, as with Java's String.matches."""
    if value is None:
        raise _Refusal("'matches' cannot test null")
    if not isinstance(pattern, str):
        raise _Refusal("the right side of 'matches' must be a string")
    return re.fullmatch(pattern, _to_text(value)) is not None


_HELPERS: dict[str, Callable[..., Any]] = {
    "spel_truth": is_truthy,
    "spel_add": _add,
    "spel_div": _divide,
    "spel_mod": _modulo,
    "spel_matches": _matches,
}


# ---------------------------------------------------------------------------------------------------------
# Java-style methods, looked up by the evaluator for x.method(...) calls


def _checked_index(items: Any, index: Any, method: str) -> Any:
    if not _is_integer(index) or not 0 <= index < len(items):
        raise _Refusal(f"{method}({index!r}) is out of range for a {_type_name(items)} of size {len(items)}")
    return items[index]


def _substring(text: str, start: int, end: int | None = None) -> str:
    end = len(text) if end is None else end
    if not (_is_integer(start) and _is_integer(end) and 0 <= start <= end <= len(text)):
        raise _Refusal(f"substring({start!r}, {end!r}) is out of range for a string of length {len(text)}")
    return text[start:end]


def _replace(text: str, old: str, new: str) -> str:
    occurrences = text.count(old) if old else len(text) + 1
    # Checked before building the result, so a small expression cannot allocate a huge string.
    if occurrences * max(len(new) - len(old), 0) > simpleeval.MAX_STRING_LENGTH:
        raise _Refusal("the result of replace() would be too long")
    return text.replace(old, new)


_JAVA_REPLACEMENT = re.compile(r"\\(.)|\$(\d+)|\$\{([A-Za-z][A-Za-z0-9]*)\}|([^\\$]+)|(.)", re.DOTALL)


def _replace_regex(text: str, pattern: str, replacement: str, count: int) -> str:
    """Java's replaceAll/replaceFirst: ``$1`` and ``${name}`` insert groups, a backslash quotes a character."""
    budget = simpleeval.MAX_STRING_LENGTH

    def substitute(match: re.Match[str]) -> str:
        nonlocal budget
        pieces = []
        for quoted, number, name, literal, other in _JAVA_REPLACEMENT.findall(replacement):
            if number or name:
                pieces.append(match.group(int(number) if number else name) or "")
            else:
                pieces.append(quoted or literal or other)
        piece = "".join(pieces)
        budget -= len(piece)
        if budget < 0:
            raise _Refusal("the result of the replacement would be too long")
        return piece

    return re.sub(pattern, substitute, text, count=count)


def _split(text: str, pattern: str) -> list[str]:
    """Java's String.split(regex): no empty string for a zero-width match at the start, none at the end."""
    parts, position = [], 0
    for match in re.finditer(pattern, text):
        if match.end() == 0:
            continue
        parts.append(text[position : match.start()])
        position = match.end()
    if not parts:
        return [text]
    parts.append(text[position:])
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _index_of(items: list | tuple, item: Any) -> int:
    return items.index(item) if item in items else -1


_COMMON_METHODS: dict[str, Callable[..., Any]] = {
    "equals": lambda value, other: value == other,
    "toString": lambda value: _to_text(value),
}
_STRING_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "charAt": lambda text, index: _checked_index(text, index, "charAt"),
    "contains": lambda text, part: part in text,
    "endsWith": lambda text, suffix: text.endswith(suffix),
    "equalsIgnoreCase": lambda text, other: isinstance(other, str) and text.casefold() == other.casefold(),
    "indexOf": lambda text, part: text.find(part),
    "isEmpty": lambda text: not text,
    "lastIndexOf": lambda text, part: text.rfind(part),
    "length": lambda text: len(text),
    "matches": lambda text, pattern: _matches(text, pattern),
    "replace": _replace,
    "replaceAll": lambda text, pattern, replacement: _replace_regex(text, pattern, replacement, 0),
    "replaceFirst": lambda text, pattern, replacement: _replace_regex(text, pattern, replacement, 1),
    "split": _split,
    "startsWith": lambda text, prefix: text.startswith(prefix),
    "substring": _substring,
    "toLowerCase": lambda text: text.lower(),
    "toUpperCase": lambda text: text.upper(),
    "trim": lambda text: text.strip(),
}
_LIST_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "contains": lambda items, item: item in items,
    "get": lambda items, index: _checked_index(items, index, "get"),
    "indexOf": _index_of,
    "isEmpty": lambda items: not items,
    "size": lambda items: len(items),
}
_MAP_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "containsKey": lambda mapping, key: key in mapping,
    "containsValue": lambda mapping, value: value in mapping.values(),
    "get": lambda mapping, key: mapping.get(key),  # like Java's Map.get: null for a missing key
    "isEmpty": lambda mapping: not mapping,
    "keySet": lambda mapping: list(mapping),
    "size": lambda mapping: len(mapping),
    "values": lambda mapping: list(mapping.values()),
}
_ALL_METHOD_NAMES = frozenset({*_STRING_METHODS, *_LIST_METHODS, *_MAP_METHODS})


def _java_method(receiver: Any, name: str, path: str) -> Callable[..., Any]:
    if receiver is None:
        raise _Refusal(f"{path} is null; cannot call {name}()")
    if isinstance(receiver, str):
        table = _STRING_METHODS
    elif isinstance(receiver, Mapping):
        table = _MAP_METHODS
    elif isinstance(receiver, list | tuple):
        table = _LIST_METHODS
    elif isinstance(receiver, int | float):
        table = _COMMON_METHODS
    else:
        table = {}
    if name not in table:
        raise _Refusal(f"{name}() is not available on {path} (a {_type_name(receiver)})")
    return table[name]


# ---------------------------------------------------------------------------------------------------------
# Built-in #functions


def _require_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got a {_type_name(value)}")
    return value


def _to_int(value: Any) -> int:
    return int(value.strip() if isinstance(value, str) else value)


def _to_float(value: Any) -> float:
    return float(value.strip() if isinstance(value, str) else value)


def _to_boolean(value: Any) -> bool:
    """Java's Boolean.parseBoolean: only "true" (any case) is true; booleans pass through."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return _require_text(value).strip().lower() == "true"


# Merged under the functions a caller passes to evaluate(). There is deliberately no #jsonFromUrl:
# expressions never reach the network.
BUILTIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "alphanumerical": lambda value: re.sub(r"[^A-Za-z0-9]", "", _require_text(value)),
    "fromBase64": lambda value: base64.b64decode(_require_text(value), validate=True).decode("utf-8"),
    "fromJson": lambda value: json.loads(_require_text(value)),
    "readJson": lambda value: json.loads(_require_text(value)),
    "toBase64": lambda value: base64.b64encode(_require_text(value).encode("utf-8")).decode("ascii"),
    "toBoolean": _to_boolean,
    "toFloat": _to_float,
    "toInt": _to_int,
    "toJson": _to_json,
}


# ---------------------------------------------------------------------------------------------------------
# The evaluator

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
# simpleeval's own (size-limited) operators, restricted to those the translator emits directly.
_OPERATORS = {
    operator_type: simpleeval.DEFAULT_OPERATORS[operator_type]
    for operator_type in (
        *(ast.Sub, ast.Mult, ast.Pow, ast.Not, ast.USub, ast.UAdd),
        *(ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE),
    )
}


class _SpelEvaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval narrowed to the translator's output, with SpEL's rules for names, properties and calls."""

    def __init__(self, variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]):
        callables = {**_HELPERS, **{f"fn_{name}": function for name, function in functions.items()}}
        super().__init__(operators=dict(_OPERATORS), functions=callables, names=variables)
        for name in ("list", "tuple", "dict", "set"):  # added by EvalWithCompoundTypes; never needed here
            self.functions.pop(name, None)
        self.nodes = {node_type: handler for node_type, handler in self.nodes.items() if node_type in _ALLOWED_NODES}

    def _variable(self, name: str) -> Any:
        try:
            return self.names[name]
        except KeyError:
            raise _Refusal(f"unknown variable '{name}'") from None

    def _eval_name(self, node: ast.Name) -> Any:
        # Only the caller's variables: never simpleeval's fallback to the functions table.
        return self._variable(node.id)

    def _receiver(self, node: ast.expr) -> tuple[bool, Any]:
        """Evaluate what a property, index or method applies to; (True, None) when ``?.`` met null."""
        if _is_helper_call(node, "spel_safe"):
            value = self._eval(node.args[0])
            return value is None, value
        return False, self._eval(node)

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        _check_member_name(node.attr)
        null, container = self._receiver(node.value)
        return None if null else _lookup(container, node.attr, node.value)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        null, container = self._receiver(node.value)
        return None if null else _lookup(container, self._eval(node.slice), node.value)

    def _eval_call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute):
            return self._call_method(node.func, node.args)
        name = node.func.id  # the translator only emits calls of plain names or of methods
        if name == "spel_elvis":
            # Lazy, like SpEL: the fallback is only evaluated when the value is null or ''.
            value = self._eval(node.args[0])
            return self._eval(node.args[1]) if value is None or value == "" else value
        if name == "spel_var":
            return self._variable(node.args[0].value)
        if name not in self.functions:
            raise _Refusal(f"unknown function #{name.removeprefix('fn_')}")
        arguments = [self._eval(argument) for argument in node.args]
        if not name.startswith("fn_"):
            return self.functions[name](*arguments)
        try:
            return self.functions[name](*arguments)
        except _Refusal:
            raise
        except Exception as error:  # noqa: BLE001  (a function's failure is reported as the expression's)
            reason = error.reason if isinstance(error, ExpressionError) else _describe_exception(error)
            raise _Refusal(f"#{name[3:]}(...) failed: {reason}") from error

    def _call_method(self, func: ast.Attribute, argument_nodes: list[ast.expr]) -> Any:
        null, receiver = self._receiver(func.value)
        if null:
            return None
        method = _java_method(receiver, func.attr, _describe(func.value))
        arguments = [self._eval(argument) for argument in argument_nodes]
        try:
            inspect.signature(method).bind(receiver, *arguments)
        except TypeError:
            raise _Refusal(f"{func.attr}() does not take {len(arguments)} argument(s)") from None
        try:
            return method(receiver, *arguments)
        except TypeError as error:
            raise _Refusal(f"{func.attr}() cannot be used with these arguments: {error}") from error


def _is_helper_call(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _lookup(container: Any, key: Any, receiver: ast.expr) -> Any:
    """SpEL property or index access on plain data: map keys, list and string positions; a miss is an error."""
    path = _describe(receiver)
    if isinstance(container, Mapping):
        if key in container:
            return container[key]
        raise _Refusal(f"{path} has no property {key!r}")
    if isinstance(container, list | tuple | str):
        if not _is_integer(key):
            raise _Refusal(f"{path} is a {_type_name(container)}; it has no property {key!r}")
        if not 0 <= key < len(container):
            raise _Refusal(f"index {key} is out of range for {path} (size {len(container)})")
        return container[key]
    if container is None:
        raise _Refusal(f"{path} is null; cannot read {key!r}")
    raise _Refusal(f"{path} is a {_type_name(container)}; cannot read {key!r}")


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
        if node.func.id == "spel_var":
            return str(node.args[0].value)
        if node.func.id.startswith("fn_"):
            return f"#{node.func.id[3:]}(...)"
    return "the value"
