"""Configuration: precedence, coercion, and errors that name the key and its source."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from groupware.config import SECTIONS, Listen, load_config, render_toml
from groupware.core.services import Core
from groupware.errors import ConfigError
from tests.support.servers import make_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "groupware.example.toml"


def _data_dir(tmp_path: Path) -> Path:
    return make_config(tmp_path).data_dir


def _append(data_dir: Path, text: str) -> None:
    # A short hand-written file: every key it leaves out takes its default.
    (data_dir / "groupware.toml").write_text(text, encoding="utf-8")


def test_example_file_is_in_step_with_the_code_and_lists_every_key() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == render_toml()
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for section, cls in SECTIONS.items():
        assert set(document[section]) == set(cls.__dataclass_fields__), section


def test_defaults_listen_on_loopback_with_design_ports(tmp_path: Path) -> None:
    config = load_config(_data_dir(tmp_path), env={})
    assert config.http.listen == (Listen("127.0.0.1", 8080),)
    assert config.smtp.listen == (Listen("127.0.0.1", 2525),)
    assert config.imap.listen == (Listen("127.0.0.1", 1143),)
    assert config.accounts.default_quota_bytes == 30 * 1024**3
    assert config.database_url.startswith("sqlite:///")


def test_short_listen_variables_and_double_underscore_variables_override_the_file(
    tmp_path: Path,
) -> None:
    data_dir = _data_dir(tmp_path)
    _append(data_dir, '[http]\nlisten = ["127.0.0.1:9000"]\nthreads_count = 4\n')
    env = {
        "GROUPWARE_HTTP_LISTEN": "127.0.0.1:0,[::1]:8081",
        "GROUPWARE_HTTP__THREADS_COUNT": "12",
        "GROUPWARE_SMTP_LISTEN": "0.0.0.0:25",
        "GROUPWARE_DATA": str(data_dir),
    }
    config = load_config(data_dir, env=env)
    assert config.http.listen == (Listen("127.0.0.1", 0), Listen("::1", 8081))
    assert config.http.threads_count == 12
    assert config.smtp.listen == (Listen("0.0.0.0", 25),)


def test_overrides_win_over_environment(tmp_path: Path) -> None:
    config = load_config(
        _data_dir(tmp_path),
        env={"GROUPWARE_AUTH__MAX_FAILURES_COUNT": "4"},
        overrides={"auth": {"max_failures_count": 7}},
    )
    assert config.auth.max_failures_count == 7


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    data_dir = _data_dir(tmp_path)
    _append(data_dir, "[http]\nthreads = 3\n")
    with pytest.raises(ConfigError, match=r"http\.threads: unknown key \(file .*groupware\.toml\)"):
        load_config(data_dir, env={})


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    data_dir = _data_dir(tmp_path)
    _append(data_dir, "[htpp]\nlisten = []\n")
    with pytest.raises(ConfigError, match=r"htpp: unknown section"):
        load_config(data_dir, env={})


def test_wrong_type_in_file_names_key_expected_type_and_file(tmp_path: Path) -> None:
    data_dir = _data_dir(tmp_path)
    _append(data_dir, '[http]\nthreads_count = "many"\n')
    with pytest.raises(ConfigError, match=r"http\.threads_count: expected int, got 'many' \(file "):
        load_config(data_dir, env={})


@pytest.mark.parametrize(
    ("name", "value", "pattern"),
    [
        ("GROUPWARE_AUTH__MAX_FAILURES_COUNT", "lots", r"auth\.max_failures_count: expected int"),
        ("GROUPWARE_HTTP_LISTEN", "localhost", r"http\.listen: expected host:port"),
        ("GROUPWARE_HTTP_LISTEN", "127.0.0.1:70000", r"http\.listen: port out of range"),
        ("GROUPWARE_AUTH__NOPE", "1", r"auth\.nope: unknown key"),
        ("GROUPWARE_NOPE__KEY", "1", r"nope: unknown section"),
    ],
)
def test_bad_environment_value_names_key_and_variable(
    tmp_path: Path, name: str, value: str, pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(_data_dir(tmp_path), env={name: value})
    assert f"env {name}" in str(info.value)


def test_cross_field_check_reports_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth: delay_after_failures_count must not exceed"):
        load_config(
            _data_dir(tmp_path),
            env={"GROUPWARE_AUTH__DELAY_AFTER_FAILURES_COUNT": "20"},
        )


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    data_dir = _data_dir(tmp_path)
    (data_dir / "groupware.toml").write_text("[http\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"groupware\.toml: not valid TOML"):
        load_config(data_dir, env={})


def test_missing_folder_tells_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"groupware init"):
        load_config(tmp_path / "nothing", env={})


def test_missing_or_short_secret_stops_startup(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    secret = config.data_dir / "secret.key"
    secret.write_text("dev\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.secret_key_file: .* fewer than 32 bytes"):
        Core.open(config)
    secret.unlink()
    with pytest.raises(ConfigError, match=r"server\.secret_key_file: cannot read"):
        Core.open(config)


@pytest.mark.parametrize("text", ["host", ":80", "host:", "host:port", "[::1]80"])
def test_listen_parse_rejects_malformed_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        Listen.parse(text)
