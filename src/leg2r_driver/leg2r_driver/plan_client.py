"""The torque controller's client of the planner (``mode: mpc``): one request in flight at most.

At each policy step the controller asks for a plan from that step's observation unless a request
is still in flight; one unanswered for ``PLAN_TIMEOUT`` is abandoned (a killed or stalled
planner: its answer would never come, and waiting for it would keep a relaunched planner unused
forever). A reply's rows go to the core's :class:`controller_core.PlanBuffer` for the episode and
step the request was made at.
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.client import Client
from rclpy.task import Future

from leg2r_driver.controller_core import PlanBuffer
from mdemorl_msgs.srv import PlanActions

PLAN_TIMEOUT = 0.5  # s; a plan request unanswered this long is abandoned (a plan is stale by then)


class PlanClient:
    """Sends PlanActions requests and stores usable replies; the outcomes are diagnostics counter
    names (``plans_used``, ``plans_failed``) for the node to count."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.future: Future | None = None
        self.sent_at = 0.0
        self.request_at = (0, 0)  # (episode, step) of the request in flight

    def request(self, observation: np.ndarray, episode: int, step: int) -> str | None:
        """Ask for a plan from ``observation`` [obs_dim] unless one is in flight; returns
        ``plans_failed`` when it abandoned an unanswered request, else None."""
        outcome = None
        if self.future is not None:
            if time.monotonic() - self.sent_at < PLAN_TIMEOUT:
                return None
            self.client.remove_pending_request(self.future)
            self.future = None
            outcome = "plans_failed"
        if not self.client.service_is_ready():
            return outcome
        request = PlanActions.Request(observation=observation.tolist())
        self.request_at = (episode, step)
        self.sent_at = time.monotonic()
        self.future = self.client.call_async(request)
        return outcome

    def collect(self, plans: PlanBuffer) -> tuple[str | None, str]:
        """Store an arrived reply in ``plans``: (outcome or None when nothing arrived, the error of
        a reply that was unusable, else "")."""
        future = self.future
        if future is None or not future.done():
            return None, ""
        self.future = None
        response = future.result()
        if response is None or not response.success:
            return "plans_failed", ""
        try:
            actions = np.asarray(response.actions, dtype=np.float64).reshape(
                response.horizon, response.action_dim
            )
            episode, step = self.request_at
            plans.store(actions, episode, step)
        except ValueError as error:
            return "plans_failed", str(error)
        return "plans_used", ""
