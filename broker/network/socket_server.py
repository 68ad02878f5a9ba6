"""A Kafka-protocol listener (Kafka's SocketServer and its processors): frames of a 4-byte size
and a request, read one at a time per connection as Kafka does (a connection is muted from a
request until its response is sent, so answers go out in request order), handed to the same
request layer as gRPC's.

The server runs an asyncio loop on a thread of its own; each connection's state belongs to its
coroutine alone. The request layer answers with concurrent futures, which the loop awaits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
from concurrent.futures import Future

from broker.api.context import RequestContext
from broker.api.kafka_apis import KafkaApis
from broker.config import SecurityProtocol
from broker.network import kafka_codec as codec
from broker.network.kafka_translation import TRANSLATIONS, api_versions_response

log = logging.getLogger(__name__)


class SocketServer:
    def __init__(self, listener_name: str, host: str, port: int, request_max_bytes: int, prefix: str = "") -> None:
        self._apis: KafkaApis | None = None
        self._listener_name = listener_name
        self._host = host or "0.0.0.0"
        self._port = port
        self._request_max_bytes = request_max_bytes
        self._prefix = prefix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"kafka-network-{listener_name}",
                                        daemon=True)
        self._server: asyncio.Server | None = None

    def bind(self) -> int:
        """Take the address, not yet serving (Kafka binds its acceptors before it registers, and
        processes requests once the request layer is up); the bound port. OSError when the
        address cannot be had."""
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, self._host, self._port, start_serving=False), self._loop).result()
        return int(self._server.sockets[0].getsockname()[1])

    def serve(self, apis: KafkaApis) -> None:
        assert self._server is not None
        self._apis = apis
        asyncio.run_coroutine_threadsafe(self._server.start_serving(), self._loop).result()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        context = RequestContext(client_host=f"/{peer[0]}", listener_name=self._listener_name,
                                 security_protocol=SecurityProtocol.PLAINTEXT)
        try:
            while True:
                size_bytes = await reader.readexactly(4)
                (size,) = struct.unpack(">i", size_bytes)
                if size < 0 or size > self._request_max_bytes:
                    # Kafka's InvalidReceiveException: the connection is closed.
                    log.warning("%s Closing connection from %s: a request of %d bytes is larger than "
                                "socket.request.max.bytes %d", self._prefix, context.client_host, size,
                                self._request_max_bytes)
                    return
                frame = await reader.readexactly(size)
                try:
                    answer = await self._answer(context, frame)
                except Exception:  # a bug of ours: this connection closes, the broker goes on
                    log.exception("%s Closing connection from %s: cannot answer a request", self._prefix,
                                  context.client_host)
                    return
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away, possibly mid-frame
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, context: RequestContext, frame: bytes) -> bytes | None:
        """The response frame to one request frame; None to close the connection, as Kafka does
        for a request it cannot read."""
        try:
            header = codec.read_header(frame)
        except codec.CodecError as e:
            log.warning("%s Closing connection from %s: %s", self._prefix, context.client_host, e)
            return None
        supported = codec.SUPPORTED_VERSIONS.get(header.api_key)
        if supported is None or not supported[0] <= header.api_version <= supported[1]:
            if header.api_key == codec.API_VERSIONS_KEY:
                return codec.unsupported_api_versions(header.correlation_id)
            log.warning("%s Closing connection from %s: api key %d version %d is not supported", self._prefix,
                        context.client_host, header.api_key, header.api_version)
            return None
        try:
            request = codec.read_request(header, frame)
        except codec.CodecError as e:
            log.warning("%s Closing connection from %s: %s", self._prefix, context.client_host, e)
            return None
        schema = codec.response_type(header.api_key, header.api_version)
        if header.api_key == codec.API_VERSIONS_KEY:
            values = api_versions_response(header.api_version)
        else:
            translation = TRANSLATIONS[header.api_key]
            assert self._apis is not None
            future: Future[object] = self._apis.handle(context, translation.request(request, header.api_version))
            values = translation.response(await asyncio.wrap_future(future), header.api_version)
        return codec.write_response(header.correlation_id, codec.build(schema, values))
