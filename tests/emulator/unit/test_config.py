"""Config validation: clear errors for each bad option."""

import pytest

from ws_emulator.config import Config, parse_assignments
from ws_emulator.errors import ConfigError


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text("Resources: {}\n")
    return path


def test_defaults_follow_aws(template):
    config = Config(template=template)
    assert (config.host, config.port, config.resolved_management_port) == ("127.0.0.1", 3001, 3002)
    assert config.idle_timeout_s == 600 and config.max_connection_duration_s == 7200
    assert config.connect_rate == 500


def test_port_zero_lets_the_os_choose_both_ports(template):
    assert Config(template=template, port=0).resolved_management_port == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 70000}, "--port"),
        ({"port": 4000, "management_port": 4000}, "--management-port"),
        ({"idle_timeout_s": 0}, "--idle-timeout"),
        ({"connect_rate": -1}, "--connect-rate"),
        ({"shutdown_timeout_s": 0}, "--shutdown-timeout"),
        ({"dev_users": ("alice",)}, "--dev-token-secret"),
        ({"dynamodb_endpoint": "localhost:8000"}, "--dynamodb-endpoint"),
        ({"log_level": "chatty"}, "--log-level"),
        ({"fault_post_gone_rate": 2}, "--fault-post-gone-rate"),
        ({"fault_transaction_conflict_rate": -0.1}, "--fault-transaction-conflict-rate"),
        ({"stage": "a/b"}, "--stage"),
        ({"dev_token_secret": "a-real-looking-secret-of-32-bytes!!"}, "--dev-token-secret"),
        ({"static_dir": "/no/such/folder"}, "--static-dir"),
    ],
)
def test_invalid_settings_name_the_option(template, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Config(template=template, **kwargs)


def test_dev_tokens_run_only_with_the_built_in_development_secret(template, tmp_path):
    from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET

    config = Config(template=template, dev_token_secret=DEV_TOKEN_SECRET, static_dir=tmp_path)
    assert config.dev_token_secret == DEV_TOKEN_SECRET
    with pytest.raises(ConfigError, match="only runs with the built-in development secret"):
        Config(template=template, dev_token_secret=DEV_TOKEN_SECRET + "-changed")


def test_missing_template_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        Config(template=tmp_path / "nope.yaml")


def test_config_is_frozen(template):
    config = Config(template=template, parameter_overrides={"A": "1"})
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.parameter_overrides["B"] = "2"  # type: ignore[index]


def test_assignments_keep_equals_in_values():
    assert parse_assignments(["A=1", "B=x=y"], "--parameter-overrides") == {"A": "1", "B": "x=y"}
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_assignments(["oops"], "--ssm-parameter")
