"""``GET /api/understanding/misses``: the not-understood inbox over HTTP.

Thin route: parse ``since``/``until`` (ISO or a look-back like ``24h``), ``state``, ``field``,
read the store through the turn loop's guard with the operator scans' timeout (a slow or down
store is a 503 with Retry-After), hand the rows to :mod:`service.misses`, serialise. Utterances
are masked; ``pii=true`` shows them as said, only to a request carrying the operator token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import misses
from service.http.common import ApiError, operator_access, services

DEFAULT_SINCE = "24h"
TRUE = frozenset({"1", "true", "yes"})


async def understanding_misses(request: Request) -> Response:
    """``GET /api/understanding/misses?since=24h&until=…&state=…&field=…&pii=true``."""
    svc = services(request)
    unmasked = operator_access(request)
    query = request.query_params
    pii = (query.get("pii") or "").strip().lower() in TRUE
    if pii and not unmasked:
        raise ApiError(403, "unmasked utterances need the operator token: configure RDV_OPERATOR_TOKEN and send it")
    now = svc.clock.now()
    try:
        until = misses.moment(query.get("until"), now, "until")
        since = misses.moment(query.get("since") or DEFAULT_SINCE, until, "since")
        misses.check_filters(query.get("state"), query.get("field"))
    except misses.MissesError as exc:
        raise ApiError(422, str(exc)) from None
    found, heard = await misses.read(svc.store, since, until, svc.scans.call)
    answer = misses.inbox(found, heard, since, until, state=query.get("state"), fld=query.get("field"), pii=pii)
    return JSONResponse(answer)


ROUTES = [Route("/api/understanding/misses", understanding_misses, methods=["GET"])]
