"""The operator policy: `/api/v1/policy` (viewer): the policy in force, and a dry run of an
instance write against it for the caller (API.md, Part 2, "Operator policy")."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import LXDDep, ProjectDep, SettingsDep, ViewerUser
from app.api.responses import error_responses
from app.auth import policy_checks as service
from app.auth.policy import describe
from app.core.config import API_V1_PREFIX
from app.lxd import LXDClient
from app.schemas.policy import PolicyCheck, PolicyCheckResult, PolicyPublic, PolicyViolationItem
from app.services import instances as instances_service
from app.services import snapshots as snapshots_service

router = APIRouter(prefix=API_V1_PREFIX + "/policy", tags=["policy"])


@router.get(
    "",
    response_model=PolicyPublic,
    summary="The operator policy in force",
    description="What every caller below admin may not put into an instance (config keys, "
    "device types and their rules, source types, the image servers allowed for "
    "`source.server`) and the backup compression algorithms; each rule names the LXD "
    "`restricted.*` project key it mirrors. `held` says whether the policy holds the caller "
    "(false for an admin, and for everyone with `OPERATOR_POLICY=unrestricted`). Nothing is "
    "asked of LXD. Role: viewer.",
    responses=error_responses(404, 422, lxd=False),
)
async def get_policy(user: ViewerUser, settings: SettingsDep, _project: ProjectDep) -> PolicyPublic:
    policy = service.policy_from_settings(settings)
    return PolicyPublic.model_validate({**describe(policy), "held": policy.holds(user.role)})


@router.post(
    "/check",
    response_model=PolicyCheckResult,
    summary="Check an instance write against the policy",
    description="A dry run of the policy check of `POST /instances` and `PUT`/`PATCH "
    "/instances/{name}` for the caller: `{config, devices, source, profiles}` (all optional) "
    "answers `allowed` and every violation at once, as the 403 `policy_violation` of those "
    "routes would list them. Nothing is changed: only reads reach LXD (the copy source of "
    "`source.type: copy`, whose own config and devices count; the project's managed networks "
    "for NICs). A copy source that does not exist is a 404, as on `POST /instances`. "
    "`allowed` is the policy's answer only: creating still needs the operator role. An admin, "
    "and everyone with `OPERATOR_POLICY=unrestricted`, is allowed. Role: viewer.",
    responses=error_responses(404),
)
async def check_policy(
    body: PolicyCheck,
    lxd: LXDDep,
    project: ProjectDep,
    user: ViewerUser,
    settings: SettingsDep,
) -> PolicyCheckResult:
    policy = service.policy_from_settings(settings)
    write = body.model_dump(exclude_none=True)
    violations = await service.instance_violations(
        lxd, policy=policy, user=user, project=project, body=write
    )
    source = body.source
    if not violations and not policy.holds(user.role) and source and source.type == "copy":
        # The policy reads the copy source only for callers it holds; LXD refuses a missing
        # one for everyone (404), and so does this check.
        await _read_copy_source(lxd, str(source.source or ""), project=source.project or project)
    return PolicyCheckResult(
        allowed=not violations,
        violations=[PolicyViolationItem(**v.as_dict()) for v in violations],
    )


async def _read_copy_source(lxd: LXDClient, name: str, *, project: str) -> None:
    instance, _, snapshot = name.partition("/")
    if snapshot:
        await snapshots_service.get_snapshot(lxd, name=instance, snapshot=snapshot, project=project)
    else:
        await instances_service.get_instance(lxd, name=instance, project=project)
