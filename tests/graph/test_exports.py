"""DOT, Mermaid, Cytoscape and SVG exports, checked by Graphviz and Mermaid's own parser."""

from __future__ import annotations

import itertools
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from durable.graph import generate, to_cytoscape, to_dot, to_mermaid, to_svg
from durable.graph.build import CELL_WIDTH
from durable.graph.svg import Drawing, overlaps
from testproject.demo.workflows import ProcessOrder
from tests.graph.examples import ALL
from tests.graph.tools import dot_binary, mermaid_parser
from tests.graph.workflows import AWKWARD, Awkward

SVG = "{http://www.w3.org/2000/svg}"


def test_graphviz_renders_the_dot_export_of_every_workflow(tmp_path: Path) -> None:
    dot = dot_binary()
    for workflow in ALL:
        source = tmp_path / f"{workflow.definition().name}.dot"
        source.write_text(to_dot(generate(workflow)), encoding="utf-8")
        result = subprocess.run(
            [dot, "-Tsvg", str(source)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (workflow, result.stderr)
        assert not result.stderr, (workflow, result.stderr)
        ET.fromstring(result.stdout)


def test_graphviz_keeps_awkward_labels_whole() -> None:
    result = subprocess.run(
        [dot_binary(), "-Tsvg"],
        input=to_dot(generate(Awkward)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    texts = [t.text for t in ET.fromstring(result.stdout).iter(f"{SVG}text")]
    # Graphviz draws the two lines of the label as two texts.
    assert 'say "hi" <b>&amp;</b>' in texts
    assert "[x] {y} (z) |p| #1; end" in texts
    assert 'quote " here' in texts


def test_mermaid_parses_the_export_of_every_workflow(tmp_path: Path) -> None:
    command = mermaid_parser()
    files = []
    for workflow in ALL:
        path = tmp_path / f"{workflow.definition().name}.mmd"
        path.write_text(to_mermaid(generate(workflow)), encoding="utf-8")
        files.append(str(path))
    result = subprocess.run([*command, *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (flowchart") == len(files)


def test_mermaid_parser_rejects_a_broken_chart(tmp_path: Path) -> None:
    """The check above would be worthless if the parser accepted anything."""
    broken = tmp_path / "broken.mmd"
    broken.write_text('flowchart TD\n  n0["unclosed] --> n1\n', encoding="utf-8")
    result = subprocess.run(
        [*mermaid_parser(), str(broken)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1


def test_mermaid_labels_are_entities_not_syntax() -> None:
    text = to_mermaid(generate(Awkward))

    assert 'n0(("start"))' in text
    assert "#34;hi#34; #60;b#62;#38;amp#59;#60;/b#62;<br>#91;x#93;" in text
    assert '-->|"quote #34; here"|' in text
    assert AWKWARD not in text


def test_dot_escapes_quotes_backslashes_and_newlines() -> None:
    text = to_dot(generate(Awkward))

    assert '"say \\"hi\\" <b>&amp;amp;</b>\\n[x] {y} (z) |p| #1; end"' in text
    assert '-> "quoted" [label="quote \\" here"]' in text
    assert "style=dashed" not in text
    assert "style=dashed, constraint=false" in to_dot(generate(ProcessOrder))


def test_cytoscape_elements() -> None:
    g = generate(ProcessOrder)
    elements = to_cytoscape(g)["elements"]
    ids = [n["data"]["id"] for n in elements["nodes"]] + [
        e["data"]["id"] for e in elements["edges"]
    ]

    assert len(ids) == len(set(ids))
    first = elements["nodes"][0]
    assert first == {
        "data": {"id": "__start__", "type": "start", "label": "start"},
        "position": g["nodes"][0]["position"],
    }
    assert {
        "id": "e0",
        "source": "__start__",
        "target": "validate_inventory",
        "label": "",
        "back": False,
    } in [e["data"] for e in elements["edges"]]
    json.dumps(to_cytoscape(generate(Awkward)))


def svg_nodes(svg: str) -> list[Any]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "").split()]


def test_svg_is_well_formed_with_one_addressable_element_per_node() -> None:
    for workflow in ALL:
        g = generate(workflow)
        nodes = svg_nodes(to_svg(g))
        assert [n.get("data-node-id") for n in nodes] == [n["id"] for n in g["nodes"]]
        element_ids = [n.get("id") for n in nodes]
        assert len(set(element_ids)) == len(element_ids)
        assert all(i.startswith("node-") for i in element_ids)


def test_svg_escapes_labels_and_slugifies_ids() -> None:
    svg = to_svg(generate(Awkward))

    assert "<b>" not in svg
    node = next(n for n in svg_nodes(svg) if n.get("data-node-id") == AWKWARD)
    assert node.get("id") == "node-say__hi___b__amp___b___x___y___z___p___1__end"
    assert node.get("class") == "node type-parallel"
    assert node.find(f"{SVG}text").text == 'say "hi" <b>&amp;</b> [x] {y} (z) |p| #1; end'


def test_svg_colours_nodes_by_status_with_classes() -> None:
    g = generate(ProcessOrder)
    g["nodes"][1]["execution_state"] = {"status": "failed", "active": False}
    g["nodes"][2]["execution_state"] = {"status": "running", "active": True}
    svg = to_svg(g)
    nodes = svg_nodes(svg)

    assert nodes[1].get("class") == "node type-step status-failed"
    assert nodes[2].get("class") == "node type-step status-running active"
    assert ".durable-graph .node.status-failed .shape{fill:" in svg
    assert "marker-end" in svg


@pytest.mark.parametrize("workflow", ALL, ids=lambda cls: cls.definition().name)
def test_no_edge_label_overlaps_a_node_or_another_label(workflow: type[Any]) -> None:
    drawing = Drawing(generate(workflow))
    labelled = [edge for edge in generate(workflow)["edges"] if edge["label"].strip()]

    assert len(drawing.labels) == len(labelled)
    for a, b in itertools.combinations(drawing.labels, 2):
        assert not overlaps(a, b), (a, b)
    for label in drawing.labels:
        for node in drawing.nodes:
            assert not overlaps(label, node), (label, node)


def test_the_otherwise_way_has_a_column_of_its_own() -> None:
    g = generate(ProcessOrder)
    at = {node["id"]: node["position"] for node in g["nodes"]}

    # Straight down from the decision to the block after it, between the two branches.
    assert at["check_order_value"]["x"] == at["provision"]["x"]
    assert at["flag_for_review"]["x"] == at["check_order_value"]["x"] - CELL_WIDTH
    assert at["auto_approve"]["x"] == at["check_order_value"]["x"] + CELL_WIDTH


def test_overlaps_is_strict_about_boxes() -> None:
    assert overlaps((0, 0, 10, 10), (5, 5, 15, 15))
    assert not overlaps((0, 0, 10, 10), (10, 0, 20, 10))
    assert not overlaps((0, 0, 10, 10), (0, 11, 10, 20))


def test_svg_draws_progress_bars_on_nodes_that_report_progress() -> None:
    g = generate(ProcessOrder)
    nodes = {node["id"]: node for node in g["nodes"]}
    nodes["charge_payment"]["progress"] = {"done": 3, "total": 4}
    nodes["pack_items"]["progress"] = {"done": 1.0, "total": 5}
    nodes["validate_inventory"]["progress"] = {"done": 2, "total": None}  # no total: no bar
    drawn = {n.get("data-node-id"): n for n in svg_nodes(to_svg(g))}

    def bar(node_id: str) -> Any:
        return next(
            (g for g in drawn[node_id].iter(f"{SVG}g") if g.get("class") == "progress"), None
        )

    assert bar("validate_inventory") is None
    assert bar("book_courier") is None
    charge = bar("charge_payment")
    assert (charge.get("data-done"), charge.get("data-total")) == ("3", "4")
    track, done = charge.findall(f"{SVG}rect")
    assert float(done.get("width")) == pytest.approx(0.75 * float(track.get("width")), abs=0.1)
    assert bar("pack_items").get("data-done") == "1"
