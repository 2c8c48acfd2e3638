"""The edge's HTTP surface: the Track API paths, plus /healthz, /readyz and /metrics.

One catch-all handler matches every request against `mapping.routes` -- the route table the
worker translates with -- so the edge accepts exactly the calls the spec knows: an unknown path
is 404, a known path with another method 405. Then, in the order the worker judges a call
(spec §12): credentials (401, except on the endpoints Customer.io serves without them), the
`Idempotency-Key` header, the body (400 unless JSON; 400 over its endpoint's size limit; 413 past
`MAX_BODY_BYTES`). Anything else the worker judges: the envelope is produced, and the answer is
200 only once the broker acknowledged it, else 503 with `Retry-After`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mapping.limits import request_size_over
from mapping.results import Problem
from mapping.routes import OPEN_ENDPOINTS, Endpoint, allowed_methods, match_route
from worker import web as paths
from worker.config.settings import Settings
from worker.config.sources import SourcesConfig
from worker.edge import answers, envelope
from worker.edge.answers import JSON, MAX_BODY_BYTES, RETRY_AFTER_S, Refusal
from worker.edge.envelope import IDEMPOTENCY_HEADER, EdgeEnvelope
from worker.edge.metrics import EdgeMetrics
from worker.edge.producer import EnvelopeProducer, Unavailable
from worker.routing import Authenticator

logger = logging.getLogger("trackbridge.edge")

_DECODER = msgspec.json.Decoder()
_MESSAGES = {
    Refusal.UNKNOWN_PATH: "no Track API endpoint at this path",
    Refusal.UNAUTHORIZED: "Unauthorized request",
    Refusal.INVALID_IDEMPOTENCY_KEY: f"{IDEMPOTENCY_HEADER} must be 1 to 255 visible ASCII characters",
    Refusal.INVALID_JSON: "request body is not valid JSON",
    Refusal.REQUEST_TOO_LARGE: f"request body is over {MAX_BODY_BYTES} bytes",
    Refusal.KAFKA_UNAVAILABLE: "temporarily unavailable; retry",
}


class Edge:
    """The edge's aiohttp application, its producer and its metrics, for one settings + sources."""

    def __init__(
        self,
        settings: Settings,
        sources: SourcesConfig,
        *,
        metrics: EdgeMetrics | None = None,
        producer: EnvelopeProducer | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else EdgeMetrics()
        self.producer = producer if producer is not None else EnvelopeProducer(settings, self.metrics)
        self.authenticator: Authenticator[str] = Authenticator(
            (source.site_id, source.api_key_sha256, source.name) for source in sources.sources
        )
        self.stopping = False
        # client_max_size: aiohttp refuses a longer body itself; the handler turns that into 413.
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.router.add_get(paths.HEALTHZ, self.healthz)
        self.app.router.add_get(paths.READYZ, self.readyz)
        self.app.router.add_get(paths.METRICS, self.metrics_page)
        self.app.router.add_route("*", "/{path:.*}", self.track)

    def ready(self) -> bool:
        return self.producer.ready() and not self.stopping

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.ready()
        details = {"ready": ready, "producer_ready": self.producer.ready(), "stopping": self.stopping}
        return web.json_response(details, status=200 if ready else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def track(self, request: web.Request) -> web.Response:
        """One Track API request: refuse it, or produce its envelope and answer once acknowledged."""
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        try:
            response, endpoint = await self._track(request)
        finally:
            metrics.in_flight -= 1
        metrics.answered(endpoint, response.status)
        metrics.request_seconds.observe(time.perf_counter() - started)
        return response

    async def _track(self, request: web.Request) -> tuple[web.Response, str | None]:
        received_at = envelope.received_at()
        target = request.raw_path
        path, has_query, query = target.partition("?")
        if not path.startswith("/"):  # an absolute-form request target
            path, query, has_query = request.rel_url.raw_path, request.rel_url.raw_query_string, "?"
        method = request.method
        route = match_route(method, path)
        if route is None:
            allowed = allowed_methods(path)
            if allowed:
                message = f"{method} is not allowed here; allowed: {', '.join(allowed)}"
                return self._refuse(
                    path, Refusal.METHOD_NOT_ALLOWED, None, message, {"Allow": ", ".join(allowed)}
                ), None
            return self._refuse(path, Refusal.UNKNOWN_PATH, None), None
        endpoint = route.endpoint
        authorization = request.headers.get("Authorization")
        if endpoint not in OPEN_ENDPOINTS:
            source = self.authenticator.from_header(authorization)
            if isinstance(source, Problem):
                logger.debug(
                    "refused: %s", source.detail, extra={"event": "unauthorized", "endpoint": endpoint.value}
                )
                return self._refuse(path, Refusal.UNAUTHORIZED, endpoint), endpoint
        key_header = request.headers.get(IDEMPOTENCY_HEADER)
        if key_header is None:
            request_id = envelope.new_request_id()
        else:
            checked = envelope.idempotency_key(key_header)
            if checked is None:
                return self._refuse(path, Refusal.INVALID_IDEMPOTENCY_KEY, endpoint), endpoint
            request_id = checked
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(path, Refusal.REQUEST_TOO_LARGE, endpoint), endpoint
        self.metrics.received_bytes += len(raw)
        body: Any = None
        if raw.strip():
            try:
                if not raw.isascii():
                    raw.decode("utf-8")
                body = _DECODER.decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                return self._refuse(path, Refusal.INVALID_JSON, endpoint), endpoint
            value = msgspec.Raw(raw)
        else:
            value = envelope.NULL
        size = request_size_over(endpoint, len(raw), body)
        if size is not None:
            message = f"request body is {size} bytes; the limit of {endpoint.value} is exceeded"
            return self._refuse(path, Refusal.BODY_TOO_LARGE, endpoint, message), endpoint
        record = envelope.encode(
            EdgeEnvelope(
                method=method,
                path=path,
                query=query if has_query else None,
                authorization=authorization,
                body=value,
                received_at=received_at,
                request_id=request_id,
            )
        )
        try:
            await self.producer.send(record, envelope.partition_key(route, body))
        except Unavailable as error:
            logger.debug("503: %s", error, extra={"event": "unavailable", "endpoint": endpoint.value})
            headers = {"Retry-After": str(RETRY_AFTER_S)}
            return self._refuse(path, Refusal.KAFKA_UNAVAILABLE, endpoint, None, headers), endpoint
        if endpoint is Endpoint.V1_REGION:
            return web.Response(
                body=answers.region_body(f"{request.scheme}://{request.host}"), content_type=JSON
            ), endpoint
        return web.Response(body=answers.SUCCESS, content_type=JSON), endpoint

    def _refuse(
        self,
        path: str,
        refusal: Refusal,
        endpoint: Endpoint | None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.metrics.refuse(refusal)
        body = answers.error_body(path, refusal.value, message or _MESSAGES.get(refusal, refusal.value))
        return web.Response(status=refusal.status, body=body, content_type=JSON, headers=headers)
