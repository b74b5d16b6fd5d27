"""The token server's files: settings and devices, every problem named, nothing quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.token_server.devices import Devices, secret_hash
from agent.token_server.server import Bucket
from agent.token_server.settings import SettingsError, load_settings


def test_a_minimal_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "token-server.toml"
    path.write_text('api_key_file = "api-key"\ndevices_file = "devices.toml"\nmodel = "m"\n')
    settings = load_settings(path)
    assert settings.api_key_file == tmp_path / "api-key"
    assert (settings.host, settings.port, settings.uses) == ("127.0.0.1", 8471, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("", "api_key_file: is required"),
    ('api_key_file = "k"\ndevices_file = "d"\nmodel = "m"\nport = 0', "port: must be 1-65535"),
    ('api_key_file = "k"\ndevices_file = "d"\nmodel = "m"\nhost = "0.0.0.0"',
     "host: without tls_cert_file the server listens on this machine only"),
    ('api_key_file = "k"\ndevices_file = "d"\nmodel = "m"\ntls_cert_file = "c"',
     "tls_key_file: set both"),
    ('api_key_file = "k"\ndevices_file = "d"\nmodel = "m"\nexpire_s = 5', "expire_s: must be"),
    ('api_key_file = "k"\ndevices_file = "d"\nmodel = "m"\nuses = true', "uses:"),
    ('api_key_file = "k"\ndevices_file = "d"\nmodel = "m"\nmodle = "x"', "modle: unknown key"),
    ("not toml =", "not a TOML file"),
])
def test_problems_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "token-server.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert any(p.startswith(f"{path}: ") and expected in p for p in caught.value.problems), (
        caught.value.problems)


def test_the_command_exits_2_on_a_bad_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from agent.token_server.cli import run

    path = tmp_path / "token-server.toml"
    path.write_text("port = 99999\n")
    import argparse

    assert run(argparse.Namespace(config=path, check=True)) == 2
    assert "port: must be 1-65535" in capsys.readouterr().err


def test_devices_verify_in_constant_form_and_reload_on_change(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(f'[devices.kitchen]\nsecret_sha256 = "{secret_hash("one")}"\n')
    devices = Devices(path)
    assert devices.verify("kitchen", "one")
    assert not devices.verify("kitchen", "two")
    assert not devices.verify("hall", "one")
    path.write_text(f'[devices.kitchen]\nsecret_sha256 = ["{secret_hash("two")}"]\n')
    assert devices.verify("kitchen", "two")
    assert not devices.verify("kitchen", "one")
    path.write_text("broken = [")  # a broken edit keeps the devices read before
    assert devices.verify("kitchen", "two")


@pytest.mark.parametrize("text", [
    '[devices.kitchen]\nsecret_sha256 = "not-hex"\n',
    '[devices."bad id"]\nsecret_sha256 = "' + "a" * 64 + '"\n',
    "devices = 3\n",
])
def test_a_bad_devices_file_at_start_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=str(path)):
        Devices(path)


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = Bucket(per_minute=60.0, burst=2, now=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.take(1.0) == 0.0
