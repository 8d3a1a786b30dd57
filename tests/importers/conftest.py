import csv
import io

import pytest
from django.core.files.base import ContentFile

from imports.acled import COLUMNS as ACLED_COLUMNS


def acled_row(**values) -> dict:
    row = dict.fromkeys(ACLED_COLUMNS, "")
    row.update(
        {
            "event_date": "2019-06-09",
            "year": "2019",
            "time_precision": "1",
            "disorder_type": "Demonstrations",
            "event_type": "Protests",
            "sub_event_type": "Peaceful protest",
            "actor1": "Protesters (Kazakhstan)",
            "iso": "398",
            "country": "Kazakhstan",
            "admin1": "Almaty",
            "location": "Almaty",
            "latitude": "43.2567",
            "longitude": "76.9286",
            "geo_precision": "1",
            "source": "Radio Azattyk; Vlast.kz",
            "notes": "Protest.",
            "fatalities": "0",
            "timestamp": "1600000000",
        }
    )
    row.update(values)
    return row


def csv_bytes(rows: list[dict], columns=None, encoding="utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.fixture
def moderator(make_user):
    return make_user("mod-imports", "Moderator")


@pytest.fixture
def run_import(moderator, settings, tmp_path):
    """Create and run a job from bytes, in-process, as the service would in the worker."""
    from imports.services import import_job_create, import_job_run

    settings.MEDIA_ROOT = tmp_path

    def run(data: bytes, format: str = "acled", publish: bool = True, name: str = "f.csv"):
        job = import_job_create(
            file=ContentFile(data, name=name),
            format=format,
            publish=publish,
            user=moderator,
            dispatch=False,
        )
        return import_job_run(job_id=job.pk)

    return run
