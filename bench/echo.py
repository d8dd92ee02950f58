"""The baseline: a bare Starlette endpoint that echoes JSON, served exactly like rdv."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    """Parse the JSON body and send it back."""
    return JSONResponse(await request.json())


app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
