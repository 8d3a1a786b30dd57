from tracker.importers.base import Importer


class CccImporter(Importer):
    format = "ccc"
