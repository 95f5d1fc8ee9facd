"""The README's preset and recipe tables are the ones the code makes from the configs."""

from pathlib import Path

from tbx_train.config_files import run_preset
from tbx_train.recipe_table import comparison_table, preset_table, user_best_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_holds_the_current_tables():
    assert preset_table() in README, "re-make with `python -m tbx_train.recipe_table`"
    assert comparison_table() in README, "re-make with `python -m tbx_train.recipe_table`"


def test_the_user_column_is_their_file_and_equals_the_preset():
    theirs, ours = user_best_config(), run_preset("tbx11k-user-best")
    assert (theirs.model, theirs.data, theirs.train) == (ours.model, ours.data, ours.train)
