import pytest

from geo_risk.config import load_config
from geo_risk_errors import ConfigError


def test_demo_config_resolves_data_dir(demo_config):
    cfg = load_config(demo_config)
    assert all(cfg.data_path(f).is_file() for f in cfg.layers.paths())
    assert cfg.layers.forest_change.format == "codes" and cfg.data_path(cfg.layers.forest_change.path).is_file()
    assert (cfg.periods.train.start_year, cfg.periods.forecast.end_year) == (2005, 2015)


def test_unknown_key_is_named(tmp_path, demo_config):
    bad = tmp_path / "typo.yaml"
    bad.write_text(demo_config.read_text().replace("stride_px:", "strde_px:"))
    with pytest.raises(ConfigError, match=r"typo\.yaml[\s\S]*chips\.strde_px: unknown key"):
        load_config(bad)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")


def test_bad_cost_matrix_shape(demo_config):
    with pytest.raises(ConfigError, match="decision: .*3×2 matrix"):  # the demo has three actions
        load_config(demo_config, {"decision": {"cost": [[0, 1, 2], [3, 4, 5]]}})


def test_periods_given_as_codes_are_refused_with_the_migration(demo_config):
    with pytest.raises(ConfigError, match=r"loss_codes: periods are years only .*layers\.forest_change"):
        load_config(demo_config, {"periods": {"train": {"loss_codes": [1]}}})


def test_period_ending_before_it_starts(demo_config):
    with pytest.raises(ConfigError, match="end_year 2000 must be after start_year 2005"):
        load_config(demo_config, {"periods": {"train": {"end_year": 2000}}})


def test_negative_projection_weight_is_named(tmp_path, demo_config):
    bad = tmp_path / "negative.yaml"
    bad.write_text(demo_config.read_text().replace("lambda_fair: 20}", "lambda_fair: -1}"))
    assert "lambda_fair: -1}" in bad.read_text()
    with pytest.raises(ConfigError, match=r"negative\.yaml[\s\S]*predict\.lambda_fair"):
        load_config(bad)


def test_invalid_override_names_the_set_not_the_file(demo_config):
    with pytest.raises(ConfigError) as err:
        load_config(demo_config, {"chips": {"size_px": 8}})
    message = str(err.value)
    assert "--set chips.size_px=8: Input should be greater than or equal to 32" in message
    assert str(demo_config) not in message


def test_override_labels_say_how_the_value_was_given(demo_config):
    with pytest.raises(ConfigError, match=r"--out runs/x: Input is not a valid path"):
        load_config(demo_config, {"output_dir": 3}, labels={"output_dir": "--out runs/x"})


def test_file_error_still_names_the_file_beside_an_override(tmp_path, demo_config):
    bad = tmp_path / "typo.yaml"
    bad.write_text(demo_config.read_text().replace("stride_px:", "strde_px:"))
    with pytest.raises(ConfigError) as err:
        load_config(bad, {"train": {"epochs": 0}})
    message = str(err.value)
    assert f"invalid config {bad}" in message and "chips.strde_px: unknown key" in message
    assert "--set train.epochs=0: Input should be greater than or equal to 1" in message


@pytest.mark.parametrize("layers,phrases", [
    ({"distance_to": {"edge": "roads_PROJ.shp"}},
     ["layers.distance_to.edge makes band 'dist_edge_m'", "distance to the forest edge",
      "rename layers.distance_to.edge"]),
    ({"rasters": {"forest": {"path": "slope.tif"}}},
     ["layers.rasters.forest makes band 'forest'", "rename layers.rasters.forest"]),
    ({"rasters": {"dist_roads_m": {"path": "slope.tif"}}},
     ["layers.rasters.dist_roads_m makes band 'dist_roads_m'", "the band of layers.distance_to.roads"]),
])
def test_band_name_collisions_are_refused(demo_config, layers, phrases):
    with pytest.raises(ConfigError) as err:
        load_config(demo_config, {"layers": layers})
    for phrase in phrases:
        assert phrase in str(err.value), (phrase, str(err.value))


def test_band_names_order_and_constants():
    from tiles.bands import DIST_EDGE, FOREST_BANDS, band_names, distance_band
    from tiles.stack import FOREST_BANDS as STACK_FOREST_BANDS

    assert STACK_FOREST_BANDS is FOREST_BANDS
    assert FOREST_BANDS == ["forest", "past_loss", "dist_edge_m", "dist_past_loss_m"]
    assert distance_band("edge") == DIST_EDGE
    assert band_names(["roads"], ["altitude"]) == [*FOREST_BANDS, "dist_roads_m", "altitude"]
    with pytest.raises(ConfigError, match="layers.distance_to.past_loss makes band 'dist_past_loss_m'"):
        band_names(["past_loss"], [])


def test_default_config_is_the_demo():
    from geo_risk.config import default_config

    assert default_config().name == "guadeloupe-demo.yaml" and default_config().is_file()
    assert load_config(default_config()).name == "guadeloupe-demo"


def test_keys_of_the_old_layout_say_what_replaced_them(demo_config):
    with pytest.raises(ConfigError, match=r"predict: window_px: replaced .* by block_px .* halo_px"):
        load_config(demo_config, {"predict": {"window_px": 256}})
    with pytest.raises(ConfigError, match=r"periods.train: forest_codes: periods are years only"):
        load_config(demo_config, {"periods": {"train": {"forest_codes": [1]}}})


def test_weight_average_and_input_skip_settings_are_checked(demo_config):
    for bad in (0, 1, 1.5):
        with pytest.raises(ConfigError, match=r"train\.ema_decay"):
            load_config(demo_config, {"train": {"ema_decay": bad}})
    with pytest.raises(ConfigError, match=r"model\.input_skip"):
        load_config(demo_config, {"model": {"input_skip": "sometimes"}})
    cfg = load_config(demo_config, {"train": {"ema_decay": 0.99}, "model": {"input_skip": True}})
    assert cfg.train.ema_decay == 0.99 and cfg.model.input_skip is True
