"""The Redfish service of one site's BMCs (one listener per site, a system per host).

Enough of DSP0266 for a fencing client (``sushy`` unchanged):

* ``GET /redfish``, ``GET /redfish/v1/`` (service root, no auth);
* ``POST /redfish/v1/SessionService/Sessions`` (``UserName``/``Password``;
  answers ``X-Auth-Token`` and ``Location``), ``GET``/``DELETE`` a session;
* ``GET /redfish/v1/Systems`` (the systems the credentials open);
* ``GET /redfish/v1/Systems/{host}`` (``PowerState``, the reset action);
* ``POST /redfish/v1/Systems/{host}/Actions/ComputerSystem.Reset``
  (``{"ResetType": ...}``, 204).

Every other request needs HTTP Basic auth or a session token whose
credentials are that host's BMC's (401 otherwise).  Errors carry Redfish's
error body (``error.code``, ``error.message``, ``@Message.ExtendedInfo``).
Under the ``bmc-garbage`` host fault the host's system answers 200 with a
body that is not JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .registry import RESET_TYPES, BmcInfo, BmcRegistry, PowerRefused

if TYPE_CHECKING:
    from ..world import Site

ROOT = "/redfish/v1"
SESSIONS = f"{ROOT}/SessionService/Sessions"
_BASE = "Base.1.8"
_GARBAGE = b'{"@odata.id": "/redfish/v1/Systems/\x00\xff", "PowerState": On, <<<'


class RedfishError(Exception):
    def __init__(self, status: int, message_id: str, message: str, resolution: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message_id = message_id
        self.message = message
        self.resolution = resolution


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(doc),
        status_code=status,
        media_type="application/json",
        headers={"OData-Version": "4.0", **(headers or {})},
    )


def _error(err: RedfishError) -> Response:
    info = {
        "@odata.type": "#Message.v1_1_1.Message",
        "MessageId": f"{_BASE}.{err.message_id}",
        "Message": err.message,
        "Severity": "Critical",
        "Resolution": err.resolution or "None.",
    }
    body = {
        "error": {
            "code": f"{_BASE}.GeneralError",
            "message": err.message,
            "@Message.ExtendedInfo": [info],
        }
    }
    headers = {"WWW-Authenticate": 'Basic realm="liferaft-bmc"'} if err.status == 401 else {}
    return _json(body, err.status, headers)


def _unauthorized() -> RedfishError:
    return RedfishError(
        401,
        "NoValidSession",
        "There is no valid session established with the implementation.",
        "Establish a session, or send valid HTTP Basic credentials for this BMC.",
    )


def redfish_app(registry: BmcRegistry, site: Site) -> Starlette:
    """The Redfish service of ``site``'s BMCs."""
    sessions: dict[str, tuple[str, str, list[BmcInfo]]] = {}  # token -> (id, user, bmcs)

    def bmcs_for(user: str, password: str) -> list[BmcInfo]:
        return [
            b
            for b in registry.of_site(site.name)
            if secrets.compare_digest(b.username, user)
            and secrets.compare_digest(b.password, password)
        ]

    def authorized(request: Request) -> list[BmcInfo]:
        token = request.headers.get("x-auth-token")
        if token is not None:
            entry = sessions.get(token)
            if entry is None:
                raise _unauthorized()
            return entry[2]
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise _unauthorized()
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized() from None
        found = bmcs_for(user, password) if sep else []
        if not found:
            raise _unauthorized()
        return found

    def system_of(request: Request) -> BmcInfo:
        """The BMC of the system in the path, if the request's credentials open it."""
        host = request.path_params["host"]
        allowed = authorized(request)
        for b in allowed:
            if b.host == host:
                return b
        if registry.get(site.name, host) is None:
            raise RedfishError(
                404,
                "ResourceNotFound",
                f"The requested resource of type System named '{host}' was not found.",
            )
        raise _unauthorized()

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                result: Response = await fn(request)
                return result
            except RedfishError as err:
                return _error(err)

        return wrapped

    @handler
    async def redfish(request: Request) -> Response:
        return _json({"v1": f"{ROOT}/"})

    @handler
    async def service_root(request: Request) -> Response:
        return _json(
            {
                "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
                "@odata.id": f"{ROOT}/",
                "Id": "RootService",
                "Name": f"Liferaft simulated BMCs of site {site.name}",
                "RedfishVersion": "1.11.0",
                "UUID": registry.site_uuid(site.name),
                "Systems": {"@odata.id": f"{ROOT}/Systems"},
                "SessionService": {"@odata.id": f"{ROOT}/SessionService"},
                "Links": {"Sessions": {"@odata.id": SESSIONS}},
            }
        )

    @handler
    async def session_service(request: Request) -> Response:
        authorized(request)
        return _json(
            {
                "@odata.type": "#SessionService.v1_1_8.SessionService",
                "@odata.id": f"{ROOT}/SessionService",
                "Id": "SessionService",
                "Name": "Session Service",
                "ServiceEnabled": True,
                "SessionTimeout": 1800,
                "Sessions": {"@odata.id": SESSIONS},
            }
        )

    @handler
    async def create_session(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("UserName", "Password")
        ):
            raise RedfishError(
                400,
                "PropertyMissing",
                "The request needs the string properties UserName and Password.",
            )
        found = bmcs_for(body["UserName"], body["Password"])
        if not found:
            raise _unauthorized()
        token = secrets.token_hex(16)
        sid = secrets.token_hex(8)
        sessions[token] = (sid, body["UserName"], found)
        doc = _session_doc(sid, body["UserName"])
        return _json(doc, 201, {"X-Auth-Token": token, "Location": doc["@odata.id"]})

    @handler
    async def list_sessions(request: Request) -> Response:
        authorized(request)
        members = [{"@odata.id": f"{SESSIONS}/{sid}"} for sid, _u, _b in sessions.values()]
        return _json(
            {
                "@odata.type": "#SessionCollection.SessionCollection",
                "@odata.id": SESSIONS,
                "Name": "Session Collection",
                "Members": members,
                "Members@odata.count": len(members),
            }
        )

    def find_session(request: Request) -> tuple[str, str, str]:
        authorized(request)
        sid = request.path_params["sid"]
        for token, (s, user, _b) in sessions.items():
            if s == sid:
                return token, s, user
        raise RedfishError(404, "ResourceNotFound", f"Session {sid} was not found.")

    @handler
    async def get_session(request: Request) -> Response:
        _token, sid, user = find_session(request)
        return _json(_session_doc(sid, user))

    @handler
    async def delete_session(request: Request) -> Response:
        token, _sid, _user = find_session(request)
        del sessions[token]
        return Response(status_code=204)

    @handler
    async def systems(request: Request) -> Response:
        members = [{"@odata.id": b.system_path} for b in authorized(request)]
        return _json(
            {
                "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                "@odata.id": f"{ROOT}/Systems",
                "Name": "Computer System Collection",
                "Members": members,
                "Members@odata.count": len(members),
            }
        )

    @handler
    async def system(request: Request) -> Response:
        bmc = system_of(request)
        if registry.garbage(bmc):
            return Response(_GARBAGE, media_type="application/json")
        state = registry.read_power(bmc, "redfish")
        return _json(
            {
                "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
                "@odata.id": bmc.system_path,
                "Id": bmc.system_id,
                "Name": bmc.host,
                "SystemType": "Physical",
                "HostName": bmc.host,
                "UUID": bmc.uuid,
                "Manufacturer": "Liferaft",
                "Model": "Simulated compute host",
                "PowerState": state,
                "Status": {"State": "Enabled", "Health": "OK"},
                "Actions": {
                    "#ComputerSystem.Reset": {
                        "target": f"{bmc.system_path}/Actions/ComputerSystem.Reset",
                        "ResetType@Redfish.AllowableValues": list(RESET_TYPES),
                    }
                },
            }
        )

    @handler
    async def reset(request: Request) -> Response:
        bmc = system_of(request)
        if registry.garbage(bmc):
            return Response(_GARBAGE, media_type="application/json")
        try:
            body = await request.json()
        except ValueError:
            body = None
        reset_type = body.get("ResetType") if isinstance(body, dict) else None
        if not isinstance(reset_type, str):
            raise RedfishError(
                400,
                "ActionParameterMissing",
                "The action ComputerSystem.Reset requires the parameter ResetType.",
            )
        if reset_type not in RESET_TYPES:
            raise RedfishError(
                400,
                "ActionParameterValueNotInList",
                f"The value '{reset_type}' for the parameter ResetType in the action "
                f"ComputerSystem.Reset is not in the list of acceptable values.",
                f"Use one of {', '.join(RESET_TYPES)}.",
            )
        try:
            registry.reset(bmc, reset_type, "redfish")
        except PowerRefused as exc:
            raise RedfishError(409, "GeneralError", str(exc)) from None
        return Response(status_code=204)

    routes: list[BaseRoute] = [
        Route("/redfish", redfish, methods=["GET"]),
        Route("/redfish/", redfish, methods=["GET"]),
        Route(ROOT, service_root, methods=["GET"]),
        Route(f"{ROOT}/", service_root, methods=["GET"]),
        Route(f"{ROOT}/SessionService", session_service, methods=["GET"]),
        Route(SESSIONS, list_sessions, methods=["GET"]),
        Route(SESSIONS, create_session, methods=["POST"]),
        Route(SESSIONS + "/{sid}", get_session, methods=["GET"]),
        Route(SESSIONS + "/{sid}", delete_session, methods=["DELETE"]),
        Route(f"{ROOT}/Systems", systems, methods=["GET"]),
        Route(f"{ROOT}/Systems/{{host}}", system, methods=["GET"]),
        Route(f"{ROOT}/Systems/{{host}}/Actions/ComputerSystem.Reset", reset, methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(
            RedfishError(404, "ResourceNotFound", f"The resource {request.url.path} was not found.")
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(
            RedfishError(
                405,
                "OperationNotAllowed",
                f"{request.method} is not allowed on {request.url.path}.",
            )
        )

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


def _session_doc(sid: str, user: str) -> dict[str, Any]:
    return {
        "@odata.type": "#Session.v1_3_0.Session",
        "@odata.id": f"{SESSIONS}/{sid}",
        "Id": sid,
        "Name": "User Session",
        "UserName": user,
    }
