"""A short run of the sweep kill campaign (`tests/sweep_kill_campaign.py`, issue 20.5): the sweep driver killed
with -9 three times (twice right after a trial's stop line, once at a random moment), then run to the end."""
from __future__ import annotations

import pytest
from sweep_kill_campaign import campaign

pytestmark = pytest.mark.slow


def test_a_sweep_driver_killed_at_several_moments_retrains_no_finished_trial_and_leaves_no_ray_process(tmp_path):
    outcome = campaign(tmp_path / "campaign", kills=3, seed=1, samples=4, max_delay=30.0, log=lambda line: None)
    assert outcome.get("kills", 0) >= 2, outcome  # most kills landed while the sweep ran
    assert outcome.get("kills right after a stop line", 0) >= 1, outcome
    assert outcome.get("Ray processes alive 5 s after a kill", 0) == 0, outcome
    assert outcome["final run exit"] == 0 and outcome["sweep status"] == "done", outcome
    assert outcome["trials"] == outcome["trials done or stopped"] == 4, outcome
    assert outcome["trials with a stop line"] == 4, outcome
    assert outcome["trials trained again after their stop line"] == 0, outcome
    assert outcome["trials whose lines disagree with each other or the summary"] == 0, outcome
    assert outcome["MLflow parent runs of the sweep"] == 1, outcome
