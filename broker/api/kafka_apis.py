"""KafkaApis: the dispatch of every request to its area's handler."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from broker.api.context import RequestContext
from broker.api.control_apis import ControlApis
from broker.api.data_apis import DataApis
from broker.api.futures import done
from broker.api.group_apis import GroupApis


class KafkaApis:
    """Kafka's KafkaApis: every request, from any transport, is answered here."""

    def __init__(self, data: DataApis, control: ControlApis, group: GroupApis) -> None:
        self.data, self.control, self.group = data, control, group
        self._handlers: dict[type, Callable[[RequestContext, Any], Any]] = {
            **data.handlers(), **control.handlers(), **group.handlers(),
        }

    def handle(self, context: RequestContext, request: Any) -> Future[Any]:
        """The answer to `request`, as a future: done at once, or when a parked request completes."""
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"no handler for {type(request).__name__}")
        answer = handler(context, request)
        return answer if isinstance(answer, Future) else done(answer)
