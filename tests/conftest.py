"""Shared fixtures: personas (anonymous, viewer, operator, admin) and domain factories."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client as BrowserClient

from audit.services import Actor
from clients import services
from clients.models import Client, Scope
from tokens import sink

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Dashboard passwords use PBKDF2 in production; tests log personas in constantly.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    # Rate-limit counters and cached lookups live in the cache (Redis in tests); this
    # process's view of the counters goes with them.
    cache.clear()
    sink.sink_reset()
    # Each token request sends its counts and event at once, so a test sees them in Redis
    # when the response is back. tests/tokens/test_batching.py runs the send interval, and
    # the servers the tests start (bin/serve) run the deployed default.
    settings.KEYWARD_TOKEN_EVENT_SEND_INTERVAL = 0
    yield


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
    if role:
        # get_or_create: transactional tests flush the groups the data migration made.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def viewer(db) -> User:
    return make_user("vera-viewer", "viewer")


@pytest.fixture
def operator(db) -> User:
    return make_user("otto-operator", "operator")


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada-admin", "admin")


def logged_in(user: User) -> BrowserClient:
    browser = BrowserClient()
    browser.force_login(user)
    return browser


@pytest.fixture
def anonymous_client() -> BrowserClient:
    return BrowserClient()


@pytest.fixture
def viewer_client(viewer) -> BrowserClient:
    return logged_in(viewer)


@pytest.fixture
def operator_client(operator) -> BrowserClient:
    return logged_in(operator)


@pytest.fixture
def admin_client(admin_user) -> BrowserClient:
    return logged_in(admin_user)


@pytest.fixture
def persona_clients(anonymous_client, viewer_client, operator_client, admin_client) -> dict:
    return {
        "anonymous": anonymous_client,
        "viewer": viewer_client,
        "operator": operator_client,
        "admin": admin_client,
    }


_sequence = itertools.count(1)


@pytest.fixture
def make_scope(db):
    def factory(name: str | None = None, **fields) -> Scope:
        return services.scope_create(
            actor=Actor.cli(), name=name or f"things{next(_sequence)}:read", **fields
        )

    return factory


@pytest.fixture
def make_client(db):
    """Returns (client, plain_secret)."""

    def factory(name: str | None = None, scopes=(), **fields) -> tuple[Client, str]:
        return services.client_register(
            actor=Actor.cli(),
            name=name or f"client-{next(_sequence)}",
            scopes=list(scopes),
            **fields,
        )

    return factory
