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
        ({"stream_poll_interval_s": 0}, "--stream-poll-interval"),
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


def test_stream_pollers_are_woken_by_writes_unless_an_interval_is_chosen(template):
    from types import SimpleNamespace

    from ws_emulator.app import _stream_polling

    embedded = SimpleNamespace(embedded=True, writes=object())
    external = SimpleNamespace(embedded=False, writes=object())
    # GIVEN no --stream-poll-interval: the embedded server's writes wake the pollers
    assert _stream_polling(Config(template=template), embedded) == {"writes": embedded.writes}  # type: ignore[arg-type]
    # an external endpoint's writes cannot be seen: the default poll interval stays
    assert _stream_polling(Config(template=template), external) == {}  # type: ignore[arg-type]
    # GIVEN Lambda's cadence by choice: a fixed interval, no wake-ups
    chosen = Config(template=template, stream_poll_interval_s=0.25)
    assert _stream_polling(chosen, embedded) == {"poll_interval_s": 0.25}  # type: ignore[arg-type]


def test_the_stream_poll_interval_option_reaches_the_config(template):
    from ws_emulator.cli import _parser, config_from_args

    def config(*extra: str) -> Config:
        return config_from_args(_parser().parse_args(["serve", "--template", str(template), *extra]))

    assert config().stream_poll_interval_s is None
    assert config("--stream-poll-interval", "0.25").stream_poll_interval_s == 0.25
