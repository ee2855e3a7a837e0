"""Tests for projections.address_key.

Speed (measured on the 2-core dev machine, Python 3.11, after warm-up,
mean over every address in the two tables below): about 40 us per call for
a Chinese address and about 13 us for a Latin-script one on an idle machine
(90-180 us and 30-40 us while other test suites loaded both cores).  The
first call pays about 50 ms to load the OpenCC dictionary and the cpca
division table.  ``test_speed_after_warm_up`` keeps a generous 1 ms bound.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.address_key import address_key

Address = Mapping[str, str | None]


def _addr(value: str | Address) -> Address:
    return {"line": value} if isinstance(value, str) else value


# (a, b, id): a and b denote the same dwelling.
SAME_PLACE: list[tuple[str | Address, str | Address, str]] = [
    # --- Beijing -------------------------------------------------------
    ("北京市朝阳区建国路88号", "朝阳区建国路88号", "bj-province-prefix"),
    ("北京朝阳区建国路88号", "北京市朝阳区建国路88号", "bj-short-province"),
    ("北京市朝阳区建国路８８号", "北京市朝阳区建国路88号", "bj-full-width-digits"),
    ("北京市朝陽區建國路88號", "北京市朝阳区建国路88号", "bj-traditional"),
    ("北京市 朝阳区 建国路 88 号", "北京市朝阳区建国路88号", "bj-spaces"),
    ("北京市，朝阳区，建国路88号。", "北京市朝阳区建国路88号", "bj-punctuation"),
    ("中国北京市朝阳区建国路88号", "北京市朝阳区建国路88号", "bj-country-prefix"),
    (
        {
            "line": "建国路88号",
            "province": "北京市",
            "city": "北京市",
            "district": "朝阳区",
        },
        "北京市朝阳区建国路88号",
        "bj-separate-fields",
    ),
    (
        {
            "line": "北京市朝阳区建国路88号",
            "province": "北京",
            "city": "市辖区",
            "district": "朝阳区",
        },
        "朝阳区建国路88号",
        "bj-fields-repeated-in-line",
    ),
    (
        {"line": "朝阳区建国路88号", "province": "北京市", "postal_code": "100022"},
        "北京市朝阳区建国路88号",
        "bj-province-field-district-in-line",
    ),
    ("北京市海淀区中关村大街27号", "海淀区中关村大街二十七号", "bj-chinese-street-no"),
    (
        "北京市海淀区学院路30号院3号楼2单元501室",
        "海淀区学院路30号院3栋2单元501",
        "bj-haoluo-vs-dong",
    ),
    (
        "北京市丰台区方庄芳古园一区3号楼2门501",
        "丰台区方庄芳古园1区3号楼2单元501室",
        "bj-men-is-danyuan",
    ),
    (
        "北京市朝阳区望京街道望京西路1号",
        "北京市朝阳区望京西路1号",
        "bj-subdistrict-omitted",
    ),
    ("北京市东城区东四十条甲22号", "东城区东四十条甲22号", "bj-numeral-in-name"),
    (
        "北京市朝阳区建国路88号SOHO现代城A座1001",
        "朝阳区建国路88号soho现代城a座1001室",
        "bj-latin-letters-case",
    ),
    # --- Shanghai ------------------------------------------------------
    ("上海市浦东新区张杨路500号", "浦东新区张杨路500号", "sh-province-prefix"),
    (
        "上海市徐汇区漕溪北路100弄5号501室",
        "上海徐汇区漕溪北路100弄5号501",
        "sh-lane-bare-room",
    ),
    ("上海市静安区南京西路1266号", "静安区南京西路1266號", "sh-nanjing-road"),
    ("上海市黄浦区南京东路100号", "上海市黄浦区南京東路１００號", "sh-trad-fullwidth"),
    ("上海市长宁区愚园路1000弄12号", "长宁区愚园路一千弄十二号", "sh-chinese-lane-no"),
    (
        "上海市闵行区七莘路188弄3号1202室",
        "上海市闵行区七莘路188弄3号12层1202室",
        "sh-redundant-floor",
    ),
    (
        {"line": "国权路525号", "city": "上海", "district": "杨浦区"},
        "上海市杨浦区国权路525号",
        "sh-fields",
    ),
    ("上海市南京东路100号", "上海南京东路100号", "sh-no-district-short-city"),
    # --- Guangzhou -----------------------------------------------------
    ("广州市天河区天河路208号", "广东省广州市天河区天河路208号", "gz-province"),
    ("广州市越秀区北京路1号", "越秀区北京路1号", "gz-beijing-road"),
    (
        "广州市天河区华夏路10号富力中心3栋1201房",
        "天河区华夏路10号富力中心3幢1201室",
        "gz-fang-vs-shi",
    ),
    ("广州市越秀区中山三路33号", "越秀区中山3路33号", "gz-road-numeral"),
    ("廣東省廣州市天河區體育西路191號", "广州市天河区体育西路191号", "gz-traditional"),
    (
        {"line": "天河路208号", "city": "广州", "district": "天河区"},
        "广州市天河区天河路208号",
        "gz-fields",
    ),
    ("广州市海珠区江南大道中88号", "海珠区江南大道中88号", "gz-dadao"),
    # --- Shenzhen ------------------------------------------------------
    (
        "深圳市南山区深南大道10000号",
        "广东省深圳市南山区深南大道10000号",
        "sz-province",
    ),
    ("深圳市福田区福华三路88号", "福田区福华3路88号", "sz-road-numeral"),
    (
        "深圳市宝安区新安街道海滨花园3栋2单元1503",
        "宝安区新安街道海滨花园3#楼2单元1503室",
        "sz-hash-building",
    ),
    ("深圳市罗湖区人民南路3005号", "深圳罗湖区人民南路3005号", "sz-short-city"),
    (
        "深圳市龙岗区布吉街道布吉路1号",
        "深圳市龙岗区布吉路1号",
        "sz-subdistrict-omitted",
    ),
    # --- Chengdu -------------------------------------------------------
    (
        "成都市武侯区人民南路四段1号",
        "四川省成都市武侯区人民南路4段1号",
        "cd-section-numeral",
    ),
    (
        "成都市高新区天府大道北段1700号",
        "四川省成都市高新区天府大道北段1700号",
        "cd-functional-zone",
    ),
    (
        "成都市金牛区一环路北三段8号1栋1单元602",
        "金牛区一环路北3段8号1-1-602",
        "cd-dash-triple",
    ),
    ("成都市锦江区春熙路东段8号", "成都锦江区春熙路東段8號", "cd-short-trad"),
    (
        "成都市青羊区宽窄巷子12号",
        {
            "line": "宽窄巷子12号",
            "province": "四川省",
            "city": "成都市",
            "district": "青羊区",
        },
        "cd-xiangzi-fields",
    ),
    # --- Hangzhou ------------------------------------------------------
    ("杭州市西湖区文三路478号", "浙江省杭州市西湖区文三路478号", "hz-province"),
    ("杭州市余杭区文一西路969号", "余杭区文一西路969号", "hz-wenyi-west"),
    ("杭州市上城区清河坊巷12号", "上城区清河坊巷十二号", "hz-xiang"),
    (
        "杭州市拱墅区湖墅南路88号阳光小区三号楼二单元五〇一室",
        "拱墅区湖墅南路88号阳光小区3-2-501",
        "hz-all-chinese-numerals",
    ),
    (
        "杭州市滨江区江南大道3号第三栋5楼501",
        "滨江区江南大道3号3幢501室",
        "hz-ordinal-and-floor",
    ),
    # --- building / unit / flat forms --------------------------------
    (
        "朝阳区望京西路1号3号楼2单元501室",
        "朝阳区望京西路1号3-2-501",
        "forms-dash-triple",
    ),
    ("朝阳区望京西路1号3栋2单元501", "朝阳区望京西路1号3幢2单元501房", "forms-zhuang"),
    ("朝阳区望京西路1号3#楼2单元501", "朝阳区望京西路1号3号2单元501室", "forms-hash"),
    ("朝阳区望京西路1号3栋5层501室", "朝阳区望京西路1号3栋501室", "forms-floor"),
    (
        "朝阳区望京西路1号3栋2单元501号",
        "朝阳区望京西路1号3栋2单元501",
        "forms-room-hao",
    ),
    ("北京市朝阳区建国路88", "北京市朝阳区建国路88号", "forms-missing-hao"),
    # --- Hong Kong (traditional) --------------------------------------
    (
        {"line": "香港九龍彌敦道100號", "country": "HK"},
        {"line": "香港九龙弥敦道100号", "country": "hk"},
        "hk-traditional",
    ),
    # --- country ------------------------------------------------------
    (
        {"line": "北京市朝阳区建国路88号", "country": "中国"},
        {"line": "北京市朝阳区建国路88号", "country": None},
        "country-chinese-name",
    ),
    (
        {"line": "北京市朝阳区建国路88号", "country": "China"},
        {"line": "北京市朝阳区建国路88号", "country": "CN"},
        "country-english-name",
    ),
    # --- Latin script -------------------------------------------------
    (
        {"line": "10 Main Street Apt 5", "city": "Springfield", "country": "US"},
        {"line": "10 MAIN ST., APT. 5", "city": "springfield", "country": "us"},
        "latin-case-abbrev",
    ),
    (
        {"line": "Apt 5, 10 Main St", "city": "Springfield", "country": "US"},
        {"line": "10 Main St #5", "city": "Springfield", "country": "US"},
        "latin-unit-first",
    ),
    (
        {"line": "10 Main St Unit 5", "city": "Springfield", "country": "US"},
        {"line": "10 Main St Suite 5", "city": "Springfield", "country": "US"},
        "latin-unit-synonyms",
    ),
    (
        {"line": "10 Downing Street", "postal_code": "SW1A 2AA", "country": "GB"},
        {"line": "10 Downing St.", "postal_code": "sw1a2aa", "country": "GB"},
        "latin-postal-spacing",
    ),
    (
        {"line": "88 Jianguo Road, Chaoyang District", "city": "Beijing"},
        {"line": "88 Jianguo Rd Chaoyang Dist.", "city": "BEIJING"},
        "latin-pinyin",
    ),
    (
        {"line": "12 Rue de l'Église", "city": "Lyon", "country": "FR"},
        {"line": "12 rue de l'Eglise", "city": "LYON", "country": "fr"},
        "latin-accents",
    ),
    (
        {
            "line": "10 Main St, Springfield 62701",
            "city": "Springfield",
            "postal_code": "62701",
            "country": "US",
        },
        {
            "line": "10 Main St",
            "city": "Springfield",
            "postal_code": "62701",
            "country": "US",
        },
        "latin-fields-repeated-in-line",
    ),
    (
        {"line": "No. 5 Queen's Road Central", "city": "Hong Kong", "country": "HK"},
        {"line": "5 Queens Rd Central", "city": "Hong Kong", "country": "HK"},
        "latin-number-word",
    ),
]

# (a, b, id): a and b are different dwellings and must keep different keys.
DIFFERENT_PLACE: list[tuple[str | Address, str | Address, str]] = [
    # flat / room
    ("海淀区学院路30号院3号楼2单元501室", "海淀区学院路30号院3号楼2单元502室", "flat"),
    ("朝阳区望京西路1号3-2-501", "朝阳区望京西路1号3-2-502", "flat-dash"),
    (
        "上海市徐汇区漕溪北路100弄5号501室",
        "上海市徐汇区漕溪北路100弄5号601室",
        "flat-lane",
    ),
    (
        "朝阳区建国路88号SOHO现代城A座1001",
        "朝阳区建国路88号SOHO现代城A座1002",
        "flat-zuo",
    ),
    ("滨江区江南大道3号3幢5层501", "滨江区江南大道3号3幢6层501", "floor-conflicts"),
    # unit
    ("海淀区学院路30号院3号楼2单元501室", "海淀区学院路30号院3号楼1单元501室", "unit"),
    ("朝阳区望京西路1号3-2-501", "朝阳区望京西路1号3-1-501", "unit-dash"),
    ("丰台区芳古园1区3号楼2门501", "丰台区芳古园1区3号楼3门501", "unit-men"),
    # building
    (
        "海淀区学院路30号院3号楼2单元501室",
        "海淀区学院路30号院4号楼2单元501室",
        "building",
    ),
    ("朝阳区望京西路1号3栋2单元501", "朝阳区望京西路1号2栋3单元501", "bldg-unit-swap"),
    ("朝阳区望京西路1号3-2-501", "朝阳区望京西路1号2-3-501", "dash-swap"),
    ("阳光小区1号楼101室", "阳光小区11号楼101室", "building-1-vs-11"),
    ("阳光小区三号楼101室", "阳光小区十三号楼101室", "building-cn-3-vs-13"),
    ("朝阳区建国路88号SOHO现代城A座1001", "朝阳区建国路88号SOHO现代城B座1001", "zuo"),
    (
        "上海市徐汇区漕溪北路100弄5号501室",
        "上海市徐汇区漕溪北路100弄6号501室",
        "lane-house",
    ),
    # street number / lane / section
    ("北京市朝阳区建国路88号", "北京市朝阳区建国路89号", "street-number"),
    ("浦东新区张杨路500号", "浦东新区张杨路50号", "street-number-prefix"),
    ("越秀区北京路88-1号", "越秀区北京路88号", "sub-number"),
    ("越秀区北京路88-1号", "越秀区北京路881号", "sub-number-not-fused"),
    ("海淀区中关村大街27号", "海淀区中关村大街二十八号", "street-number-cn"),
    ("上海市徐汇区漕溪北路100弄5号", "上海市徐汇区漕溪北路101弄5号", "lane"),
    ("成都市武侯区人民南路四段1号", "成都市武侯区人民南路三段1号", "section"),
    # street
    ("北京市朝阳区建国路88号", "北京市朝阳区建国门外大街88号", "street"),
    ("上海市黄浦区南京东路100号", "上海市黄浦区南京西路100号", "street-direction"),
    ("杭州市西湖区文三路478号", "杭州市西湖区文二路478号", "street-wen-2-3"),
    ("杭州市余杭区文一西路969号", "杭州市余杭区文一路969号", "street-west"),
    ("越秀区中山三路33号", "越秀区中山四路33号", "street-numbered"),
    ("上海市黄浦区八一路1号", "上海市黄浦区八路1号", "street-bayi-not-numeral"),
    # district / city
    ("广州市天河区天河路208号", "广州市越秀区天河路208号", "district"),
    ("深圳市南山区深南大道1000号", "深圳市福田区深南大道1000号", "district-sz"),
    ("北京市朝阳区建国路88号", "北京市东城区建国路88号", "district-bj"),
    (
        {"line": "国权路525号", "district": "杨浦区"},
        {"line": "国权路525号", "district": "虹口区"},
        "district-field",
    ),
    ("上海市中山路1号", "广州市中山路1号", "city-without-district"),
    ("广东省中山市中山路1号", "中山路1号", "street-named-after-city"),
    ("上海市南京东路100号", "南京东路100号", "city-vs-none"),
    # Latin script
    (
        {"line": "10 Main St Apt 5", "city": "Springfield", "country": "US"},
        {"line": "10 Main St Apt 6", "city": "Springfield", "country": "US"},
        "latin-flat",
    ),
    (
        {"line": "10 Main St", "city": "Springfield", "country": "US"},
        {"line": "12 Main St", "city": "Springfield", "country": "US"},
        "latin-number",
    ),
    (
        {"line": "10 Main St", "city": "Springfield", "country": "US"},
        {"line": "10 Main Ave", "city": "Springfield", "country": "US"},
        "latin-street-type",
    ),
    (
        {"line": "10 Main St", "city": "Springfield", "country": "US"},
        {"line": "10 Main St", "city": "Shelbyville", "country": "US"},
        "latin-city",
    ),
    (
        {"line": "10 Downing Street", "postal_code": "SW1A 2AA", "country": "GB"},
        {"line": "10 Downing Street", "postal_code": "SW1A 1AA", "country": "GB"},
        "latin-postal-code",
    ),
    (
        {"line": "Apt 10, 5 Main St", "city": "Springfield", "country": "US"},
        {"line": "Apt 5, 10 Main St", "city": "Springfield", "country": "US"},
        "latin-number-flat-swap",
    ),
    (
        {"line": "香港九龙弥敦道100号", "country": "HK"},
        {"line": "香港九龙弥敦道100号", "country": "MO"},
        "country",
    ),
]


def _ids(table: list[tuple[str | Address, str | Address, str]]) -> list[str]:
    return [case[2] for case in table]


def test_table_size() -> None:
    assert len(SAME_PLACE) + len(DIFFERENT_PLACE) >= 60
    assert len(set(_ids(SAME_PLACE) + _ids(DIFFERENT_PLACE))) == len(SAME_PLACE) + len(
        DIFFERENT_PLACE
    )


@pytest.mark.parametrize(("a", "b", "case"), SAME_PLACE, ids=_ids(SAME_PLACE))
def test_same_place_same_key(a: str | Address, b: str | Address, case: str) -> None:
    assert address_key(_addr(a)) == address_key(_addr(b)), case


@pytest.mark.parametrize(("a", "b", "case"), DIFFERENT_PLACE, ids=_ids(DIFFERENT_PLACE))
def test_different_place_different_key(
    a: str | Address, b: str | Address, case: str
) -> None:
    assert address_key(_addr(a)) != address_key(_addr(b)), case


def test_key_shape() -> None:
    assert address_key({"line": "北京市朝阳区建国路88号"}) == "CN|zh|朝阳区|建国路88号"
    assert (
        address_key({"line": "朝阳区望京西路1号3号楼2单元501室"})
        == "CN|zh|朝阳区|望京西路1号3栋2单元501室"
    )
    assert address_key({"line": "10 Main Street", "country": "US"}).startswith("US|")


def test_missing_and_none_fields() -> None:
    key = address_key({"line": "北京市朝阳区建国路88号"})
    assert key == address_key(
        {
            "line": "北京市朝阳区建国路88号",
            "city": None,
            "district": None,
            "province": None,
            "postal_code": None,
            "country": None,
        }
    )
    assert address_key({}) != ""
    assert address_key({"line": None}) != ""


def test_unrecognised_fields_are_ignored() -> None:
    # A 街道 or a romanised name in a division field is not a division.
    assert address_key(
        {"line": "北京市朝阳区建国路88号", "district": "建外街道", "city": "Beijing"}
    ) == address_key({"line": "北京市朝阳区建国路88号"})


def test_known_limit_same_district_name_in_two_cities() -> None:
    """朝阳区 exists in Beijing and in Changchun.  Since "朝阳区建国路88号"
    must match both "北京市朝阳区建国路88号" and (by the same rule)
    "长春市朝阳区建国路88号", and key equality is transitive, the two
    prefixed forms get one key too.  Only the district name is kept."""
    assert address_key({"line": "北京市朝阳区建国路88号"}) == address_key(
        {"line": "吉林省长春市朝阳区建国路88号"}
    )


def test_speed_after_warm_up() -> None:
    samples = [_addr(a) for a, _b, _c in SAME_PLACE] + [
        _addr(b) for _a, b, _c in SAME_PLACE
    ]
    for sample in samples:
        address_key(sample)
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        for sample in samples:
            address_key(sample)
    per_call = (time.perf_counter() - start) / (rounds * len(samples))
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} us per call"


# --------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------

CHINESE_LINES = [
    a if isinstance(a, str) else str(a["line"])
    for a, _b, _c in SAME_PLACE + DIFFERENT_PLACE
    if isinstance(a, str)
]
ASCII_ALNUM = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _alnum(ch: str) -> bool:
    return unicodedata.normalize("NFKC", ch) in ASCII_ALNUM


@st.composite
def _with_spaces(draw: st.DrawFn) -> tuple[str, str]:
    line = draw(st.sampled_from(CHINESE_LINES))
    out: list[str] = []
    for i, ch in enumerate(line):
        # A space between two letters/digits separates them ("88 3号楼"), so
        # it is only inserted elsewhere.
        if i > 0 and not (_alnum(line[i - 1]) and _alnum(ch)):
            out.append(draw(st.sampled_from(["", "", " ", "\u3000", "\t", "，", "、"])))
        out.append(ch)
    return line, "".join(out)


@given(_with_spaces())
@settings(max_examples=200, deadline=None)
def test_spaces_and_punctuation_do_not_change_key(pair: tuple[str, str]) -> None:
    original, spaced = pair
    assert address_key({"line": spaced}) == address_key({"line": original})


def _full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@given(st.sampled_from(CHINESE_LINES), st.data())
@settings(max_examples=200, deadline=None)
def test_full_width_does_not_change_key(line: str, data: st.DataObject) -> None:
    mask = data.draw(st.lists(st.booleans(), min_size=len(line), max_size=len(line)))
    wide = "".join(_full_width(c) if m else c for c, m in zip(line, mask, strict=True))
    assert address_key({"line": wide}) == address_key({"line": line})


@given(st.sampled_from(CHINESE_LINES))
@settings(max_examples=100, deadline=None)
def test_traditional_script_does_not_change_key(line: str) -> None:
    traditional = _to_traditional().convert(line)
    assert address_key({"line": traditional}) == address_key({"line": line})


@cache
def _to_traditional() -> Any:
    """OpenCC's simplified -> traditional converter (its dictionary loads once)."""
    from opencc import OpenCC

    return OpenCC("s2t")


# (province, city, district, street): every way of writing the prefix.
PLACES = [
    ("北京市", "北京市", "朝阳区", "建国路88号3号楼2单元501室"),
    ("上海市", "上海市", "浦东新区", "张杨路500弄3号1201室"),
    ("广东省", "广州市", "天河区", "天河路208号"),
    ("广东省", "深圳市", "南山区", "科苑路15号"),
    ("四川省", "成都市", "武侯区", "人民南路四段1号"),
    ("浙江省", "杭州市", "西湖区", "文三路478号"),
    ("江苏省", "南京市", "鼓楼区", "中山路1号"),
    ("福建省", "福州市", "鼓楼区", "五四路1号"),
]


@given(
    st.sampled_from(PLACES),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["line", "fields", "both"]),
)
@settings(max_examples=200, deadline=None)
def test_division_prefix_is_optional(
    place: tuple[str, str, str, str], with_province: bool, with_city: bool, where: str
) -> None:
    province, city, district, street = place
    reference = address_key({"line": district + street})
    prefix = (province if with_province else "") + (city if with_city else "")
    fields = {
        "province": province if with_province else None,
        "city": city if with_city else None,
        "district": district,
    }
    if where == "line":
        address: dict[str, str | None] = {"line": prefix + district + street}
    elif where == "fields":
        address = {"line": street, **fields}
    else:
        address = {"line": prefix + district + street, **fields}
    assert address_key(address) == reference


@given(st.sampled_from(PLACES), st.integers(min_value=1, max_value=9))
@settings(max_examples=100, deadline=None)
def test_changing_a_number_changes_the_key(
    place: tuple[str, str, str, str], delta: int
) -> None:
    _province, _city, district, street = place
    digits = [i for i, ch in enumerate(street) if ch.isdigit()]
    for i in digits:
        changed = street[:i] + str((int(street[i]) + delta) % 10) + street[i + 1 :]
        assert address_key({"line": district + changed}) != address_key(
            {"line": district + street}
        ), changed


@given(
    st.fixed_dictionaries(
        {"line": st.text(max_size=40)},
        optional={
            "province": st.none() | st.text(max_size=8),
            "city": st.none() | st.text(max_size=8),
            "district": st.none() | st.text(max_size=8),
            "postal_code": st.none() | st.text(max_size=8),
            "country": st.none() | st.text(max_size=4),
        },
    )
)
@settings(max_examples=300, deadline=None)
def test_any_input_gives_a_stable_non_empty_key(address: dict[str, str | None]) -> None:
    key = address_key(address)
    assert key
    assert key == address_key(dict(address))
