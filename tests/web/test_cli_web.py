"""`streams worker --web`: a malformed address is one clear usage error."""

from __future__ import annotations

from click.testing import CliRunner

from streams.cli import cli


def test_a_malformed_web_address_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["-A", "examples.surge_pricing", "worker", "--web", "nowhere"])
    assert result.exit_code == 2
    assert "the web address must be HOST:PORT or none" in result.output
    assert "Traceback" not in result.output


def test_a_non_loopback_web_address_needs_allow_insecure() -> None:
    result = CliRunner().invoke(
        cli, ["-A", "examples.surge_pricing", "worker", "--web", "0.0.0.0:6066"]
    )
    assert result.exit_code == 2
    assert "the web server has no authentication" in result.output
    assert "--web-allow-insecure" in result.output
