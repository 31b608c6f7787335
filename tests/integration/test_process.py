"""The node as an operator runs it: real ``twistd gossipdht`` processes.

Crash durability (``kill -9``), versions across restarts, log formats, start-up errors,
the config file, and the packaged plugin.  Synchronous tests; see the node_factory fixture in conftest.py.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import pytest
from tls import self_signed

import gossipdht
from gossipdht.core.hlc import COUNTER_BITS, Version
from gossipdht.storage import Record, open_store, ring_order
from gossipdht.tools.localcluster import wait_for
from gossipdht.tools.nodeprocess import NodeProcess, free_port, run_twistd, stop_process, twistd_command

REPOSITORY = Path(__file__).resolve().parents[2]


def key_path(key: str) -> str:
    return "/db/" + quote(key, safe="")


def etag_timestamp(etag: str) -> int:
    """The HLC timestamp in an ETag ``"<hex timestamp>-<hex node name>"``."""
    match = re.fullmatch(r'"([0-9a-f]+)-([0-9a-f]*)"', etag)
    assert match, f"malformed ETag {etag!r}"
    return int(match.group(1), 16)


def stop_cleanly(node: NodeProcess) -> None:
    """SIGTERM; twistd shuts the service down, then exits by the same signal, as
    systemd expects of a clean stop."""
    assert node.stop() == -signal.SIGTERM
    log = node.log()
    assert log.rstrip().endswith("Server Shut Down."), log
    assert "Traceback" not in log and "Unhandled" not in log, log


def put(node: NodeProcess, key: str, value: bytes, content_type: str) -> str:
    status, headers, body = node.request("PUT", key_path(key), value, {"Content-Type": content_type})
    assert status == 204, (key, status, body)
    return headers["ETag"]


def delete(node: NodeProcess, key: str) -> str:
    status, headers, body = node.request("DELETE", key_path(key))
    assert status == 204, (key, status, body)
    return headers["ETag"]


def listing(node: NodeProcess) -> list[str]:
    status, _, body = node.request("GET", "/db")
    assert status == 200
    return body.decode().split("\r\n") if body else []


# -- durability -------------------------------------------------------------------------


def test_acknowledged_writes_survive_kill_9(node_factory):
    node = node_factory()
    rng = random.Random(20240607)
    expected: dict[str, tuple[bytes, str, str]] = {}  # key -> (value, content type, etag)
    keys = [f"key-{i:03d}" for i in range(190)] + [f"ключ/{i} ü" for i in range(10)]
    values = {key: (rng.randbytes(rng.choice([0, 1, 7, 100, 3000])), f"application/x-test-{i}")
              for i, key in enumerate(keys)}

    def write(key: str) -> tuple[str, str]:
        value, content_type = values[key]
        return key, put(node, key, value, content_type)

    # Concurrent clients, so that one group commit holds several writes.
    with ThreadPoolExecutor(max_workers=16) as pool:
        for key, tag in pool.map(write, keys):
            expected[key] = (*values[key], tag)
        # Overwrites and deletions, acknowledged after the first writes.
        overwritten = keys[0:20]
        values.update({key: (b"second " + key.encode(), "text/plain; charset=utf-8") for key in overwritten})
        for key, tag in pool.map(write, overwritten):
            expected[key] = (*values[key], tag)
        deleted = keys[20:40] + keys[-3:]
        assert all(pool.map(lambda key: delete(node, key), deleted))
    for key in deleted:
        del expected[key]

    assert node.kill9() == -signal.SIGKILL  # right after the last acknowledgement
    node.start()

    for key, (value, content_type, tag) in expected.items():
        status, headers, body = node.request("GET", key_path(key))
        assert status == 200, key
        assert body == value, key
        assert headers["Content-Type"] == content_type, key
        assert headers["ETag"] == tag, key
    for key in deleted:
        status, _, body = node.request("GET", key_path(key))
        assert (status, body) == (404, b""), key
    assert listing(node) == sorted(expected, key=ring_order)


def test_versions_keep_increasing_across_restarts(node_factory):
    node = node_factory()
    before = etag_timestamp(put(node, "a", b"1", "text/plain"))
    stop_cleanly(node)

    # A record from a node whose clock runs an hour ahead reached this store.
    future = (int((time.time() + 3600) * 1000) << COUNTER_BITS) + 5
    store = open_store("sqlite", str(node.data_dir))
    try:
        store.write([("ahead", Record(Version(future, "fast-clock"), b"old", "text/plain"))])
    finally:
        store.close()

    node.start()
    after = etag_timestamp(put(node, "a", b"2", "text/plain"))
    assert after > before
    # The clock moved past every version on disk, so this write replaces the record.
    assert after > future
    assert etag_timestamp(put(node, "ahead", b"new", "text/plain")) > future
    status, _, body = node.request("GET", key_path("ahead"))
    assert (status, body) == (200, b"new")


def test_a_node_in_a_relative_directory_keeps_its_data_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    node = NodeProcess("nodes/one")
    try:
        node.start()
        assert node.request("PUT", "/db/k", b"v")[0] == 204
    finally:
        node.stop()
    assert (tmp_path / "nodes" / "one" / "data" / "records.sqlite3").exists()
    assert not (tmp_path / "nodes" / "one" / "nodes").exists()


# -- logging ----------------------------------------------------------------------------


def test_json_log_format(node_factory):
    node = node_factory("--log-format", "json")
    assert node.stop() == -signal.SIGTERM
    lines = [line for line in node.log().splitlines() if line.strip()]
    assert lines
    events = []
    for line in lines:
        event = json.loads(line)  # every line of output is one JSON object
        assert isinstance(event, dict), line
        events.append(event)
    started = [e for e in events if "started" in e.get("log_format", "")]
    assert len(started) == 1, events
    assert started[0]["version"] == gossipdht.__version__
    assert f"listen=tcp:{node.port}:interface=127.0.0.1:backlog=1024 " in started[0]["config"]
    assert "log-format=json" in started[0]["config"]


def test_text_log_format_and_clean_shutdown(node_factory):
    node = node_factory()
    stop_cleanly(node)
    log = node.log()
    started = [line for line in log.splitlines() if f"gossipdht {gossipdht.__version__} started" in line]
    assert len(started) == 1, log
    assert f"name=127.0.0.1:{node.port} " in started[0]
    assert f"data-dir={node.data_dir} " in started[0]


# -- start-up errors --------------------------------------------------------------------


def assert_one_line_error(result: subprocess.CompletedProcess, option: str) -> str:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    assert len(lines) == 1, result.stdout
    assert option in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "args, option",
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--advertise", "0.0.0.0"], "--advertise"),
        (["--bind", "localhost"], "--bind"),
        (["--storage", "foo"], "--storage"),
        (["--replicas", "3", "--read-quorum", "5"], "--read-quorum"),
        (["--write-quorum", "0"], "--write-quorum"),
        (["--max-value-bytes", "1.5"], "--max-value-bytes"),
        (["--join", "nowhere"], "--join"),
        (["--log-format", "xml"], "--log-format"),
        (["--config", "/nonexistent.toml"], "--config"),
        (["--listen", "carrier-pigeon:8080"], "--listen"),
        (["--listen", "ssl:0:privateKey=/nonexistent/key.pem"], "--listen"),
    ],
)
def test_bad_option_is_one_line_and_status_1(tmp_path, args, option):
    result = run_twistd(*args, "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert_one_line_error(result, option)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "text, option, detail",
    [
        (b'name = "a"\nmax-value-byte = 10\n', "--config", "'max-value-byte'"),  # a typo
        (b'name = "a\n', "--config", "not valid TOML"),
        (b"port = 8080.0\n", "--port", "whole number"),
        (b"replicas = true\n", "--replicas", "whole number"),
        (b'join = "localhost"\n', "--join", "HOST:PORT"),
        (b"join = 5\n", "--join", "5"),
        (b"listen = 5\n", "--listen", "endpoint strings"),
        (b'name = "\xff"\n', "--config", "UTF-8"),
    ],
)
def test_bad_config_file_is_one_line_and_status_1(tmp_path, text, option, detail):
    config = tmp_path / "node.toml"
    config.write_bytes(text)
    result = run_twistd("--config", str(config), "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    line = assert_one_line_error(result, option)
    assert detail.lower() in line.lower()


def test_listen_tls_serves_https_and_tcp_port_0_serves_http(tmp_path):
    """``twistd gossipdht --listen ssl:...`` and ``--listen tcp:0:...``, as an operator types them."""
    key, cert = self_signed(tmp_path)
    tls_port, gossip_port = free_port(), free_port()
    tls = subprocess.Popen(twistd_command(
        "--listen", f"ssl:{tls_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        "--listen", "tcp:0:interface=127.0.0.1", "--gossip-port", str(gossip_port), "-d", str(tmp_path / "data")),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log: list[str] = []
        for line in tls.stdout:  # the log line that tells where the API listens
            log.append(line)
            if "HTTP API on " in line:
                break
        assert f"HTTP API on 127.0.0.1:{tls_port}, 127.0.0.1:" in line, "".join(log)
        plain_port = int(line.split(", ")[1].rpartition(":")[2])
        trusting = ssl.create_default_context(cafile=str(cert))
        connection = http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=10, context=trusting)
        connection.request("PUT", "/db/k", b"over tls")
        assert connection.getresponse().status == 204
        connection = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=10)
        connection.request("GET", "/db/k")
        assert connection.getresponse().read() == b"over tls"
    finally:
        assert stop_process(tls) == -signal.SIGTERM


# Starts a program with a listening socket as fd 3, as systemd (227 and newer) passes one.
_SOCKET_ACTIVATION = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); "
    "os.environ.update(LISTEN_FDS='1', LISTEN_FDNAMES='http', LISTEN_PID=str(os.getpid())); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def test_listen_systemd_serves_the_socket_systemd_opened(tmp_path):
    """Socket activation: ``--listen systemd:domain=INET:index=0`` serves on the inherited socket."""
    opened = socket.socket()
    opened.bind(("127.0.0.1", 0))
    opened.listen()
    port = opened.getsockname()[1]
    command = [sys.executable, "-c", _SOCKET_ACTIVATION, str(opened.fileno()), *twistd_command(
        "--listen", "systemd:domain=INET:index=0", "--gossip-port", str(free_port()), "-d", str(tmp_path / "data"))]
    with open(tmp_path / "node.log", "wb") as log:
        node = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, pass_fds=(opened.fileno(),))
    opened.close()  # the node holds it now

    def health() -> bool:
        assert node.poll() is None, (tmp_path / "node.log").read_text()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except OSError:
            return False
    try:
        wait_for(health, 15)
        assert f"HTTP API on 127.0.0.1:{port}," in (tmp_path / "node.log").read_text()
    finally:
        assert stop_process(node) == -signal.SIGTERM


def test_port_in_use(node_factory, tmp_path):
    first = node_factory()
    result = run_twistd("--port", str(first.port), "--data-dir", str(tmp_path / "second"), cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    errors = [line for line in result.stdout.splitlines() if "--port" in line]
    assert len(errors) == 1, result.stdout
    assert f"--port: cannot listen on tcp:{first.port}:interface=127.0.0.1:backlog=1024: " in errors[0]
    assert first.request("GET", "/health")[0] == 200


# -- the config file --------------------------------------------------------------------


def test_config_file_values_and_command_line_precedence(node_factory, tmp_path):
    config = tmp_path / "node.toml"
    config.write_text('name = "from-file"\nmax-value-bytes = 16\nstorage = "memory"\nreplicas = 1\n')

    node = node_factory("--config", str(config))
    assert node.request("GET", "/dht/peers")[2] == b"from-file\r\n"
    assert node.request("PUT", "/db/k", b"x" * 17)[0] == 413
    assert node.request("PUT", "/db/k", b"x" * 16)[0] == 204
    assert "storage=memory" in node.log() and "replicas=1 " in node.log()

    node = node_factory("--config", str(config), "--name", "from-cli", "--max-value-bytes", "32")
    assert node.request("GET", "/dht/peers")[2] == b"from-cli\r\n"
    assert node.request("PUT", "/db/k", b"x" * 17)[0] == 204
    assert node.request("PUT", "/db/k", b"x" * 33)[0] == 413
    assert "storage=memory" in node.log()


# -- packaging --------------------------------------------------------------------------


def _offline_build_problem() -> str | None:
    """Why ``pip install --no-build-isolation`` cannot build the project here, if it cannot."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed"
    if tuple(int(n) for n in re.findall(r"\d+", version)[:2]) >= (77, 0):
        return None
    return (f"setuptools {version} cannot build this project (its SPDX license needs setuptools>=77), "
            "and a build with isolation would need the network; install the test extras to run this test")


PLUGIN_CHECK = """
import json, sys
import twisted.plugins
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
taps = sorted(maker.tapname for maker in getPlugins(IServiceMaker))
import gossipdht
print(json.dumps({
    "taps": taps,
    "plugin": sys.modules["twisted.plugins.gossipdht_plugin"].__file__,
    "package": gossipdht.__file__,
    "plugin_path": list(twisted.plugins.__path__),
}))
"""

TWISTD_HELP = "import sys; sys.argv = ['twistd', '--help']; from twisted.scripts.twistd import run; run()"


def _pip_install(tmp_path: Path, *options: str,
                 prepare: Callable[[Path], None] = lambda source: None) -> tuple[Path, Path, Callable[[str], str]]:
    """A copy of the checkout, changed by ``prepare``, installed into a directory of its own
    with ``options`` (``-e``: editable): the copy, the directory, and a runner of Python code
    that sees the directory (its ``.pth`` files processed, as site-packages' are) and Twisted."""
    problem = _offline_build_problem()
    if problem:
        pytest.skip(problem)
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        "gossipdht-data", "tests"))
    prepare(source)
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "--target", str(target), *options, str(source)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )
    assert build.returncode == 0, build.stdout
    # setuptools' warnings (a license as a TOML table, the compat editable mode) pass through pip.
    assert "deprecat" not in build.stdout.lower(), build.stdout

    # -S: no site-packages processing, so the checkout's own editable install is not on the path;
    # Twisted and the other dependencies come from this environment's site-packages.
    site_packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    run_env = dict(os.environ, PYTHONPATH=os.pathsep.join(sorted(site_packages)), PYTHONNOUSERSITE="1")

    def python(code: str) -> str:
        result = subprocess.run([sys.executable, "-S", "-c", f"import site; site.addsitedir({str(target)!r}); {code}"],
                                cwd=tmp_path, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    return source, target, python


def _assert_twistd_lists_the_plugin(python: Callable[[str], str]) -> None:
    help_text = python(TWISTD_HELP)
    assert re.search(r"^\s+gossipdht\s+A distributed hash table", help_text, re.MULTILINE), help_text


def test_installed_package_provides_the_twistd_plugin(tmp_path):
    def with_plugin_cache(source: Path) -> None:
        # A checkout where twistd already ran has a plugin cache: it must not be shipped.
        cache = source / "twisted" / "plugins" / "dropin.cache"
        if not cache.exists():
            cache.write_bytes(b"stale cache of the checkout")

    _, target, python = _pip_install(tmp_path, prepare=with_plugin_cache)

    plugins = target / "twisted" / "plugins"
    assert (plugins / "gossipdht_plugin.py").is_file(), "the wheel lacks twisted/plugins/gossipdht_plugin.py"
    assert sorted(p.name for p in plugins.iterdir() if p.name != "__pycache__") == ["gossipdht_plugin.py"]
    # An __init__.py would make the installed directory shadow Twisted itself.
    assert not (target / "twisted" / "__init__.py").exists()
    record = next(target.glob("gossipdht-*.dist-info")) / "RECORD"
    assert "dropin.cache" not in record.read_text()

    found = json.loads(python(PLUGIN_CHECK))
    assert "gossipdht" in found["taps"]
    assert Path(found["plugin"]).resolve() == (plugins / "gossipdht_plugin.py").resolve()
    assert Path(found["package"]).resolve().is_relative_to(target.resolve())
    assert str(REPOSITORY / "twisted" / "plugins") not in found["plugin_path"]
    _assert_twistd_lists_the_plugin(python)
    # The dashboard's files are package data: the installed node serves them.
    shipped = python("import json; from gossipdht.web import dashboard; print(json.dumps(sorted(dashboard.load())))")
    assert json.loads(shipped) == ["dashboard.css", "dashboard.js", "index.html"]


def test_editable_install_finds_the_plugin_in_the_checkout(tmp_path):
    """``make install``'s mode: setuptools' default (lenient) editable install, whose .pth
    puts the checkout on sys.path; twistd finds its twisted/plugins/ there."""
    source, target, python = _pip_install(tmp_path, "-e")
    assert not (target / "twisted").exists() and not (target / "gossipdht").exists()
    found = json.loads(python(PLUGIN_CHECK))
    assert "gossipdht" in found["taps"]
    assert Path(found["plugin"]).resolve() == (source / "twisted" / "plugins" / "gossipdht_plugin.py").resolve()
    assert Path(found["package"]).resolve().is_relative_to(source.resolve())
    # The code of the checkout as it is now: an edit needs no reinstall.
    (source / "gossipdht" / "edited.py").write_text("EDITED = True\n")
    assert python("import gossipdht.edited; print(gossipdht.edited.EDITED)").strip() == "True"
    _assert_twistd_lists_the_plugin(python)
