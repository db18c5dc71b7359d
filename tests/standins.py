"""Faithful stand-ins for the model files the studio downloads: the same file format and
tensor interface as the real weights, loaded by the real loading code (insightface's
`FaceAnalysis` and `model_zoo`, onnxruntime, `torch.jit.load`). Each computes something
simple from what it receives, so a test can tell whether it received the right thing:
channel order, value range, size. Inputs that the real model would mis-read make the
stand-in fail or give a visibly different answer.

Faces for the insightface stand-ins are red squares on a grey photo: the SCRFD-shaped
detector fires on a 32 px cell that is red in the model's input channel 0 (RGB order
after insightface's own BGR->RGB swap), and places a 256 px face box, centred on that
cell, with five points around it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CELL = 32  # the detector's one live stride; a face marker fills exactly one cell
SWAP_RGB = (0.9, 0.2, 0.6)  # what the swapper stand-in paints, RGB in 0..1
# five points (eyes, nose, mouth corners) around the cell's centre, in strides
POINTS = [(-1.2, -0.8), (1.2, -0.8), (0.0, 0.3), (-0.9, 1.3), (0.9, 1.3)]


def face_photo(size: tuple[int, int], cells: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """A grey RGB photo (a little noise) with a red marker filling each (column, row) cell."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(128, 8, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    for column, row in cells:
        rgb[row * CELL:(row + 1) * CELL, column * CELL:(column + 1) * CELL] = (230, 20, 20)
    return rgb


def _save(nodes, inputs, outputs, initializers, path: Path) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _const(name: str, value) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def scrfd(path: Path) -> Path:
    """SCRFD's interface (det_10g.onnx): [1,3,H,W] in, 9 outputs: scores, boxes and
    keypoints for strides 8, 16 and 32, two anchors per place, not batched."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["input.1", "red_minus_blue"], ["redness"])]  # channel 0 - channel 2
    inits = [_const("red_minus_blue", np.array([1.0, 0.0, -1.0]).reshape(1, 3, 1, 1)),
             _const("gain", 20.0), _const("threshold", 1.5), _const("off", -20.0), _const("zero", 0.0),
             _const("one", 1.0), helper.make_tensor("flat", TensorProto.INT64, [2], [-1, 1]),
             _const("box", [[3.5, 3.5, 4.5, 4.5]]),  # distances in strides, centred on the cell
             _const("points", [[coordinate + 0.5 for point in POINTS for coordinate in point]])]
    scores, boxes, points = [], [], []
    for stride in (8, 16, 32):
        pooled = f"pooled{stride}"
        nodes.append(helper.make_node("AveragePool", ["redness"], [pooled], kernel_shape=[stride, stride],
                                      strides=[stride, stride]))
        if stride == CELL:
            nodes += [helper.make_node("Sub", [pooled, "threshold"], [f"d{stride}"]),
                      helper.make_node("Mul", [f"d{stride}", "gain"], [f"logit{stride}"])]
        else:  # no faces at the finer strides
            nodes += [helper.make_node("Mul", [pooled, "zero"], [f"z{stride}"]),
                      helper.make_node("Add", [f"z{stride}", "off"], [f"logit{stride}"])]
        nodes += [helper.make_node("Sigmoid", [f"logit{stride}"], [f"p{stride}"]),
                  helper.make_node("Transpose", [f"p{stride}"], [f"t{stride}"], perm=[0, 2, 3, 1]),
                  helper.make_node("Concat", [f"t{stride}", f"t{stride}"], [f"a{stride}"], axis=3),
                  helper.make_node("Reshape", [f"a{stride}", "flat"], [f"score_{stride}"]),
                  helper.make_node("Mul", [f"score_{stride}", "zero"], [f"z_{stride}"]),
                  helper.make_node("Add", [f"z_{stride}", "one"], [f"ones_{stride}"]),
                  helper.make_node("Mul", [f"ones_{stride}", "box"], [f"bbox_{stride}"]),
                  helper.make_node("Mul", [f"ones_{stride}", "points"], [f"kps_{stride}"])]
        scores.append(helper.make_tensor_value_info(f"score_{stride}", TensorProto.FLOAT, [f"n{stride}", 1]))
        boxes.append(helper.make_tensor_value_info(f"bbox_{stride}", TensorProto.FLOAT, [f"n{stride}", 4]))
        points.append(helper.make_tensor_value_info(f"kps_{stride}", TensorProto.FLOAT, [f"n{stride}", 10]))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])
    return _save(nodes, [image], scores + boxes + points, inits, path)


def arcface(path: Path) -> Path:
    """ArcFace's interface (w600k_r50.onnx): [1,3,112,112] in, a 512-d embedding out."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    nodes = [helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "weight", "bias"], ["683"])]
    inits = [_const("weight", rng.normal(size=(3, 512))), _const("bias", rng.normal(size=512))]
    return _save(nodes, [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
                 [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])], inits, path)


def inswapper(path: Path) -> Path:
    """inswapper_128's interface: target [1,3,128,128] (RGB 0..1) and source [1,512] in,
    [1,3,128,128] RGB 0..1 out; its emap is the graph's last initializer. It paints
    SWAP_RGB over the crop."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Mul", ["target", "zero"], ["blank"]),
             helper.make_node("Add", ["blank", "colour"], ["output"])]
    inits = [_const("zero", 0.0), _const("colour", np.array(SWAP_RGB).reshape(1, 3, 1, 1)),
             _const("emap", np.eye(512))]
    inputs = [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
              helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])]
    return _save(nodes, inputs, [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
                 inits, path)


def gfpgan(path: Path) -> Path:
    """GFPGAN 1.4's ONNX interface: [1,3,512,512] RGB in -1..1, the same out. It keeps
    channel 0 and sets channel 1 to -1 and channel 2 to +1: fed BGR, or 0..1, the
    pasted face comes out visibly different."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Mul", ["input", "keep_red"], ["red"]),
             helper.make_node("Add", ["red", "low_green_high_blue"], ["output"])]
    inits = [_const("keep_red", np.array([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)),
             _const("low_green_high_blue", np.array([0.0, -1.0, 1.0]).reshape(1, 3, 1, 1))]
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 512, 512])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 512, 512])], inits, path)


def codeformer(path: Path) -> Path:
    """CodeFormer's ONNX interface as FaceFusion exports it: `input` [1,3,512,512] RGB in
    -1..1 and its fidelity `weight`, a double [1]; `output` as GFPGAN's. It keeps channel 0,
    sets channel 1 to minus the weight and channel 2 to +1: fed BGR, 0..1 or another weight,
    the pasted face comes out visibly different."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Mul", ["input", "keep_red"], ["red"]),
             helper.make_node("Cast", ["weight"], ["weight_float"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["weight_float", "minus_green"], ["green"]),
             helper.make_node("Add", ["red", "green"], ["red_green"]),
             helper.make_node("Add", ["red_green", "high_blue"], ["output"])]
    inits = [_const("keep_red", np.array([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)),
             _const("minus_green", np.array([0.0, -1.0, 0.0]).reshape(1, 3, 1, 1)),
             _const("high_blue", np.array([0.0, 0.0, 1.0]).reshape(1, 3, 1, 1))]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 512, 512]),
              helper.make_tensor_value_info("weight", TensorProto.DOUBLE, [1])]
    return _save(nodes, inputs, [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 512, 512])],
                 inits, path)


def lama(path: Path) -> Path:
    """big-lama.pt's TorchScript interface: (image [1,3,H,W] RGB 0..1, mask [1,1,H,W] in
    {0,1}) -> [1,3,H,W] 0..1. It refuses other ranges, sides that are not multiples of 8
    and a soft mask, and fills the hole with (mean of channel 0 around it, 0, 0)."""
    import torch

    class CheckedLama(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones(1))  # weights, as the real model has (they set its device)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            if bool(image.min() < 0) or bool(image.max() > 1):
                raise RuntimeError("LaMa expects image values in 0..1")
            if image.shape[2] % 8 != 0 or image.shape[3] % 8 != 0:
                raise RuntimeError("LaMa expects sides that are multiples of 8")
            if bool(((mask != 0) & (mask != 1)).any()):
                raise RuntimeError("LaMa expects a binary mask")
            keep = 1.0 - mask
            red = (image[:, 0:1] * keep).sum() / keep.sum() * self.gain
            fill = torch.cat([red * torch.ones_like(mask), torch.zeros_like(mask), torch.zeros_like(mask)], 1)
            return image * keep + fill * mask

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(CheckedLama()).save(str(path))
    return path


def migan(path: Path) -> Path:
    """migan_traced.pt's interface: [1,4,512,512] = (0.5 - mask, RGB in -1..1 with the holes
    zeroed) -> [1,3,512,512] RGB in -1..1. It refuses anything else and fills the hole
    with (mean of channel 0 around it, -1, -1)."""
    import torch

    class CheckedMigan(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[1] != 4 or x.shape[2] != 512 or x.shape[3] != 512:
                raise RuntimeError("MI-GAN expects [1,4,512,512]")
            holes = 0.5 - x[:, 0:1]
            if bool(((holes != 0) & (holes != 1)).any()):
                raise RuntimeError("MI-GAN expects 0.5 - a binary mask in channel 0")
            rgb = x[:, 1:]
            if bool(rgb.min() < -1) or bool(rgb.max() > 1) or bool(rgb.min() >= 0):
                raise RuntimeError("MI-GAN expects the photo in -1..1")
            if bool((rgb * holes).abs().max() > 0):
                raise RuntimeError("MI-GAN expects the holes zeroed")
            keep = 1.0 - holes
            red = (rgb[:, 0:1] * keep).sum() / keep.sum() * self.gain
            fill = torch.cat([red * torch.ones_like(holes), -torch.ones_like(holes), -torch.ones_like(holes)], 1)
            return rgb * keep + fill * holes

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(CheckedMigan()).save(str(path))
    return path
