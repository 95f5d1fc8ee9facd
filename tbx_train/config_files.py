"""Config files: the TOML presets shipped in `tbx_train/presets/`, a run's `--config` file,
`--set key=value` overrides, and the resolved config written back as TOML and JSON.

Resolution order, each layer replacing fields of the one before: the dataclass defaults (the
official recipe) -> the preset (`--preset`, else the config file's `base`, else `tbx11k`; a preset
may itself name a `base`) -> the `--config` file -> the command's own options (`--epochs` ...) ->
`--set` in the order given. Keys are `section.field` (`train.lr`), or the bare field name when
only one section has it (`lr`). Unknown keys fail listing close matches; bad values name the type
or the allowed values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tbx_train.config import CHOICES, SECTIONS, ConfigError, RunConfig

PRESET_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_PRESET = "tbx11k"
_META_KEYS = ("base", "description")


def preset_names() -> list[str]:
    """The presets shipped with the package (file names without `.toml`), sorted."""
    return sorted(path.stem for path in PRESET_DIR.glob("*.toml"))


def preset_description(name: str) -> str:
    """The preset file's `description` line."""
    return str(_read_toml(_preset_path(name), f"preset {name!r}").get("description", ""))


def all_keys() -> list[str]:
    """Every configurable key as `section.field`, in dataclass order."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _preset_path(name: str) -> Path:
    if name not in preset_names():
        raise ConfigError(f"unknown run preset {name!r}; choose one of {preset_names()}")
    return PRESET_DIR / f"{name}.toml"


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"{what}: {path} does not exist") from error
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{what}: {path} is not valid TOML ({error})") from error


def canonical_key(key: str, source: str) -> str:
    """`section.field` for `key` (bare names allowed when unique); ConfigError with the close
    matches otherwise."""
    keys = all_keys()
    if key in keys:
        return key
    owners = [k for k in keys if k.split(".", 1)[1] == key]
    if len(owners) == 1:
        return owners[0]
    if len(owners) > 1:
        raise ConfigError(f"{source}: {key!r} is ambiguous; write one of {owners}")
    names = keys + [k.split(".", 1)[1] for k in keys]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see `tbx-train config show`"
    raise ConfigError(f"{source}: unknown config key {key!r}; {hint}")


def _flatten(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A TOML document's fields as {section.field: value} (meta keys left out)."""
    flat: dict[str, Any] = {}
    for name, value in document.items():
        if name in _META_KEYS:
            continue
        if name in SECTIONS and isinstance(value, Mapping):
            for field, item in value.items():
                flat[canonical_key(f"{name}.{field}", source)] = item
        else:
            flat[canonical_key(name, source)] = value
    return flat


def _hints() -> dict[str, Any]:
    return {
        f"{section}.{name}": hint
        for section, cls in SECTIONS.items()
        for name, hint in typing.get_type_hints(cls).items()
    }


def coerce(key: str, value: Any, source: str) -> Any:
    """`value` converted to the field's type; ConfigError naming the expected type otherwise."""
    hint = _hints()[key]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    converted = _convert(value, hint)
    if converted is _BAD:
        expected = _TYPE_NAMES.get(hint, str(hint)) + (" or none" if optional else "")
        raise ConfigError(f"{source}: {key} expects {expected}, got {value!r}")
    if key in CHOICES and converted not in CHOICES[key]:
        raise ConfigError(f"{source}: {key}={converted!r}; choose one of {list(CHOICES[key])}")
    return converted


_BAD = object()
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    tuple[int, ...]: "a list of integers ([480, 512] or 480,512)",
}


def _convert(value: Any, hint: Any) -> Any:
    if hint is bool:
        return value if isinstance(value, bool) else _BAD
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else _BAD
    if hint is str:
        return value if isinstance(value, str) else _BAD
    if typing.get_origin(hint) is tuple:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, str):  # `--set data.train_sizes=480,512`
            parts = [p.strip() for p in value.split(",") if p.strip()]
            value = [int(p) for p in parts] if all(p.isdigit() for p in parts) else _BAD
        ok = isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        return tuple(value) if ok else _BAD
    return _BAD


def parse_set(text: str) -> tuple[str, Any]:
    """`key=value` of `--set`: the value is read as TOML (1e-4, true, [1, 2], "s"), else kept
    as the plain string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=50")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return canonical_key(key.strip(), f"--set {text}"), value


def _preset_layers(name: str, seen: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The preset's (source, fields) layers, its `base` chain first."""
    if name in seen:
        raise ConfigError(f"preset {name!r}: circular base chain {' -> '.join((*seen, name))}")
    path = _preset_path(name)
    document = _read_toml(path, f"preset {name!r}")
    layers = _preset_layers(document["base"], (*seen, name)) if "base" in document else []
    return [*layers, (f"preset {name} ({path.name})", _flatten(document, f"preset {name}"))]


def resolve_config(
    preset: str | None = None,
    config_file: Path | None = None,
    options: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> RunConfig:
    """The RunConfig of these layers (see the module doc), validated; raises ConfigError."""
    file_layer: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        document = _read_toml(Path(config_file), "--config")
        preset = preset or document.get("base")
        file_layer = [(f"--config {config_file}", _flatten(document, f"--config {config_file}"))]
    name = preset or DEFAULT_PRESET
    layers = _preset_layers(name) + file_layer
    given = {canonical_key(k, "option"): v for k, v in (options or {}).items() if v is not None}
    layers.append(("command-line option", given))
    for text in sets:
        key, value = parse_set(text)
        layers.append((f"--set {text}", {key: value}))
    values: dict[str, Any] = {}
    for source, layer in layers:
        values.update({key: coerce(key, value, source) for key, value in layer.items()})
    return build_config(values, name)


def build_config(values: Mapping[str, Any], preset: str) -> RunConfig:
    """Dataclasses from {section.field: value} (missing fields keep their defaults)."""
    parts = {
        section: cls(
            **{k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(section + ".")}
        )
        for section, cls in SECTIONS.items()
    }
    config = RunConfig(preset=preset, **parts)
    config.validate()
    return config


def run_preset(name: str) -> RunConfig:
    """The named preset alone (no file, no overrides)."""
    return resolve_config(preset=name)


def config_dict(config: RunConfig) -> dict[str, Any]:
    """{preset, model, data, train} with lists for tuples: JSON- and checkpoint-ready."""
    plain = dataclasses.asdict(config)
    return json.loads(json.dumps(plain))


def to_toml(config: RunConfig) -> str:
    """The config as a TOML file that `--config` reads back (unset fields as comments)."""
    plain = config_dict(config)
    lines = [f"base = {json.dumps(config.preset)}"]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        for name, value in plain[section].items():
            lines.append(f"# {name} unset" if value is None else f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)  # ints and strings (JSON escapes are TOML basic-string escapes)


def write_resolved(config: RunConfig, output_dir: Path) -> list[Path]:
    """`config.toml` (reusable with --config) and `config_resolved.json` in the run folder."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    toml_path, json_path = output_dir / "config.toml", output_dir / "config_resolved.json"
    toml_path.write_text(to_toml(config), encoding="utf-8")
    json_path.write_text(json.dumps(config_dict(config), indent=2) + "\n", encoding="utf-8")
    return [toml_path, json_path]
