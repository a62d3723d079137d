"""gcann.state: the one mechanism that saves and restores a run's parts (the trainer's checkpoints, the ring
study's state files), and its one error class."""
from __future__ import annotations

import pytest
import torch

from gcann.errors import GcannError
from gcann.state import CheckpointError, load_state, save_state

KW = dict(what="widget state", fix="delete it to start afresh")


def test_a_saved_state_reads_back_with_its_header(tmp_path):
    path = tmp_path / "sub" / "s.pt"
    save_state(path, "widget", 3, {"identity": {"lr": 0.1}, "w": torch.arange(4)})
    state = load_state(path, "widget", 3, identity={"lr": 0.1}, **KW)
    assert state["kind"] == "widget" and state["format"] == 3 and torch.equal(state["w"], torch.arange(4))


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "s.pt"
    save_state(path, "widget", 1, {"n": 1})
    with pytest.raises(Exception):
        save_state(path, "widget", 1, {"n": 2, "bad": lambda: None})     # a lambda does not pickle
    assert load_state(path, "widget", 1, **KW)["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["s.pt"]


def test_refusals_are_one_line_and_say_what_to_do(tmp_path):
    assert issubclass(CheckpointError, GcannError) and issubclass(CheckpointError, ValueError)
    with pytest.raises(CheckpointError, match="^no widget state at .*nothing.pt$"):
        load_state(tmp_path / "nothing.pt", "widget", 1, **KW)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file\nsecond line")
    with pytest.raises(CheckpointError, match=r"^cannot read the widget state .*junk.pt: \w+: .*; delete it to start afresh$"):
        load_state(junk, "widget", 1, **KW)
    path = tmp_path / "s.pt"
    save_state(path, "gadget", 1, {})
    with pytest.raises(CheckpointError, match="is not a widget state of this version; delete it to start afresh"):
        load_state(path, "widget", 1, **KW)
    save_state(path, "widget", 2, {})
    with pytest.raises(CheckpointError, match="is not a widget state of this version"):
        load_state(path, "widget", 1, **KW)


def test_an_identity_mismatch_names_the_key_and_both_values(tmp_path):
    path = tmp_path / "s.pt"
    save_state(path, "widget", 1, {"identity": {"seeds": [1, 2], "lr": 0.1}})
    load_state(path, "widget", 1, identity={"seeds": [1, 2]}, **KW)              # a subset of keys is checked
    with pytest.raises(CheckpointError, match=r"saved by a run with another 'lr' \(0.1 here 0.2\); resume with "
                                              r"the same arguments, or delete it to start afresh"):
        load_state(path, "widget", 1, identity={"seeds": [1, 2], "lr": 0.2}, **KW)


def test_a_trainer_checkpoint_of_format_1_without_a_kind_still_reads_and_converts(tmp_path):
    from gcann.train.checkpoint import FORMAT, load_checkpoint

    path = tmp_path / "step_0000001.pt"
    w = torch.nn.Parameter(torch.ones(3))
    adam = torch.optim.Adam([w])
    w.grad = torch.full((3,), 0.5)
    adam.step()
    # as written before the header had a kind, and the optimisers' states were torch.optim.Adam's
    torch.save({"format": 1, "step": 1, "opt_d": adam.state_dict(), "opt_g": adam.state_dict()}, path)
    state = load_checkpoint(path)
    assert state["step"] == 1 and state["format"] == FORMAT == 2
    assert state["opt_d"]["steps"].tolist() == [1]
    assert torch.equal(state["opt_g"]["exp_avg"][0], adam.state[w]["exp_avg"].unsqueeze(0))
    torch.save({"format": 1, "step": 1}, path)                      # no optimiser states: refused in one line
    with pytest.raises(CheckpointError, match=r"^cannot read the checkpoint .* of format 1: it has no 'opt_d'; use another"):
        load_checkpoint(path)
    save_state(path, "ring-state", FORMAT, {"step": 1})
    with pytest.raises(CheckpointError, match="is not a checkpoint of this version"):
        load_checkpoint(path)


def test_the_ring_and_the_trainer_share_the_error_class():
    from gcann.ring import StateError
    from gcann.train.checkpoint import CheckpointError as TrainerError

    assert StateError is CheckpointError is TrainerError


def test_a_payload_may_not_overwrite_the_header(tmp_path):
    with pytest.raises(ValueError, match="header"):
        save_state(tmp_path / "s.pt", "ring-state", 5, {"format": 99, "x": 1})
    assert not (tmp_path / "s.pt").exists()


def test_older_formats_are_read_only_through_their_converter(tmp_path):
    path = tmp_path / "s.pt"
    save_state(path, "widget", 1, {"n": 2})
    up = {1: lambda st: {**st, "n": st["n"] * 10}}
    state = load_state(path, "widget", 2, older=up, **KW)
    assert state["n"] == 20 and state["format"] == 2
    with pytest.raises(CheckpointError, match="is not a widget state of this version"):
        load_state(path, "widget", 3, older={2: up[1]}, **KW)     # no converter for format 1
