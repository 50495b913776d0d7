"""Pydantic's validation errors told in the operator's words: the key, what is wrong, the fix."""
from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

# What a key of each kind looks like in TOML, for the fix.
_TYPE_FIXES = {
    "int_type": "must be a whole number, written without quotes (e.g. port = 993)",
    "int_parsing": "must be a whole number, written without quotes (e.g. port = 993)",
    "int_from_float": "must be a whole number, without a decimal point",
    "float_type": "must be a number, written without quotes (e.g. timeout_seconds = 60)",
    "bool_type": "must be true or false, written without quotes",
    "string_type": "must be text in double quotes (e.g. host = \"imap.126.com\")",
    "list_type": "must be a list in square brackets (e.g. to = [\"office@example.com\"])",
    "model_type": "must be a section of its own ([section] with keys under it)",
    "dict_type": "must be a section of its own ([section] with keys under it)",
}

_REQUIRED = {
    "digest": "the [digest] section is required: add it with to = [\"office@example.com\"], the "
              "office that receives the daily digest",
    "digest.to": "is required: add to = [\"office@example.com\"] under [digest], the office that "
                 "receives the daily digest (without it cases would be marked forwarded while "
                 "nobody gets them)",
}


def explain(err: ValidationError) -> str:
    lines = [_line(problem) for problem in err.errors(include_url=False)]
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _line(problem: ErrorDetails) -> str:
    key = ".".join(str(part) for part in problem["loc"])
    kind = problem["type"]
    context = problem.get("ctx") or {}
    if not key:  # a rule across sections names its keys itself
        return str(context.get("error", problem["msg"]))
    if kind == "missing":
        return f"{key}: " + _REQUIRED.get(key, "is required; add it to the config file")
    if kind == "extra_forbidden":
        return f"{key}: is not a known key; check its spelling against config/intake.example.toml"
    if kind in _TYPE_FIXES:
        return f"{key}: {_shown(problem.get('input'))} {_TYPE_FIXES[kind]}"
    if kind == "literal_error":
        return f"{key}: {_shown(problem.get('input'))} must be one of {context.get('expected')}"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        words = {"greater_than_equal": "at least", "greater_than": "more than",
                 "less_than_equal": "at most", "less_than": "less than"}[kind]
        limit = next(iter(context.values()), "")
        return f"{key}: {_shown(problem.get('input'))} must be {words} {limit}"
    if kind == "value_error":
        # Our own validators' messages already say what to write.
        return f"{key}: {context.get('error', problem['msg'])}"
    return f"{key}: {problem['msg']}"


def _shown(value) -> str:
    if isinstance(value, str):
        return f"is \"{value}\" (text in quotes), but it"
    if isinstance(value, bool):
        return f"is {str(value).lower()}, but it"
    if isinstance(value, (int, float)):
        return f"is {value}, but it"
    return "is given, but it"
