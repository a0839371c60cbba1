"""The review page's provenance section links the training job (AWS console), pipeline execution,
repository and commit where a link can be built, and never turns hostile registry text into a link."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import Client

from registry_app.models import RegistrySource
from registry_app.models.registry import ApprovalStatus
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.views.test_provenance_pages import review, trained

pytestmark = pytest.mark.django_db

SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
PIPELINE = "arn:aws:sagemaker:eu-west-1:111122223333:pipeline/credit-build/execution/4r83jejmhorv"


def _package(source: RegistrySource, **metadata: str):  # type: ignore[no-untyped-def]
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    package = ModelPackageFactory(
        group=group, version=1, approval_status=ApprovalStatus.PENDING, metadata_properties=metadata
    )
    trained(package, "credit-v1", hyper={"eta": "0.1"}, channels={"train": "s3://acme-data/credit/1/"})
    return package


def test_console_repository_and_commit_links(reviewer_client: Client, registry_source: RegistrySource) -> None:
    _package(registry_source, GeneratedBy=PIPELINE, Repository="https://github.com/acme/credit-risk", CommitId=SHA)
    html = review(reviewer_client, "credit-risk", 1)
    console = "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/"
    assert f'href="{console}jobs/credit-v1"' in html
    assert f'href="{console}pipelines/credit-build/executions/4r83jejmhorv"' in html
    assert 'href="https://github.com/acme/credit-risk"' in html
    assert f'href="https://github.com/acme/credit-risk/commit/{SHA}"' in html
    assert 'rel="noopener noreferrer external"' in html


def test_hostile_values_stay_text(reviewer_client: Client, registry_source: RegistrySource) -> None:
    _package(
        registry_source,
        GeneratedBy="javascript:alert(1)",
        Repository='javascript:alert(document.cookie)//"><script>x</script>',
        CommitId="<img src=x onerror=alert(1)>",
    )
    html = review(reviewer_client, "credit-risk", 1)
    assert 'href="javascript' not in html.lower()
    assert "<script>x</script>" not in html and "<img src=x" not in html
    assert "javascript:alert(document.cookie)//&quot;&gt;&lt;script&gt;" in html


def test_metadata_property_link_tag_for_the_review_page() -> None:
    package = ModelPackageFactory.build(
        metadata_properties={"Repository": "git@gitlab.com:acme/ml/credit.git", "CommitId": SHA},
        group=ModelPackageGroupFactory.build(),
    )
    template = Template("{% load registry_tags %}{% metadata_property_link key value package %}")
    commit = template.render(Context({"key": "Commit", "value": SHA, "package": package}))
    assert f'href="https://gitlab.com/acme/ml/credit/-/commit/{SHA}"' in commit
    repo = template.render(Context({"key": "Repository", "value": "javascript:x", "package": package}))
    assert "href" not in repo and "javascript:x" in repo
