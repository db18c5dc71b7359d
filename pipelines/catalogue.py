"""Every operation the studio offers, by name. The queue registers one task per entry."""
from pipelines import background, diagnostic, generate, inpaint, style
from pipelines.registry import Operation

_ALL = (generate.OPERATION, background.OPERATION, inpaint.OPERATION, style.OPERATION, diagnostic.OPERATION)
OPERATIONS: dict[str, Operation] = {op.name: op for op in _ALL}
