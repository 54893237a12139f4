"""One JSON-lines record as an object, with the file and line named when it is not one."""

from __future__ import annotations

from typing import Any

import orjson


def json_object(
    line: bytes, source: str, number: int, error: type[ValueError] = ValueError
) -> dict[str, Any]:
    """The JSON object on line `number` of `source`; `error` otherwise, naming both."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise error(f"{source}:{number}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise error(f"{source}:{number}: expected a JSON object")
    return obj
