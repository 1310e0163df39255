"""A small parser and evaluator for Xero's ``where`` query parameter.

Xero evaluates ``where`` with a Dynamic-LINQ style grammar. The stand-in implements the subset that
integrations actually send, with a real tokenizer so that quotes, apostrophes and non-ASCII text inside
string literals cannot break the filter (regexes over the whole string would):

    expr      := or
    or        := and (("||" | "OR") and)*
    and       := unary (("&&" | "AND") unary)*
    unary     := "!" unary | "(" expr ")" | operand [cmp operand]
    operand   := literal | path ("." method "(" args ")")*
    literal   := "string" | number | true | false | null | guid("...") | DateTime(y, m, d[, h, mi, s])

String comparisons are case-insensitive, as in Xero (its store collates case-insensitively).
"""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Union

__all__ = [
    "FieldSpec",
    "Node",
    "WhereError",
    "equality_hints",
    "evaluate",
    "parse_where",
]


class WhereError(ValueError):
    """The ``where`` expression is malformed or uses something the stand-in does not support."""


# A field schema maps a property name to its type name ("string", "guid", "date", "datetime",
# "number", "bool") or to a nested schema (e.g. ``Contact`` on an invoice).
FieldSpec = Mapping[str, Union[str, "FieldSpec"]]

_STRING_METHODS = {"tolower": "ToLower", "toupper": "ToUpper", "trim": "Trim"}
_PREDICATE_METHODS = {"contains": "Contains", "startswith": "StartsWith", "endswith": "EndsWith"}
_COMPARISON_OPS = {"==", "!=", ">=", "<=", ">", "<"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # STRING NUMBER IDENT OP LPAREN RPAREN COMMA DOT EOF
    text: str
    pos: int
    value: Any = None


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant; ``kind`` is string, number, bool, null, guid or datetime."""

    kind: str
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    """A property path such as ``("Contact", "ContactID")``."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A string method applied to an operand, e.g. ``Name.ToLower()`` or ``Name.Contains("x")``."""

    target: Operand
    method: str
    args: tuple[Operand, ...]


Operand = Literal | Field | Call


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``."""

    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare boolean operand, e.g. ``IsCustomer`` or ``Name.Contains("x")``."""

    operand: Operand


@dataclass(frozen=True, slots=True)
class Not:
    """``!expr``."""

    item: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``&&`` (``op == "and"``) or ``||`` (``op == "or"``) over two or more items."""

    op: str
    items: tuple[Node, ...]


Node = Compare | Truthy | Not | BoolOp


_PUNCTUATION = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", ".": "DOT"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            token, i = _read_string(text, i)
        elif ch.isdigit() or (ch == "-" and i + 1 < n and text[i + 1].isdigit()):
            token, i = _read_number(text, i)
        elif ch.isalpha() or ch == "_":
            token, i = _read_identifier(text, i)
        else:
            token, i = _read_symbol(text, i)
        tokens.append(token)
    tokens.append(_Token("EOF", "", n))
    return tokens


def _read_string(text: str, start: int) -> tuple[_Token, int]:
    n = len(text)
    i = start + 1
    out: list[str] = []
    while True:
        if i >= n:
            raise WhereError(f"Unterminated string literal at position {start}")
        c = text[i]
        # As real Xero: no escapes. A backslash is itself, and the first quote ends the string, so
        # `Name=="a\"b"` is a syntax error (400 QueryParseException), not a name with a quote.
        if c == '"':
            i += 1
            break
        out.append(c)
        i += 1
    return _Token("STRING", text[start:i], start, "".join(out)), i


def _read_number(text: str, start: int) -> tuple[_Token, int]:
    n = len(text)
    i = start + 1
    while i < n and (text[i].isdigit() or text[i] == "."):
        i += 1
    raw = text[start:i]
    try:
        num = Decimal(raw)
    except InvalidOperation as exc:
        raise WhereError(f"Invalid number '{raw}' at position {start}") from exc
    return _Token("NUMBER", raw, start, num), i


def _read_identifier(text: str, start: int) -> tuple[_Token, int]:
    n = len(text)
    i = start
    while i < n and (text[i].isalnum() or text[i] == "_"):
        i += 1
    return _Token("IDENT", text[start:i], start), i


def _read_symbol(text: str, start: int) -> tuple[_Token, int]:
    ch = text[start]
    two = text[start : start + 2]
    if two in ("==", "!=", ">=", "<=", "&&", "||", "<>"):
        return _Token("OP", "!=" if two == "<>" else two, start), start + 2
    if ch in "<>!=":
        return _Token("OP", "==" if ch == "=" else ch, start), start + 1
    if ch in _PUNCTUATION:
        return _Token(_PUNCTUATION[ch], ch, start), start + 1
    raise WhereError(f"Syntax error '{ch}' at position {start}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return tok

    def expect(self, kind: str) -> _Token:
        tok = self.take()
        if tok.kind != kind:
            found = tok.text or "end of expression"
            raise WhereError(f"Expected {kind.lower()} but found '{found}' at position {tok.pos}")
        return tok

    def _is_keyword(self, tok: _Token, *words: str) -> bool:
        return tok.kind == "IDENT" and tok.text.lower() in words

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "EOF":
            raise WhereError(f"Syntax error '{tok.text}' at position {tok.pos}")
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while (self.peek().kind == "OP" and self.peek().text == "||") or self._is_keyword(self.peek(), "or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while (self.peek().kind == "OP" and self.peek().text == "&&") or self._is_keyword(self.peek(), "and"):
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def parse_unary(self) -> Node:
        tok = self.peek()
        if (tok.kind == "OP" and tok.text == "!") or self._is_keyword(tok, "not"):
            self.take()
            return Not(self.parse_unary())
        if tok.kind == "LPAREN":
            self.take()
            inner = self.parse_or()
            self.expect("RPAREN")
            return inner
        left = self.parse_operand()
        nxt = self.peek()
        if nxt.kind == "OP" and nxt.text in _COMPARISON_OPS:
            self.take()
            right = self.parse_operand()
            return Compare(left, nxt.text, right)
        return Truthy(left)

    def parse_operand(self) -> Operand:
        tok = self.take()
        if tok.kind == "STRING":
            return Literal("string", tok.value)
        if tok.kind == "NUMBER":
            return Literal("number", tok.value)
        if tok.kind != "IDENT":
            found = tok.text or "end of expression"
            raise WhereError(f"Expression expected but found '{found}' at position {tok.pos}")
        word = tok.text.lower()
        if word in ("true", "false"):
            return Literal("bool", word == "true")
        if word == "null":
            return Literal("null", None)
        if word == "guid" and self.peek().kind == "LPAREN":
            self.take()
            raw = self.expect("STRING").value
            self.expect("RPAREN")
            try:
                return Literal("guid", str(uuid.UUID(raw)))
            except ValueError as exc:
                raise WhereError(f"'{raw}' is not a valid Guid") from exc
        if word == "datetime" and self.peek().kind == "LPAREN":
            return self._parse_datetime()
        operand: Operand = Field((tok.text,))
        while self.peek().kind == "DOT":
            self.take()
            name = self.expect("IDENT")
            if self.peek().kind == "LPAREN":
                operand = self._parse_call(operand, name)
            elif isinstance(operand, Field):
                operand = Field((*operand.path, name.text))
            else:
                raise WhereError(f"Property access after a method call is not supported at {name.pos}")
        return operand

    def _parse_call(self, target: Operand, name: _Token) -> Call:
        self.expect("LPAREN")
        args: list[Operand] = []
        if self.peek().kind != "RPAREN":
            args.append(self.parse_operand())
            while self.peek().kind == "COMMA":
                self.take()
                args.append(self.parse_operand())
        self.expect("RPAREN")
        key = name.text.lower()
        if key in _STRING_METHODS:
            if args:
                raise WhereError(f"No applicable method '{name.text}' takes {len(args)} arguments")
            return Call(target, _STRING_METHODS[key], ())
        if key in _PREDICATE_METHODS:
            if len(args) != 1:
                raise WhereError(f"No applicable method '{name.text}' takes {len(args)} arguments")
            return Call(target, _PREDICATE_METHODS[key], tuple(args))
        raise WhereError(f"No applicable method '{name.text}' exists")

    def _parse_datetime(self) -> Literal:
        self.expect("LPAREN")
        parts: list[int] = []
        while True:
            tok = self.expect("NUMBER")
            if not tok.text.lstrip("-").isdigit():
                raise WhereError(f"DateTime arguments must be integers, found '{tok.text}'")
            parts.append(int(tok.text))
            if self.peek().kind == "COMMA":
                self.take()
                continue
            break
        self.expect("RPAREN")
        if len(parts) not in (3, 6):
            raise WhereError("DateTime expects (year, month, day) or (year, month, day, hour, minute, second)")
        try:
            full = [*parts, 0, 0, 0][:6]
            value = dt.datetime(full[0], full[1], full[2], full[3], full[4], full[5], tzinfo=dt.UTC)
        except ValueError as exc:
            raise WhereError(f"Invalid DateTime{tuple(parts)}: {exc}") from exc
        return Literal("datetime", value)


def _operand_type(operand: Operand, schema: FieldSpec, entity: str) -> str:
    if isinstance(operand, Literal):
        return operand.kind
    if isinstance(operand, Call):
        target_type = _operand_type(operand.target, schema, entity)
        if target_type not in ("string", "guid"):
            raise WhereError(f"No applicable method '{operand.method}' exists in type '{target_type}'")
        for arg in operand.args:
            if _operand_type(arg, schema, entity) not in ("string", "guid"):
                raise WhereError(f"Method '{operand.method}' expects a string argument")
        return "string" if operand.method in ("ToLower", "ToUpper", "Trim") else "bool"
    spec: FieldSpec | str = schema
    owner = entity
    for name in operand.path:
        if isinstance(spec, str):
            raise WhereError(f"No property or field '{name}' exists in type '{owner}'")
        match = next((key for key in spec if key.lower() == name.lower()), None)
        if match is None:
            raise WhereError(f"No property or field '{name}' exists in type '{owner}'")
        spec = spec[match]
        owner = match
    if not isinstance(spec, str):
        raise WhereError(f"'{'.'.join(operand.path)}' is an object and cannot be compared")
    return spec


_COMPATIBLE = {
    "string": {"string", "guid"},
    "guid": {"string", "guid"},
    "date": {"datetime", "date"},
    "datetime": {"datetime", "date"},
    "number": {"number"},
    "bool": {"bool"},
}


def _check(node: Node, schema: FieldSpec, entity: str) -> None:
    if isinstance(node, BoolOp):
        for item in node.items:
            _check(item, schema, entity)
    elif isinstance(node, Not):
        _check(node.item, schema, entity)
    elif isinstance(node, Truthy):
        if _operand_type(node.operand, schema, entity) != "bool":
            raise WhereError("Expression of type 'Boolean' expected")
    else:
        left = _operand_type(node.left, schema, entity)
        right = _operand_type(node.right, schema, entity)
        if "null" in (left, right):
            if node.op not in ("==", "!="):
                raise WhereError(f"Operator '{node.op}' cannot be applied to null")
            return
        if right not in _COMPATIBLE.get(left, set()):
            raise WhereError(
                f"Operator '{node.op}' incompatible with operand types '{left.title()}' and '{right.title()}'"
            )
        if left == "bool" and node.op not in ("==", "!="):
            raise WhereError(f"Operator '{node.op}' incompatible with operand types 'Boolean' and 'Boolean'")


def parse_where(text: str, schema: FieldSpec, entity: str) -> Node:
    """Parse and type-check ``text`` against ``schema``; raise :class:`WhereError` when it is invalid."""
    if not text.strip():
        raise WhereError("The where clause is empty")
    node = _Parser(text).parse()
    _check(node, schema, entity)
    return node


Getter = Callable[[tuple[str, ...]], Any]


_STRING_TRANSFORMS: dict[str, Callable[[str], str]] = {"ToLower": str.lower, "ToUpper": str.upper, "Trim": str.strip}
_STRING_PREDICATES: dict[str, Callable[[str, str], bool]] = {
    "Contains": lambda haystack, needle: needle in haystack,
    "StartsWith": str.startswith,
    "EndsWith": str.endswith,
}


def _value(operand: Operand, getter: Getter) -> Any:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Field):
        return getter(operand.path)
    target = _value(operand.target, getter)
    if target is None:
        return None
    text = str(target)
    transform = _STRING_TRANSFORMS.get(operand.method)
    if transform is not None:
        return transform(text)
    arg = _value(operand.args[0], getter)
    if arg is None:
        return False
    predicate: Callable[[str, str], bool] = _STRING_PREDICATES.get(operand.method, str.endswith)
    return predicate(text.casefold(), str(arg).casefold())


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


_COMPARATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None or right is None:
        if op == "==":
            return left is None and right is None
        if op == "!=":
            return not (left is None and right is None)
        return False
    a, b = _normalise(left), _normalise(right)
    try:
        return bool(_COMPARATORS.get(op, operator.le)(a, b))
    except TypeError:
        return False


def evaluate(node: Node, getter: Getter) -> bool:
    """Evaluate a parsed expression; ``getter`` returns the value at a field path (or None)."""
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(item, getter) for item in node.items)
        return any(evaluate(item, getter) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, getter)
    if isinstance(node, Truthy):
        return bool(_value(node.operand, getter))
    return _compare(_value(node.left, getter), node.op, _value(node.right, getter))


def equality_hints(node: Node) -> dict[str, str]:
    """Exact ``Field == "literal"`` conditions that must all hold, keyed by dotted field path.

    Used to narrow candidates through an index before evaluating the full expression; the full
    expression is still evaluated on every candidate, so a hint only has to be implied by ``node``.
    """
    if isinstance(node, BoolOp):
        if node.op != "and":
            return {}
        hints: dict[str, str] = {}
        for item in node.items:
            hints.update(equality_hints(item))
        return hints
    if isinstance(node, Compare) and node.op == "==":
        pairs = ((node.left, node.right), (node.right, node.left))
        for field, literal in pairs:
            if isinstance(field, Field) and isinstance(literal, Literal) and literal.kind in ("string", "guid"):
                return {".".join(field.path).lower(): str(literal.value)}
    return {}
