"""KafkaApis: the dispatch of every request to its area's handler."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from broker.api.context import RequestContext
from broker.api.futures import done

Handler = Callable[[RequestContext, Any], Any]


class ApiArea(Protocol):
    """The handlers of one area (admin, data, control, group), by the request type each takes."""

    def handlers(self) -> dict[type, Handler]: ...


class KafkaApis:
    """Kafka's KafkaApis: every request, from any transport, is answered here, by the area that
    handles its type (broker/api/admin_apis.py, data_apis.py, control_apis.py, group_apis.py)."""

    def __init__(self, *areas: ApiArea) -> None:
        self._handlers: dict[type, Handler] = {}
        for area in areas:
            for request_type, handler in area.handlers().items():
                if request_type in self._handlers:
                    raise ValueError(f"{request_type.__name__} has two handlers")
                self._handlers[request_type] = handler

    def handle(self, context: RequestContext, request: Any) -> Future[Any]:
        """The answer to `request`, as a future: done at once, or when a parked request completes."""
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"no handler for {type(request).__name__}")
        answer = handler(context, request)
        return answer if isinstance(answer, Future) else done(answer)
