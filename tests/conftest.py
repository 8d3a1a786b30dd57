import pytest
from django.core.cache import cache

# The browser fixtures (one Chromium, one server with its own database) are registered here,
# once for the whole run: two Playwright sync sessions cannot run in one process, so the page,
# import and API browser tests must all share this one.
from tests.browser.support import (  # noqa: F401
    _artifacts_dir,
    base_url,
    browser,
    browser_db,
    browser_db_name,
    db_query,
    page,
    problems,
    server_env,
)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database starts with the gazetteer and the demo data (idempotent, so a
    reused database is only topped up). Tests run inside transactions on top of it."""
    from tracker.roles import apply_roles
    from tracker.services.demo import demo_load

    # A transactional test flushes every table at its end, the role groups of the data
    # migration included; a reused database therefore gets both back here.
    with django_db_blocker.unblock():
        apply_roles()
        demo_load()


@pytest.fixture
def demo(django_db_setup):
    """Demo data for tests whose database was flushed by an earlier transactional test."""
    from tracker.roles import apply_roles
    from tracker.services.demo import demo_load

    apply_roles()
    demo_load()


@pytest.fixture(autouse=True)
def _clear_cache():
    yield
    # Only this run's keys (the test prefix): clear() would flush the whole Redis database.
    cache.delete_pattern("*")


@pytest.fixture
def make_user(django_user_model):
    from django.contrib.auth.models import Group

    def make(username: str, role: str | None = None, **extra):
        user = django_user_model.objects.create_user(
            username=username, password="pw-12345!", **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make
