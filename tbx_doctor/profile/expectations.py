"""Expectations a run is checked against (TOML). Defaults come from the incident write-up
(`IMMEDIATE_EXIT_ISSUE.md`) checked against the two real TBX11K runs in ../shared/real-logs;
where each comes from and how sure it is: `profile/learning_defaults.PROVENANCE`, printed by
`tbx-doctor codes --explain`. The write-up's epoch-0 loss 2.0-2.5 warned about the real run
that learned (3.18) and passed the one that collapsed (2.10): the range is now wide.

Example file (every key optional):

    expect = "pretrained"          # fresh | pretrained | resume | any
    [first_epoch]
    loss = [1.5, 3.5]              # expected mean loss of epoch 0
    loss_tolerance = 0.5           # flagged only outside [lo - tol, hi + tol]
    minutes = [10, 40]             # expected duration of one epoch
    ap = [0.02, 0.10]              # expected AP@[.5:.95] after epoch 0 (the floor is checked)
    [job]
    min_minutes = 5                # shorter with no training = immediate exit
    expected_hours = 2             # "the job runs for hours"
    iterations_per_epoch = [1100, 1200]  # N of "[i/N]"; no default (it depends on the data
                                   # and on batch size x GPUs); set, it is a checklist item
    [loss]
    explosion_factor = 5.0         # running loss above this x the previous epoch's mean
    [learning]                     # trajectory findings (keys: LearningThresholds)
    collapse_ratio = 0.35
    [bands]                        # per-epoch reference band (written by `profile learn`)
    epochs = [0, 1]
    loss_low = [2.6, 2.3]
    loss_high = [3.8, 3.3]
    ap_low = [0.027, 0.022]
    ap_high = [0.106, 0.087]
    [severity]
    time-limit = "info"            # override a code's default severity
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from tbx_doctor.errors import DoctorError
from tbx_doctor.findings import CODES
from tbx_doctor.profile.bands import Bands, parse_bands
from tbx_doctor.profile.learning_defaults import LearningThresholds, threshold_names

EXPECT_CHOICES = ("fresh", "pretrained", "resume", "any")


class ProfileError(DoctorError):
    """The profile file is missing, not TOML, or holds unknown keys / bad values."""


@dataclass(frozen=True)
class Profile:
    """Expectations; every number has the unit in its name."""

    expect: str = "any"
    first_epoch_loss: tuple[float, float] = (1.5, 3.5)  # real runs: 3.18 learned, 2.10 not
    loss_tolerance: float = 0.5
    first_epoch_minutes: tuple[float, float] = (10.0, 40.0)
    first_epoch_ap: tuple[float, float] = (0.02, 0.10)  # real runs: 5.3% learned, 1.1% not
    min_job_minutes: float = 5.0
    expected_job_hours: float = 2.0
    loss_explosion_factor: float = 5.0
    iterations_per_epoch: tuple[float, float] | None = None
    severity: dict[str, str] = field(default_factory=dict)
    learning: LearningThresholds = field(default_factory=LearningThresholds)
    bands: Bands | None = None  # per-epoch reference band (`[bands]` or --reference)
    origin: str = "built-in defaults (incident write-up, checked against the real runs)"


_TABLES = {
    "first_epoch": {
        "loss": "first_epoch_loss",
        "loss_tolerance": "loss_tolerance",
        "minutes": "first_epoch_minutes",
        "ap": "first_epoch_ap",
    },
    "job": {
        "min_minutes": "min_job_minutes",
        "expected_hours": "expected_job_hours",
        "iterations_per_epoch": "iterations_per_epoch",
    },
    "loss": {"explosion_factor": "loss_explosion_factor"},
}


def _value(path: Path, key: str, value: object, default: object) -> object:
    if isinstance(default, tuple) or default is None:  # None: a range with no default
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, (int, float)) for v in value)
        )
        if not ok:
            raise ProfileError(f"{path}: {key} must be a list of two numbers, got {value!r}")
        return (float(value[0]), float(value[1]))
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ProfileError(f"{path}: {key} must be a number, got {value!r}")
    return float(value)


def _severities(path: Path, table: object) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: [severity] must be a table of code = level")
    for code, level in table.items():
        if code not in CODES or level not in ("error", "warning", "info"):
            raise ProfileError(f"{path}: [severity] {code} = {level!r}: unknown code or level")
    return dict(table)


def _from_toml(path: Path, data: dict) -> Profile:
    profile, updates = Profile(), {}
    for key, value in data.items():
        if key == "expect":
            updates["expect"] = check_expect(str(value), f"{path}: expect")
        elif key == "severity":
            updates["severity"] = _severities(path, value)
        elif key in ("learning", "bands"):
            updates[key] = _learning(path, value) if key == "learning" else _bands(path, value)
        elif key in _TABLES and isinstance(value, dict):
            for sub, item in value.items():
                if sub not in _TABLES[key]:
                    raise ProfileError(
                        f"{path}: unknown key [{key}] {sub}; known: {', '.join(_TABLES[key])}"
                    )
                name = _TABLES[key][sub]
                updates[name] = _value(path, f"[{key}] {sub}", item, getattr(profile, name))
        else:
            raise ProfileError(
                f"{path}: unknown key {key!r}; known: expect, severity, learning, bands, "
                f"{', '.join(_TABLES)}"
            )
    return replace(profile, origin=str(path), **updates)


def _learning(path: Path, table: object) -> LearningThresholds:
    names = threshold_names()
    if not isinstance(table, dict) or not set(table) <= set(names):
        raise ProfileError(f"{path}: [learning] takes numbers for: {', '.join(names)}")
    values = {k: _value(path, f"[learning] {k}", v, 0.0) for k, v in table.items()}
    return LearningThresholds(**values)


def _bands(path: Path, table: object) -> Bands:
    try:
        return parse_bands(table, str(path))
    except ValueError as exc:
        raise ProfileError(f"{path}: {exc}") from exc


def check_expect(value: str, where: str = "--expect") -> str:
    if value not in EXPECT_CHOICES:
        raise ProfileError(f"{where}: {value!r} is not one of {', '.join(EXPECT_CHOICES)}")
    return value


def load_profile(path: Path | None = None, expect: str | None = None) -> Profile:
    """Defaults, then the TOML file, then --expect (the command line wins)."""
    profile = Profile()
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ProfileError(f"{path}: profile file not found") from exc
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(f"{path}: not a readable TOML profile ({exc})") from exc
        profile = _from_toml(path, data)
    if expect is not None:
        profile = replace(profile, expect=check_expect(expect))
    return profile
