"""The papers' architectures, each a named sequence of blocks whose outputs can be probed.

Every model is a :class:`ProbedSequential`: ``model.blocks`` is an ordered ``nn.Sequential``
of named blocks and ``model.layer_outputs(x)`` returns every block's output by name, which is
what the probing chapters (Theunissen et al.'s per-layer metrics, MASC) read.

Models of Zhang et al. (ICLR 2017, appendix A and Figure 3; parameter counts of Table 1):

- ``mlp1x512`` (1,209,866 parameters on 28x28x3 inputs), ``mlp3x512`` (1,735,178);
- ``alexnet``: the small AlexNet, i.e. the TensorFlow CIFAR-10 tutorial network on 28x28 inputs,
  two (conv 5x5/64 → max-pool 3x3 stride 2 'same' → local response normalization) modules,
  FC 384 → FC 192 → linear 10 (1,387,786 parameters);
- ``inception`` / ``inception_nobn``: the small Inception of Figure 3 (1,649,402 parameters
  either way: with BatchNorm the convolutions have no bias and BatchNorm learns only its shift,
  TensorFlow's default; without BatchNorm the convolutions have biases).

MLPs of any shape: ``mlp{depth}x{width}`` (e.g. ``mlp10x512``, Theunissen et al.) or
``mlp-128-512-2048-2048`` (explicit widths, the MASC paper's MLP), optionally with the suffix
``-firstbias`` (a bias node at the first hidden layer only, Theunissen et al. Appendix A) or
``-nobias``, and optionally ``-dropout{p}`` (dropout with probability p after every hidden ReLU,
e.g. ``mlp3x256-dropout0.1``: Weng's layer-robustness net, keep probability 0.9).

VGG-11 for CIFAR-10 (Zhang, Bengio & Singer 2019, "Are all layers created equal?"): ``vgg11``
(configuration A of Simonyan & Zisserman: eight 3x3 convolutions 64-M-128-M-256-256-M-512-512-M-
512-512-M, then FC 512 → FC 512 → linear 10, no BatchNorm; 9,750,922 parameters on CIFAR-10) and
``vgg11-div{k}``, the same net with every width divided by k (``vgg11-div8``: 8 … 64 channels).

The MASC paper's models: ``mlp-128-512-2048-2048`` (5,433,994 parameters on MNIST, as its
Table 1), ``masc-cnn`` (its CNN; see :func:`masc_cnn` for the layer arithmetic behind
"Flat (576)") and ``masc-alexnet`` (its CIFAR-100 AlexNet; see :func:`masc_alexnet`).

Weights use PyTorch's default initialization (the papers' TensorFlow code used truncated
normals; the chapters say so where it matters).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Callable

import torch
from torch import nn


class ProbedSequential(nn.Module):
    """A network made of named blocks applied in order; every block's output can be read."""

    def __init__(self, blocks: "OrderedDict[str, nn.Module]"):
        super().__init__()
        self.blocks = nn.Sequential(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self.blocks.named_children()]

    def layer_outputs(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of the named blocks (all of them by default), computed in one forward pass.

        The key ``"input"`` maps to ``x`` itself.
        """
        wanted = set(self.layer_names if names is None else names)
        outputs = {"input": x} if names is None or "input" in wanted else {}
        for name, block in self.blocks.named_children():
            x = block(x)
            if name in wanted:
                outputs[name] = x
        return outputs


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- MLPs -------------------------------------------------------------------------------------


class MLP(ProbedSequential):
    """Fully connected ReLU network: flatten → hidden layers (Linear + ReLU) → linear output.

    ``bias``: ``"all"`` (default), ``"first"`` (only the first hidden layer has a bias, as
    Theunissen et al.'s "single bias node at the first layer") or ``"none"``.
    Blocks: ``flatten``, ``fc1`` … ``fcN`` (post-ReLU outputs), ``output`` (logits).
    """

    def __init__(self, in_features: int, widths: list[int], num_classes: int, bias: str = "all",
                 dropout: float = 0.0):
        if bias not in ("all", "first", "none"):
            raise ValueError(f"bias must be 'all', 'first' or 'none', got {bias!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        blocks: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        previous = in_features
        for i, width in enumerate(widths):
            has_bias = bias == "all" or (bias == "first" and i == 0)
            layers = [nn.Linear(previous, width, bias=has_bias), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            blocks[f"fc{i + 1}"] = nn.Sequential(*layers)
            previous = width
        blocks["output"] = nn.Linear(previous, num_classes, bias=bias == "all")
        super().__init__(blocks)
        self.widths = list(widths)
        self.dropout = dropout

    def hidden_linear(self, name: str) -> nn.Linear:
        """The ``nn.Linear`` of hidden block ``name`` (its weight rows are the nodes' weight vectors)."""
        return self.blocks.get_submodule(name)[0]


# --- Zhang et al.'s small AlexNet ---------------------------------------------------------------


def small_alexnet(in_channels: int = 3, num_classes: int = 10) -> ProbedSequential:
    """Zhang et al.'s small AlexNet (appendix A), the TensorFlow CIFAR-10 tutorial network on 28x28.

    LRN follows the tutorial: depth radius 4 (size 9), bias 1, alpha 0.001/9 per element (PyTorch
    divides alpha by the size, so ``alpha=0.001``), beta 0.75.
    """
    def lrn() -> nn.Module:
        return nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0)

    return ProbedSequential(OrderedDict(
        conv1=nn.Sequential(nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU()),
        pool1=nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), lrn()),
        conv2=nn.Sequential(nn.Conv2d(64, 64, 5, padding=2), nn.ReLU()),
        pool2=nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), lrn()),
        flatten=nn.Flatten(),
        fc1=nn.Sequential(nn.Linear(7 * 7 * 64, 384), nn.ReLU()),
        fc2=nn.Sequential(nn.Linear(384, 192), nn.ReLU()),
        output=nn.Linear(192, num_classes),
    ))


# --- Zhang et al.'s small Inception (Figure 3) ------------------------------------------------------


class ConvModule(nn.Module):
    """Conv → BatchNorm (shift only, as TensorFlow's default ``scale=False``) → ReLU; or Conv(+bias) → ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, batchnorm: bool = True, padding: int | None = None):
        super().__init__()
        padding = kernel // 2 if padding is None else padding
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=not batchnorm)
        self.norm = nn.BatchNorm2d(c_out, affine=False) if batchnorm else None
        self.shift = nn.Parameter(torch.zeros(c_out)) if batchnorm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x) + self.shift.view(1, -1, 1, 1)
        return torch.relu(x)


class InceptionModule(nn.Module):
    """Inception(c1, c3): concatenation of a 1x1 conv module with c1 filters and a 3x3 one with c3."""

    def __init__(self, c_in: int, c1: int, c3: int, batchnorm: bool):
        super().__init__()
        self.branch1 = ConvModule(c_in, c1, 1, batchnorm=batchnorm)
        self.branch3 = ConvModule(c_in, c3, 3, batchnorm=batchnorm)
        self.out_channels = c1 + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x)], dim=1)


class DownsampleModule(nn.Module):
    """Downsample(c): concatenation of a 3x3 stride-2 conv module with c filters and a 3x3 stride-2 max-pool."""

    def __init__(self, c_in: int, c: int, batchnorm: bool):
        super().__init__()
        self.conv = ConvModule(c_in, c, 3, stride=2, batchnorm=batchnorm, padding=0)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.out_channels = c_in + c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


def small_inception(in_channels: int = 3, num_classes: int = 10, batchnorm: bool = True) -> ProbedSequential:
    """Zhang et al.'s small Inception (Figure 3 of the 2017 paper), with or without BatchNorm."""
    plan = [("inception", 32, 32), ("inception", 32, 48), ("downsample", 80), ("inception", 112, 48),
            ("inception", 96, 64), ("inception", 80, 80), ("inception", 48, 96), ("downsample", 96),
            ("inception", 176, 160), ("inception", 176, 160)]
    blocks: OrderedDict[str, nn.Module] = OrderedDict(conv1=ConvModule(in_channels, 96, 3, batchnorm=batchnorm))
    channels, n_inception, n_down = 96, 0, 0
    for kind, *widths in plan:
        if kind == "inception":
            n_inception += 1
            module = InceptionModule(channels, widths[0], widths[1], batchnorm)
            blocks[f"inception{n_inception}"] = module
        else:
            n_down += 1
            module = DownsampleModule(channels, widths[0], batchnorm)
            blocks[f"downsample{n_down}"] = module
        channels = module.out_channels
    blocks["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    blocks["output"] = nn.Linear(channels, num_classes)
    return ProbedSequential(blocks)


# --- initialization -------------------------------------------------------------------------------

INITIALIZATIONS = ("default", "glorot_uniform", "he_normal")


def initialize(model: nn.Module, scheme: str, seed: int) -> nn.Module:
    """Re-initialize every ``nn.Linear`` of ``model`` in place (seeded, no global RNG) and return it.

    ``default`` leaves PyTorch's initialization; ``glorot_uniform`` draws weights from
    U(±√(6 / (fan_in + fan_out))) and sets biases to zero, Keras's default for dense layers
    (Theunissen et al. use a "random uniform" initialization); ``he_normal`` draws the weights of every
    ``nn.Linear`` *and* ``nn.Conv2d`` from N(0, 2 / fan_in) (He et al. 2015, for ReLU nets without BatchNorm,
    such as VGG-11) and sets their biases to zero. Other layers are left alone.
    """
    if scheme not in INITIALIZATIONS:
        raise ValueError(f"unknown initialization {scheme!r}; choose one of {INITIALIZATIONS}")
    if scheme == "default":
        return model
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        if scheme == "he_normal":
            for module in model.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
            return model
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model

# --- the MASC paper's CNN and AlexNet ("Decoding generalization from memorization", appendix A.2) ---


def _conv_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), nn.ReLU())


def masc_cnn(input_shape: tuple[int, ...], num_classes: int = 10) -> ProbedSequential:
    """The MASC paper's CNN: three blocks of two 3x3 convolutions (16, 32, 64 filters) and a 2x2
    max pool, then three fully connected ReLU layers of 250 units and a linear output.

    The paper's text says the pool has "stride 1", but its layer name "Flat (576)" = 64·3·3 on
    28x28 inputs needs the spatial size to shrink 28 → 14 → 7 → 3: 'same'-padded convolutions
    (stride 1, padding 1) and 2x2 max pools of stride 2 (floor) give exactly that (32x32 CIFAR
    inputs: 32 → 16 → 8 → 4, a 1,024-wide flatten). A stride-1 pool would give 64·22·22 with
    padding or 64·13·13 without, neither 576. Parameters: 344,052 on MNIST (paper: 344,042) and
    456,340 on CIFAR-10 (paper: 456,330); the constant 10 is the output layer's bias, which the
    paper's count seems to leave out.
    Blocks: ``block1``-``block3`` (convs + pool), ``flatten``, ``fc1``-``fc3``, ``output``.
    """
    channels, height, width = input_shape
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    for i, filters in enumerate((16, 32, 64)):
        blocks[f"block{i + 1}"] = nn.Sequential(_conv_relu(channels, filters, 3), _conv_relu(filters, filters, 3),
                                                nn.MaxPool2d(2, stride=2))
        channels, height, width = filters, height // 2, width // 2
    blocks["flatten"] = nn.Flatten()
    previous = channels * height * width
    for i in range(3):
        blocks[f"fc{i + 1}"] = nn.Sequential(nn.Linear(previous, 250), nn.ReLU())
        previous = 250
    blocks["output"] = nn.Linear(previous, num_classes)
    return ProbedSequential(blocks)


def masc_alexnet(input_shape: tuple[int, ...], num_classes: int = 100) -> ProbedSequential:
    """An AlexNet for 32x32 CIFAR-100 images consistent with the MASC paper's layer names and size.

    The paper says only that AlexNet "was slightly modified" per dataset; its figures probe
    "Flat (256)" and "FC (4096)" layers and Table 1 gives 38,738,952 parameters on CIFAR-100. This
    is the original AlexNet's five convolutions (96, 256, 384, 384, 256 filters; 3x3, 5x5, then
    3x3 kernels, 'same' padding, the first with stride 2) with its three overlapping 3x3/2 max
    pools, which bring 32x32 down to 1x1 (32 → 16 → 7 → 3 → 1) and so a 256-wide flatten,
    followed by three fully connected ReLU layers of 4,096 and a linear output: 38,739,940
    parameters on CIFAR-100, 988 (0.003%) more than the paper's count.
    Blocks: ``conv1``-``conv5`` (``conv1``, ``conv2``, ``conv5`` include their pools),
    ``flatten``, ``fc1``-``fc3``, ``output``.
    """
    channels = input_shape[0]
    pool = lambda: nn.MaxPool2d(3, stride=2)  # noqa: E731
    blocks: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Sequential(_conv_relu(channels, 96, 3, stride=2), pool()),
        conv2=nn.Sequential(_conv_relu(96, 256, 5), pool()),
        conv3=_conv_relu(256, 384, 3),
        conv4=_conv_relu(384, 384, 3),
        conv5=nn.Sequential(_conv_relu(384, 256, 3), pool()),
        flatten=nn.Flatten(),
    )
    with torch.no_grad():
        previous = int(nn.Sequential(*blocks.values())(torch.zeros(1, *input_shape)).shape[1])
    for i in range(3):
        blocks[f"fc{i + 1}"] = nn.Sequential(nn.Linear(previous, 4096), nn.ReLU())
        previous = 4096
    blocks["output"] = nn.Linear(previous, num_classes)
    return ProbedSequential(blocks)


# --- LeNet (Li et al. 2018's MNIST LeNet) -----------------------------------------------------------


def lenet(input_shape: tuple[int, ...], num_classes: int = 10) -> ProbedSequential:
    """LeNet as in Li, Farkhoor, Liu & Yosinski (2018): conv 5x5/6 → max-pool 2 → conv 5x5/16 →
    max-pool 2 (both 'valid', ReLU) → FC 120 → FC 84 → linear output. On 28x28 MNIST the flatten is
    16·4·4 = 256 and the network has 44,426 parameters, the paper's D (62,006 on 32x32x3 CIFAR-10).
    Blocks: ``conv1``, ``conv2`` (with their pools), ``flatten``, ``fc1``, ``fc2``, ``output``."""
    channels = input_shape[0]
    blocks: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Sequential(nn.Conv2d(channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2)),
        conv2=nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
        flatten=nn.Flatten(),
    )
    with torch.no_grad():
        previous = int(nn.Sequential(*blocks.values())(torch.zeros(1, *input_shape)).shape[1])
    blocks["fc1"] = nn.Sequential(nn.Linear(previous, 120), nn.ReLU())
    blocks["fc2"] = nn.Sequential(nn.Linear(120, 84), nn.ReLU())
    blocks["output"] = nn.Linear(84, num_classes)
    return ProbedSequential(blocks)


# --- VGG-11 (Zhang, Bengio & Singer 2019) ----------------------------------------------------------

VGG11_PLAN = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(input_shape: tuple[int, ...], num_classes: int = 10, divisor: int = 1) -> ProbedSequential:
    """VGG-11 (configuration A) for 32x32 images: eight 3x3 'same' convolutions with ReLU and five 2x2
    max pools (32 → 1), then FC 512 → FC 512 → linear output, every width divided by ``divisor``.

    No BatchNorm (re-initializing a layer would otherwise leave its running statistics behind).
    Blocks: ``conv1``-``conv8`` (each with the pool that follows it), ``flatten``, ``fc1``, ``fc2``, ``output``.
    """
    channels, size = input_shape[0], input_shape[1]
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    n = 0
    for item in VGG11_PLAN:
        if item == "M":
            blocks[f"conv{n}"].append(nn.MaxPool2d(2, stride=2))
            size //= 2
            continue
        n += 1
        width = max(item // divisor, 1)
        blocks[f"conv{n}"] = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU())
        channels = width
    blocks["flatten"] = nn.Flatten()
    previous, hidden = channels * size * size, max(512 // divisor, 1)
    blocks["fc1"] = nn.Sequential(nn.Linear(previous, hidden), nn.ReLU())
    blocks["fc2"] = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
    blocks["output"] = nn.Linear(hidden, num_classes)
    return ProbedSequential(blocks)


# --- by name --------------------------------------------------------------------------------------

_MLP_DEPTH = re.compile(r"^mlp(\d+)x(\d+)(-firstbias|-nobias)?(?:-dropout(0?\.\d+))?$")
_MLP_WIDTHS = re.compile(r"^mlp((?:-\d+)+)(-firstbias|-nobias)?(?:-dropout(0?\.\d+))?$")
_VGG = re.compile(r"^vgg11(?:-div(\d+))?$")
_BIAS = {None: "all", "-firstbias": "first", "-nobias": "none"}

NAMED_MODELS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "alexnet": lambda shape, k: small_alexnet(shape[0], k),
    "inception": lambda shape, k: small_inception(shape[0], k, batchnorm=True),
    "inception_nobn": lambda shape, k: small_inception(shape[0], k, batchnorm=False),
    "masc-cnn": lambda shape, k: masc_cnn(shape, k),
    "masc-alexnet": lambda shape, k: masc_alexnet(shape, k),
    "lenet": lambda shape, k: lenet(shape, k),  # Li et al. 2018 (intrinsic dimension)
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` (C, H, W), initialized from ``seed``.

    The seed is applied in a forked RNG scope, so building a model never changes global state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if match := _MLP_DEPTH.match(name):
            depth, width, bias = int(match[1]), int(match[2]), _BIAS[match[3]]
            return MLP(_numel(input_shape), [width] * depth, num_classes, bias, float(match[4] or 0))
        if match := _MLP_WIDTHS.match(name):
            widths = [int(w) for w in match[1].strip("-").split("-")]
            return MLP(_numel(input_shape), widths, num_classes, _BIAS[match[2]], float(match[3] or 0))
        if match := _VGG.match(name):
            return vgg11(tuple(input_shape), num_classes, int(match[1] or 1))
        if name in NAMED_MODELS:
            return NAMED_MODELS[name](tuple(input_shape), num_classes)
    raise ValueError(f"unknown model {name!r}: use mlp{{depth}}x{{width}}, mlp-W1-W2-... (optionally -dropout0.1), vgg11[-div{{k}}], or one of {sorted(NAMED_MODELS)}")


def dropout_of(name: str) -> float:
    """The dropout probability model ``name`` asks for (its ``-dropout{p}`` suffix; 0 for a model without dropout).
    A run of such a model draws its masks from a generator seeded by the run (:func:`lib.train.train`)."""
    match = _MLP_DEPTH.match(name) or _MLP_WIDTHS.match(name)
    return float(match.groups()[-1] or 0) if match else 0.0


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
