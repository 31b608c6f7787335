"""``twistd gossipdht`` options: repeatable ones, and errors as one line."""

import pytest

from gossipdht.core.address import Address
from gossipdht.node.service import StartupError
from gossipdht.node.tap import Options


def test_options_parse_repeated_join_and_end_with_one_line_on_error(tmp_path):
    options = Options()
    options.parseOptions(["--join", "a:1", "--join", "b:2", "--port", "9001", "-d", str(tmp_path)])
    assert options.node_config.join == (Address("a", 1), Address("b", 2))
    assert options.node_config.data_dir == str(tmp_path)
    with pytest.raises(StartupError) as e:
        Options().parseOptions(["--replicas", "x"])
    assert e.value.code == "gossipdht: --replicas: 'x' is not a whole number"


def test_sync_reaches_the_config_and_a_bad_one_is_one_line(tmp_path):
    options = Options()
    options.parseOptions(["--sync", "full", "-d", str(tmp_path)])
    assert options.node_config.sync == "full"
    with pytest.raises(StartupError) as e:
        Options().parseOptions(["--sync", "fsync"])
    assert e.value.code == "gossipdht: --sync: 'fsync' is not one of normal, full"


def test_listen_is_repeatable_and_wins_over_the_config_file(tmp_path):
    config = tmp_path / "node.toml"
    config.write_text('listen = ["tcp:7000"]\nport = 9001\n')
    options = Options()
    options.parseOptions(["-c", str(config), "--listen", "tcp:0:interface=127.0.0.1", "--listen", "unix:n.sock"])
    assert options.node_config.endpoints() == ("tcp:0:interface=127.0.0.1", "unix:n.sock")
    from_file = Options()
    from_file.parseOptions(["-c", str(config)])
    assert from_file.node_config.endpoints() == ("tcp:7000",)
    assert from_file.node_config.gossip_port == 9001  # --port still gives gossip its default


def test_tls_options_reach_the_config_and_a_bad_file_is_one_line(tmp_path):
    from tls import cluster_pki

    pki = cluster_pki(tmp_path)
    options = Options()
    options.parseOptions(["--tls-ca", str(pki.ca), "--tls-client-cert", str(pki.client[1]),
                          "--tls-client-key", str(pki.client[0])])
    config = options.node_config
    assert (config.tls_ca, config.tls_client_cert, config.tls_client_key) == (str(pki.ca), str(pki.client[1]),
                                                                              str(pki.client[0]))
    with pytest.raises(StartupError) as e:
        Options().parseOptions(["--tls-ca", str(tmp_path / "none.pem")])
    assert e.value.code == f"gossipdht: --tls-ca: cannot read {tmp_path / 'none.pem'}: No such file or directory"
