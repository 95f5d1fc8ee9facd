"""Every command of both CLIs has help text (a meta-test, as in sqlite-utils)."""

import pytest
from typer.testing import CliRunner

from tbx_doctor.cli import app as doctor_app
from tbx_train.cli import app as train_app


def _commands(app):
    return [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("app", [doctor_app, train_app], ids=["tbx-doctor", "tbx-train"])
def test_root_help(app):
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("app", "name"),
    [(doctor_app, n) for n in _commands(doctor_app)]
    + [(train_app, n) for n in _commands(train_app)],
)
def test_each_command_has_help(app, name):
    command = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == name)
    assert (command.help or (command.callback.__doc__ or "")).strip(), f"{name} has no help"
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
