"""Links out of the dashboard (training job, pipeline execution, repository, commit): exact shapes only."""

from __future__ import annotations

import pytest

from registry_app.audit.external_links import (
    commit_url,
    generated_by_url,
    pipeline_execution_url,
    processing_job_url,
    repository_url,
    training_job_url,
)

SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
JOB_ARN = "arn:aws:sagemaker:eu-west-1:111122223333:training-job/credit-risk-7"
PIPELINE_ARN = "arn:aws:sagemaker:us-east-2:123456789012:pipeline/versionedmp-p-idy6c3e1fiqj/execution/4r83jejmhorv"


def test_training_job_from_name_and_arn() -> None:
    expected = "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/credit-risk-7"
    assert training_job_url("credit-risk-7", "eu-west-1") == expected
    assert training_job_url(JOB_ARN) == expected
    assert training_job_url(JOB_ARN, "us-east-1") == expected  # the ARN's region wins
    assert processing_job_url("prep-1", "eu-west-1").endswith("#/processing-jobs/prep-1")


def test_other_partitions() -> None:
    assert (
        training_job_url("j", "cn-north-1") == "https://console.amazonaws.cn/sagemaker/home?region=cn-north-1#/jobs/j"
    )
    gov = "arn:aws-us-gov:sagemaker:us-gov-west-1:111122223333:training-job/j"
    assert training_job_url(gov).startswith("https://console.amazonaws-us-gov.com/sagemaker/home?region=us-gov-west-1")
    assert training_job_url("arn:aws:sagemaker:cn-north-1:111122223333:training-job/j") == ""  # partition mismatch
    assert training_job_url("j", "us-iso-east-1") == ""


def test_pipeline_execution() -> None:
    assert pipeline_execution_url(PIPELINE_ARN) == (
        "https://us-east-2.console.aws.amazon.com/sagemaker/home?region=us-east-2"
        "#/pipelines/versionedmp-p-idy6c3e1fiqj/executions/4r83jejmhorv"
    )
    assert generated_by_url(PIPELINE_ARN) == pipeline_execution_url(PIPELINE_ARN)
    assert generated_by_url(JOB_ARN) == training_job_url(JOB_ARN)
    assert generated_by_url("credit-risk-7", "eu-west-1") == ""  # a bare name: which kind of job?


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        "credit risk",
        "job/../../x",
        "job#/x",
        "job?x=1",
        "-job",
        "a" * 64,
        "j\x00",
        "<script>",
        "javascript:alert(1)",
        "arn:aws:sagemaker:eu-west-1:111122223333:training-job/a/b",
        "arn:aws:sagemaker:eu-west-1:111122223333:processing-job/p",  # not a training job
        "arn:aws:sagemaker:eu-west-1:1111:training-job/j",  # account
        "arn:aws:sagemaker:evil.com/x:111122223333:training-job/j",  # region
        "arn:aws:sagemaker:eu-west-1.evil.com:111122223333:training-job/j",
        "arn:aws:iam::111122223333:training-job/j",
    ],
)
def test_hostile_job_values_get_no_link(value: object) -> None:
    assert training_job_url(value, "eu-west-1") == ""


def test_trailing_newline_is_stripped_not_linked_raw() -> None:
    url = training_job_url("arn:aws:sagemaker:eu-west-1:111122223333:training-job/j\n")
    assert url.endswith("#/jobs/j") and "\n" not in url


@pytest.mark.parametrize("region", ["", "eu-west-1.evil.com", "EU-WEST-1", "eu-west-1/", "eu-west-1#", "x"])
def test_bad_regions(region: str) -> None:
    assert training_job_url("j", region) == ""


@pytest.mark.parametrize(
    "value",
    [
        PIPELINE_ARN + "/x",
        PIPELINE_ARN.replace("/execution/", "/executions/"),
        PIPELINE_ARN.replace("4r83jejmhorv", "4r8#x"),
        PIPELINE_ARN.replace("versionedmp-p-idy6c3e1fiqj", "a%2F..%2F"),
        "arn:aws:sagemaker:us-east-2:123456789012:pipeline/p",
    ],
)
def test_hostile_pipeline_arns(value: str) -> None:
    assert pipeline_execution_url(value) == ""


@pytest.mark.parametrize(
    "value",
    [
        "https://git.example.com/ml/credit-risk",
        "http://git.internal:8080/ml/repo.git",
        "https://github.com/acme/credit-risk",
    ],
)
def test_repository_urls_kept(value: str) -> None:
    assert repository_url(value) == value


def test_ssh_remote_becomes_https() -> None:
    assert repository_url("git@github.com:acme/credit-risk.git") == "https://github.com/acme/credit-risk"
    assert repository_url("git@gitlab.com:acme/sub/repo.git") == "https://gitlab.com/acme/sub/repo"
    assert repository_url("git@github.com:acme/../x.git") == ""


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)//https://github.com",
        " javascript:alert(1)",
        "\tjavascript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "//evil.com/x",
        "https:/evil.com",
        "https:\\\\evil.com",
        "https://user:token@github.com/acme/x",
        "https://token@github.com/acme/x",
        'https://github.com/acme/x"onmouseover="alert(1)',
        "https://github.com/acme/x y",
        "https://github.com/<script>",
        "https://evil.com:99999/x",
        "https://evil.com:abc/x",
        "https://ex\u00e4mple.com/x",
        "https://github.com/acme/x\u202e",
        "https://[::1]/x",
        "s3://bucket/repo",
        "git@evil.com:acme/x.git",
        "https://" + "a" * 3000,
        "",
        None,
    ],
)
def test_hostile_repository_values_get_no_link(value: object) -> None:
    assert repository_url(value) == ""


def test_commit_links_for_known_hosts_only() -> None:
    assert commit_url("https://github.com/acme/credit-risk", SHA) == f"https://github.com/acme/credit-risk/commit/{SHA}"
    assert commit_url("https://github.com/acme/credit-risk.git/", SHA.upper()) == (
        f"https://github.com/acme/credit-risk/commit/{SHA}"
    )
    assert commit_url("https://www.github.com/acme/r", "abc1234") == "https://github.com/acme/r/commit/abc1234"
    assert commit_url("git@gitlab.com:acme/sub/repo.git", SHA) == f"https://gitlab.com/acme/sub/repo/-/commit/{SHA}"
    assert commit_url("https://git.example.com/ml/credit-risk", SHA) == ""  # unknown host: the shape is unknown


@pytest.mark.parametrize(
    ("repository", "commit"),
    [
        ("https://github.com/acme/r", "abc"),  # too short
        ("https://github.com/acme/r", "g" * 40),
        ("https://github.com/acme/r", SHA + "/../../x"),
        ("https://github.com/acme/r", "HEAD"),
        ("https://github.com/acme/r", "<script>"),
        ("https://github.com/acme", SHA),  # not a repository
        ("https://github.com/acme/r/tree/main", SHA),
        ("https://github.com/acme/r?x=1", SHA),
        ("https://github.com/acme/r#x", SHA),
        ("https://github.com:8443/acme/r", SHA),
        ("https://github.com.evil.com/acme/r", SHA),
        ("https://evilgithub.com/acme/r", SHA),
        ("https://github.com/acme/..", SHA),
        ("https://github.com/acme/%2e%2e", SHA),
        ("javascript:alert(1)//github.com/acme/r", SHA),
        ("", SHA),
        (None, None),
    ],
)
def test_hostile_commit_values_get_no_link(repository: object, commit: object) -> None:
    assert commit_url(repository, commit) == ""
