import pytest

from gossipdht.core.address import Address, parse_address
from gossipdht.node.config import ConfigError, build_config, read_config_file
from gossipdht.node.service import StartupError
from gossipdht.node.tap import Options


def test_defaults():
    config = build_config({})
    assert (config.port, config.bind, config.advertise, config.name) == (8080, "127.0.0.1", "127.0.0.1", "127.0.0.1:8080")
    assert (config.replicas, config.read_quorum, config.write_quorum) == (3, 2, 2)
    assert config.storage == "sqlite" and config.max_value_bytes == 1 << 20
    assert config.data_dir == "gossipdht-data/127.0.0.1:8080"


def test_majority_follows_replicas():
    assert (build_config({"replicas": "5"}).read_quorum, build_config({"replicas": "4"}).write_quorum) == (3, 3)


def test_command_line_wins_over_file_which_wins_over_defaults(tmp_path):
    path = tmp_path / "n.toml"
    path.write_text('name = "from-file"\nport = 9000\njoin = ["a:1", "[::1]:2"]\n')
    config = build_config({"port": "9100", "name": None, "join": []}, read_config_file(str(path)))
    assert (config.name, config.port) == ("from-file", 9100)
    assert config.join == (Address("a", 1), Address("::1", 2))
    assert str(config.join[1]) == "[::1]:2"


@pytest.mark.parametrize(
    "values, option",
    [
        ({"port": "abc"}, "--port"),
        ({"port": "70000"}, "--port"),
        ({"port": "1.5"}, "--port"),
        ({"bind": "localhost"}, "--bind"),
        ({"advertise": "0.0.0.0"}, "--advertise"),
        ({"bind": "0.0.0.0"}, "--advertise"),
        ({"advertise": "::"}, "--advertise"),
        ({"storage": "disk"}, "--storage"),
        ({"replicas": "0"}, "--replicas"),
        ({"read-quorum": "4"}, "--read-quorum"),
        ({"replicas": "5", "write-quorum": "6"}, "--write-quorum"),
        ({"max-value-bytes": "-1"}, "--max-value-bytes"),
        ({"log-format": "xml"}, "--log-format"),
        ({"join": ["nohost"]}, "--join"),
        ({"join": ["h:0"]}, "--join"),
        ({"name": "has space"}, "--name"),
        ({"reap-after": "0"}, "--reap-after"),
    ],
)
def test_bad_values_name_the_option(values, option):
    with pytest.raises(ConfigError) as e:
        build_config(values)
    message = str(e.value)
    assert message.startswith(option + ":") and "\n" not in message


def test_bind_all_with_an_advertise_address_is_fine():
    config = build_config({"bind": "0.0.0.0", "advertise": "10.0.0.5"})
    assert (config.bind, config.advertise, config.name) == ("0.0.0.0", "10.0.0.5", "10.0.0.5:8080")


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="^--config: cannot read"):
        read_config_file(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(ConfigError, match="^--config: .* not valid TOML"):
        read_config_file(str(bad))
    typo = tmp_path / "typo.toml"
    typo.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        read_config_file(str(typo))


def test_parse_address():
    assert parse_address("example.org:80", "join") == Address("example.org", 80)
    assert parse_address("[fe80::1]:9", "join") == Address("fe80::1", 9)


def test_options_parse_repeated_join_and_end_with_one_line_on_error(tmp_path):
    options = Options()
    options.parseOptions(["--join", "a:1", "--join", "b:2", "--port", "9001", "-d", str(tmp_path)])
    assert options.node_config.join == (Address("a", 1), Address("b", 2))
    assert options.node_config.data_dir == str(tmp_path)
    with pytest.raises(StartupError) as e:
        Options().parseOptions(["--replicas", "x"])
    assert e.value.code == "gossipdht: --replicas: 'x' is not a whole number"
