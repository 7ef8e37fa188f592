"""The Pebble templates of the flows, evaluated the way Kestra 1.3 evaluates them: strictly.

Kestra builds its engine with ``strictVariables(true)`` (``io.kestra.core.runners.VariableRenderer``),
so reading what is not there is an error, never an empty string:

- a root variable that is not in the context (``inputs`` on an execution without inputs, ``trigger``
  on one started through the API) throws Pebble's ``RootAttributeNotFoundException``;
- a map key that is absent (``MapResolver``: ``!containsKey``) throws ``AttributeNotFoundException``;
  a key present with a null value reads as null;
- an attribute of null throws (``GetAttributeExpression``: "Attempt to get attribute of null object").

Kestra reports them as "Unable to find `x` used in the expression `...` at line n". Only four
forms tolerate a missing key, each read from its source: Kestra's ``??`` (``NullCoalescingExpression``:
an AttributeNotFoundException or a null on the left gives the right) and ``???``
(``UndefinedCoalescingExpression``: only the exception), Pebble's ``is defined`` test
(``PositiveTestExpression`` special-cases ``DefinedTest``) and ``default`` filter
(``FilterExpression`` special-cases ``DefaultFilter``).

This module implements the subset the flows use, with Pebble's operator precedences
(``CoreExtension``: or 10, and 15, is/is not 20, ==/!= 30, | 100, Kestra's ??/??? 120, unary not
500) and ternary ``a ? b : c``: ``{{ }}`` prints (Kestra's ``JsonWriter``: null prints nothing,
maps and lists as JSON), ``{% if %}/{% elseif %}/{% else %}/{% endif %}``, ``{# #}`` comments,
``-`` whitespace control; string, number, boolean and null literals, lists and maps; attribute
and subscript access; filters ``toJson`` (Kestra's ``ToJsonFilter``) and ``default``; tests
``empty``, ``null``, ``defined``; the function ``secret`` (given by the caller). Anything else is
a :class:`PebbleSyntaxError` saying it is outside the subset, so the linter refuses what the fake
could not evaluate faithfully.

:func:`compile_template` gives a :class:`Template` that renders (:meth:`Template.render`) and tells
which variables it reads and whether each read tolerates absence (:meth:`Template.reads`), for
the flow linter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from console.engines.kestra.jackson import java_double, to_json


class PebbleError(Exception):
    """A template Kestra would fail to render (its ``IllegalVariableEvaluationException``)."""


class PebbleSyntaxError(PebbleError):
    """The template does not parse, or uses Pebble syntax outside the subset evaluated here."""


class UndefinedError(PebbleError):
    """Pebble's ``AttributeNotFoundException`` (a root variable, a map key or an attribute of
    null that is not there), worded as Kestra's ``VariableRenderer.properPebbleException``."""

    def __init__(self, attribute: str, template: str = "", line: int = 1) -> None:
        self.attribute = attribute
        self.template = template
        self.line = line
        super().__init__(attribute)

    def __str__(self) -> str:
        where = f"used in the expression `{self.template}` at line {self.line}"
        return f"Unable to find `{self.attribute}` {where}"


FILTERS = frozenset({"toJson", "default"})
TESTS = frozenset({"empty", "null", "defined"})
FUNCTIONS = frozenset({"secret"})

# -- lexing ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\?\?\?|\?\?|==|!=|<=|>=|\.\.|[-+*/%~<>.,:()\[\]{}|?=!])
    """,
    re.VERBOSE,
)
_WORD_OPERATORS = {"and", "or", "not", "is", "contains", "equals"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # string | number | name | op | end
    text: str
    line: int


def _lex_expression(source: str, start: int, closer: str, line: int) -> tuple[list[_Tok], int, bool]:
    """Tokens from ``start`` up to the closing delimiter; returns (tokens, index after it, whether
    the closer had ``-`` whitespace control)."""
    tokens: list[_Tok] = []
    i = start
    while i < len(source):
        if source.startswith("-" + closer, i):
            return tokens, i + 1 + len(closer), True
        if source.startswith(closer, i):
            return tokens, i + len(closer), False
        m = _TOKEN.match(source, i)
        if m is None:
            raise PebbleSyntaxError(f"unexpected character {source[i]!r} at line {line}")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            line += text.count("\n")
        else:
            tokens.append(_Tok(kind, text, line))
        i = m.end()
    raise PebbleSyntaxError(f"{closer!r} is missing (opened at line {line})")


@dataclass
class _Text:
    text: str


@dataclass
class _Print:
    expression: _Node
    line: int


@dataclass
class _If:
    branches: list[tuple[_Node, list[Any]]]  # (condition, body); the else branch has condition None
    line: int


def _segments(source: str) -> list[tuple[str, Any, int]]:
    """("text", str, line) / ("print", tokens, line) / ("tag", tokens, line), with ``-`` whitespace
    control applied and comments dropped."""
    out: list[tuple[str, Any, int]] = []
    i, trim_next = 0, False
    while True:
        found = [k for k in (source.find(o, i) for o in ("{{", "{%", "{#")) if k >= 0]
        j = min(found) if found else -1
        text = source[i:] if j < 0 else source[i:j]
        if trim_next:
            text = text.lstrip()
        if j >= 0 and source[j : j + 2] != "{#" and source.startswith("-", j + 2):
            text = text.rstrip()
        if text:
            out.append(("text", text, source.count("\n", 0, i) + 1))
        if j < 0:
            return out
        line = source.count("\n", 0, j) + 1
        if source[j : j + 2] == "{#":
            end = source.find("#}", j + 2)
            if end < 0:
                raise PebbleSyntaxError(f"the comment opened at line {line} is never closed")
            i, trim_next = end + 2, False
            continue
        opener = source[j : j + 2]
        start = j + 2 + (1 if source.startswith("-", j + 2) else 0)
        tokens, i, trim_next = _lex_expression(source, start, "}}" if opener == "{{" else "%}", line)
        out.append(("print" if opener == "{{" else "tag", tokens, line))


# -- the expression tree -----------------------------------------------------------------------------


class _Node:
    def evaluate(self, ctx: _Context) -> Any:
        raise NotImplementedError

    def children(self) -> list[_Node]:
        return []


@dataclass
class _Context:
    variables: Mapping[str, Any]
    functions: Mapping[str, Callable[..., Any]]
    template: str


@dataclass
class _Literal(_Node):
    value: Any

    def evaluate(self, ctx: _Context) -> Any:
        return self.value


@dataclass
class _Var(_Node):
    name: str
    line: int

    def evaluate(self, ctx: _Context) -> Any:
        if self.name not in ctx.variables:  # RootAttributeNotFoundException
            raise UndefinedError(self.name, ctx.template, self.line)
        return ctx.variables[self.name]


@dataclass
class _Attr(_Node):
    target: _Node
    key: _Node  # a literal for `.name`, any expression for `[expr]`
    line: int

    def evaluate(self, ctx: _Context) -> Any:
        obj = self.target.evaluate(ctx)
        key = self.key.evaluate(ctx)
        if obj is None:  # "Attempt to get attribute of null object"
            raise UndefinedError(str(key), ctx.template, self.line)
        if isinstance(obj, Mapping):
            if key not in obj:  # MapResolver: strict and !containsKey
                raise UndefinedError(str(key), ctx.template, self.line)
            return obj[key]
        if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(obj):
                raise UndefinedError(str(key), ctx.template, self.line)
            return obj[key]
        raise UndefinedError(str(key), ctx.template, self.line)

    def children(self) -> list[_Node]:
        return [self.target, self.key]


@dataclass
class _List(_Node):
    items: list[_Node]

    def evaluate(self, ctx: _Context) -> Any:
        return [item.evaluate(ctx) for item in self.items]

    def children(self) -> list[_Node]:
        return list(self.items)


@dataclass
class _Map(_Node):
    items: list[tuple[_Node, _Node]]

    def evaluate(self, ctx: _Context) -> Any:
        return {k.evaluate(ctx): v.evaluate(ctx) for k, v in self.items}

    def children(self) -> list[_Node]:
        return [n for pair in self.items for n in pair]


@dataclass
class _Call(_Node):
    name: str
    args: list[_Node]
    line: int

    def evaluate(self, ctx: _Context) -> Any:
        function = ctx.functions.get(self.name)
        if function is None:
            raise PebbleError(f"Function or Macro [{self.name}] does not exist (line {self.line})")
        return function(*[arg.evaluate(ctx) for arg in self.args])

    def children(self) -> list[_Node]:
        return list(self.args)


def _boolean(value: Any, what: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise PebbleError(f"{what} expects a boolean, got {type(value).__name__}")


@dataclass
class _Binary(_Node):
    op: str
    left: _Node
    right: _Node

    def evaluate(self, ctx: _Context) -> Any:
        if self.op == "??":  # NullCoalescingExpression
            try:
                value = self.left.evaluate(ctx)
            except UndefinedError:
                return self.right.evaluate(ctx)
            return value if value is not None else self.right.evaluate(ctx)
        if self.op == "???":  # UndefinedCoalescingExpression
            try:
                return self.left.evaluate(ctx)
            except UndefinedError:
                return self.right.evaluate(ctx)
        if self.op == "and":
            return _boolean(self.left.evaluate(ctx), "and") and _boolean(self.right.evaluate(ctx), "and")
        if self.op == "or":
            return _boolean(self.left.evaluate(ctx), "or") or _boolean(self.right.evaluate(ctx), "or")
        left, right = self.left.evaluate(ctx), self.right.evaluate(ctx)
        equal = isinstance(left, bool) == isinstance(right, bool) and left == right
        return equal if self.op == "==" else not equal

    def children(self) -> list[_Node]:
        return [self.left, self.right]


@dataclass
class _Not(_Node):
    operand: _Node

    def evaluate(self, ctx: _Context) -> Any:
        return not _boolean(self.operand.evaluate(ctx), "not")

    def children(self) -> list[_Node]:
        return [self.operand]


@dataclass
class _Ternary(_Node):
    condition: _Node
    then: _Node
    otherwise: _Node

    def evaluate(self, ctx: _Context) -> Any:
        chosen = self.then if _boolean(self.condition.evaluate(ctx), "?:") else self.otherwise
        return chosen.evaluate(ctx)

    def children(self) -> list[_Node]:
        return [self.condition, self.then, self.otherwise]


def _is_empty(value: Any) -> bool:
    """Pebble's ``EmptyTest``: null, a blank string, an empty collection or map."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, list | tuple | dict):
        return len(value) == 0
    return False


@dataclass
class _Test(_Node):
    operand: _Node
    name: str
    negated: bool

    def evaluate(self, ctx: _Context) -> Any:
        if self.name == "defined":  # the one test that tolerates an undefined operand
            try:
                result = self.operand.evaluate(ctx) is not None
            except UndefinedError:
                result = False
        else:
            value = self.operand.evaluate(ctx)
            result = value is None if self.name == "null" else _is_empty(value)
        return not result if self.negated else result

    def children(self) -> list[_Node]:
        return [self.operand]


@dataclass
class _Filter(_Node):
    operand: _Node
    name: str
    args: list[_Node]

    def evaluate(self, ctx: _Context) -> Any:
        if self.name == "default":  # the one filter that tolerates an undefined input
            try:
                value = self.operand.evaluate(ctx)
            except UndefinedError:
                value = None
            return self.args[0].evaluate(ctx) if _is_empty(value) else value
        value = self.operand.evaluate(ctx)
        return "null" if value is None else to_json(value)  # ToJsonFilter

    def children(self) -> list[_Node]:
        return [self.operand, *self.args]


# -- parsing -----------------------------------------------------------------------------------------

_PRECEDENCE = {
    "or": 10, "and": 15, "is": 20, "is not": 20, "==": 30, "!=": 30, "|": 100, "??": 120, "???": 120,
}  # fmt: skip


def _outside(what: str, line: int, known: frozenset[str] = frozenset()) -> PebbleSyntaxError:
    supported = f" (supported: {', '.join(sorted(known))})" if known else ""
    what = f"{what} (line {line})"
    return PebbleSyntaxError(f"{what} is outside the Pebble subset the console evaluates{supported}")


_WORD_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}
_T = TypeVar("_T")


def _string(tok: _Tok) -> _Literal:
    """A quoted string without its quotes and backslash escapes (no interpolation in double quotes)."""
    body = tok.text[1:-1]
    if tok.text.startswith('"') and "#{" in body:
        raise _outside("string interpolation", tok.line)
    return _Literal(re.sub(r"\\(.)", r"\1", body))


_OUTSIDE = {"contains", "equals", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "~", ".."}


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> _Tok:
        i = self.pos + offset
        if i < len(self.tokens):
            return self.tokens[i]
        line = self.tokens[-1].line if self.tokens else 1
        return _Tok("end", "", line)

    def take(self) -> _Tok:
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.take()
        if tok.text != text or tok.kind not in ("op", "name"):
            raise PebbleSyntaxError(f"expected {text!r} at line {tok.line}, found {tok.text or 'the end'!r}")
        return tok

    def done(self) -> None:
        tok = self.peek()
        if tok.kind != "end":
            raise PebbleSyntaxError(f"unexpected {tok.text!r} at line {tok.line}")

    def _operator(self) -> str | None:
        tok = self.peek()
        if tok.kind == "name" and tok.text == "is":
            return "is not" if self.peek(1).kind == "name" and self.peek(1).text == "not" else "is"
        if tok.kind in ("op", "name") and tok.text in _PRECEDENCE:
            return tok.text
        if tok.kind in ("op", "name") and tok.text in _OUTSIDE:
            raise _outside(f"operator {tok.text!r}", tok.line)
        return None

    def expression(self, minimum: int = 0) -> _Node:
        left = self.unary()
        while (op := self._operator()) is not None and _PRECEDENCE[op] >= minimum:
            self.take()
            if op == "is not":
                self.take()
            if op in ("is", "is not"):
                name = self.take()
                if name.kind != "name" or name.text not in TESTS:
                    raise _outside(f"test {name.text!r}", name.line, TESTS)
                left = _Test(left, name.text, op == "is not")
            elif op == "|":
                left = self.filter(left)
            else:
                left = _Binary(op, left, self.expression(_PRECEDENCE[op] + 1))
        if minimum == 0 and self.peek().text == "?" and self.peek().kind == "op":
            self.take()
            then = self.expression()
            self.expect(":")
            left = _Ternary(left, then, self.expression())
        return left

    def filter(self, operand: _Node) -> _Node:
        name = self.take()
        if name.kind != "name" or name.text not in FILTERS:
            raise _outside(f"filter {name.text!r}", name.line, FILTERS)
        args = self.arguments() if self.peek().text == "(" else []
        if name.text == "default" and len(args) != 1:
            raise PebbleSyntaxError(f"filter default takes one argument (line {name.line})")
        if name.text == "toJson" and args:
            raise PebbleSyntaxError(f"filter toJson takes no argument (line {name.line})")
        return _Filter(operand, name.text, args)

    def arguments(self) -> list[_Node]:
        self.expect("(")
        args: list[_Node] = []
        while self.peek().text != ")":
            if self.peek().kind == "end":
                raise PebbleSyntaxError("')' is missing")
            args.append(self.expression())
            if self.peek().text == ",":
                self.take()
        self.expect(")")
        return args

    def unary(self) -> _Node:
        tok = self.peek()
        if tok.kind == "name" and tok.text == "not":
            self.take()
            return _Not(self.expression(500))
        if tok.kind == "op" and tok.text in ("-", "+"):
            raise _outside(f"unary {tok.text!r}", tok.line)
        return self.postfix(self.primary())

    def primary(self) -> _Node:
        tok = self.take()
        if tok.kind == "string":
            return _string(tok)
        if tok.kind == "number":
            return _Literal(float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind == "name":
            return self._word(tok)
        if tok.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if tok.text == "[":
            return _List(self._items("]", self.expression))
        if tok.text == "{":
            return _Map(self._items("}", self._pair))
        raise PebbleSyntaxError(f"unexpected {tok.text or 'end of expression'!r} at line {tok.line}")

    def _word(self, tok: _Tok) -> _Node:
        """A literal word (true, false, null, none), a function call or a variable."""
        word = tok.text
        if word in _WORD_LITERALS:
            return _Literal(_WORD_LITERALS[word])
        if word in _WORD_OPERATORS:
            raise PebbleSyntaxError(f"unexpected {word!r} at line {tok.line}")
        if self.peek().text == "(":
            if word not in FUNCTIONS:
                raise _outside(f"function {word!r}", tok.line)
            return _Call(word, self.arguments(), tok.line)
        return _Var(word, tok.line)

    def _items(self, close: str, item: Callable[[], _T]) -> list[_T]:
        """The items of a list or map literal up to ``close`` (taken), comma-separated (a trailing
        comma is allowed)."""
        items: list[_T] = []
        while self.peek().text != close:
            items.append(item())
            if self.peek().text == ",":
                self.take()
            elif self.peek().text != close:
                raise PebbleSyntaxError(f"expected ',' or '{close}' at line {self.peek().line}")
        self.take()
        return items

    def _pair(self) -> tuple[_Node, _Node]:
        key = self.expression()
        self.expect(":")
        return key, self.expression()

    def postfix(self, node: _Node) -> _Node:
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text == ".":
                self.take()
                name = self.take()
                if name.kind not in ("name", "number"):
                    raise PebbleSyntaxError(f"expected an attribute name after '.' at line {name.line}")
                if self.peek().text == "(":
                    raise _outside(f"method call .{name.text}()", name.line)
                key: Any = int(name.text) if name.kind == "number" else name.text
                node = _Attr(node, _Literal(key), name.line)
            elif tok.kind == "op" and tok.text == "[":
                self.take()
                key_node = self.expression()
                self.expect("]")
                node = _Attr(node, key_node, tok.line)
            else:
                return node


def _tag_name(tokens: list[_Tok]) -> str:
    return tokens[0].text if tokens and tokens[0].kind == "name" else ""


def _parse_body(segments: list[tuple[str, Any, int]], pos: int, stop: set[str]) -> tuple[list[Any], int]:
    body: list[Any] = []
    while pos < len(segments):
        kind, value, line = segments[pos]
        if kind == "text":
            body.append(_Text(value))
        elif kind == "print":
            parser = _Parser(value)
            if not value:
                raise PebbleSyntaxError(f"empty {{{{ }}}} at line {line}")
            node = parser.expression()
            parser.done()
            body.append(_Print(node, line))
        else:
            name = _tag_name(value)
            if name in stop:
                return body, pos
            if name != "if":
                raise _outside(f"tag {{% {name or '?'} %}}", line)
            node, pos = _parse_if(segments, pos)
            body.append(node)
        pos += 1
    return body, pos


def _parse_if(segments: list[tuple[str, Any, int]], pos: int) -> tuple[_If, int]:
    branches: list[tuple[Any, list[Any]]] = []
    _, tokens, line = segments[pos]
    while True:
        name = _tag_name(tokens)
        condition = None
        if name in ("if", "elseif"):
            parser = _Parser(tokens[1:])
            if len(tokens) < 2:
                raise PebbleSyntaxError(f"{{% {name} %}} without a condition at line {line}")
            condition = parser.expression()
            parser.done()
        elif len(tokens) > 1:
            raise PebbleSyntaxError(f"{{% else %}} takes no condition (line {line})")
        body, pos = _parse_body(segments, pos + 1, {"elseif", "else", "endif"})
        branches.append((condition, body))
        if pos >= len(segments):
            raise PebbleSyntaxError(f"{{% endif %}} is missing for the {{% if %}} at line {line}")
        _, tokens, line = segments[pos]
        end = _tag_name(tokens)
        if end == "endif":
            return _If(branches, line), pos
        if condition is None:
            raise PebbleSyntaxError(f"{{% {end} %}} after {{% else %}} at line {line}")


# -- the compiled template ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A variable a template reads: its static path from the root (``("inputs", "service")``) and
    whether the read tolerates absence (``??``, ``???``, ``is defined``, ``default``)."""

    path: tuple[str, ...]
    guarded: bool


def _printed(value: Any) -> str:
    """What Kestra's ``JsonWriter`` writes for a printed value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dict | list | tuple):
        return to_json(value)
    return str(value)


@dataclass
class Template:
    source: str
    body: list[Any] = field(default_factory=list)

    def render(
        self, variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]] | None = None
    ) -> str:
        """The rendered text (Kestra's ``render`` with ``stringify``); PebbleError when Kestra's
        rendering would fail."""
        ctx = _Context(variables, functions or {}, self.source)
        out: list[str] = []
        self._render(self.body, ctx, out)
        return "".join(out)

    def _render(self, body: list[Any], ctx: _Context, out: list[str]) -> None:
        for node in body:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Print):
                out.append(_printed(node.expression.evaluate(ctx)))
            else:
                for condition, branch in node.branches:
                    if condition is None or _boolean(condition.evaluate(ctx), "{% if %}"):
                        self._render(branch, ctx, out)
                        break

    def reads(self) -> list[Read]:
        found: list[Read] = []
        for expression in self._expressions(self.body):
            _collect(expression, False, found)
        return found

    def _expressions(self, body: list[Any]) -> Iterator[_Node]:
        for node in body:
            if isinstance(node, _Print):
                yield node.expression
            elif isinstance(node, _If):
                for condition, branch in node.branches:
                    if condition is not None:
                        yield condition
                    yield from self._expressions(branch)


def _path(node: _Node) -> tuple[str, ...] | None:
    if isinstance(node, _Var):
        return (node.name,)
    if isinstance(node, _Attr) and isinstance(node.key, _Literal):
        head = _path(node.target)
        return None if head is None else (*head, str(node.key.value))
    return None


def _collect(node: _Node, guarded: bool, out: list[Read]) -> None:
    path = _path(node)
    if path is not None:
        out.append(Read(path, guarded))
        return
    if isinstance(node, _Binary) and node.op in ("??", "???"):
        _collect(node.left, True, out)
        _collect(node.right, guarded, out)
    elif isinstance(node, _Test) and node.name == "defined":
        _collect(node.operand, True, out)
    elif isinstance(node, _Filter) and node.name == "default":
        _collect(node.operand, True, out)
        for arg in node.args:
            _collect(arg, guarded, out)
    else:
        for child in node.children():
            _collect(child, guarded, out)


@functools.lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Parse ``source`` (a flow property); PebbleSyntaxError when it is outside the subset."""
    segments = list(_segments(source))
    body, pos = _parse_body(segments, 0, set())
    if pos < len(segments):
        _, tokens, line = segments[pos]
        raise PebbleSyntaxError(f"{{% {_tag_name(tokens)} %}} without its {{% if %}} at line {line}")
    return Template(source, body)


def is_template(value: Any) -> bool:
    """Whether Kestra would render ``value`` (a string with a ``{``: ``VariableRenderer`` skips
    the others)."""
    return isinstance(value, str) and "{" in value


def render(
    source: str, variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]] | None = None
) -> str:
    """Render one flow property as Kestra does (a string without ``{`` is returned as is)."""
    if not is_template(source):
        return source
    return compile_template(source).render(variables, functions)


def render_value(
    value: Any, variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]] | None = None
) -> Any:
    """``VariableRenderer.renderObject``: strings rendered, maps and lists rendered inside, anything
    else returned as it is."""
    if isinstance(value, str):
        return render(value, variables, functions)
    if isinstance(value, dict):
        return {render(str(k), variables, functions): render_value(v, variables, functions)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [render_value(v, variables, functions) for v in value]
    return value
