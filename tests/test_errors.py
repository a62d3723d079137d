"""The project's one error base: every user-facing error class derives from GcannError, and the
command line turns one into a single line and its exit status in one place; a bug keeps its traceback."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import dynamics
import gcann
from gcann.cli import cli, main
from gcann.errors import GcannError, one_line

#: Exception classes that are not user-facing errors, and why.
NOT_USER_FACING = {
    "gcann.cli.common._RangeError": "click's exception for an option value out of range (click prints it, exit 2)",
}


def _library_modules():
    for pkg in (gcann, dynamics):
        yield pkg.__name__
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            yield info.name


def _exception_classes():
    out = {}
    for name in _library_modules():
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and not issubclass(obj, Warning)
                    and obj.__module__ == name):
                out[f"{name}.{attr}"] = obj
    return out


def test_every_project_exception_derives_from_the_one_base():
    classes = _exception_classes()
    assert "gcann.errors.GcannError" in classes and len(classes) >= 10, sorted(classes)
    stray = sorted(k for k, c in classes.items() if not issubclass(c, GcannError) and k not in NOT_USER_FACING)
    assert not stray, f"exception classes outside gcann.errors.GcannError: {stray}"
    assert all(k in classes for k in NOT_USER_FACING)


def test_former_value_errors_are_still_value_errors():
    from gcann.controller import ControllerError, NonFiniteLossError
    from gcann.ring import RingError, StateError

    for c in (ControllerError, NonFiniteLossError, RingError, StateError):
        assert issubclass(c, GcannError) and issubclass(c, ValueError)


def test_gcann_config_refuses_with_the_project_error():
    from gcann.controller import GCANNConfig

    with pytest.raises(GcannError, match="GCANNConfig.alpha"):
        GCANNConfig(alpha=2.0)


def test_one_line_takes_the_first_line_or_the_worker_original():
    assert one_line(GcannError("first\nsecond")) == "first"
    assert one_line(GcannError("")) == "GcannError"
    worker = GcannError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                        "  File \"x.py\", line 1\ngcann.data.base.DataError: image 3 is truncated\n")
    assert one_line(worker) == "image 3 is truncated"


@pytest.fixture
def raising_command():
    """A throw-away command raising what the test gives it."""
    box = {}

    @cli.command("raise-for-test")
    def _cmd():
        raise box["exc"]

    yield box
    cli.commands.pop("raise-for-test")


def test_main_turns_a_project_error_into_one_line_and_its_status(raising_command, capsys):
    class Custom(GcannError):
        exit_code = 5

    raising_command["exc"] = GcannError("bad thing\nmore detail")
    assert main(["raise-for-test"]) == 2
    assert capsys.readouterr().err == "gcann: error: bad thing\n"
    raising_command["exc"] = Custom("worse")
    assert main(["raise-for-test"]) == 5
    assert capsys.readouterr().err == "gcann: error: worse\n"


def test_a_bug_keeps_its_traceback(raising_command):
    raising_command["exc"] = ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError, match="a bug"):
        main(["raise-for-test"])


def test_a_library_error_reaches_the_user_as_one_line(capsys):
    """No command catches it: main() does (the ring study's setting parser raises RingError)."""
    rc = main(["ring", "study", "--settings", "nope(1)", "--seeds", "1", "--epochs", "1", "--out", "/tmp/gcann-never"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("gcann: error: unknown setting 'nope(1)'") and err.count("\n") == 1
