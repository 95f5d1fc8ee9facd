"""`tbx-doctor codes --explain`: every default expectation and threshold, its value, where it
comes from and how sure it is (`learning_defaults.PROVENANCE`), and the profile key that
changes it."""

from __future__ import annotations

from dataclasses import fields

from tbx_doctor.profile.expectations import _TABLES, Profile
from tbx_doctor.profile.learning_defaults import PROVENANCE, LearningThresholds


def _profile_keys() -> dict[str, str]:
    """Profile field -> its TOML key (`[table] key`)."""
    keys = {name: f"[{table}] {key}" for table, sub in _TABLES.items() for key, name in sub.items()}
    keys.update({f.name: f"[learning] {f.name}" for f in fields(LearningThresholds)})
    return keys


def explained_defaults() -> list[dict]:
    """One entry per default that has a provenance: name, TOML key, value, source, confidence."""
    profile = Profile()
    values = {f.name: getattr(profile, f.name) for f in fields(Profile)}
    values.update({f.name: getattr(profile.learning, f.name) for f in fields(LearningThresholds)})
    keys = _profile_keys()
    return [
        {
            "name": name,
            "key": keys.get(name, name),
            "value": list(values[name]) if isinstance(values[name], tuple) else values[name],
            "source": why.source,
            "confidence": why.confidence,
        }
        for name, why in PROVENANCE.items()
    ]


def explain_text() -> str:
    lines = [
        "Defaults (override in a profile TOML; `tbx-doctor check --profile FILE`):",
        "Run A = jobs 39430799 -> 39487851 -> 39543743 (collapsed); run B = 39627174 -> "
        "39685032 -> 39687560 -> 39707249 (learned), ../shared/real-logs/dino_tbx11k.",
    ]
    for entry in explained_defaults():
        lines += [
            "",
            f"{entry['key']} = {entry['value']}",
            f"  from: {entry['source']}",
            f"  sure: {entry['confidence']}",
        ]
    return "\n".join(lines)
