"""The sections of a run's config: every key, its default and its check.

A run is described by one :class:`Config` (YAML on disk, pydantic in memory).
Every key has a default, so an empty config trains the default model on
MNIST-1D. Names (data set, model, activation, ...) are checked against the
registries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from trainwell import components
from trainwell.data.imbalance import SAMPLERS
from trainwell.errors import TrainwellError
from trainwell.optim.registry import FIRST_CLASS, optimizer_defaults

__all__ = ["HISTORY_KEYS", "AugmentConfig", "CheckpointConfig", "ClipConfig", "Config", "ConfigError", "DataConfig",
           "DoctorConfig", "EarlyStoppingConfig", "ImbalanceConfig", "LogConfig", "ModelConfig", "OneClassConfig",
           "OptimConfig", "RegConfig",
           "ScheduleConfig", "TrainConfig"]


class ConfigError(TrainwellError):
    """A config that cannot be used: unreadable, invalid YAML, unknown key, bad value."""


# What the trainer logs each epoch and a monitor can watch (history.jsonl has these and epoch, step, seconds).
HISTORY_KEYS = ("val_loss", "val_accuracy", "val_sequence_accuracy", "train_loss", "train_accuracy", "lr")


def _history_key(v: str) -> str:
    if v not in HISTORY_KEYS:
        raise ValueError(f"not a history key; use one of {', '.join(HISTORY_KEYS)}")
    return v


HistoryKey = Annotated[str, AfterValidator(_history_key)]  # a monitor: early stopping, plateau schedules


def _check_name(registry_path: str, name: str) -> str:
    registry = components.REGISTRIES[registry_path]
    if name not in registry:
        raise ValueError(registry.unknown_message(name))
    return name


def _chosen_entry(data: Any, kind: str, default: str) -> Any:
    """For a before-validator: the registry entry that ``data["name"]`` picks, or None (the name
    validator then reports an unknown name)."""
    if not isinstance(data, dict):
        return None

    name, registry = data.get("name", default), components.REGISTRIES[kind]
    return registry.entry(name) if isinstance(name, str) and name in registry else None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(_Section):
    """Augmentation of the training split (never validation or test)."""

    noise: float = Field(0.0, ge=0, allow_inf_nan=False, description="Gaussian noise, in units of each feature's std")
    shift: int = Field(0, ge=0, description="1-D signals: random shift of up to N steps")
    rotate: float = Field(0.0, ge=0, le=180, description="images: random rotation of up to N degrees")
    crop: int = Field(0, ge=0, description="signals and images: pad by N, crop back at a random place")
    duplicate: int = Field(0, ge=0, le=100, description="add N noisy copies of every training row before training")
    gaussian: int = Field(0, ge=0, le=100, description="add N x rows drawn from a Gaussian fitted to each class")


class ImbalanceConfig(BaseModel):
    """Rebalancing of the training split: ``{method: smote, k_neighbors: 3}`` (never validation or test).

    Keys besides ``method`` are the sampler's own arguments (imbalanced-learn's names).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    method: Literal["none", "random_over", "random_under", "smote", "nearmiss", "balanced_sampler"] = Field(
        "none", description="random_over, random_under, smote, nearmiss, or balanced_sampler (each epoch draws "
                            "rows with class-balanced weights)")

    @model_validator(mode="after")
    def _known_arguments(self) -> ImbalanceConfig:

        given = set(self.model_extra or {})
        if self.method in ("none", "balanced_sampler"):
            if given:
                raise ValueError(f"data.imbalance has arguments {sorted(given)} that {self.method} does not take")
            return self
        accepted = list(SAMPLERS.options(self.method))
        unknown = sorted(given - set(accepted))
        if unknown:
            raise ValueError(f"{self.method} has no argument {', '.join(unknown)}; it takes {', '.join(accepted)}")
        return self

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# data.name of data not embedded: a file (data.path) or data given from Python
CUSTOM_DATA = "custom"


class DataConfig(_Section):
    """Which data, how it is split and batched."""

    name: str = Field("mnist1d", description="embedded data set (see `trainwell datasets`)")
    n_samples: int | None = Field(None, ge=20, description="rows to generate; None: the set's default")
    noise: float | None = Field(None, ge=0, description="noise of generated sets; None: the set's default")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of the non-test rows kept for validation")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for test, for sets without a fixed test split")
    batch_size: int = Field(128, ge=1, description="rows per update; 1 is SGD, >= train size is batch GD")
    standardize: bool = Field(True, description="standardise features with training-split statistics")
    seed: int = Field(42, ge=0, description="seed of data generation and splitting, fixed so that runs differing in `seed` see the same data")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="the data set's options, e.g. {length: 12, vocab: 8} for sequence tasks")
    imbalance_ratio: float | None = Field(None, gt=0, le=1, description="keep this share of every class but the "
                                          "largest one (a generated imbalanced set), in every split")
    imbalance: ImbalanceConfig = Field(default_factory=ImbalanceConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    path: str | None = Field(None, description="your own data file instead of an embedded set: .csv (header "
                             "optional, label last or data.target) or .npz (arrays x, y); data.name becomes custom")
    target: str | int | None = Field(None, description="the .csv label column: a header name or a column number "
                                     "(None: the last column)")
    kind: Literal["auto", "tabular", "signal", "image"] = Field(
        "auto", description="what data.path holds (auto: tabular for rows of numbers, image for (rows, h, w))")
    sha256: str | None = Field(None, description="the data file's SHA-256, recorded by the run; a file that "
                               "differs is refused")
    shape: list[int] | None = Field(None, description="the data file's features shape, rows first (recorded)")

    @model_validator(mode="before")
    @classmethod
    def _file_is_custom(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("path") is not None:  # a file's data have no embedded name
            data = {**data, "name": CUSTOM_DATA}
        return data

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return v if v == CUSTOM_DATA else _check_name("dataset", v)

    @model_validator(mode="after")
    def _known_options(self) -> DataConfig:
        if self.name == CUSTOM_DATA:
            if self.options:
                raise ValueError("data.options are an embedded data set's; own data (data.path) take none")
            return self
        components.REGISTRIES["dataset"].check_options(self.name, self.options)
        return self


class ModelConfig(_Section):
    """The network built by the model zoo."""

    name: str = Field("mlp", description="model family (see `trainwell components`)")
    depth: int = Field(None, ge=0, le=1000, validate_default=False,
                       description="hidden layers (mlp), conv layers (cnn) or stacked recurrent layers; "
                                   "default: the family's")
    width: int = Field(None, ge=1, le=65536, validate_default=False,
                       description="hidden units, channels or recurrent state size; default: the family's")
    activation: str = Field("relu", description="nonlinearity between layers")
    activation_options: dict[str, Any] = Field(default_factory=dict,
                                               description="the activation's options, e.g. {slope: 0.1} or {k: 3}")
    norm: str = Field("none", description="normalisation after (or wrapping) each hidden linear/conv layer")
    norm_options: dict[str, Any] = Field(default_factory=dict, description="the norm's options, e.g. {groups: 8}")
    norm_position: Literal["before", "after"] = Field("before", description="normalise before or after the activation")
    dropout: float = Field(0.2, ge=0, lt=1, description="drop probability p after each hidden layer")
    dropout_mode: Literal["inverted", "classic"] = Field(
        "inverted", description="inverted: scale by 1/(1-p) in training; classic: scale by 1-p at evaluation")
    input_dropout: float = Field(0.0, ge=0, lt=1, description="drop probability of the inputs")
    init: str = Field("default", description="weight initialisation scheme")
    init_options: dict[str, Any] = Field(default_factory=dict,
                                         description="the scheme's options, e.g. {std: 0.1}, {mode: fan_out}, "
                                                     "{run: DIR} for pretrained")
    kernel_size: int = Field(5, ge=1, description="convolution kernel size (cnn)")
    residual: bool = Field(False, description="skip connections over blocks of two layers (mlp, cnn)")
    rnn_norm: str = Field("none", description="norm placement in recurrent layers (rnn, gru, lstm)")
    cell: Literal["gru", "lstm"] = Field("gru", description="recurrent cell of seq2seq")
    attention: str = Field("none", description="seq2seq attention: none, additive, dot or general")

    @model_validator(mode="after")
    def _known_options(self) -> ModelConfig:
        """Options a component does not take are mistakes, caught before anything is built."""

        for kind, name, options in (("activation", self.activation, self.activation_options),
                                    ("norm", self.norm, self.norm_options), ("init", self.init, self.init_options)):
            components.REGISTRIES[kind].check_options(name, options)
        return self

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        """Fill depth and width left out (or null) with the model family's defaults."""
        entry = _chosen_entry(data, "model", "mlp")
        if entry is not None:
            data = dict(data)
            for key in ("depth", "width"):
                if data.get(key) is None:
                    data[key] = entry.meta[key]
        return data

    @field_validator("name", "activation", "norm", "init", "rnn_norm", "attention")
    @classmethod
    def _known(cls, v: str, info: ValidationInfo) -> str:
        return _check_name("model" if info.field_name == "name" else info.field_name, v)


class OptimConfig(_Section):
    """The update rule and its hyper-parameters (torch.optim's names)."""

    name: str = Field("adam", description="optimizer (see `trainwell components`)")
    lr: float | None = Field(None, gt=0, allow_inf_nan=False, description="learning rate; default: the optimizer's")
    momentum: float | None = Field(None, ge=0, lt=1, description="momentum (sgd: 0 as torch; momentum, nesterov: 0.9; rmsprop)")
    betas: tuple[float, float] | None = Field(None, description="Adam's decay rates (beta1, beta2)")
    eps: float | None = Field(None, ge=0, allow_inf_nan=False, description="denominator guard of adaptive methods")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="other keyword arguments of the optimizer, e.g. {centered: true}")
    lr_multipliers: dict[str, float] = Field(default_factory=dict,
                                             description="module-name prefix -> learning-rate multiplier")

    @model_validator(mode="before")
    @classmethod
    def _optimizer_defaults(cls, data: Any) -> Any:
        """Fill lr/momentum/betas/eps from the optimizer's own defaults; refuse ones it does not take."""
        entry = _chosen_entry(data, "optimizer", "adam")
        if entry is None:
            return data

        name = entry.name
        defaults = optimizer_defaults(name)
        data = dict(data)
        for key in FIRST_CLASS:
            if key in defaults:
                if data.get(key) is None:
                    data[key] = defaults[key]
            elif data.get(key) is not None:
                raise ValueError(f"optim.{key} does not apply to {name} (it takes: {', '.join(defaults)})")
        return data

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name("optimizer", v)

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not all(0 <= b < 1 for b in v):
            raise ValueError(f"betas must each lie in [0, 1), got {list(v)}")
        return v

    @field_validator("lr_multipliers")
    @classmethod
    def _multipliers(cls, v: dict[str, float]) -> dict[str, float]:
        for key, m in v.items():
            if not (m >= 0 and m < float("inf")):
                raise ValueError(f"multiplier for {key!r} must be a finite value >= 0, got {m}")
        return v


class RegConfig(_Section):
    """Penalties on the weights (biases and norm parameters excluded by default)."""

    l1: float = Field(0.0, ge=0, allow_inf_nan=False, description="L1 coefficient: sparse weights")
    l1_mode: Literal["proximal", "subgradient"] = Field(
        "proximal", description="proximal soft-threshold (exact zeros) or sub-gradient")
    l2: float = Field(0.0, ge=0, allow_inf_nan=False, description="L2 penalty gradient coefficient (coupled)")
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False, description="decoupled weight decay (AdamW-style)")
    exclude_bias_and_norm: bool = Field(True, description="leave biases and norm gamma/beta unpenalised")


class ClipConfig(_Section):
    """Gradient clipping before each update (exploding gradients, seed 004)."""

    max_norm: float | None = Field(None, gt=0, allow_inf_nan=False, description="clip the global gradient norm")
    value: float | None = Field(None, gt=0, allow_inf_nan=False, description="clip each gradient coordinate")


class ScheduleConfig(_Section):
    """Learning-rate schedule, stepped once per epoch, with optional linear warmup."""

    name: Literal["none", "step", "exponential", "cosine", "plateau"] = Field("none", description="decay schedule")
    warmup_epochs: int = Field(0, ge=0, description="linear warmup from lr/(warmup+1) before the schedule")
    step_size: int = Field(30, ge=1, description="epochs between decays (step)")
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor (step: per step_size epochs; exponential: per epoch)")
    min_lr: float = Field(0.0, ge=0, description="floor of cosine and plateau")
    patience: int = Field(10, ge=0, description="epochs without improvement before plateau cuts the lr")
    factor: float = Field(0.1, gt=0, lt=1, description="plateau's cut factor")
    monitor: HistoryKey = Field("val_loss", description="what plateau watches (a history key; accuracies: "
                                                        "higher is better, the rest lower)")


class CheckpointConfig(_Section):
    """Checkpoints of the whole training state, for exact resume (`trainwell train --resume DIR`)."""

    every_epochs: int | None = Field(1, ge=1, description="write a checkpoint every N epochs (null: never)")
    every_steps: int | None = Field(None, ge=1, description="write a checkpoint every N updates (null: never)")
    keep: int = Field(2, ge=1, description="latest step checkpoints kept (plus the best)")
    best: bool = Field(True, description="also keep best.safetensors, on the lowest validation loss")


class DoctorConfig(_Section):
    """The doctor: findings printed as they appear and written to diagnosis.json."""

    enabled: bool = Field(True, description="watch the run and report what goes wrong")
    every: int = Field(10, ge=1, description="measure gradients, activations and updates every N steps")
    repair: bool = Field(False, description="apply the remedy of what was found and train again")
    max_repairs: int = Field(2, ge=0, le=10, description="repair attempts after the first run")
    record: bool = Field(True, description="write the per-layer measurements of every sample to stats.jsonl "
                                           "(what `trainwell report` plots)")


class LogConfig(_Section):
    """What a run logs besides its own files, for other tools to read."""

    tensorboard: bool = Field(False, description="also write TensorBoard event files to RUN/tensorboard: the "
                              "epoch's scalars, per-layer histograms of weights and gradients, the doctor's "
                              "findings (needs the tensorboard extra)")


class EarlyStoppingConfig(_Section):
    """Stop when the monitored metric stops improving; restore the best weights."""

    enabled: bool = Field(True, description="use early stopping (on by default: the default run ends with its "
                                            "best epoch's weights instead of overfitting to its last)")
    monitor: HistoryKey = Field("val_accuracy", description="a history key (the default: on MNIST-1D the "
                                "validation loss turns up 30 epochs before the accuracy stops rising)")
    mode: Literal["auto", "min", "max"] = Field("auto", description="min: lower is better; auto: max for "
                                                                     "accuracies, min otherwise")
    min_delta: float = Field(0.0, ge=0, description="the least change that counts as an improvement")
    patience: int = Field(20, ge=0, description="epochs without improvement before stopping")
    restore_best: bool = Field(True, description="end with the best epoch's weights")


class TrainConfig(_Section):
    """The loop: how long, where, how loud."""

    epochs: int = Field(100, ge=1, le=100000, description="passes over the training split")
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:N' or 'auto'")
    progress: bool = Field(True, description="show a progress bar")
    threads: int | None = Field(None, ge=1, le=1024, description="torch threads for the run (null: torch's "
                                "default, or cores / jobs in the worker processes of cv, ensemble and tune); "
                                "two processes on 2 cores with 2 threads each run 10-40x slower")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("cpu", "auto") and not (v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit())):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {v!r}")
        return v


class OneClassConfig(_Section):
    """One-class learning (`trainwell one-class`): an autoencoder learns the normal class alone."""

    normal_class: int | None = Field(None, ge=0, description="the class learnt as normal (null: the largest)")
    bottleneck: int = Field(2, ge=1, description="units in the autoencoder's middle layer")
    width: int = Field(32, ge=1, description="units of the layers around the middle one")
    epochs: int = Field(200, ge=1, le=100000, description="passes over the normal training rows")
    lr: float = Field(1e-2, gt=0, description="Adam's learning rate")
    batch_size: int = Field(128, ge=1, description="rows per update")
    quantile: float = Field(0.95, gt=0, lt=1, description="share of normal training rows under the outlier "
                                                          "threshold")


class Config(_Section):
    """A whole run. Every key has a default; ``Config()`` is the main job."""

    name: str | None = Field(None, min_length=1,
                             description="run name, used in the run directory (default: DATA-MODEL)")
    seed: int = Field(0, ge=0, description="seed of every random choice in the run")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    reg: RegConfig = Field(default_factory=RegConfig)
    clip: ClipConfig = Field(default_factory=ClipConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    doctor: DoctorConfig = Field(default_factory=DoctorConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    one_class: OneClassConfig = Field(default_factory=OneClassConfig)
    loss: str = Field("cross_entropy", description="training loss")
    loss_options: dict[str, Any] = Field(default_factory=dict,
                                         description="the loss's options, e.g. {weights: balanced}")

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, v: str) -> str:
        return _check_name("loss", v)

    @model_validator(mode="after")
    def _known_loss_options(self) -> Config:

        components.REGISTRIES["loss"].check_options(self.loss, self.loss_options)
        return self

    @property
    def run_name(self) -> str:
        """``name``, or ``DATA-MODEL`` (e.g. ``moons-cnn``) when none was given."""
        return self.name or f"{self.data.name}-{self.model.name}"

    def to_yaml(self) -> str:
        # libyaml's emitter where PyYAML has it (the same text, 3x faster: a run writes it at every attempt)
        return yaml.dump(self.model_dump(mode="json"), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                         sort_keys=False)
