"""The environment rewrite that points functions at the local endpoints (pure part of the runtime)."""

from ws_emulator.runtime.environment import rewrite_urls


def test_rewrite_urls_exact_and_prefix() -> None:
    rewrites = {"https://abc.execute-api.us-east-1.amazonaws.com/prod": "http://127.0.0.1:3001/prod"}
    env = {
        "A": "https://abc.execute-api.us-east-1.amazonaws.com/prod",
        "B": "https://abc.execute-api.us-east-1.amazonaws.com/prod/@connections",
        "C": "https://other.example.com/prod",
    }
    assert rewrite_urls(env, rewrites) == {
        "A": "http://127.0.0.1:3001/prod",
        "B": "http://127.0.0.1:3001/prod/@connections",
        "C": "https://other.example.com/prod",
    }
