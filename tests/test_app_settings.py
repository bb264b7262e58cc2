"""Server settings (pydantic-settings): environment names, ``config`` wins, clear errors."""

from __future__ import annotations

import pytest

from app.settings import load_settings


def test_environment_is_read_by_name_and_config_wins(monkeypatch, tmp_path):
    (tmp_path / "admin.keys").write_text("# admins\nfile-admin\n")
    monkeypatch.setenv("API_KEYS", " k1, k2 ,,")
    monkeypatch.setenv("ADMIN_API_KEYS_FILE", str(tmp_path / "admin.keys"))
    monkeypatch.setenv("AB_WEIGHTS", "80,20")
    monkeypatch.setenv("BACKGROUND", "off")
    monkeypatch.setenv("HEALTH_WINDOW_HOURS", "")  # empty: unset
    monkeypatch.setenv("model_name", "lower-case-is-not-the-name")
    s = load_settings({"MODEL_NAME": "ratings", "MAX_BATCH": "500", "NOT_A_SETTING": 1})
    assert s.API_KEYS == ("k1", "k2") and s.client_keys == ("k1", "k2")
    assert s.admin_keys == ("file-admin",)
    assert s.BACKGROUND is False
    assert s.AB_WEIGHTS == (0.8, 0.2)  # 80/100 and 20/100 are exact here
    assert s.HEALTH_WINDOW_HOURS is None and s.MODEL_NAME == "ratings" and s.MAX_BATCH == 500
    assert load_settings({"API_KEYS": ["a", " b "]}).API_KEYS == ("a", "b")
    with pytest.raises(Exception):  # noqa: B017 - frozen
        s.MODEL_NAME = "other"


@pytest.mark.parametrize("config, message", [
    ({"AB_WEIGHTS": "1"}, "AB_WEIGHTS must be two non-negative numbers"),
    ({"AB_WEIGHTS": "a,b"}, "AB_WEIGHTS must be two non-negative numbers"),
    ({"BACKGROUND": "maybe"}, "BACKGROUND: Input should be a valid boolean"),
    ({"PORT": 0}, "PORT"),
    ({"HEALTH_WINDOW_HOURS": -1}, "HEALTH_WINDOW_HOURS"),
])
def test_invalid_settings_stop_with_one_clear_line(config, message):
    with pytest.raises(ValueError, match="invalid server settings") as err:
        load_settings(config)
    assert message in str(err.value) and "input_value" not in str(err.value)


def test_secrets_are_not_echoed_in_errors():
    with pytest.raises(ValueError) as err:
        load_settings({"API_KEYS": "secret-key-1", "MAX_BATCH": 0})
    assert "secret-key-1" not in str(err.value) and "MAX_BATCH" in str(err.value)
