import pytest

from gossipdht.core.address import Address
from gossipdht.node.config import ConfigError, build_config, read_config_file


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


def test_listen_defaults_to_tcp_on_port_and_bind_and_is_kept_when_given():
    config = build_config({"port": "9001", "bind": "::1"})
    assert config.listen == () and config.endpoints() == (r"tcp:9001:interface=\:\:1",)
    given = build_config({"listen": ["ssl:8443:privateKey=k:certKey=c", "unix:/run/n.sock"]})
    assert given.endpoints() == ("ssl:8443:privateKey=k:certKey=c", "unix:/run/n.sock")
    assert "listen=ssl:8443:privateKey=k:certKey=c,unix:/run/n.sock " in given.describe()
    assert build_config({}, {"listen": "tcp:1"}).endpoints() == ("tcp:1",)  # a string in the file: one


@pytest.mark.parametrize("listen", [5, [""], ["tcp:1", 2]])
def test_listen_that_is_not_a_list_of_strings_is_refused(listen):
    with pytest.raises(ConfigError, match="^--listen: .* is not a list of endpoint strings$"):
        build_config({}, {"listen": listen})
