"""Networks: `/api/v1/networks` (viewer reads, admin writes, operator attaches NICs)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from app.api.deps import (
    AdminUser,
    ListParams,
    LXDDep,
    OperatorUser,
    PageLimit,
    PageOffset,
    ProjectDep,
    SettingsDep,
    ViewerRead,
)
from app.api.responses import (
    POLICY_RESPONSES,
    IfMatch,
    LXDJSONResponse,
    error_responses,
    location,
    lxd_answer,
)
from app.auth import policy_checks as policy
from app.core.config import API_V1_PREFIX
from app.schemas.common import NAME_PATTERN, Page
from app.schemas.networks import (
    NetworkCreate,
    NetworkLease,
    NetworkPatch,
    NetworkPublic,
    NetworkRename,
    NetworkState,
    NetworkUpdate,
    NicAttach,
)
from app.schemas.storage import DetachBody, DeviceAttachment
from app.services import networks as service
from app.utils.pagination import paginate

router = APIRouter(prefix=API_V1_PREFIX + "/networks", tags=["networks"])

NetworkName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="Network name", examples=["lxdbr0"])
]


@router.get(
    "",
    response_model=Page[NetworkPublic | str],
    summary="List networks",
    description="`GET /1.0/networks` (`recursion=1`; `expand=false` lists names), paged here. "
    "LXD lists the host's own interfaces too, with `managed: false`. Role: viewer. "
    "Synchronous.",
    responses=error_responses(404),
)
async def list_networks(
    lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> LXDJSONResponse:
    body = await service.list_networks(
        lxd,
        project=project,
        query=params,
    )
    return lxd_answer(body, model=Page[NetworkPublic | str])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NetworkPublic,
    summary="Create a network",
    description="`POST /1.0/networks` (`type`: bridge by default, or macvlan, sriov, ovn, "
    "physical; `config` passed through), then reads it back. Answers 201 with the network and "
    "its `Location`; 409 if the name is taken by a network or a host interface (LXD 5.0 says "
    "400 or 500). Role: admin. Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def create_network(
    body: NetworkCreate, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> LXDJSONResponse:
    network = await service.create_network(lxd, project=project, body=body.model_dump())
    return lxd_answer(
        network,
        model=NetworkPublic,
        location=location("networks", body.name),
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{network}",
    response_model=NetworkPublic,
    summary="Get a network",
    description="`GET /1.0/networks/{network}`; the `ETag` header is what `If-Match` takes on "
    "PUT/PATCH. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_network(
    network: NetworkName, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> LXDJSONResponse:
    data, etag = await service.get_network(lxd, project=project, network=network)
    return lxd_answer(data, model=NetworkPublic, etag=etag)


@router.put(
    "/{network}",
    response_model=NetworkPublic,
    summary="Replace a network's config and description",
    description="`PUT /1.0/networks/{network}`: config keys left out are removed. `If-Match` "
    "is passed on (412 on mismatch). A host interface LXD does not manage is a 400. Answers "
    "the network as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def replace_network(
    network: NetworkName,
    body: NetworkUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_network(
        lxd,
        project=project,
        network=network,
        body=body.model_dump(),
        replace=True,
        if_match=if_match,
    )
    return lxd_answer(data, model=NetworkPublic, etag=etag)


@router.patch(
    "/{network}",
    response_model=NetworkPublic,
    summary="Update a network",
    description="`PATCH /1.0/networks/{network}`: merges the config keys given and the "
    "description. `If-Match` is passed on (412 on mismatch). Answers the network as it now "
    "is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def update_network(
    network: NetworkName,
    body: NetworkPatch,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_network(
        lxd,
        project=project,
        network=network,
        body=body.model_dump(exclude_unset=True),
        replace=False,
        if_match=if_match,
    )
    return lxd_answer(data, model=NetworkPublic, etag=etag)


@router.delete(
    "/{network}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a network",
    description="`DELETE /1.0/networks/{network}`. A network in use by instances or profiles "
    "is a 409 that names them (LXD 5.0 says 400). Role: admin. Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def delete_network(
    network: NetworkName, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> Response:
    await service.delete_network(lxd, project=project, network=network)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{network}/rename",
    response_model=NetworkPublic,
    summary="Rename a network",
    description='`POST /1.0/networks/{network}` `{"name"}`; answers the network under its new '
    "name. 409 if the name is taken (by a network or a host interface) or the network is in "
    "use. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def rename_network(
    network: NetworkName,
    body: NetworkRename,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    data = await service.rename_network(lxd, project=project, network=network, new_name=body.name)
    return lxd_answer(data, model=NetworkPublic, location=location("networks", body.name))


@router.get(
    "/{network}/state",
    response_model=NetworkState,
    summary="Get a network's state",
    description="`GET /1.0/networks/{network}/state`: addresses, counters, MTU, link state "
    "(host interfaces included). Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_network_state(
    network: NetworkName, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> LXDJSONResponse:
    state = await service.network_state(lxd, project=project, network=network)
    return lxd_answer(state, model=NetworkState)


@router.get(
    "/{network}/leases",
    response_model=Page[NetworkLease],
    summary="List a network's DHCP leases",
    description="`GET /1.0/networks/{network}/leases`, paged here with `limit`/`offset`. Only "
    "managed networks have leases: a host interface is a 400 `network_not_managed` (LXD says "
    "404). Role: viewer. Synchronous.",
    responses=error_responses(400, 404),
)
async def list_network_leases(
    network: NetworkName,
    lxd: LXDDep,
    project: ProjectDep,
    _: ViewerRead,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> LXDJSONResponse:
    leases = await service.network_leases(lxd, project=project, network=network)
    return lxd_answer(paginate(leases, limit=limit, offset=offset), model=Page[NetworkLease])


@router.post(
    "/{network}/attach",
    response_model=DeviceAttachment,
    summary="Attach an instance to the network (add a NIC)",
    description="Adds a `nic` device `{network, name: <interface>}` to the instance: reads it "
    "with its ETag, writes it back with `PUT /1.0/instances/{name}` + `If-Match` and waits for "
    "LXD's operation, retrying on concurrent changes. Device name: `device`, else the "
    "network's name (made unique); interface: `interface`, else the first free `ethN`. 409 if "
    "the instance is already on this network or the name is taken. Role: operator, held to "
    "the operator policy (a NIC on a managed network of the project is allowed). Answers "
    "when done.",
    responses={**error_responses(400, 404, 409), **POLICY_RESPONSES},
)
async def attach_network(
    network: NetworkName,
    body: NicAttach,
    lxd: LXDDep,
    project: ProjectDep,
    user: OperatorUser,
    settings: SettingsDep,
) -> dict[str, Any]:
    guard = await policy.device_guard(lxd, settings=settings, user=user, project=project, nic=True)
    device, config = await service.attach_nic(
        lxd,
        project=project,
        network=network,
        instance=body.instance,
        device=body.device,
        interface=body.interface,
        guard=guard,
    )
    return {"instance": body.instance, "device": device, "config": config}


@router.post(
    "/{network}/detach",
    response_model=DeviceAttachment,
    summary="Detach an instance from the network (remove its NIC)",
    description="Removes the instance's NIC on this network (the device named `device`, else "
    "the one found by network), with the same safe read/`If-Match`/retry edit as attach. 404 "
    "when the instance has no NIC on it; 400 when the NIC comes from a profile. Answers the "
    "device that was removed. Role: operator. Answers when done.",
    responses=error_responses(400, 404, 409),
)
async def detach_network(
    network: NetworkName, body: DetachBody, lxd: LXDDep, project: ProjectDep, user: OperatorUser
) -> dict[str, Any]:
    device, config = await service.detach_nic(
        lxd, project=project, network=network, instance=body.instance, device=body.device
    )
    return {"instance": body.instance, "device": device, "config": config}
