import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tracker.models import Event


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def contributor(make_user):
    return make_user("alice", "Contributor")


@pytest.fixture
def other_contributor(make_user):
    return make_user("bob", "Contributor")


@pytest.fixture
def moderator(make_user):
    return make_user("mod", "Moderator")


def client_for(user) -> APIClient:
    """A client that authenticates the way scripts do: with a token header."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def as_user():
    return client_for


SUBMISSION = {
    "title": "Pensioners at the akimat",
    "description": "Pensioners asked for the promised increase.",
    "date": "2020-03-02",
    "city": "Alma-Ata",
    "location_detail": "Akimat square",
    "grievances": ["welfare"],
    "police_responses": ["monitored"],
    "arrests": 0,
    "participants_low": 20,
    "participants_high": 40,
    "organizers": ["Pensioners of Almaty"],
    "sources": [{"url": "https://example.org/news/1", "title": "Pensioners protest"}],
    "external_ids": ["test:almaty-1"],
}


@pytest.fixture
def submission_data():
    return {**SUBMISSION, "sources": [dict(s) for s in SUBMISSION["sources"]]}


@pytest.fixture
def pending_event(as_user, contributor, submission_data):
    response = as_user(contributor).post("/api/v1/events/", submission_data, format="json")
    assert response.status_code == 201, response.content
    return Event.objects.get(pk=response.json()["id"])
