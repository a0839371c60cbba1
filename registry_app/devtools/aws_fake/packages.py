"""Model packages as AWS keeps them: CreateModelPackage, UpdateModelPackage and the package record.

What moto 5.2.5 does differently, and what this layer does instead (sources in docs/aws-fake.md):

* UpdateModelPackage: moto assigns every member it knows (a left-out ``ModelApprovalStatus`` or
  ``ApprovalDescription`` becomes None, ``CustomerMetadataProperties`` replaces the whole map) and
  ignores ``InferenceSpecification``, ``SourceUri``, ``ModelCard``, ``ModelLifeCycle`` and
  ``ClientToken``. AWS changes only what the request names: metadata keys are added or overwritten
  and ``CustomerMetadataPropertiesToRemove`` deletes keys; a repeated ``ClientToken`` is a no-op.
* CreateModelPackage: moto drops ``ModelCard``, ``ModelLifeCycle``, ``SourceUri``,
  ``ModelPackageRegistrationType`` and ``SecurityConfig``, has no ``LastModifiedTime`` until the first
  update, and ignores ``ClientToken`` (a retried create makes a second version).
* CreatedBy / LastModifiedBy: moto invents a Studio user profile; AWS records the caller.
* Server-side constraints botocore does not check on the client (patterns, maxima, enums) are
  checked here, with AWS's ``ValidationException`` wording.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
import unicodedata
from typing import Any, cast

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import AWSValidationException, ValidationError
from moto.sagemaker.models import ModelPackage, ModelPackageGroup, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from registry_app.devtools.aws_fake._patching import wraps_original
from registry_app.devtools.aws_fake.identity import caller_user_context, now_ms, to_naive_utc

_LOCK = threading.RLock()  # moto's server is threaded; read-modify-write of a package is not atomic

# Members moto never stores on a package: (attribute on moto's ModelPackage, API member name).
EXTRA_MEMBERS = (
    ("model_card", "ModelCard"),
    ("model_life_cycle", "ModelLifeCycle"),
    ("source_uri", "SourceUri"),
    ("model_package_registration_type", "ModelPackageRegistrationType"),
    ("security_config", "SecurityConfig"),
    ("skip_model_validation", "SkipModelValidation"),
)
UPDATED_ATTR = "aws_fake_updated"  # True once a real UpdateModelPackage happened (backdating keeps it)
TOKENS_ATTR = "aws_fake_update_tokens"  # on the backend: {(package ARN, ClientToken)}

# botocore shapes CustomerMetadataKey / CustomerMetadataValue: ([\p{L}\p{Z}\p{N}_.:\/=+\-@]*), 1-128 / 1-256.
METADATA_PATTERN = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)"
_METADATA_EXTRA_CHARS = set("_.:/=+-@")
# botocore shape EntityName (ModelLifeCycle.Stage / StageStatus).
ENTITY_NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_ENTITY_NAME_RE = re.compile(ENTITY_NAME_PATTERN)
MODEL_CARD_STATUSES = ("Draft", "PendingReview", "Approved", "Archived")
MAX_ADDITIONAL_INFERENCE_SPECIFICATIONS = 15


# --------------------------------------------------------------------------------------------- checks


def _metadata_text_ok(text: str) -> bool:
    return all(unicodedata.category(ch)[0] in "LZN" or ch in _METADATA_EXTRA_CHARS for ch in text)


def _constraint(value: Any, where: str, constraint: str) -> str:
    return f"Value '{value}' at '{where}' failed to satisfy constraint: {constraint}"


def check_metadata(props: Any, where: str, errors: list[str]) -> None:
    """CustomerMetadataProperties: 1-50 entries, key 1-128, value 1-256, restricted characters."""
    if props is None:
        return
    if not 1 <= len(props) <= 50:
        errors.append(_constraint(props, where, "Member must have length less than or equal to 50"))
    for key, value in props.items():
        for text, limit, part in ((key, 128, "key"), (str(value), 256, "value")):
            if not 1 <= len(text) <= limit:
                errors.append(_constraint(text, f"{where}.{part}", f"Member must have length between 1 and {limit}"))
            elif not _metadata_text_ok(text):
                pattern = f"{METADATA_PATTERN}${{1,{limit}}}"
                errors.append(
                    _constraint(text, f"{where}.{part}", f"Member must satisfy regular expression pattern: {pattern}")
                )


def check_life_cycle(life_cycle: Any, errors: list[str]) -> None:
    """ModelLifeCycle: Stage and StageStatus required, each an EntityName; StageDescription <= 1024."""
    if life_cycle is None:
        return
    for member in ("Stage", "StageStatus"):
        value = life_cycle.get(member)
        where = f"modelLifeCycle.{member[0].lower()}{member[1:]}"
        if value is None:
            errors.append(_constraint(None, where, "Member must not be null"))
        elif not _ENTITY_NAME_RE.fullmatch(value):
            errors.append(
                _constraint(value, where, f"Member must satisfy regular expression pattern: {ENTITY_NAME_PATTERN}")
            )
    if len(life_cycle.get("StageDescription") or "") > 1024:
        errors.append(_constraint("...", "modelLifeCycle.stageDescription", "Member must have length <= 1024"))


def check_model_card(card: Any, existing: Any, errors: list[str]) -> None:
    """ModelCard: status enum; content of an Archived card cannot change (ModelPackageModelCard doc)."""
    if card is None:
        return
    status = card.get("ModelCardStatus")
    if status is not None and status not in MODEL_CARD_STATUSES:
        errors.append(
            _constraint(
                status, "modelCard.modelCardStatus", f"Member must satisfy enum value set: {list(MODEL_CARD_STATUSES)}"
            )
        )
    if existing and existing.get("ModelCardStatus") == "Archived" and "ModelCardContent" in card:
        raise AWSValidationException("Model Card is in Archived state")


def raise_if(errors: list[str]) -> None:
    if errors:
        count = len(errors)
        plural = "s" if count > 1 else ""
        raise AWSValidationException(f"{count} validation error{plural} detected: " + "; ".join(errors))


# --------------------------------------------------------------------------------------------- helpers


def find_package(backend: SageMakerModelBackend, name_or_arn: str) -> ModelPackage:
    mapped = backend.model_package_name_mapping.get(name_or_arn, name_or_arn)
    package = backend.model_packages.get(mapped)
    if package is None:
        raise ValidationError(f"Model package {name_or_arn} not found")
    return package


def _later_than(previous: dt.datetime | None) -> dt.datetime:
    """Now, but strictly after ``previous``: LastModifiedTime advances on every update (AWS returns
    millisecond times, so two updates within one millisecond still get distinct, ordered stamps)."""
    now = now_ms()
    if previous is not None and now <= previous:
        now = previous + dt.timedelta(milliseconds=1)
    return now


# UpdateModelPackage request members -> the keyword the fake's backend method takes for them. moto's
# own five keywords come first (the names of moto's backend signature), then the ones moto ignores.
UPDATE_MEMBERS = {
    "ModelApprovalStatus": "model_approval_status",
    "ApprovalDescription": "approval_description",
    "CustomerMetadataProperties": "customer_metadata_properties",
    "CustomerMetadataPropertiesToRemove": "customer_metadata_properties_to_remove",
    "AdditionalInferenceSpecificationsToAdd": "additional_inference_specifications_to_add",
    "InferenceSpecification": "inference_specification",
    "SourceUri": "source_uri",
    "ModelCard": "model_card",
    "ModelLifeCycle": "model_life_cycle",
    "ModelPackageRegistrationType": "model_package_registration_type",
    "ClientToken": "client_token",
}


def check_update(package: ModelPackage, members: dict[str, Any]) -> None:
    errors: list[str] = []
    check_metadata(members.get("customer_metadata_properties"), "customerMetadataProperties", errors)
    check_life_cycle(members.get("model_life_cycle"), errors)
    check_model_card(members.get("model_card"), getattr(package, "model_card", None), errors)
    raise_if(errors)
    added = len(members.get("additional_inference_specifications_to_add") or [])
    if (
        added
        and added + len(package.additional_inference_specifications or []) > MAX_ADDITIONAL_INFERENCE_SPECIFICATIONS
    ):
        raise AWSValidationException(
            "Total number of additional Inference Specifications can not exceed "
            f"{MAX_ADDITIONAL_INFERENCE_SPECIFICATIONS}"
        )


def apply_update(package: ModelPackage, members: dict[str, Any]) -> None:
    """UpdateModelPackage: change only the members the request names (AWS semantics)."""
    if members.get("model_approval_status") is not None:
        package.set_model_approval_status(members["model_approval_status"])
    if members.get("approval_description") is not None:
        package.approval_description = members["approval_description"]
    # CustomerMetadataProperties adds or overwrites keys; CustomerMetadataPropertiesToRemove deletes keys.
    metadata = dict(package.customer_metadata_properties or {})
    metadata.update(members.get("customer_metadata_properties") or {})
    for key in members.get("customer_metadata_properties_to_remove") or []:
        metadata.pop(key, None)
    package.customer_metadata_properties = metadata or None
    # AdditionalInferenceSpecificationsToAdd is appended to the existing list (moto's helper does that).
    if members.get("additional_inference_specifications_to_add"):
        package.add_additional_inference_specifications(
            copy.deepcopy(members["additional_inference_specifications_to_add"])
        )
    if members.get("inference_specification") is not None:
        package.inference_specification = copy.deepcopy(members["inference_specification"])
    for attr in ("source_uri", "model_package_registration_type"):
        if members.get(attr) is not None:
            setattr(package, attr, members[attr])
    if members.get("model_card") is not None:
        merged = dict(getattr(package, "model_card", None) or {})
        merged.update(members["model_card"])  # a status-only change keeps the content, and vice versa
        package.model_card = merged  # type: ignore[attr-defined]
    if members.get("model_life_cycle") is not None:
        package.model_life_cycle = copy.deepcopy(members["model_life_cycle"])  # type: ignore[attr-defined]
    package.last_modified_time = _later_than(package.last_modified_time)
    package.last_modified_by = members.get("last_modified_by") or package.created_by
    setattr(package, UPDATED_ATTR, True)


# --------------------------------------------------------------------------------------------- patches


def install() -> None:
    @wraps_original(SageMakerModelBackend, "update_model_package")
    def backend_update(_moto: Any, self: SageMakerModelBackend, model_package_arn: str, **members: Any) -> str:
        """UpdateModelPackage with AWS's partial-update, merge and ClientToken semantics.

        Patched on moto's backend method (not only the response) so that harnesses which wrap
        ``SageMakerModelBackend.update_model_package`` still see every update that reaches "AWS". A
        ``client_token`` counts as used only once the update has been applied here.
        """
        with _LOCK:
            package = find_package(self, model_package_arn)
            token = members.get("client_token")
            tokens: set[tuple[str, str]] = self.__dict__.setdefault(TOKENS_ATTR, set())
            if token and (package.arn, token) in tokens:
                return package.arn  # idempotent repeat: no change at all
            check_update(package, members)
            apply_update(package, members)
            if token:
                tokens.add((package.arn, token))
            return package.arn

    @wraps_original(SageMakerResponse, "update_model_package")
    def update_model_package(_moto: Any, self: SageMakerResponse) -> ActionResult:
        """UpdateModelPackage: every request member goes to the backend, and so does the caller."""
        members = {keyword: self._get_param(member) for member, keyword in UPDATE_MEMBERS.items()}
        arn = self.sagemaker_backend.update_model_package(
            model_package_arn=self._get_param("ModelPackageArn"),
            last_modified_by=caller_user_context(self),
            **members,
        )
        return ActionResult({"ModelPackageArn": arn})

    @wraps_original(SageMakerResponse, "create_model_package")
    def create_model_package(moto_create: Any, self: SageMakerResponse) -> ActionResult:
        """CreateModelPackage keeping every member, honouring ClientToken, stamping the caller."""
        backend = self.sagemaker_backend
        param = self._get_param
        errors: list[str] = []
        check_metadata(param("CustomerMetadataProperties"), "customerMetadataProperties", errors)
        check_life_cycle(param("ModelLifeCycle"), errors)
        check_model_card(param("ModelCard"), None, errors)
        raise_if(errors)
        token = param("ClientToken")
        with _LOCK:
            if token:
                for existing in backend.model_packages.values():
                    if existing.client_token == token:
                        return ActionResult({"ModelPackageArn": existing.arn})  # a retried create
            result = moto_create(self)
            arn = cast(dict[str, str], result.result)["ModelPackageArn"]
            package = backend.model_packages[arn]
            created = to_naive_utc(package.creation_time)
            package.creation_time = created
            package.last_modified_time = created  # AWS shows LastModifiedTime from creation on
            package.created_by = caller_user_context(self)
            package.last_modified_by = None
            setattr(package, UPDATED_ATTR, False)
            for attr, member in EXTRA_MEMBERS:
                setattr(package, attr, copy.deepcopy(param(member)))
        return result

    @wraps_original(ModelPackage, "gen_response_object")
    def package_record(moto_record: Any, self: ModelPackage) -> dict[str, Any]:
        """The package record (Describe, List summaries, Search) with the members moto drops."""
        record = cast(dict[str, Any], moto_record(self))
        for attr, member in EXTRA_MEMBERS:
            value = getattr(self, attr, None)
            if value is not None:
                record[member] = copy.deepcopy(value)
        return record

    @wraps_original(SageMakerResponse, "create_model_package_group")
    def create_model_package_group(moto_create: Any, self: SageMakerResponse) -> ActionResult:
        """CreateModelPackageGroup; CreatedBy is the caller (DescribeModelPackageGroup requires it)."""
        result = moto_create(self)
        group = self.sagemaker_backend.model_package_groups[self._get_param("ModelPackageGroupName")]
        group.creation_time = to_naive_utc(group.creation_time)
        group.created_by = caller_user_context(self)
        return result

    @wraps_original(ModelPackageGroup, "gen_response_object")
    def group_record(moto_record: Any, self: ModelPackageGroup) -> dict[str, Any]:
        """moto's group record leaves out CreatedBy, a required DescribeModelPackageGroup member."""
        record = cast(dict[str, Any], moto_record(self))
        if self.created_by:
            record["CreatedBy"] = copy.deepcopy(self.created_by)
        return record
