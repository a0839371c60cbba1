"""Our own exceptions for AWS failures, so callers never inspect botocore internals."""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
    "LimitExceededException",
}
NOT_FOUND_CODES = {
    "ResourceNotFound",  # DescribeModelCard (botocore lists it as the operation's error)
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "404",
    "NotFound",
    "QueueDoesNotExist",  # SQS (JSON protocol: QueryErrorCode)
    "AWS.SimpleQueueService.NonExistentQueue",  # SQS (its Code)
}
# SageMaker reports most missing resources as a ValidationException, each operation in its own words
# (AWS's own sagemaker-controller maps them so: generator.yaml, ``exceptions.errors.404``). Only these
# messages of these operations mean "not found"; any other ValidationException (a malformed name,
# "1 validation error detected: ...") stays a ValidationError.
VALIDATION_NOT_FOUND: dict[str, re.Pattern[str]] = {
    # 'Could not find model "arn:aws:sagemaker:...:model/name".'
    "DescribeModel": re.compile(r"^Could not find model\b"),
    # 'Could not find endpoint "arn:aws:sagemaker:...:endpoint/name".' (not "... configuration")
    "DescribeEndpoint": re.compile(r"^Could not find endpoint\b(?! configuration)"),
    # 'Could not find endpoint configuration "arn:aws:sagemaker:...:endpoint-config/name".'
    "DescribeEndpointConfig": re.compile(r"^Could not find endpoint configuration\b"),
    # 'ModelPackage arn:aws:sagemaker:...:model-package/group/3 does not exist.' (moto words it
    # '... not found'; both only ever mean a missing package for these operations)
    "DescribeModelPackage": re.compile(r"\b(does not exist|not found)\b"),
    "UpdateModelPackage": re.compile(r"\b(does not exist|not found)\b"),
    # 'ModelPackageGroup name does not exist.'
    "DescribeModelPackageGroup": re.compile(r"\bdoes not exist\b"),
    # 'Requested resource not found.' (the sagemaker-controller's 404 for TrainingJob); moto words it
    # "Could not find training job '<arn>'."
    "DescribeTrainingJob": re.compile(r"^(Requested resource not found|Could not find training job)\b"),
    # 'Could not find requested job with name <name>' (the controller's 404 prefix for ProcessingJob);
    # moto: "Could not find processing job '<arn>'."
    "DescribeProcessingJob": re.compile(r"^Could not find (requested|processing) job\b"),
}
ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}


class AwsError(Exception):
    """Base class. ``operation`` and ``code`` say what failed."""

    retryable = False

    def __init__(self, message: str, *, operation: str = "", code: str = "") -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


class RetryableAwsError(AwsError):
    """Throttling, 5xx or a network failure that outlived botocore's own retries."""

    retryable = True


class NotFoundError(AwsError):
    pass


class AccessDeniedError(AwsError):
    pass


class ConflictError(AwsError):
    pass


class ValidationError(AwsError):
    pass


class FinalAwsError(AwsError):
    """Anything else: retrying will not help."""


class RoleAssumptionError(FinalAwsError):
    """``sts:AssumeRole`` into a source's role failed for a reason retrying cannot fix.

    Raised instead of an ``AccessDeniedError`` so that a denied *role* is never mistaken for a
    denied SageMaker call (the sync falls back to List + Describe when Search is denied). ``fix``
    names what to change; ``kind`` is ``trust-policy`` (sts:SetSourceIdentity not allowed),
    ``role-chain`` (the worker's own session already carries a source identity) or ``denied``.
    """

    def __init__(self, message: str, *, kind: str, fix: str, code: str = "") -> None:
        super().__init__(f"{message} Fix: {fix}", operation="AssumeRole", code=code)
        self.kind = kind
        self.fix = fix


def translate(exc: Exception, operation: str) -> AwsError:
    """Map a botocore exception to one of ours."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{operation}: {code}: {message}"
        if code in THROTTLING_CODES or status == 429:
            return RetryableAwsError(text, operation=operation, code=code)
        if code in NOT_FOUND_CODES or status == 404 or _validation_not_found(operation, code, message):
            return NotFoundError(text, operation=operation, code=code)
        if code in ACCESS_DENIED_CODES or status == 403:
            return AccessDeniedError(text, operation=operation, code=code)
        if code == "ConflictException":
            return ConflictError(text, operation=operation, code=code)
        if status >= 500 or code in {"InternalFailure", "InternalError", "ServiceUnavailable", "InternalServerError"}:
            return RetryableAwsError(text, operation=operation, code=code)
        if code == "ValidationException":
            return ValidationError(text, operation=operation, code=code)
        return FinalAwsError(text, operation=operation, code=code)
    if isinstance(
        exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError, ConnectionError)
    ):
        return RetryableAwsError(f"{operation}: network error: {exc}", operation=operation, code="NetworkError")
    if isinstance(exc, BotoCoreError):
        return FinalAwsError(f"{operation}: {exc}", operation=operation, code=type(exc).__name__)
    return FinalAwsError(f"{operation}: {exc!r}", operation=operation, code=type(exc).__name__)


def _validation_not_found(operation: str, code: str, message: str) -> bool:
    pattern = VALIDATION_NOT_FOUND.get(operation)
    return code == "ValidationException" and pattern is not None and pattern.search(message) is not None
