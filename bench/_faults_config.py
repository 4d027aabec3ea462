"""Config fuzzing of `mdemorl train` and `mdemorl retrain` (issue 14's config fault families).

Every key of TrainConfig (found by walking the dataclasses, so a new key is fuzzed without
touching this file) gets wrong types, empty values, zero, negative, NaN, ±inf and huge numbers
through ``--set``, a few through a ``--config`` file, and the dedicated flags of both commands get
bad values too. Each injection calls ``cli.main`` in-process; the training itself is replaced by
a stub that only builds the environment, so an accepted value is seen without training. Outcomes:

- ``exit2_naming_key``: exit 2 and the message names the key or flag (the wanted outcome);
- ``exit2_not_naming_key``, ``exit_other``: rejected, but unclear or with the wrong code;
- ``traceback``: an exception escaped ``main`` (a user would see a traceback);
- ``accepted``: the command went on to train with a value that no range admits (wrong type, NaN,
  inf, huge, ...): misbehaving;
- ``accepted_valid``: it went on to train with a value the key's declared limits admit (zero,
  negative and the lower bound may be valid); with ``quick=False`` each such value really trains
  one smoke epoch instead (``trained``, or ``train_`` + the outcome above).

A key whose numeric field declares no limits is reported as misbehaving (``no_declared_limits``).
A few injections also run as real subprocesses to check the process exit code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import subprocess
import sys
import tempfile
import time
import traceback
import typing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from mdemorl_core import cli
from mdemorl_core.config import BUNDLED_CONFIG_DIR, TrainConfig, apply_overrides

REJECT, VALID = "reject", "valid"  # what a case expects: must be rejected / may be valid
BASE_TRAIN = ["train", "--env", "Pendulum-v1", "--config", "smoke", "--epochs", "1"]
HUGE_INT, HUGE_FLOAT = str(10**30), "1e300"
MSG_FILE = Path(__file__).resolve().parents[1] / "src" / "mdemorl_msgs" / "msg" / "Transition.msg"


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key: dotted path, type hint, the dataclass that owns it, its default."""

    path: str
    hint: Any
    owner: type
    name: str
    default: Any


@dataclasses.dataclass(frozen=True)
class Case:
    family: str
    command: str
    key: str  # the dotted key or flag the message must name
    argv: tuple[str, ...]
    expect: str  # REJECT or VALID


def config_keys(cls: type = TrainConfig, prefix: str = "") -> list[Key]:
    """Every leaf key of the config dataclass ``cls`` (nested dataclasses walked recursively)."""
    keys: list[Key] = []
    hints = typing.get_type_hints(cls)
    instance = cls()
    for field in dataclasses.fields(cls):
        path = f"{prefix}{field.name}"
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            keys.extend(config_keys(hint, f"{path}."))
        else:
            keys.append(Key(path, hint, cls, field.name, getattr(instance, field.name)))
    return keys


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(the non-None type of ``hint``, whether None is allowed)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if type(None) in typing.get_args(hint) and len(args) == 1:
        return args[0], True
    return hint, False


def _limits(key: Key) -> Any:
    return getattr(key.owner, "LIMITS", {}).get(key.name)


def _numeric_values(key: Key, base: Any) -> Iterator[tuple[str, str, str]]:
    """(family, YAML text, expectation) for an int or float key."""
    limits = _limits(key)
    huge = HUGE_INT if base is int else HUGE_FLOAT
    yield from (("wrong_type", text, REJECT) for text in ("abc", "[1, 2]", "{a: 1}", "true"))
    if base is int:
        yield "wrong_type", "1.5", REJECT
    yield "empty", "", REJECT
    yield from (("nan", text, REJECT) for text in ("nan", ".nan"))
    yield from (("inf", text, REJECT) for text in (".inf", "-.inf", "1e999"))
    yield from (("huge", text, REJECT) for text in (huge, f"-{huge}"))
    for family, number in (("zero", 0), ("negative", -1)):
        text = str(number) if base is int else f"{float(number)}"
        yield family, text, VALID if limits is not None and limits.contains(number) else REJECT
    if limits is not None:
        low = int(limits.low) if base is int else limits.low
        if not limits.low_open and low != 0:  # a bound of 0 is the "zero" case already
            yield "low_bound", str(low), VALID
        below = (
            low - 1 if base is int else (low if limits.low_open else low - 1e-3 * (1 + abs(low)))
        )
        yield "below_low", str(below), REJECT


def _key_values(key: Key) -> Iterator[tuple[str, str, str]]:
    base, optional = _base_type(key.hint)
    if optional:
        yield "null", "null", VALID
    elif base is not dict:
        yield "wrong_type", "null", REJECT
    if base in (int, float):
        yield from _numeric_values(key, base)
    elif base is bool:
        yield from (("wrong_type", text, REJECT) for text in ("maybe", "2", "[true]"))
        yield "empty", "", REJECT
    elif base is str:
        yield from (("wrong_type", text, REJECT) for text in ("5", "[a]", "{a: 1}"))
        yield "empty", "", VALID if key.default == "" else REJECT
        yield "unknown_choice", "no-such-value", REJECT
    elif typing.get_origin(base) is dict or base is dict:
        yield from (("wrong_type", text, REJECT) for text in ("5", "abc", "[1]"))
        yield "empty", "", REJECT


def _base_without(key: str) -> tuple[str, ...]:
    """BASE_TRAIN without the dedicated flag that would set ``key`` (flags win over --set)."""
    flag = FLAG_OF_KEY.get(key)
    if flag is None:
        return tuple(BASE_TRAIN)
    at = BASE_TRAIN.index(flag)
    return (*BASE_TRAIN[:at], *BASE_TRAIN[at + 2 :])


FLAG_OF_KEY = {"env_id": "--env", "epochs": "--epochs"}


def _type_checkable(key: Key, family: str) -> bool:
    """Whether a value of ``family`` is wrong by its type alone (no env or run needed to tell)."""
    if family == "empty":
        return _base_type(key.hint)[0] is not str
    return family in ("wrong_type", "nan", "inf", "huge")


def _set_cases(keys: list[Key], out: Path) -> Iterator[Case]:
    runs = (out / f"set{n}" for n in itertools.count())  # a fresh run directory per case
    for key in keys:
        for family, text, expect in _key_values(key):
            given = ("--out", str(next(runs)), "--set", f"{key.path}={text}")
            yield Case(family, "train --set", key.path, (*_base_without(key.path), *given), expect)
            if key.path in FLAG_OF_KEY and _type_checkable(key, family):
                # The flag replaces the value, but a bad value given is still an error.
                given = ("--out", str(next(runs)), "--set", f"{key.path}={text}")
                yield Case(
                    "overridden_by_flag", "train --set", key.path, (*BASE_TRAIN, *given), expect
                )
        if typing.get_origin(_base_type(key.hint)[0]) is dict:
            given = ("--out", str(next(runs)), "--set", f"{key.path}.no_such_kwarg=1")
            yield Case("unknown_key", "train --set", key.path, (*BASE_TRAIN, *given), REJECT)


def _file_cases(keys: list[Key], out: Path) -> Iterator[Case]:
    """The same values through a --config YAML file (the other way a value reaches the config)."""
    numbers = itertools.count()
    for key in keys:
        for family, text, expect in _key_values(key):
            if family not in ("nan", "wrong_type", "empty"):
                continue
            number = next(numbers)
            path = out / f"file{number}.yaml"
            path.write_text(yaml.safe_dump(apply_overrides({}, [f"{key.path}={text}"])))
            argv = ("train", "--env", "Pendulum-v1", "--epochs", "1", "--config", str(path))
            given = ("--out", str(out / f"file_run{number}"))
            yield Case(family, "train --config", key.path, (*argv, *given), expect)


def _flag_cases(out: Path, bag: Path) -> Iterator[Case]:
    """Bad values of the dedicated flags of `train` and `retrain`, one flag at a time."""
    bad_yaml, not_mapping, empty_dir = out / "bad.yaml", out / "list.yaml", out / "empty_dir"
    bad_yaml.write_text("a: [1, 2\n")
    not_mapping.write_text("- 1\n- 2\n")
    empty_dir.mkdir(exist_ok=True)
    (out / "not_a_bag.mcap").write_text("hello")
    files = [str(out / "missing.yaml"), str(empty_dir), str(bad_yaml), str(not_mapping)]
    train_flags = {
        "--epochs": ["0", "-1", "abc", "", HUGE_INT],
        "--seed": ["-1", str(2**32), "abc", "", HUGE_INT],
        "--device": ["", "tpu", "cuda:x", "cuda:99"],
        "--env": ["", "NoSuchEnv-v0", "no_such_module:Env-v0"],
        "--algo": ["", "ppo"],
        "--config": ["", *files],
        "--stop-after-epoch": ["0", "-1", "abc"],
    }
    retrain_flags = {
        "--seed": ["-1", str(2**32), "abc", HUGE_INT],
        "--algo": ["", "ppo"],
        "--env": ["", "NoSuchEnv-v0", "Leg2R-v0"],  # Leg2R: the bag's dims do not fit
        "--config": files,
        "--init": [str(out / "missing_run"), str(empty_dir)],
        "--bag": [str(out / "missing_bag"), str(empty_dir), str(out / "not_a_bag.mcap")],
        "--set": ["agent.sac.batch_size=0", "epochs=", "steps_per_epoch=nan", "no_equals"],
    }
    smoke = str(BUNDLED_CONFIG_DIR / "smoke.yaml")
    bases = {
        "train": {"--env": "Pendulum-v1", "--epochs": "1", "--config": "smoke"},
        "retrain": {"--bag": str(bag), "--env": "Pendulum-v1", "--config": smoke},
    }
    runs = (out / f"flag_run{n}" for n in itertools.count())
    for command, flags in (("train", train_flags), ("retrain", retrain_flags)):
        for flag, values in flags.items():
            for value in values:
                given = {**bases[command], flag: value}
                if flag == "--init":
                    del given["--config"]  # --init brings the run's own config
                argv = [command, "--out", str(next(runs))]
                argv += [item for pair in given.items() for item in pair]
                key = value.partition("=")[0] if flag == "--set" else flag
                if value == "Leg2R-v0":
                    key = "bag"  # the bag's dimensions do not fit that task: the bag is named
                yield Case(f"{command}_flags", command, key, tuple(argv), REJECT)


class _Accepted(Exception):  # noqa: N818  (a signal, not an error)
    """Raised by the training stubs: the command got as far as training."""


def _train_stub(config: Any, *args: Any, **kwargs: Any) -> Any:
    from mdemorl_core.envs_util import make_env

    # What the real loop does first; an env that cannot be built must still be a clean exit 2.
    make_env(config.env_id, config.seed, config.max_episode_steps, **config.env_kwargs).close()
    raise _Accepted


def _trainer_stub(*args: Any, **kwargs: Any) -> Any:
    # retrain_from_bags builds its trainer after reading and checking every bag.
    raise _Accepted


@contextlib.contextmanager
def _stubbed_training() -> Iterator[None]:
    from mdemorl_core.training import loop, online

    with (
        mock.patch.object(loop, "train", _train_stub),
        mock.patch.object(online, "OnlineTrainer", _trainer_stub),
    ):
        yield


def _innermost(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {error}{where}"[:300]


def invoke(argv: tuple[str, ...]) -> tuple[str, int | None, str]:
    """Run ``cli.main(argv)`` in-process: (outcome kind, exit code, stderr or error text)."""
    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            code: int | None = cli.main(list(argv))
    except _Accepted:
        return "accepted", None, ""
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception as error:  # noqa: BLE001  (any escape is what is being counted)
        return "traceback", None, _innermost(error)
    text = stderr.getvalue()
    if "Traceback" in text:
        return "traceback", code, text[-300:]
    return ("trained" if code == 0 else "exited"), code, text.strip()[-300:]


def classify(case: Case, kind: str, code: int | None, text: str) -> str:
    if kind != "exited":
        return kind
    if code != 2:
        return "exit_other"
    named = case.key in text or case.key.lstrip("-") in text
    return "exit2_naming_key" if named else "exit2_not_naming_key"


def _misbehaves(case: Case, outcome: str) -> bool:
    if outcome.removeprefix("train_") in ("traceback", "exit_other", "exit2_not_naming_key"):
        return True
    return outcome == "accepted"  # a value no declared range or choice admits


def _subprocess_check(argv: tuple[str, ...]) -> dict[str, Any]:
    command = [
        sys.executable,
        "-c",
        "import sys; from mdemorl_core.cli import main; sys.exit(main(sys.argv[1:]))",
        *argv,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    return {
        "argv": " ".join(argv[:1] + argv[-2:]),
        "exit_code": completed.returncode,
        "traceback": "Traceback" in completed.stderr,
        "stderr_tail": completed.stderr.strip()[-200:],
    }


def run(quick: bool) -> dict[str, Any]:
    """Fuzz every config key and flag; see the module docstring. ``quick`` skips the real
    one-epoch training of accepted in-range values and runs one subprocess check instead of three.
    """
    started = time.perf_counter()
    keys = config_keys()
    families: dict[str, Counter[str]] = {}
    misbehaving: list[dict[str, Any]] = []
    unlimited = [
        k.path for k in keys if _base_type(k.hint)[0] in (int, float) and _limits(k) is None
    ]
    with tempfile.TemporaryDirectory(prefix="faults_config_") as tmp:
        out = Path(tmp)
        bag = out / "bag"
        _write_pendulum_bag(bag)
        cases = [*_set_cases(keys, out), *_file_cases(keys, out), *_flag_cases(out, bag)]
        accepted_valid: list[Case] = []
        with _stubbed_training():
            results = [(case, invoke(case.argv)) for case in cases]
        for case, (kind, code, text) in results:
            outcome = classify(case, kind, code, text)
            if outcome == "accepted" and case.expect == VALID:
                outcome = "accepted_valid"
            if outcome == "accepted_valid" and not quick:
                kind, code, text = invoke(case.argv)
                outcome = (
                    "trained" if kind == "trained" else f"train_{classify(case, kind, code, text)}"
                )
                accepted_valid.append(case)
            families.setdefault(case.family, Counter())[outcome] += 1
            if _misbehaves(case, outcome):
                misbehaving.append(_report(case, outcome, text))
        picks = _SUBPROCESS_PICKS[:1] if quick else _SUBPROCESS_PICKS
        checks = [
            _subprocess_check((*BASE_TRAIN, "--out", str(out / f"sub{n}"), *extra))
            for n, extra in enumerate(picks)
        ]
    for path in unlimited:
        misbehaving.append({"family": "limits", "key": path, "outcome": "no_declared_limits"})
    return {
        "suite": "config",
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 2),
        "keys_fuzzed": len(keys),
        "keys_without_limits": unlimited,
        "injections": len(cases),
        "families": {
            name: {"injections": sum(counts.values()), "outcomes": dict(sorted(counts.items()))}
            for name, counts in sorted(families.items())
        },
        "trained_after_accepting": len(accepted_valid),
        "subprocess_checks": checks,
        "misbehaving": misbehaving
        + [
            {"family": "subprocess", "outcome": f"exit_{c['exit_code']}", **c}
            for c in checks
            if c["exit_code"] != 2 or c["traceback"]
        ],
    }


_SUBPROCESS_PICKS: list[tuple[str, ...]] = [
    ("--set", "agent.sac.batch_size=0"),
    ("--set", "epochs="),
    ("--set", "agent.model.learning_rate=nan"),
]


def _report(case: Case, outcome: str, text: str) -> dict[str, Any]:
    return {
        "family": case.family,
        "command": case.command,
        "key": case.key,
        "argv_tail": " ".join(case.argv[-2:]),
        "expected": case.expect,
        "outcome": outcome,
        "detail": text,
    }


def _write_pendulum_bag(path: Path, rows: int = 64) -> None:
    """A small valid bag of Pendulum-v1-sized transitions (obs 3, act 1)."""
    import numpy as np

    from mdemorl_core.bags import TransitionArrays, write_transitions

    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (rows + 1, 3)).astype(np.float32)
    data = TransitionArrays(
        obs=obs[:-1],
        act=rng.uniform(-1, 1, (rows, 1)).astype(np.float32),
        rew=rng.normal(size=rows).astype(np.float32),
        next_obs=obs[1:],
        terminated=np.zeros(rows, bool),
        truncated=(np.arange(rows) % 32 == 31),
        episode=(np.arange(rows) // 32).astype(np.uint32),
        step=(np.arange(rows) % 32).astype(np.uint32),
        policy_version=np.zeros(rows, np.uint32),
    )
    write_transitions(path, data, MSG_FILE.read_text())
