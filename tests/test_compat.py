"""Import paths users may hold from before the move to folders by stage keep working for one release:
the old flat modules resolve their names with a DeprecationWarning that names the new import; the
package faces (`rewardlab.scoring.Scorer`, `rewardlab.losses`) work without one."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

MOVED = [
    ("rewardlab.modeling", "load_reward_model", "rewardlab.model.saved"),
    ("rewardlab.modeling", "build_reward_model", "rewardlab.model.build"),
    ("rewardlab.modeling", "ModelCard", "rewardlab.model.saved"),
    ("rewardlab.modeling", "RewardModel", "rewardlab.model.reward_model"),
    ("rewardlab.train", "train", "rewardlab.training.run"),
    ("rewardlab.train", "TrainingInterrupted", "rewardlab.training.loop"),
    ("rewardlab.train", "latest_checkpoint", "rewardlab.training.checkpoint"),
    ("rewardlab.scoring", "pick_device", "rewardlab.scoring.scorer"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_old_path_still_works_and_warns(old, name, new):
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_from_import_of_an_old_name_warns():
    with pytest.warns(DeprecationWarning, match="rewardlab.train.train moved to rewardlab.training.run"):
        from rewardlab.train import train
    from rewardlab.training.run import train as new

    assert train is new


def test_unknown_name_on_an_old_path_is_an_attribute_error():
    import rewardlab.modeling

    with pytest.raises(AttributeError, match="no_such_name"):
        rewardlab.modeling.no_such_name  # noqa: B018


def test_package_faces_need_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from rewardlab.losses import grouped_bt, outcome_bce, step_bce
        from rewardlab.scoring import Scorer
        from rewardlab.scoring.scorer import Scorer as direct

    assert Scorer is direct and all(callable(f) for f in (grouped_bt, step_bce, outcome_bce))


def test_scoring_face_stays_torch_free():
    """rewardlab.scoring imports Scorer on first use: its torch-free modules (evaluate, metrics) are light."""
    code = "import sys, rewardlab.scoring.evaluate, rewardlab.scoring.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
