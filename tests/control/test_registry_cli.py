"""gcann controllers: the listing a user reads, against the registry's own settings classes."""
from __future__ import annotations

import dataclasses
import json

from gcann.cli import main
from gcann.control import CONTROLLERS


def test_controllers_json_lists_every_controller_with_its_defaults(capsys):
    assert main(["controllers", "--json"]) == 0
    docs = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert list(docs) == list(CONTROLLERS)
    for name, cls in CONTROLLERS.items():
        d = docs[name]
        assert {"name", "source", "law", "settings", "defaults", "needs", "knobs"} <= set(d)
        assert d["source"] and d["law"] and "\n" not in d["law"]
        if name.startswith("gcann"):
            assert d["defaults"]["preset"] == cls.defaults()["preset"]
        else:
            fields = {f.name: f.default for f in dataclasses.fields(cls.Settings)}
            assert d["defaults"] == json.loads(json.dumps(fields))


def test_controllers_text_lists_every_name(capsys):
    assert main(["controllers"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: " in out for name in CONTROLLERS)
