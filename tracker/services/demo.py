"""Demo data: the real events described in the two seed articles, plus generated events so
that Kazakhstan's totals reproduce the Central Asia Protest Tracker figures they cite.

Everything here is deterministic (a fixed random seed) and idempotent: each demo event has
an external id in the "demo" scheme and is created only once.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.db import transaction

from tracker import taxonomy
from tracker.models import City, Event, ExternalId
from tracker.selectors import city_lookup
from tracker.services.events import event_create
from tracker.services.gazetteer import gazetteer_load

# --- Published figures (Kazakhstan), from the January 2021 article --------------------------
EVENTS_PER_YEAR = {2015: 71, 2016: 52, 2017: 36, 2018: 32, 2019: 235, 2020: 254}
# Share of events (in whole per cent) with the grievance, by year.
GRIEVANCE_SHARES = {
    2019: {"human_rights": 49, "welfare": 21},
    2020: {"human_rights": 30, "welfare": 38},
}
# Oyan, Qazaqstan! rallies per year, 20 to 50 people each (the group began on 5 June 2019).
OYAN_RALLIES = {2019: 18, 2020: 7}

ARTICLE_2021 = {
    "title": (
        "Kazakhstan's January 2021 parliamentary elections and the growth of protest "
        "since 2019 (analysis citing the Central Asia Protest Tracker)"
    ),
    "language": "en",
    "published_on": None,
}
ARTICLE_2019 = {
    "title": "Opinion: what Kazakhstan's 9 June 2019 presidential election left behind",
    "language": "en",
    "published_on": None,
}
CAPT_SOURCE = {
    "url": "https://oxussociety.org/mapping-patterns-of-dissent-in-eurasia-introducing-the-central-asia-protest-tracker/",
    "publisher": "Oxus Society for Central Asian Affairs",
    "title": "Mapping Patterns of Dissent in Eurasia: Introducing the Central Asia Protest Tracker",
    "language": "en",
}
CABAR_COUNTS_SOURCE = {
    "url": "https://cabar.asia/ru/protestnaya-aktivnost-v-kazakhstane",
    "publisher": "Cabar.asia",
    "title": "Protestnaya aktivnost' v Kazakhstane",
    "published_on": dt.date(2020, 9, 20),
    "language": "ru",
}

RADIO_AZATTYK_KETTLING = {
    "url": "https://rus.azattyq.org/a/kazakhstan-kettling-illegality/31049871.html",
    "publisher": "Radio Azattyk",
    "title": "'Eto pytki'. Politseiskaia taktika 'kettling'",
    "published_on": dt.date(2021, 1, 18),
    "language": "ru",
}

OYAN = "Oyan, Qazaqstan!"
DCK = "Democratic Choice of Kazakhstan"
DPK = "Democratic Party of Kazakhstan"


@dataclass
class DemoEvent:
    key: str
    title: str
    description: str
    date: dt.date
    grievances: list[str]
    police_responses: list[str]
    sources: list[dict]
    city: str | None = None
    end_date: dt.date | None = None
    location_detail: str = ""
    point: tuple[float, float] | None = None  # lon, lat of an exact place
    arrests: int | None = None
    injuries: int | None = None
    participants: tuple[int, int] | None = None
    organizers: list[str] = field(default_factory=list)
    is_generated: bool = False


REAL_EVENTS: tuple[DemoEvent, ...] = (
    DemoEvent(
        key="real-2019-06-09",
        title="Protests against the presidential election in Almaty and Nur-Sultan",
        description=(
            "Street protests on presidential election day, answering a call of the banned "
            "movement Democratic Choice of Kazakhstan. The deputy interior minister, Marat "
            "Kozhayev, put the number detained in the two cities at nearly 500. Recorded at "
            "country level because the figure is not broken down by city."
        ),
        date=dt.date(2019, 6, 9),
        location_detail="Almaty and Nur-Sultan",
        grievances=["political"],
        police_responses=["detained"],
        arrests=500,
        organizers=[DCK],
        sources=[ARTICLE_2019],
    ),
    DemoEvent(
        key="real-2020-02-25",
        title="Protests after the death in police custody of activist Dulat Agadil",
        description=(
            "Civic activist Dulat Agadil died in police detention in Nur-Sultan on 25 "
            "February 2020; his death was followed by protests over political prisoners."
        ),
        date=dt.date(2020, 2, 25),
        end_date=dt.date(2020, 2, 29),
        city="Nur-Sultan",
        grievances=["human_rights", "justice"],
        police_responses=[],
        sources=[
            ARTICLE_2021,
            {
                "url": "https://eurasianet.org/kazakhstan-activist-dies-in-detention-piling-pressure-on-the-authorities",
                "publisher": "EurasiaNet",
                "title": "Kazakhstan: Activist Dies in Detention, Piling Pressure on the Authorities",  # noqa: E501
                "published_on": dt.date(2020, 2, 26),
                "language": "en",
            },
        ],
    ),
    DemoEvent(
        key="real-2020-06-06",
        title="Peaceful protests in several cities met with kettling for the first time",
        description=(
            "Protests organised jointly by the banned Democratic Choice of Kazakhstan and the "
            "Democratic Party of Kazakhstan, demanding a credit amnesty, the release of "
            "political prisoners and a ban on selling land to foreigners. Police first used "
            "kettling here. Recorded at country level: the cities are not listed."
        ),
        date=dt.date(2020, 6, 6),
        location_detail="several cities",
        grievances=["human_rights", "land", "property"],
        police_responses=["kettled"],
        organizers=[DCK, DPK],
        sources=[ARTICLE_2021, RADIO_AZATTYK_KETTLING],
    ),
    DemoEvent(
        key="real-2020-12-16",
        title="Peaceful protests on Independence Day met with kettling",
        description=(
            "The second use of kettling by Kazakh police, during peaceful protests on 16 "
            "December. Coded as political by the tracker; recorded at country level."
        ),
        date=dt.date(2020, 12, 16),
        location_detail="several cities",
        grievances=["political"],
        police_responses=["kettled"],
        sources=[ARTICLE_2021, RADIO_AZATTYK_KETTLING],
    ),
    DemoEvent(
        key="real-2021-01-10-almaty",
        title="Election-day rally on Republic Square kettled for nearly nine hours",
        description=(
            "Oyan, Qazaqstan! and the unregistered Democratic Party of Kazakhstan rallied on "
            "Republic Square on parliamentary election day. Police held the protesters in a "
            "ring for nearly nine hours in freezing temperatures; five were taken to hospital "
            "(two from Oyan, Qazaqstan!, three from the Democratic Party)."
        ),
        date=dt.date(2021, 1, 10),
        city="Almaty",
        location_detail="Republic Square",
        point=(76.9455, 43.2380),
        grievances=["political"],
        police_responses=["kettled"],
        injuries=5,
        organizers=[OYAN, DPK],
        sources=[ARTICLE_2021, RADIO_AZATTYK_KETTLING],
    ),
    DemoEvent(
        key="real-2021-01-10-detentions",
        title="More than 360 protesters detained in several cities on election day",
        description=(
            "Human rights activists reported more than 360 protesters detained across a "
            "number of cities on the day of the parliamentary election (360 recorded as the "
            "lower bound). Recorded at country level: no per-city breakdown."
        ),
        date=dt.date(2021, 1, 10),
        location_detail="several cities",
        grievances=["political"],
        police_responses=["detained"],
        arrests=360,
        sources=[
            ARTICLE_2021,
            {
                "url": "https://www.chathamhouse.org/2021/01/elections-kazakhstan-yield-results-predicted",
                "publisher": "Chatham House",
                "title": "Elections in Kazakhstan Yield Results as Predicted",
                "published_on": dt.date(2021, 1, 20),
                "language": "en",
            },
        ],
    ),
)

# Where generated events happen: the two largest cities first, then the others the article
# names, then the rest of the country's regional centres (weights are relative).
CITY_WEIGHTS = {
    "Almaty": 30,
    "Nur-Sultan": 20,
    "Aktau": 6,
    "Shymkent": 6,
    "Karaganda": 5,
    "Pavlodar": 4,
    "Zhanaozen": 5,
    "Kyzylorda": 4,
    "Aktobe": 4,
    "Atyrau": 3,
    "Uralsk": 3,
    "Semey": 2,
    "Oskemen": 2,
    "Taraz": 2,
    "Kostanay": 2,
    "Petropavl": 1,
    "Taldykorgan": 1,
}
# Grievances for the rest of each year. Where a year has published shares, the grievances
# with a share are left out here so that their counts stay exact.
OTHER_GRIEVANCES = {
    "default": [
        "political",
        "human_rights",
        "welfare",
        "welfare",
        "justice",
        "property",
        "land",
        "labor",
        "china",
        "environment",
    ],
    2019: ["political", "justice", "property", "land", "labor", "china", "environment"],
    2020: ["political", "justice", "property", "land", "labor", "china", "covid"],
}
# Police responses, drawn so that well over half of all events see intervention.
RESPONSE_MIX = [
    (["none"], 14),
    (["monitored"], 26),
    (["blocked"], 6),
    (["dispersed"], 14),
    (["detained"], 30),
    (["dispersed", "detained"], 8),
    (["detained", "force"], 6),
    (["force"], 2),
]


def _generated_grievances(year: int, count: int, rng: random.Random, real: list[DemoEvent]):
    """Exactly the right number of human-rights and welfare events, shuffled."""
    total = EVENTS_PER_YEAR[year]
    bag: list[list[str]] = []
    for slug, share in GRIEVANCE_SHARES.get(year, {}).items():
        wanted = round(total * share / 100)
        # round() can land one off the published whole per cent: step until it matches
        while round(100 * wanted / total) != share:
            wanted += 1 if 100 * wanted / total < share else -1
        have = sum(slug in e.grievances for e in real)
        bag += [[slug]] * (wanted - have)
    others = OTHER_GRIEVANCES.get(year, OTHER_GRIEVANCES["default"])
    if year == 2016:  # the spring 2016 rallies against the land reform
        bag += [["land"]] * 14
    while len(bag) < count:
        bag.append([rng.choice(others)])
    if year == 2020:  # much of 2020's welfare protest was about COVID-19 measures
        for grievances in bag:
            if grievances == ["welfare"] and rng.random() < 0.4:
                grievances.append("covid")
    rng.shuffle(bag)
    return bag[:count]


def _random_date(year: int, rng: random.Random, after: dt.date | None = None) -> dt.date:
    start = max(dt.date(year, 1, 1), after or dt.date(year, 1, 1))
    end = dt.date(year, 12, 31)
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def generated_events(year: int) -> list[DemoEvent]:
    rng = random.Random(f"demo-{year}")  # noqa: S311 - demo data, not secrets
    real = [e for e in REAL_EVENTS if e.date.year == year]
    count = EVENTS_PER_YEAR[year] - len(real)
    grievance_bag = _generated_grievances(year, count, rng, real)
    cities, weights = zip(*CITY_WEIGHTS.items(), strict=True)
    responses, response_weights = zip(*RESPONSE_MIX, strict=True)
    source = CAPT_SOURCE if year >= 2019 else CABAR_COUNTS_SOURCE
    oyan_left = OYAN_RALLIES.get(year, 0)
    events = []
    for index, grievances in enumerate(grievance_bag, start=1):
        oyan = oyan_left > 0 and ("political" in grievances or "human_rights" in grievances)
        oyan_left -= oyan
        city = rng.choices(cities, weights)[0] if not oyan else rng.choice(["Almaty", "Nur-Sultan"])
        police = list(rng.choices(responses, response_weights)[0])
        if oyan:
            low, high = 20, 50
        else:
            low = rng.choice([5, 10, 20, 30, 50, 100, 200, 300, 500])
            high = low * rng.choice([1, 2, 3])
        arrests = None
        if "detained" in police:
            arrests = rng.randint(1, max(2, min(high // 5, 60)))
        elif police != ["none"] and rng.random() < 0.5:
            arrests = 0
        label = taxonomy.term(grievances[0]).en
        events.append(
            DemoEvent(
                key=f"gen-{year}-{index:03d}",
                title=f"{label} protest in {city}" + (" (Oyan, Qazaqstan!)" if oyan else ""),
                description=(
                    "Generated demo record, not a real event: yearly totals, grievance shares "
                    "and the spread over cities follow the published figures."
                ),
                date=_random_date(year, rng, dt.date(2019, 6, 5) if oyan else None),
                city=city,
                grievances=grievances,
                police_responses=police,
                arrests=arrests,
                participants=(low, high),
                organizers=[OYAN] if oyan else [],
                sources=[source],
                is_generated=True,
            )
        )
    return events


def all_demo_events() -> list[DemoEvent]:
    events = list(REAL_EVENTS)
    for year in EVENTS_PER_YEAR:
        events += generated_events(year)
    return events


def _fields(demo: DemoEvent, cities: dict[str, City]) -> dict:
    fields = {
        "title": demo.title,
        "description": demo.description,
        "date": demo.date,
        "end_date": demo.end_date,
        "country": "KZ",
        "location_detail": demo.location_detail,
        "grievances": demo.grievances,
        "police_responses": demo.police_responses,
        "arrests": demo.arrests,
        "injuries": demo.injuries,
        "is_generated": demo.is_generated,
    }
    if demo.participants:
        fields["participants_low"], fields["participants_high"] = demo.participants
    if demo.city:
        fields["city"] = cities[demo.city]
    else:
        fields["geo_precision"] = Event.GeoPrecision.REGION
    if demo.point:
        fields["location"] = Point(*demo.point, srid=4326)
        fields["geo_precision"] = Event.GeoPrecision.EXACT
    return fields


def demo_users(*, password: str) -> list[str]:
    """Demo accounts, one per role, for trying the app locally."""
    User = get_user_model()
    made = []
    for username, group, staff in (
        ("admin", "Admin", True),
        ("moderator", "Moderator", True),
        ("contributor", "Contributor", False),
    ):
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": staff, "is_superuser": username == "admin"}
        )
        if created:
            user.set_password(password)
            user.save()
            made.append(username)
        group_obj, _ = Group.objects.get_or_create(name=group)
        user.groups.add(group_obj)
    return made


@transaction.atomic
def demo_load() -> dict[str, int]:
    gazetteer = gazetteer_load()
    wanted = all_demo_events()
    existing = set(ExternalId.objects.filter(scheme="demo").values_list("value", flat=True))
    names = {d.city for d in wanted if d.city}
    cities = {name: city_lookup(name, country="KZ").first() for name in names}
    missing = sorted(name for name, city in cities.items() if city is None)
    if missing:
        raise RuntimeError(f"Gazetteer lacks demo cities: {', '.join(missing)}")
    created = 0
    for demo in wanted:
        if demo.key in existing:
            continue
        event_create(
            fields=_fields(demo, cities),
            sources=demo.sources,
            organizers=demo.organizers,
            external_ids=[f"demo:{demo.key}"],
            status=Event.Status.PUBLISHED,
        )
        created += 1
    return {
        "cities": gazetteer["created"] + gazetteer["updated"],
        "events_created": created,
        "events_total": len(wanted),
    }
