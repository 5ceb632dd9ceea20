"""Contrastive training: a function and a small state dataclass (open_clip, nanoGPT).

AdamW with the temperature in the optimiser, linear warmup then cosine decay,
gradient clipping, AMP on CUDA, a checkpoint every epoch with resume, a seed that
fixes data order and augmentation, metrics to a JSONL log. Under ``torchrun`` each
process takes its shard of every batch and negatives are all-gathered.

The model is the last epoch's (``out/last``), where the cosine schedule has come to
rest. Validation retrieval is logged, not used to pick an epoch: on a few dozen
validation studies the best-scoring epoch was never better than the last (README).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from cmrclip.checkpoint import read_config, save_checkpoint
from cmrclip.config import CONFIGS, ModelConfig
from cmrclip.loss import ClipLoss, multi_positive_loss
from cmrclip.metrics import retrieval_metrics
from cmrclip.model import CMRCLIP, collate
from cmrsearch.errors import CmrSearchError, ConfigError
from trainer.augment import augment_batch
from trainer.data import Pair, impression_groups, split_by_patient, write_train_studies
from trainer.measurements import Targets
from trainer.statements import VIEW_WORDS, Statements, report_statements, statement_table

STATE_FILE = "train_state.pt"
# What a run may change when it continues another: how long it trains, and where.
RESUMABLE_CHANGES = frozenset({"epochs", "device"})
PRETRAINED_LR_SCALE = 0.1  # 2e-4 for the text transformer at the default lr 2e-3


@dataclass
class TrainConfig:
    model: str = "tiny"
    text_layers: int | None = None  # override the config's fine-tuned MiniLM layers
    video_size: int | None = None  # override the config's network input width
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    grad_clip: float = 1.0
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"
    # Hiding views cost held-out AUC on three seeds and helped only studies with SAX
    # cines alone (README); studies that lack views still train, masked.
    view_dropout: float = 0.0
    # Share of the loss that aligns studies with single report statements (see README).
    statement_weight: float = 0.8
    # Regional statements also without their territory and segments (trainer.statements).
    unlocated_statements: bool = True
    # A statement's closing interpretation ("..., non-ischaemic pattern") as a statement.
    interpretation_statements: bool = True
    # With fine-tuned text layers: texts per step that pass through them (`TextBank`).
    fresh_impressions: int = 8
    fresh_statements: int = 64
    # Added to the loss, per view of `trainer.statements.VIEW_WORDS`: the view's own
    # vector against the batch's statements about what it shows, so that scar and the
    # root are learnt where the images show them, not from the hearts they occur in.
    # The LVOT's at half the LGE's: at equal weights non-ischaemic LGE fell below 0.75
    # externally on two seeds of three (README).
    view_statement_weights: dict[str, float] = field(
        default_factory=lambda: {"lge": 0.5, "lvot": 0.25}
    )
    # Added to the loss: the report's measurements regressed from the study vector.
    measurement_weight: float = 1.0

    def __post_init__(self) -> None:
        unknown = set(self.view_statement_weights) - set(VIEW_WORDS)
        if unknown:
            raise ConfigError(
                f"view_statement_weights names {', '.join(sorted(unknown))}: views with "
                f"their own loss are {', '.join(VIEW_WORDS)}"
            )


class ResumeError(CmrSearchError):
    """The output directory holds a training run this one cannot continue."""


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def model_config(config: TrainConfig) -> ModelConfig:
    """The named config with this run's overrides (they travel in the checkpoint)."""
    base = CONFIGS[config.model]
    if config.text_layers is not None:
        base = replace(base, text=replace(base.text, trainable_layers=config.text_layers))
    if config.video_size is not None:
        base = replace(base, video=replace(base.video, size=config.video_size))
    return base


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from cmrclip.errors import ModelError

        raise ModelError(
            "CMRSEARCH_DEVICE/--device is cuda but no CUDA GPU is visible; use --device cpu"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    warmup = max(1, int(config.warmup_fraction * total))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _param_groups(model: CMRCLIP, weight_decay: float) -> list[dict[str, Any]]:
    """Decay / no-decay groups, each split again for the pretrained text transformer,
    whose fine-tuned layers learn at `PRETRAINED_LR_SCALE` times the rate (a rate that
    trains a projection from scratch wipes out what pretrained weights know)."""
    groups: dict[tuple[bool, bool], list[Tensor]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # Norms, biases, embeddings and the temperature are not shrunk toward zero.
        plain = param.ndim < 2 or "embedding" in name or name == "logit_scale" or "query" in name
        groups.setdefault((not plain, name.startswith("text.transformer.")), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decay else 0.0,
            "lr_scale": PRETRAINED_LR_SCALE if pretrained else 1.0,
        }
        # Decay groups first: the order optimiser states saved by earlier runs resume into.
        for (decay, pretrained), params in sorted(groups.items(), key=_decay_first)
    ]


def make_optimizer(
    model: CMRCLIP, config: TrainConfig, head: torch.nn.Linear | None
) -> torch.optim.AdamW:
    """AdamW over the model's groups, then the measurement head's (never decayed)."""
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    if head is not None:
        optimizer.add_param_group({"params": list(head.parameters()), "weight_decay": 0.0})
    return optimizer


def _decay_first(group: tuple[tuple[bool, bool], list[Tensor]]) -> tuple[bool, bool]:
    (decay, pretrained), _ = group
    return (not decay, pretrained)


@dataclass
class TextBank:
    """Texts prepared once per run, as their features before the projection. A frozen
    text tower's features are final; a partly fine-tuned tower keeps each text's token
    states below its trainable layers, so a step runs only those layers (the lower
    ones never change).

    Of a step's texts, a random ``fresh`` many pass through those layers, with
    gradients, and overwrite their rows; the others take the features their last pass
    left (a memory bank, Wu et al., CVPR 2018). A batch of 32 studies holds some 375
    distinct statements, and passing them all through two layers took four times as
    long as the video tower's step on a 2-core CPU (README).
    """

    negated: Tensor  # per text: encoded as its affirmed form (`TextEncoder.split`)
    features: Tensor  # per text: final when frozen, else from its last pass
    states: list[Tensor] | None = None  # per text: token states below the trained layers

    @classmethod
    def build(cls, model: CMRCLIP, texts: list[str], batch: int = 256) -> TextBank:
        contents, negated = model.text.split(texts)
        if not model.text.frozen:
            states = model.text.lower_states(contents)
            return cls(negated, model.text.features_from_states(states), states)
        parts = [model.text.features(contents[i : i + batch]) for i in range(0, len(texts), batch)]
        features = torch.cat(parts) if parts else torch.zeros(0, model.text.width)
        return cls(negated, features)

    def embed(
        self,
        model: CMRCLIP,
        ids: list[int],
        fresh: int | None = None,
        seed: list[int] | None = None,
    ) -> Tensor:
        """Normalised shared-space embeddings of texts ``ids``; with ``fresh``, only that
        many (drawn with ``seed``) pass through the trainable layers, the rest recalled."""
        features = self.features[ids].to(model.device)
        if self.states is not None:
            chosen = np.arange(len(ids))
            if fresh is not None and fresh < len(ids):
                chosen = np.random.default_rng(seed).choice(len(ids), fresh, replace=False)
            new = model.text.features_from_states([self.states[ids[j]] for j in chosen])
            rows = torch.tensor([ids[j] for j in chosen], device=self.features.device)
            self.features[rows] = new.detach().to(self.features.dtype)
            at = torch.from_numpy(chosen).to(model.device)
            features = features.index_copy(0, at, new.to(features.dtype))
        return model.text_embeddings(features=features, negated=self.negated[ids])


@dataclass
class BatchStatements:
    """The distinct statements a batch's reports make, embedded once per step."""

    text: Tensor  # (T, D) normalised
    made: Tensor  # (B, T): the study's report makes it
    candidates: Tensor  # (B, T): enters the study's softmax (made by any, or denied by it)
    about: dict[str, Tensor]  # view -> (T,): says what it shows (`trainer.statements.about`)

    def loss(
        self, video: Tensor, scale: Tensor, view: str | None = None, rows: Tensor | None = None
    ) -> Tensor:
        """``video`` (B, D) against the statements; with ``view``, the ``rows`` studies
        (those that have it) against the statements about what it shows."""
        made, candidates, text = self.made, self.candidates, self.text
        if view is not None:
            about = self.about[view]
            made, candidates = made[rows][:, about], candidates[rows][:, about]
            video, text = video[rows], text[about]
        return multi_positive_loss(video, text.float(), scale, made, candidates)


def _batch_statements(
    model: CMRCLIP,
    statements: Statements,
    bank: TextBank,
    batch: np.ndarray[Any, Any],
    fresh: int,
    seed: list[int],
) -> BatchStatements:
    """Studies against the distinct statements their reports make in this batch
    (`trainer.statements`). Every process encodes the batch's statements itself: they
    are shared by its studies, not sharded."""
    made = torch.from_numpy(statements.made[batch])
    denied = torch.from_numpy(statements.denied[batch])
    # Statements the batch makes are candidates of every study; an affirmed form (a hard
    # negative) only of the studies that rule it out.
    candidates = made.any(dim=0) | denied
    ids = candidates.any(dim=0).nonzero().squeeze(1)
    text = bank.embed(model, ids.tolist(), fresh, seed)
    device = text.device
    return BatchStatements(
        text,
        made[:, ids].to(device),
        candidates[:, ids].to(device),
        {
            view: torch.from_numpy(about[ids.numpy()]).to(device)
            for view, about in statements.about.items()
        },
    )


def _measurement_loss(
    head: torch.nn.Linear, video: Tensor, targets: Targets, batch: np.ndarray[Any, Any]
) -> Tensor:
    """Huber loss of the measurements the batch's reports state, from the study vectors."""
    wanted = torch.from_numpy(targets.values[batch]).to(video.device)
    known = ~torch.isnan(wanted)
    if not bool(known.any()):
        return video.sum() * 0.0
    return torch.nn.functional.smooth_l1_loss(head(video)[known], wanted[known])


def _average_gradients(params: list[Tensor], world: int) -> None:
    """Gradients of what DistributedDataParallel does not wrap (text tower, temperature).

    Every process computes the same whole-batch loss, so summing over processes and
    dividing by their number gives the gradient of that loss, as DDP does for the video.
    """
    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= world


def _gather(x: Tensor) -> Tensor:
    """All-gather with gradients, so every process sees the whole batch's negatives."""
    if not (dist.is_available() and dist.is_initialized()):
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)  # type: ignore[no-untyped-call]


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(
    pairs: list[Pair],
    out: Path,
    config: TrainConfig,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train on ``pairs``; write each epoch's checkpoint to ``out/last``; return a summary."""
    rank, world = _rank()
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())  # one GPU per process
    seed_everything(config.seed)
    train_pairs, val_pairs = split_by_patient(pairs, config.val_fraction, config.seed)
    model = CMRCLIP(model_config(config)).to(device)
    loss_fn = ClipLoss()
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    texts = [p.impression for p in train_pairs]
    groups = torch.from_numpy(impression_groups(texts))
    statements = statement_table(
        [report_statements(p.impression, p.report) for p in train_pairs],
        unlocate=config.unlocated_statements,
        interpret=config.interpretation_statements,
    )
    targets = Targets.of([p.report for p in train_pairs])
    head = None
    if config.measurement_weight > 0 and targets.names:
        head = torch.nn.Linear(model.config.embed_dim, len(targets.names)).to(device)
    optimizer = make_optimizer(model, config, head)
    # Before the banks: they hold features of the resumed weights.
    state = _resume(out, model, optimizer, scaler, head, config)
    with torch.no_grad():  # the frozen part of the text tower runs once per text
        impression_bank = TextBank.build(model, texts)
        statement_bank = TextBank.build(
            model, statements.texts if config.statement_weight > 0 else []
        )
    steps_per_epoch = max(1, len(train_pairs) // config.batch_size)
    total = steps_per_epoch * config.epochs
    ddp_video = model.video
    views = model.config.video.views
    view_weights = config.view_statement_weights
    shown_views = [v for v in statements.about if v in views and view_weights.get(v, 0) > 0]
    if world > 1:
        ddp_video = torch.nn.parallel.DistributedDataParallel(  # type: ignore[assignment]
            model.video, device_ids=[device.index] if device.type == "cuda" else None
        )
    log = (out / "train_log.jsonl").open("a") if rank == 0 else None
    started = time.perf_counter()
    while state.epoch < config.epochs:
        model.train()
        order = np.random.default_rng([config.seed, state.epoch]).permutation(len(train_pairs))
        losses = []
        for s in range(steps_per_epoch):
            batch = order[s * config.batch_size : (s + 1) * config.batch_size]
            mine = batch[rank::world]  # this process's shard of the global batch
            for group in optimizer.param_groups:
                # A state saved before per-group scales existed has no "lr_scale": it means 1.
                group["lr"] = lr_at(state.step, total, config) * group.get("lr_scale", 1.0)
            clips, mask = collate([train_pairs[i].clips for i in mine], device, views)
            rngs = [np.random.default_rng([config.seed, state.epoch, 1, int(i)]) for i in mine]
            clips, mask = augment_batch(
                clips, mask, rngs, views, model.config.video.frames, config.view_dropout
            )
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                video, per_view = ddp_video(clips, mask)
                video = torch.nn.functional.normalize(video.float(), dim=-1)
                seed = [config.seed, state.epoch, s]  # the same draw in every process
                text = impression_bank.embed(
                    model, [int(i) for i in mine], config.fresh_impressions, seed
                )
                gathered = np.concatenate([batch[r::world] for r in range(world)])
                all_video = _gather(video)
                loss = loss_fn(
                    all_video, _gather(text.float()), model.scale(), groups[gathered].to(device)
                )
                weight = config.statement_weight
                if weight > 0:
                    said = _batch_statements(
                        model,
                        statements,
                        statement_bank,
                        gathered,
                        config.fresh_statements,
                        seed,
                    )
                    loss = (1 - weight) * loss + weight * said.loss(all_video, model.scale())
                    for view in shown_views:
                        at = views.index(view)
                        own = torch.nn.functional.normalize(per_view[:, at].float(), dim=-1)
                        has = _gather(mask[:, at].float()) > 0
                        shown = said.loss(_gather(own), model.scale(), view, has)
                        loss = loss + view_weights[view] * shown
                if head is not None:
                    measured = _measurement_loss(head, all_video, targets, gathered)
                    loss = loss + config.measurement_weight * measured
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if world > 1:
                shared: list[Tensor] = [*model.text.parameters(), model.logit_scale]
                _average_gradients(shared + (list(head.parameters()) if head else []), world)
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            state.step += 1
            losses.append(float(loss.detach()))
        state.epoch += 1
        record = {
            "epoch": state.epoch,
            "step": state.step,
            "loss": float(np.mean(losses)),
            "lr": lr_at(state.step, total, config),
            "temperature": 1 / float(model.scale().detach()),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if val_pairs:
            record.update(validate(model, val_pairs))
        state.history.append(record)
        if rank == 0:
            assert log is not None
            log.write(json.dumps(record) + "\n")
            log.flush()
            meta = {"train": asdict(config), **record}
            save_checkpoint(model, out / "last", meta)
            write_train_studies(out / "last", train_pairs)
            _save_state(out, state, optimizer, scaler, head)
        if progress:
            progress(record)
    if log is not None:
        log.close()
    return {
        "epochs": state.epoch,
        "steps": state.step,
        "train_studies": len(train_pairs),
        "val_studies": len(val_pairs),
        "val_mrr": state.history[-1].get("val_mrr") if state.history else None,
        "history": state.history,
        "seconds": round(time.perf_counter() - started, 1),
    }


@torch.no_grad()
def validate(model: CMRCLIP, pairs: list[Pair]) -> dict[str, float]:
    """Study<->report retrieval on held-out patients; identical reports count as hits."""
    videos, _, _ = model.encode_video([p.clips for p in pairs])
    texts = model.encode_text([p.impression for p in pairs])
    groups = impression_groups([p.impression for p in pairs])
    metrics = retrieval_metrics(videos, texts, groups=groups)
    model.train()
    return {f"val_{k.replace('@', '_at_')}": float(v) for k, v in metrics.items()}


def _save_state(
    out: Path,
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    head: torch.nn.Linear | None,
) -> None:
    tmp = out / f".{STATE_FILE}.tmp"
    torch.save(
        {
            "state": asdict(state),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            # Trained with the model, not part of it: search never reads measurements.
            "measurement_head": head.state_dict() if head is not None else None,
        },
        tmp,
    )
    tmp.replace(out / STATE_FILE)


def _check_same_options(out: Path, config: TrainConfig) -> None:
    """Options that shape the loss or the data leave the weights' shapes alone, so they
    are compared by name (a checkpoint older than an option does not name it)."""
    started = read_config(out / "last").get("train", {})
    changed = [
        f"{name} {started[name]} -> {value}"
        for name, value in asdict(config).items()
        if name not in RESUMABLE_CHANGES and name in started and started[name] != value
    ]
    if changed:
        raise ResumeError(
            f"{out} holds a training run with other options ({', '.join(changed)}); continue "
            "it with the options it was started with, or train into a new --out"
        )


def _resume(
    out: Path,
    model: CMRCLIP,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    head: torch.nn.Linear | None = None,
    config: TrainConfig | None = None,
) -> TrainState:
    """Continue from ``out/last`` when a previous run left its state there."""
    from safetensors.torch import load_file

    path = out / STATE_FILE
    if not path.is_file() or not (out / "last" / "model.safetensors").is_file():
        out.mkdir(parents=True, exist_ok=True)
        return TrainState()
    if config is not None:
        _check_same_options(out, config)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    weights = load_file(str(out / "last" / "model.safetensors"))
    try:
        model.load_state_dict(weights, strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        if head is not None:
            head.load_state_dict(saved.get("measurement_head") or {})
    except (RuntimeError, ValueError) as exc:
        raise ResumeError(
            f"{out} holds a training run with other options (config, text layers, loss "
            "weights); continue it with the options it was started with, or train into a "
            "new --out"
        ) from exc
    scaler.load_state_dict(saved["scaler"])
    known = {f.name for f in fields(TrainState)}  # a state saved with "best_val" resumes
    return TrainState(**{k: v for k, v in saved["state"].items() if k in known})
