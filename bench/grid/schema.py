"""What a grid file may say: the pydantic models of its parts, strict (unknown keys and wrong types are errors)."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import ConfigDict, Field, StrictInt, model_validator

from bench.grid.errors import NumbersNotBools

IMAGENET = "imagenet"

# what every seeded library accepts (numpy: 0 <= seed < 2**32); outside it a cell would fail when it starts
Seed = Annotated[StrictInt, Field(ge=0, lt=2**32)]


class _Strict(NumbersNotBools):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HParams(_Strict):
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(default=1.0e-3, gt=0)
    batch_size: StrictInt = Field(default=128, ge=1)
    epochs: StrictInt = Field(default=10, ge=1)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)  # sgd only
    # MultiStepLR: the lr is multiplied by lr_gamma once each of these numbers of epochs is done ("/"-separated:
    # ILM-VP's "100/144" of 200, gamma 0.1; bench.train.schedule). A string, not a list: a list sweeps
    lr_milestones: str = Field(default="", pattern=r"^(\d+(/\d+)*)?$")
    lr_gamma: float = Field(default=0.1, gt=0, le=1)

    # added after cell_ids were first published: in a cell's spec (and so its cell_id) only when set, so that
    # every cell with a constant lr keeps the id its results are stored under
    LATER: ClassVar[dict[str, Any]] = {"lr_milestones": "", "lr_gamma": 0.1}

    @model_validator(mode="after")
    def _milestones_within_epochs(self):
        marks = self.milestones()
        if marks != sorted(set(marks)) or (marks and not (0 < marks[0] and marks[-1] < self.epochs)):
            raise ValueError(f"lr_milestones {self.lr_milestones!r}: give increasing epochs between 1 and "
                             f"epochs - 1 ({self.epochs - 1}), \"/\"-separated, e.g. \"100/144\"")
        return self

    def milestones(self) -> list[int]:
        return [int(m) for m in self.lr_milestones.split("/") if m]

    def model_dump(self, **kwargs) -> dict[str, Any]:
        dumped = super().model_dump(**kwargs)
        return {k: v for k, v in dumped.items() if k not in self.LATER or v != self.LATER[k]}


class SplitSpec(_Strict):
    seed: Seed = 0
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)  # only for datasets without a test split
    max_train: Optional[StrictInt] = Field(default=None, ge=1)  # stratified subsample of train, for small runs

    @model_validator(mode="after")
    def _leaves_a_train_split(self):
        if self.val_fraction + self.test_fraction >= 1:  # refused here, not when every cell starts
            raise ValueError(f"val_fraction + test_fraction is {self.val_fraction + self.test_fraction:g}; they "
                             "must leave a training split (sum below 1)")
        return self


class OriginalSpec(_Strict):
    backbone: str
    trained_on: Optional[str] = None  # a dataset: a `pretrain` cell makes the model
    weights: Optional[Literal["imagenet"]] = None  # or ready-made weights
    fallback: Optional[str] = None  # dataset to pretrain on when `trained_on` is not on disk
    input_size: Optional[StrictInt] = Field(default=None, ge=4)
    # a named preprocessing instead of the one its weights were trained with, e.g. `thesis` (the thesis code's
    # caffe-then-/255, keras: backbones); in the cells' backbone spec (and cell_id) only when given
    preprocessing: Optional[str] = None
    seed: Seed = 0
    hparams: dict[str, Any] = {}
    split: dict[str, Any] = {}  # how its pretrain cell splits its original task
    # how the new tasks of this original's cells are split, over the grid's `split` (e.g. a smaller max_train for
    # a small original's cells while ImageNet cells of the same grid train on everything)
    task_split: dict[str, Any] = {}
    # pair this original only with these new tasks / methods (default: all the grid's); a table's rows are
    # (original, task) pairs, not a product
    tasks: Optional[list[str]] = Field(default=None, min_length=1)
    methods: Optional[list[str]] = Field(default=None, min_length=1)
    # method name -> parameters for this original's cells, e.g. {ar: {input_size: 16}} on a 28px canvas
    method_params: dict[str, dict[str, Any]] = {}
    # true: its cells run only where their inputs (ImageNet weights, datasets) are prepared; elsewhere they are
    # listed as skipped with what is missing, and `reprogbench prepare GRID` still fetches them
    optional: bool = False


class GridFile(_Strict):
    name: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    originals: list[OriginalSpec] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    methods: list[dict[str, Any]] = Field(min_length=1)
    hparams: dict[str, Any] = {}
    split: dict[str, Any] = {}
    seeds: list[Seed] = Field(default=[0], min_length=1)
    # the published table its cells are compared with (bench/reference/<name>.csv), e.g. thesis_table_3_1
    reference: Optional[str] = None
    # rows of that table this grid cannot run, with why (e.g. a backbone with no PyTorch equivalent): shown by
    # `reprogbench ls` so an absent row is a stated choice, never a silent gap
    not_run: dict[str, str] = {}
    # a variant of another shipped grid (e.g. thesis_table_5_1_corrected of thesis_table_5_1): the report shows the
    # two side by side, row by row of the published table, with `differs` (one line per difference) under them
    compare_with: Optional[str] = None
    differs: list[str] = []
