"""The deployment files: the systemd template unit and the example node config."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from gossipdht.node.config import SETTINGS, build_config, read_config_file
from gossipdht.node.tap import Options
from gossipdht.tools.nodeprocess import TWISTD

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "gossipdht@.service"
EXAMPLE = DEPLOY / "node1.toml"
INSTALLED_TWISTD = "/opt/gossipdht/bin/twistd"


def unit_lines() -> list[str]:
    return [line.strip() for line in UNIT.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", ";"))]


def exec_start() -> list[str]:
    [line] = [line for line in unit_lines() if line.startswith("ExecStart=")]
    return shlex.split(line[len("ExecStart="):])


# -- the example config -----------------------------------------------------------------


def test_example_config_is_valid_and_complete():
    values = read_config_file(str(EXAMPLE))
    # The unit sets the data directory; every other setting is shown, the files commented
    # out (the files they name must exist).
    assert set(values) == set(SETTINGS) - {"data-dir", "api-tokens", "keyring", "max-connections"}
    assert '\n# api-tokens = "' in EXAMPLE.read_text()
    assert "\n#   max-connections = " in EXAMPLE.read_text()
    config = build_config({}, values)
    assert config.name == "node1"
    assert config.read_quorum + config.write_quorum > config.replicas
    assert len(config.join) == 2


def test_unit_command_line_with_example_config():
    """The options of ExecStart, with %i and %S expanded, parse as twistd would parse them."""
    argv = exec_start()
    assert argv[0] == INSTALLED_TWISTD
    assert argv[1:4] == ["--nodaemon", "--pidfile=", "gossipdht"]
    expanded = [arg.replace("/etc/gossipdht/%i.toml", str(EXAMPLE)).replace("%S", "/var/lib").replace("%i", "node1")
                for arg in argv[4:]]
    options = Options()
    options.parseOptions(expanded)
    assert options.node_config.data_dir == "/var/lib/gossipdht/node1"
    assert options.node_config.name == "node1"


@pytest.mark.parametrize("directive", [
    "Type=simple", "DynamicUser=yes", "StateDirectory=gossipdht/%i", "ProtectSystem=strict",
    "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "Restart=on-failure",
    "After=network-online.target", "Wants=network-online.target", "WantedBy=multi-user.target",
    "LimitNOFILE=65536",
])
def test_unit_has_directive(directive):
    assert directive in unit_lines()


# -- systemd-analyze verify -------------------------------------------------------------


def verify(directory: Path, unit_text: str, instance: str = "node1") -> tuple[int, list[str]]:
    """Lint an instance of the template with ``systemd-analyze verify``, offline.

    Returns the exit status and the messages about our unit (unknown keys and bad
    values are only warnings: the exit status stays 0)."""
    template = directory / "gossipdht@.service"
    template.write_text(unit_text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(directory / f"gossipdht@{instance}.service")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
    )
    output = (result.stdout + result.stderr).splitlines()
    return result.returncode, [line for line in output if "gossipdht" in line]


@pytest.fixture
def systemd_analyze(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    sanity = tmp_path / "sanity"
    sanity.mkdir()
    (sanity / "sanity.service").write_text("[Service]\nExecStart=/bin/true\n")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(sanity / "sanity.service")],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"systemd-analyze verify does not work here: {result.stderr.strip()}")


def local_unit() -> str:
    """The unit, with the twistd of this environment (verify needs an existing binary)."""
    text = UNIT.read_text()
    assert INSTALLED_TWISTD in text
    return text.replace(INSTALLED_TWISTD, TWISTD)


def test_unit_passes_systemd_analyze_verify(systemd_analyze, tmp_path):
    status, messages = verify(tmp_path, local_unit())
    assert (status, messages) == (0, [])


@pytest.mark.parametrize("prefix, replacement, message", [
    ("[Service]", "[Service]\nFoo=bar", "Unknown key 'Foo'"),
    ("Type=", "Type=bogus", "bogus"),
    ("ProtectSystem=", "ProtectSystem=very", "protect system value"),
    ("RestartSec=", "RestartSec=soon", "soon"),
    ("ExecStart=", "ExecStart=/nonexistent/twistd --nodaemon", "/nonexistent/twistd"),
])
def test_systemd_analyze_verify_reports_a_broken_unit(systemd_analyze, tmp_path, prefix, replacement, message):
    """So that the verify test above can fail: each breakage is reported."""
    lines = local_unit().splitlines()
    [index] = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    lines[index] = replacement
    status, messages = verify(tmp_path, "\n".join(lines) + "\n")
    assert any(message in line for line in messages), messages
