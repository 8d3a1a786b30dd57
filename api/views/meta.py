"""/api/v1/taxonomy/, /api/v1/cities/ and /api/v1/auth/token/."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.utils import translation
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from api.parsers import LimitedJSONParser
from api.serializers.meta import (
    CityListSerializer,
    CityQuerySerializer,
    CitySerializer,
    LanguageQuerySerializer,
    TaxonomySerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)
from pages.lockout import cool_off_seconds, lockout_message
from tracker import taxonomy
from tracker.models import City
from tracker.selectors import city_list

LANGUAGES = ("en", "ru", "kk")


def _language(request, chosen: str | None) -> str:
    """?lang= if given, else what LocaleMiddleware chose from Accept-Language."""
    if chosen:
        return chosen
    current = (getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "en")[:2]
    return current if current in LANGUAGES else "en"


def _term(term: taxonomy.Term, language: str) -> dict:
    return {
        "slug": term.slug,
        "label": term.label(language),
        "labels": {"en": term.en, "ru": term.ru, "kk": term.kk},
        "description": term.description,
    }


class TaxonomyView(APIView):
    """Grievances and police responses (mildest first) with their labels."""

    permission_classes = [AllowAny]

    @extend_schema(
        tags=["reference"], parameters=[LanguageQuerySerializer], responses=TaxonomySerializer
    )
    def get(self, request):
        query = LanguageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        language = _language(request, query.validated_data.get("lang"))
        body = {
            "language": language,
            "grievances": [_term(t, language) for t in taxonomy.GRIEVANCES],
            "police_responses": [
                {
                    **_term(t, language),
                    "severity": taxonomy.severity(t.slug),
                    "intervention": t.slug in taxonomy.INTERVENTION_RESPONSES,
                    "force": t.slug in taxonomy.FORCE_RESPONSES,
                }
                for t in taxonomy.POLICE_RESPONSES
            ],
        }
        return Response(TaxonomySerializer(body).data)


class CityListView(APIView):
    """Gazetteer search: cities whose name in any language (or former name) starts with q."""

    permission_classes = [AllowAny]

    @extend_schema(
        tags=["reference"],
        operation_id="v1_cities_list",
        parameters=[CityQuerySerializer],
        responses=CityListSerializer,
    )
    def get(self, request):
        query = CityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        language = _language(request, data.get("lang"))
        cities = city_list(
            query=data.get("q", ""), country=data.get("country"), limit=data["limit"]
        )
        serializer = CitySerializer(cities, many=True, context={"language": language})
        return Response({"results": serializer.data})


class CityDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["reference"], parameters=[LanguageQuerySerializer], responses=CitySerializer
    )
    def get(self, request, pk: int):
        query = LanguageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        city = get_object_or_404(City, pk=pk)
        language = _language(request, query.validated_data.get("lang"))
        return Response(CitySerializer(city, context={"language": language}).data)


class LockedOut(Throttled):
    default_code = "locked_out"

    def __init__(self, wait: int):
        super().__init__(wait=wait, detail=lockout_message(wait))


class TokenView(APIView):
    """Exchange a username and password for the API token of that account.

    Send it as `Authorization: Token <token>`. Throttled hard against password guessing:
    the API's rate limit, and the login lockout of the whole site (too many failures for
    one account or from one address answer 429 with Retry-After, even for the right
    password, until the cool-off has passed).
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []
    parser_classes = [LimitedJSONParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(tags=["auth"], request=TokenRequestSerializer, responses=TokenResponseSerializer)
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request=request._request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if getattr(request._request, "axes_locked_out", False):
            # The login lockout (django-axes), shared with the page and admin logins: even
            # the right password is refused until the cool-off has passed.
            raise LockedOut(wait=cool_off_seconds())
        if user is None or not user.is_active:
            # 400, as DRF's own token view answers: 401 would need a WWW-Authenticate
            # challenge, and this endpoint is where a client gets its credentials.
            raise ValidationError({"non_field_errors": ["Wrong username or password."]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
