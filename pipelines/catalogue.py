"""Every operation the studio offers, by name. The queue registers one task per entry."""
from pipelines import background, diagnostic, style
from pipelines.registry import Operation

OPERATIONS: dict[str, Operation] = {op.name: op for op in (background.OPERATION, style.OPERATION, diagnostic.OPERATION)}
