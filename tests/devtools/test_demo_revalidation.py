"""Issue 15's demo data: after the seed, the first sync and the scenes, two approved models are due for
revalidation and one is overdue, under the high-risk policy; the queue tab and the gauge show them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from registry_app.devtools import demo_scenes
from registry_app.devtools.demo_revalidation import seed_revalidation_demo
from registry_app.devtools.demo_seed import seed_registry
from registry_app.mirror.execute import sync_source
from registry_app.models import RegistrySource, SyncRun
from registry_app.review.revalidation_queue import revalidation_items
from registry_app.review.revalidation_read import due_clocks, overdue_count
from tests.personas import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(aws: None, settings: Any) -> list[str]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    seed_registry(region="eu-west-1", second_region="us-east-1", bucket="acme-ml-artifacts", cloudtrail_bucket="")
    out = io.StringIO()
    call_command("create_demo_users", "--password", "demo-governance", stdout=out)
    call_command("create_demo_policies", stdout=out)
    for name, region in (("acme-prod", "eu-west-1"), ("acme-us", "us-east-1")):
        RegistrySource.objects.create(name=name, region=region)
        sync_source(RegistrySource.objects.get(name=name), mode=SyncRun.Mode.FULL)
    demo_scenes.stage_demo_scenes()
    return seed_revalidation_demo()


def test_two_due_and_one_overdue(demo: list[str]) -> None:
    due = {(p.group.name, p.version): clock.state for p, clock in due_clocks()}
    assert due == {
        ("credit-default-xgb", 5): "due",
        ("fraud-detector", 4): "due",
        ("fraud-detector", 3): "overdue",
    }, demo
    assert overdue_count() == 1
    assert seed_revalidation_demo() == demo  # idempotent
    fairness = make_user("fair-reviewer", "fairness")
    assert len(revalidation_items(fairness)) == 3
