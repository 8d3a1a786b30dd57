"""Import messages in the uploader's language: row reasons, file refusals and job messages
come in English, Russian and Kazakh, with the file's column names and values kept as they are.
"""

import ast
import io
import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import translation

from imports.acled import AcledImporter
from imports.base import Context, FileRejected, Gazetteer, RowProblem
from imports.jobs import JobConflict, job_cancel
from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import ImportJob

pytestmark = pytest.mark.django_db

KNOWN = (
    "excessive force against protesters, mob violence, peaceful protest, "
    "protest with intervention, violent demonstration"
)
MISSING = (
    "event_id_cnty, event_date, event_type, sub_event_type, country, location, latitude, longitude"
)

EXPECTED = {
    "en": {
        "sub_event_type": f"Unknown sub_event_type for Protests. Known: {KNOWN}.",
        "fatalities": "fatalities must be a whole number.",
        "event_id_cnty": "event_id_cnty is required.",
        "latitude": "latitude must be between -90 and 90.",
        "event_type": (
            'event_type "Battles" is not a protest event (only Protests and Riots are imported).'
        ),
        "columns": (
            f"Required columns missing: {MISSING}. Is this a ACLED file? "
            "Its first line must name the columns."
        ),
        "binary": (
            "This is not a CSV text file (it contains binary data). "
            "Upload the ACLED file as CSV, UTF-8 encoded."
        ),
    },
    "ru": {
        "sub_event_type": (
            f"Неизвестное значение sub_event_type для Protests. Известные значения: {KNOWN}."
        ),
        "fatalities": "В столбце fatalities должно быть целое число.",
        "event_id_cnty": "Не заполнен столбец event_id_cnty.",
        "latitude": "Широта (latitude) должна быть от -90 до 90.",
        "event_type": (
            "event_type «Battles» — не протестное событие (импортируются только Protests и Riots)."
        ),
        "columns": (
            f"Нет обязательных столбцов: {MISSING}. Это точно файл ACLED? "
            "В его первой строке должны быть названия столбцов."
        ),
        "binary": (
            "Это не текстовый файл CSV (в нём есть двоичные данные). "
            "Загрузите файл ACLED в формате CSV в кодировке UTF-8."
        ),
    },
    "kk": {
        "sub_event_type": (f"Protests үшін sub_event_type мәні белгісіз. Белгілі мәндер: {KNOWN}."),
        "fatalities": "fatalities бағанында бүтін сан болуы керек.",
        "event_id_cnty": "event_id_cnty бағаны толтырылмаған.",
        "latitude": "Ендік (latitude) -90 мен 90 аралығында болуы керек.",
        "event_type": (
            "event_type «Battles» — наразылық оқиғасы емес (тек Protests және Riots импортталады)."
        ),
        "columns": (
            f"Міндетті бағандар жоқ: {MISSING}. Бұл шынымен ACLED файлы ма? "
            "Оның бірінші жолында бағандардың атаулары болуы керек."
        ),
        "binary": (
            "Бұл CSV мәтіндік файлы емес (онда екілік деректер бар). "
            "ACLED файлын UTF-8 кодтауындағы CSV ретінде жүктеңіз."
        ),
    },
}

BAD_ROWS = [
    acled_row(event_id_cnty="KAZL1", sub_event_type="Flash mob"),
    acled_row(event_id_cnty="KAZL2", fatalities="many"),
    acled_row(event_id_cnty=""),
    acled_row(event_id_cnty="KAZL4", latitude="95"),
    acled_row(event_id_cnty="KAZL5", event_type="Battles", sub_event_type="Armed clash"),
]


def _reasons(data: bytes) -> dict[str, str]:
    context = Context(gazetteer=Gazetteer())
    problems = [p for _, p in AcledImporter().records(io.BytesIO(data), context)]
    assert all(isinstance(p, RowProblem) for p in problems)
    return {p.column: p.reason for p in problems}


@pytest.mark.parametrize("language", ["en", "ru", "kk"])
def test_row_reasons_are_in_the_active_language_with_the_column_names_kept(language):
    with translation.override(language):
        reasons = _reasons(csv_bytes(BAD_ROWS))
    expected = EXPECTED[language]
    assert reasons == {column: expected[column] for column in reasons}
    assert set(reasons) == {"sub_event_type", "fatalities", "event_id_cnty", "latitude",
                            "event_type"}  # fmt: skip


@pytest.mark.parametrize("language", ["en", "ru", "kk"])
@pytest.mark.parametrize(
    ("case", "data"),
    [("columns", b"date,place\n2019-01-01,Almaty\n"), ("binary", b"\x89PNG\r\n\x1a\n\x00\x00")],
)
def test_a_broken_file_is_refused_in_the_active_language(language, case, data):
    with translation.override(language), pytest.raises(FileRejected) as refused:
        AcledImporter().check(io.BytesIO(data))
    assert str(refused.value) == EXPECTED[language][case]


def test_a_message_is_translated_when_it_is_made_not_when_the_module_was_imported():
    data = csv_bytes([BAD_ROWS[1]])
    with translation.override("kk"):
        kazakh = _reasons(data)["fatalities"]
    with translation.override("ru"):
        russian = _reasons(data)["fatalities"]
    assert (kazakh, russian) == (EXPECTED["kk"]["fatalities"], EXPECTED["ru"]["fatalities"])
    assert _reasons(data)["fatalities"] == EXPECTED["en"]["fatalities"]


def _messages(module: Path) -> list[str]:
    """Every literal given to gettext or gettext_lazy in the module."""
    found = []
    for node in ast.walk(ast.parse(module.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"gettext", "gettext_lazy"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append(node.args[0].value)
    return found


IMPORTS = Path(__file__).resolve().parents[2] / "imports"
# Names of datasets, the same in every language.
SAME_IN_EVERY_LANGUAGE = {"Crowd Counting Consortium", "Mass Mobilization"}
MODULES = ["base.py", "acled.py", "ccc.py", "mm.py", "native.py", "jobs.py", "services.py"]


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_every_import_message_has_a_translation_that_keeps_its_placeholders(language):
    messages = [m for name in MODULES for m in _messages(IMPORTS / name)]
    assert len(messages) > 50
    with translation.override(language):
        for message in messages:
            translated = translation.gettext(message)
            if message not in SAME_IN_EVERY_LANGUAGE:
                assert translated != message, f"no {language} translation: {message!r}"
            placeholders = sorted(re.findall(r"%\(\w+\)s", message))
            assert sorted(re.findall(r"%\(\w+\)s", translated)) == placeholders, translated


@pytest.fixture
def queued_job(moderator, settings, tmp_path):
    """An import job uploaded by a moderator who reads the site in `language`."""
    from imports.services import import_job_create

    settings.MEDIA_ROOT = tmp_path

    def make(language: str, rows=None) -> ImportJob:
        data = csv_bytes(rows or [acled_row(event_id_cnty="KAZLQ")])
        with translation.override(language):
            return import_job_create(
                file=ContentFile(data, name="f.csv"),
                format="acled",
                publish=True,
                user=moderator,
                dispatch=False,
            )

    return make


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "Cancelled before it ran; nothing was imported."),
        ("ru", "Отменено до начала работы; ничего не импортировано."),
        ("kk", "Басталмай тұрып тоқтатылды; ештеңе импортталған жоқ."),
    ],
)
def test_a_queued_job_cancelled_says_so_in_its_uploaders_language(
    queued_job, moderator, language, message
):
    job = queued_job(language)
    assert job.language == language
    # Cancelled from a request in another language: the job's message is its uploader's.
    with translation.override("en" if language != "en" else "ru"):
        job = job_cancel(model=ImportJob, job_id=job.pk, user=moderator)
    assert job.message == message


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "The job has already cancelled; there is nothing to cancel."),
        ("ru", "Задание уже завершено (отменено); отменять нечего."),
        ("kk", "Тапсырма аяқталып қойған (тоқтатылды); бас тартатын ештеңе жоқ."),
    ],
)
def test_a_conflict_answers_in_the_requesters_language(queued_job, moderator, language, message):
    job = queued_job("en")
    job_cancel(model=ImportJob, job_id=job.pk, user=moderator)
    with translation.override(language), pytest.raises(JobConflict) as conflict:
        job_cancel(model=ImportJob, job_id=job.pk, user=moderator)
    assert str(conflict.value) == message


def test_a_job_reports_in_its_uploaders_language_whatever_the_worker_speaks(queued_job):
    from imports.services import import_job_run

    job = queued_job("ru", [*BAD_ROWS[:3], acled_row(event_id_cnty="KAZLOK")])
    with translation.override("en"):  # the worker's own language
        job = import_job_run(job_id=job.pk)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert job.message.startswith(
        "Создано: 1, обновлено: 0, без изменений: 0, пропущено: 0, с ошибкой: 3"
    )
    reasons = dict(job.issues.values_list("column", "reason"))
    assert reasons == {column: EXPECTED["ru"][column] for column in
                       ("sub_event_type", "fatalities", "event_id_cnty")}  # fmt: skip
