"""Fixtures for the AWS-faithful fake: moto with the layer (``fake``) and plain moto (``plain``).

Both run inside ``mock_aws()`` with the fake credentials of tests/conftest.py. Each leaves moto as it
found it: ``fake`` installs the layer and removes it again unless it was already installed, ``plain``
removes it for the test and puts it back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from registry_app.devtools import aws_fake
from tests.devtools.helpers import Registry


@pytest.fixture
def fake() -> Iterator[Registry]:
    was_installed = aws_fake.is_installed()
    aws_fake.install()
    try:
        with mock_aws():
            yield Registry()
    finally:
        if not was_installed:
            aws_fake.uninstall()


@pytest.fixture
def plain() -> Iterator[Registry]:
    """Plain moto 5.2.5, to show the difference the layer makes."""
    was_installed = aws_fake.is_installed()
    aws_fake.uninstall()
    try:
        with mock_aws():
            yield Registry()
    finally:
        if was_installed:
            aws_fake.install()
