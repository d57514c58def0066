"""Prometheus metrics for the gateway, in a registry of their own.

    metrics = Metrics(provider_names=[p.name for p in config.providers],
                      entries=[p.name for p in protocols.entries()])
    metrics.request_started("anthropic")
    metrics.request_finished("anthropic", "openai-main", 200, duration_s, ttft_s)
    metrics.upstream_error("openai-main", "timeout")
    metrics.retry("openai-main"); metrics.fallback("openai-main", "backup")
    metrics.circuit("openai-main", "open"); metrics.tokens("openai-main", usage)
    body, content_type = metrics.render()  # GET /metrics

Label values come only from config and fixed sets, never from client input: `entry` is one of
`entries` (else "other"), `provider` one of `provider_names` (else "none"), `kind` one of
`ERROR_KINDS` (else "other"), status classes "1xx".."5xx" (else "other"). Label children are
created once and cached in dicts; the per-request calls (`request_started`, `request_finished`,
`tokens`) find all their value cells in one dict lookup and increment them directly.

Multi-process (`--workers N`): when `PROMETHEUS_MULTIPROC_DIR` is set every worker writes its
values to mmap files there and `render()` merges all workers' files with
`prometheus_client.multiprocess.MultiProcessCollector`. The directory must exist and be emptied
by the parent before the workers start, and the parent should call
`Metrics.mark_process_dead(pid)` when a worker exits (drops its live gauges). In-flight gauge:
`livesum`; circuit state: `livemax` (the worst state any live worker sees).
"""
from __future__ import annotations

import os
from typing import Any, Iterable

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               PlatformCollector, ProcessCollector, generate_latest, multiprocess,
                               values)

ERROR_KINDS = ("connect", "timeout", "status_4xx", "status_429", "status_5xx", "protocol",
               "stream")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")
CIRCUIT_STATES = {"closed": 0, "open": 1, "half_open": 2}
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
KEY_EVENTS = ("selected", "cooled", "out")  # a pool key chosen, cooling after a 429, rejected
NO_PROVIDER, OTHER = "none", "other"
# the classic text format (what generate_latest writes); every Prometheus version scrapes it
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# LLM latencies: seconds-long requests and streams, TTFT from milliseconds (cached) to a minute
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
                    120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5,
                10.0, 15.0, 20.0, 30.0, 45.0, 60.0)


class _LoopValue(values.MutexValue):
    """A single-process value cell whose writes take no lock: ferryllm writes its metrics from
    the event loop's one thread only, and the lock was two thirds of an `inc` (~2,900 -> ~900
    instructions; a streamed request makes eight)."""

    def inc(self, amount: float) -> None:
        self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value


def _status_class(status: int) -> str:
    c = status // 100
    return STATUS_CLASSES[c - 1] if 1 <= c <= 5 else OTHER


def _cell(child: Any) -> Any:
    """The value behind a counter or gauge child (a `MutexValue`, or a `MmapedValue` across
    processes): the hot path calls its `inc()` directly. The public `inc()`/`observe()` check,
    on every call, that a child is not a labelled parent and that a counter's amount is not
    negative: three calls of pure overhead for a child built once here (~45 % of the
    per-request metrics cost)."""
    return child._value


def _hist_cells(child: Any) -> tuple[Any, tuple[tuple[float, Any], ...]]:
    """(sum cell, ((upper bound, bucket cell), …)) of a histogram child."""
    return child._sum, tuple(zip(child._upper_bounds, child._buckets))


def _observe(sum_cell: Any, buckets: tuple[tuple[float, Any], ...], value: float) -> None:
    """What `Histogram.observe` does, on the cells of `_hist_cells`."""
    sum_cell.inc(value)
    for bound, bucket in buckets:
        if value <= bound:
            bucket.inc(1)
            return


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self, provider_names: Iterable[str] = (), entries: Iterable[str] = (),
                 *, clients: Iterable[str] = (), shared_state: bool = False,
                 multiprocess_mode: bool | None = None,
                 key_labels: dict[str, tuple[str, ...]] | None = None) -> None:
        """`multiprocess_mode` defaults to "is PROMETHEUS_MULTIPROC_DIR set"; `key_labels`:
        provider name → the labels of its pool keys (from config, never key values); `clients`
        are the configured client names (`[[auth.clients]]`), the only values of `client`."""
        self.providers = frozenset(provider_names)
        self.key_labels = {p: frozenset(labels) for p, labels in (key_labels or {}).items()}
        self.clients = frozenset(clients)
        self.shared_state = shared_state  # the ferryllm_shared_state_* metrics exist
        self.entries = frozenset(entries)
        self.multiprocess = bool(multiprocess_dir()) if multiprocess_mode is None \
            else multiprocess_mode
        if self.multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client picks its value class when first imported; the env var may have
            # been set later (by `serve --workers`), before any metric exists: pick again.
            values.ValueClass = values.MultiProcessValue()
        self.registry = CollectorRegistry()
        r = self.registry
        # the children built here, every one the hot path writes, get lock-free cells (see
        # `_LoopValue`); prometheus_client reads its module-level value class per child
        value_class = values.ValueClass
        if value_class is values.MutexValue:
            values.ValueClass = _LoopValue
        try:
            self._build(r)
        finally:
            values.ValueClass = value_class

        if self.multiprocess:
            self._render_registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._render_registry)
        else:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            self._render_registry = r

    def _build(self, r: CollectorRegistry) -> None:
        self._requests = Counter("ferryllm_requests", "Client requests finished.",
                                 ("entry", "provider", "status_class"), registry=r)
        self._duration = Histogram("ferryllm_request_duration_seconds",
                                   "Request duration, to the end of the response or stream.",
                                   ("entry", "provider"), buckets=DURATION_BUCKETS, registry=r)
        self._ttft = Histogram("ferryllm_time_to_first_token_seconds",
                               "Time from request to the first content byte sent to the client.",
                               ("entry", "provider"), buckets=TTFT_BUCKETS, registry=r)
        self._in_flight = Gauge("ferryllm_in_flight_requests", "Requests being served.",
                                ("entry",), multiprocess_mode="livesum", registry=r)
        self._upstream_errors = Counter("ferryllm_upstream_errors",
                                        "Failed upstream attempts by kind.",
                                        ("provider", "kind"), registry=r)
        self._retries = Counter("ferryllm_retries", "Upstream retries.", ("provider",),
                                registry=r)
        self._fallbacks = Counter("ferryllm_fallbacks", "Fallbacks to another provider.",
                                  ("from_provider", "to_provider"), registry=r)
        self._circuit = Gauge("ferryllm_circuit_state",
                              "Circuit breaker state: 0 closed, 1 open, 2 half_open.",
                              ("provider",), multiprocess_mode="livemax", registry=r)
        self._tokens = Counter("ferryllm_tokens", "Tokens reported by providers.",
                               ("provider", "type"), registry=r)
        self._key_events = Counter("ferryllm_key_events",
                                   "Pool keys chosen, cooled after a 429, taken out after a "
                                   "401/403; a key is named by its label, never its value.",
                                   ("provider", "key", "event"), registry=r)
        self._client_requests = Counter("ferryllm_client_requests",
                                        "Requests finished per named client.",
                                        ("client", "status_class"), registry=r)
        self._client_tokens = Counter("ferryllm_client_tokens",
                                      "Tokens used per named client (provider usage).",
                                      ("client", "type"), registry=r)
        # children of the rarer calls (errors, retries …) by their arguments; the per-request
        # calls keep only their children's value cells (prometheus caches children by labels)
        self._c_errors: dict[tuple[str, str], Any] = {}
        self._c_retries: dict[str, Any] = {}
        self._c_fallbacks: dict[tuple[str, str], Any] = {}
        self._c_circuit: dict[str, Any] = {}
        self._c_keys: dict[tuple[str, str, str], Any] = {}
        # the hot path's value cells (see `_cell`), by the arguments as given
        self._in_flight_cells: dict[str, Any] = {}
        self._finished_cells: dict[tuple[str, str | None, int], tuple] = {}
        self._token_cells: dict[str, tuple[Any, ...]] = {}
        for entry in self.entries:
            self._in_flight_child(entry)
            for provider in (*self.providers, NO_PROVIDER):
                self._hist_children(entry, provider)
                for sc in ("2xx", "4xx", "5xx"):
                    self._request_child(entry, provider, sc)
        for provider in self.providers:
            self._retry_child(provider)
            self._circuit_child(provider).set(0)
            self._token_children(provider)
            for kind in ERROR_KINDS:
                self._error_child(provider, kind)
        for provider, labels in self.key_labels.items():
            for label in labels:
                for event in KEY_EVENTS:
                    self.key_event(provider, label, event, 0)
        if self.shared_state:
            self._shared_up = Gauge("ferryllm_shared_state_up",
                                    "1 while limits are shared through Redis, 0 while this "
                                    "instance decides alone.", multiprocess_mode="livemin",
                                    registry=r)
            self._shared_failures = Counter("ferryllm_shared_state_failures",
                                            "Redis calls that failed or took longer than "
                                            "timeout_ms.", registry=r)
            self._local_admissions = Counter("ferryllm_shared_state_local_admissions",
                                             "Requests admitted by this instance's own limits "
                                             "because Redis was unavailable.", registry=r)

    # ---------------------------------------------------------------- label normalisation

    def _provider(self, provider: str | None) -> str:
        return provider if provider in self.providers else NO_PROVIDER

    def _entry(self, entry: str) -> str:
        return entry if entry in self.entries else OTHER

    def _request_child(self, entry: str, provider: str | None, sc: str) -> Any:
        return self._requests.labels(self._entry(entry), self._provider(provider), sc)

    def _hist_children(self, entry: str, provider: str | None) -> tuple[Any, Any]:
        key = (self._entry(entry), self._provider(provider))
        return self._duration.labels(*key), self._ttft.labels(*key)

    def _in_flight_child(self, entry: str) -> Any:
        return self._in_flight.labels(self._entry(entry))

    def _error_child(self, provider: str | None, kind: str) -> Any:
        key = (self._provider(provider), kind if kind in ERROR_KINDS else OTHER)
        child = self._c_errors.get(key)
        if child is None:
            child = self._c_errors[key] = self._upstream_errors.labels(*key)
        return child

    def _retry_child(self, provider: str | None) -> Any:
        provider = self._provider(provider)
        child = self._c_retries.get(provider)
        if child is None:
            child = self._c_retries[provider] = self._retries.labels(provider)
        return child

    def _circuit_child(self, provider: str | None) -> Any:
        provider = self._provider(provider)
        child = self._c_circuit.get(provider)
        if child is None:
            child = self._c_circuit[provider] = self._circuit.labels(provider)
        return child

    def _token_children(self, provider: str | None) -> tuple[Any, ...]:
        provider = self._provider(provider)
        return tuple(self._tokens.labels(provider, t) for t in TOKEN_TYPES)

    # ---------------------------------------------------------------- hot path

    def request_started(self, entry: str) -> None:
        cell = self._in_flight_cells.get(entry)
        if cell is None:
            cell = self._in_flight_cells[entry] = _cell(self._in_flight_child(entry))
        cell.inc(1)

    def request_finished(self, entry: str, provider: str | None, status: int, duration: float,
                         ttft: float | None = None) -> None:
        """Call exactly once per `request_started` (seconds for `duration` and `ttft`)."""
        cells = self._finished_cells.get((entry, provider, status))  # type: ignore[arg-type]
        if cells is None:
            cells = self._finish_cells(entry, provider, status)
        in_flight, requests, (d_sum, d_buckets), (t_sum, t_buckets) = cells
        in_flight.inc(-1)
        requests.inc(1)
        _observe(d_sum, d_buckets, duration)
        if ttft is not None:
            _observe(t_sum, t_buckets, ttft)

    def _finish_cells(self, entry: str, provider: str | None, status: int) -> tuple:
        d, t = self._hist_children(entry, provider)
        cells = (_cell(self._in_flight_child(entry)),
                 _cell(self._request_child(entry, provider, _status_class(status))),
                 _hist_cells(d), _hist_cells(t))
        if entry in self.entries and (provider is None or provider in self.providers):
            # bounded: statuses are 3-digit and the other two come from config
            self._finished_cells[(entry, provider, status)] = cells
        return cells

    def tokens(self, provider: str | None, usage: Any) -> None:
        """`usage`: anything with input_tokens, output_tokens, cache_read_input_tokens and
        cache_creation_input_tokens (an `ir.Usage`). Zero (and negative) counts are skipped."""
        if usage is None:
            return
        cells = self._token_cells.get(provider)  # type: ignore[arg-type]
        if cells is None:
            cells = tuple(map(_cell, self._token_children(provider)))
            if provider in self.providers:
                self._token_cells[provider] = cells  # type: ignore[index]
        counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
                  usage.cache_creation_input_tokens)
        for cell, n in zip(cells, counts):
            if n > 0:
                cell.inc(n)

    def upstream_error(self, provider: str | None, kind: str) -> None:
        (self._c_errors.get((provider, kind))  # type: ignore[arg-type]
         or self._error_child(provider, kind)).inc()

    def retry(self, provider: str | None) -> None:
        (self._c_retries.get(provider) or self._retry_child(provider)).inc()  # type: ignore[arg-type]

    def fallback(self, frm: str | None, to: str | None) -> None:
        key = (self._provider(frm), self._provider(to))
        child = self._c_fallbacks.get(key)
        if child is None:
            child = self._c_fallbacks[key] = self._fallbacks.labels(*key)
        child.inc()

    def add_providers(self, provider_names: Iterable[str],
                      key_labels: dict[str, tuple[str, ...]] | None = None,
                      clients: Iterable[str] = ()) -> None:
        """A reloaded config's providers, pool keys and clients become valid labels too (their
        series appear at first use); each configured provider's circuit starts closed."""
        names = frozenset(provider_names)
        self.providers = self.providers | names
        self.clients = self.clients | frozenset(clients)
        for provider, labels in (key_labels or {}).items():
            self.key_labels[provider] = self.key_labels.get(provider, frozenset()) | frozenset(labels)
        for name in names:
            self.circuit(name, "closed")

    def key_event(self, provider: str, key: str, event: str, amount: int = 1) -> None:
        """Labels outside the configured keys and `KEY_EVENTS` become "other" (bounded)."""
        cell = self._c_keys.get((provider, key, event))
        if cell is None:
            labels = self.key_labels.get(provider, ())
            norm = (self._provider(provider), key if key in labels else OTHER,
                    event if event in KEY_EVENTS else OTHER)
            cell = self._c_keys[norm] = _cell(self._key_events.labels(*norm))
        cell.inc(amount)

    def circuit(self, provider: str | None, state: str | int) -> None:
        value = CIRCUIT_STATES.get(state, 0) if isinstance(state, str) else int(state)
        (self._c_circuit.get(provider) or self._circuit_child(provider)).set(value)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- clients, shared state

    def _client(self, client: str | None) -> str:
        return client if client in self.clients else OTHER

    def client_finished(self, client: str | None, status: int, usage: Any) -> None:
        """A named client's request ended (`client` None or unknown: "other")."""
        name = self._client(client)
        self._client_requests.labels(name, _status_class(status)).inc()
        if usage is not None:
            counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
                      usage.cache_creation_input_tokens)
            for kind, n in zip(TOKEN_TYPES, counts):
                if n > 0:
                    self._client_tokens.labels(name, kind).inc(n)

    def shared_state_up(self, up: bool) -> None:
        self._shared_up.set(1 if up else 0)

    def shared_state_failure(self) -> None:
        self._shared_failures.inc()

    def local_admission(self) -> None:
        self._local_admissions.inc()

    # ---------------------------------------------------------------- exposition

    def render(self) -> tuple[bytes, str]:
        """(body, content-type) for `GET /metrics`; all workers' values in multi-process mode."""
        return generate_latest(self._render_registry), CONTENT_TYPE

    @staticmethod
    def mark_process_dead(pid: int) -> None:
        """Multi-process: forget a dead worker's live gauges (call from the parent)."""
        if multiprocess_dir():
            multiprocess.mark_process_dead(pid)
