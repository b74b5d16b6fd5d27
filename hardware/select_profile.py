#!/usr/bin/env python3
"""Put one board, mic, speaker and camera profile together.

A selection gives what a Raspberry Pi needs for that hardware: the lines for the ``[all]``
section of ``/boot/firmware/config.txt``, an ALSA config, apt packages, the GPIO pins the
hardware takes, and the ``agent.toml`` settings (audio and camera) it implies. The profiles
are the TOML files beside this script (``boards/``, ``mics/``, ``speakers/``, ``cameras/``
and ``profiles.toml``); see ``WIRING.md``.

Three ways in, one implementation:

* on a Pi, by hand::

      python3 hardware/select_profile.py --board pi5 --mic inmp441 \\
          --speaker max98357a --camera camera-module-3

* from Ansible: ``ansible/roles/edge_agent/filter_plugins/edge_agent_hardware.py`` is a
  symlink to this file, so the role's filters ``edge_agent_hardware``, ``edge_agent_toml``
  and ``edge_agent_pin_conflicts`` are the functions below;
* from Python: `select_hardware`, `to_toml`, `pin_conflicts`.

Only the standard library is used (Python 3.11+), so it runs on a fresh Raspberry Pi OS.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

__all__ = [
    "KINDS",
    "HardwareSelection",
    "ProfileError",
    "available_profiles",
    "pin_conflicts",
    "select_hardware",
    "to_toml",
]

KINDS = ("board", "mic", "speaker", "camera")
HARDWARE_DIR = Path(__file__).resolve().parent
ALSA_CONFIG_PATH = "/etc/alsa/conf.d/60-edge-agent.conf"
NO_CAMERA = "none"
# The sections of agent.toml, in the order agent.example.toml has them.
AGENT_SECTIONS = ("live", "reconnect", "audio", "camera", "gpio", "tools", "logging", "health")

_FOLDERS = {"board": "boards", "mic": "mics", "speaker": "speakers", "camera": "cameras"}
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_COMMON_KEYS = {"boot_config", "packages", "pi_packages", "reserved_pins"}
_BOARD_KEYS = {"name", "description", "agent", *_COMMON_KEYS}
_SPEAKER_KEYS = {*_BOARD_KEYS, "i2s_bus", "card", "requires_mic", "alsa", "on_mic_card"}
_MIC_EXTRA_KEYS = {*_COMMON_KEYS, "i2s_bus", "i2s_playback", "card", "driver"}
_CAMERA_EXTRA_KEYS = {*_COMMON_KEYS, "camera"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ProfileError(ValueError):
    """A profile is unknown or malformed, or two profiles cannot be combined."""


@dataclass(frozen=True)
class _Profile:
    """One loaded profile, whatever its kind, in the shape the combiner needs."""

    kind: str
    name: str
    description: str
    source: str
    boot_config: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    pi_packages: tuple[str, ...] = ()
    reserved_pins: tuple[int, ...] = ()
    agent: Mapping[str, Any] = field(default_factory=dict)
    i2s_bus: bool = False
    i2s_playback: bool = False
    card: str | None = None
    requires_mic: str | None = None
    alsa: str = ""
    on_mic_card: Mapping[str, Any] = field(default_factory=dict)
    driver: str | None = None


@dataclass(frozen=True)
class HardwareSelection:
    """What one board + mic + speaker + camera needs; `as_dict` is what Ansible sees."""

    names: dict[str, str]
    descriptions: dict[str, str]
    boot_config: list[str]
    alsa: str
    packages: list[str]
    pi_packages: list[str]
    reserved_pins: dict[int, str]
    drivers: list[str]
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain data (pin numbers as string keys, so it survives YAML and JSON)."""
        return {
            "names": dict(self.names),
            "descriptions": dict(self.descriptions),
            "boot_config": list(self.boot_config),
            "alsa": self.alsa,
            "packages": list(self.packages),
            "pi_packages": list(self.pi_packages),
            "reserved_pins": {str(pin): by for pin, by in self.reserved_pins.items()},
            "drivers": list(self.drivers),
            "settings": self.settings,
        }


def available_profiles(hardware_dir: str | Path = HARDWARE_DIR) -> dict[str, list[str]]:
    """The profile names of each kind that can be selected."""
    root = Path(hardware_dir)
    extras = _read_toml(root / "profiles.toml")
    found: dict[str, list[str]] = {}
    for kind in KINDS:
        names = {p.stem for p in (root / _FOLDERS[kind]).glob("*.toml")}
        if kind in ("mic", "camera"):
            names &= set(extras.get(_FOLDERS[kind], {}))
            if kind == "camera" and NO_CAMERA in extras.get("cameras", {}):
                names.add(NO_CAMERA)
        found[kind] = sorted(names)
    return found


def select_hardware(hardware_dir: str | Path = HARDWARE_DIR, *, board: str, mic: str,
                    speaker: str, camera: str) -> HardwareSelection:
    """Load the four profiles and combine them.

    Raises:
        ProfileError: a name that no profile has (the message lists those that exist), a
            malformed profile file, or hardware that cannot work together (two devices
            that both need the I2S bus, a speaker that belongs to another mic).
    """
    root = Path(hardware_dir)
    extras = _read_toml(root / "profiles.toml")
    chosen = {"board": board, "mic": mic, "speaker": speaker, "camera": camera}
    for kind, name in chosen.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ProfileError(f"{kind} profile: not a profile name: {name!r}")
    b = _load_board(root, board)
    m = _load_mic(root, mic, extras)
    s = _load_speaker(root, speaker)
    c = _load_camera(root, camera, extras)
    return _combine(b, m, s, c, root)


def _combine(board: _Profile, mic: _Profile, speaker: _Profile, camera: _Profile,
             root: Path) -> HardwareSelection:
    if speaker.requires_mic is not None and speaker.requires_mic != mic.name:
        raise ProfileError(f"speaker {speaker.name} is the output of the {speaker.requires_mic} "
                           f"HAT: it needs mic profile {speaker.requires_mic}, not {mic.name}")
    shares_mic_card = speaker.i2s_bus and mic.i2s_bus
    if shares_mic_card and not mic.i2s_playback:
        raise ProfileError(f"mic {mic.name} takes the I2S bus and cannot drive the {speaker.name} "
                           "amplifier: choose a speaker that plays through the mic's own card or a "
                           "USB speaker")
    speaker_boot = () if shares_mic_card else speaker.boot_config
    card = mic.card if shares_mic_card else speaker.card
    alsa = ""
    if speaker.alsa.strip():
        if card is None:
            raise ProfileError(f"{speaker.source}: alsa uses $card but the profile names no card")
        try:
            alsa = Template(speaker.alsa).substitute(card=card).strip() + "\n"
        except (KeyError, ValueError) as exc:
            raise ProfileError(f"{speaker.source}: alsa: bad placeholder {exc}") from None
    profiles = (board, mic, speaker, camera)
    settings = _deep_merge(board.agent, mic.agent, speaker.agent,
                           speaker.on_mic_card if shares_mic_card else {}, camera.agent)
    reserved: dict[int, str] = {}
    for p in profiles:
        for pin in p.reserved_pins:
            reserved.setdefault(pin, f"{p.kind} {p.name}")
    return HardwareSelection(
        names={p.kind: p.name for p in profiles},
        descriptions={p.kind: p.description for p in profiles},
        boot_config=_unique([*board.boot_config, *mic.boot_config, *speaker_boot,
                             *camera.boot_config]),
        alsa=alsa,
        packages=_unique(pkg for p in profiles for pkg in p.packages),
        pi_packages=_unique(pkg for p in profiles for pkg in p.pi_packages),
        reserved_pins=dict(sorted(reserved.items())),
        drivers=[f"{p.kind} {p.name}: {p.driver}" for p in profiles if p.driver],
        settings=settings,
    )


# -- loading ----------------------------------------------------------------------------------


def _load_board(root: Path, name: str) -> _Profile:
    path = _profile_file(root, "board", name)
    data = _read_toml(path)
    _check_keys(data, _BOARD_KEYS, path)
    return _Profile(kind="board", name=name, description=_text(data, "description", path),
                    source=str(path), agent=_table(data, "agent", path), **_common(data, path))


def _load_speaker(root: Path, name: str) -> _Profile:
    path = _profile_file(root, "speaker", name)
    data = _read_toml(path)
    _check_keys(data, _SPEAKER_KEYS, path)
    on_mic_card = _table(data, "on_mic_card", path)
    _check_keys(on_mic_card, {"agent"}, path, "on_mic_card.")
    return _Profile(
        kind="speaker", name=name, description=_text(data, "description", path),
        source=str(path), agent=_table(data, "agent", path),
        i2s_bus=_flag(data, "i2s_bus", path), card=_optional_text(data, "card", path),
        requires_mic=_optional_text(data, "requires_mic", path),
        alsa=_optional_text(data, "alsa", path) or "",
        on_mic_card=_table(on_mic_card, "agent", path), **_common(data, path))


def _load_mic(root: Path, name: str, extras: Mapping[str, Any]) -> _Profile:
    path = _profile_file(root, "mic", name)
    data = _read_toml(path)
    extra, where = _extra(extras, "mics", name, root)
    _check_keys(extra, _MIC_EXTRA_KEYS, where)
    return _Profile(
        kind="mic", name=name, description=str(data.get("description", name)), source=str(path),
        agent={"audio": {"mic": name}}, i2s_bus=_flag(extra, "i2s_bus", where),
        i2s_playback=_flag(extra, "i2s_playback", where),
        card=_optional_text(extra, "card", where),
        driver=_optional_text(extra, "driver", where), **_common(extra, where))


def _load_camera(root: Path, name: str, extras: Mapping[str, Any]) -> _Profile:
    extra, where = _extra(extras, "cameras", name, root)
    _check_keys(extra, _CAMERA_EXTRA_KEYS, where)
    path = root / "cameras" / f"{name}.toml"
    if path.is_file():
        data = _read_toml(path)
        table, description, source = _table(data, "camera", path), str(
            data.get("description", name)), str(path)
    elif "camera" in extra:
        table, description, source = _table(extra, "camera", where), "No camera", where
    else:
        raise ProfileError(f"no camera profile {name!r}; there are: "
                           + ", ".join(available_profiles(root)["camera"]))
    return _Profile(kind="camera", name=name, description=description, source=source,
                    agent={"camera": dict(table)}, **_common(extra, where))


def _profile_file(root: Path, kind: str, name: str) -> Path:
    path = root / _FOLDERS[kind] / f"{name}.toml"
    if not path.is_file():
        names = ", ".join(available_profiles(root)[kind])
        raise ProfileError(f"no {kind} profile {name!r}; there are: {names}")
    return path


def _extra(extras: Mapping[str, Any], section: str, name: str,
           root: Path) -> tuple[Mapping[str, Any], str]:
    table = extras.get(section, {}).get(name)
    where = f"{root / 'profiles.toml'} [{section}.{name}]"
    if not isinstance(table, Mapping):
        kind = "mic" if section == "mics" else "camera"
        names = ", ".join(available_profiles(root)[kind])
        raise ProfileError(f"no {kind} profile {name!r} for provisioning (profiles.toml has no "
                           f"[{section}.{name}]); there are: {names}")
    return table, where


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: object,
                prefix: str = "") -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ProfileError(f"{where}: unknown key {prefix}{unknown[0]} "
                           f"(known: {', '.join(sorted(allowed))})")


def _common(data: Mapping[str, Any], where: object) -> dict[str, Any]:
    pins = data.get("reserved_pins", [])
    if not isinstance(pins, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 27 for p in pins):
        raise ProfileError(f"{where}: reserved_pins must be a list of BCM GPIO numbers 0..27")
    return {"boot_config": _lines(data, "boot_config", where),
            "packages": _lines(data, "packages", where),
            "pi_packages": _lines(data, "pi_packages", where),
            "reserved_pins": tuple(pins)}


def _lines(data: Mapping[str, Any], key: str, where: object) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(
            isinstance(v, str) and v.strip() and "\n" not in v for v in value):
        raise ProfileError(f"{where}: {key} must be a list of one-line strings")
    return tuple(v.strip() for v in value)


def _table(data: Mapping[str, Any], key: str, where: object) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ProfileError(f"{where}: {key} must be a table")
    return value


def _text(data: Mapping[str, Any], key: str, where: object) -> str:
    value = _optional_text(data, key, where)
    if value is None:
        raise ProfileError(f"{where}: {key} is required")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: object) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ProfileError(f"{where}: {key} must be a string")
    return value


def _flag(data: Mapping[str, Any], key: str, where: object) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ProfileError(f"{where}: {key} must be true or false")
    return value


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win; tables merge key by key, everything else is replaced."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            old = merged.get(key)
            if isinstance(old, Mapping) and isinstance(value, Mapping):
                merged[key] = _deep_merge(old, value)
            elif isinstance(value, Mapping):
                merged[key] = _deep_merge(value)
            else:
                merged[key] = value
    return merged


# -- GPIO pins --------------------------------------------------------------------------------


def pin_conflicts(settings: Mapping[str, Any], selection: Mapping[str, Any]) -> list[str]:
    """Pins that the config drives (tools, status LEDs and buttons) but the hardware takes.

    ``selection`` is `HardwareSelection.as_dict()` (or the selection itself).
    """
    if isinstance(selection, HardwareSelection):
        selection = selection.as_dict()
    reserved = {int(pin): by for pin, by in selection.get("reserved_pins", {}).items()}
    problems = []
    for pin, user in _used_pins(settings):
        if pin in reserved:
            problems.append(f"{user} uses GPIO{pin}, which the {reserved[pin]} profile takes "
                            "(see hardware/WIRING.md)")
    return problems


def _used_pins(settings: Mapping[str, Any]) -> list[tuple[int, str]]:
    used: list[tuple[int, str]] = []
    tools = settings.get("tools") or []
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, Mapping):
            continue
        label = f"tools[{i}] ({tool.get('name', '?')})"
        used += [(pin, f"{label} pin") for pin in _pins(tool.get("pin"))]
        used += [(pin, f"{label} pins") for pin in _pins(tool.get("pins"))]
    gpio = settings.get("gpio")
    status = gpio.get("status") if isinstance(gpio, Mapping) else None
    if isinstance(status, Mapping):
        for key in ("leds", "mute_button", "push_to_talk_button"):
            used += [(pin, f"gpio.status.{key}") for pin in _pins(status.get(key))]
    return used


def _pins(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


# -- TOML -------------------------------------------------------------------------------------


def to_toml(doc: Mapping[str, Any], order: Iterable[str] = AGENT_SECTIONS) -> str:
    """Write a dict as TOML that ``tomllib`` reads back equal (None values are left out).

    Top-level keys named in ``order`` come first, in that order (by default the sections of
    agent.toml as agent.example.toml has them). Tables become ``[a.b]`` sections, lists of
    tables ``[[tools]]``; tables inside those and inside arrays become inline tables.
    Multi-line strings are written as ``'''`` blocks.
    """
    rank = {key: i for i, key in enumerate(order)}
    ordered = dict(sorted(doc.items(), key=lambda item: rank.get(str(item[0]), len(rank))))
    out: list[str] = []
    _write_table(ordered, (), out)
    return "\n".join(out).strip() + "\n"


def _write_table(table: Mapping[str, Any], path: tuple[str, ...], out: list[str],
                 header: str | None = None) -> None:
    items = [(str(k), v) for k, v in table.items() if v is not None]
    plain = [(k, v) for k, v in items if not _is_table(v) and not _is_table_array(v)]
    if header is not None:
        if out:
            out.append("")
        out.append(header)
    for key, value in plain:
        out.append(f"{_key(key)} = {_value(value)}")
    for key, value in items:
        sub = (*path, key)
        name = ".".join(_key(part) for part in sub)
        if _is_table(value):
            has_plain = any(not _is_table(v) for v in value.values() if v is not None)
            _write_table(value, sub, out, f"[{name}]" if has_plain or not value else None)
        elif _is_table_array(value):
            for element in value:
                if out:
                    out.append("")
                out.append(f"[[{name}]]")
                for k, v in element.items():
                    if v is not None:
                        out.append(f"{_key(str(k))} = {_value(v)}")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    return (isinstance(value, list | tuple) and bool(value)
            and all(isinstance(v, Mapping) for v in value))


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _basic_string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return float.__repr__(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()
                          if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    raise ProfileError(f"cannot write {type(value).__name__} {value!r} as TOML")


_LITERAL_SAFE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]*")


def _string(text: str) -> str:
    if ("\n" in text and "'''" not in text and not text.endswith("'") and "\r" not in text
            and _LITERAL_SAFE.fullmatch(text)):
        return "'''\n" + text + "'''"
    return _basic_string(text)


def _basic_string(text: str) -> str:
    # JSON's escapes are all valid in TOML; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


# -- Ansible filter plugin --------------------------------------------------------------------


def _hardware_filter(hardware_dir: str, board: str, mic: str, speaker: str,
                     camera: str) -> dict[str, Any]:
    return select_hardware(hardware_dir, board=board, mic=mic, speaker=speaker,
                           camera=camera).as_dict()


class FilterModule:
    """The role's filters: ``edge_agent_hardware``, ``edge_agent_toml``,
    ``edge_agent_pin_conflicts``."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Filter names for Ansible."""
        return {"edge_agent_hardware": _hardware_filter, "edge_agent_toml": to_toml,
                "edge_agent_pin_conflicts": pin_conflicts}


# -- command line -----------------------------------------------------------------------------


def _report(selection: HardwareSelection, boot_config_path: str) -> str:
    parts = ["# " + ", ".join(f"{kind} {selection.names[kind]} "
                              f"({selection.descriptions[kind]})" for kind in KINDS)]
    parts.append(f"\n# == {boot_config_path}: append")
    parts.append("\n".join(["[all]", *selection.boot_config]))
    parts.append(f"\n# == {ALSA_CONFIG_PATH}")
    parts.append(selection.alsa.rstrip() or "# (none needed)")
    parts.append("\n# == agent.toml: audio and camera settings")
    parts.append(to_toml(selection.settings).rstrip())
    packages = " ".join([*selection.packages, *selection.pi_packages])
    parts.append("\n# == apt packages for this hardware: " + (packages or "(none)"))
    pins = ", ".join(f"GPIO{pin} ({by})" for pin, by in selection.reserved_pins.items())
    parts.append("# == GPIO pins the hardware takes: " + (pins or "(none)"))
    parts += [f"# == driver to install first: {d}" for d in selection.drivers]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``select_profile.py --board B --mic M --speaker S --camera C [--part P]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hardware-dir", default=str(HARDWARE_DIR))
    parser.add_argument("--list", action="store_true", help="list the profiles of each kind")
    for kind in KINDS:
        parser.add_argument(f"--{kind}", help=f"{kind} profile name")
    parser.add_argument("--part", choices=("all", "boot", "alsa", "toml", "packages"),
                        default="all", help="print one part only")
    parser.add_argument("--boot-config", default="/boot/firmware/config.txt",
                        help="the boot config file named in the report")
    args = parser.parse_args(argv)
    try:
        if args.list:
            for kind, names in available_profiles(args.hardware_dir).items():
                sys.stdout.write(f"{kind}: {' '.join(names)}\n")
            return 0
        missing = [f"--{kind}" for kind in KINDS if getattr(args, kind) is None]
        if missing:
            parser.error("missing " + ", ".join(missing) + " (--list shows the profiles)")
        selection = select_hardware(args.hardware_dir, **{k: getattr(args, k) for k in KINDS})
    except ProfileError as exc:
        sys.stderr.write(f"select_profile: {exc}\n")
        return 2
    parts = {
        "all": _report(selection, args.boot_config),
        "boot": "\n".join(["[all]", *selection.boot_config]) + "\n",
        "alsa": selection.alsa,
        "toml": to_toml(selection.settings),
        "packages": "".join(f"{p}\n" for p in [*selection.packages, *selection.pi_packages]),
    }
    sys.stdout.write(parts[args.part])
    return 0


if __name__ == "__main__":
    sys.exit(main())
