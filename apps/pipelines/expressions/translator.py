"""Translating SpEL tokens into the Python expression text that the sandboxed evaluator runs."""

from __future__ import annotations

import ast
import functools
import keyword
import math

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.java_types import java_type
from apps.pipelines.expressions.methods import ALL_METHOD_NAMES, check_member_name
from apps.pipelines.expressions.tokens import Token, tokenize

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
_SELECTIONS = ("?", "!", "^", "$")
_MISSING = {
    ")": "unbalanced parentheses: missing ')'",
    "]": "missing ']'",
    "}": "missing '}' closing the inline list or map",
    ":": "the ternary operator needs a ':' branch (condition ? a : b)",
}


@functools.lru_cache(maxsize=2048)
def compile_expression(expression: str) -> ast.expr:
    """Translate one SpEL expression and parse the result into a Python expression tree; raises Refusal."""
    try:
        return ast.parse(translate(expression), mode="eval").body
    except RecursionError:
        raise Refusal("the expression is nested too deeply") from None
    except (SyntaxError, MemoryError, ValueError) as error:
        raise Refusal(f"the expression cannot be parsed ({error})") from None


def translate(expression: str) -> str:
    """The Python text the evaluator runs for one SpEL expression (useful when debugging translations)."""
    return _Translator(tokenize(expression)).translate()


class _Translator:
    """Recursive-descent parser following SpEL's precedence; each method returns Python source text.

    From loosest to tightest: ternary and Elvis, or, and, comparison and ``matches`` (one per level, as in
    SpEL), ``+ -``, ``* / %``, ``^``, unary ``! - +``, then primaries with ``.``, ``?.`` and ``[...]``.
    Every operand is parenthesized, so Python's own precedence never matters.
    """

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.index = 0

    def translate(self) -> str:
        if self._peek().kind == "end":
            raise Refusal("empty expression")
        python = self._ternary()
        token = self._peek()
        if token.key == ")":
            raise Refusal(f"unbalanced parentheses: unexpected ')' at position {token.position}")
        if token.kind != "end":
            raise Refusal(f"unexpected {token.describe()}")
        return python

    # Token helpers

    def _peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def _next(self) -> Token:
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
        raise Refusal(missing if token.kind == "end" else f"{missing}; found {token.describe()}")

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
            raise Refusal(f"the '{word}' operator is not supported")
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
            if token.key in _SELECTIONS and self._accept("["):
                # Selection .?[...] (all), .^[...] (first), .$[...] (last), projection .![...]: the criterion is
                # evaluated once per element, with the element as #this, by the evaluator (spel_select).
                criterion = self._ternary()
                self._expect("]")
                return f"spel_select({receiver}, {token.key!r}, {criterion})"
            raise Refusal(f"expected a property or method name after '.', found {token.describe()}")
        name = token.text
        check_member_name(name)
        if null_safe:
            receiver = f"spel_safe({receiver})"
        elif receiver[0].isdigit():
            receiver = f"({receiver})"  # "1.toString()" would read as the float "1." in Python
        if self._accept("("):
            if name not in ALL_METHOD_NAMES:
                raise Refusal(f"method {name}() is not supported")
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
            raise Refusal("unexpected end of the expression")
        raise Refusal(f"unexpected {token.describe()}")

    def _name(self, token: Token) -> str:
        word = token.key
        if word in _LITERAL_WORDS:
            return _LITERAL_WORDS[word]
        if token.text == "T" and self._accept("("):
            name = self._type_name()
            self._expect(")")
            return f"spel_type({name!r})"
        if word == "new":
            name = self._type_name()
            if not self._accept("("):
                raise Refusal(f"new {name} needs its arguments in parentheses: new {name}(...)")
            return f"spel_new({', '.join([repr(name), *filter(None, [self._arguments()])])})"
        if word in _OPERATOR_WORDS:
            raise Refusal(f"unexpected operator {token.describe()}")
        if self._peek().key == "(":
            raise Refusal(f"'{token.text}(...)' is not supported; functions are called as #{token.text}(...)")
        if keyword.iskeyword(token.text):
            return f"spel_var({token.text!r})"  # a variable called "from" cannot be a Python name
        return token.text

    def _type_name(self) -> str:
        """A dotted Java type name (``java.util.UUID``), which must be on the allow-list; raises Refusal."""
        parts = [self._next()]
        while self._peek().key == "." and self._peek(1).kind == "name":
            self.index += 1
            parts.append(self._next())
        if any(part.kind != "name" for part in parts):
            raise Refusal(f"expected a type name, found {parts[-1].describe()}")
        name = ".".join(part.text for part in parts)
        return java_type(name).name

    def _function_call(self, name: str) -> str:
        if name in ("root", "this") and self._peek().key != "(":
            return f"spel_{name}()"  # SpEL's variables: the evaluation's root object, the current element
        if not self._accept("("):
            raise Refusal(f"'#{name}' must be called as a function: #{name}(...)")
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
            raise Refusal(f"the number {text} is out of range")
        return repr(number)
    try:
        return str(int(text))  # also drops leading zeros, which Python source does not allow
    except ValueError:
        raise Refusal(f"the number {text[:20]}... is too long") from None
