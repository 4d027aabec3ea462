"""PlanClient: one request in flight, an unanswered one abandoned after PLAN_TIMEOUT and counted
as failed, replies stored for the step they were asked at, unusable ones failed with the reason."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from leg2r_driver import plan_client
from leg2r_driver.controller_core import PlanBuffer
from leg2r_driver.plan_client import PLAN_TIMEOUT, PlanClient


class FakeFuture:
    def __init__(self) -> None:
        self.response: Any = None
        self.answered = False

    def done(self) -> bool:
        return self.answered

    def result(self) -> Any:
        return self.response

    def answer(self, response: Any) -> None:
        self.response, self.answered = response, True


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, FakeFuture]] = []
        self.removed: list[FakeFuture] = []
        self.ready = True

    def service_is_ready(self) -> bool:
        return self.ready

    def call_async(self, request: Any) -> FakeFuture:
        future = FakeFuture()
        self.sent.append((request, future))
        return future

    def remove_pending_request(self, future: FakeFuture) -> None:
        self.removed.append(future)


def reply(actions: np.ndarray, success: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        success=success,
        actions=actions.reshape(-1).tolist(),
        horizon=actions.shape[0],
        action_dim=actions.shape[1],
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    now = SimpleNamespace(t=100.0)
    monkeypatch.setattr(plan_client.time, "monotonic", lambda: now.t)
    return now


def test_one_request_in_flight_and_timeout(clock: SimpleNamespace) -> None:
    fake = FakeClient()
    client = PlanClient(fake)  # type: ignore[arg-type]
    obs = np.arange(6, dtype=np.float32)
    assert client.request(obs, episode=0, step=3) is None
    assert client.request(obs, episode=0, step=4) is None  # still in flight: nothing sent
    assert len(fake.sent) == 1 and list(fake.sent[0][0].observation) == obs.tolist()
    clock.t += PLAN_TIMEOUT
    assert client.request(obs, episode=0, step=9) == "plans_failed"
    assert fake.removed == [fake.sent[0][1]] and len(fake.sent) == 2
    fake.ready = False
    clock.t += PLAN_TIMEOUT
    assert client.request(obs, episode=0, step=12) == "plans_failed"  # abandoned, none sent
    assert len(fake.sent) == 2


def test_replies_are_stored_for_the_step_asked(clock: SimpleNamespace) -> None:
    fake = FakeClient()
    client = PlanClient(fake)  # type: ignore[arg-type]
    plans = PlanBuffer()
    assert client.collect(plans) == (None, "")
    client.request(np.zeros(6, dtype=np.float32), episode=2, step=5)
    assert client.collect(plans) == (None, "")  # not answered yet
    actions = np.array([[0.1, -0.2], [0.3, 0.4], [2.0, -3.0]])
    fake.sent[0][1].answer(reply(actions))
    assert client.collect(plans) == ("plans_used", "")
    np.testing.assert_allclose(plans.action(2, 6), [0.3, 0.4])
    np.testing.assert_allclose(plans.action(2, 7), [1.0, -1.0])  # clipped
    assert plans.action(2, 4) is None and plans.action(3, 5) is None


def test_failed_and_unusable_replies(clock: SimpleNamespace) -> None:
    fake = FakeClient()
    client = PlanClient(fake)  # type: ignore[arg-type]
    plans = PlanBuffer()
    client.request(np.zeros(6, dtype=np.float32), episode=0, step=0)
    fake.sent[-1][1].answer(reply(np.zeros((2, 2)), success=False))
    assert client.collect(plans) == ("plans_failed", "")
    client.request(np.zeros(6, dtype=np.float32), episode=0, step=1)
    fake.sent[-1][1].answer(reply(np.full((2, 2), np.nan)))
    outcome, error = client.collect(plans)
    assert outcome == "plans_failed" and "non-finite" in error
    assert plans.action(0, 1) is None
