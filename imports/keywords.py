"""Keyword rules that read arrests, crowd size, grievances and police responses from the free
text of other datasets (ACLED notes and tags, CCC claims, Mass Mobilization notes), in
English and Russian.

Whatever these rules fill in is listed in `Event.auto_coded`, so moderators can see which
values came from a machine reading of the text and correct them. The rules are documented
in the README ("Keyword rules"); a test covers each example given there.
"""

from __future__ import annotations

import re

_NUMBER = r"(\d{1,3}(?:[ ,]\d{3})+|\d+)"
_ABOUT_EN = r"(?:at least |about |around |approximately |over |more than |nearly |some |up to )?"
_ABOUT_RU = r"(?:не менее |более |около |порядка |свыше |примерно |почти |до )?"

# "police detained 50", "50 people were arrested", "задержаны 50 человек", "задержали 12".
_ARREST_PATTERNS = [
    re.compile(
        r"\b(?:detain(?:ed|ing)|arrest(?:ed|ing)|apprehend(?:ed)?)\s+" + _ABOUT_EN + _NUMBER,
        re.IGNORECASE,
    ),
    re.compile(
        _NUMBER
        + r"\s+(?:\w+\s+){0,2}?(?:were|was|have been|had been|being)\s+"
        + r"(?:\w+\s+)?(?:detained|arrested)",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:arrests?|detentions?)\s*(?:of|=|:)\s*" + _ABOUT_EN + _NUMBER, re.IGNORECASE),
    # "5 arrested.", "12 protesters detained" (not a year: "in 2019 arrested activists").
    re.compile(
        r"(?<![\d,])(?!(?:19|20)\d\d\b)"
        + _NUMBER
        + r"\s+(?:(?:people|persons|protesters|demonstrators|activists|participants|others)\s+)?"
        + r"(?:detained|arrested)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bзадерж\w*\s+" + _ABOUT_RU + _NUMBER, re.IGNORECASE),
    re.compile(
        _NUMBER + r"\s+(?:человек\w*\s+|активист\w*\s+|участник\w*\s+)?(?:был\w*\s+)?задерж",
        re.IGNORECASE,
    ),
]
_NO_ARRESTS = [
    re.compile(
        r"\bno (?:one|protesters?|people|participants?) (?:was|were) (?:detained|arrested)",
        re.IGNORECASE,
    ),
    re.compile(r"\bno (?:arrests|detentions) (?:were|was) (?:made|reported)", re.IGNORECASE),
    re.compile(r"\bникто не был? задержан|\bзадержаний не было|\bбез задержаний", re.IGNORECASE),
]

# Crowd-size words, low and high estimates. Order matters: longer phrases first.
_CROWD_WORDS: list[tuple[re.Pattern, tuple[int, int | None]]] = [
    (re.compile(r"\bseveral thousands?\b|\bнескольк\w* тысяч", re.IGNORECASE), (2000, 9999)),
    (re.compile(r"\bthousands\b|\bтысячи\b", re.IGNORECASE), (1000, 9999)),
    (re.compile(r"\bseveral hundreds?\b|\bнескольк\w* сот(?:ен|ни)", re.IGNORECASE), (200, 999)),
    (re.compile(r"\bhundreds\b|\bсотни\b", re.IGNORECASE), (100, 999)),
    (re.compile(r"\bseveral dozens?\b|\bнескольк\w* десятк\w*", re.IGNORECASE), (24, 99)),
    (re.compile(r"\bdozens\b|\bдесятки\b", re.IGNORECASE), (24, 99)),
    (re.compile(r"\bdozen\b|\bдюжин\w*", re.IGNORECASE), (12, 12)),
]
# Words for how many were detained: the crowd words above, each as its low estimate
# ("dozens detained", "police arrested hundreds", "задержаны десятки человек": 24, 100, 24).
_ARREST_WORD_PATTERNS = [
    (
        re.compile(
            rf"\b(?:{words})\s+(?:of\s+)?(?:\w+\s+){{0,2}}?"
            r"(?:(?:were|was|have been|had been|being)\s+)?(?:detained|arrested)\b"
            rf"|\b(?:detain(?:ed|ing)|arrest(?:ed|ing)|apprehend(?:ed)?)\s+(?:{words})\b"
            rf"|(?<!\w)(?:{words})\s+(?:\w+\s+)?(?:был\w*\s+)?задерж"
            rf"|\bзадерж\w*\s+(?:{words})(?!\w)",
            re.IGNORECASE,
        ),
        low,
    )
    for words, (low, _high) in ((pattern.pattern, sizes) for pattern, sizes in _CROWD_WORDS)
]

_CROWD_RANGE = re.compile(_NUMBER + r"\s*(?:-|–|to|до)\s*" + _NUMBER, re.IGNORECASE)
_CROWD_AT_LEAST = re.compile(
    r"(?:at least|more than|over|не менее|более|свыше)\s+" + _NUMBER, re.IGNORECASE
)
_CROWD_NUMBER = re.compile(r"^\D{0,20}?" + _NUMBER + r"\b")
# In running text, a number only counts as crowd size in these phrasings.
_CROWD_IN_TEXT = [
    re.compile(r"\bcrowd size\s*=\s*([^;,\]]+)", re.IGNORECASE),
    re.compile(
        r"\bcrowd of\s+("
        + _ABOUT_EN
        + _NUMBER
        + r"|[a-z ]+?)(?=\s+(?:people|protesters|gathered|rallied)|[.,;]|$)",
        re.IGNORECASE,
    ),
    re.compile(
        "("
        + _ABOUT_EN
        + _NUMBER
        + r")\s+(?:people|protesters|demonstrators|participants|residents)"
        + r"\s+(?:gathered|rallied|took part|marched|protested|attended)",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:собрал\w*|вышл\w*|приняли участие|участвовал\w*)\s+("
        + _ABOUT_RU
        + _NUMBER
        + r")\s+человек",
        re.IGNORECASE,
    ),
    re.compile(
        "("
        + _ABOUT_RU
        + _NUMBER
        + r")\s+человек\s+(?:собрал\w*|вышл\w*|приняли участие|участвовал\w*)",
        re.IGNORECASE,
    ),
]

GRIEVANCE_RULES: dict[str, re.Pattern] = {
    slug: re.compile("|".join(words), re.IGNORECASE)
    for slug, words in {
        "political": [
            r"\belection",
            r"\bvot(?:e|ing)\b",
            r"\bballot",
            r"\bparliament",
            r"\bpresiden",
            r"\bopposition",
            r"\bpolitical reform",
            r"\bвыбор",
            r"\bголосован",
            r"\bпарламент",
            r"\bпрезидент",
            r"\bоппозиц",
        ],
        "human_rights": [
            r"\bpolitical prisoner",
            r"\brelease of",
            r"\brepression",
            r"\bfreedom",
            r"\bhuman rights",
            r"\bin custody",
            r"\btortur",
            r"\bполитзаключ",
            r"\bосвобожден",
            r"\bрепресс",
            r"\bсвобод",
            r"\bправ(?:а|ах) человека",
            r"\bпыт(?:к|ал)",
        ],
        "welfare": [
            r"\bpension",
            r"\bsocial (?:benefit|assistance|payment)",
            r"\ballowance",
            r"\bprices?\b",
            r"\butilit(?:y|ies)",
            r"\btariff",
            r"\bbenefits\b",
            r"\bпенси",
            r"\bпособи",
            r"\bцен(?:ы|а|ам)\b",
            r"\bтариф",
            r"\bкоммунальн",
            r"\bсоциальн\w+ выплат",
        ],
        "labor": [
            r"\bwages?\b",
            r"\bsalar(?:y|ies)",
            r"\bstrike",
            r"\bunpaid",
            r"\bworkers\b",
            r"\bunemploy",
            r"\bзарплат",
            r"\bзаработн",
            r"\bзабастов",
            r"\bрабочи[еx]",
            r"\bбезработ",
        ],
        "land": [r"\bland\b", r"\bfarmland", r"\bpasture", r"\bземл", r"\bпастбищ"],
        "property": [
            r"\bhousing",
            r"\bmortgage",
            r"\bloans?\b",
            r"\bevict",
            r"\bapartment",
            r"\bdemolition",
            r"\bжиль",
            r"\bипотек",
            r"\bкредит",
            r"\bвыселен",
            r"\bквартир",
            r"\bснос",
        ],
        "justice": [
            r"\bcourts?\b",
            r"\bcorrupt",
            r"\bpolice (?:abuse|violence|brutality)",
            r"\bjudge",
            r"\bprosecutor",
            r"\bсуд\w*\b",
            r"\bкоррупц",
            r"\bпрокурор",
            r"\bпроизвол",
        ],
        "china": [r"\bchin(?:a|ese)", r"\bxinjiang", r"\bкитай", r"\bкитайск", r"\bсиньцзян"],
        "covid": [
            r"\bcovid",
            r"\bcoronavirus",
            r"\bquarantine",
            r"\blockdown",
            r"\bpandemic",
            r"\bкоронавирус",
            r"\bкарантин",
            r"\bпандеми",
        ],
        "environment": [
            r"\bpollution",
            r"\becolog",
            r"\benvironment",
            r"\bemissions?\b",
            r"\bwaste\b",
            r"\bзагрязн",
            r"\bэколог",
            r"\bвыброс",
        ],
    }.items()
}

_FORCE = re.compile(
    r"\b(?:tear gas|pepper spray|rubber bullets|beat(?:en|ing)|batons?)\b|"
    r"\b(?:слезоточив|перцов|избил|избиен|дубинк)",
    re.IGNORECASE,
)
_KETTLED = re.compile(r"\bkettl|\bencircl|\bоцеплен|\bкеттлинг|\bокружил", re.IGNORECASE)
_DISPERSED = re.compile(r"\bdispers|\bразогнал|\bразгон", re.IGNORECASE)


# A number in running text above the count columns' range (PostgreSQL integer) is no
# count of people: it is read as "not said", never stored or allowed to fail the row.
_MAX_COUNT = 2_147_483_647


def _to_int(text: str) -> int | None:
    digits = re.sub(r"[ ,]", "", text)
    if len(digits) > 10:  # also spares int() a 5,000-digit string, which it refuses
        return None
    number = int(digits)
    return number if number <= _MAX_COUNT else None


# Every arrest rule above names the arrest (or detention) itself: a text without one of
# these stems is ruled out by one cheap search instead of a dozen patterns.
_ARREST_STEM = re.compile(r"arrest|detain|detention|apprehend|задерж", re.IGNORECASE)


def arrests_from_text(text: str) -> int | None:
    """People detained according to `text`, or None when the text does not say."""
    if not text or not _ARREST_STEM.search(text):
        return None
    found = [_to_int(m.group(1)) for pattern in _ARREST_PATTERNS for m in pattern.finditer(text)]
    found = [number for number in found if number is not None]
    found += [low for pattern, low in _ARREST_WORD_PATTERNS if pattern.search(text)]
    if found:
        return max(found)
    if any(pattern.search(text) for pattern in _NO_ARRESTS):
        return 0
    return None


def crowd_size_from_phrase(phrase: str) -> tuple[int | None, int | None]:
    """Low and high estimates from a short crowd-size phrase ("several hundred", "50-100")."""
    phrase = (phrase or "").strip()
    if not phrase or phrase.lower() in {"no report", "unknown", "unspecified", "."}:
        return None, None
    if m := _CROWD_RANGE.search(phrase):
        low, high = _to_int(m.group(1)), _to_int(m.group(2))
        if low is None or high is None:
            return None, None
        return (low, high) if low <= high else (high, low)
    if m := _CROWD_AT_LEAST.search(phrase):
        return _to_int(m.group(1)), None
    for pattern, (low, high) in _CROWD_WORDS:
        if pattern.search(phrase):
            return low, high
    if m := _CROWD_NUMBER.search(phrase):
        number = _to_int(m.group(1))
        return number, number
    return None, None


_DIGIT = re.compile(r"\d")


def crowd_size_from_text(text: str) -> tuple[int | None, int | None]:
    """Crowd size from running text: ACLED's "crowd size=..." tag or explicit phrasings."""
    # Every phrasing needs "crowd" or a number: most notes are ruled out by one cheap test.
    if not text or ("crowd" not in text.lower() and not _DIGIT.search(text)):
        return None, None
    for pattern in _CROWD_IN_TEXT:
        if m := pattern.search(text):
            low, high = crowd_size_from_phrase(m.group(1))
            if low is not None or high is not None:
                return low, high
    return None, None


# All rules in one pattern, one named group per grievance: one pass over the text.
_ANY_GRIEVANCE = re.compile(
    "|".join(f"(?P<{slug}>{pattern.pattern})" for slug, pattern in GRIEVANCE_RULES.items()),
    re.IGNORECASE,
)


def grievances_from_text(text: str) -> list[str]:
    if not text:
        return []
    found = {m.lastgroup for m in _ANY_GRIEVANCE.finditer(text)}
    return [slug for slug in GRIEVANCE_RULES if slug in found]


def police_responses_from_text(text: str, *, arrests: int | None) -> list[str]:
    if not text:
        return []
    found = []
    if _DISPERSED.search(text):
        found.append("dispersed")
    if _KETTLED.search(text):
        found.append("kettled")
    if arrests:
        found.append("detained")
    if _FORCE.search(text):
        found.append("force")
    return found
