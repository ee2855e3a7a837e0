"""Canonical address keys for the household projection.

``address_key`` maps a postal address to a string such that two addresses
that denote the same dwelling get the same key.  It is deliberately
conservative: when a spelling difference could also be a different place
(another building, unit, flat, street number or district) the keys differ.

Chinese addresses (the line contains CJK characters) are keyed as
``<country>|zh|<division>|<street part>`` where

* every text is NFKC-normalised (full-width -> half-width), lower-cased and
  converted traditional -> simplified with OpenCC (``opencc``, offline);
* the administrative prefix (province / city / district, taken from the
  separate fields and from the start of ``line``) is recognised against the
  national division table shipped by ``cpca`` and reduced to its most
  specific level, so ``北京市朝阳区建国路88号``, ``朝阳区建国路88号`` and
  ``{"province": "北京", "district": "朝阳区", "line": "建国路88号"}``
  share one key;
* building / unit / flat forms are unified: ``3号楼`` = ``3栋`` = ``3幢`` =
  ``三号楼`` = ``3#楼``, ``2单元`` (also ``2门`` after a building),
  ``501室`` = ``501房`` = ``501`` (at the end, after a building, unit or
  number) and ``3-2-501`` = ``3栋2单元501室``.

Latin-script addresses are keyed as
``<country>|latin|<province>|<city>|<postal code>|<line>`` with accents,
case, punctuation and common abbreviations (Street/St, Road/Rd,
Apartment/Apt/Unit/#, ...) unified and postal-code spacing removed.

The data (division table, OpenCC dictionary) is loaded on first use and
cached; nothing heavy happens at import time.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from opencc import OpenCC

__all__ = ["address_key"]

# --------------------------------------------------------------------------
# Shared text clean-up
# --------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ASCII_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
_NON_WORD = re.compile(r"[\W_]+")
_HASH_AFTER_ALNUM = re.compile(r"(?<=[0-9a-z])[^\w#]*#")
# Characters NFKC leaves alone but that real data uses interchangeably.
_VARIANTS = str.maketrans(
    {
        "衖": "弄",  # traditional variant of 弄 (lane), not covered by t2s
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "~": "-",
        "\u301c": "-",
    }
)


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    """The OpenCC traditional -> simplified converter (loaded once)."""
    from opencc import OpenCC

    return OpenCC("t2s")


def _join_separators(text: str) -> str:
    """Drop punctuation and spaces, but keep a ``-`` between two ASCII
    letters/digits so that ``3 2 501`` or ``88-1`` do not fuse into one
    number."""

    def repl(match: re.Match[str]) -> str:
        start, end = match.span()
        if (
            start > 0
            and end < len(text)
            and text[start - 1] in _ASCII_ALNUM
            and text[end] in _ASCII_ALNUM
        ):
            return "-"
        return ""

    return _NON_WORD.sub(repl, text)


def _clean_cjk(text: str) -> str:
    """NFKC, lower case, traditional -> simplified, no spaces/punctuation."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_VARIANTS)
    text = _t2s().convert(text)
    # "3#楼", "88#": here # reads as 号.  A leading "#501" is a bare number sign.
    text = _HASH_AFTER_ALNUM.sub("号", text)
    return _join_separators(text)


# --------------------------------------------------------------------------
# Chinese numerals ("三号楼", "五〇一室", "人民南路四段")
# --------------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM_CHARS = "零〇一二三四五六七八九十百千"
# A Chinese numeral directly in front of an address counter word.  "门"
# (unit) is handled separately, to leave 三门峡 alone.
_CN_NUMERAL = re.compile(
    rf"(?<![{_CN_NUM_CHARS}])第?([{_CN_NUM_CHARS}]+)"
    r"(?=号|栋|幢|座|单元|室|层|楼|段|弄|巷|期|区|组|排)"
)
# "中山三路" = "中山3路", "文一西路" = "文1西路", but not "五一路"/"八一路"
# (dates used as names).
_CN_NUMERAL_ROAD = re.compile(
    rf"(?<=[\u4e00-\u9fff])(?<![{_CN_NUM_CHARS}])([一二三四五六七八九十])(?=[东西南北中]?(?:路|街|马路))"
)
_ARABIC_ORDINAL = re.compile(
    r"第(?=\d+(?:号|栋|幢|座|单元|室|层|楼|段|弄|巷|期|区|组|排))"
)


def _cn_numeral_value(numeral: str) -> str | None:
    """``"五〇一"`` -> ``"501"``, ``"十二"`` -> ``"12"``; None if malformed."""
    if all(ch in _CN_DIGITS for ch in numeral):
        return "".join(str(_CN_DIGITS[ch]) for ch in numeral)
    total = 0
    pending: int | None = None
    for ch in numeral:
        if ch in _CN_DIGITS:
            if pending is not None and pending != 0:
                return None  # two digits in a row inside a positional number
            pending = _CN_DIGITS[ch]
        else:
            unit = _CN_UNITS[ch]
            total += (1 if pending is None else pending) * unit
            pending = None
    if pending is not None:
        total += pending
    return str(total)


def _arabise(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        value = _cn_numeral_value(match.group(1))
        return match.group(0) if value is None else value

    text = _CN_NUMERAL.sub(repl, text)
    text = _CN_NUMERAL_ROAD.sub(repl, text)
    return _ARABIC_ORDINAL.sub("", text)


# --------------------------------------------------------------------------
# Administrative divisions (data: the cpca package)
# --------------------------------------------------------------------------


class _Division(NamedTuple):
    code: str  # 6-digit adcode
    rank: int  # 0 province, 1 prefecture, 2 county
    name: str  # full name, normalised

    def contains(self, other: _Division) -> bool:
        """True if ``other`` is this division or lies inside it."""
        return other.code.startswith(self.code[: (self.rank + 1) * 2])


class _Gazetteer(NamedTuple):
    names: dict[str, tuple[_Division, ...]]  # full names and short forms
    full_names: frozenset[str]
    # first character -> the longest name starting with it: three for most,
    # where the longest of all is fifteen
    longest_from: dict[str, int]


# cpca's own short-form rules (see cpca.matcher.Matcher).
_SHORT_FORM_SUFFIX = re.compile(r"(?:[省市]|特别行政区|自治区)$")
_SPECIAL_SHORT_FORMS = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "新疆维吾尔自治区": "新疆",
    "宁夏回族自治区": "宁夏",
}
# Placeholder rows in the table, never written in an address.
_PLACEHOLDERS = frozenset(
    {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
)
# Real district names too generic to trust without a parent before them.
_GENERIC_NAMES = frozenset({"城区", "郊区", "矿区"})
# A short form ("北京", "中山", "南京") followed by these is a street or a
# building named after the place ("北京路", "南京西路", "中山大学"), not
# the division itself.
_NAMED_AFTER_PLACE = re.compile(
    r"[东西南北中]?(?:路|街|大街|大道|道|巷|弄|里|胡同|站|桥|大学|大厦|饭店|酒店"
    r"|宾馆|公园|广场|花园|中心|银行|新村|小区)"
)


def _cpca_table() -> Path:
    """Path of the division table that ships with cpca.

    The package itself is not imported: its ``__init__`` builds a matcher
    with ``pkg_resources`` (gone from setuptools >= 81) and pulls in pandas,
    neither of which is needed to read the table.
    """
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("address_key needs the 'cpca' package (division data)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return package_dir / "resources" / "adcodes.csv"


@lru_cache(maxsize=1)
def _gazetteer() -> _Gazetteer:
    names: dict[str, list[_Division]] = {}
    full_names: set[str] = set()
    with _cpca_table().open(encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            raw_name = row["name"]
            if raw_name in _PLACEHOLDERS:
                continue
            code = row["adcode"][:6]
            rank = 0 if code.endswith("0000") else 1 if code.endswith("00") else 2
            name = _clean_cjk(raw_name)
            division = _Division(code, rank, name)
            short = _SPECIAL_SHORT_FORMS.get(raw_name) or _SHORT_FORM_SUFFIX.sub(
                "", raw_name
            )
            short = _clean_cjk(short)
            full_names.add(name)
            for key in {name, short}:
                if len(key) >= 2:
                    names.setdefault(key, []).append(division)
    frozen = {key: tuple(sorted(value)) for key, value in names.items()}
    longest_from: dict[str, int] = {}
    for key in frozen:
        longest_from[key[0]] = max(longest_from.get(key[0], 0), len(key))
    return _Gazetteer(frozen, frozenset(full_names), longest_from)


def _parse_divisions(text: str) -> tuple[tuple[_Division, ...], int]:
    """Recognise the run of divisions at the start of ``text``.

    Returns the divisions consistent with everything read (several when a
    name is ambiguous, e.g. 朝阳区 in Beijing and in Changchun) and the
    length of the prefix they cover.  Names must follow one another
    directly and be consistent (repeats and parents are absorbed, so
    "北京市朝阳区北京市朝阳区" is fine); the run stops at the first text that
    is not a division.
    """
    gazetteer = _gazetteer()
    current: tuple[_Division, ...] = ()
    pos = 0
    size = len(text)
    while pos < size:
        longest = gazetteer.longest_from.get(text[pos])
        if longest is None:
            break  # no name starts here
        found: tuple[int, tuple[_Division, ...]] | None = None
        for end in range(min(size, pos + longest), pos + 1, -1):
            candidates = gazetteer.names.get(text[pos:end])
            if candidates is not None:
                found = (end, candidates)
                break
        if found is None:
            break
        end, candidates = found
        token = text[pos:end]
        if token not in gazetteer.full_names and _NAMED_AFTER_PLACE.match(text, end):
            break
        if not current:
            if token in _GENERIC_NAMES:
                break
            current = candidates
        else:
            # A repeat or a parent of what we have: narrow the ambiguity.
            narrowed = tuple(
                d for d in current if any(c.contains(d) for c in candidates)
            )
            if narrowed:
                current = narrowed
            else:
                # A child of what we have: go one level down.
                deeper = tuple(
                    c for c in candidates if any(d.contains(c) for d in current)
                )
                if not deeper:
                    break
                current = deeper
        pos = end
    return current, pos


def _division_label(divisions: tuple[_Division, ...]) -> str:
    if not divisions:
        return ""
    return min(divisions, key=lambda d: (d.rank, d.code)).name


# --------------------------------------------------------------------------
# Chinese street part: building / unit / flat
# --------------------------------------------------------------------------

_COUNTRY_PREFIX = re.compile(r"^(?:中华人民共和国|中国)")
# "望京街道望京西路1号": the 街道 (sub-district) name is redundant when a
# numbered road follows.
_SUBDISTRICT = re.compile(
    r"^[\u4e00-\u9fff]{2,5}?街道(?=[^\d]*?(?:路|大街|街|大道|巷|胡同)\d+号)"
)
_BLDG_ID = r"(\d+[a-z]?|[a-z]\d*)"
_BUILDING = re.compile(rf"(?<![0-9a-z-]){_BLDG_ID}(?:号楼|号栋|号幢|栋楼|栋|幢)")
_BUILDING_BEFORE_UNIT = re.compile(r"(?<![0-9a-z-])(\d+[a-z]?)号(?=\d+单元)")
_DASH_TRIPLE = re.compile(r"(?<![0-9a-z-])(\d+)-(\d+)-(\d{2,5})(?:室|房|号房|号)?$")
_UNIT = re.compile(r"栋(\d+|[a-z])(?:单元|门)")
_FLOOR = re.compile(r"(?<![0-9a-z-])(\d+)(?:楼|层|f(?=\d|室|$))")
_ROOM = re.compile(r"(?<![0-9a-z-])(\d+[a-z]?|[a-z]\d+)(?:号房|房|室|户)")
_ROOM_AFTER_UNIT = re.compile(r"(?<=单元)(\d+[a-z]?)号?$")
_ROOM_AFTER_BUILDING = re.compile(r"(?<=栋)(\d+[a-z]?)$")
_ROOM_BARE = re.compile(r"(?<=[号层座])(\d{3,5}[a-z]?)$")
_FLOOR_THEN_ROOM = re.compile(r"(?<!\d)(\d+)层(\d+)(?=[a-z]?室)")
_STREET_NUMBER = re.compile(r"(?<=[路街道巷])(\d+(?:-\d+)?)$")


def _drop_redundant_floor(match: re.Match[str]) -> str:
    floor, room = match.group(1), match.group(2)
    if room.startswith(floor) and len(room) == len(floor) + 2:
        return room  # "5层501室" -> "501室": the flat number carries the floor
    return match.group(0)


def _dash_triple(match: re.Match[str]) -> str:
    if "栋" in match.string[: match.start()]:
        return match.group(0)  # a building was already named: not b-u-r
    return f"{match.group(1)}栋{match.group(2)}单元{match.group(3)}室"


# Each rewrite in order, after the text that every one of its matches holds
# (or looks behind at): a rewrite whose text is absent is not tried.
_STREET_REWRITES: tuple[
    tuple[tuple[str, ...], re.Pattern[str], str | Callable[[re.Match[str]], str]],
    ...,
] = (
    (("街道",), _SUBDISTRICT, ""),
    (("楼", "栋", "幢"), _BUILDING, r"\1栋"),
    (("单元",), _BUILDING_BEFORE_UNIT, r"\1栋"),
    (("-",), _DASH_TRIPLE, _dash_triple),
    (("栋",), _UNIT, r"栋\1单元"),
    (("楼", "层", "f"), _FLOOR, r"\1层"),
    (("房", "室", "户"), _ROOM, r"\1室"),
    (("单元",), _ROOM_AFTER_UNIT, r"\1室"),
    (("栋",), _ROOM_AFTER_BUILDING, r"\1室"),
    (("号", "层", "座"), _ROOM_BARE, r"\1室"),
    (("层",), _FLOOR_THEN_ROOM, _drop_redundant_floor),
    (("路", "街", "道", "巷"), _STREET_NUMBER, r"\1号"),
)


def _canonical_street(text: str) -> str:
    for needs, pattern, replacement in _STREET_REWRITES:
        if any(part in text for part in needs):
            text = pattern.sub(replacement, text)
    return text


def _chinese_key(country: str, address: Mapping[str, str | None], line: str) -> str:
    prefix = ""
    for field in ("province", "city", "district"):
        value = address.get(field)
        if not value:
            continue
        cleaned = _arabise(_clean_cjk(value))
        divisions, used = _parse_divisions(cleaned)
        if divisions and used == len(cleaned):
            prefix += cleaned  # fields that are not divisions are ignored
    text = _arabise(_clean_cjk(line))
    without_country = _COUNTRY_PREFIX.sub("", text)
    if without_country != text and _parse_divisions(without_country)[0]:
        text = without_country
    divisions, used = _parse_divisions(prefix + text)
    street = _canonical_street((prefix + text)[used:])
    return f"{country}|zh|{_division_label(divisions)}|{street}"


# --------------------------------------------------------------------------
# Latin-script addresses
# --------------------------------------------------------------------------

_LATIN_WORDS = {
    "street": "st",
    "str": "st",
    "road": "rd",
    "avenue": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "highway": "hwy",
    "parkway": "pkwy",
    "circle": "cir",
    "crescent": "cres",
    "building": "bldg",
    "bld": "bldg",
    "floor": "fl",
    "flr": "fl",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "mount": "mt",
    "district": "dist",
    # secondary unit designators: one flat, however it is called
    "apartment": "#",
    "apt": "#",
    "unit": "#",
    "suite": "#",
    "ste": "#",
    "flat": "#",
    "room": "#",
    "rm": "#",
}
_NUMBER_WORDS = frozenset({"no", "nr", "number"})
_LATIN_TOKEN = re.compile(r"#|[^\W_]+")
_APOSTROPHES = re.compile(r"['\u2018\u2019`]")


def _latin_tokens(text: str | None) -> list[str]:
    if not text:
        return []
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stripped = _APOSTROPHES.sub("", stripped)  # "Queen's" = "Queens"
    tokens = [_LATIN_WORDS.get(t, t) for t in _LATIN_TOKEN.findall(stripped)]
    # "No. 5 Main St" = "5 Main St"
    return [
        t
        for i, t in enumerate(tokens)
        if not (
            t in _NUMBER_WORDS and i + 1 < len(tokens) and tokens[i + 1][0].isdigit()
        )
    ]


def _strip_suffix(tokens: list[str], suffix: list[str]) -> bool:
    if suffix and len(tokens) > len(suffix) and tokens[-len(suffix) :] == suffix:
        del tokens[-len(suffix) :]
        return True
    return False


def _latin_key(country: str, address: Mapping[str, str | None], line: str) -> str:
    province = _latin_tokens(address.get("province"))
    city = _latin_tokens(address.get("city"))
    district = _latin_tokens(address.get("district"))
    postal = _postal_code(address.get("postal_code"))
    tokens = _latin_tokens(line)
    # The unit designator may come first ("Apt 5, 10 Main St"): move it last.
    units: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "#" and i + 1 < len(tokens):
            units += tokens[i : i + 2]
            del tokens[i : i + 2]
        else:
            i += 1
    # Drop trailing copies of the separate fields ("..., Springfield, 62701").
    tails = [
        province,
        city,
        district,
        [postal.lower()],
        _latin_tokens(address.get("country")),
    ]
    if country == "CN":
        tails.append(["china"])
    while any(_strip_suffix(tokens, tail) for tail in tails):
        pass
    tokens += units
    return "|".join(
        [
            country,
            "latin",
            " ".join(province),
            " ".join(city),
            " ".join(district),
            postal,
            " ".join(tokens),
        ]
    )


def _postal_code(value: str | None) -> str:
    if not value:
        return ""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", value)).upper()


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

_CHINA = frozenset(
    {"cn", "chn", "china", "prc", "peoplesrepublicofchina", "中国", "中华人民共和国"}
)


def _country(value: str | None) -> str:
    if not value:
        return "CN"
    compact = re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", value)).casefold()
    if not compact or compact in _CHINA:
        return "CN"
    return compact.upper()


def address_key(address: Mapping[str, str | None]) -> str:
    """Returns a canonical key: two addresses are the same place iff their keys are equal."""
    try:
        return _remembered_key(tuple(sorted(address.items())))
    except TypeError:  # a value that cannot be hashed or ordered
        return _key(address)


@lru_cache(maxsize=4096)
def _remembered_key(items: tuple[tuple[str, str | None], ...]) -> str:
    # Several views key the same address of one event (registrations, moves).
    return _key(dict(items))


def _key(address: Mapping[str, str | None]) -> str:
    line = address.get("line") or ""
    country = _country(address.get("country"))
    if _CJK.search(line):
        return _chinese_key(country, address, line)
    return _latin_key(country, address, line)
