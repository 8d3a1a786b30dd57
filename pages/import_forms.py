from django import forms
from django.utils.translation import gettext_lazy as _

from tracker.models import ImportFormat


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV, UTF-8 encoded (GeoJSON for this tracker's own export)."),
    )
    format = forms.ChoiceField(label=_("Format"), choices=ImportFormat.choices)
    publish = forms.BooleanField(
        label=_("Trusted source: publish the imported events at once"),
        required=False,
        help_text=_("Otherwise they wait in the review queue as pending."),
    )
