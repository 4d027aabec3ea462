"""Loading a controller's PolicyUpdates off its loop thread: verify, deserialize, warm up.

A PolicyUpdate takes far longer to load than a control period, so the subscription callback only
queues it; the loader thread checks the dimensions and the checksum, deserializes the actor, runs
it once (the first call allocates) and hands an :class:`ActingRequest` to ``accept``. A rejected
update goes to ``reject`` with the error. A latched update delivered again (rediscovery: same
version and stamp) is loaded once, so it cannot start a second acting phase.

torch is imported on the first policy only, and limited to one thread: the actor is a small MLP
evaluated on one observation, where a thread pool adds only jitter. torch's import leaves ~10^5
young objects: a full collection traversing them would hold the GIL for tens of ms, so after the
first actor the loader freezes them (``gc.freeze`` is O(1), no traversal unlike ``gc.collect``).
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable

import numpy as np

from mdemorl_msgs.msg import PolicyUpdate
from mdemorl_ros.protocol import ActingRequest


class PolicyLoader:
    """The loader thread: ``put`` a PolicyUpdate, ``start`` once, ``stop`` at shutdown.

    ``check_dims(observation_dim, action_dim)`` raises ValueError for an actor that does not fit
    the controller's task; it runs on the message's and on the deserialized actor's sizes.
    """

    def __init__(
        self,
        check_dims: Callable[[int, int], None],
        deterministic: bool,
        accept: Callable[[ActingRequest, PolicyUpdate], None],
        reject: Callable[[PolicyUpdate, ValueError], None],
    ) -> None:
        self.check_dims = check_dims
        self.deterministic = deterministic
        self.accept = accept
        self.reject = reject
        self.torch_frozen = False
        self.queue: queue.Queue[PolicyUpdate | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="policy-loader", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, msg: PolicyUpdate) -> None:
        self.queue.put(msg)

    def stop(self, timeout: float = 5.0) -> None:
        self.queue.put(None)
        self.thread.join(timeout=timeout)

    def _run(self) -> None:
        last: tuple[int, int, int] | None = None
        while (msg := self.queue.get()) is not None:
            key = (int(msg.version), int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))
            if key != last:
                self.load(msg)
                last = key

    def load(self, msg: PolicyUpdate) -> None:
        """Verify, load and warm up one actor (loader thread), then ``accept`` or ``reject``."""
        import torch

        from mdemorl_core.policy_io import deserialize_actor

        torch.set_num_threads(1)

        try:
            self.check_dims(msg.observation_dim, msg.action_dim)
            actor = deserialize_actor(bytes(msg.weights), expected_sha256=msg.checksum)
            self.check_dims(actor.obs_dim, actor.act_dim)
        except ValueError as error:
            self.reject(msg, error)
            return
        deterministic = self.deterministic

        def policy(obs: np.ndarray) -> np.ndarray:
            return actor.act_numpy(obs, deterministic=deterministic)

        policy(np.zeros(actor.obs_dim, dtype=np.float32))  # first call allocates; not in a tick
        if not self.torch_frozen:
            gc.freeze()
            self.torch_frozen = True
        request = ActingRequest(
            policy, int(msg.version), int(msg.acting_steps), bool(msg.explore_uniform)
        )
        self.accept(request, msg)
