"""Every authentication mode, against secrets served from a dict instead of Secrets Manager."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from sensor_bridge.inbound.auth import authenticate as auth
from sensor_bridge.model.config import Source
from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.model.source_auth import BasicAuth, HeaderAuth, QueryAuth, StandardWebhooksAuth
from sensor_bridge.store.secrets import SecretUnavailable

SECRETS = {
    "token": "s3cret-token-0123456",
    "pw": "pa:ss-word-0123456789",
    "signing": "whsec_" + base64.b64encode(b"k" * 24).decode(),
}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "webhook_secret", SECRETS.get)


def source(auth_model: object) -> Source:
    return Source.model_validate({"platform": "particle", "auth": auth_model})


def request(
    headers: dict[str, str] | None = None, query: dict[str, str] | None = None, body: bytes = b"{}"
) -> WebhookRequest:
    return WebhookRequest("POST", "s", headers or {}, query or {}, body)


def refused(req: WebhookRequest, src: Source) -> RequestError:
    with pytest.raises(RequestError) as caught:
        auth.authenticate(req, src)
    assert not any(v in caught.value.message for v in SECRETS.values())
    return caught.value


def test_header_auth_accepts_the_exact_value_with_its_prefix() -> None:
    src = source(HeaderAuth(type="header", header="Authorization", secret="token", prefix="Bearer "))
    auth.authenticate(request({"authorization": "Bearer s3cret-token-0123456"}), src)
    assert refused(request({"authorization": "s3cret-token-0123456"}), src).status == 401


@pytest.mark.parametrize("headers", [{}, {"x-token": ""}, {"x-token": "s3cret-token-0123457"}])
def test_header_auth_refuses_missing_empty_or_wrong_values(headers: dict[str, str]) -> None:
    error = refused(request(headers), source(HeaderAuth(type="header", header="X-Token", secret="token")))
    assert (error.status, error.code) == (401, "Unauthorized")


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_accepts_a_password_containing_a_colon_and_refuses_its_prefix() -> None:
    src = source(BasicAuth(type="basic", username="particle", secret="pw"))
    assert refused(request(basic("particle", "pa")), src).status == 401
    auth.authenticate(
        request(basic("particle", "pa:ss-word-0123456789")),
        source(BasicAuth(type="basic", username="particle", secret="pw")),
    )


@pytest.mark.parametrize(
    "headers",
    [basic("other", "pa:ss-word-0123456789"), basic("particle", "wrong"), {"authorization": "Basic !!!"}, {}],
)
def test_basic_auth_refuses_with_a_challenge(headers: dict[str, str]) -> None:
    error = refused(request(headers), source(BasicAuth(type="basic", username="particle", secret="pw")))
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith("Basic")


def test_query_auth_checks_the_named_parameter() -> None:
    src = source(QueryAuth(type="query", parameter="code", secret="token"))
    auth.authenticate(request(query={"code": "s3cret-token-0123456"}), src)
    assert refused(request(query={"code": "nope"}), src).status == 401
    assert refused(request(query={"key": "s3cret-token-0123456"}), src).status == 401


def signed(body: bytes, *, at: float | None = None, secret: str = SECRETS["signing"]) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    sig = Webhook(secret).sign("msg_1", datetime.fromtimestamp(stamp, tz=UTC), body.decode())
    return {"webhook-id": "msg_1", "webhook-timestamp": str(stamp), "webhook-signature": sig}


SW = StandardWebhooksAuth(type="standard-webhooks", secret="signing")


def test_standard_webhooks_accepts_one_valid_signature_among_several() -> None:
    headers = signed(b'{"a":1}')
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    auth.authenticate(request(headers, body=b'{"a":1}'), source(SW))


@pytest.mark.parametrize("offset", [-301, 301])
def test_standard_webhooks_refuses_timestamps_outside_five_minutes(offset: int) -> None:
    assert refused(request(signed(b"{}", at=time.time() + offset)), source(SW)).status == 401


def test_standard_webhooks_source_may_tighten_the_tolerance() -> None:
    tight = StandardWebhooksAuth(type="standard-webhooks", secret="signing", tolerance_seconds=30)
    assert refused(request(signed(b"{}", at=time.time() - 60)), source(tight)).status == 401


@pytest.mark.parametrize("signature", ["v1,", "nonsense", "v1,not-base64!", "v2,AAAA"])
def test_standard_webhooks_refuses_forged_or_garbled_signatures(signature: str) -> None:
    headers = {**signed(b"{}"), "webhook-signature": signature}
    assert refused(request(headers), source(SW)).status == 401


def test_standard_webhooks_refuses_a_missing_header() -> None:
    headers = signed(b"{}")
    del headers["webhook-id"]
    assert "webhook-id" in refused(request(headers), source(SW)).message


def test_unreadable_secret_is_our_outage_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(name: str) -> str:
        raise SecretUnavailable("down")

    monkeypatch.setattr(auth, "webhook_secret", unavailable)
    error = refused(
        request({"x-token": "x"}), source(HeaderAuth(type="header", header="X-Token", secret="token"))
    )
    assert error.status == 503


def test_unset_secret_is_a_503_not_an_open_door() -> None:
    error = refused(
        request({"x-token": ""}), source(HeaderAuth(type="header", header="X-Token", secret="absent"))
    )
    assert error.status == 503


# -- secrets too weak to check anything against ---------------------------------------------------


@pytest.mark.parametrize(
    "auth_model",
    [
        HeaderAuth(type="header", header="X-Token", secret="short"),
        BasicAuth(type="basic", username="particle", secret="short"),
        QueryAuth(type="query", parameter="code", secret="short"),
    ],
    ids=["header", "basic", "query"],
)
def test_a_shared_secret_under_16_characters_is_a_503_even_when_the_request_carries_it(
    monkeypatch: pytest.MonkeyPatch, auth_model: object
) -> None:
    monkeypatch.setattr(auth, "webhook_secret", {"short": "fifteen-chars!!"}.get)
    carried = request(
        {"x-token": "fifteen-chars!!", **basic("particle", "fifteen-chars!!")}, {"code": "fifteen-chars!!"}
    )

    error = refused(carried, source(auth_model))

    assert (error.status, error.code) == (503, "SecretUnavailable")
    assert "16 characters" in error.message
    assert "fifteen" not in error.message


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_ab",  # one byte, decoded leniently by the standardwebhooks package
        "whsec_" + base64.b64encode(b"k" * 23).decode(),  # one byte short of the spec's minimum
        "whsec_" + base64.b64encode(b"k" * 65).decode(),  # past the spec's maximum
        "whsec_" + base64.b64encode(b"k" * 32).decode() + "!",  # not base64
        "whsec_" + base64.b64encode(b"k" * 32).decode().replace("a", "-"),  # url-safe alphabet
    ],
)
def test_a_standard_webhooks_secret_that_is_not_a_24_to_64_byte_base64_key_is_a_503(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setattr(auth, "webhook_secret", {"signing": secret}.get)

    error = refused(request(signed(b"{}")), source(SW))

    assert (error.status, error.code) == (503, "SecretUnavailable")


def test_a_one_byte_key_cannot_be_forged_by_guessing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before the key was checked, `whsec_ab` was the key b"i": one of 256 guesses signs anything.
    monkeypatch.setattr(auth, "webhook_secret", {"signing": "whsec_ab"}.get)
    forged = [Webhook(bytes([k])).sign("msg_1", datetime.now(UTC), "{}") for k in range(256)]
    headers = {**signed(b"{}"), "webhook-signature": " ".join(forged)}

    assert refused(request(headers), source(SW)).status == 503


def test_an_unpadded_standard_webhooks_key_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    key = base64.b64encode(b"k" * 25).decode()
    assert key.endswith("=")
    monkeypatch.setitem(SECRETS, "unpadded", "whsec_" + key.rstrip("="))
    unpadded = StandardWebhooksAuth(type="standard-webhooks", secret="unpadded")

    auth.authenticate(request(signed(b"{}", secret="whsec_" + key), body=b"{}"), source(unpadded))
