"""Realistic, deterministic demo data for ``crm demo``.

``generate_demo_events(households, seed)`` yields plain JSON-able event
envelopes (see ``docs/events.md``) that go through the normal ingest path.
The same arguments give the same events, event ids included: every id comes
from a ``random.Random`` seeded with ``seed``. Only the standard library is
used.

What the data shows
-------------------
* Chinese households of 1-5 people (singles, couples, parents with children,
  three generations, elderly couples) in real districts of Beijing, Shanghai,
  Guangzhou, Shenzhen, Chengdu, Hangzhou, Nanjing and Wuhan. Members share an
  address, but many write it differently (full-width digits, 號, with or
  without the province/city prefix, 号楼/栋/幢, 室/房/bare number, 三号楼,
  3-2-501, extra spaces, fields filled or everything in ``line``).
* 18-digit national IDs with a real region prefix, birth date, gender digit and
  ISO 7064 check character; mobile and landline numbers; some e-mail addresses.
* Lodgers and flat-sharers at a household's address (relationship "other",
  same_household false), relatives living elsewhere declared same_household
  true, household heads, moves, deaths, duplicate registrations of one person
  (same national ID, slightly different name/address), most of them merged.
* Accounts of every product with monthly balances, fees and statements; the
  top ~1 % of households hold millions, the next ~9 % hundreds of thousands.
* Orders, complaints, contacts, consents, campaigns and mailings in every state.

Time line
---------
Households that exist before ``start`` are onboarded at times spread over the
previous ten years; a few join during the period. Then, for each calendar
month of the period:

* day 2, 01:00-03:00: ``BalanceReported`` for every open account, as of the
  previous month end (``core-banking``, ``card-system``, ``policy-admin`` or
  ``wealth-platform``);
* day 3, 01:00-03:00: ``StatementIssued`` for the previous month;
* days 6-24, business hours: life events, contacts, orders, complaints,
  consents, campaigns; their follow-ups (reviews, shipments, resolutions,
  returned mail, ...) fall on later business hours (08:00-21:00);
* day 25, 01:00-04:00: the ``FeeCharged`` run.

Night batches never overlap business hours, so the stream is ordered by
``occurred_at`` (balances for a month arrive on the 2nd of the next one) and
every entity is created before anything refers to it. Follow-ups that would
fall after the last statements are not emitted (orders still in transit,
complaints still open). Events from ``web`` and ``mobile-app`` carry UTC
offsets, all others +08:00.

Money and statements
--------------------
Money is a decimal string with two places. Loan and card balances are negative
(owed by the customer). A statement's ``closing_balance`` equals the balance
reported for the same month end, i.e. the previous closing balance plus that
month's movements (fees included), and ``fees_total`` is the sum of that
month's ``FeeCharged``. Exactly one statement per data set does not reconcile:
two digits of its closing balance are transposed.

Memory: the per-household state (people, accounts, planned life events) plus
the events scheduled for the future; events stream out as they are produced.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from typing import Any, Final

__all__ = ["generate_demo_events"]

Envelope = dict[str, Any]
Data = dict[str, Any]
Payload = Data | Callable[[], Data]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_CN_TZ: Final = timezone(timedelta(hours=8))
_UTC_SOURCES: Final = frozenset({"web", "mobile-app"})

# --------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _District:
    province: str
    city: str
    district: str
    postal_code: str
    region_code: str
    branch_code: str
    area_code: str
    streets: tuple[str, ...]
    lanes: bool = False  # Shanghai writes 100弄5号
    south: bool = False  # 栋 and 房 are the local habit


_DISTRICTS: Final = (
    _District("北京市", "北京市", "朝阳区", "100020", "110105", "BJ001", "010",
              ("建国路", "朝阳北路", "东三环中路", "望京街", "酒仙桥路")),
    _District("北京市", "北京市", "海淀区", "100080", "110108", "BJ002", "010",
              ("中关村大街", "学院路", "知春路", "北四环西路")),
    _District("北京市", "北京市", "西城区", "100032", "110102", "BJ003", "010",
              ("金融大街", "西单北大街", "德胜门外大街")),
    _District("上海市", "上海市", "浦东新区", "200120", "310115", "SH001", "021",
              ("世纪大道", "张杨路", "浦东南路", "锦绣路"), lanes=True),
    _District("上海市", "上海市", "徐汇区", "200030", "310104", "SH002", "021",
              ("漕溪北路", "肇嘉浜路", "衡山路"), lanes=True),
    _District("上海市", "上海市", "静安区", "200040", "310106", "SH003", "021",
              ("南京西路", "延安中路", "江宁路"), lanes=True),
    _District("广东省", "广州市", "天河区", "510620", "440106", "GZ001", "020",
              ("天河路", "体育西路", "黄埔大道西", "华夏路"), south=True),
    _District("广东省", "广州市", "越秀区", "510030", "440104", "GZ002", "020",
              ("中山五路", "东风中路", "环市东路"), south=True),
    _District("广东省", "深圳市", "南山区", "518052", "440305", "SZ001", "0755",
              ("科苑路", "南海大道", "后海大道"), south=True),
    _District("广东省", "深圳市", "福田区", "518048", "440304", "SZ002", "0755",
              ("福华路", "深南中路", "益田路"), south=True),
    _District("四川省", "成都市", "武侯区", "610041", "510107", "CD001", "028",
              ("人民南路四段", "科华北路", "武侯祠大街")),
    _District("四川省", "成都市", "锦江区", "610021", "510104", "CD002", "028",
              ("春熙路", "东大街", "红星路三段")),
    _District("浙江省", "杭州市", "西湖区", "310013", "330106", "HZ001", "0571",
              ("文三路", "天目山路", "文二西路")),
    _District("浙江省", "杭州市", "上城区", "310002", "330102", "HZ002", "0571",
              ("延安路", "解放路", "庆春路")),
    _District("江苏省", "南京市", "鼓楼区", "210008", "320106", "NJ001", "025",
              ("中山北路", "北京西路", "湖南路")),
    _District("湖北省", "武汉市", "武昌区", "430061", "420106", "WH001", "027",
              ("中北路", "武珞路", "中南路")),
)  # fmt: skip
_DISTRICT_CUM_WEIGHTS: Final = tuple(
    itertools.accumulate((9, 7, 5, 9, 6, 5, 6, 4, 6, 4, 5, 3, 5, 3, 4, 4))
)
_BRANCH_CODES: Final = tuple(d.branch_code for d in _DISTRICTS)
# Birthplaces of people who moved to the big cities (ID prefixes).
_HOMETOWN_CODES: Final = (
    "130102", "410105", "420106", "430102", "370102", "350102", "360102",
    "340104", "450103", "500103", "610103", "210102", "230102", "220102",
    "140105", "320583", "330203", "441900", "130602", "411302",
)  # fmt: skip

_STAFF: Final = _words(
    "王芳 李娜 张伟 刘洋 陈静 杨磊 黄丽 赵强 吴敏 周杰 徐婷 孙浩 马超 朱琳 胡军 "
    "郭燕 何涛 高洁 林峰 罗霞 郑斌 梁艳 谢鹏 宋佳 唐亮 许晴 韩雪 冯刚 邓颖 曹阳 "
    "彭博 曾强 肖敏 田野 董洁 袁媛 潘越 于晨 蒋欣 蔡文 余晖 杜鹃 叶青 程亮 苏珊 "
    "魏巍 吕方 丁宁 任杰 沈冰 姚远 卢静 姜涛 崔颖 钟鸣 谭月 陆晨 汪蕾 范文 金鑫 "
    "石磊 廖琳 贾宁 夏洁 韦东 付丽"
)
_BRANCH_OFFICERS: Final = {
    code: tuple(f"officer:{name}" for name in _STAFF[3 * i : 3 * i + 3])
    for i, code in enumerate(_BRANCH_CODES)
}
_CALLCENTRE_AGENTS: Final = tuple(f"officer:{n}" for n in _STAFF[48:52])
_ORDER_REVIEWERS: Final = tuple(f"officer:{n}" for n in _STAFF[52:55])
_COMPLAINT_OFFICERS: Final = tuple(f"officer:{n}" for n in _STAFF[55:58])
_DATA_STEWARDS: Final = tuple(f"officer:{n}" for n in _STAFF[58:60])
_MARKETERS: Final = tuple(f"officer:{n}" for n in _STAFF[60:62])

_SURNAMES: Final[tuple[str, ...]] = (
    *"王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋"
    "蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫"
    "段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤",
    "欧阳", "司马", "上官", "诸葛",
)  # fmt: skip
_SURNAME_CUM_WEIGHTS: Final = tuple(
    itertools.accumulate([1000 / (i + 6) for i in range(len(_SURNAMES) - 4)] + [1] * 4)
)
_SURNAME_PINYIN: Final = dict(
    zip(
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹",
        _words(
            "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he "
        )
        + _words("gao lin luo zheng liang xie song tang xu han feng deng cao"),
        strict=True,
    )
)
_GIVEN_NAMES: Final = {
    (
        "old",
        "male",
    ): "建国 建华 国强 志强 德明 文华 玉林 振华 福生 永明 国庆 卫东 学军 长青 树林 宝山",
    (
        "old",
        "female",
    ): "秀英 桂英 秀兰 玉兰 桂兰 凤英 淑珍 玉珍 秀珍 淑华 素芬 桂芳 凤兰 翠英",
    (
        "mid",
        "male",
    ): "伟 强 磊 军 勇 涛 明 超 杰 斌 鹏 辉 刚 浩 建军 志刚 海涛 晓东 立新 俊 文斌 国栋 永强",
    (
        "mid",
        "female",
    ): "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 婷 雪 丹 红梅 晓燕 丽华 海燕 慧 颖 琳 秀梅 晓丽 春燕",
    (
        "young",
        "male",
    ): "浩然 子轩 宇航 俊杰 博文 梓睿 宇轩 皓轩 一鸣 天佑 家豪 明轩 思远 泽宇 晨 昊",
    (
        "young",
        "female",
    ): "欣怡 子涵 梓涵 诗琪 雨桐 思彤 可欣 一诺 佳怡 梦瑶 雨萱 若曦 悦 彤",
}
# Same sound, wrong character: what a clerk types by mistake.
_HOMOPHONES: Final = dict(
    zip(
        "伟静丽芳军杰明华娜红磊涛敏婷晓燕霞浩轩涵怡琪彤",
        "玮婧莉方君洁铭桦那宏垒韬闽亭小艳侠皓萱含宜淇桐",
        strict=True,
    )
)
# Traditional forms, as written by someone from Hong Kong or Taiwan.
_TRADITIONAL: Final = dict(
    zip(
        "国华伟丽军龙东红刚兰凤云涛杰强张刘陈杨赵吴孙马罗郑谢许韩冯邓叶苏吕卢钟陆龚汤钱严贺顾静艳",
        "國華偉麗軍龍東紅剛蘭鳳雲濤傑強張劉陳楊趙吳孫馬羅鄭謝許韓馮鄧葉蘇呂盧鍾陸龔湯錢嚴賀顧靜艷",
        strict=True,
    )
)
_MOBILE_PREFIXES: Final = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 155 156 157 158 159 "
    "166 173 177 180 181 182 185 186 187 188 189 191 198 199"
)
_MAIL_DOMAINS: Final = ("163.com", "126.com", "sina.com", "foxmail.com", "outlook.com")
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS: Final = "10X98765432"
_FULLWIDTH_DIGITS: Final = str.maketrans("0123456789", "０１２３４５６７８９")
_CN_NUMERALS: Final = "零一二三四五六七八九十"

_SYSTEM_OF_PRODUCT: Final = {
    "deposit": "core-banking",
    "loan": "core-banking",
    "other": "core-banking",
    "card": "card-system",
    "fund": "wealth-platform",
    "insurance_policy": "policy-admin",
}
_TIER_SCALE: Final = {"mass": 1.0, "rich": 5.0, "top": 50.0}
_MEDIAN_YUAN: Final = {
    "deposit": 40_000,
    "fund": 60_000,
    "insurance_policy": 30_000,
    "other": 20_000,
}
_INITIAL_CONSENTS: Final = (
    ("sms", "service", True, 0.6),
    ("email", "marketing", True, 0.45),
    ("phone", "marketing", False, 0.2),
    ("mail", "marketing", False, 0.04),
)
_ROUTINE_RATES: Final = (
    ("contact", 0.2),
    ("order", 0.035),
    ("complaint", 0.012),
    ("consent", 0.012),
    ("open_account", 0.008),
    ("correction", 0.01),
)
_CONTACT_CHANNELS: Final = ("branch", "phone", "email", "sms", "web", "letter", "visit")
_CONTACT_CHANNEL_WEIGHTS: Final = (25, 30, 8, 12, 12, 5, 8)
_INBOUND_SHARE: Final = {
    "branch": 0.9,
    "phone": 0.6,
    "email": 0.5,
    "sms": 0.1,
    "web": 1.0,
    "letter": 0.2,
    "visit": 0.0,
}
_CONTACT_TOPICS: Final = {
    "inbound": (
        "理财产品咨询", "信用卡额度调整", "挂失补卡", "修改预留手机号", "贷款提前还款咨询",
        "查询账户余额", "理赔进度查询", "网银密码重置", "大额存单咨询",
    ),
    "outbound": (
        "理财到期提醒", "生日问候", "信用卡分期推荐", "贷款还款提醒", "投诉回访",
        "客户信息核实", "存款到期续存提醒", "保险续保提醒",
    ),
}  # fmt: skip
_ORDER_PRODUCTS: Final = (
    # name, lowest and highest price in cents, weight for mass / rich / top
    ("熊猫金币30克", 420_000, 520_000, (3, 4, 3)),
    ("投资金条50克", 2_900_000, 3_400_000, (1, 4, 3)),
    ("投资金条1000克", 58_000_000, 66_000_000, (0, 0, 3)),
    ("生肖纪念币", 1_000, 3_000, (4, 2, 1)),
    ("U盾", 2_000, 4_000, (3, 1, 1)),
    ("白金信用卡", 0, 0, (2, 3, 2)),
    ("ETC设备", 0, 0, (2, 2, 1)),
)
_ORDER_OUTCOMES: Final = (
    "delivered",
    "in_transit",
    "placed",
    "rejected",
    "cancelled",
    "cancelled_after_approval",
)
_ORDER_OUTCOME_WEIGHTS: Final = (62, 6, 6, 10, 10, 6)
_ORDER_REJECTIONS: Final = ("风险评估等级不匹配", "身份信息核验未通过", "征信记录异常")
_ORDER_CANCELLATIONS: Final = (
    "客户主动取消",
    "库存不足",
    "超时未支付",
    "收货地址无法配送",
)
_COMPLAINT_TOPICS: Final = (
    ("fees", "信用卡年费未经告知被扣收，要求退还", "已退还年费并致歉"),
    ("fees", "跨行转账手续费与网点告知不一致", "已按公示标准退还差额"),
    ("service", "网点排队时间过长，柜员态度冷淡", "已向客户致歉并对网点进行服务整改"),
    ("card", "借记卡被自助机吞卡，三天未处理", "已取回卡片并送交客户"),
    ("wealth_product", "理财产品风险等级与销售时介绍不符", "已复核销售录音录像，向客户说明并补偿部分损失"),
    ("insurance", "理赔材料多次补交仍未受理", "已加急受理理赔，款项已到账"),
    ("delivery", "申领的纪念币迟迟未送达", "已补寄并提供快递单号"),
    ("digital", "手机银行频繁闪退无法转账", "已修复版本问题，客户确认可正常使用"),
    ("privacy", "频繁接到营销电话，要求停止打扰", "已将客户号码加入免打扰名单"),
    ("loan", "提前还款违约金计算有误", "已重新核算并退还多收金额"),
)  # fmt: skip
_COMPLAINT_OUTCOMES: Final = (
    "filed", "assigned", "escalated", "resolved", "reopened",
    "escalated_resolved", "reopened_resolved",
)  # fmt: skip
_COMPLAINT_OUTCOME_WEIGHTS: Final = (8, 10, 8, 50, 5, 12, 7)
_ESCALATION_REASONS: Final = ("超过48小时未解决", "客户要求升级处理", "涉及金额较大")
_REOPEN_REASONS: Final = ("客户对处理结果不满意", "问题再次出现")
_RETURN_REASONS: Final = ("原址查无此人", "地址不详，无法投递", "收件人已迁出")
_RESPONSES: Final = (
    "预约理财经理面谈",
    "扫码登记参加活动",
    "来电咨询产品详情",
    "到网点办理开户",
)
_TRANSFER_FEES: Final = (200, 500, 1_000, 2_500, 5_000)

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


_UUID_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET: Final = (4 << 76) | (0x8000 << 48)


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID from `rng`: str(uuid.UUID(int=bits, version=4)), but faster."""
    digits = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _money(cents: int) -> str:
    digits = f"{cents:03d}" if cents >= 0 else f"-{-cents:03d}"
    return f"{digits[:-2]}.{digits[-2:]}"


def _cents(yuan: float) -> int:
    return round(yuan * 100)


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _stamp(at: datetime, source: str) -> str:
    if source in _UTC_SOURCES:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="seconds")


_CLOCK: dict[int, str] = {}  # seconds after midnight -> "HH:MM:SS+08:00" (a cache)


def _night_stamps(start: datetime, count: int, window_seconds: int) -> Iterator[str]:
    """`count` non-decreasing +08:00 time stamps spread over a night-batch window."""
    prefix = start.strftime("%Y-%m-%dT")
    first = start.hour * 3600
    step = window_seconds / max(1, count)
    clock = _CLOCK
    for i in range(count):
        s = first + int(i * step)
        time_of_day = clock.get(s)
        if time_of_day is None:
            time_of_day = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}+08:00"
            clock[s] = time_of_day
        yield prefix + time_of_day


def _business_hours(at: datetime) -> datetime:
    """Moves a moment of the night (21:00-08:30) to 08:00-08:30 of the morning after.

    The mapping never goes back in time and keeps the order of any two moments.
    """
    if (at.hour, at.minute) >= (8, 30) and at.hour < 21:
        return at
    night_start = at.replace(hour=21, minute=0, second=0, microsecond=0)
    if at.hour < 21:
        night_start -= timedelta(days=1)
    return night_start + timedelta(hours=11) + (at - night_start) / 23


def _national_id(rng: random.Random, region: str, birth: date, gender: str) -> str:
    """18 characters: region, birth date, sequence (odd for men), ISO 7064 check."""
    sequence = (
        rng.randrange(0, 499) * 2 + 1 if gender == "male" else rng.randrange(1, 500) * 2
    )
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    total = sum(
        int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True)
    )
    return body + _ID_CHECK_CHARS[total % 11]


def _mobile(rng: random.Random) -> str:
    return f"{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def _email(rng: random.Random, surname: str) -> str:
    pinyin = _SURNAME_PINYIN.get(surname)
    if pinyin is None or rng.random() < 0.35:
        return f"{rng.randrange(10**6, 10**10)}@qq.com"
    separator = rng.choice(("", ".", "_"))
    return f"{pinyin}{separator}{rng.randrange(10, 9999)}@{rng.choice(_MAIL_DOMAINS)}"


def _surname(rng: random.Random) -> str:
    return rng.choices(_SURNAMES, cum_weights=_SURNAME_CUM_WEIGHTS)[0]


def _given_name(rng: random.Random, gender: str, birth_year: int) -> str:
    generation = "old" if birth_year < 1960 else "mid" if birth_year < 1990 else "young"
    return rng.choice(_GIVEN_NAMES[(generation, gender)].split())


def _birth(rng: random.Random, first_year: int, last_year: int) -> date:
    return date(rng.randint(first_year, last_year), 1, 1) + timedelta(
        days=rng.randrange(365)
    )


def _gender(rng: random.Random, male_share: float = 0.5) -> str:
    return "male" if rng.random() < male_share else "female"


def _homophone_typo(name: str, surname: str, position: int) -> str:
    given = name[len(surname) :]
    return (
        surname
        + given[:position]
        + _HOMOPHONES[given[position]]
        + given[position + 1 :]
    )


def _typo_positions(name: str, surname: str) -> list[int]:
    return [i for i, ch in enumerate(name[len(surname) :]) if ch in _HOMOPHONES]


def _with_typo(rng: random.Random, name: str, surname: str) -> str:
    """A homophone typo in the given name for ~4 % of registrations."""
    positions = _typo_positions(name, surname)
    if not positions or rng.random() >= 0.04:
        return name
    return _homophone_typo(name, surname, rng.choice(positions))


def _name_variant(rng: random.Random, name: str, surname: str) -> str:
    """How the same person's name ends up on a second registration."""
    variants = [f"{surname} {name[len(surname) :]}"]
    traditional = "".join(_TRADITIONAL.get(ch, ch) for ch in name)
    if traditional != name:
        variants.append(traditional)
    positions = _typo_positions(name, surname)
    if positions:
        variants.append(_homophone_typo(name, surname, positions[0]))
    return rng.choice(variants)


def _misprinted(cents: int) -> int:
    """Two adjacent digits of the whole part transposed (or 100.00 off if impossible)."""
    digits = list(str(abs(cents)))
    for i in range(len(digits) - 3, 0, -1):
        if digits[i] != digits[i - 1]:
            digits[i], digits[i - 1] = digits[i - 1], digits[i]
            value = int("".join(digits))
            return -value if cents < 0 else value
    return cents + 10_000


def _chinese_number(value: int) -> str:
    if value <= 10:
        return _CN_NUMERALS[value]
    tens, ones = divmod(value, 10)
    head = "" if tens == 1 else _CN_NUMERALS[tens]
    return f"{head}十{_CN_NUMERALS[ones] if ones else ''}"


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    """One dwelling, independent of how anyone writes it."""

    district: _District
    street: str
    number: int
    lane: int | None
    building: int | None
    unit: int | None
    room: int


@dataclass(frozen=True, slots=True)
class _AddressStyle:
    """How one person writes an address."""

    structured: bool  # province/city/district in their own fields
    prefix: str  # in the line: "province", "city", "short", "district"
    building_word: str  # 号楼, 栋, 幢
    room_word: str  # 室, 房 or nothing
    with_province: bool = True
    with_postal: bool = False
    with_country: bool = False
    fullwidth: bool = False
    traditional: bool = False
    spaced: bool = False
    chinese_building: bool = False
    dashed: bool = False  # 3-2-501


_PREFIXES: Final = ("province", "city", "short", "district")
_STYLE_CHANGES: Final = (
    "fullwidth", "traditional", "prefix", "building", "room", "spaced",
    "structured", "chinese_building", "dashed",
)  # fmt: skip


def _random_place(rng: random.Random, district: _District) -> _Place:
    street = rng.choice(district.streets)
    room = rng.randint(1, 32) * 100 + rng.randint(1, 4)
    if district.lanes and rng.random() < 0.75:
        return _Place(
            district,
            street,
            rng.randint(1, 40),
            rng.randint(10, 1500),
            None,
            None,
            room,
        )
    building = rng.randint(1, 20) if rng.random() < 0.8 else None
    unit = rng.randint(1, 6) if building and rng.random() < 0.65 else None
    return _Place(district, street, rng.randint(1, 400), None, building, unit, room)


def _random_style(rng: random.Random, district: _District) -> _AddressStyle:
    south = district.south
    return _AddressStyle(
        structured=rng.random() < 0.4,
        prefix=rng.choices(_PREFIXES, weights=(3, 5, 1, 1))[0],
        building_word=rng.choices(
            ("号楼", "栋", "幢"), weights=(1, 4, 1) if south else (6, 2, 1)
        )[0],
        room_word=rng.choices(
            ("室", "房", ""), weights=(2, 5, 1) if south else (8, 1, 1)
        )[0],
        with_province=rng.random() < 0.6,
        with_postal=rng.random() < 0.5,
        with_country=rng.random() < 0.3,
    )


def _variant_style(rng: random.Random, style: _AddressStyle) -> _AddressStyle:
    """The same address written by someone else: one or two habits differ."""
    for change in rng.sample(_STYLE_CHANGES, rng.randint(1, 2)):
        style = _changed_style(rng, style, change)
    return style


def _changed_style(
    rng: random.Random, style: _AddressStyle, change: str
) -> _AddressStyle:
    if change == "prefix":
        others = [p for p in _PREFIXES if p != style.prefix]
        return replace(style, prefix=rng.choice(others), structured=False)
    if change == "building":
        others = [w for w in ("号楼", "栋", "幢") if w != style.building_word]
        return replace(style, building_word=rng.choice(others))
    if change == "room":
        others = [w for w in ("室", "房", "") if w != style.room_word]
        return replace(style, room_word=rng.choice(others))
    if change == "structured":
        return replace(style, structured=not style.structured)
    if change == "fullwidth":
        return replace(style, fullwidth=True)
    if change == "traditional":
        return replace(style, traditional=True)
    if change == "spaced":
        return replace(style, spaced=True)
    if change == "chinese_building":
        return replace(style, chinese_building=True)
    return replace(style, dashed=True)


def _street_parts(place: _Place, style: _AddressStyle) -> list[str]:
    parts = [place.street]
    if place.lane is not None:
        parts.append(f"{place.lane}弄")
    parts.append(f"{place.number}号")
    if style.dashed and place.building is not None and place.unit is not None:
        parts.append(f"{place.building}-{place.unit}-{place.room}")
        return parts
    if place.building is not None:
        number = (
            _chinese_number(place.building)
            if style.chinese_building
            else str(place.building)
        )
        parts.append(f"{number}{style.building_word}")
    if place.unit is not None:
        parts.append(f"{place.unit}单元")
    parts.append(f"{place.room}{style.room_word}")
    return parts


def _line_prefix(district: _District, prefix: str) -> list[str]:
    if prefix == "district":
        return [district.district]
    if prefix == "short":
        return [district.city.removesuffix("市"), district.district]
    if prefix == "province" and district.province != district.city:
        return [district.province, district.city, district.district]
    return [district.city, district.district]


def _render_address(place: _Place, style: _AddressStyle) -> dict[str, str]:
    district = place.district
    parts = _street_parts(place, style)
    address: dict[str, str] = {}
    if style.structured:
        address["city"], address["district"] = district.city, district.district
        if style.with_province:
            address["province"] = district.province
    else:
        parts = _line_prefix(district, style.prefix) + parts
    line = (" " if style.spaced else "").join(parts)
    if style.fullwidth:
        line = line.translate(_FULLWIDTH_DIGITS)
    if style.traditional:
        line = line.replace("号", "號").replace("楼", "樓").replace("单元", "單元")
    address = {"line": line, **address}
    if style.with_postal:
        address["postal_code"] = district.postal_code
    if style.with_country:
        address["country"] = "CN"
    return address


# --------------------------------------------------------------------------
# The model: people, accounts, households
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MemberSpec:
    role: str  # head, spouse, child, parent, lodger
    relation: str  # as seen from the head: spouse, child, parent, other
    gender: str
    birth_date: date
    surname: str


@dataclass(slots=True, eq=False)
class _Customer:
    customer_id: str
    surname: str
    name: str
    true_name: str
    gender: str
    birth_date: date
    national_id: str
    phone: str | None
    email: str | None
    branch_code: str
    officer: str
    place: _Place
    style: _AddressStyle
    address: dict[str, str]
    role: str
    relation: str
    shown: frozenset[str]  # optional fields given at registration
    registered_at: datetime | None = None
    alive: bool = True
    merged_away: bool = False
    away: bool = False  # lives elsewhere but belongs to the household
    duplicate_of: _Customer | None = None
    historic: bool = False  # a duplicate registered before the period
    consents: dict[tuple[str, str], bool] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Account:
    account_id: str
    owner: _Customer
    product: str
    branch_code: str
    currency: str
    balance: int  # cents; negative = owed
    drift: int  # monthly movement parameter, cents
    system: str
    joint_holders: tuple[_Customer, ...] = ()
    show_currency: bool = False
    sms_alert: bool = False
    annual_fee: int = 0
    status: str = "planned"  # planned -> open -> closed
    opened_month: int = 1  # calendar month, for the card's annual fee
    fees_period: int = 0
    reported: int = 0
    reported_month: int = -1


@dataclass(slots=True, eq=False)
class _Relationship:
    customer: _Customer
    related: _Customer
    relation: str
    same_household: bool
    active: bool = True


@dataclass(slots=True, eq=False)
class _Household:
    index: int
    tier: str  # mass, rich, top
    place: _Place
    join_month: int  # -1: before the period
    members: list[_Customer] = field(default_factory=list)
    accounts: list[_Account] = field(default_factory=list)
    relationships: list[_Relationship] = field(default_factory=list)
    stories: dict[int, list[tuple[str, Any]]] = field(default_factory=dict)
    head: _Customer | None = None
    head_at_onboarding: bool = False


@dataclass(slots=True, eq=False)
class _Campaign:
    campaign_id: str
    name: str
    channel: str
    purpose: str
    one_per_household: bool
    cap: tuple[int, int]
    month: int
    reach: float


@dataclass(slots=True)
class _Step:
    """One onboarding event, `gap` seconds after the previous one."""

    gap: float
    event_type: str
    source: str
    actor: str | None
    payload: Payload
    subject: _Customer | _Account | None = None


_HOUSEHOLD_KINDS: Final = (
    "single", "elderly_single", "couple", "family", "three_generations",
    "single_parent", "elderly_couple",
)  # fmt: skip
_HOUSEHOLD_KIND_WEIGHTS: Final = (14, 6, 18, 30, 12, 7, 13)
_COUPLE_YEARS: Final = {
    "couple": (1965, 1998),
    "family": (1968, 1992),
    "three_generations": (1966, 1990),
    "elderly_couple": (1938, 1960),
}


def _household_specs(rng: random.Random) -> list[_MemberSpec]:
    kind = rng.choices(_HOUSEHOLD_KINDS, weights=_HOUSEHOLD_KIND_WEIGHTS)[0]
    surname = _surname(rng)
    if kind == "single":
        return [
            _MemberSpec("head", "self", _gender(rng), _birth(rng, 1975, 2001), surname)
        ]
    if kind == "elderly_single":
        birth = _birth(rng, 1936, 1958)
        return [_MemberSpec("head", "self", _gender(rng, 0.35), birth, surname)]
    if kind == "single_parent":
        return _single_parent_specs(rng, surname)
    couple = _couple_specs(rng, surname, _surname(rng), _COUPLE_YEARS[kind])
    if kind == "family":
        return couple + _children_specs(
            rng, couple, rng.choices((1, 2, 3), weights=(5, 4, 1))[0]
        )
    if kind == "three_generations":
        return (
            couple
            + _children_specs(rng, couple, rng.randint(1, 2))
            + [_grandparent_spec(rng, couple)]
        )
    return couple


def _couple_specs(
    rng: random.Random, surname: str, wife_surname: str, years: tuple[int, int]
) -> list[_MemberSpec]:
    husband_birth = _birth(rng, *years)
    wife_birth = husband_birth + timedelta(days=rng.randint(-730, 2200))
    if rng.random() < 0.75:
        return [
            _MemberSpec("head", "self", "male", husband_birth, surname),
            _MemberSpec("spouse", "spouse", "female", wife_birth, wife_surname),
        ]
    return [
        _MemberSpec("head", "self", "female", wife_birth, wife_surname),
        _MemberSpec("spouse", "spouse", "male", husband_birth, surname),
    ]


def _children_specs(
    rng: random.Random, couple: list[_MemberSpec], count: int
) -> list[_MemberSpec]:
    father = next(s for s in couple if s.gender == "male")
    mother = next(s for s in couple if s.gender == "female")
    children = []
    for _ in range(count):
        year = min(mother.birth_date.year + rng.randint(23, 36), 2023)
        surname = father.surname if rng.random() < 0.9 else mother.surname
        children.append(
            _MemberSpec(
                "child", "child", _gender(rng), _birth(rng, year, year), surname
            )
        )
    return sorted(children, key=lambda s: s.birth_date)


def _grandparent_spec(rng: random.Random, couple: list[_MemberSpec]) -> _MemberSpec:
    head, spouse = couple
    own_parent = rng.random() < 0.65
    child = head if own_parent else spouse
    gender = _gender(rng, 0.4)
    surname = child.surname if gender == "male" else _surname(rng)
    year = max(1930, child.birth_date.year - rng.randint(22, 34))
    relation = "parent" if own_parent else "other"  # a parent-in-law
    return _MemberSpec("parent", relation, gender, _birth(rng, year, year), surname)


def _single_parent_specs(rng: random.Random, surname: str) -> list[_MemberSpec]:
    parent = _MemberSpec(
        "head", "self", _gender(rng, 0.3), _birth(rng, 1970, 1992), surname
    )
    children = []
    for _ in range(rng.randint(1, 2)):
        year = min(parent.birth_date.year + rng.randint(22, 36), 2023)
        child_surname = (
            surname if parent.gender == "male" or rng.random() < 0.4 else _surname(rng)
        )
        children.append(
            _MemberSpec(
                "child", "child", _gender(rng), _birth(rng, year, year), child_surname
            )
        )
    return [parent, *children]


def _registration_data(c: _Customer) -> Data:
    data: Data = {
        "customer_id": c.customer_id,
        "name": c.name,
        "address": dict(c.address),
        "branch_code": c.branch_code,
    }
    optional = {
        "national_id": c.national_id,
        "birth_date": c.birth_date.isoformat(),
        "gender": c.gender,
        "phone": c.phone,
        "email": c.email,
        "region_code": c.place.district.region_code,
        "handling_officer": c.officer,
    }
    for key, value in optional.items():
        if value is not None and key in c.shown:
            data[key] = value
    return data


def _account_opened_data(a: _Account) -> Data:
    data: Data = {
        "account_id": a.account_id,
        "customer_id": a.owner.customer_id,
        "product": a.product,
        "branch_code": a.branch_code,
    }
    if a.joint_holders:
        data["joint_holder_ids"] = [h.customer_id for h in a.joint_holders]
    if a.show_currency or a.currency != "CNY":
        data["currency"] = a.currency
    return data


def _advance_balance(rng: random.Random, a: _Account) -> None:
    """One month of movements (salary, spending, market, repayments)."""
    if a.product == "deposit":
        a.balance = max(
            0, a.balance + round(rng.gauss(a.drift, abs(a.drift) * 4 + 30_000))
        )
    elif a.product in ("fund", "other"):
        a.balance = round(a.balance * (1 + rng.gauss(0.004, 0.03)))
    elif a.product == "insurance_policy":
        a.balance += a.drift
    elif a.product == "loan":
        a.balance = min(0, a.balance + a.drift)
    elif a.product == "card":
        a.balance = -round(rng.lognormvariate(math.log(max(a.drift, 10_000)), 0.5))


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------

_Scheduled = tuple[datetime, int, str, str, str | None, Payload]
_Activity = tuple[datetime, int, str, Any]


class _DemoWorld:
    """Builds the households, then plays their life month by month."""

    def __init__(self, households: int, seed: int, start: date, months: int) -> None:
        self.rng = random.Random(seed)
        self.id_rng = random.Random(f"crm-demo-event-ids:{seed}")
        self.household_count = households
        self.months = months
        self.first_day = date(start.year, start.month, 1)
        self.households: list[_Household] = []
        self.campaigns: list[_Campaign] = []
        self.heap: list[_Scheduled] = []
        self.seq = 0
        self.forced_orders = deque(_ORDER_OUTCOMES)
        self.forced_complaints = deque(_COMPLAINT_OUTCOMES)
        self.forced_channels = deque(_CONTACT_CHANNELS)
        self.forced_mail_outcomes = deque(("returned", "responded"))
        self.misprint_month = self.rng.randrange(months)
        self.misprint_household = self.rng.randrange(max(1, households))
        self.misprint_done = False

    # -- the stream ------------------------------------------------------

    def events(self) -> Iterator[Envelope]:
        self._build_world()
        for month in range(self.months):
            yield from self._close_month(month - 1)
            self._plan_month(month)
            yield from self._drain(self._at(month, 25, 1))
            yield from self._fee_run(month)
        yield from self._close_month(self.months - 1)
        self.heap.clear()  # follow-ups after the end of the period

    def _close_month(self, month: int) -> Iterator[Envelope]:
        """Balances (day 2) and statements (day 3) of `month`, in the next month."""
        yield from self._drain(self._at(month + 1, 2, 1))
        if month < 0:
            return
        yield from self._balance_run(month)
        yield from self._drain(self._at(month + 1, 3, 1))
        yield from self._statement_run(month)

    def _drain(self, until: datetime) -> Iterator[Envelope]:
        heap = self.heap
        while heap and heap[0][0] < until:
            at, _, event_type, source, actor, payload = heapq.heappop(heap)
            data = payload() if callable(payload) else payload
            yield self._envelope(_stamp(at, source), event_type, source, actor, data)

    def _envelope(
        self, stamp: str, event_type: str, source: str, actor: str | None, data: Data
    ) -> Envelope:
        return {
            "event_id": _uuid(self.id_rng),
            "type": event_type,
            "occurred_at": stamp,
            "source": source,
            "actor": actor,
            "data": data,
        }

    def _push(
        self,
        at: datetime,
        event_type: str,
        source: str,
        actor: str | None,
        payload: Payload,
    ) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, event_type, source, actor, payload))

    def _new_id(self) -> str:
        return _uuid(self.rng)

    # -- calendar --------------------------------------------------------

    def _month_first(self, month: int) -> date:
        years, month0 = divmod(self.first_day.month - 1 + month, 12)
        return date(self.first_day.year + years, month0 + 1, 1)

    def _month_last(self, month: int) -> date:
        return self._month_first(month + 1) - timedelta(days=1)

    def _month_of(self, at: datetime) -> int:
        return (at.year - self.first_day.year) * 12 + at.month - self.first_day.month

    def _at(self, month: int, day: int, hour: int) -> datetime:
        first = self._month_first(month)
        return datetime(first.year, first.month, day, hour, tzinfo=_CN_TZ)

    def _activity_time(
        self, month: int, first_day: int = 6, last_day: int = 24
    ) -> datetime:
        day = self._month_first(month) + timedelta(
            days=self.rng.randint(first_day - 1, last_day - 1)
        )
        seconds = self.rng.randint(8 * 3600 + 1800, 20 * 3600 + 1800)
        return datetime(day.year, day.month, day.day, tzinfo=_CN_TZ) + timedelta(
            seconds=seconds
        )

    def _after(self, at: datetime, min_hours: float, max_hours: float) -> datetime:
        return _business_hours(
            at + timedelta(hours=self.rng.uniform(min_hours, max_hours))
        )

    # -- building the world ----------------------------------------------

    def _build_world(self) -> None:
        tiers = self._tiers()
        for index in range(self.household_count):
            joins_later = self.months > 1 and self.rng.random() < 0.07
            join_month = self.rng.randrange(1, self.months) if joins_later else -1
            self.households.append(
                self._build_household(index, tiers[index], join_month)
            )
        if self.households:
            self._allocate_stories()
        self.campaigns = self._plan_campaigns() if self.households else []
        for hh in self.households:
            if hh.join_month < 0:
                self._schedule_onboarding(hh)

    def _tiers(self) -> list[str]:
        n = self.household_count
        order = list(range(n))
        self.rng.shuffle(order)
        top = max(1, round(n * 0.01)) if n else 0
        rich = max(1, round(n * 0.09)) if n > 1 else 0
        tiers = ["mass"] * n
        for rank, index in enumerate(order):
            tiers[index] = (
                "top" if rank < top else "rich" if rank < top + rich else "mass"
            )
        return tiers

    def _build_household(self, index: int, tier: str, join_month: int) -> _Household:
        rng = self.rng
        district = rng.choices(_DISTRICTS, cum_weights=_DISTRICT_CUM_WEIGHTS)[0]
        hh = _Household(index, tier, _random_place(rng, district), join_month)
        head_style = _random_style(rng, district)
        for spec in _household_specs(rng):
            style = (
                head_style
                if not hh.members or rng.random() < 0.5
                else _variant_style(rng, head_style)
            )
            hh.members.append(self._new_customer(spec, hh.place, style))
        hh.head = hh.members[0]
        for member in list(hh.members):
            self._plan_accounts(hh, member)
        self._plan_family_relationships(hh)
        return hh

    def _new_customer(
        self, spec: _MemberSpec, place: _Place, style: _AddressStyle
    ) -> _Customer:
        rng = self.rng
        birth = _shift_years(spec.birth_date, self.first_day.year - 2025)
        age = _age(birth, self.first_day)
        local = age < 25 or rng.random() < 0.5
        region = place.district.region_code if local else rng.choice(_HOMETOWN_CODES)
        branch = self._home_branch(place.district)
        name = spec.surname + _given_name(rng, spec.gender, birth.year)
        return _Customer(
            customer_id=self._new_id(),
            surname=spec.surname,
            name=_with_typo(rng, name, spec.surname),
            true_name=name,
            gender=spec.gender,
            birth_date=birth,
            national_id=_national_id(rng, region, birth, spec.gender),
            phone=self._phone(age, place.district),
            email=_email(rng, spec.surname)
            if 18 <= age < 70 and rng.random() < 0.4
            else None,
            branch_code=branch,
            officer=rng.choice(_BRANCH_OFFICERS[branch]),
            place=place,
            style=style,
            address=_render_address(place, style),
            role=spec.role,
            relation=spec.relation,
            shown=self._shown_fields(),
        )

    def _home_branch(self, district: _District) -> str:
        """Mostly the district's branch; sometimes another in the city or anywhere."""
        r = self.rng.random()
        if r < 0.85:
            return district.branch_code
        if r < 0.95:
            return self._near_district(district).branch_code
        return self.rng.choice(_BRANCH_CODES)

    def _phone(self, age: int, district: _District) -> str | None:
        rng = self.rng
        if age < 12 or rng.random() < 0.04:
            return None
        if age >= 68 and rng.random() < 0.35:
            return (
                f"{district.area_code}-{rng.randint(2, 8)}{rng.randrange(10**6, 10**7)}"
            )
        return _mobile(rng)

    def _shown_fields(self) -> frozenset[str]:
        chances = (("national_id", 0.97), ("birth_date", 0.8), ("gender", 0.85), ("phone", 0.95),
                   ("email", 0.9), ("region_code", 0.7), ("handling_officer", 0.6))  # fmt: skip
        return frozenset(name for name, chance in chances if self.rng.random() < chance)

    def _plan_accounts(self, hh: _Household, c: _Customer) -> None:
        for product in self._products_for(hh, c):
            self._new_account(hh, c, product)
        spouse = next((m for m in hh.members if m.role == "spouse"), None)
        age = _age(c.birth_date, self.first_day)
        if (
            c.role == "head"
            and spouse is not None
            and 25 <= age <= 60
            and self.rng.random() < 0.35
        ):
            self._new_account(hh, c, "loan", joint=(spouse,))

    def _products_for(self, hh: _Household, c: _Customer) -> list[str]:
        rng = self.rng
        age = _age(c.birth_date, self.first_day)
        if c.role == "lodger":
            return ["deposit"] + (["card"] if rng.random() < 0.5 else [])
        if age < 18:
            return ["deposit"] if rng.random() < 0.8 else []
        wealthy = hh.tier != "mass"
        products = ["deposit"]
        if rng.random() < (0.6 if wealthy else 0.2):
            products.append("deposit")
        if age < 70 and rng.random() < 0.6:
            products.append("card")
        if rng.random() < (0.85 if wealthy else 0.25):
            products.append("fund")
        if rng.random() < (0.7 if wealthy else 0.3):
            products.append("insurance_policy")
        if rng.random() < (0.4 if wealthy else 0.06):
            products.append("other")
        return products

    def _new_account(
        self,
        hh: _Household,
        owner: _Customer,
        product: str,
        joint: tuple[_Customer, ...] = (),
    ) -> _Account:
        rng = self.rng
        second_deposit = product == "deposit" and any(
            a.owner is owner and a.product == "deposit" for a in hh.accounts
        )
        usd = second_deposit and hh.tier != "mass" and rng.random() < 0.35
        currency = "USD" if usd else "CNY"
        balance = self._opening_balance(
            product, hh.tier, currency, _age(owner.birth_date, self.first_day) < 18
        )
        account = _Account(
            account_id=self._new_id(),
            owner=owner,
            product=product,
            branch_code=owner.branch_code,
            currency=currency,
            balance=balance,
            drift=self._monthly_drift(product, balance),
            system=_SYSTEM_OF_PRODUCT[product],
            joint_holders=joint,
            show_currency=rng.random() < 0.4,
            sms_alert=product == "deposit" and not usd and rng.random() < 0.3,
            annual_fee=self._card_fee(hh.tier) if product == "card" else 0,
        )
        hh.accounts.append(account)
        return account

    def _opening_balance(
        self, product: str, tier: str, currency: str, child: bool
    ) -> int:
        rng = self.rng
        scale = _TIER_SCALE[tier]
        if product == "loan":
            return -_cents(rng.lognormvariate(math.log(650_000 * min(scale, 4)), 0.45))
        if product == "card":
            return -_cents(rng.lognormvariate(math.log(2_500 * min(scale, 8)), 0.9))
        median = _MEDIAN_YUAN[product] * scale * (0.1 if child else 1)
        amount = rng.lognormvariate(math.log(median), 0.8)
        return _cents(amount / 7.1 if currency == "USD" else amount)

    def _monthly_drift(self, product: str, balance: int) -> int:
        rng = self.rng
        if product == "deposit":
            return round(balance * rng.uniform(-0.005, 0.02))
        if product == "insurance_policy":
            return round(balance * 0.01) + rng.choice((20_000, 50_000, 100_000))
        if product == "loan":
            return round(-balance / rng.randint(120, 360))
        if product == "card":
            return -balance
        return 0

    def _card_fee(self, tier: str) -> int:
        if tier == "top":
            return 360_000
        if tier == "rich":
            return self.rng.choice((0, 100_000))
        return self.rng.choice((0, 0, 10_000))

    def _plan_family_relationships(self, hh: _Household) -> None:
        rng = self.rng
        head = hh.members[0]
        for member in hh.members[1:]:
            chance = 0.3 if member.relation == "spouse" else 0.12
            if rng.random() < chance:
                hh.relationships.append(
                    _Relationship(head, member, member.relation, True)
                )
        children = [m for m in hh.members if m.role == "child"]
        if len(children) >= 2 and rng.random() < 0.1:
            hh.relationships.append(
                _Relationship(children[0], children[1], "sibling", True)
            )
        hh.head_at_onboarding = len(hh.members) > 1 and rng.random() < 0.25

    # -- life stories (planned up front, played month by month) ----------

    def _allocate_stories(self) -> None:
        n = len(self.households)
        self._add_lodgers(max(1, round(n * 0.03)))
        self._send_relatives_away(max(1, round(n * 0.04)))
        self._add_duplicates(max(3, round(n * 0.06)))
        self._plan_deaths(max(1, round(n * 0.03)))
        self._plan_moves(max(2, round(n * 0.05)), max(1, round(n * 0.02)))
        self._plan_head_changes(max(1, round(n * 0.05)))
        self._plan_closures()

    def _pick(self, candidates: list[_Household], count: int) -> list[_Household]:
        return self.rng.sample(candidates, min(count, len(candidates)))

    def _story_month(
        self, hh: _Household, earliest: int = 0, latest: int | None = None
    ) -> int | None:
        low = max(earliest, hh.join_month + 1)
        high = self.months - 1 if latest is None else min(latest, self.months - 1)
        return self.rng.randint(low, high) if low <= high else None

    def _add_story(
        self, hh: _Household, month: int | None, kind: str, subject: Any = None
    ) -> None:
        if month is not None and month < self.months:
            hh.stories.setdefault(month, []).append((kind, subject))

    def _adults(self, hh: _Household, roles: tuple[str, ...]) -> list[_Customer]:
        return [
            m
            for m in hh.members
            if m.role in roles and _age(m.birth_date, self.first_day) >= 18
        ]

    def _add_lodgers(self, count: int) -> None:
        """Lodgers and flat-sharers: same address, not the same household."""
        rng = self.rng
        candidates = [
            hh for hh in self.households if hh.join_month < 0 and len(hh.members) <= 4
        ]
        for i, hh in enumerate(self._pick(candidates, count)):
            spec = _MemberSpec(
                "lodger", "other", _gender(rng), _birth(rng, 1988, 2002), _surname(rng)
            )
            head = hh.members[0]
            lodger = self._new_customer(spec, hh.place, _variant_style(rng, head.style))
            hh.members.append(lodger)
            self._plan_accounts(hh, lodger)
            hh.relationships.append(_Relationship(head, lodger, "other", False))
            if i == 0 or rng.random() < 0.4:
                self._add_story(hh, self._story_month(hh), "lodger_leaves", lodger)

    def _send_relatives_away(self, count: int) -> None:
        """A grown-up child (or a spouse) living in another city, declared same household."""
        candidates = [
            hh for hh in self.households if self._adults(hh, ("child", "spouse"))
        ]
        for hh in self._pick(candidates, count):
            relatives = self._adults(hh, ("child",)) or self._adults(hh, ("spouse",))
            member = self.rng.choice(relatives)
            member.place = _random_place(
                self.rng, self._far_district(hh.place.district)
            )
            member.address = _render_address(member.place, member.style)
            member.away = True
            head = hh.members[0]
            hh.relationships = [r for r in hh.relationships if r.related is not member]
            hh.relationships.append(_Relationship(head, member, member.relation, True))

    def _far_district(self, district: _District) -> _District:
        return self.rng.choice([d for d in _DISTRICTS if d.city != district.city])

    def _near_district(self, district: _District) -> _District:
        same_city = [d for d in _DISTRICTS if d.city == district.city]
        return self.rng.choice(same_city)

    def _add_duplicates(self, count: int) -> None:
        """One person registered twice; two out of three get merged."""
        candidates = [
            hh for hh in self.households if self._adults(hh, ("head", "spouse"))
        ]
        chosen = self._pick(candidates, count)
        merged = math.ceil(len(chosen) * 2 / 3)
        for i, hh in enumerate(chosen):
            original = self.rng.choice(self._adults(hh, ("head", "spouse")))
            original.shown |= {"national_id"}  # so the platform can match the two
            historic = hh.join_month < 0 and (i % 2 == 0 or self.months < 3)
            dup = self._duplicate_of(original, historic)
            hh.members.append(dup)
            dup_month = (
                -1 if historic else self._story_month(hh, latest=self.months - 2)
            )
            if dup_month is None:
                hh.members.remove(dup)
                continue
            if historic and self.rng.random() < 0.5:
                self._new_account(hh, dup, self.rng.choice(("deposit", "card")))
            self._add_story(hh, None if historic else dup_month, "duplicate", dup)
            if i < merged:
                self._add_story(
                    hh, self._story_month(hh, earliest=dup_month + 1), "merge", dup
                )

    def _duplicate_of(self, original: _Customer, historic: bool) -> _Customer:
        rng = self.rng
        district = original.place.district
        place = (
            original.place
            if rng.random() < 0.5
            else _random_place(rng, self._near_district(district))
        )
        style = _variant_style(rng, original.style)
        same_city = [d.branch_code for d in _DISTRICTS if d.city == district.city]
        branch = rng.choice(same_city)
        name = _name_variant(rng, original.true_name, original.surname)
        return replace(
            original, customer_id=self._new_id(), name=name, true_name=name, place=place,
            style=style, address=_render_address(place, style), role="duplicate",
            branch_code=branch, officer=rng.choice(_BRANCH_OFFICERS[branch]),
            phone=original.phone if rng.random() < 0.5 else _mobile(rng),
            email=None, shown=original.shown | {"national_id"}, consents={},
            duplicate_of=original, historic=historic, registered_at=None,
        )  # fmt: skip

    def _plan_deaths(self, count: int) -> None:
        def eldest(hh: _Household) -> _Customer:
            people = [m for m in hh.members if m.role not in ("lodger", "duplicate")]
            return min(people, key=lambda m: m.birth_date)

        candidates = [
            hh for hh in self.households if eldest(hh).birth_date.year <= 1958
        ]
        candidates = candidates or [hh for hh in self.households if len(hh.members) > 1]
        for hh in self._pick(candidates, count):
            self._add_story(
                hh, self._story_month(hh, latest=self.months - 2), "death", eldest(hh)
            )

    def _plan_moves(self, households: int, members: int) -> None:
        for hh in self._pick(self.households, households):
            self._add_story(hh, self._story_month(hh), "move_household")
        candidates = [
            hh
            for hh in self.households
            if any(not m.away for m in self._adults(hh, ("child",)))
        ]
        for hh in self._pick(candidates, members):
            child = self.rng.choice(
                [m for m in self._adults(hh, ("child",)) if not m.away]
            )
            self._add_story(hh, self._story_month(hh), "move_member", child)

    def _plan_head_changes(self, count: int) -> None:
        candidates = [hh for hh in self.households if self._adults(hh, ("spouse",))]
        for hh in self._pick(candidates, count):
            spouse = self._adults(hh, ("spouse",))[0]
            self._add_story(hh, self._story_month(hh), "designate_head", spouse)

    def _plan_closures(self) -> None:
        accounts = [
            (hh, a)
            for hh in self.households
            for a in hh.accounts
            if a.product != "loan"
        ]
        count = max(2, round(len(accounts) * 0.015))
        for hh, account in self.rng.sample(accounts, min(count, len(accounts))):
            self._add_story(hh, self._story_month(hh), "close_account", account)

    def _plan_campaigns(self) -> list[_Campaign]:
        last = self.months - 1
        year = self._month_first(0).year
        specs = (
            (
                f"{year}春季理财节",
                "mail",
                "marketing",
                True,
                (1, 30),
                min(2, last),
                0.3,
            ),
            (
                "个人养老金账户开户邀请",
                "email",
                "marketing",
                False,
                (2, 30),
                min(4, last),
                0.3,
            ),
            (
                "账户服务协议变更通知",
                "mail",
                "service",
                True,
                (1, 90),
                min(7, last),
                0.25,
            ),
        )
        return [_Campaign(self._new_id(), *spec) for spec in specs]

    # -- onboarding ------------------------------------------------------

    def _schedule_onboarding(self, hh: _Household) -> None:
        if hh.join_month < 0:
            end = datetime.combine(
                self.first_day, datetime.min.time(), _CN_TZ
            ) - timedelta(days=1)
            room = max(1, (end.date() - self._earliest_onboarding(hh)).days)
            start = end - timedelta(
                days=self.rng.uniform(min(20, room), min(3650, room))
            )
        else:
            start = self._activity_time(hh.join_month, 6, 9)
            end = start + timedelta(days=10)
        steps = self._onboarding_steps(hh)
        offsets = list(itertools.accumulate(step.gap for step in steps))
        total = offsets[-1] if offsets else 0.0
        factor = min(1.0, (end - start).total_seconds() / total) if total > 0 else 1.0
        for step, offset in zip(steps, offsets, strict=True):
            at = _business_hours(start + timedelta(seconds=offset * factor))
            self._push(at, step.event_type, step.source, step.actor, step.payload)
            if isinstance(step.subject, _Customer):
                step.subject.registered_at = at
            elif isinstance(step.subject, _Account):
                step.subject.status = "open"
                step.subject.opened_month = at.month

    def _earliest_onboarding(self, hh: _Household) -> date:
        """Nobody is registered before birth, and adults only once they are 18."""
        earliest = date.min
        for member in hh.members:
            if member.role in ("child", "duplicate"):
                ready = member.birth_date + timedelta(days=60)
            else:
                ready = _shift_years(member.birth_date, 18)
            earliest = max(earliest, ready)
        return earliest

    def _onboarding_steps(self, hh: _Household) -> list[_Step]:
        steps: list[_Step] = []
        regulars = [m for m in hh.members if m.role != "duplicate"]
        for member in regulars:
            steps.append(self._registration_step(member, first=not steps))
            steps.extend(self._initial_consent_steps(member))
        steps.extend(
            self._account_step(a) for a in hh.accounts if a.owner.role != "duplicate"
        )
        steps.extend(self._relationship_step(r) for r in hh.relationships)
        if hh.head is not None and hh.head_at_onboarding:
            source, actor = self._branch_origin(hh.head)
            data = {"customer_id": hh.head.customer_id}
            steps.append(
                _Step(
                    self._minutes(2, 30), "HouseholdHeadDesignated", source, actor, data
                )
            )
        for dup in hh.members:
            if dup.role == "duplicate" and dup.historic:
                steps.append(
                    self._registration_step(dup, gap=self.rng.uniform(90, 900) * 86_400)
                )
                steps.extend(
                    self._account_step(a) for a in hh.accounts if a.owner is dup
                )
        return steps

    def _minutes(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * 60

    def _registration_step(
        self, c: _Customer, first: bool = False, gap: float | None = None
    ) -> _Step:
        if gap is None:
            later = self.rng.random() < 0.4
            gap = (
                0.0
                if first
                else self.rng.uniform(1, 600) * 86_400
                if later
                else self._minutes(3, 40)
            )
        source, actor = self._registration_origin(c)
        return _Step(
            gap, "CustomerRegistered", source, actor, partial(_registration_data, c), c
        )

    def _registration_origin(self, c: _Customer) -> tuple[str, str | None]:
        r = self.rng.random()
        if (
            c.role != "duplicate"
            and 18 <= _age(c.birth_date, self.first_day) < 50
            and r < 0.2
        ):
            return ("web", None) if r < 0.12 else ("mobile-app", None)
        return self._branch_origin(c)

    def _branch_origin(self, c: _Customer) -> tuple[str, str]:
        return f"branch:{c.branch_code}", c.officer

    def _initial_consent_steps(self, c: _Customer) -> list[_Step]:
        if _age(c.birth_date, self.first_day) < 18:
            return []
        steps = []
        source, actor = self._branch_origin(c)
        for channel, purpose, granted, chance in _INITIAL_CONSENTS:
            if self.rng.random() < chance and (channel != "email" or c.email):
                c.consents[(channel, purpose)] = granted
                data = {
                    "customer_id": c.customer_id,
                    "channel": channel,
                    "purpose": purpose,
                    "granted": granted,
                }
                steps.append(
                    _Step(self._minutes(1, 5), "ConsentChanged", source, actor, data)
                )
        return steps

    def _account_step(self, a: _Account) -> _Step:
        gap = (
            self._minutes(5, 40)
            if self.rng.random() < 0.6
            else self.rng.uniform(1, 400) * 86_400
        )
        source, actor = self._account_origin(a)
        return _Step(
            gap, "AccountOpened", source, actor, partial(_account_opened_data, a), a
        )

    def _account_origin(self, a: _Account) -> tuple[str, str | None]:
        if a.product in ("card", "fund") and self.rng.random() < 0.3:
            return "mobile-app", None
        return f"branch:{a.branch_code}", self.rng.choice(
            _BRANCH_OFFICERS[a.branch_code]
        )

    def _relationship_step(self, r: _Relationship) -> _Step:
        data = {
            "customer_id": r.customer.customer_id,
            "related_customer_id": r.related.customer_id,
            "relation": r.relation,
            "same_household": r.same_household,
        }
        source, actor = self._branch_origin(r.customer)
        return _Step(self._minutes(2, 30), "RelationshipDeclared", source, actor, data)

    # -- one month of life -----------------------------------------------

    def _plan_month(self, month: int) -> None:
        for campaign in self.campaigns:
            if campaign.month == month:
                self._launch_campaign(campaign, month)
        for hh in self.households:
            if hh.join_month == month:
                self._schedule_onboarding(hh)
            elif hh.join_month < month:
                self._live_month(hh, month)

    def _live_month(self, hh: _Household, month: int) -> None:
        activities = self._story_activities(hh, month)
        activities += self._routine_activities(hh, month)
        activities += self._campaign_activities(hh, month)
        activities.sort(key=lambda activity: (activity[0], activity[1]))
        for at, _, kind, subject in activities:
            _HANDLERS[kind](self, hh, at, subject)

    def _activity(
        self,
        month: int,
        kind: str,
        subject: Any,
        first_day: int = 6,
        last_day: int = 24,
    ) -> _Activity:
        self.seq += 1
        return (
            self._activity_time(month, first_day, last_day),
            self.seq,
            kind,
            subject,
        )

    def _story_activities(self, hh: _Household, month: int) -> list[_Activity]:
        return [
            self._activity(month, kind, subject)
            for kind, subject in hh.stories.pop(month, [])
        ]

    def _routine_activities(self, hh: _Household, month: int) -> list[_Activity]:
        rng = self.rng
        activities = []
        for member in hh.members:
            if member.role == "duplicate":
                if rng.random() < 0.05:
                    activities.append(self._activity(month, "contact", member))
                continue
            for kind, rate in _ROUTINE_RATES:
                if rng.random() < rate:
                    activities.append(self._activity(month, kind, member))
        return activities

    def _campaign_activities(self, hh: _Household, month: int) -> list[_Activity]:
        return [
            self._activity(month, "mailing", campaign, 8, 20)
            for campaign in self.campaigns
            if campaign.month == month and self.rng.random() < campaign.reach
        ]

    def _can_act(self, c: _Customer, at: datetime) -> bool:
        registered = c.registered_at is not None and c.registered_at < at
        return registered and c.alive and not c.merged_away

    def _is_adult(self, c: _Customer, at: datetime) -> bool:
        return _age(c.birth_date, at.date()) >= 18

    def _channel_origin(
        self, channel: str, c: _Customer, inbound: bool
    ) -> tuple[str, str | None]:
        if channel in ("branch", "visit"):
            return f"branch:{c.branch_code}", c.officer
        if channel in ("phone", "email"):
            return "callcentre", self.rng.choice(_CALLCENTRE_AGENTS)
        if channel == "letter":
            return ("mailroom", None) if inbound else ("printshop", None)
        if channel == "sms":
            return "sms-gateway", None
        if channel == "app":
            return "mobile-app", None
        return "web", None

    # -- routine activities ------------------------------------------------

    def _contact(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if c.merged_away or c.registered_at is None or c.registered_at >= at:
            return
        if not c.alive:
            channel, inbound, topic = "branch", True, "身故后续事宜办理"
        else:
            channel = self._contact_channel()
            inbound = self.rng.random() < _INBOUND_SHARE[channel]
            topic = self.rng.choice(
                _CONTACT_TOPICS["inbound" if inbound else "outbound"]
            )
        source, actor = self._channel_origin(channel, c, inbound)
        data: Data = {
            "contact_id": self._new_id(),
            "customer_id": c.customer_id,
            "channel": channel,
            "direction": "inbound" if inbound else "outbound",
            "topic": topic,
        }
        if actor is not None:
            data["officer"] = actor
        self._push(at, "ContactLogged", source, actor, data)

    def _contact_channel(self) -> str:
        if self.forced_channels:
            return self.forced_channels.popleft()
        return self.rng.choices(_CONTACT_CHANNELS, weights=_CONTACT_CHANNEL_WEIGHTS)[0]

    def _order(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at) or not self._is_adult(c, at):
            return
        rng = self.rng
        tier_index = ("mass", "rich", "top").index(hh.tier)
        weights = [spec[3][tier_index] for spec in _ORDER_PRODUCTS]
        product, low, high, _ = rng.choices(_ORDER_PRODUCTS, weights=weights)[0]
        channel = rng.choice(("web", "app", "branch", "phone"))
        source, actor = self._channel_origin(channel, c, True)
        order_id = self._new_id()
        data = {"order_id": order_id, "customer_id": c.customer_id, "product": product,
                "amount": _money(rng.randint(low, high) // 100 * 100), "channel": channel}  # fmt: skip
        self._push(at, "OrderPlaced", source, actor, data)
        outcome = (
            self.forced_orders.popleft()
            if self.forced_orders
            else (rng.choices(_ORDER_OUTCOMES, weights=_ORDER_OUTCOME_WEIGHTS)[0])
        )
        self._schedule_order(order_id, at, outcome)

    def _schedule_order(self, order_id: str, placed_at: datetime, outcome: str) -> None:
        rng = self.rng
        if outcome == "placed":
            return
        if outcome == "cancelled":
            data = {"order_id": order_id, "reason": rng.choice(_ORDER_CANCELLATIONS)}
            self._push(
                self._after(placed_at, 1, 30), "OrderCancelled", "web", None, data
            )
            return
        reviewed_at = self._after(placed_at, 2, 48)
        review: Data = {"order_id": order_id, "approved": outcome != "rejected",
                        "reviewer": rng.choice(_ORDER_REVIEWERS)}  # fmt: skip
        if outcome == "rejected":
            review["reason"] = rng.choice(_ORDER_REJECTIONS)
        self._push(
            reviewed_at, "OrderReviewed", "order-management", review["reviewer"], review
        )
        if outcome == "rejected":
            return
        if outcome == "cancelled_after_approval":
            data = {"order_id": order_id, "reason": rng.choice(_ORDER_CANCELLATIONS)}
            self._push(
                self._after(reviewed_at, 2, 24),
                "OrderCancelled",
                "callcentre",
                rng.choice(_CALLCENTRE_AGENTS),
                data,
            )
            return
        shipped_at = self._after(reviewed_at, 12, 72)
        tracking = (
            f"SF{rng.randrange(10**11, 10**12)}"
            if rng.random() < 0.7
            else f"JDVA{rng.randrange(10**10, 10**11)}"
        )
        self._push(
            shipped_at,
            "OrderShipped",
            "logistics",
            None,
            {"order_id": order_id, "tracking_ref": tracking},
        )
        if outcome == "delivered":
            self._push(
                self._after(shipped_at, 24, 96),
                "OrderDelivered",
                "logistics",
                None,
                {"order_id": order_id},
            )

    def _complaint(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at):
            return
        rng = self.rng
        category, description, resolution = rng.choice(_COMPLAINT_TOPICS)
        channel = rng.choice(("phone", "branch", "web", "letter", "email"))
        source, actor = self._channel_origin(channel, c, True)
        complaint_id = self._new_id()
        data = {"complaint_id": complaint_id, "customer_id": c.customer_id, "channel": channel,
                "category": category, "description": description}  # fmt: skip
        self._push(at, "ComplaintFiled", source, actor, data)
        outcome = (
            self.forced_complaints.popleft()
            if self.forced_complaints
            else (
                rng.choices(_COMPLAINT_OUTCOMES, weights=_COMPLAINT_OUTCOME_WEIGHTS)[0]
            )
        )
        self._schedule_complaint(complaint_id, at, outcome, resolution)

    def _schedule_complaint(
        self, complaint_id: str, filed_at: datetime, outcome: str, resolution: str
    ) -> None:
        rng = self.rng
        if outcome == "filed":
            return  # nobody picked it up: past the 48-hour SLA
        officer = rng.choice(_COMPLAINT_OFFICERS)
        at = self._after(filed_at, 1, 60)
        self._push(
            at,
            "ComplaintAssigned",
            "complaints-desk",
            officer,
            {"complaint_id": complaint_id, "officer": officer},
        )
        if outcome.startswith("escalated"):
            for level in range(1, rng.choice((2, 2, 3))):
                at = self._after(at, 24, 200)
                data = {
                    "complaint_id": complaint_id,
                    "level": level,
                    "reason": rng.choice(_ESCALATION_REASONS),
                }
                self._push(at, "ComplaintEscalated", "complaints-desk", officer, data)
        if outcome in ("assigned", "escalated"):
            return
        at = self._after(at, 24, 400)
        self._push(
            at,
            "ComplaintResolved",
            "complaints-desk",
            officer,
            {"complaint_id": complaint_id, "resolution": resolution},
        )
        if outcome.startswith("reopened"):
            at = self._after(at, 72, 500)
            reason = rng.choice(_REOPEN_REASONS)
            self._push(
                at,
                "ComplaintReopened",
                "callcentre",
                rng.choice(_CALLCENTRE_AGENTS),
                {"complaint_id": complaint_id, "reason": reason},
            )
        if outcome == "reopened_resolved":
            at = self._after(at, 48, 300)
            data = {"complaint_id": complaint_id, "resolution": f"复核后：{resolution}"}
            self._push(at, "ComplaintResolved", "complaints-desk", officer, data)

    def _consent(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at) or not self._is_adult(c, at):
            return
        rng = self.rng
        if c.consents.get(("mail", "marketing"), True) and rng.random() < 0.6:
            channel, purpose = "mail", "marketing"
        else:
            channel = rng.choice(("email", "sms", "phone", "mail"))
            purpose = rng.choice(("marketing", "service"))
        granted = not c.consents.get((channel, purpose), channel != "email")
        c.consents[(channel, purpose)] = granted
        source, actor = rng.choice(
            (
                ("web", None),
                self._branch_origin(c),
                ("callcentre", rng.choice(_CALLCENTRE_AGENTS)),
            )
        )
        data = {
            "customer_id": c.customer_id,
            "channel": channel,
            "purpose": purpose,
            "granted": granted,
        }
        self._push(at, "ConsentChanged", source, actor, data)

    def _open_account(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at) or not self._is_adult(c, at):
            return
        product = self.rng.choice(
            ("card", "fund", "insurance_policy", "deposit", "other")
        )
        account = self._new_account(hh, c, product)
        account.status, account.opened_month = "open", at.month
        source, actor = self._account_origin(account)
        self._push(at, "AccountOpened", source, actor, _account_opened_data(account))

    def _correction(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at):
            return
        rng = self.rng
        fields: Data
        if c.name != c.true_name:
            c.name = c.true_name
            fields = {"name": c.name}
        elif rng.random() < 0.45 and _age(c.birth_date, at.date()) >= 12:
            c.phone = _mobile(rng)
            fields = {"phone": c.phone}
        elif rng.random() < 0.5 and _age(c.birth_date, at.date()) >= 18:
            c.email = _email(rng, c.surname)
            fields = {"email": c.email}
        else:
            c.officer = rng.choice(_BRANCH_OFFICERS[c.branch_code])
            fields = {"handling_officer": c.officer}
        source, actor = self._branch_origin(c)
        self._push(
            at,
            "CustomerDetailsCorrected",
            source,
            actor,
            {"customer_id": c.customer_id, **fields},
        )

    # -- campaigns and mailings ------------------------------------------

    def _launch_campaign(self, campaign: _Campaign, month: int) -> None:
        at = self._at(month, 6, 9) + timedelta(minutes=self.rng.randint(0, 90))
        data = {
            "campaign_id": campaign.campaign_id,
            "name": campaign.name,
            "channel": campaign.channel,
            "purpose": campaign.purpose,
            "one_per_household": campaign.one_per_household,
            "frequency_cap": {"max": campaign.cap[0], "days": campaign.cap[1]},
        }
        self._push(
            at, "CampaignLaunched", "marketing", self.rng.choice(_MARKETERS), data
        )

    def _mailing(self, hh: _Household, at: datetime, campaign: _Campaign) -> None:
        source = {"mail": "printshop", "email": "email-gateway", "sms": "sms-gateway"}[
            campaign.channel
        ]
        for i, c in enumerate(self._recipients(hh, campaign, at)):
            sent_at = at + timedelta(minutes=i)
            mailing_id = self._new_id()
            data: Data = {
                "mailing_id": mailing_id,
                "campaign_id": campaign.campaign_id,
                "customer_id": c.customer_id,
            }
            if campaign.channel == "mail":
                data["address"] = dict(c.address)
            self._push(sent_at, "MailingSent", source, None, data)
            self._schedule_mailing_outcome(mailing_id, sent_at, campaign)

    def _recipients(
        self, hh: _Household, campaign: _Campaign, at: datetime
    ) -> list[_Customer]:
        eligible = [
            m for m in hh.members
            if m.role != "duplicate" and self._can_act(m, at) and self._is_adult(m, at)
            and self._reachable(m, campaign)
        ]  # fmt: skip
        if not campaign.one_per_household:
            return eligible
        family = [m for m in eligible if m.role != "lodger" and not m.away]
        first = [hh.head] if hh.head in family else family[:1]
        return first + [m for m in eligible if m.role == "lodger"]

    def _reachable(self, c: _Customer, campaign: _Campaign) -> bool:
        if campaign.channel == "email" and c.email is None:
            return False
        default = campaign.purpose == "service" or campaign.channel == "mail"
        return c.consents.get((campaign.channel, campaign.purpose), default)

    def _schedule_mailing_outcome(
        self, mailing_id: str, sent_at: datetime, campaign: _Campaign
    ) -> None:
        rng = self.rng
        if campaign.channel == "mail" and self.forced_mail_outcomes:
            outcome = self.forced_mail_outcomes.popleft()
        else:
            r = rng.random()
            outcome = (
                "returned"
                if campaign.channel == "mail" and r < 0.03
                else "responded"
                if r < 0.1
                else ""
            )
        if outcome == "returned":
            data = {"mailing_id": mailing_id, "reason": rng.choice(_RETURN_REASONS)}
            self._push(
                self._after(sent_at, 72, 300), "MailingReturned", "mailroom", None, data
            )
        elif outcome == "responded":
            source, actor = rng.choice(
                (("web", None), ("callcentre", rng.choice(_CALLCENTRE_AGENTS)))
            )
            data = {"mailing_id": mailing_id, "response": rng.choice(_RESPONSES)}
            self._push(
                self._after(sent_at, 24, 400), "MailingResponded", source, actor, data
            )

    # -- life stories ----------------------------------------------------

    def _duplicate_registered(
        self, hh: _Household, at: datetime, dup: _Customer
    ) -> None:
        if dup.registered_at is not None:
            return
        dup.registered_at = at
        source, actor = self._branch_origin(dup)
        self._push(at, "CustomerRegistered", source, actor, _registration_data(dup))

    def _merge(self, hh: _Household, at: datetime, dup: _Customer) -> None:
        survivor = dup.duplicate_of
        if (
            survivor is None
            or dup.merged_away
            or not self._can_act_or_deceased(dup, at)
        ):
            return
        data = {"survivor_id": survivor.customer_id, "duplicate_id": dup.customer_id}
        self._push(at, "CustomersMerged", "mdm", self.rng.choice(_DATA_STEWARDS), data)
        dup.merged_away = True

    def _can_act_or_deceased(self, c: _Customer, at: datetime) -> bool:
        return (
            c.registered_at is not None and c.registered_at < at and not c.merged_away
        )

    def _death(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at):
            return
        died_on = (at - timedelta(days=self.rng.randint(2, 12))).date()
        source, actor = self._branch_origin(c)
        self._push(
            at,
            "CustomerDeceased",
            source,
            actor,
            {"customer_id": c.customer_id, "date_of_death": died_on.isoformat()},
        )
        c.alive = False
        month = self._month_of(at)
        for account in hh.accounts:
            if account.owner is c and account.status == "open":
                self._add_story(
                    hh, month + self.rng.randint(1, 2), "close_account", account
                )
        if hh.head is c:
            successors = [
                m
                for m in self._adults(hh, ("spouse", "child"))
                if m.alive and not m.away
            ]
            if successors:
                self._add_story(hh, month + 1, "designate_head", successors[0])

    def _close_account(self, hh: _Household, at: datetime, account: _Account) -> None:
        if account.status != "open":
            return
        source, actor = (
            f"branch:{account.branch_code}",
            self.rng.choice(_BRANCH_OFFICERS[account.branch_code]),
        )
        if account.balance != 0:
            data = {
                "account_id": account.account_id,
                "balance": "0.00",
                "as_of": at.date().isoformat(),
            }
            self._push(at, "BalanceReported", account.system, None, data)
        account.balance = 0
        self._push(
            at + timedelta(minutes=10),
            "AccountClosed",
            source,
            actor,
            {"account_id": account.account_id},
        )
        account.status = "closed"

    def _move_household(self, hh: _Household, at: datetime, _: Any) -> None:
        hh.place = _random_place(self.rng, self._near_district(hh.place.district))
        source, actor = self.rng.choice(
            (("web", None), ("callcentre", self.rng.choice(_CALLCENTRE_AGENTS)))
        )
        moved_at = at
        for member in hh.members:
            if (
                member.role in ("duplicate", "lodger")
                or member.away
                or not self._can_act(member, at)
            ):
                continue
            member.place = hh.place
            member.address = _render_address(hh.place, member.style)
            self._push(
                moved_at,
                "CustomerMoved",
                source,
                actor,
                {"customer_id": member.customer_id, "address": dict(member.address)},
            )
            moved_at += timedelta(minutes=self.rng.randint(1, 20))
        for relationship in hh.relationships:
            if relationship.active and relationship.related.role == "lodger":
                self._end_relationship(relationship, moved_at)

    def _end_relationship(self, relationship: _Relationship, at: datetime) -> None:
        data = {
            "customer_id": relationship.customer.customer_id,
            "related_customer_id": relationship.related.customer_id,
        }
        self._push(
            at, "RelationshipEnded", *self._branch_origin(relationship.customer), data
        )
        relationship.active = False

    def _move_member(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at):
            return
        c.place = _random_place(self.rng, self._near_district(c.place.district))
        c.address = _render_address(c.place, c.style)
        self._push(
            at,
            "CustomerMoved",
            "web",
            None,
            {"customer_id": c.customer_id, "address": dict(c.address)},
        )

    def _lodger_leaves(self, hh: _Household, at: datetime, lodger: _Customer) -> None:
        if not self._can_act(lodger, at):
            return
        for relationship in hh.relationships:
            if (
                relationship.active
                and relationship.related is lodger
                and self._can_act_or_deceased(relationship.customer, at)
            ):
                self._end_relationship(relationship, at)
        lodger.place = _random_place(
            self.rng, self._near_district(lodger.place.district)
        )
        lodger.address = _render_address(lodger.place, lodger.style)
        data = {"customer_id": lodger.customer_id, "address": dict(lodger.address)}
        self._push(at + timedelta(minutes=5), "CustomerMoved", "mobile-app", None, data)

    def _designate_head(self, hh: _Household, at: datetime, c: _Customer) -> None:
        if not self._can_act(c, at) or hh.head is c:
            return
        hh.head = c
        self._push(
            at,
            "HouseholdHeadDesignated",
            *self._branch_origin(c),
            {"customer_id": c.customer_id},
        )

    # -- night batches ---------------------------------------------------

    def _balance_run(self, month: int) -> Iterator[Envelope]:
        as_of = self._month_last(month).isoformat()
        accounts = [
            a for hh in self.households for a in hh.accounts if a.status == "open"
        ]
        stamps = _night_stamps(self._at(month + 1, 2, 1), len(accounts), 7200)
        rng, id_rng = self.rng, self.id_rng
        for stamp, account in zip(stamps, accounts, strict=True):
            _advance_balance(rng, account)
            account.reported, account.reported_month = account.balance, month
            data = {
                "account_id": account.account_id,
                "balance": _money(account.balance),
                "as_of": as_of,
            }
            yield {
                "event_id": _uuid(id_rng),
                "type": "BalanceReported",
                "occurred_at": stamp,
                "source": account.system,
                "actor": None,
                "data": data,
            }

    def _statement_run(self, month: int) -> Iterator[Envelope]:
        first = self._month_first(month)
        period = f"{first.year:04d}-{first.month:02d}"
        due = [(hh, a) for hh in self.households for a in hh.accounts
               if a.status == "open" and a.reported_month == month]  # fmt: skip
        stamps = _night_stamps(self._at(month + 1, 3, 1), len(due), 7200)
        id_rng = self.id_rng
        for stamp, (hh, account) in zip(stamps, due, strict=True):
            closing = account.reported
            if not self.misprint_done and self._misprint_due(hh, month):
                closing, self.misprint_done = _misprinted(closing), True
            data = {"account_id": account.account_id, "period": period,
                    "closing_balance": _money(closing), "fees_total": _money(account.fees_period)}  # fmt: skip
            account.fees_period = 0
            yield {
                "event_id": _uuid(id_rng),
                "type": "StatementIssued",
                "occurred_at": stamp,
                "source": account.system,
                "actor": None,
                "data": data,
            }

    def _misprint_due(self, hh: _Household, month: int) -> bool:
        if month < self.misprint_month:
            return False
        return month > self.misprint_month or hh.index >= self.misprint_household

    def _fee_run(self, month: int) -> Iterator[Envelope]:
        calendar_month = self._month_first(month).month
        open_accounts = [
            a for hh in self.households for a in hh.accounts if a.status == "open"
        ]
        # at most two fees per account and month (see _fees_due)
        stamps = _night_stamps(self._at(month, 25, 1), 2 * len(open_accounts), 10_800)
        for account in open_accounts:
            for kind, cents in self._fees_due(account, calendar_month):
                account.balance -= cents
                account.fees_period += cents
                data = {
                    "account_id": account.account_id,
                    "amount": _money(cents),
                    "kind": kind,
                }
                yield self._envelope(
                    next(stamps), "FeeCharged", account.system, None, data
                )

    def _fees_due(
        self, account: _Account, calendar_month: int
    ) -> list[tuple[str, int]]:
        rng = self.rng
        fees: list[tuple[str, int]] = []
        if account.product == "deposit":
            if account.sms_alert and account.balance >= 200:
                fees.append(("sms_alert", 200))
            if rng.random() < 0.03 and account.balance >= 10_000:
                fees.append(("transfer", rng.choice(_TRANSFER_FEES)))
        elif account.product == "card":
            if account.annual_fee and account.opened_month == calendar_month:
                fees.append(("annual_fee", account.annual_fee))
            if rng.random() < 0.015:
                fees.append(("late_payment", rng.randrange(1_000, 30_000)))
        elif account.product == "loan" and rng.random() < 0.01:
            fees.append(("late_payment", rng.randrange(5_000, 80_000)))
        elif (
            account.product == "fund"
            and rng.random() < 0.04
            and account.balance > 100_000
        ):
            fees.append(("redemption", rng.randrange(500, 50_000)))
        return fees


_ActivityHandler = Callable[[_DemoWorld, _Household, datetime, Any], None]
_HANDLERS: Final[dict[str, _ActivityHandler]] = {
    "contact": _DemoWorld._contact,
    "order": _DemoWorld._order,
    "complaint": _DemoWorld._complaint,
    "consent": _DemoWorld._consent,
    "open_account": _DemoWorld._open_account,
    "correction": _DemoWorld._correction,
    "mailing": _DemoWorld._mailing,
    "duplicate": _DemoWorld._duplicate_registered,
    "merge": _DemoWorld._merge,
    "death": _DemoWorld._death,
    "close_account": _DemoWorld._close_account,
    "move_household": _DemoWorld._move_household,
    "move_member": _DemoWorld._move_member,
    "lodger_leaves": _DemoWorld._lodger_leaves,
    "designate_head": _DemoWorld._designate_head,
}


def generate_demo_events(
    households: int = 50,
    seed: int = 7,
    start: date = date(2025, 1, 1),
    months: int = 12,
) -> Iterator[dict[str, Any]]:
    """Yields the demo data set as event envelopes, ordered by ``occurred_at``.

    ``households`` families (each 1-5 people, plus the odd lodger or duplicate
    registration) live through ``months`` calendar months starting with the
    month of ``start``; they were onboarded before it (a few join during the
    period). Same arguments, same events. See the module docstring for what the
    data contains.
    """
    if households < 0:
        raise ValueError("households must not be negative")
    if months < 1:
        raise ValueError("months must be at least 1")
    return _DemoWorld(households, seed, start, months).events()
