from __future__ import annotations

from rest_framework import serializers

from tracker.models import City


class TaxonomyTermSerializer(serializers.Serializer):
    slug = serializers.CharField()
    label = serializers.CharField(help_text="In the requested language.")
    labels = serializers.DictField(child=serializers.CharField(), help_text="en, ru and kk.")
    description = serializers.CharField()


class PoliceResponseTermSerializer(TaxonomyTermSerializer):
    severity = serializers.IntegerField(help_text="0 = mildest.")
    intervention = serializers.BooleanField()
    force = serializers.BooleanField()


class TaxonomySerializer(serializers.Serializer):
    language = serializers.CharField()
    grievances = TaxonomyTermSerializer(many=True)
    police_responses = PoliceResponseTermSerializer(many=True)


class CitySerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField(help_text="The name in the requested language.")
    longitude = serializers.SerializerMethodField()
    latitude = serializers.SerializerMethodField()

    class Meta:
        model = City
        fields = [
            "id",
            "name",
            "label",
            "name_ru",
            "name_kk",
            "country",
            "admin1",
            "population",
            "longitude",
            "latitude",
        ]
        read_only_fields = fields

    def get_label(self, city: City) -> str:
        return city.label(self.context.get("language"))

    def get_longitude(self, city: City) -> float:
        return city.location.x

    def get_latitude(self, city: City) -> float:
        return city.location.y


class CityListSerializer(serializers.Serializer):
    results = CitySerializer(many=True)


class LanguageQuerySerializer(serializers.Serializer):
    lang = serializers.ChoiceField(
        choices=["en", "ru", "kk"],
        required=False,
        help_text="Language of the labels; default from Accept-Language, else English.",
        error_messages={"invalid_choice": '"{input}" is not offered: use en, ru or kk.'},
    )


class CityQuerySerializer(LanguageQuerySerializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=120, help_text="Start of any name."
    )
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$",
        required=False,
        error_messages={"invalid": "A country is an ISO 3166-1 alpha-2 code such as KZ."},
    )
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
