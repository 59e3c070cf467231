"""The graph of a definition: nodes, labelled edges, a layout without overlaps."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from durable.dsl.nodes import LoopNode, OnDecisionNode, SwitchNode
from durable.exceptions import WorkflowNotFound
from durable.graph import generate
from durable.graph.build import CELL_HEIGHT, CELL_WIDTH
from testproject.demo.workflows import ProcessOrder
from tests.graph.examples import ALL
from tests.graph.workflows import AWKWARD, Awkward

NODE_TYPES = {"start", "end", "step", "decision", "parallel", "join", "foreach", "loop", "switch"}


def edges_from(g: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [edge for edge in g["edges"] if edge["from"] == source]


@pytest.mark.parametrize("workflow", ALL, ids=lambda cls: cls.definition().name)
def test_every_workflow_gives_a_well_formed_graph(workflow: type[Any]) -> None:
    g = generate(workflow)
    definition = workflow.definition()
    ids = [node["id"] for node in g["nodes"]]
    types = Counter(node["type"] for node in g["nodes"])

    assert len(ids) == len(set(ids))
    assert set(types) <= NODE_TYPES
    assert types["start"] == types["end"] == 1
    for name in definition.by_name:
        if not isinstance(definition.by_name[name], OnDecisionNode):
            assert name in ids
    for edge in g["edges"]:
        assert edge["from"] in ids, edge
        assert edge["to"] in ids, edge
    for a, b in itertools.combinations(g["nodes"], 2):
        dx = abs(a["position"]["x"] - b["position"]["x"])
        dy = abs(a["position"]["y"] - b["position"]["y"])
        assert dx >= CELL_WIDTH or dy >= CELL_HEIGHT, (a, b)
    for node in definition.by_name.values():
        if isinstance(node, OnDecisionNode):
            labels = {e["label"] for e in g["edges"] if node.decision in e["label"]}
            labels |= {e["label"] for e in edges_from(g, node.decision)}
            assert "otherwise" in " ".join(labels), labels
            assert all(labels), labels
        if isinstance(node, SwitchNode):
            assert all(edge["label"] for edge in edges_from(g, node.name))
        if isinstance(node, LoopNode):
            back = [e for e in g["edges"] if e["back"] and e["to"] == node.name]
            assert back
            assert all(edge["label"] == "repeat" for edge in back)
            assert {e["label"] for e in edges_from(g, node.name) if not e["back"]} >= {"done"}


def test_every_node_lies_on_a_path_from_start_to_end() -> None:
    for workflow in ALL:
        g = generate(workflow)
        start = next(n["id"] for n in g["nodes"] if n["type"] == "start")
        end = next(n["id"] for n in g["nodes"] if n["type"] == "end")
        forward = [(e["from"], e["to"]) for e in g["edges"] if not e["back"]]
        every = [(e["from"], e["to"]) for e in g["edges"]]
        reach, back_reach = {start}, {end}
        for _ in g["nodes"]:
            reach |= {b for a, b in forward if a in reach}
            back_reach |= {a for a, b in every if b in back_reach}
        assert reach == back_reach == {n["id"] for n in g["nodes"]}, workflow


def test_process_order_graph() -> None:
    g = generate(ProcessOrder)
    nodes = {node["id"]: node for node in g["nodes"]}
    edges = {(e["from"], e["to"], e["label"]) for e in g["edges"]}

    assert nodes["check_order_value"]["type"] == "decision"
    assert nodes["provision"]["type"] == "parallel"
    assert nodes["provision:join"]["type"] == "join"
    assert nodes["pack_items"]["type"] == "foreach"
    assert nodes["book_courier"]["type"] == "loop"
    assert nodes["choose_shipping"]["type"] == "switch"
    assert {
        ("check_order_value", "flag_for_review", "high_value"),
        ("check_order_value", "auto_approve", "standard"),
        ("check_order_value", "provision", "otherwise"),
        ("provision", "send_confirmation_email", ""),
        ("notify_warehouse", "provision:join", ""),
        ("pack_items", "pack_item", "each item"),
        ("pack_item", "pack_items:join", ""),
        ("request_courier", "book_courier", "repeat"),
        ("book_courier", "choose_shipping", "done"),
        ("choose_shipping", "ship_domestic", "US"),
        ("choose_shipping", "ship_international", "default"),
        ("ship_domestic", "__end__", ""),
    } <= edges
    # Ranks go top to bottom; branches sit side by side on one rank.
    y = {node_id: node["position"]["y"] for node_id, node in nodes.items()}
    x = {node_id: node["position"]["x"] for node_id, node in nodes.items()}
    assert y["__start__"] < y["validate_inventory"] < y["check_order_value"] < y["__end__"]
    assert y["flag_for_review"] == y["auto_approve"]
    assert x["flag_for_review"] < x["auto_approve"]
    assert y["send_confirmation_email"] == y["notify_warehouse"]
    assert y["provision"] < y["send_confirmation_email"] < y["provision:join"]


def test_names_are_not_confused_with_the_nodes_the_graph_adds() -> None:
    g = generate(Awkward)
    types = {node["id"]: node["type"] for node in g["nodes"]}

    assert types["start"] == types["end"] == "step"
    assert types[AWKWARD] == "parallel"
    assert types[f"{AWKWARD}:join"] == "join"
    assert [n["type"] for n in g["nodes"]].count("start") == 1


def test_a_switch_without_default_goes_on_otherwise_and_keys_are_labelled_as_python() -> None:
    g = generate(Awkward)
    labels = {(e["from"], e["label"]) for e in g["edges"]}

    assert ("no default", "otherwise") in labels
    assert ("no default", "1") in labels
    assert ("route: 'a' -> b", "None") in labels
    assert ("route: 'a' -> b", "default") in labels


def test_generate_takes_a_name_and_refuses_unknown_ones() -> None:
    assert generate("process_order") == generate(ProcessOrder)
    with pytest.raises(WorkflowNotFound):
        generate("no_such_workflow")
    with pytest.raises(TypeError):
        generate(42)
