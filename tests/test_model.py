"""The model library: shapes and masking, the loss on hand-checked cases, checkpoints."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cmrclip.checkpoint import load_checkpoint, save_checkpoint, version_id
from cmrclip.config import CONFIGS, ModelConfig
from cmrclip.errors import ModelError
from cmrclip.loss import ClipLoss, multi_positive_loss
from cmrclip.model import CMRCLIP, collate
from cmrclip.negation import split_negation
from cmrsearch.vocabulary import CLIP_VIEWS


@pytest.fixture(scope="module")
def model() -> CMRCLIP:
    torch.manual_seed(0)
    return CMRCLIP(CONFIGS["tiny"]).eval()


def study(rng: np.random.Generator, views: tuple[str, ...] = CLIP_VIEWS) -> dict[str, np.ndarray]:
    return {
        v: rng.integers(0, 255, (1 if v == "lge" else 16, 64, 64), dtype=np.uint8) for v in views
    }


def test_embeddings_are_normalised_and_missing_views_are_masked(model: CMRCLIP) -> None:
    rng = np.random.default_rng(0)
    full = study(rng)
    sax_only = {k: v for k, v in full.items() if k.startswith("sax")}
    vectors, per_view, mask = model.encode_video([full, sax_only])
    assert vectors.shape == (2, model.config.embed_dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert per_view.shape == (2, len(CLIP_VIEWS), model.config.embed_dim)
    assert mask[0].all() and mask[1].tolist() == [v.startswith("sax") for v in CLIP_VIEWS]
    # Masked, not zero-filled: a study's vector ignores what its missing views would hold.
    alone, _, _ = model.encode_video([sax_only])
    assert np.allclose(alone[0], vectors[1], atol=1e-5)


def test_collate_keeps_views_apart(model: CMRCLIP) -> None:
    rng = np.random.default_rng(1)
    clips, mask = collate(
        [study(rng, ("sax_mid", "lge")), study(rng, ("4ch",))], torch.device("cpu")
    )
    assert clips["lge"].shape == (2, 1, 64, 64) and clips["4ch"].shape == (2, 16, 64, 64)
    assert mask.sum().item() == 3


def test_text_embeddings_come_from_the_packaged_minilm(model: CMRCLIP) -> None:
    a, _b, _c = model.encode_text(
        ["Dilated left ventricle.", "The left ventricle is dilated.", "No pericardial effusion."]
    )
    assert np.isclose(np.linalg.norm(a), 1, atol=1e-5)
    features = model.text.features(
        ["Dilated left ventricle.", "The left ventricle is dilated.", "No pericardial effusion."]
    )
    cos = torch.nn.functional.cosine_similarity
    assert cos(features[0], features[1], dim=0) > cos(features[0], features[2], dim=0)


def test_loss_matches_the_formula_and_treats_duplicates_as_positives() -> None:
    loss = ClipLoss()
    scale = torch.tensor(10.0)
    expected = -math.log(math.exp(10) / (math.exp(10) + 2))
    assert loss(torch.eye(3), torch.eye(3), scale).item() == pytest.approx(expected, rel=1e-3)

    # Studies 0 and 1 are two normal studies with near-identical reports ("LVEF 62%" vs
    # "LVEF 65%"): slightly different text vectors, one group. A model that maps both studies
    # to the same point is right; plain InfoNCE still pulls each toward its own wording.
    text = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.1, 0], [1.0, -0.1, 0], [0, 0, 1.0]]), dim=1
    )

    def gradient(groups: torch.Tensor | None) -> torch.Tensor:
        video = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]], requires_grad=True)
        loss(video, text, scale, groups).backward()
        assert video.grad is not None
        return video.grad[:2]

    assert gradient(None).norm() > 0.3
    assert gradient(torch.tensor([0, 0, 1])).norm() < 0.05 * gradient(None).norm()


def test_statement_loss_spreads_each_target_over_its_positives() -> None:
    # Two studies, three statements: study 0 makes statements 0 and 1, study 1 makes 1 and 2.
    video = torch.eye(3)[:2]
    text = torch.eye(3)
    positives = torch.tensor([[True, True, False], [False, True, True]])
    scale = torch.tensor(2.0)
    logits = (scale * video @ text.t()).numpy()

    def soft_ce(rows: np.ndarray, pos: np.ndarray) -> float:
        out = []
        for row, p in zip(rows, pos, strict=True):
            log_p = row - np.log(np.exp(row).sum())
            out.append(-(log_p * p / p.sum()).sum())
        return float(np.mean(out))

    pos = positives.numpy().astype(float)
    expected = (soft_ce(logits, pos) + soft_ce(logits.T, pos.T)) / 2
    assert multi_positive_loss(video, text, scale, positives).item() == pytest.approx(expected)

    # A statement nobody in the batch makes has no column target; a study with an empty
    # impression has no row target: neither changes the loss of the others.
    with_empty = torch.cat([positives, torch.zeros(1, 3, dtype=torch.bool)])
    video3 = torch.cat([video, torch.tensor([[0.0, 0.0, 1.0]])])
    rows = soft_ce(logits, pos)  # the empty row is left out
    logits3 = (scale * video3 @ text.t()).numpy()
    cols = soft_ce(logits3.T, with_empty.numpy().T.astype(float))
    assert multi_positive_loss(video3, text, scale, with_empty).item() == pytest.approx(
        (rows + cols) / 2, rel=1e-5
    )


def test_statement_loss_leaves_out_what_is_no_candidate_of_a_study() -> None:
    """A hard negative of one study (the affirmed form of what its report rules out)
    enters that study's softmax only: the loss is that of the smaller problems."""
    video = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0]]), dim=1)
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.9]]), dim=1)
    scale = torch.tensor(3.0)
    positives = torch.tensor([[True, False, False], [False, True, False]])
    candidates = torch.tensor([[True, True, True], [True, True, False]])
    got = multi_positive_loss(video, text, scale, positives, candidates)

    def ce(logits: torch.Tensor, target: int) -> torch.Tensor:
        return -torch.log_softmax(logits, dim=0)[target]

    logits = scale * video @ text.t()
    rows = (ce(logits[0], 0) + ce(logits[1, :2], 1)) / 2
    cols = (ce(logits[:, 0], 0) + ce(logits[:, 1], 1)) / 2  # text 2 has no positive
    assert got.item() == pytest.approx(((rows + cols) / 2).item(), rel=1e-6)
    assert got.item() != pytest.approx(multi_positive_loss(video, text, scale, positives).item())


def test_checkpoint_round_trip_is_exact(model: CMRCLIP, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    studies = [study(rng) for _ in range(3)]
    vid = save_checkpoint(model, tmp_path / "ckpt")
    assert vid == version_id(tmp_path / "ckpt") and len(vid) == 16
    assert (tmp_path / "ckpt" / "tokenizer" / "tokenizer.json").is_file()
    # Of the text transformer, only the fine-tuned top layers are copied.
    copied = {k for k in load_file(tmp_path / "ckpt" / "model.safetensors") if "transformer" in k}
    assert copied and all(
        k.startswith(("text.transformer.encoder.layer.4.", "text.transformer.encoder.layer.5."))
        for k in copied
    )
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert np.array_equal(model.encode_video(studies)[0], loaded.encode_video(studies)[0])
    assert np.array_equal(
        model.encode_text(["apical aneurysm"]), loaded.encode_text(["apical aneurysm"])
    )


def test_corrupted_or_foreign_checkpoints_are_refused(model: CMRCLIP, tmp_path: Path) -> None:
    path = tmp_path / "ckpt"
    save_checkpoint(model, path)
    with pytest.raises(ModelError, match="not a cmr-search checkpoint"):
        load_checkpoint(tmp_path)
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="corrupted"):
        load_checkpoint(path)
    save_checkpoint(model, path)
    meta = json.loads((path / "config.json").read_text())
    meta["model"] = ModelConfig(name="other", embed_dim=128).to_dict()
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="another model configuration"):
        load_checkpoint(path)


@pytest.mark.parametrize("chunk", [2, 32])
def test_cached_lower_text_states_give_the_same_features(chunk: int) -> None:
    """A trainer runs only the fine-tuned layers per step, from token states of the
    frozen ones computed once; the features must be those of the whole tower, in the
    callers' order whatever the length-sorted chunks."""
    config = replace(CONFIGS["tiny"], text=replace(CONFIGS["tiny"].text, trainable_layers=2))
    text = CMRCLIP(config).text.eval()
    texts = [
        "No LGE.",
        "Severely dilated LV, LVEF 20%, with impaired systolic function.",
        "Normal.",
    ]
    with torch.no_grad():
        whole = text.features(texts)
        cached = text.features_from_states(text.lower_states(texts, batch=2), chunk=chunk)
    torch.testing.assert_close(cached, whole, atol=1e-5, rtol=0)


def test_split_negation_encodes_what_is_ruled_out_as_its_affirmed_form() -> None:
    contents, negated = split_negation(
        [
            "No LV thrombus.",
            "RV not dilated (RVEDVi 80 ml/m2).",
            "Late enhancement imaging shows no myocardial scar.",
            "Dilated RV.",
            "No.",
            "Moderate pericardial effusion, 12 mm maximal depth, no tamponade features.",
            "Dilated LV with no LGE.",
        ]
    )
    assert contents == [
        "LV thrombus.",
        "RV dilated (RVEDVi 80 ml/m2).",
        "Late enhancement imaging shows myocardial scar.",
        "Dilated RV.",
        "No.",  # nothing left to speak of: kept as written
        # A cue past the first clause, or after a conjunction, rules out only a part:
        # the statement still finds something and is read as written.
        "Moderate pericardial effusion, 12 mm maximal depth, no tamponade features.",
        "Dilated LV with no LGE.",
    ]
    assert negated == [True, True, True, False, False, False, False]


def test_a_negation_head_projects_what_is_ruled_out_on_its_own() -> None:
    """With the head (the default), "No LV thrombus." is the affirmed text through the negated
    projection, so it can land far from "LV thrombus." however close the encoder puts
    the two; cached features need the split's flags."""
    torch.manual_seed(0)
    model = CMRCLIP(CONFIGS["tiny"]).eval()
    text = model.text
    assert text.project_negated is not None
    with torch.no_grad():
        found = text.features(["LV thrombus."])
        ruled_out, found_again = model.text_embeddings(["No LV thrombus.", "LV thrombus."])
        torch.testing.assert_close(
            ruled_out, torch.nn.functional.normalize(text.project_negated(found)[0], dim=0)
        )
        torch.testing.assert_close(
            found_again, torch.nn.functional.normalize(text.project(found)[0], dim=0)
        )
        assert float(ruled_out @ found_again) < 0.9
        features, negated = text.split_features(["No LV thrombus.", "LV thrombus."])
        cached = model.text_embeddings(features=features, negated=negated)
        torch.testing.assert_close(cached, torch.stack([ruled_out, found_again]))
        with pytest.raises(ValueError, match="negation flags"):
            model.text_embeddings(features=found)
    # A checkpoint from before the head has none: a negated statement is read as written.
    before = CONFIGS["tiny"].to_dict()
    del before["text"]["negation"]
    old = CMRCLIP(ModelConfig.from_dict(before)).text
    assert old.project_negated is None and old.split(["No LGE."])[0] == ["No LGE."]
    assert not old.split(["No LGE."])[1].any()


def test_each_present_view_reaches_the_study_vector_through_its_own_map() -> None:
    torch.manual_seed(0)
    model = CMRCLIP(CONFIGS["tiny"]).eval()
    video = model.video
    assert video.view_project is not None
    assert not video.view_project.any()  # training starts from the pooled vector alone
    with torch.no_grad():
        video.view_project.normal_(std=0.05)
    rng = np.random.default_rng(3)
    full = study(rng)
    sax_only = {k: v for k, v in full.items() if k.startswith("sax")}
    clips, mask = collate([full, sax_only], model.device)
    with torch.no_grad():
        got, _ = video(clips, mask)
        tokens = video.norm(video.view_tokens(clips, mask))
        query = video.query.expand(2, -1, -1)
        pooled, _ = video.pool(query, tokens, tokens, key_padding_mask=~mask, need_weights=False)
        maps = video.view_project
        own = sum(tokens[:, v] @ maps[v] * mask[:, v, None] for v in range(mask.shape[1]))
        torch.testing.assert_close(got, video.project(pooled[:, 0]) + own)
    # With the maps in use, a missing view still adds nothing: masked, not zero-filled.
    alone, _, _ = model.encode_video([sax_only])
    together, _, _ = model.encode_video([full, sax_only])
    assert np.allclose(alone[0], together[1], atol=1e-5)
    assert not np.allclose(together[0], together[1], atol=1e-2)
    # A checkpoint from before the maps has none, and loads as it was trained.
    before = CONFIGS["tiny"].to_dict()
    del before["video"]["view_residual"]
    assert CMRCLIP(ModelConfig.from_dict(before)).video.view_project is None


def test_a_view_is_read_at_a_width_of_its_own() -> None:
    """A one-pixel checkerboard pools to flat grey at the cine views' 32 px; LGE, read at
    64 px, still tells it from flat grey. Old checkpoints read every view at one width."""
    torch.manual_seed(0)
    tiny = CONFIGS["tiny"]
    config = replace(tiny, video=replace(tiny.video, view_sizes=(("lge", 64),)))
    config = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))  # as stored
    model = CMRCLIP(config).eval()
    board = (np.indices((64, 64)).sum(0) % 2 * 254).astype(np.uint8)  # 0 and 254: mean 127
    flat = np.full((64, 64), 127, np.uint8)

    def token(view: str, image: np.ndarray) -> torch.Tensor:
        clip = np.repeat(image[None], 3 if view == "lge" else 16, axis=0)
        clips, mask = collate([{view: clip}], model.device)
        with torch.no_grad():
            return model.video.view_tokens(clips, mask)[0, CLIP_VIEWS.index(view)]

    assert not torch.allclose(token("lge", board), token("lge", flat), atol=1e-3)
    torch.testing.assert_close(token("sax_mid", board), token("sax_mid", flat))
    before = config.to_dict()
    del before["video"]["view_sizes"]
    assert ModelConfig.from_dict(before).video.size_of("lge") == 32
