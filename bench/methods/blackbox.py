"""`blackbox`: black-box adversarial reprogramming (BAR, Tsai, Chen & Ho, ICML 2020).

The program is the same as `ar`'s, but it is learned from the source model's output probabilities only: the
backbone is called under `torch.no_grad()` and never differentiated. Each step estimates the gradient of the
loss with respect to W by BAR's one-sided random-direction estimator

    g = (d / q) * sum_j [(f(W + β u_j) - f(W)) / β] u_j,   u_j uniform on the unit sphere,

over the d pixels the program can change (q + 1 queries of the batch per step), and the optimizer takes that as
W's gradient. The label mapping is BAR's own by default (`label_map: bar`, `bench.methods.bar_mapping`): m = 6
source labels per new class where they fit, ranked by mean top-30 probability, their probabilities averaged.
Every image sent through the black box counts as one query (training steps, fitting the mapping, validation and
test); the record states the total.

The published code of this method used true gradients through the model; this one cannot (tested: a backbone
that fails under autograd trains it).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Optional

import torch
from pydantic import Field

from bench.data import DatasetInfo
from bench.methods.ar import ARParams, LabelMapName, Reprogrammed, ar_skip, build_label_map, build_program
from bench.methods.base import Method, Step, register_method
from bench.methods.inputs import fit
from bench.methods.label_maps import reads_embedding, takes_labels_per_class
from bench.models import Backbone, BackboneInfo

MAX_LABELS_PER_CLASS = 6  # BAR's m


class BlackBoxParams(ARParams):
    label_map: LabelMapName = "bar"
    # None: as many source classes per new class as fit without overlap, at most BAR's 6
    labels_per_class: Optional[int] = Field(default=None, ge=1)  # type: ignore[assignment]
    q: int = Field(default=5, ge=1)  # random directions per step
    beta: float = Field(default=0.01, gt=0)  # smoothing: the step along each direction

    omitted_at_default: ClassVar[frozenset[str]] = frozenset()  # a new method: its spec shows every parameter


def resolved(params: BlackBoxParams, num_source: int, num_target: int) -> BlackBoxParams:
    """The params with labels_per_class decided: None -> as many as fit (a mapping that takes it), else 1."""
    if params.labels_per_class is not None:
        return params
    fits = max(1, min(MAX_LABELS_PER_CLASS, num_source // max(1, num_target)))
    return params.model_copy(update={"labels_per_class": fits if takes_labels_per_class(params.label_map) else 1})


class BlackBoxReprogrammed(Reprogrammed):
    """BAR's model: it owns its update (`step_outputs` estimates W's gradient; `step_backward` adds only what
    follows the black box) and counts its queries (`pop_queries`)."""

    def __init__(self, backbone: Backbone, program, label_map, lam: float, q: int, beta: float):
        super().__init__(backbone, program, label_map, lam)
        self.q, self.beta = q, beta
        self.queries = 0

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        """The black box: output probabilities and nothing else; the mapping reads their logarithm."""
        with torch.no_grad():
            self.queries += len(x)
            probs = self.backbone(x).float().softmax(1)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()

    def pop_queries(self) -> int:
        n, self.queries = self.queries, 0
        return n

    def step_outputs(self, pack, batches: list[torch.Tensor], step: Step) -> list[torch.Tensor]:
        """No autograd through the model: W.grad is set by the estimate (blackbox cells never pack: one batch).

        The trainer's precision (bf16 autocast on CUDA) is entered and then switched off for the queries by
        `zeroth_order_step` itself: the estimate's precision is the estimator's to decide, not the trainer's."""
        [x01] = batches
        with step.autocast():
            return [self.zeroth_order_step(x01, step.loss_of(0, self.restrict), step.generator(0))]

    def step_backward(self, loss: torch.Tensor, backward) -> None:
        # the logits came from the black box without a graph: this reaches only what follows it (a learned
        # mapping) and λ‖W‖², whose exact gradient adds to the estimate in W.grad
        if torch.is_tensor(loss) and loss.requires_grad:
            loss.backward()

    def compile_for_training(self) -> bool:
        return False  # never differentiated: nothing to warm up

    def zeroth_order_step(self, x01: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor],
                          generator: torch.Generator) -> torch.Tensor:
        """Set `program.W.grad` to BAR's estimate of d loss / d W; -> the new-task logits at the current W.

        `loss_of(logits)` is the batch's loss (the trainer's: averaged over the global batch), a scalar.

        Every query runs in fp32 whatever autocast surrounds the call: with β = 0.01 a perturbation moves a pixel by
        ~1e-4, below bf16's spacing (2e-3 to 8e-3 for normalised pixels), so under bf16 f(W + βu) rounds to f(W)
        and the estimate is rounding noise (issue 18.1; `test_blackbox_estimate_is_fp32_under_bf16_autocast`).
        """
        x = fit(x01, self.backbone.info.channels, self.program.input_size).float()
        with torch.autocast(x.device.type, enabled=False):
            return self._estimate(x, loss_of, generator)

    def _estimate(self, x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor],
                  generator: torch.Generator) -> torch.Tensor:
        W, M = self.program.W, self.program.M
        d = int(M.bool().sum())
        with torch.no_grad():
            hidden = self.frozen(self.program(x))
        logits = self.decode(hidden)  # with a graph from the black box's output on: a learned mapping trains
        with torch.no_grad():
            base = loss_of(logits)
            u = torch.randn((self.q, *W.shape), generator=generator).to(W.device) * M  # only pixels that matter
            u = u / u.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * W.dim())
            grad = torch.zeros_like(W)
            for direction in u:
                moved = loss_of(self.decode(self.frozen(self.program(x, W + self.beta * direction))))
                grad += (d / self.q) * (moved - base) / self.beta * direction
        W.grad = grad if W.grad is None else W.grad + grad
        return logits


@register_method
class BlackBox(Method):
    name = "blackbox"
    label = "black-box AR (BAR)"
    marker = "v"
    Params = BlackBoxParams
    packs = False  # each cell queries with its own perturbations: nothing to share
    # Tsai et al. train with Adam; Elsayed et al.'s lr 0.05 for the same program
    hparams = {"lr": 0.05}
    search_space = {"lr": {"loguniform": [1.0e-3, 0.3]}, "beta": {"loguniform": [1.0e-3, 0.1]},
                    "q": {"choice": [1, 5, 10]}}

    def skip(self, params, backbone: BackboneInfo, num_source: int, task: DatasetInfo):
        if reads_embedding(params.label_map):
            return True, f"the black box gives output probabilities only; label_map: {params.label_map} reads the " \
                         "image embedding"
        return ar_skip(resolved(params, num_source, task.num_classes), backbone, num_source, task)

    def build(self, backbone: Backbone, task: DatasetInfo, params: BlackBoxParams, seed: int) -> BlackBoxReprogrammed:
        params = resolved(params, backbone.num_classes, task.num_classes)
        return BlackBoxReprogrammed(backbone, build_program(params, backbone.info, task),
                                    build_label_map(params, backbone, task, seed), params.lam, params.q, params.beta)
