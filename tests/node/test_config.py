import pytest

from gossipdht.core.address import Address
from gossipdht.node.config import ConfigError, build_config, read_config_file


def test_defaults():
    config = build_config({})
    assert (config.port, config.bind, config.advertise, config.name) == (8080, "127.0.0.1", "127.0.0.1", "127.0.0.1:8080")
    assert (config.replicas, config.read_quorum, config.write_quorum) == (3, 2, 2)
    assert config.storage == "sqlite" and config.max_value_bytes == 1 << 20
    assert config.sync == "normal" and " sync=normal " in config.describe()
    assert config.data_dir == "gossipdht-data/127.0.0.1:8080"


def test_limits_default_and_come_from_the_file_too(tmp_path):
    config = build_config({})
    assert config.max_connections is None and " max-connections=derived " in config.describe()
    assert (config.max_inflight_bytes, config.max_requests_in_progress) == (256 << 20, 128)
    assert (config.header_timeout, config.body_timeout, config.min_body_rate) == (10, 10, 32768)
    path = tmp_path / "n.toml"
    path.write_text("max-connections = 50\nmax-inflight-bytes = 1048576\nheader-timeout = 2\n")
    config = build_config({"header-timeout": "3"}, read_config_file(str(path)))
    assert (config.max_connections, config.max_inflight_bytes, config.header_timeout) == (50, 1 << 20, 3)


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
        ({"sync": "off"}, "--sync"),
        ({"sync": "full", "storage": "memory"}, "--sync"),
        ({"replicas": "0"}, "--replicas"),
        ({"read-quorum": "4"}, "--read-quorum"),
        ({"replicas": "5", "write-quorum": "6"}, "--write-quorum"),
        ({"max-value-bytes": "-1"}, "--max-value-bytes"),
        ({"log-format": "xml"}, "--log-format"),
        ({"join": ["nohost"]}, "--join"),
        ({"join": ["h:0"]}, "--join"),
        ({"name": "has space"}, "--name"),
        ({"reap-after": "0"}, "--reap-after"),
        ({"max-connections": "0"}, "--max-connections"),
        ({"max-inflight-bytes": "1e9"}, "--max-inflight-bytes"),
        ({"max-requests-in-progress": "0"}, "--max-requests-in-progress"),
        ({"header-timeout": "0.5"}, "--header-timeout"),
        ({"body-timeout": "-1"}, "--body-timeout"),
        ({"min-body-rate": "fast"}, "--min-body-rate"),
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
    assert config.listen == () and config.endpoints() == (r"tcp:9001:interface=\:\:1:backlog=1024",)
    given = build_config({"listen": ["ssl:8443:privateKey=k:certKey=c", "unix:/run/n.sock"]})
    assert given.endpoints() == ("ssl:8443:privateKey=k:certKey=c", "unix:/run/n.sock")
    assert "listen=ssl:8443:privateKey=k:certKey=c,unix:/run/n.sock " in given.describe()
    assert build_config({}, {"listen": "tcp:1"}).endpoints() == ("tcp:1",)  # a string in the file: one


@pytest.mark.parametrize("listen", [5, [""], ["tcp:1", 2]])
def test_listen_that_is_not_a_list_of_strings_is_refused(listen):
    with pytest.raises(ConfigError, match="^--listen: .* is not a list of endpoint strings$"):
        build_config({}, {"listen": listen})


def test_api_tokens_are_off_by_default_and_a_good_file_is_kept_by_its_path(tmp_path):
    assert build_config({}).api_tokens is None
    path = tmp_path / "tokens"
    path.write_text("# ops\nadmin s3cret-admin\nread s3cret-read\n")
    from_line, from_file = build_config({"api-tokens": str(path)}), build_config({}, {"api-tokens": str(path)})
    assert from_line.api_tokens == from_file.api_tokens == str(path)
    assert f"api-tokens={path} " in from_line.describe() and "s3cret" not in from_line.describe()


@pytest.mark.parametrize("text, error", [
    (b"read s3cret-one\nread s3cret two\n", "line 2 is not ROLE TOKEN"),
    (b"\n# ops\nroot s3cret-one\n", "line 3: the role is not one of read, write, admin"),
    (b"s3cret-one admin\n", "line 1: the role is not one of read, write, admin"),
    (b"read s3cret-one\nadmin s3cret-one\n", "line 2: this token is on an earlier line already"),
    (b"# nothing yet\n", "no tokens in the file"),
])
def test_a_bad_api_tokens_file_names_file_and_line_but_never_the_token(tmp_path, text, error):
    path = tmp_path / "tokens"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as e:
        build_config({"api-tokens": str(path)})
    assert str(e.value).startswith(f"--api-tokens: {path}: {error}") and "\n" not in str(e.value)
    assert "s3cret" not in str(e.value)


def test_an_unreadable_api_tokens_file_is_an_option_error(tmp_path):
    with pytest.raises(ConfigError, match="^--api-tokens: cannot read .*missing: No such file or directory$"):
        build_config({"api-tokens": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="^--api-tokens: cannot read .*: Is a directory$"):
        build_config({"api-tokens": str(tmp_path)})


@pytest.fixture
def pki(tmp_path):
    from tls import cluster_pki

    return cluster_pki(tmp_path)


def tls_files(pki, tmp_path, **chosen) -> dict:
    """The ``--tls-*`` settings of files of ``pki`` (or others in ``tmp_path``)."""
    files = {"ca": pki.ca, "client-cert": pki.client[1], "client-key": pki.client[0],
             "server-cert": pki.server[1], "foreign-key": pki.foreign_client[0],
             "missing": tmp_path / "missing.pem", "text": tmp_path / "text.pem",
             "bad-pem": tmp_path / "bad.pem"}
    (tmp_path / "text.pem").write_text("not a certificate\n")
    (tmp_path / "bad.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    return {f"tls-{setting}": str(files[name]) for setting, name in chosen.items()}


def test_tls_files_are_kept_and_read(pki, tmp_path):
    config = build_config(tls_files(pki, tmp_path, ca="ca", **{"client-cert": "client-cert", "client-key": "client-key"}))
    assert (config.tls_ca, config.tls_client_cert, config.tls_client_key) == (str(pki.ca), str(pki.client[1]),
                                                                              str(pki.client[0]))
    assert config.tls().mutual and not build_config(tls_files(pki, tmp_path, ca="ca")).tls().mutual
    assert build_config({}).tls_ca is None


@pytest.mark.parametrize("chosen, message", [
    ({"ca": "missing"}, "--tls-ca: cannot read {missing}: No such file or directory"),
    ({"ca": "text"}, "--tls-ca: {text} holds no PEM certificate"),
    ({"ca": "bad-pem"}, "--tls-ca: {bad-pem} holds a PEM certificate that cannot be parsed: "),
    ({"client-cert": "client-cert"}, "--tls-client-cert: mutual TLS needs --tls-client-key too"),
    ({"ca": "ca", "client-key": "client-key"}, "--tls-client-key: mutual TLS needs --tls-client-cert too"),
    ({"client-cert": "client-cert", "client-key": "client-key"},
     "--tls-client-cert: mutual TLS needs --tls-ca, the CA that signed the nodes' certificates"),
    ({"ca": "ca", "client-cert": "text", "client-key": "client-key"}, "--tls-client-cert: {text} holds no PEM certificate"),
    ({"ca": "ca", "client-cert": "client-cert", "client-key": "missing"}, "--tls-client-key: cannot read {missing}: "),
    ({"ca": "ca", "client-cert": "client-cert", "client-key": "client-cert"},
     "--tls-client-key: {client-cert} holds no PEM private key"),
    ({"ca": "ca", "client-cert": "client-cert", "client-key": "foreign-key"},
     "--tls-client-key: the key in {foreign-key} is not the one of the certificate in {client-cert}"),
])
def test_tls_files_that_cannot_be_used_name_the_option(pki, tmp_path, chosen, message):
    settings = tls_files(pki, tmp_path, **chosen)
    paths = {name: settings[f"tls-{setting}"] for setting, name in chosen.items()}
    with pytest.raises(ConfigError) as e:
        build_config(settings)
    assert str(e.value).startswith(message.format_map(paths)) and "\n" not in str(e.value)
