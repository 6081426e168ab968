"""Loading a model for serving goes through its kind alone: the service names no kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rldispatch.agents.guided_reopt.model_file import GuidedReoptMetadata, save_guided_model
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.kinds import kind_names
from rldispatch.agents.serving import ModelLoadError, ServedModel
from rldispatch.env import EnvConfig
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.models.loading import load_served_model, probe_day, served_kind
from tests.agents.test_kinds import PlainKind, plain_model  # noqa: F401 - a fixture
from tests.service.helpers import live_request, make_model_file, make_pairwise_model_file

SERVICE = Path(__file__).resolve().parents[2] / "src" / "rldispatch" / "service"


def _compared_strings(tree: ast.AST) -> set[str]:
    """The string constants a comparison (``==``, ``in``, ...) or a ``match`` case names."""
    found = set()
    for node in ast.walk(tree):
        parts: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.MatchValue):
            parts = [node.value]
        for part in parts:
            for leaf in ast.walk(part):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    found.add(leaf.value)
    return found


def test_no_service_module_branches_on_a_kind_name() -> None:
    names = set(kind_names())
    assert {"pairwise", "dqn"} <= names
    branches = {
        path.name: sorted(_compared_strings(ast.parse(path.read_text())) & names)
        for path in sorted(SERVICE.rglob("*.py"))
    }
    assert {name: kinds for name, kinds in branches.items() if kinds} == {}


def test_the_check_sees_a_branch_on_a_kind_name() -> None:
    tree = ast.parse('if model.kind == "pairwise":\n    pass\nmatch k:\n    case "dqn": pass\n')
    assert _compared_strings(tree) == {"pairwise", "dqn"}


def test_a_model_file_is_served_by_its_kind(tmp_path: Path) -> None:
    path = make_model_file(tmp_path / "flat.safetensors")
    assert served_kind(path).name == "dqn"
    served = load_served_model(path, "torch")
    assert (served.kind, served.runtime) == ("dqn", "torch")


def test_a_runtime_the_kind_does_not_serve_on_is_refused_naming_its_runtimes(
    tmp_path: Path,
) -> None:
    path = make_model_file(tmp_path / "flat.safetensors")
    with pytest.raises(ModelLoadError, match=r"^runtime: must be one of"):
        load_served_model(path, "tpu")


def test_a_file_of_no_kind_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a graph" * 10)
    with pytest.raises(ModelLoadError, match="not an ONNX export of an rldispatch model"):
        load_served_model(path)


def test_a_kind_that_cannot_serve_falls_back_with_its_reason(plain_model: Path) -> None:  # noqa: F811
    manager = RLDispatchManager(plain_model, state=ToggleState(enabled=True, ab_ratio=1.0))
    assert manager.model is None
    assert manager.model_error == f"model: a {PlainKind.name} model cannot be served"
    suggestion = manager.suggest(live_request())
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_load_failed")
    assert suggestion.driver_id is not None


def test_the_probe_day_is_a_live_day_of_two_drivers_and_one_booking() -> None:
    env = probe_day("geneva", EnvConfig(max_drivers=2))
    assert env.sim.n_drivers == 2 and env.visible.size == 1
    assert env.action_masks().sum() >= 2  # waiting, and at least one driver can take it


def test_every_shipped_kind_s_served_model_has_what_the_service_reads(tmp_path: Path) -> None:
    """Each kind's loaded model carries every attribute of ``ServedModel``: the service reads
    them of any model (a missing one fails a request, not the load)."""
    files = {
        "dqn": make_model_file(tmp_path / "dqn.safetensors"),
        "pairwise": make_pairwise_model_file(tmp_path / "pairwise.safetensors"),
        "guided-reopt": save_guided_model(
            tmp_path / "guided.safetensors", TermNetwork(), GuidedReoptMetadata(hidden=32)
        ),
    }
    assert set(files) == set(kind_names())  # a new kind is added here too
    members = set(ServedModel.__annotations__) | {
        name for name in vars(ServedModel) if not name.startswith("_")
    }
    assert {"can_look_ahead", "new_player", "serving_config"} <= members
    for kind, path in files.items():
        model = load_served_model(path)
        assert model.kind == kind
        missing = sorted(name for name in members if not hasattr(model, name))
        assert not missing, f"{kind}: {missing}"
