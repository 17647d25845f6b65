"""Names for JSON-like data: what recipes (as plain data), metrics, reports and run files hold.

``JSONValue`` is recursive: a scalar, a list of values or a string-keyed object of values. It describes data read
from or written to YAML/JSON (``recipe.yaml``, ``metrics.json``, ``run.json``, ``history.json``, sweep plans), as
opposed to ``typing.Any``, which would say nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

#: A JSON (or YAML-as-JSON) scalar.
JSONScalar = Union[str, int, float, bool, None]  # noqa: UP007 - an alias evaluated at run time on Python 3.10
#: Any JSON value: a scalar, a list of values, a string-keyed object of values.
JSONValue = Union[JSONScalar, list["JSONValue"], dict[str, "JSONValue"]]  # noqa: UP007
#: A JSON object (what ``json.load`` of a ``{...}`` file gives), e.g. a recipe as plain data or a metrics file.
JSONObject = dict[str, JSONValue]
#: A read-only JSON object, for parameters that only read it.
JSONMapping = Mapping[str, JSONValue]
