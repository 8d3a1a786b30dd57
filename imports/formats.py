"""The importer of each file format (one module per format in this package)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from imports.acled import AcledImporter
from imports.base import Importer
from imports.ccc import CccImporter
from imports.mm import MassMobilizationImporter
from imports.native import NativeImporter
from tracker.models import ImportFormat


def importer_for(format: str) -> Importer:
    importers: dict[str, type[Importer]] = {
        ImportFormat.ACLED: AcledImporter,
        ImportFormat.CCC: CccImporter,
        ImportFormat.MM: MassMobilizationImporter,
        ImportFormat.NATIVE: NativeImporter,
    }
    try:
        return importers[format]()
    except KeyError:
        raise ValidationError(
            {
                "format": [
                    gettext("Unknown format %(format)s; choose from %(known)s.")
                    % {"format": repr(format), "known": ", ".join(importers)}
                ]
            }
        ) from None
