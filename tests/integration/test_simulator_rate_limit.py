"""The simulator's rate limiter over real HTTP, on the simulator's injectable clock: a per-minute
token bucket plus the hourly cap, per OAuth client, across integrate, upload and node listing."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import httpx
import pytest

from local.sim_rate_limit import RateLimit, RateLimiter, add_rate_limit_arguments, rate_limit_from_args
from local.simulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    IOT_CREATOR_ROLE,
    SensorDataSimulator,
    SimClient,
)
from tests.integration.test_simulator import get_token, integrate

SECOND_CLIENT = ("bridge-second-client", "bridge-second-secret")
NEW_NODE = {"integration": {"changeState": "new"}}


class FakeClock:
    """The simulator's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[SensorDataSimulator]:
    clients = [
        SimClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, frozenset({IOT_CREATOR_ROLE})),
        SimClient(*SECOND_CLIENT, frozenset({IOT_CREATOR_ROLE})),
    ]
    with SensorDataSimulator(clients=clients, clock=clock) as simulator:
        yield simulator


@pytest.fixture
def http(sim: SensorDataSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def statuses(http: httpx.Client, token: str, n: int) -> list[int]:
    return [integrate(http, token, NEW_NODE).status_code for _ in range(n)]


def test_bucket_admits_a_minutes_burst_then_paces_one_call_per_refill(
    http: httpx.Client, sim: SensorDataSimulator, clock: FakeClock
) -> None:
    sim.configure(rate_limit_per_minute=6)  # a bucket of 6, one call back every 10 s
    token = get_token(http)
    answers = [integrate(http, token, NEW_NODE) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 6 + [429]
    assert [a.headers["iTwinPlatform-RateLimit-RemainingCalls"] for a in answers] == [
        "5", "4", "3", "2", "1", "0", "0",
    ]  # fmt: skip
    assert answers[-1].headers["Retry-After"] == "10"
    clock.advance(10)
    assert statuses(http, token, 2) == [200, 429]  # one call refilled, not a whole window
    clock.advance(35)  # 3.5 calls' worth
    assert statuses(http, token, 4) == [200, 200, 200, 429]
    assert integrate(http, token, NEW_NODE).headers["Retry-After"] == "5"  # the half call left
    clock.advance(600)  # a long pause refills the bucket to a minute's worth, no more
    assert statuses(http, token, 7) == [200] * 6 + [429]
    assert len(sim.state()["nodes"]) == 6 + 1 + 3 + 6


@pytest.mark.parametrize(
    ("per_minute", "pause_s", "expected"),
    [
        (6, 0.0, 10),  # an empty bucket: one refill
        (7, 0.0, 9),  # 60/7 = 8.57 s, rounded up
        (7, 3.3, 6),  # part of the refill already passed: 8.57 - 3.3 = 5.27 s
        (500, 0.0, 1),  # the trial rate refills in 0.12 s: the header's floor is a whole second
        (1, 59.5, 1),
    ],
)
def test_retry_after_is_when_the_next_call_is_admitted_and_not_a_second_earlier(
    http: httpx.Client,
    sim: SensorDataSimulator,
    clock: FakeClock,
    per_minute: int,
    pause_s: float,
    expected: int,
) -> None:
    sim.configure(rate_limit_per_minute=per_minute)
    token = get_token(http)
    assert statuses(http, token, per_minute) == [200] * per_minute
    clock.advance(pause_s)
    refused = integrate(http, token, NEW_NODE)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after == expected
    assert refused.headers["iTwinPlatform-RateLimit-Retry-After-Seconds"] == str(retry_after)
    clock.advance(retry_after - 1)
    assert integrate(http, token, NEW_NODE).status_code == 429  # a second early
    clock.advance(1)
    assert integrate(http, token, NEW_NODE).status_code == 200  # exactly on time


def test_hourly_cap_refuses_until_the_oldest_call_of_the_hour_ages_out(
    http: httpx.Client, sim: SensorDataSimulator, clock: FakeClock
) -> None:
    sim.configure(rate_limit_per_minute=10, rate_limit_per_hour=25)
    token = get_token(http)
    assert statuses(http, token, 10) == [200] * 10  # at t = 0
    for _ in range(15):  # paced at the minute rate until the hour holds 25
        clock.advance(6)
        assert statuses(http, token, 1) == [200]
    clock.advance(60)  # the bucket is full again, but the hour is not
    refused = integrate(http, token, NEW_NODE)
    assert refused.status_code == 429
    # The first ten calls were at t = 0 and it is now t = 150: they leave the hour at t = 3600.
    assert refused.headers["Retry-After"] == str(3600 - 150)
    assert refused.headers["iTwinPlatform-RateLimit-RemainingCalls"] == "0"
    clock.advance(3600 - 150 - 1)
    assert integrate(http, token, NEW_NODE).status_code == 429
    clock.advance(1)
    # Ten calls left the hour at once; the bucket (full) admits all ten, the hour no more. (The
    # hour-old token has expired: a new one draws on the same client's budget.)
    assert statuses(http, get_token(http), 11) == [200] * 10 + [429]


def test_trial_tier_is_500_a_minute_and_5000_an_hour() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit.of("trial"), clock)
    assert sum(limiter.admit("client").admitted for _ in range(501)) == 500
    admitted = 500
    while limiter.next_admission_in("client") < 60:  # paced at the minute rate
        clock.advance(limiter.next_admission_in("client"))
        assert limiter.admit("client").admitted
        admitted += 1
    assert admitted == 5000
    elapsed = clock.now - 1_700_000_000.0
    assert elapsed == pytest.approx(4500 * 60 / 500)  # 540 s after the burst
    refused = limiter.admit("client")
    assert not refused.admitted
    assert refused.retry_after_s == round(3600 - elapsed)
    assert refused.headers["iTwinPlatform-Tier"] == "Trial"


def test_paid_tier_is_5000_a_minute_without_an_hourly_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit.of("paid"), clock)
    for _minute in range(3):  # 15,000 calls in three minutes: beyond any trial hour
        assert sum(limiter.admit("client").admitted for _ in range(5001)) == 5000
        clock.advance(60)
    assert limiter.admit("client").headers["iTwinPlatform-Tier"] == "Paid"


def test_budget_is_per_oauth_client_and_shared_by_its_tokens(
    http: httpx.Client, sim: SensorDataSimulator
) -> None:
    sim.configure(rate_limit_per_minute=2)
    first, second_token_same_client = get_token(http), get_token(http)
    other_client = get_token(http, *SECOND_CLIENT)
    assert statuses(http, first, 1) == [200]
    assert statuses(http, second_token_same_client, 2) == [200, 429]
    assert statuses(http, other_client, 3) == [200, 200, 429]


def test_integrate_upload_and_node_listing_draw_on_one_budget(
    http: httpx.Client, sim: SensorDataSimulator
) -> None:
    sim.configure(rate_limit_per_minute=3)
    token = get_token(http)
    auth = {"Authorization": f"Bearer {token}"}
    assert integrate(http, token, NEW_NODE).status_code == 200
    listing = http.get("/sensor-data/integrations/nodes", headers=auth)
    assert listing.status_code == 200
    # A refused upload (an empty one) passed the limiter first: it counts.
    upload = http.post("/sensor-data/data/upload", headers=auth, json={"observations": []})
    assert upload.status_code == 422
    assert [listing.headers["iTwinPlatform-RateLimit-RemainingCalls"]] == ["1"]
    assert upload.headers["iTwinPlatform-RateLimit-RemainingCalls"] == "0"
    for refused in (
        integrate(http, token, NEW_NODE),
        http.get("/sensor-data/integrations/nodes", headers=auth),
        http.post("/sensor-data/data/upload", headers=auth, json={"observations": []}),
    ):
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "TooManyRequests"
        assert refused.headers["Retry-After"] == "20"
    state = sim.state()
    assert [c["status"] for c in state["calls"]] == [200, 429]
    assert [c["status"] for c in state["node_list_calls"]] == [200, 429]
    assert [c["status"] for c in state["upload_calls"]] == [422, 429]


def test_rate_limit_headers_on_every_answer_of_a_limited_tier(
    http: httpx.Client, sim: SensorDataSimulator
) -> None:
    sim.configure(tier="trial")
    token = get_token(http)
    created = integrate(http, token, NEW_NODE)
    refused_body = integrate(http, token, {"integration": {"nodeId": "/api/000000/node", "devices": []}})
    for answer, remaining in ((created, "499"), (refused_body, "498")):
        assert answer.headers["iTwinPlatform-RateLimit-RemainingCalls"] == remaining
        assert answer.headers["iTwinPlatform-Tier"] == "Trial"
        assert "Retry-After" not in answer.headers
    assert refused_body.status_code == 422


def test_unlimited_simulator_sends_no_rate_limit_headers(http: httpx.Client) -> None:
    answer = integrate(http, get_token(http), NEW_NODE)
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("itwinplatform-")]


def test_refused_and_unauthenticated_calls_take_nothing_from_the_budget(
    http: httpx.Client, sim: SensorDataSimulator, clock: FakeClock
) -> None:
    sim.configure(rate_limit_per_minute=1)
    token = get_token(http)
    assert statuses(http, token, 1) == [200]
    for _ in range(5):  # hammering while refused does not push the next admission back
        clock.advance(10)
        assert statuses(http, token, 1) == [429]
        assert integrate(http, None, NEW_NODE).status_code == 401
    clock.advance(10)
    assert statuses(http, token, 1) == [200]  # exactly 60 s after the first


@pytest.mark.parametrize(
    ("posted", "expected"),
    [
        ({"tier": "trial"}, ("trial", 500, 5000)),
        ({"tier": "paid"}, ("paid", 5000, None)),
        ({"tier": "unlimited"}, ("unlimited", None, None)),
        ({"rate_limit_per_minute": 60}, ("custom", 60, None)),
        ({"rate_limit_per_minute": 60, "rate_limit_per_hour": 600}, ("custom", 60, 600)),
        ({"tier": "custom", "rate_limit_per_hour": 100}, ("custom", None, 100)),
        ({"tier": "trial", "rate_limit_per_hour": 10000}, ("custom", 500, 10000)),
        ({"tier": "trial", "rate_limit_per_minute": 500}, ("trial", 500, 5000)),
        ({"rate_limit_per_minute": None}, ("unlimited", None, None)),
    ],
)
def test_config_endpoint_sets_a_tier_or_custom_numbers(
    http: httpx.Client, posted: dict[str, object], expected: tuple[str, int | None, int | None]
) -> None:
    http.post("/_sim/config", json={"tier": "paid"})  # whatever was set before is replaced
    answer = http.post("/_sim/config", json=posted)
    assert answer.status_code == 200
    config = http.get("/_sim/config").json()
    assert answer.json() == config
    assert (config["tier"], config["rate_limit_per_minute"], config["rate_limit_per_hour"]) == expected


@pytest.mark.parametrize(
    "posted",
    [
        {"tier": "gold"},
        {"tier": "custom"},
        {"tier": "unlimited", "rate_limit_per_minute": 5},
        {"rate_limit_per_minute": 0},
        {"rate_limit_per_minute": "many"},
        {"rate_limit_per_hour": -1},
        {"rate_limit_per_minute": True},
        {"upload_max_observations": 0},
        {"burst": 3},
    ],
)
def test_config_endpoint_refuses_bad_rate_limits_and_keeps_the_old_one(
    http: httpx.Client, posted: dict[str, object]
) -> None:
    http.post("/_sim/config", json={"tier": "trial"})
    answer = http.post("/_sim/config", json=posted)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert http.get("/_sim/config").json()["tier"] == "trial"


def test_config_change_refills_every_budget(http: httpx.Client, sim: SensorDataSimulator) -> None:
    sim.configure(rate_limit_per_minute=1)
    token = get_token(http)
    assert statuses(http, token, 2) == [200, 429]
    http.post("/_sim/config", json={"upload_max_observations": 10})  # any change refills
    assert statuses(http, token, 2) == [200, 429]
    assert sim.rate_limit == RateLimit("custom", 1, None)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], RateLimit("custom", 8, None)),  # make run's default: some webhooks meet a 429
        (["--rate-limit", "1"], RateLimit("custom", 1, None)),
        (["--tier", "trial"], RateLimit("trial", 500, 5000)),
        (["--tier", "paid"], RateLimit("paid", 5000, None)),
        (["--tier", "unlimited"], RateLimit()),
        (["--tier", "trial", "--rate-limit-hour", "10000"], RateLimit("custom", 500, 10000)),
        (["--rate-limit-hour", "100"], RateLimit("custom", None, 100)),
    ],
)
def test_command_line_flags_pick_the_tier(argv: list[str], expected: RateLimit) -> None:
    parser = argparse.ArgumentParser()
    add_rate_limit_arguments(parser, default_per_minute=8)
    assert rate_limit_from_args(parser.parse_args(argv)) == expected


def test_command_line_refuses_an_impossible_limit() -> None:
    parser = argparse.ArgumentParser()
    add_rate_limit_arguments(parser)
    assert rate_limit_from_args(parser.parse_args([])) == RateLimit()  # serve's default
    with pytest.raises(SystemExit, match="positive integer"):
        rate_limit_from_args(parser.parse_args(["--rate-limit", "0"]))
    with pytest.raises(SystemExit, match="custom tier needs"):
        rate_limit_from_args(parser.parse_args(["--tier", "custom"]))


def test_calls_are_timed_on_the_simulators_clock(
    http: httpx.Client, sim: SensorDataSimulator, clock: FakeClock
) -> None:
    token = get_token(http)
    integrate(http, token, NEW_NODE)
    clock.advance(90)
    http.get("/sensor-data/integrations/nodes", headers={"Authorization": f"Bearer {token}"})
    state = sim.state()
    assert state["node_list_calls"][0]["at"] - state["calls"][0]["at"] == 90
