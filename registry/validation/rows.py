"""Row checks by pydantic models built at run time from the Table Schemas.

Semantics follow frictionless (the reference): the same parsing of integers, numbers and dates,
the same anchored patterns, `""` as the only missing value. Checks frictionless does not make
(SIREN checksum, non-finite numbers) have codes of their own (see `messages.FRICTIONLESS`).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError

from registry.standard import FieldSpec, TableSpec

CONFIG = ConfigDict(extra="ignore", regex_engine="python-re", hide_input_in_errors=True)

CellError = tuple[str, str, dict[str, str]]  # field name, code, params


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _type_error(kind: str) -> PydanticCustomError:
    return PydanticCustomError("type-error", "{kind}", {"kind": kind})


def _bounds(spec: FieldSpec, value: Decimal | int) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise PydanticCustomError("out-of-range", "min", {"kind": "min"})
    if spec.maximum is not None and value > spec.maximum:
        raise PydanticCustomError("out-of-range", "max", {"kind": "max"})


def _integer(spec: FieldSpec) -> Callable[[str], int]:
    def parse(cell: str) -> int:
        try:
            value = int(cell.strip())
        except ValueError:
            raise _type_error("integer") from None
        _bounds(spec, value)
        return value

    return parse


def _number(spec: FieldSpec) -> Callable[[str], Decimal]:
    def parse(cell: str) -> Decimal:
        try:
            value = Decimal(cell.strip())
        except (InvalidOperation, ValueError):
            raise _type_error("number") from None
        if not value.is_finite():
            # frictionless: NaN fails any bound, ±Infinity fails the bound it crosses; the rest is ours
            if value.is_nan() and (spec.minimum is not None or spec.maximum is not None):
                raise PydanticCustomError("out-of-range", "nan", {"kind": "min" if spec.minimum is not None else "max"})
            _bounds(spec, value)
            raise PydanticCustomError("not-finite", "not finite")
        _bounds(spec, value)
        return value

    return parse


# What strptime("%Y-%m-%d") accepts, for plain ASCII input; anything else goes to strptime itself.
ISO_DATE = re.compile(r"(\d{4})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9])", re.ASCII)


def _date(cell: str) -> dt.date:
    try:
        m = ISO_DATE.fullmatch(cell)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        return dt.datetime.strptime(cell, "%Y-%m-%d").date()
    except ValueError:
        raise _type_error("date") from None


def _luhn(cell: str) -> str:
    if not luhn_ok(cell):
        raise PydanticCustomError("siren-checksum", "checksum")
    return cell


def annotation(spec: FieldSpec) -> Any:
    """The pydantic type of one field; most checks run in pydantic-core, not in Python."""
    if spec.type == "integer":
        return Annotated[int, BeforeValidator(_integer(spec))]
    if spec.type == "number":
        return Annotated[Decimal, BeforeValidator(_number(spec))]
    if spec.type == "date":
        return Annotated[dt.date, BeforeValidator(_date)]
    if spec.enum:
        return Literal[spec.enum]
    base: Any = Annotated[str, StringConstraints(
        pattern=f"^{spec.pattern}$" if spec.pattern else None,
        min_length=spec.min_length, max_length=spec.max_length)]
    if "luhn" in spec.checks:
        base = Annotated[base, AfterValidator(_luhn)]
    return base


def attribute(name: str) -> str:
    """The model attribute for a field: its own name, unless BaseModel already uses it."""
    return f"field_{name}" if hasattr(BaseModel, name) or name.startswith("model_") else name


def build_model(table: TableSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for spec in table.fields:
        default = ... if spec.required else None
        fields[attribute(spec.name)] = (annotation(spec), Field(default, alias=spec.name))
    return create_model(f"Row_{table.name}", __config__=CONFIG, **fields)


_BUILT: dict[tuple[int, Any], tuple[Any, Any]] = {}


def _built(spec: Any, build: Callable[[Any], Any]) -> Any:
    """What `build` makes of a (frozen, schema-derived) spec, made once per spec: pydantic models and
    adapters take milliseconds to build, and a harvest checks thousands of small files."""
    key = (id(spec), build)
    hit = _BUILT.get(key)
    if hit is None or hit[0] is not spec:
        hit = _BUILT[key] = (spec, build(spec))
    return hit[1]


def _adapters(spec: FieldSpec) -> tuple[TypeAdapter[Any], Any]:
    either = Annotated[Union[annotation(spec), _REFUSED], Field(union_mode="left_to_right")]  # noqa: UP007
    return (TypeAdapter(annotation(spec), config=CONFIG),
            TypeAdapter(list[either], config=CONFIG).validator)  # type: ignore[valid-type]


@dataclass
class RowResult:
    values: dict[str, Any] | None  # typed values, None when the row has errors
    errors: list[CellError]


class Refused(str):
    """A value its field's type refused (the second branch of a field's "value or refused" union)."""


_REFUSED = Annotated[str, AfterValidator(Refused)]
MEMO_LIMIT = 200_000  # distinct values remembered per field
MISS = object()


class FieldMemo:
    """One field's pydantic type (the same annotation as in the row model), remembering the values it
    accepted: codes, dates, SIRENs and communes repeat across rows, so each distinct value is checked once."""

    def __init__(self, spec: FieldSpec) -> None:
        self.adapter, self.many = _built(spec, _adapters)
        self.accepted: dict[str, Any] = {}

    def typed_many(self, values: list[str]) -> dict[str, Any]:
        """Typed values of many new values in one pydantic call (MISS for the invalid ones)."""
        typed = self.many.validate_python(values)
        return {v: MISS if type(t) is Refused else t for v, t in zip(values, typed, strict=True)}

    def remember(self, typed: dict[str, Any]) -> None:
        room = MEMO_LIMIT - len(self.accepted)
        if room > 0:
            self.accepted.update((v, t) for v, t in list(typed.items())[:room] if t is not MISS)

    def typed(self, value: str) -> Any:
        """The typed value, or MISS when the value is invalid (the row model then says why)."""
        found = self.accepted.get(value, MISS)
        if found is MISS:
            try:
                found = self.adapter.validate_python(value)
            except ValidationError:
                return MISS
            if len(self.accepted) < MEMO_LIMIT:
                self.accepted[value] = found
        return found


def _plain_text(spec: FieldSpec) -> bool:
    """A free-text field: only lengths to check, nothing worth remembering."""
    return spec.type == "string" and not (spec.enum or spec.pattern or spec.checks)


class RowChecker:
    """Checks rows of one table: a dict of non-empty cells in, typed values or cell errors out.

    The row model (pydantic, built from the schema) is the judge. A fast path answers first for rows it can
    prove valid (required fields present, each value accepted by its field's type); any other row goes
    through the row model, which gives the errors.
    """

    def __init__(self, table: TableSpec) -> None:
        self.table = table
        self.model = _built(table, build_model)
        self.specs = table.by_name
        self.validator = self.model.__pydantic_validator__
        self.renamed = {attribute(s.name): s.name for s in table.fields if attribute(s.name) != s.name}
        self._item_res = {
            s.name: re.compile(f"^{s.item_pattern}$") for s in table.fields if s.item_pattern
        }
        self.required = frozenset(table.required_names)
        self.texts = {s.name: (s.min_length or 0, s.max_length or sys.maxsize)
                      for s in table.fields if _plain_text(s)}
        self.memos = {s.name: FieldMemo(s) for s in table.fields if not _plain_text(s)}

    def fast(self, cells: dict[str, str]) -> dict[str, Any] | None:
        """Typed values when the row is certainly valid, else None."""
        if not self.required <= cells.keys():
            return None
        values: dict[str, Any] = {}
        texts, memos = self.texts, self.memos
        for name, value in cells.items():
            bounds = texts.get(name)
            if bounds is not None:
                if not bounds[0] <= len(value) <= bounds[1]:
                    return None
                values[name] = value
                continue
            memo = memos.get(name)
            if memo is not None:
                typed = memo.typed(value)
                if typed is MISS:
                    return None
                values[name] = typed
        return values

    def partial(self, cells: dict[str, str], bad: set[str]) -> dict[str, Any]:
        """Typed values of the cells not in `bad` (a row with errors elsewhere), for the checks that
        only need those: geography, rules between valid fields."""
        values: dict[str, Any] = {}
        for name, value in cells.items():
            if name in bad:
                continue
            memo = self.memos.get(name)
            if memo is None:
                if name in self.texts:
                    values[name] = value
                continue
            typed = memo.typed(value)
            if typed is not MISS:
                values[name] = typed
        return values

    def check(self, cells: dict[str, str]) -> RowResult:
        values = self.fast(cells)
        if values is not None:
            return RowResult(values, [])
        try:
            values = self.validator.validate_python(cells).__dict__
        except ValidationError as exc:
            return RowResult(None, [self._error(e, cells) for e in exc.errors(include_url=False)])
        if self.renamed:
            values = {self.renamed.get(k, k): v for k, v in values.items()}
        return RowResult(values, [])

    def _error(self, err: Any, cells: dict[str, str]) -> CellError:
        name = str(err["loc"][0])
        spec = self.specs[name]
        kind = err["type"]
        value = cells.get(name, "")
        params: dict[str, str] = {}
        if kind == "missing":
            return name, "missing-value", params
        if kind == "literal_error":
            return name, "enum-mismatch", params
        if kind == "string_pattern_mismatch":
            if spec.is_list:
                params["item"] = self.bad_item(spec, value)
                return name, "list-item-invalid", params
            return name, "pattern-mismatch", params
        if kind in ("string_too_long", "string_too_short"):
            params["length"] = str(len(value))
            params["limit"] = str(spec.max_length if kind == "string_too_long" else spec.min_length)
            return name, "too-long" if kind == "string_too_long" else "too-short", params
        if kind in ("type-error", "out-of-range"):
            params["kind"] = str(err.get("ctx", {}).get("kind", ""))
            return name, kind, params
        if kind in ("not-finite", "siren-checksum"):
            return name, kind, params
        raise AssertionError(f"unmapped pydantic error {kind} on {name}")  # a schema feature not handled

    def bad_item(self, spec: FieldSpec, value: str) -> str:
        sep = spec.list_separator or "|"
        for item in value.split(sep):
            if spec.item_enum is not None and item not in spec.item_enum:
                return item
            if spec.name in self._item_res and not self._item_res[spec.name].match(item):
                return item
        return value
