"""Templates: parameters, constraints, placeholders, instantiation, the library, versions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony_workflow import Template, TemplateLibrary, WorkflowValidationError, validate
from symphony_workflow._templates import Constraints, Parameter, ParamType, load_template
from symphony_workflow._versioning import SemVer, VersionConstraint

KNOWN = {"llm.classify", "tracker.create_issue", "review.queue", "llm.generate", "textstats.analyze"}


@pytest.fixture
def library(templates_dir: Path) -> TemplateLibrary:
    return TemplateLibrary.from_paths([templates_dir])


def _template(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": "1.0",
        "id": "echo",
        "name": "Echo",
        "version": "1.0.0",
        "parameters": [{"name": "kind", "type": "string", "default": "text"}],
        "workflow": {
            "nodes": [
                {
                    "id": "i",
                    "kind": "input",
                    "type": "input",
                    "outputs": [{"name": "value", "type": "{{ kind }}"}],
                },
                {
                    "id": "o",
                    "kind": "output",
                    "type": "output",
                    "inputs": [{"name": "value", "type": "{{ kind }}"}],
                },
            ],
            "edges": [{"source": "i", "source_port": "value", "target": "o", "target_port": "value"}],
        },
    }
    base.update(changes)
    return base


def test_example_templates_load_and_instantiate(library: TemplateLibrary) -> None:
    assert library.ids() == ["classify-and-route", "summarize-document"]
    assert library.versions("summarize-document") == ["1.0.0", "1.1.0"]
    result = library.get("summarize-document").instantiate({"title": "Q3"}, node_types=KNOWN)
    wf = result.workflow
    assert wf.name == "Summary of Q3" and wf.version == "1.1.0"
    assert wf.node("summarize").config["max_words"] == 200  # typed substitution keeps the integer
    assert wf.node("summarize").config["system"] == "Summarize in at most 200 words."
    assert wf.edge("route.out->summarize.prompt?").condition == "stats.stats.words < 5000"
    assert result.applied_defaults == {
        "model": "local/llama-3-8b-instruct",
        "max_words": 200,
        "long_document_words": 5000,
        "tone": "neutral",
    }
    assert wf.metadata.custom["template"]["id"] == "summarize-document"
    assert validate(wf, node_types=KNOWN).valid


def test_three_required_parameters_fill_every_placeholder(library: TemplateLibrary) -> None:
    t = library.get("classify-and-route")
    result = t.instantiate(
        {"labels": ["bug", "question", "idea"], "route_label": "bug", "handler": "tracker.create_issue"},
        node_types=KNOWN,
    )
    text = json.dumps(json.loads(json.dumps(result.workflow.edges["route.out->handle.text?"].condition)))
    assert "{{" not in text
    assert result.workflow.edge("route.out->handle.text?").condition == (
        'classify.label == "bug" and classify.confidence >= 0.8'
    )
    assert result.workflow.node("classify").config["labels"] == ["bug", "question", "idea"]
    assert result.workflow.metadata.tags == ("routing", "bug")
    assert result.workflow.node("handle").type == "tracker.create_issue"
    assert result.warnings == ()


def test_violations_fail_with_specific_errors(library: TemplateLibrary) -> None:
    t = library.get("classify-and-route")
    with pytest.raises(WorkflowValidationError) as info:
        t.instantiate({"labels": ["only"], "route_label": "Not OK", "threshold": 1.5, "bogus": 1})
    issues = {(i["code"], i.get("parameter")) for i in info.value.context["issues"]}
    assert issues == {
        ("workflow.template.unknown_parameter", "bogus"),
        ("workflow.template.invalid_parameter", "labels"),
        ("workflow.template.invalid_parameter", "route_label"),
        ("workflow.template.invalid_parameter", "threshold"),
    }
    with pytest.raises(WorkflowValidationError) as info:
        t.instantiate({})
    assert {i["parameter"] for i in info.value.context["issues"]} == {"labels", "route_label"}
    with pytest.raises(ValidationError) as info2:
        t.instantiate({"labels": ["a", "b"], "route_label": "a", "handler": "bad type!"})
    assert info2.value.context["template"] == "classify-and-route"
    assert info2.value.context["path"] == "$.workflow.nodes[3].type"


def test_the_result_must_validate() -> None:
    t = Template.from_dict(_template())
    assert t.instantiate({}).workflow.node("i").outputs[0].type == "text"
    with pytest.raises(ValidationError) as info:
        t.instantiate({"kind": "blob"})
    assert info.value.code == "workflow.invalid_port_type"
    broken = _template()
    broken["workflow"]["nodes"].append(
        {"id": "x", "kind": "operator", "type": "op", "inputs": [{"name": "need"}]}
    )
    with pytest.raises(WorkflowValidationError) as info2:
        Template.from_dict(broken).instantiate({})
    assert info2.value.code == "workflow.missing_input"
    assert Template.from_dict(broken).instantiate({}, check=False).workflow.node("x")


@pytest.mark.parametrize(
    ("ptype", "constraints", "good", "bad"),
    [
        ("string", {"min_length": 2, "max_length": 4, "pattern": "^[a-z]+$"}, "abc", "ABC"),
        ("integer", {"minimum": 1, "maximum": 3}, 2, 2.5),
        ("number", {"minimum": 0}, 0.5, -1),
        ("boolean", {}, True, "yes"),
        ("enum", {"choices": ["a", "b"]}, "b", "c"),
        ("array", {"items": "integer", "min_length": 1}, [1, 2], [1, "x"]),
        ("object", {}, {"k": [1]}, [1]),
        ("model_id", {}, "org/model-7b@v2", "bad model id"),
        ("port_type", {}, "list[text]", "list[nope]"),
        ("expression", {}, "a.x > 1", "a.x >"),
    ],
)
def test_parameter_types_and_constraints(
    ptype: str, constraints: dict[str, Any], good: Any, bad: Any
) -> None:
    data = _template(
        parameters=[{"name": "p", "type": ptype, "constraints": constraints}],
        workflow={"nodes": [], "edges": []},
    )
    t = Template.from_dict(data)
    p = t.parameter("p")
    p.check(good)
    with pytest.raises(ValidationError) as info:
        p.check(bad)
    assert info.value.context["parameter"] == "p"
    schema = p.json_schema()
    assert schema["title"] == "p"


def test_custom_validators_by_name() -> None:
    t = Template.from_dict(
        _template(
            parameters=[{"name": "n", "type": "integer", "constraints": {"validator": "even"}}],
            workflow={"nodes": []},
        )
    )
    even = {"even": lambda v: None if v % 2 == 0 else "must be even"}
    assert t.instantiate({"n": 4}, validators=even).values == {"n": 4}
    with pytest.raises(ValidationError, match="must be even"):
        t.instantiate({"n": 3}, validators=even)
    with pytest.raises(ValidationError) as info:
        t.instantiate({"n": 4})
    assert info.value.code == "workflow.template.unknown_validator"
    assert info.value.context["parameter"] == "n"


def test_placeholders_filters_and_overrides() -> None:
    data = _template(
        parameters=[
            {"name": "title", "type": "string"},
            {"name": "n", "type": "integer", "required": False},
        ],
        workflow={
            "name": "{{ title | upper }} / {{title|slug}} / {{ n }}",
            "description": "{{ title | json }} {{ not a placeholder }}",
            "nodes": [
                {"id": "a", "kind": "operator", "type": "op", "config": {"n": "{{ n }}", "keep": "{{"}}
            ],
        },
    )
    t = Template.from_dict(data)
    result = t.instantiate(
        {"title": "Hello World"}, overrides={"/nodes/0/config/extra": [1], "/nodes/0/name": "A"}
    )
    wf = result.workflow
    assert wf.name == "HELLO WORLD / hello-world / "
    assert wf.description == '"Hello World" {{ not a placeholder }}'
    assert wf.node("a").config == {"n": None, "keep": "{{", "extra": [1]}
    assert wf.node("a").name == "A"
    assert result.warnings[0].startswith("optional parameter 'n'")
    assert t.workflow["nodes"][0]["config"] == {"n": "{{ n }}", "keep": "{{"}  # the template is unchanged
    with pytest.raises(ValidationError) as info:
        t.instantiate({"title": "x"}, overrides={"/nodes/9/name": "A"})
    assert info.value.code == "workflow.template.bad_override"
    with pytest.raises(ValidationError):
        t.instantiate({"title": "x"}, overrides={"nodes": 1})


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"id": "Bad Id"}, "$.id"),
        ({"version": "1.0"}, "$.version"),
        ({"parameters": [{"name": "x", "type": "integer", "default": "no"}]}, "$.parameters[0].default"),
        ({"parameters": [{"name": "x", "type": "enum"}]}, "$.parameters[0].constraints"),
        (
            {"parameters": [{"name": "x", "type": "string"}, {"name": "x", "type": "string"}]},
            "$.parameters[1].name",
        ),
        ({"parameters": [{"name": "x", "type": "strin"}]}, "$.parameters[0].type"),
        ({"parameters": [{"name": 3, "type": "string"}]}, "$.parameters[0].name"),
        ({"parameters": [{"name": "x", "type": "string", "colour": 1}]}, "$.parameters[0]"),
        ({"workflow": {"name": "{{ ghost }}"}}, "$.workflow.name"),
        ({"workflow": {"name": "{{ kind | shout }}"}}, "$.workflow.name"),
        (
            {"parameters": [{"name": "x", "type": "string", "constraints": {"pattern": "("}}]},
            "$.parameters[0].constraints.pattern",
        ),
        ({"tags": "one"}, "$.tags"),
    ],
)
def test_bad_templates_name_the_json_path(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        Template.from_dict(_template(**change))
    paths = [i["path"] for i in info.value.context.get("issues", [])] or [info.value.context.get("path")]
    assert path in paths, paths


def test_template_file_errors(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text("{nope")
    with pytest.raises(ValidationError) as info:
        load_template(tmp_path / "t.json")
    assert info.value.context["file"] == str(tmp_path / "t.json") and info.value.context["line"] == 1
    (tmp_path / "v.json").write_text(json.dumps(_template(schema_version="9")))
    with pytest.raises(ValidationError) as info:
        load_template(tmp_path / "v.json")
    assert info.value.code == "workflow.template.schema_version"
    with pytest.raises(NotFoundError):
        load_template(tmp_path / "missing.json")


def test_to_dict_round_trips(library: TemplateLibrary) -> None:
    for tid in library.ids():
        for version in library.versions(tid):
            t = library.get(tid, f"={version}")
            again = Template.from_dict(json.loads(json.dumps(t.to_dict())))
            assert again == t


def test_form_schema_has_hints_and_required(library: TemplateLibrary) -> None:
    form = library.get("summarize-document").form_schema()
    assert form["required"] == ["title"]
    assert form["properties"]["model"]["x-ui"]["widget"] == "model-picker"
    assert form["properties"]["tone"]["enum"] == ["neutral", "formal", "casual"]
    assert list(form["properties"])[:3] == ["title", "model", "max_words"]


def test_library_versions_and_constraints(library: TemplateLibrary) -> None:
    assert library.get("summarize-document").version == "1.1.0"
    assert library.get("summarize-document", "~1.0").version == "1.0.0"
    assert library.get("summarize-document", "^1.0").version == "1.1.0"
    assert library.get("summarize-document", "=1.0.0").version == "1.0.0"
    assert library.get("summarize-document", ">=1.0,<1.1").version == "1.0.0"
    with pytest.raises(NotFoundError) as info:
        library.get("summarize-document", "^2")
    assert info.value.context["versions"] == ["1.0.0", "1.1.0"]
    with pytest.raises(NotFoundError):
        library.get("nope")
    t = library.latest("classify-and-route")
    with pytest.raises(ConflictError):
        library.add(t)
    library.add(t, replace=True)
    library.remove("summarize-document", "1.1.0")
    assert library.versions("summarize-document") == ["1.0.0"]
    library.remove("summarize-document")
    assert "summarize-document" not in library and len(library) == 1


def test_search_ranks_by_name_tags_and_description(library: TemplateLibrary) -> None:
    hits = library.search("summarize")
    assert [h.template.id for h in hits] == ["summarize-document"]
    assert [h.template.id for h in library.search("rout")] == [
        "classify-and-route"
    ]  # prefix of the last word
    assert [h.template.id for h in library.search("text document")] == ["summarize-document"]
    assert library.search("summarize routing") == []
    assert [h.template.id for h in library.search("", tags=["branching"])] == ["classify-and-route"]
    assert [h.template.id for h in library.search("", category="TEXT")] == ["summarize-document"]
    assert len(library.search("", author="symphony examples")) == 2
    assert len(library.search("", limit=1)) == 1 and len(library.search("", offset=1)) == 1
    with pytest.raises(ValidationError):
        library.search("x", limit=-1)


def _synthetic(i: int) -> Template:
    return Template.from_dict(
        _template(
            id=f"tpl-{i:04d}",
            name=f"Template {i} {'alpha' if i % 2 else 'beta'}",
            description=f"Does thing number {i} with {'vectors' if i % 3 == 0 else 'text'}",
            tags=[f"group{i % 10}", "synthetic"],
            category="cat" + str(i % 4),
        )
    )


def test_search_over_many_templates_ranks_name_above_description() -> None:
    lib = TemplateLibrary(_synthetic(i) for i in range(300))
    hits = lib.search("alpha vectors", limit=500)
    assert hits and all(i % 2 == 1 and i % 3 == 0 for i in (int(h.template.id[4:]) for h in hits))
    lib.add(Template.from_dict(_template(id="vectors", name="Vectors", description="x")))
    assert lib.search("vectors")[0].template.id == "vectors"
    assert len(lib.search("group3", tags=["synthetic"], limit=1000)) == 30


@pytest.mark.parametrize(
    ("constraint", "allowed", "refused"),
    [
        ("*", ["0.0.1", "9.9.9"], ["1.0.0-rc.1"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0", "1.3.0-rc.1"]),
        ("^0.2.3", ["0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.2.3", ["1.2.9"], ["1.3.0"]),
        ("~1", ["1.9.9"], ["2.0.0"]),
        ("1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
        (">=1.0, <2", ["1.5.0"], ["2.0.0", "0.9.9"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("^1 || ^3", ["1.1.0", "3.0.1"], ["2.0.0"]),
        ("^1.0.0-rc.1", ["1.0.0-rc.2", "1.0.0", "1.4.0"], ["1.1.0-rc.1"]),
    ],
)
def test_version_constraints(constraint: str, allowed: list[str], refused: list[str]) -> None:
    c = VersionConstraint.parse(constraint)
    assert all(c.allows(v) for v in allowed), constraint
    assert not any(c.allows(v) for v in refused), constraint


def test_semver_ordering_and_errors() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    assert sorted(SemVer.parse(v) for v in reversed(order)) == [SemVer.parse(v) for v in order]
    assert str(SemVer.parse("1.2.3-rc.1+build.5")) == "1.2.3-rc.1+build.5"
    assert SemVer.parse("1.0.0+a") == SemVer.parse("1.0.0+b")
    for bad in ("1", "01.0.0", "x.y.z"):
        with pytest.raises(ValidationError):
            SemVer.parse(bad)
    for bad in ("^^1", "~>1.2", "1.x.3", ">=a"):
        with pytest.raises(ValidationError):
            VersionConstraint.parse(bad)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    labels=st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=20),
    route=st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True),
    threshold=st.floats(min_value=0, max_value=1),
    classifier=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,20}", fullmatch=True),
)
def test_instantiating_with_valid_parameters_gives_a_valid_workflow(
    labels: list[str], route: str, threshold: float, classifier: str
) -> None:
    t = load_template(Path(__file__).resolve().parent / "data/templates/classify-and-route.json")
    before = copy.deepcopy(t.workflow)
    result = t.instantiate(
        {"labels": labels, "route_label": route, "threshold": threshold, "classifier": classifier},
        node_types=KNOWN,
    )
    assert validate(result.workflow, node_types=KNOWN).valid
    assert result.workflow.node("classify").config == {"model": classifier, "labels": labels}
    assert t.workflow == before
    assert "{{" not in json.dumps([e.condition for e in result.workflow.edges.values()])


def test_parameter_objects() -> None:
    p = Parameter("x", ParamType.INTEGER, default=3, constraints=Constraints(minimum=1))
    assert p.optional and p.json_schema()["default"] == 3
    with pytest.raises(ValidationError):
        p.check(float("nan"))
