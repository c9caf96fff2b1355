import pytest

from geo_risk.config import load_config
from geo_risk_errors import ConfigError


def test_demo_config_resolves_data_dir(demo_config):
    cfg = load_config(demo_config)
    assert cfg.data_path(cfg.layers.forest_change).is_file()
    assert cfg.periods.train.loss_codes == [2] and cfg.periods.forecast.loss_codes == [3]


def test_unknown_key_is_named(tmp_path, demo_config):
    bad = tmp_path / "typo.yaml"
    bad.write_text(demo_config.read_text().replace("stride_px:", "strde_px:"))
    with pytest.raises(ConfigError, match=r"typo\.yaml[\s\S]*chips\.strde_px: unknown key"):
        load_config(bad)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")


def test_bad_cost_matrix_shape(demo_config):
    with pytest.raises(ConfigError, match="decision: .*2×2 matrix"):
        load_config(demo_config, {"decision": {"cost": [[0, 1, 2], [3, 4, 5]]}})


def test_loss_code_outside_forest_codes(demo_config):
    with pytest.raises(ConfigError, match="subset of forest_codes"):
        load_config(demo_config, {"periods": {"train": {"loss_codes": [1]}}})


def test_negative_projection_weight_is_named(tmp_path, demo_config):
    bad = tmp_path / "negative.yaml"
    bad.write_text(demo_config.read_text().replace("lambda_fair: 20}", "lambda_fair: -1}"))
    assert "lambda_fair: -1}" in bad.read_text()
    with pytest.raises(ConfigError, match=r"negative\.yaml[\s\S]*predict\.lambda_fair"):
        load_config(bad)
