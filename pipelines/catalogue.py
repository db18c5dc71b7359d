"""Every operation the studio offers, by name. The queue registers one task per entry."""
from pipelines import background, diagnostic, faceswap, generate, inpaint, style
from pipelines.registry import Operation

_ALL = (generate.OPERATION, faceswap.FACE_SWAP, faceswap.DETECT_FACES, background.OPERATION, inpaint.OPERATION,
        style.OPERATION, diagnostic.OPERATION)
OPERATIONS: dict[str, Operation] = {op.name: op for op in _ALL}
