"""Every operation the studio offers, by name. The queue registers one task per entry."""
from pipelines import background, diagnostic, generate, style
from pipelines.registry import Operation

OPERATIONS: dict[str, Operation] = {
    op.name: op for op in (generate.OPERATION, background.OPERATION, style.OPERATION, diagnostic.OPERATION)
}
