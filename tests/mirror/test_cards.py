"""registry_app.mirror.cards: model card content parsing and section-by-section display (no database)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from registry_app.mirror.cards import (
    MAX_CONTENT_CHARS,
    CardContentError,
    CardField,
    CardSection,
    card_sections,
    content_hash,
    humanise_key,
    parse_card_content,
    risk_rating,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cards"
EVIL = "<script>alert(1)</script>"


def load(name: str) -> dict:
    content = parse_card_content((FIXTURES / name).read_text(encoding="utf-8"))
    assert content is not None
    return content


def fields_by_label(section: CardSection) -> dict[str, CardField]:
    fields = {field.label: field for field in section.fields}
    assert len(fields) == len(section.fields), "labels are expected to be unique within a section"
    return fields


def all_text(sections: list[CardSection]) -> list[str]:
    """Every string a template would print."""
    texts: list[str] = []
    for section in sections:
        texts += [section.key, section.title]
        for field in section.fields:
            texts.append(field.label)
            texts += [field.value] if field.value is not None else []
            texts += field.items or []
            for name, value in field.table or []:
                texts += [name, value]
    return texts


# --------------------------------------------------------------------------------------------- sections


def test_embedded_card_sections_in_schema_order() -> None:
    sections = card_sections(load("embedded_package_card.json"))

    assert [(s.key, s.title) for s in sections] == [
        ("model_overview", "Model overview"),
        ("intended_uses", "Intended uses"),
        ("business_details", "Business details"),
        ("training_details", "Training details"),
        ("evaluation_details_0", "Evaluation: holdout-2025-02"),
        ("additional_information", "Additional information"),
    ]


def test_embedded_card_overview_and_intended_uses() -> None:
    sections = {s.key: s for s in card_sections(load("embedded_package_card.json"))}

    assert sections["model_overview"].fields == [
        CardField("Model creator", "team-risk"),
        CardField("Model artifact", None, items=["s3://ml-artifacts/credit-risk/7/model.tar.gz"]),
    ]
    assert [(f.label, f.value) for f in sections["intended_uses"].fields] == [
        ("Purpose of model", "Estimate 12-month probability of default for retail loans"),
        ("Intended uses", "Pre-screening; not for automated rejection"),
        ("Factors affecting model efficiency", "Macro shifts; thin-file applicants"),
        ("Risk rating", "High"),
        ("Explanations for risk rating", "Affects credit decisions"),
    ]
    assert [f.label for f in sections["business_details"].fields] == [
        "Business problem",
        "Business stakeholders",
        "Line of business",
    ]


def test_embedded_card_training_details_flattened_with_tables() -> None:
    section = {s.key: s for s in card_sections(load("embedded_package_card.json"))}["training_details"]
    fields = fields_by_label(section)

    assert list(fields) == [
        "Objective function › Function › Function",
        "Objective function › Function › Facet",
        "Objective function › Function › Condition",
        "Objective function › Notes",
        "Training observations",
        "Training job details › Training ARN",
        "Training job details › Training datasets",
        "Training job details › Training environment › Container image",
        "Training job details › Training metrics",
        "Training job details › Hyper parameters",
    ]
    assert fields["Objective function › Function › Function"].value == "Minimize"
    assert fields["Objective function › Notes"].value == ""
    assert fields["Training job details › Training metrics"] == CardField(
        "Training job details › Training metrics", None, table=[("validation:auc", "0.83")]
    )
    assert fields["Training job details › Hyper parameters"].table == [("max_depth", "6")]
    assert fields["Training job details › Training datasets"].items == ["s3://ml-data/credit-risk/train/"]


def test_embedded_card_evaluation_metrics() -> None:
    section = {s.key: s for s in card_sections(load("embedded_package_card.json"))}["evaluation_details_0"]
    fields = fields_by_label(section)

    assert list(fields) == [
        "Evaluation observation",
        "Datasets",
        "Metadata › Source",
        "binary_classification_metrics › auc",
        "binary_classification_metrics › confusion_matrix",
        "binary_classification_metrics › roc",
    ]
    assert fields["binary_classification_metrics › auc"].value == "0.83"
    matrix_field = fields["binary_classification_metrics › confusion_matrix"]
    assert matrix_field.value is None
    assert matrix_field.matrix == {"labels_x": ["0", "1"], "labels_y": ["0", "1"], "matrix": [[900, 50], [40, 110]]}
    assert fields["binary_classification_metrics › roc"].curve == {
        "x": [0.0, 0.1, 1.0],
        "y": [0.0, 0.6, 1.0],
        "x_label": "fpr",
        "y_label": "tpr",
    }


def test_embedded_card_additional_information() -> None:
    section = {s.key: s for s in card_sections(load("embedded_package_card.json"))}["additional_information"]

    assert [(f.label, f.value) for f in section.fields] == [
        ("Ethical considerations", "Monitor disparate impact by age band"),
        ("Caveats and recommendations", "Retrain quarterly"),
        ("Custom details › Model risk tier", "1"),
    ]


def test_standalone_card_order_ignores_document_order_and_unknown_keys_go_last() -> None:
    sections = card_sections(load("standalone_card.json"))

    assert [(s.key, s.title) for s in sections] == [
        ("model_overview", "Model overview"),
        ("intended_uses", "Intended uses"),
        ("evaluation_details_0", "Evaluation: backtest-2024"),
        ("evaluation_details_1", "Evaluation: #2"),
        ("additional_information", "Additional information"),
        ("model_package_details", "Model package details"),
        ("review_notes", "Review notes"),
    ]
    assert sections[-1].fields == [CardField("Reviewer comment", "Imported from a legacy system")]
    assert sections[3].fields == [CardField("Evaluation observation", "Unnamed spot check")]
    assert sections[4].fields == [CardField("Custom details", None)]  # empty object


def test_standalone_card_overview_numbers_acronyms_and_nested_lists() -> None:
    sections = {s.key: s for s in card_sections(load("standalone_card.json"))}

    overview = fields_by_label(sections["model_overview"])
    assert overview["Model ID"].value == "credit-risk-7"
    assert overview["Model version"].value == "1"
    assert overview["Inference environment › Container image"].items == [
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    ]
    package = fields_by_label(sections["model_package_details"])
    assert list(package) == [
        "Model package ARN",
        "Model package group name",
        "Model package version",
        "Model approval status",
        "Created by › User profile name",
        "Inference specification › Containers 1 › Image",
        "Inference specification › Containers 1 › Model data URL",
        "Inference specification › Containers 2 › Image",
    ]
    assert package["Model package version"].value == "7"
    assert package["Inference specification › Containers 2 › Image"].value.endswith("/postprocess:2")


def test_standalone_card_bar_chart_boolean_and_notes() -> None:
    section = {s.key: s for s in card_sections(load("standalone_card.json"))}["evaluation_details_0"]

    assert section.fields == [
        CardField("Evaluation job ARN", "arn:aws:sagemaker:eu-west-1:111122223333:processing-job/bt-2024"),
        CardField("by_segment › recall", None, table=[("retail", "0.71"), ("sme", "0.64")]),
        CardField("by_segment › passed_gate", "No"),
        CardField("by_segment › passed_gate › Notes", "gate is 0.75"),
    ]


def test_card_sections_of_empty_or_non_dict_content() -> None:
    assert card_sections({}) == []
    assert card_sections(None) == []  # type: ignore[arg-type]
    assert card_sections({"model_overview": None}) == []


def test_section_that_is_not_an_object_becomes_one_field() -> None:
    sections = card_sections({"intended_uses": "free text", "evaluation_details": "n/a", "extra": [1, "two"]})

    assert sections == [
        CardSection("intended_uses", "Intended uses", [CardField("Intended uses", "free text")]),
        CardSection("evaluation_details", "Evaluation", [CardField("Evaluation details", "n/a")]),
        CardSection("extra", "Extra", [CardField("Extra", None, items=["1", "two"])]),
    ]


def test_odd_metric_data_does_not_crash() -> None:
    content = {
        "evaluation_details": [
            {
                "name": "odd",
                "metric_groups": [
                    "not a group",
                    {"metric_data": "nope"},
                    {
                        "name": "g",
                        "metric_data": [
                            7,
                            {"type": "number", "value": 1},
                            {"name": "m", "type": "matrix", "value": [[1, "x"], [None, 2, 3]]},
                            {"name": "bad_matrix", "type": "matrix", "value": "[[1]]"},
                            {"name": "curve", "type": "linear_graph", "value": [[0, 1], ["a", 2], [1], [1, 2]]},
                            {"name": "bad_curve", "type": "linear_graph", "value": [[None, None]]},
                            {"name": "obj", "type": "string", "value": {"k": [1, 2]}},
                        ],
                    },
                ],
            }
        ]
    }
    (section,) = card_sections(content)

    assert section.fields == [
        CardField("Metric group 1", "not a group"),
        CardField("Metric group 2", "nope"),
        CardField("g › Metric 1", "7"),
        CardField("g › Metric 2", "1"),
        CardField(
            "g › m",
            None,
            matrix={"labels_x": ["0", "1"], "labels_y": ["0", "1", "2"], "matrix": [[1, None, None], [None, 2, 3]]},
        ),
        CardField("g › bad_matrix", "[[1]]"),
        CardField("g › curve", None, curve={"x": [0, 1], "y": [1, 2], "x_label": "x", "y_label": "y"}),
        CardField("g › bad_curve", "[[null, null]]"),
        CardField("g › obj", '{"k": [1, 2]}'),
    ]


def test_unexpected_value_types_are_stringified() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    content = {
        "additional_information": {
            "nan": float("nan"),
            "inf": float("-inf"),
            "big": 10**5000,
            "flag": True,
            "obj": Thing(),
            "mixed": [1, {"a": 1}, None, False],
            "tuple": ("x", 2),
        }
    }
    (section,) = card_sections(content)

    assert [(f.label, f.value, f.items) for f in section.fields] == [
        ("Nan", "NaN", None),
        ("Inf", "-Infinity", None),
        ("Big", "(integer too large to display)", None),
        ("Flag", "Yes", None),
        ("Obj", '"a thing"', None),
        ("Mixed", None, ["1", '{"a": 1}', "", "No"]),
        ("Tuple", '["x", 2]', None),
    ]


def test_deep_nesting_is_cut_off_as_json_text() -> None:
    nested: object = "bottom"
    for _ in range(30):
        nested = {"level": nested}
    (section,) = card_sections({"additional_information": {"custom_details": nested}})

    (field,) = section.fields
    assert field.label.startswith("Custom details › Level › Level")
    assert field.label.count("›") == 12
    assert field.value is not None and field.value.endswith('"bottom"' + "}" * 18)


def test_script_tags_survive_as_plain_text_everywhere() -> None:
    content = {
        "intended_uses": {"purpose_of_model": EVIL, "risk_rating": EVIL},
        "training_details": {"training_job_details": {"hyper_parameters": [{"name": EVIL, "value": EVIL}]}},
        "evaluation_details": [
            {
                "name": EVIL,
                "datasets": [EVIL],
                "metadata": {EVIL: EVIL},
                "metric_groups": [{"name": EVIL, "metric_data": [{"name": EVIL, "type": "string", "value": EVIL}]}],
            }
        ],
        EVIL: EVIL,
    }
    sections = card_sections(content)

    assert sections[2].title == f"Evaluation: {EVIL}"
    assert sections[0].fields[0] == CardField("Purpose of model", EVIL)
    assert sections[1].fields[0].table == [(EVIL, EVIL)]
    assert sections[2].fields == [
        CardField("Datasets", None, items=[EVIL]),
        CardField(f"Metadata › {EVIL}", EVIL),
        CardField(f"{EVIL} › {EVIL}", EVIL),
    ]
    assert sections[3] == CardSection(EVIL, EVIL, [CardField(EVIL, EVIL)])
    texts = all_text(sections)
    assert not any("&lt;" in text or "&amp;" in text for text in texts)  # never pre-escaped
    assert risk_rating(content) is None


def test_humanise_key() -> None:
    assert humanise_key("purpose_of_model") == "Purpose of model"
    assert humanise_key("training_arn") == "Training ARN"
    assert humanise_key("model_data_url") == "Model data URL"
    assert humanise_key("model_id") == "Model ID"
    assert humanise_key("identity_provider") == "Identity provider"
    assert humanise_key("already Spaced") == "Already Spaced"
    assert humanise_key("__") == "__"


# --------------------------------------------------------------------------------------------- parsing


def test_parse_card_content_accepts_text_dict_and_none() -> None:
    assert parse_card_content(None) is None
    assert parse_card_content("") is None
    assert parse_card_content("  \n") is None
    content = {"intended_uses": {"risk_rating": "Low"}}
    assert parse_card_content(content) is content
    assert parse_card_content(json.dumps(content)) == content
    assert parse_card_content("\ufeff" + json.dumps(content)) == content


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "model_overview": {\n    "model_owner": }\n}', "not valid JSON at line 3 column 20"),
        ("[1, 2]", "model card content is a list, expected a JSON object"),
        ('"text"', "model card content is a string, expected a JSON object"),
        ("null", "model card content is null, expected a JSON object"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"a": "' + "x" * MAX_CONTENT_CHARS + '"}', "the API limit is 100,000"),
        (42, "must be JSON text or an object, not int"),
    ],
)
def test_parse_card_content_errors(content: object, message: str) -> None:
    with pytest.raises(CardContentError, match=message):
        parse_card_content(content)  # type: ignore[arg-type]


def test_card_content_error_is_a_value_error() -> None:
    assert issubclass(CardContentError, ValueError)


def test_parse_card_content_exactly_at_the_limit_is_accepted() -> None:
    text = '{"a": "' + "x" * (MAX_CONTENT_CHARS - 9) + '"}'
    assert len(text) == MAX_CONTENT_CHARS
    assert parse_card_content(text) == {"a": "x" * (MAX_CONTENT_CHARS - 9)}


# --------------------------------------------------------------------------------------------- hash and risk


def test_content_hash_is_sha256_of_canonical_json() -> None:
    content = {"b": [1, 2], "a": {"y": "é", "x": None}}
    expected = hashlib.sha256(b'{"a":{"x":null,"y":"\\u00e9"},"b":[1,2]}').hexdigest()

    assert content_hash(content) == expected
    assert content_hash(None) == ""


def test_content_hash_ignores_key_order_and_whitespace_but_not_values() -> None:
    a = parse_card_content('{"intended_uses": {"risk_rating": "High", "purpose_of_model": "x"}}')
    b = parse_card_content('{ "intended_uses" : { "purpose_of_model" : "x" ,\n "risk_rating" : "High" } }')
    c = parse_card_content('{"intended_uses": {"risk_rating": "Low", "purpose_of_model": "x"}}')

    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(c)
    assert len(content_hash(a)) == 64


def test_content_hash_of_embedded_card_is_stable() -> None:
    content = load("embedded_package_card.json")
    assert content_hash(content) == content_hash(json.loads(json.dumps(content, indent=4)))


def test_content_hash_tolerates_odd_python_input() -> None:
    assert content_hash({1: "a", "b": "c"}) == content_hash({"1": "a", "b": "c"})  # mixed key types
    assert len(content_hash({"s": float("nan")})) == 64


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"intended_uses": {"risk_rating": "High"}}, "High"),
        ({"intended_uses": {"risk_rating": "medium"}}, "Medium"),
        ({"intended_uses": {"risk_rating": " LOW "}}, "Low"),
        ({"intended_uses": {"risk_rating": "Unknown"}}, "Unknown"),
        ({"intended_uses": {"risk_rating": "Critical"}}, None),
        ({"intended_uses": {"risk_rating": 3}}, None),
        ({"intended_uses": {"purpose_of_model": "x"}}, None),
        ({"intended_uses": "High"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_risk_rating(content: dict | None, expected: str | None) -> None:
    assert risk_rating(content) == expected


def test_risk_rating_of_fixtures() -> None:
    assert risk_rating(load("embedded_package_card.json")) == "High"
    assert risk_rating(load("standalone_card.json")) == "Medium"
