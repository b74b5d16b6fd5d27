"""A recognisable device secret is planted for ``source = "token-server"`` and ``run`` and
``check-config`` run with it against a token server that refuses it: the secret, URL-encoded or
base64, appears in no output, and the refusal is fatal and names the secret file."""

from __future__ import annotations

from pathlib import Path

from tests.integration.hostile.test_planted_key import (
    KEY,
    Outputs,
    Sandbox,
    config_text,
    run_command,
)
from tests.support.token_server import token_server


async def test_a_planted_device_secret_appears_in_no_output(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.speak_commands()
    (tmp_path / "server").mkdir()
    with token_server(tmp_path / "server", "http://127.0.0.1:9") as server:
        for planted in (server.settings.api_key_file, server.device_secret_file):
            sandbox.planted.add(planted)
        secret = sandbox.plant(sandbox.root / "device-secret", "\ufeff" + KEY + "\n")
        credentials = (f'source = "token-server"\ntoken_url = "{server.url}"\n'
                       f'device_id = "kitchen"\ndevice_secret_file = "{secret}"\n'
                       f'token_ca_file = "{server.cert}"')
        config = sandbox.root / "work" / "agent.toml"
        config.write_text(config_text("ws://127.0.0.1:9", sandbox.root / "work", credentials))
        outputs = Outputs()
        code = await run_command(sandbox, ["run", "--config", str(config)], sandbox.env(),
                                 outputs, stop_after=20.0)
        checked = await run_command(sandbox, ["check-config", "--config", str(config)],
                                    sandbox.env(), outputs)
        refused = server.service.refused
    for path in (tmp_path / "server").rglob("*"):
        sandbox.planted.add(path)
    sandbox.files_written(outputs)
    assert outputs.leaks() == []
    assert (code, checked) == (78, 0)
    assert refused >= 1  # not vacuous: the secret went to the server and was refused
    assert str(secret) in outputs.texts["run stderr"]
    assert "credentials: token-server" in outputs.texts["check-config stdout"]
