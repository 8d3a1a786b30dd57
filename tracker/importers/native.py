from tracker.importers.base import Importer


class NativeImporter(Importer):
    format = "native"
