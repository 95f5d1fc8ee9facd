import pytest

from tbx_train.config import MODEL_PRESETS, ConfigError, TrainConfig, model_preset


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_every_preset_validates(name):
    model_preset(name).validate()


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="tbx11k"):
        model_preset("dino-5scale")


def test_tbx11k_preset_uses_raw_category_ids():
    config = model_preset("tbx11k")
    assert (config.num_classes, config.dn_labelbook_size, config.num_queries) == (4, 4, 900)


def test_override_is_validated():
    with pytest.raises(ConfigError, match="nheads"):
        model_preset("tiny", nheads=7)


def test_lr_drops_of_both_schedules():
    assert TrainConfig(epochs=50, lr_drop=11).lr_drops() == [11, 22, 33, 44]
    assert TrainConfig(epochs=50, lr_drop=30).lr_drops() == [30]
    assert TrainConfig(epochs=50, lr_drop_epochs=(40, 30)).lr_drops() == [30, 40]
