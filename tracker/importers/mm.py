from tracker.importers.base import Importer


class MassMobilizationImporter(Importer):
    format = "mm"
