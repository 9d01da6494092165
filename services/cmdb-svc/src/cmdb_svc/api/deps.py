"""Dependencies of cmdb-svc routes."""

from typing import Annotated

from fastapi import Depends, Header, Request

from ..live_graph import LiveGraph


def get_graph(request: Request) -> LiveGraph:
    return request.app.state.runtime.state["graph"]


GraphDep = Annotated[LiveGraph, Depends(get_graph)]
ActorHeader = Annotated[str | None, Header(alias="X-Actor", max_length=200,
                                           description="Who makes the change, recorded in the CI's history")]
