"""The one typed action layer: the CLI, the pages, the APIs and the harvesters call these, and nothing below.

Each action takes the registry, the `Caller` (who, through which channel, with which rights) and typed
arguments, checks the rights in `authz`, and returns typed views (registry.queries) or results.
"""

from registry.actions import experiences, index
from registry.actions.authz import Caller, Forbidden, Permission, Role

__all__ = ["Caller", "Forbidden", "Permission", "Role", "experiences", "index"]
