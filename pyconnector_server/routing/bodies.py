"""The routing rule bodies, typed: TCUP's rule JSON, checked field by field.

A rule reads observations from an ``input`` (the tenant's direct exchange and routing
key, a topic exchange and topic, or a queue), keeps those that pass its ``params``
filters, and sends them to ``output`` (a topic exchange and topic). Every value is
bounded here, before it reaches a table, the broker or :mod:`.engine`; a bad one is a
400 naming the field (``rule.params[3].value[0].operator: must be one of …``). Empty
filter values mean "no filter", so TCUP's template with its empty strings is a valid
buffer rule. See docs/routing.md for the grammar.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pyconnector.times import parse_time

from ..bodies import Model, rule
from ..errors import bad_request
from . import conditions, patterns

RULE_NAME_MAX = 128
DESCRIPTION_MAX = 1024
PARALLELISM_MAX = 16
PARAMS_MAX = 16  # params items in a rule (each name at most once)
CONDITIONS_MAX = 32  # conditions in one ObservedProperties/meta-data/parameter/quality
CONDITION_NAME_MAX = 255  # as a property name
FIELD_MAX = 32  # a condition's type or operator, as text
EXCHANGE_MAX = 128  # an exchange or queue name (the broker adds the tenant's prefix)
KEY_MAX = 200  # a routing key or topic (AMQP allows 255 bytes)
SHARED_EXCHANGE = "amq.topic"  # where MQTT messages land: a rule may read or write it

CONDITION_PARAMS = ("ObservedProperties", "meta-data", "parameter", "quality")
UNSUPPORTED_PARAMS = ("expression", "position")
PARAM_NAMES = ("feature", "sensorID", "time", *CONDITION_PARAMS, *UNSUPPORTED_PARAMS)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXCHANGE = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{EXCHANGE_MAX}}}$")
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{KEY_MAX}}}$")  # printable ASCII, no space


def _fail(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A Pydantic error at ``loc`` under the model being checked, in our words: raised
    from a model validator, the 400 then names the field itself, not its object."""
    return ValidationError.from_exception_data("rule", [{
        "type": PydanticCustomError("pyconnector", "{reason}", {"reason": message}),
        "loc": loc, "input": value}])


# -- checks of single values (as rule(): "field: message") --------------------------------
def json_kind(value: Any) -> str:
    """What a JSON value is, in the words of the platform's errors."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "null"


def _text(value: Any, field: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string, got {json_kind(value)}", field)
    if not low <= len(value) <= high:
        raise bad_request(f"{field}: must be {low} to {high} characters, got {len(value)}",
                          field)
    return value


def rule_name(value: Any, field: str) -> str:
    """A rule's name: 1-128 characters, no control characters (unique per tenant: the
    service checks that)."""
    name = _text(value, field, 1, RULE_NAME_MAX)
    if _CONTROL.search(name):
        raise bad_request(f"{field}: must not contain control characters", field)
    return name


def description(value: Any, field: str) -> str:
    """A rule's description: at most 1024 characters, no NUL."""
    if value is None:
        return ""
    text = _text(value, field, 0, DESCRIPTION_MAX)
    if "\x00" in text:
        raise bad_request(f"{field}: must not contain NUL characters", field)
    return text


def parallelism(value: Any, field: str) -> int:
    """TCUP's ``parallelismFactor``: a number or a string of digits, 1 to 16."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{field}: expected a whole number (or a string of digits), got "
                          f"{value!r}"[:200], field)
    if not 1 <= value <= PARALLELISM_MAX:
        raise bad_request(f"{field}: must be between 1 and {PARALLELISM_MAX}", field)
    return value


def exchange(value: Any, field: str) -> str:
    """An exchange or queue name: 1-128 letters, digits, '_', '.', ':' or '-'; the
    broker's own names (``amq.``) only for ``amq.topic``, where MQTT messages land."""
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string, got {json_kind(value)}", field)
    if not _EXCHANGE.match(value):
        raise bad_request(f"{field}: {value[:40]!r} must be 1 to {EXCHANGE_MAX} letters, "
                          "digits, '_', '.', ':' or '-'", field)
    if value.startswith("amq.") and value != SHARED_EXCHANGE:
        raise bad_request(f"{field}: names starting with 'amq.' belong to the broker "
                          f"(only {SHARED_EXCHANGE!r} may be used)", field)
    return value


def queue(value: Any, field: str) -> str:
    """A queue name: as an exchange name, never ``amq.``."""
    name = exchange(value, field)
    if name.startswith("amq."):
        raise bad_request(f"{field}: names starting with 'amq.' belong to the broker", field)
    return name


def routing_key(value: Any, field: str) -> str:
    """A routing key or binding topic: 1-200 printable ASCII characters, no spaces; in
    an input topic ``*`` stands for one word and ``#`` for any number."""
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string, got {json_kind(value)}", field)
    if not _KEY.match(value):
        raise bad_request(f"{field}: must be 1 to {KEY_MAX} printable ASCII characters "
                          "without spaces", field)
    return value


def output_topic(value: Any, field: str) -> str:
    """The topic a rule publishes with: a routing key without the wildcards ``*``/``#``
    (those belong to subscribers)."""
    topic = routing_key(value, field)
    if "*" in topic or "#" in topic:
        raise bad_request(f"{field}: a topic to publish to takes no '*' or '#' "
                          "(wildcards are for subscribing)", field)
    return topic


def or_empty(check: Any) -> Any:
    """``check`` for a value that may also be empty (None or "", given as "")."""
    def optional(value: Any, field: str) -> str:
        return "" if value is None or value == "" else check(value, field)

    return optional


def pattern(value: Any, field: str) -> str:
    """A feature or sensor name, glob or regex (:mod:`.patterns`)."""
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string, got {json_kind(value)}", field)
    try:
        return patterns.check(value)
    except patterns.PatternError as exc:
        raise bad_request(f"{field}: {exc}", field) from None


def time_value(value: Any, field: str) -> str | int:
    """A time in any accepted format (kept as given), or empty (an open end)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.4e12 as JSON may arrive as a float
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad_request(f"{field}: expected a time as text or epoch milliseconds (a "
                          f"whole number), got {value!r}"[:200], field)
    if isinstance(value, str) and len(value) > 64:
        raise bad_request(f"{field}: at most 64 characters, got {len(value)}", field)
    try:
        parse_time(value)
    except ValueError as exc:
        raise bad_request(f"{field}: {exc}", field) from None
    return value


def condition_value(value: Any, field: str) -> str | int | float | None:
    """A condition's value: text, a finite number, or empty."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        raise bad_request(f"{field}: expected a string or a number, got "
                          f"{json_kind(value)}", field)
    if isinstance(value, str) and len(value) > conditions.TEXT_MAX:
        raise bad_request(f"{field}: at most {conditions.TEXT_MAX} characters, got "
                          f"{len(value)}", field)
    return value


def time_ms(value: str | int) -> int | None:
    """A checked :func:`time_value` as epoch milliseconds (``None`` when empty)."""
    return None if value == "" else parse_time(value)


def _capitalized(value: Any) -> Any:
    return value.capitalize() if isinstance(value, str) else value


_STRING = {"type": "string"}
RuleNameText = Annotated[str, rule(rule_name), WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": RULE_NAME_MAX,
     "description": f"1 to {RULE_NAME_MAX} characters, no control characters"})]
DescriptionText = Annotated[str, rule(description), WithJsonSchema(
    {"type": "string", "maxLength": DESCRIPTION_MAX})]
ParallelismValue = Annotated[int, rule(parallelism), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1, "maximum": PARALLELISM_MAX},
               {"type": "string", "pattern": "^[0-9]+$"}],
     "description": f"1 to {PARALLELISM_MAX}, a number or a string of digits"})]
EXCHANGE_SCHEMA = {"type": "string", "pattern": _EXCHANGE.pattern}
Exchange = Annotated[str, rule(exchange), WithJsonSchema(EXCHANGE_SCHEMA)]
OptionalExchange = Annotated[str, rule(or_empty(exchange)), WithJsonSchema(_STRING)]
OptionalQueue = Annotated[str, rule(or_empty(queue)), WithJsonSchema(_STRING)]
OptionalKey = Annotated[str, rule(or_empty(routing_key)), WithJsonSchema(_STRING)]
OutputTopic = Annotated[str, rule(output_topic), WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": KEY_MAX,
     "description": "A routing key: words separated by '.', no '*' or '#'"})]
_PATTERN_SCHEMA = {"type": "string", "minLength": 1, "maxLength": patterns.PATTERN_MAX,
                   "description": "An exact name; a glob (health*); or a regex (starts "
                                  "with ^ or ends with $)"}
Pattern = Annotated[str, rule(pattern), WithJsonSchema(_PATTERN_SCHEMA)]
_PATTERN: TypeAdapter[str] = TypeAdapter(Pattern)
Time = Annotated[str | int, rule(time_value), WithJsonSchema(
    {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "integer"}],
     "description": "Any accepted time ('23-JUL-2013 15:30:00 IST', ISO 8601, epoch "
                    "milliseconds); empty: no bound"})]


# -- input and output --------------------------------------------------------------------------
_INPUT_FIELDS = {"Direct": ("DirectExchange", "RoutingKey"), "Topic": ("TopicExchange", "Topic"),
                 "Queue": ("MQName",)}


class RuleInput(Model):
    """Where a rule reads: ``Direct`` (``DirectExchange`` + ``RoutingKey``: the tenant's
    direct exchange, where SOS publishes), ``Topic`` (``TopicExchange`` + ``Topic``, which
    may hold ``*``/``#``) or ``Queue`` (``MQName``). The other keys may be given empty,
    as in TCUP's template."""

    type: Annotated[Literal["Direct", "Topic", "Queue"], BeforeValidator(_capitalized)]
    DirectExchange: OptionalExchange = ""
    RoutingKey: OptionalKey = ""
    TopicExchange: OptionalExchange = ""
    Topic: OptionalKey = ""
    MQName: OptionalQueue = ""

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> RuleInput:
        needed = _INPUT_FIELDS[self.type]
        for key in needed:
            if not getattr(self, key):
                raise _fail((key,), f"required for an input of type {self.type}", "")
        for key in ("DirectExchange", "RoutingKey", "TopicExchange", "Topic", "MQName"):
            if key not in needed and getattr(self, key):
                raise _fail((key,), f"not used by an input of type {self.type}; leave it "
                            "out or empty", getattr(self, key))
        return self


class RuleOutput(Model):
    """Where a rule sends what passes its filters: a topic exchange and a topic."""

    TopicExchange: Exchange
    Topic: OutputTopic


# -- params ----------------------------------------------------------------------------------
def _none_if_empty(value: Any) -> Any:
    """TCUP's "no filter": an empty string, list or object, or null."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    return value


def _names(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One pattern (errors name the value itself) or a list of them."""
    if isinstance(value, str):
        return [_PATTERN.validate_python(value)] if value.strip() else []
    return [] if value is None or value == {} else handler(value)


class NamesParam(Model):
    """``feature`` or ``sensorID``: the item's name is one of these names or matches one
    of these patterns (a string, or a list of up to 64)."""

    name: Literal["feature", "sensorID"]
    value: Annotated[list[Pattern], Field(max_length=patterns.PATTERNS_MAX),
                     WrapValidator(_names), WithJsonSchema({"anyOf": [
                         _PATTERN_SCHEMA, {"type": "array", "items": _PATTERN_SCHEMA,
                                           "maxItems": patterns.PATTERNS_MAX}]})] = Field(
        default_factory=list)


class TimeWindow(Model):
    """Records whose ``starttime`` is at or after ``starttime`` and before ``endtime``
    (as SOS queries count); an empty end is open."""

    starttime: Time = ""
    endtime: Time = ""

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        start, end = time_ms(self.starttime), time_ms(self.endtime)
        if start is not None and end is not None and end <= start:
            raise _fail(("endtime",), "must be after starttime", self.endtime)
        return self


class TimeParam(Model):
    """``time``: a window on each record's ``starttime``."""

    name: Literal["time"]
    value: Annotated[TimeWindow | None, BeforeValidator(_none_if_empty)] = None


class ConditionIn(Model):
    """One condition on a named entry: its ``type``, ``value`` and ``operator``."""

    name: str = Field("", max_length=CONDITION_NAME_MAX)
    type: str | None = Field(None, max_length=FIELD_MAX,
                             description="quantity, count or text; empty: from the value")
    value: Annotated[str | int | float | None, rule(condition_value)] = Field(
        None, description="A number, a range ('80-120', '!(10,20)'), text, or empty "
                          "(the entry must be present)")
    operator: str | None = Field(None, max_length=FIELD_MAX,
                                 description=f"One of {' '.join(conditions.OPERATORS)}")

    @model_validator(mode="after")
    def _parses(self) -> ConditionIn:
        if _CONTROL.search(self.name):
            raise _fail(("name",), "must not contain control characters", self.name)
        self.condition()
        return self

    def condition(self) -> conditions.Condition | None:
        """This entry as a :class:`~.conditions.Condition` (``None``: a placeholder)."""
        try:
            return conditions.parse(self.name, self.type, self.value, self.operator)
        except conditions.ConditionError as exc:
            raise _fail((exc.field,), exc.message, getattr(self, exc.field)) from None


class ConditionsParam(Model):
    """``ObservedProperties`` (on each record's ``output``) or ``meta-data``,
    ``parameter``, ``quality`` (on the record's list of that name, else the item's):
    every condition must hold."""

    name: Literal["ObservedProperties", "meta-data", "parameter", "quality"]
    value: Annotated[list[ConditionIn], Field(max_length=CONDITIONS_MAX),
                     BeforeValidator(lambda v: [] if v in (None, "", {}) else v)] = Field(
        default_factory=list)


def _all_empty(value: Any) -> bool:
    """Whether a TCUP template value holds only empty strings (no filter). A loop, not
    recursion: the body may nest as deep as the JSON parser allows."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
        elif node is not None and node != "":
            return False
    return True


def _unsupported(value: Any) -> None:
    if not _all_empty(value):
        raise PydanticCustomError("pyconnector", "{reason}", {"reason": (
            "filters of this kind are not supported by this platform; leave the value "
            "empty or remove the item")})


class UnsupportedParam(Model):
    """``expression`` and ``position`` (geofencing): accepted only empty, as in TCUP's
    template; a filled one is refused rather than ignored."""

    name: Literal["expression", "position"]
    value: Annotated[Any, BeforeValidator(_unsupported)] = None
    type: str = Field("", max_length=FIELD_MAX, description="position: TCUP's shape")
    geoFencing: str = Field("", max_length=FIELD_MAX)  # noqa: N815 - TCUP's name


class _ParamName(Model):
    """The key every params item has: which filter it is."""

    model_config = {"extra": "allow"}
    name: Literal[PARAM_NAMES]  # type: ignore[valid-type]


_PARAM_KINDS: dict[str, type[Model]] = {
    "feature": NamesParam, "sensorID": NamesParam, "time": TimeParam,
    **dict.fromkeys(CONDITION_PARAMS, ConditionsParam),
    **dict.fromkeys(UNSUPPORTED_PARAMS, UnsupportedParam),
}


def _param(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A params item as the model its ``name`` says, so errors name the item's own keys
    (``params[3].value[0].operator``), not a member of a union."""
    if isinstance(value, Model):
        return value
    name = _ParamName.model_validate(value).name
    return _PARAM_KINDS[name].model_validate(value)


Param = Annotated[Union[NamesParam, TimeParam, ConditionsParam, UnsupportedParam],  # noqa: UP007
                  WrapValidator(_param)]


# -- the rule --------------------------------------------------------------------------------
def _unique(params: list[Any]) -> None:
    seen: dict[str, int] = {}
    for i, p in enumerate(params):
        if p.name in seen:
            raise _fail(("params", i, "name"), f"{p.name!r} is given twice (also "
                        f"params[{seen[p.name]}]); put all its values in one item", p.name)
        seen[p.name] = i


class _ReadOnly(Model):
    """What the platform answers beside a rule (``GET /routingRules``): accepted back, so
    a rule listed, edited and sent again is not refused, and ignored (never stored)."""

    RuleID: Any = Field(None, exclude=True, description="Read-only: ignored")
    Status: Any = Field(None, exclude=True, description="Read-only: ignored")
    counts: Any = Field(None, exclude=True, description="Read-only: ignored")
    createdOn: Any = Field(None, exclude=True, description="Read-only: ignored")  # noqa: N815
    updatedOn: Any = Field(None, exclude=True, description="Read-only: ignored")  # noqa: N815


class RuleIn(_ReadOnly):
    """A new routing rule, TCUP's JSON (``RuleName`` unique per tenant)."""

    RuleName: RuleNameText
    RuleDescription: DescriptionText = ""
    parallelismFactor: ParallelismValue = 1  # noqa: N815 - TCUP's name
    input: RuleInput
    params: list[Param] = Field(default_factory=list, max_length=PARAMS_MAX)
    output: RuleOutput

    @model_validator(mode="after")
    def _params_once(self) -> RuleIn:
        _unique(self.params)
        return self


class RuleUpdate(_ReadOnly):
    """The fields of a rule to change; ``params``, ``input`` and ``output`` are replaced
    whole. :func:`updated` gives the rule that results."""

    RuleName: RuleNameText | None = None
    RuleDescription: DescriptionText | None = None
    parallelismFactor: ParallelismValue | None = None  # noqa: N815
    input: RuleInput | None = None
    params: list[Param] | None = Field(None, max_length=PARAMS_MAX)
    output: RuleOutput | None = None

    @model_validator(mode="after")
    def _params_once(self) -> RuleUpdate:
        _unique(self.params or [])
        return self


def updated(rule: RuleIn, update: RuleUpdate) -> RuleIn:
    """``rule`` with the fields ``update`` gives (``null`` for a field keeps it)."""
    changes = {k: getattr(update, k) for k in update.given() - set(_ReadOnly.model_fields)
               if getattr(update, k) is not None}
    return rule.model_copy(update=changes)
