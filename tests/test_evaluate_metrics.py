"""The evaluate stage's pure parts on arrays small enough to check by hand: calibration and land-change
metrics, the per-zone audit with its block bootstrap, the decision value, VT0007's run helpers and
the report's escaping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geo_risk.evaluate.audit import ZoneInputs, block_ids, zone_audit, zone_frame
from geo_risk.evaluate.metrics import (
    brier_score,
    expected_calibration_error,
    figure_of_merit,
    fom_at_observed_quantity,
    reliability_curve,
    top_k,
    top_k_weights,
    weighted_recall_at_area,
)
from geo_risk_errors import InputDataError

# ------------------------------------------------------------------------------------- metrics


def test_figure_of_merit_counts_hits_misses_and_false_alarms():
    # hits 1 (pixel 0), misses 1 (pixel 2), false alarms 2 (pixels 1, 4) → 1 / (1 + 1 + 2)
    assert figure_of_merit([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]) == 0.25
    assert figure_of_merit([1, 0], [1, 0]) == 1.0
    assert math.isnan(figure_of_merit([0, 0], [0, 0]))


def test_fom_at_observed_quantity_flags_as_many_pixels_as_were_lost():
    # 2 losses → the 2 highest scores (pixels 0, 1): 1 hit, 1 miss, 1 false alarm → 1/3
    assert fom_at_observed_quantity(np.array([0.9, 0.8, 0.1, 0.2, 0.7]), np.array([1, 0, 1, 0, 0])) == pytest.approx(1 / 3)


def test_top_k_breaks_ties_by_position():
    np.testing.assert_array_equal(top_k(np.array([1.0, 1.0, 1.0, 0.0]), 2), [True, True, False, False])
    np.testing.assert_array_equal(top_k(np.array([0.0, 2.0, 1.0]), 1), [False, True, False])
    assert top_k(np.array([1.0, 2.0]), 0).sum() == 0


def test_eco_weighted_recall_at_area():
    # flag 2 of 4 pixels (the observed rate): pixels 0 and 1 → weighted loss caught 3 of 3 + 1
    score, label, w = np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 0, 0, 1]), np.array([3.0, 5.0, 1.0, 1.0])
    assert weighted_recall_at_area(score, label, w, 0.5) == pytest.approx(3 / 4)


def test_top_k_weights_count_ties_at_the_cut_fractionally():
    # k = 2 of [3, 1, 1, 1, 0]: the 3 is flagged, one of the three 1s → each with probability 1/3
    np.testing.assert_allclose(top_k_weights(np.array([3.0, 1.0, 1.0, 1.0, 0.0]), 2), [1, 1 / 3, 1 / 3, 1 / 3, 0])
    # no tie at the cut: the plain top k
    np.testing.assert_allclose(top_k_weights(np.array([0.2, 0.9, 0.5]), 2), [0, 1, 1])
    assert top_k_weights(np.array([1.0, 1.0]), 0).sum() == 0
    assert top_k_weights(np.array([1.0, 1.0, 2.0]), 5).sum() == 3  # k capped at the pixel count


def test_eco_weighted_recall_is_the_expectation_over_random_tie_breaking():
    # k = 2 (rate 0.5 of 4): three pixels tied at the top, two of them flagged → each with p = 2/3;
    # the loss of weight 3 is among them, the loss of weight 1 is below the cut → (2/3 · 3) / 4
    score, label, w = np.array([1.0, 1.0, 1.0, 0.0]), np.array([1, 0, 0, 1]), np.array([3.0, 5.0, 1.0, 1.0])
    assert weighted_recall_at_area(score, label, w, 0.5) == pytest.approx(0.5)
    # the order of the pixels no longer matters (it did with ties broken by position: 3/4 here, 0 reversed)
    assert weighted_recall_at_area(score[::-1].copy(), label[::-1].copy(), w[::-1].copy(), 0.5) == pytest.approx(0.5)
    # brute force: the mean over every choice of the 2 flagged among the 3 tied
    picks = [(0, 1), (0, 2), (1, 2)]
    assert np.mean([sum(label[i] * w[i] for i in p) / 4 for p in picks]) == pytest.approx(0.5)


def test_fom_at_observed_quantity_is_the_exact_expectation_over_tied_pixels():
    # 2 losses, all 4 top pixels tied: 2 of them flagged at random; hits h ∈ {0, 1, 2} with
    # probabilities 1/6, 4/6, 1/6 (hypergeometric) and FOM = h / (4 − h) → 4/6 · 1/3 + 1/6 · 1 = 7/18
    score, label = np.array([1.0, 1.0, 1.0, 1.0, 0.0]), np.array([1, 1, 0, 0, 0])
    assert fom_at_observed_quantity(score, label) == pytest.approx(7 / 18)
    # brute force over the 6 equally likely pairs
    import itertools

    fom = [sum(label[list(p)]) / (4 - sum(label[list(p)])) for p in itertools.combinations(range(4), 2)]
    assert fom_at_observed_quantity(score, label) == pytest.approx(np.mean(fom))
    # a pixel above the cut always counts: [2, 1, 1, 0], losses at 0 and 2 → 1 + (1 hit with p 1/2)
    # E = 1/2 · 1/3 (h = 1) + 1/2 · 1 (h = 2) = 2/3
    assert fom_at_observed_quantity(np.array([2.0, 1.0, 1.0, 0.0]), np.array([1, 0, 1, 0])) == pytest.approx(2 / 3)


def test_brier_score_by_hand():
    assert brier_score(np.array([0.0, 0.5, 1.0]), np.array([0, 1, 1])) == pytest.approx(0.25 / 3)


def test_expected_calibration_error_by_hand():
    # 10 bins: bin 0 holds p 0.05, 0.05 with outcomes 0, 1 → |1 − 0.1|; bin 9 holds 0.95, 0.95 (1, 1) → |2 − 1.9|
    p, y = np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 1, 1, 1])
    assert expected_calibration_error(p, y, bins=10) == pytest.approx((0.9 + 0.1) / 4)
    # p = 1 falls in the last bin, a perfectly calibrated 0/1 map has no error
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0, 1]), bins=5) == 0.0


def test_reliability_curve_equal_count_bins():
    r = reliability_curve(np.array([0.4, 0.1, 0.3, 0.2]), np.array([1, 0, 1, 0]), bins=2)
    np.testing.assert_allclose(r.mean_predicted, [0.15, 0.35])
    np.testing.assert_allclose(r.observed_rate, [0.0, 1.0])
    np.testing.assert_array_equal(r.count, [2, 2])


@pytest.mark.parametrize("bad", [[0.5, np.nan], [0.5, 1.2], [-0.1, 0.3]])
def test_probability_metrics_refuse_non_probabilities(bad):
    with pytest.raises(InputDataError, match="probabilities must be finite"):
        brier_score(np.array(bad), np.array([0, 1]))


# ------------------------------------------------------------------------------------- audit


def test_block_ids_row_major():
    np.testing.assert_array_equal(block_ids((3, 5), 2), [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]])


def _audit_inputs():
    # zone 1: blocks 0 (lost 1, 0; both flagged) and 1 (nothing lost, nothing flagged)
    # zone 2: blocks 0 (lost 1, 1; second flagged) and 1 (kept, kept); zone 3: one pixel
    return ZoneInputs(
        zone=np.array([1, 1, 1, 1, 2, 2, 2, 2, 3]),
        block=np.array([0, 0, 1, 1, 0, 0, 1, 1, 1]),
        lost=np.array([1, 0, 0, 0, 1, 1, 0, 0, 0], dtype=bool),
        risk_model=np.array([0.4, 0.2, 0.1, 0.1, 0.6, 0.2, 0.1, 0.1, 0.5]),
        risk_map=np.array([0.3, 0.3, 0.1, 0.1, 0.4, 0.2, 0.1, 0.1, 0.5]),
        flagged=np.array([1, 1, 0, 0, 0, 1, 0, 0, 1], dtype=bool),
    )


def test_zone_audit_point_estimates_by_hand():
    a = zone_audit(_audit_inputs(), {1: "A", 2: "B"}, min_zone_pixels=2, pixel_area_ha=0.09,
                   flagged_actions=["patrol"], replicates=0)
    z1, z2, z3 = a.zones
    assert (z1.name, z1.forest_pixels, z1.counted) == ("A", 4, True)
    assert (z3.name, z3.forest_pixels, z3.counted) == ("", 1, False)
    assert z1.observed_loss_rate.value == 0.25 and z2.observed_loss_rate.value == 0.5
    assert z1.mean_risk_model.value == pytest.approx(0.2) and z1.mean_risk_map.value == pytest.approx(0.2)
    assert z2.mean_risk_model.value == pytest.approx(0.25) and z2.mean_risk_map.value == pytest.approx(0.2)
    assert z1.fnr.value == 0.0 and z1.fpr.value == pytest.approx(1 / 3)  # lost pixel flagged; 1 of 3 kept flagged
    assert z2.fnr.value == 0.5 and z2.fpr.value == 0.0
    assert z1.flagged_ha == pytest.approx(0.18) and z2.flagged_ha == pytest.approx(0.09)
    assert math.isnan(z1.observed_loss_rate.low)  # no replicates, no interval
    # summaries over zones 1 and 2 only (zone 3 has fewer than 2 pixels)
    s = {g.metric: g for g in a.summaries}
    assert s["observed_loss_rate"].max_minus_min == 0.25 and s["observed_loss_rate"].max_over_min == 2.0
    assert s["observed_loss_rate"].variance == pytest.approx(0.015625)
    assert math.isnan(s["fpr"].max_over_min)  # zone 2 flags no kept pixel: ratio undefined


def test_zone_audit_block_bootstrap_interval():
    # zone 1 resamples its 2 blocks: loss rate 0.5 (block 0 twice), 0.25 or 0 (block 1 twice), each extreme p = 1/4
    a = zone_audit(_audit_inputs(), {}, min_zone_pixels=2, pixel_area_ha=1.0, flagged_actions=["patrol"],
                   replicates=2000, confidence=0.9, seed=1)
    r = a.zones[0].observed_loss_rate
    assert (r.low, r.value, r.high) == (0.0, 0.25, 0.5)
    assert a.zones[0].fnr.low == 0.0 and a.zones[0].fnr.high == 0.0  # the lost pixel is always flagged
    assert math.isnan(a.zones[2].observed_loss_rate.low)  # one block: no interval
    # the same seed gives the same intervals
    b = zone_audit(_audit_inputs(), {}, min_zone_pixels=2, pixel_area_ha=1.0, flagged_actions=["patrol"],
                   replicates=2000, confidence=0.9, seed=1)
    assert repr(a) == repr(b)  # (NaN intervals: == would be False)


def test_zone_frame_is_fairlearn_metricframe_over_block_sums_equal_to_per_pixel():
    """The bookkeeping is fairlearn's MetricFrame; over (zone, block) sums it gives exactly what a
    MetricFrame over the pixels gives (ratios of sums), and its difference/ratio are the summaries."""
    from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate

    x = _audit_inputs()
    a = zone_audit(x, {}, min_zone_pixels=2, pixel_area_ha=1.0, flagged_actions=["p"], replicates=0)
    # per pixel, with fairlearn's own FNR / FPR (zone 3 left out: one pixel, not counted)
    keep = x.zone < 3
    per_pixel = MetricFrame(metrics={"fnr": false_negative_rate, "fpr": false_positive_rate},
                            y_true=x.lost[keep].astype(int), y_pred=x.flagged[keep].astype(int),
                            sensitive_features=x.zone[keep])
    for r in a.zones[:2]:
        assert r.fnr.value == pytest.approx(per_pixel.by_group.loc[r.zone_id, "fnr"])
        assert r.fpr.value == pytest.approx(per_pixel.by_group.loc[r.zone_id, "fpr"])
    s = {g.metric: g for g in a.summaries}
    assert s["fnr"].max_minus_min == pytest.approx(float(per_pixel.difference()["fnr"]))  # 0.5 − 0
    # zone_frame on hand-made sums: zone 1 rows (n, lost, …) = (2, 1, …) and (2, 0, …); zone 2 uncounted
    sums = np.array([[2, 1, 0.6, 0.6, 1, 1], [2, 0, 0.2, 0.2, 0, 0], [5, 5, 1, 1, 0, 0]], dtype=float)
    f = zone_frame(sums, np.array([1, 1, 2]), np.array([True, True, False]))
    assert isinstance(f, MetricFrame)
    row = f.by_group.loc[(True, 1)]
    assert (row["forest_pixels"], row["observed_loss_rate"], row["fnr"], row["fpr"]) == (4, 0.25, 0.0, 1 / 3)
    assert row["mean_risk_map"] == pytest.approx(0.2) and row["flagged_pixels"] == 2
    assert f.by_group.loc[(False, 2), "observed_loss_rate"] == 1.0 and math.isnan(f.by_group.loc[(False, 2), "fpr"])


def test_gap_summaries_skip_uncounted_and_nan():
    a = zone_audit(_audit_inputs(), {}, min_zone_pixels=1, pixel_area_ha=1.0, flagged_actions=["p"], replicates=0)
    s = {g.metric: g for g in a.summaries}
    # zone 3 now counts: observed rates 0.25, 0.5, 0; FNR NaN in zone 3 (no loss) is left out
    assert s["observed_loss_rate"].max_minus_min == 0.5 and math.isnan(s["observed_loss_rate"].max_over_min)
    assert s["fnr"].max_minus_min == 0.5


# ------------------------------------------------------------------------------------- decision value


def test_decision_value_by_hand():
    from geo_risk.evaluate.value import DECISION, THRESHOLD, bayes_actions, constant_rules, decision_value, \
        threshold_actions

    cost = [[0, 100], [10, 10]]  # patrol where 100·p > 10
    p = np.array([0.05, 0.2, 0.6, 0.0])
    lost = np.array([0, 1, 1, 0], dtype=bool)
    np.testing.assert_array_equal(bayes_actions(p, cost), [0, 1, 1, 0])
    rules = {DECISION: bayes_actions(p, cost), THRESHOLD: threshold_actions(p, 2), **constant_rules(["none", "patrol"], 4)}
    v = decision_value(rules, p, lost, cost, ["none", "patrol"], 1.0)
    r = {x.name: x for x in v.rules}
    bayes, thr = r[DECISION], r[THRESHOLD]
    assert (bayes.flagged_ha, bayes.expected_cost, bayes.realised_cost) == (2.0, 25.0, 20.0)  # 5+10+10+0; 0+10+10+0
    assert (thr.flagged_ha, thr.expected_cost, thr.realised_cost) == (1.0, 35.0, 110.0)  # 5+20+10+0; 0+100+10+0
    nothing, everything = r["flag nothing (none everywhere)"], r["flag everything (patrol everywhere)"]
    assert (nothing.expected_cost, nothing.realised_cost) == (85.0, 200.0)
    assert (everything.expected_cost, everything.realised_cost, everything.flagged_ha) == (40.0, 40.0, 4.0)
    assert bayes.realised_vs_threshold == pytest.approx(20 / 110) and v.target_met is True
    assert bayes.within_budgets is None


def test_decision_value_three_actions():
    from geo_risk.evaluate.value import THRESHOLD, bayes_actions, constant_rules, decision_value, threshold_actions

    cost = [[0, 100], [2, 60], [10, 25]]  # none / monitor / patrol (the demo's matrix)
    p = np.array([0.0, 0.1, 0.5])
    # expected costs: p 0 → 0, 2, 10; p 0.1 → 10, 5.8, 11.5; p 0.5 → 50, 31, 17.5
    np.testing.assert_array_equal(bayes_actions(p, cost), [0, 1, 2])
    np.testing.assert_array_equal(threshold_actions(p, 3), [0, 0, 2])  # the strongest action where p ≥ 0.5
    lost = np.array([0, 1, 1], dtype=bool)
    rules = {"bayes": bayes_actions(p, cost), THRESHOLD: threshold_actions(p, 3),
             **constant_rules(["none", "monitor", "patrol"], 3)}
    v = decision_value(rules, p, lost, cost, ["none", "monitor", "patrol"], 1.0, {"bayes": True})
    r = {x.name: x for x in v.rules}
    assert r["bayes"].realised_cost == 0 + 60 + 25 and r["bayes"].within_budgets is True
    assert r[THRESHOLD].realised_cost == 0 + 100 + 25
    assert r["every pixel (monitor everywhere)"].realised_cost == 2 + 60 + 60
    assert v.target_met is None  # no plan named as the decision map
    with pytest.raises(InputDataError, match="3 actions × 2 states"):
        decision_value(rules, p, lost, [[0, 1], [1, 0]], ["none", "monitor", "patrol"], 1.0)


# ------------------------------------------------------------------------------------- VT0007 on a run


def test_benchmark_probability_rescales_to_the_confirmation_length():
    from geo_risk.evaluate import vt0007 as vt
    from geo_risk.evaluate.verra import Benchmark, PeriodLayers, benchmark_probability

    forest = np.ones((1, 2), bool)
    classes = vt.VulnerabilityClasses(np.array([[1, 2]], dtype=np.int16), 30, 0, np.array([0.0]))
    dens = vt.class_density(classes, np.array([[False, True]]), forest, years=5, pixel_area_ha=0.09)
    cnf = PeriodLayers("2010-2020", 10.0, forest, np.zeros((1, 2), bool), np.zeros((1, 2)))
    p = benchmark_probability(Benchmark(30.0, classes, classes, dens), cnf)
    np.testing.assert_allclose(p, [[0.0, 1.0]])  # class frequencies 0 and 1 stay 0 and 1
    dens2 = vt.class_density(vt.VulnerabilityClasses(np.array([[2, 2]], dtype=np.int16), 30, 0, np.array([0.0])),
                             np.array([[False, True]]), forest, years=5, pixel_area_ha=0.09)
    c2 = vt.VulnerabilityClasses(np.array([[2, 2]], dtype=np.int16), 30, 0, np.array([0.0]))
    # frequency 0.5 over 5 years → 1 − 0.5² = 0.75 over 10 years
    np.testing.assert_allclose(benchmark_probability(Benchmark(30.0, c2, c2, dens2), cnf), [[0.75, 0.75]])


def test_cell_grid_default_skips_and_explicit_refuses_a_cell_as_large_as_the_region():
    from geo_risk.evaluate.verra import cell_grid

    inside = np.ones((10, 10), bool)
    cells, why = cell_grid((10, 10), (30.0, 30.0), inside, None, explicit=False)  # 300 m region, 31.6 km cell
    assert cells is None and "evaluate.cell_size_m" in why
    with pytest.raises(InputDataError, match="as large as the whole region.*smaller evaluate.cell_size_m"):
        cell_grid((10, 10), (30.0, 30.0), inside, 300.0, explicit=True)
    cells, label = cell_grid((10, 10), (30.0, 30.0), inside, 150.0, explicit=True)
    assert label == "square cells of 150 m" and np.unique(cells).tolist() == [1, 2, 3, 4]


def test_expected_total_larger_than_the_forest_is_refused():
    from geo_risk.evaluate.verra import MapPair, PeriodLayers, benchmark, run_vt0007

    forest = np.ones((4, 4), bool)
    loss = np.zeros((4, 4), bool)
    loss[0, :2] = True
    dist = np.tile(np.arange(1, 5) * 30.0, (4, 1))
    cal = PeriodLayers("2005-2010", 5.0, forest, loss, dist)
    cnf = PeriodLayers("2010-2015", 5.0, forest, loss, dist)
    b = benchmark(cal, cnf, 30.0, 0.09)
    maps = [MapPair("m", np.full((4, 4), 0.1), np.full((4, 4), 0.1))]
    # 16 pixels · 0.09 ha = 1.44 ha of forest; 1 ha/yr over 5 years is 5 ha
    with pytest.raises(InputDataError, match="expected_ha_per_yr.*more than the 1 ha of forest"):
        run_vt0007(cal, cnf, b, maps, cells=None, cells_label="", pixel_area_ha=0.09, expected_ha_per_yr=1.0)
    run = run_vt0007(cal, cnf, b, maps, cells=None, cells_label="skipped", pixel_area_ha=0.09,
                     expected_ha_per_yr=0.2)
    assert run.metrics.skipped == "skipped" and run.metrics.density_map == "m"
    assert np.nansum(run.density_ha_per_pixel_yr) == pytest.approx(0.2)  # the allocation keeps the total


def test_benchmark_needs_calibration_loss():
    from geo_risk.evaluate.verra import PeriodLayers, benchmark

    forest = np.ones((2, 2), bool)
    none = PeriodLayers("2005-2010", 5.0, forest, np.zeros((2, 2), bool), np.ones((2, 2)))
    with pytest.raises(InputDataError, match="calibration period 2005-2010.*no observed forest loss"):
        benchmark(none, none, 30.0, 0.09)


# ------------------------------------------------------------------------------------- metrics.json


def test_metrics_with_every_block_round_trip(tmp_path):
    from geo_risk.artifacts import (
        CellErrors, Coverage, DecisionRule, DecisionValue, FairnessAudit, GapSummary, Interval, Metrics,
        ReliabilityCurve, ScoreCard, Scores, Vt0007Map, Vt0007Metrics, ZoneAudit, ZoneMetrics,
    )

    e = CellErrors(1.0, 0.1, 2.0, 3.0, 2.5, float("nan"), 4, 1, 10.0, 10.0, 0.9, 0, 3)
    iv = Interval(0.1, 0.05, 0.2)
    m = Metrics(
        period="2010-2015", pixels=10, observed_loss_rate=0.1, model=Scores(0.9, 0.3, 0.4),
        baseline_distance_to_edge=Scores(0.8, 0.2, 0.1), zones=ZoneMetrics(2, 50, 0.01, 0.02),
        coverage=Coverage(10, 9, 1, 0, 0.09, 0.9),
        scorecards=[ScoreCard("map", 0.9, 0.3, 0.05, 0.01, 0.2, 0.4, 0.1),
                    ScoreCard("d", 0.8, 0.2, float("nan"), float("nan"), 0.1, 0.1, float("nan"), False)],
        reliability=[ReliabilityCurve("map", [0.1, 0.2], [0.1, 0.3], [5, 5])],
        vt0007=Vt0007Metrics("2005-2010", "2010-2015", 600.0, "square", None, 0.0, Vt0007Map("benchmark", e, e),
                             [Vt0007Map("map", e, e, True, False, False, "")], "map", 5.0, "observed", 5.0, 0.0),
        fairness=FairnessAudit(["patrol"], 50, 100, 32, 0.9, [ZoneAudit(1, "A<b>", 60, True, iv, iv, iv, iv, iv, 1.0)],
                               [GapSummary("fnr", 0.1, float("nan"), 0.01)]),
        decision_value=DecisionValue(["none", "patrol"], [[0.0, 100.0], [10.0, 10.0]],
                                     [DecisionRule("bayes", 1.0, 2.0, 3.0, None, True)], 0.7, None, "a note"),
    )
    m.write(tmp_path / "metrics.json")
    assert "NaN" not in (tmp_path / "metrics.json").read_text()
    back = Metrics.read(tmp_path / "metrics.json")
    assert repr(back) == repr(m)  # every block rebuilt with its types (repr: NaN != NaN)
    assert back.decision_value == m.decision_value and back.reliability == m.reliability
    assert math.isnan(back.scorecards[1].brier) and back.scorecards[1].is_probability is False
    assert back.vt0007.cell_size_m is None and math.isnan(back.vt0007.models[0].fit.r2)
