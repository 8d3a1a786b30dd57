"""The project's fixed vocabularies and the crosswalks to other datasets, in one place.

Slugs are stable identifiers: they are stored in the database, used in API filters and
written to exports, so a slug is never renamed. Labels can change freely.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import get_language


@dataclass(frozen=True)
class Term:
    slug: str
    en: str
    ru: str
    kk: str
    description: str = ""

    def label(self, language: str | None = None) -> str:
        """The label in `language` (or the active one), falling back to English."""
        code = (language or get_language() or "en")[:2].lower()
        return getattr(self, code, None) or self.en


GRIEVANCES: tuple[Term, ...] = (
    Term(
        "political",
        "Political",
        "Политика",
        "Саясат",
        "Elections, political reform, transfer of power.",
    ),
    Term(
        "human_rights",
        "Human rights",
        "Права человека",
        "Адам құқықтары",
        "Political prisoners, repression, deaths in custody.",
    ),
    Term(
        "welfare",
        "Welfare",
        "Социальное обеспечение",
        "Әлеуметтік қамсыздандыру",
        "Social benefits, pensions, family allowances, prices, utilities.",
    ),
    Term("labor", "Labour", "Трудовые права", "Еңбек құқықтары", "Wages, jobs, strikes."),
    Term("land", "Land", "Земля", "Жер", "Land reform, sale or lease of land."),
    Term(
        "property",
        "Property",
        "Имущество",
        "Мүлік",
        "Housing, loans and mortgages, evictions.",
    ),
    Term(
        "justice",
        "Justice",
        "Правосудие",
        "Әділет",
        "Courts, police abuse, corruption.",
    ),
    Term("china", "China", "Китай", "Қытай", "Chinese influence, Xinjiang, Chinese investment."),
    Term(
        "covid",
        "COVID-19 measures",
        "Меры против COVID-19",
        "COVID-19 шаралары",
        "Lockdowns, quarantine rules and their economic effects.",
    ),
    Term("environment", "Environment", "Экология", "Экология", "Pollution, ecology, water."),
    Term("other", "Other", "Другое", "Басқа", "Anything not covered above."),
)

# Ordered from the mildest to the most severe response: the order is meaningful.
POLICE_RESPONSES: tuple[Term, ...] = (
    Term("none", "No intervention", "Без вмешательства", "Араласусыз", "Police absent or passive."),
    Term(
        "monitored",
        "Monitored",
        "Наблюдение",
        "Бақылау",
        "Police present and watching, no action.",
    ),
    Term(
        "blocked",
        "Blocked",
        "Блокирование",
        "Бөгеу",
        "Access to the site or march route blocked.",
    ),
    Term("dispersed", "Dispersed", "Разгон", "Тарату", "Crowd dispersed."),
    Term(
        "kettled",
        "Kettled",
        "Оцепление (кеттлинг)",
        "Қоршау (кеттлинг)",
        "Protesters encircled and held in place.",
    ),
    Term("detained", "Detained", "Задержания", "Ұстау", "People detained or arrested."),
    Term(
        "force",
        "Use of force",
        "Применение силы",
        "Күш қолдану",
        "Beatings, chemical agents, rubber bullets.",
    ),
    Term("lethal", "Lethal force", "Летальная сила", "Өлімге әкелетін күш", "Live fire, deaths."),
)

GRIEVANCE_SLUGS: tuple[str, ...] = tuple(t.slug for t in GRIEVANCES)
POLICE_RESPONSE_SLUGS: tuple[str, ...] = tuple(t.slug for t in POLICE_RESPONSES)

# A response counts as "intervention" when police did more than watch.
INTERVENTION_RESPONSES: frozenset[str] = frozenset(
    {"blocked", "dispersed", "kettled", "detained", "force", "lethal"}
)
# "Events with force" in the trends: physical force, as the Crowd Counting Consortium and
# ACLED's "Excessive force against protesters" count it. Detention alone is not force.
FORCE_RESPONSES: frozenset[str] = frozenset({"force", "lethal"})


def severity(slug: str) -> int:
    return POLICE_RESPONSE_SLUGS.index(slug)


def term(slug: str) -> Term:
    for t in GRIEVANCES + POLICE_RESPONSES:
        if t.slug == slug:
            return t
    raise KeyError(slug)


# --- Crosswalks --------------------------------------------------------------------------
# Each maps a value of a foreign dataset to our police-response slugs (a tuple: one foreign
# value can mean several of ours). Keys are lower-cased.

# ACLED sub_event_type (event_type "Protests" and "Riots").
ACLED_SUB_EVENT_TYPE: dict[str, tuple[str, ...]] = {
    "peaceful protest": (),
    "protest with intervention": ("dispersed",),
    "excessive force against protesters": ("force",),
    "violent demonstration": (),
    "mob violence": (),
}

# Mass Mobilization stateresponse1..7 (its spelling "accomodation" kept on purpose).
MM_STATE_RESPONSE: dict[str, tuple[str, ...]] = {
    "accomodation": ("none",),
    "accommodation": ("none",),
    "ignore": ("none",),
    "crowd dispersal": ("dispersed",),
    "arrests": ("detained",),
    "beatings": ("force",),
    "shootings": ("force",),
    "killings": ("lethal",),
    ".": (),
    "": (),
}

# Mass Mobilization protesterdemand1..4 to our grievances.
MM_PROTESTER_DEMAND: dict[str, tuple[str, ...]] = {
    "labor wage dispute": ("labor",),
    "land farm issue": ("land",),
    "police brutality": ("justice",),
    "political behavior, process": ("political",),
    "price increases, tax policy": ("welfare",),
    "removal of politician": ("political",),
    "social restrictions": ("human_rights",),
    ".": (),
    "": (),
}

# Crowd Counting Consortium police_measures (free text, ';'-separated) and chemical_agents.
CCC_POLICE_MEASURES: dict[str, tuple[str, ...]] = {
    "arrests": ("detained",),
    "detentions": ("detained",),
    "kettling": ("kettled",),
    "dispersal": ("dispersed",),
    "dispersed": ("dispersed",),
    "barricades": ("blocked",),
    "blocked": ("blocked",),
    "pepper spray": ("force",),
    "tear gas": ("force",),
    "rubber bullets": ("force",),
    "batons": ("force",),
    "beatings": ("force",),
    "live ammunition": ("lethal",),
    "monitoring": ("monitored",),
}
# CCC chemical_agents = 1 means tear gas or pepper spray was used.
CCC_CHEMICAL_AGENTS_RESPONSE: tuple[str, ...] = ("force",)


def acled_sub_event_type_for(police_responses: list[str] | tuple[str, ...]) -> str:
    """The ACLED sub_event_type that best describes a set of our police responses."""
    if FORCE_RESPONSES & set(police_responses):
        return "Excessive force against protesters"
    if INTERVENTION_RESPONSES & set(police_responses):
        return "Protest with intervention"
    return "Peaceful protest"


def labelled(terms: tuple[Term, ...], language: str | None = None) -> list[dict[str, str]]:
    """Terms as plain dicts with every label and the one for `language`."""
    return [
        {
            "slug": t.slug,
            "label": t.label(language),
            "en": t.en,
            "ru": t.ru,
            "kk": t.kk,
            "description": t.description,
        }
        for t in terms
    ]
