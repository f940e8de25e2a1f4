import pytest

from brainlib import runs
from brainlib.config import ConfigError, load_profile, parse_overrides, profile_names


def test_three_profiles_exist_and_paper_is_the_paper_protocol():
    assert {"demo", "smoke", "paper"} <= set(profile_names())
    paper = load_profile("paper")
    assert (paper.image_size, paper.weights, paper.dataset) == (
        224,
        "imagenet",
        "brain-tumors-256x256",
    )
    assert (paper.learning_rate, paper.batch_size, paper.max_epochs) == (1e-4, 16, 100)
    assert paper.split_fractions == (0.8, 0.1, 0.1) and paper.strict_data


def test_demo_is_offline_and_smoke_is_tiny():
    demo, smoke = load_profile("demo"), load_profile("smoke")
    assert demo.dataset == smoke.dataset == "phantoms"
    assert demo.weights == smoke.weights == "none"
    assert smoke.image_size < demo.image_size < 224


def test_overrides_are_coerced_from_strings():
    p = load_profile("smoke", **parse_overrides(["max_epochs=3", "fast_path=true", "dropout=0.25"]))
    assert (p.max_epochs, p.fast_path, p.dropout) == (3, True, 0.25)


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        (["nonsense=1"], "unknown profile field"),
        (["max_epochs=many"], "cannot read"),
        (["split=random"], "split must be"),
        (["image_size=16"], "at least 32"),
        (["noequals"], "field=value"),
    ],
)
def test_bad_overrides_are_refused(pairs, match):
    with pytest.raises(ConfigError, match=match):
        load_profile("smoke", **parse_overrides(pairs))


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_profile("nope")


def test_mixed_precision_takes_auto_and_refuses_other_words():
    assert load_profile("smoke", mixed_precision="auto").mixed_precision == "auto"
    assert load_profile("smoke", mixed_precision="true").mixed_precision is True
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_profile("smoke", mixed_precision="sometimes")


def test_init_from_chains_stages_on_the_final_runs_data():
    from brainlib.config import init_profile

    final = load_profile("real224", split="dedup", seed=7, subsample=3)
    stage2 = init_profile(final)
    stage1 = init_profile(stage2)
    assert (stage2.name, stage1.name, init_profile(stage1)) == ("real128", "real64", None)
    for stage in (stage2, stage1):
        assert (stage.split, stage.seed, stage.subsample) == ("dedup", 7, 3)
    assert (stage1.image_size, stage2.image_size, final.image_size) == (64, 128, 224)
    with pytest.raises(ConfigError, match="names no profile"):
        load_profile("smoke", init_from="nonesuch")
    with pytest.raises(ConfigError, match="itself"):
        load_profile("smoke", init_from="smoke")
    with pytest.raises(ConfigError, match="weights = 'none'"):
        load_profile("paper", init_from="smoke")


def test_grid_fields_read_from_toml_and_command_line():
    p = load_profile("real224")
    assert len(p.seeds) >= 3 and p.splits == ("paper", "dedup", "grouped")
    q = load_profile("smoke", seeds="7, 8", splits="grouped")
    assert q.seeds == (7, 8) and q.splits == ("grouped",)
    with pytest.raises(ConfigError, match="'random'"):
        load_profile("smoke", splits="paper,random")
    with pytest.raises(ConfigError, match="repeat"):
        load_profile("smoke", seeds="1,1")
    with pytest.raises(ConfigError, match="seeds"):
        load_profile("smoke", seeds="1,x")


def test_grid_pairs_profile_first_without_repeats():
    p = load_profile("smoke", seeds=(3, 42), splits=("grouped", "paper"))
    assert runs.grid(p) == [("paper", 42), ("grouped", 3), ("grouped", 42), ("paper", 3)]
    assert runs.grid(load_profile("smoke")) == [("paper", 42)]


def test_finished_runs_survive_fields_that_do_not_change_training():
    old = load_profile("scratch").to_dict()
    for key in ("seeds", "splits"):  # a run.json written before these fields existed
        old.pop(key)
    new = load_profile("scratch", bootstrap_resamples=50, description="x").to_dict()
    assert runs.training_fields_changed(old, new) == []
    changed = runs.training_fields_changed(old, load_profile("scratch", dropout=0.3).to_dict())
    assert changed == ["dropout: 0.5 != 0.3"]
    old.pop("bn_momentum")  # missing in an old run.json: counts only if not the default
    assert runs.training_fields_changed(old, new) == ["bn_momentum: None != 0.9"]
