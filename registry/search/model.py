"""What a search asks and what it answers, the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchRequest:
    text: str = ""
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # AND across fields, OR within one
    sort: str = "pertinence"
    limit: int = 20
    offset: int = 0
    snippets: bool = True


@dataclass(frozen=True)
class Hit:
    id: str
    intitule: str
    nom_porteur: str
    date_maj: str
    date_debut: str
    facets: dict[str, tuple[str, ...]]
    snippet: str  # HTML: the record's own text escaped, the matched words in <mark>
    score: float


@dataclass(frozen=True)
class Results:
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]  # every facet, every value present in the filtered set (NONE included)
    suggestion: str | None = None  # "did you mean", when the query found little
    request: SearchRequest = field(default_factory=SearchRequest)
    # False when a backend stopped counting (PostgreSQL, at 10,000 matches of a query with words): `total` is
    # then a lower bound ("≥ 10 000") and each facet count is that of the matches counted, a lower bound too
    exact: bool = True
    # False when some facet counts are lower bounds (the total may still be exact: a filtered facet is counted
    # without its own filter, over more matches than the total)
    facets_exact: bool = True

    @property
    def total_relation(self) -> str:
        """Elasticsearch's convention: "eq" for an exact total, "gte" for a lower bound."""
        return "eq" if self.exact else "gte"
