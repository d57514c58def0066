"""Model → `Route`: which providers serve a client's model, and under which backend name.

Precedence: any exact match beats any prefix match; a longer prefix beats a shorter one; ties
keep config order; `match = "*"` is the catch-all. A model no route matches is a 404-class
`ModelNotFound` naming the model and the configured patterns, never a silent guess."""
from __future__ import annotations

from dataclasses import dataclass

from .config import Config, ProviderConfig, RouteConfig
from .errors import ModelNotFound

CACHE_SIZE = 4096  # distinct client model names remembered; client input, so bounded
MAX_MODEL_IN_ERROR = 200


@dataclass(frozen=True, slots=True)
class Route:
    display_model: str  # what the client sent; echoed back in responses
    backend_model: str  # what goes upstream (to fallbacks too)
    provider: ProviderConfig  # with a pool: its first member
    fallbacks: tuple[ProviderConfig, ...]
    pattern: str  # the route's `match`
    pool: tuple[ProviderConfig, ...] = ()  # chosen among per request (`config.balance`)
    config: RouteConfig | None = None

    @property
    def providers(self) -> tuple[ProviderConfig, ...]:
        """The pool (or the primary), then each fallback."""
        return (*(self.pool or (self.provider,)), *self.fallbacks)


@dataclass(frozen=True, slots=True)
class _Rule:
    config: RouteConfig
    provider: ProviderConfig
    fallbacks: tuple[ProviderConfig, ...]
    pool: tuple[ProviderConfig, ...]

    def route(self, model: str) -> Route:
        return Route(model, self.config.rewrite_model or model, self.provider, self.fallbacks,
                     self.config.match, self.pool, self.config)


class Router:
    def __init__(self, config: Config) -> None:
        by_name = {p.name: p for p in config.providers}
        self._config = config
        self._exact: dict[str, _Rule] = {}
        prefixes: list[tuple[int, int, _Rule]] = []
        self._catch_all: _Rule | None = None
        for i, rc in enumerate(config.routes):
            rule = _Rule(rc, by_name[rc.provider],
                         tuple(by_name[name] for name in rc.fallback_providers),
                         tuple(by_name[name] for name in rc.pool))
            if rc.match == "*":
                self._catch_all = self._catch_all or rule
            elif rc.match_type == "exact":
                self._exact.setdefault(rc.match, rule)
            else:
                prefixes.append((-len(rc.match), i, rule))
        prefixes.sort(key=lambda t: t[:2])  # longest first; stable by config order
        self._prefixes = tuple((rule.config.match, rule) for _, _, rule in prefixes)
        self._cache: dict[str, Route] = {}
        self._patterns = ", ".join(
            f"{rc.match} ({'catch-all' if rc.match == '*' else rc.match_type})"
            for rc in config.routes)

    def resolve(self, model: str) -> Route:
        route = self._cache.get(model)
        if route is not None:
            return route
        rule = self._exact.get(model)
        if rule is None:
            rule = next((r for prefix, r in self._prefixes if model.startswith(prefix)),
                        self._catch_all)
        if rule is None:
            raise ModelNotFound(f"model '{_clip(model)}' matches no route; "
                                f"configured patterns: {self._patterns}")
        route = rule.route(model)
        if len(self._cache) >= CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # oldest first
        self._cache[model] = route
        return route

    def models(self) -> list[tuple[str, str, str, str | None]]:
        """(pattern, match_type, provider name, backend model or None) per route, config order."""
        return [(rc.match, rc.match_type, rc.provider, rc.rewrite_model)
                for rc in self._config.routes]


def _clip(model: str) -> str:
    return model if len(model) <= MAX_MODEL_IN_ERROR else model[:MAX_MODEL_IN_ERROR] + "..."
