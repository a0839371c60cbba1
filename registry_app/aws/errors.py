"""Our own exceptions for AWS failures, so callers never inspect botocore internals."""

from __future__ import annotations

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
NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "404", "NotFound"}
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
        if (
            code in NOT_FOUND_CODES
            or status == 404
            or (
                code == "ValidationException"
                and ("not found" in message.lower() or "does not exist" in message.lower())
            )
        ):
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
