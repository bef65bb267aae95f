"""The local stack's moto finds a request's backend once per host, and finds the one moto would."""

from __future__ import annotations

from typing import Any

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local import moto_routing


def test_each_host_is_routed_to_moto_s_backend_and_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_routing.install()
    moto_routing.install()  # idempotent: one cache, not a wrapper around a wrapper
    listings: list[int] = []
    real_listing = backends.list_of_moto_modules

    def counted_listing() -> Any:
        listings.append(1)
        return real_listing()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted_listing)
    app = DomainDispatcherApplication(create_backend_app)
    uncached = DomainDispatcherApplication.get_backend_for_host.__wrapped__  # type: ignore[attr-defined]
    hosts = [
        "dynamodb.us-east-1.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
        "secretsmanager.eu-west-1.amazonaws.com",
    ]

    first = [app.get_backend_for_host(h) for h in hosts]
    looked_up = len(listings)
    again = [app.get_backend_for_host(h) for h in hosts * 3]

    assert first == [uncached(app, h) for h in hosts] == ["dynamodb", "sqs", "secretsmanager"]
    assert again == first * 3
    assert looked_up == 3  # one listing per new host, none after
