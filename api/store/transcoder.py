"""The library's JSON transcoding, done by orjson: the same stored bytes, several times faster.

Custom types still go through the registered transcodings (`{"_type_", "_data_"}`),
so events written by either transcoder read back with the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder

from api.store.json_bytes import kept

TRANSCODED = b'"_type_"'
"""How a transcoded value starts in stored JSON (a fact's timestamp is one)."""

# Datetimes, dataclasses and subclasses of str/int/dict/list must reach the
# registered transcodings, as they do with the json module.
PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        return kept(
            orjson.dumps(
                _with_uuids_transcoded(obj, self._encode_obj),
                default=self._encode_obj,
                option=PASSTHROUGH,
            )
        )

    def decode(self, data: bytes) -> Any:
        value = orjson.loads(data)
        # A stored fact holds one transcoded value, its timestamp, at the top:
        # revived alone it spares the walk over every nested value of `data`.
        # (In stored JSON the bytes `"_type_"` can only be a key: a string's own
        # quotes are escaped.)
        found = data.count(TRANSCODED)
        if found == 0:
            return value
        if found == 1 and isinstance(value, dict):
            for key, item in value.items():
                if type(item) is dict and "_type_" in item:
                    value[key] = _revive(item, self._decode_obj)
                    return value
        return _revive(value, self._decode_obj)


def _with_uuids_transcoded(value: Any, encode: Callable[[Any], Any]) -> Any:
    """orjson writes a UUID as a plain string and has no option to hand it over;
    the json transcoder writes its registered transcoding instead."""
    if isinstance(value, UUID):
        return encode(value)
    if isinstance(value, dict):
        return {
            k: _with_uuids_transcoded(v, encode)
            if isinstance(v, UUID | dict | list | tuple)
            else v
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            _with_uuids_transcoded(v, encode)
            if isinstance(v, UUID | dict | list | tuple)
            else v
            for v in value
        ]
    return value


def _revive(value: Any, hook: Callable[[dict[str, Any]], Any]) -> Any:
    """json's object_hook, bottom-up, over what orjson parsed."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                value[key] = _revive(item, hook)
        # The hook changes only {"_type_", "_data_"} pairs; asking it about
        # every other object is most of the cost of reading an event.
        return hook(value) if len(value) == 2 and "_type_" in value else value
    if isinstance(value, list):
        return [
            _revive(item, hook) if isinstance(item, dict | list) else item
            for item in value
        ]
    return value
