"""`cmrsearch train` and `cmrsearch evaluate` end to end on a tiny phantom, on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import index_phantom
from sqlalchemy import select

from catalog.db import make_engine, session_factory
from catalog.models import ModelVersion
from cmrclip.checkpoint import load_checkpoint, read_config, version_id
from cmrclip.config import ModelConfig
from cmrclip.model import CMRCLIP
from cmrsearch.cli import main
from cmrsearch.errors import ConfigError
from cmrsearch.vocabulary import FINDINGS
from phantom.archive import generate
from trainer.data import impression_groups, read_train_studies
from trainer.evaluate import UNEQUAL
from trainer.loop import STATE_FILE, BatchStatements, TrainConfig, _resume, make_optimizer
from trainer.measurements import MEASUREMENTS


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-archives")
    generate(root / "train", 14, seed=31, style="internal", workers=2, size="small")
    generate(root / "held", 6, seed=32, style="external", workers=2, size="small")
    return {"train": root / "train", "held": root / "held"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# A plot of a small cohort once warned of an empty legend; evaluate must not warn.
@pytest.mark.filterwarnings("error::UserWarning")
def test_train_resume_register_and_evaluate(
    cmr_env: Path,
    database_url: str,
    archives: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["db", "upgrade"]) == 0
    index_phantom(archives["train"])
    capsys.readouterr()
    out = tmp_path / "model"
    first = run(capsys, "train", "--out", str(out), "--epochs", "2", "--batch-size", "6")
    last = out / "last"
    assert first["epochs"] == 2 and first["model_version"] == version_id(last)
    assert {"model.safetensors", "config.json", "tokenizer", "train_studies.json"} <= {
        p.name for p in last.iterdir()
    }
    assert len(read_train_studies(last)) == first["train_studies"]
    load_checkpoint(last)  # rebuilt from the directory alone
    # The measurement head trains beside the model, outside its checkpoint; resume restores it.
    saved = torch.load(out / STATE_FILE, weights_only=True)["measurement_head"]
    stated = saved["weight"].shape[0]  # every measurement but a rare effusion's
    assert stated >= len(MEASUREMENTS) - 1 and saved["weight"].shape[1] == 256
    model = CMRCLIP(ModelConfig.from_dict(read_config(last)["model"]))
    head = torch.nn.Linear(256, stated)
    optimizer = make_optimizer(model, TrainConfig(), head)
    _resume(out, model, optimizer, torch.amp.GradScaler("cuda", enabled=False), head)
    torch.testing.assert_close(head.state_dict(), saved)

    # Resume: a longer run continues from epoch 2 instead of starting over.
    resumed = run(capsys, "train", "--out", str(out), "--epochs", "3", "--batch-size", "6")
    assert resumed["epochs"] == 3
    # The model is the last epoch's: the resumed run registers it, epoch 3 in its config.
    assert resumed["model_version"] == version_id(last) != first["model_version"]
    assert read_config(last)["epoch"] == 3
    # Other options cannot continue it: one line says so, and the run is left as it was.
    kept = version_id(last)
    argv = ["train", "--out", str(out), "--epochs", "4", "--measurement-weight", "0"]
    assert main([*argv, "--batch-size", "6"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the weights' progress
    assert error.startswith("cmrsearch: error:") and "holds a training run with other" in error
    assert version_id(last) == kept and read_config(last)["epoch"] == 3
    # An option that leaves the weights' shapes alone is refused by name.
    assert main([*argv[:-2], "--no-interpretation-statements", "--batch-size", "6"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "other options (interpretation_statements True -> False)" in error
    assert main([*argv[:-2], "--view-dropout", "0.5", "--batch-size", "6"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"other options (view_dropout {TrainConfig().view_dropout} -> 0.5)" in error
    # One view's weight given: the other keeps its default, and the change is named.
    assert main([*argv[:-2], "--view-statement-weight", "lvot=1", "--batch-size", "6"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    weights = TrainConfig().view_statement_weights
    assert f"(view_statement_weights {weights} -> {weights | {'lvot': 1.0}})" in error
    assert version_id(last) == kept
    epochs = [json.loads(x)["epoch"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]

    engine = make_engine(database_url)
    with session_factory(engine)() as s:
        ids = set(s.scalars(select(ModelVersion.id)))
    assert first["model_version"] in ids

    # Evaluation: the external archive is held out (new patients, other style).
    index_phantom(archives["held"])
    capsys.readouterr()
    report_dir = tmp_path / "eval"
    report = run(
        capsys,
        "evaluate",
        "--model",
        str(last),
        "--out",
        str(report_dir),
        "--labels",
        str(archives["train"] / "labels.jsonl"),
        "--labels",
        str(archives["held"] / "labels.jsonl"),
    )
    cohorts = report["cohorts"]
    assert isinstance(cohorts, dict) and cohorts["external"] == 6
    # The training run's validation patients are held out too: the internal cohort.
    assert cohorts["internal"] == 14 - int(first["train_studies"])  # type: ignore[call-overload]
    for name in ("model", "untrained", "image_statistic"):
        assert "external" in report[name]["mean_auc"]  # type: ignore[index]
        low, high = report[name]["mean_auc_95ci"]["external"]  # type: ignore[index]
        assert low <= report[name]["mean_auc"]["external"] <= high  # type: ignore[index]
    intervals = 0
    for finding, cohorts_ in report["model"]["zero_shot"].items():  # type: ignore[index]
        held_out = cohorts_["external"]
        if 2 <= held_out["positives"] <= held_out["n"] - 2:
            low, high = held_out["auc_95ci"]
            assert 0.0 <= low <= held_out["auc"] <= high <= 1.0, finding
            intervals += 1
    assert intervals > 0
    # Six held-out studies: a finding with n of them scores at best min(n, 6) / 6.
    held = [json.loads(x) for x in (archives["held"] / "labels.jsonl").read_text().splitlines()]
    counts = [sum(r["findings"][f] for r in held) for f in FINDINGS]
    best = np.mean([min(n, 6) / 6 for n in counts if n])
    precision = report["model"]["finding_precision_at_10"]["external"]  # type: ignore[index]
    assert precision["ceiling"] == pytest.approx(best) and precision["mean"] <= best + 1e-9
    probe = report["model"]["probe_precision_at_10"]["external"]  # type: ignore[index]
    assert set(probe["per_finding"]) <= set(precision["per_finding"])
    assert 0.0 <= probe["mean"] <= 1.0
    table = (report_dir / "evaluation.md").read_text()
    assert table.startswith("Training studies") and "linear probe P@10" in table
    assert "[95% CI]" in table and "case" in table and "Prompts left out" in table
    sizes = report["cohorts"].values()  # type: ignore[union-attr]
    assert ("cohorts of unequal size" in table) == (max(sizes) > UNEQUAL * min(sizes))
    kept = report["model"]["prompts"]  # type: ignore[index]
    assert set(kept) == set(FINDINGS)
    assert all(sides["positive"] and sides["negative"] for sides in kept.values())
    assert (report_dir / "roc_external.png").stat().st_size > 1000
    assert (report_dir / "few_shot.png").stat().st_size > 1000
    with session_factory(engine)() as s:
        row = s.get(ModelVersion, version_id(last))
        assert row is not None and row.metrics and "evaluation" in row.metrics
        # Search scores findings with the prompts evaluation kept, as their thresholds were.
        assert row.metrics["evaluation"]["prompts"] == report["model"]["prompts"]  # type: ignore[index]
    engine.dispose()


def test_torchrun_processes_keep_identical_weights(
    cmr_env: Path, archives: dict[str, Path], tmp_path: Path
) -> None:
    """DDP wraps the video tower only: the text tower and the temperature must be kept
    in step by the trainer itself, or each process drifts to its own model."""
    assert main(["db", "upgrade"]) == 0
    index_phantom(archives["train"])
    out = tmp_path / "ddp"
    worker = Path(__file__).with_name("ddp_worker.py")
    run_ = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            str(worker),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert run_.returncode == 0, run_.stderr[-2000:]
    rank0 = (out / "rank0.txt").read_text().splitlines()
    assert any(line.startswith("text.transformer.") for line in rank0)  # fine-tuned layer
    assert any(line.startswith("logit_scale ") for line in rank0)
    assert rank0 == (out / "rank1.txt").read_text().splitlines()


def test_training_is_deterministic_for_a_seed(
    cmr_env: Path,
    archives: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["db", "upgrade"]) == 0
    index_phantom(archives["train"])
    capsys.readouterr()
    losses = []
    for name in ("a", "b"):
        result = run(
            capsys,
            "train",
            "--out",
            str(tmp_path / name),
            "--epochs",
            "1",
            "--batch-size",
            "6",
            "--seed",
            "7",
        )
        losses.append(result["history"][0]["loss"])  # type: ignore[index]
    assert losses[0] == losses[1]


def test_train_on_an_empty_catalog_says_what_to_do(
    cmr_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["db", "upgrade"]) == 0
    code = main(["train", "--out", str(tmp_path / "m"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "cmrsearch index" in err and "Traceback" not in err


def test_near_identical_impressions_share_a_group() -> None:
    groups = impression_groups(
        ["Normal study. LVEF 62%.", "normal study, LVEF 65 %", "Dilated LV. LVEF 30%."]
    )
    assert groups[0] == groups[1] != groups[2]


def test_fine_tuned_text_layers_learn_at_a_small_rate() -> None:
    from cmrclip.config import CONFIGS
    from cmrclip.model import CMRCLIP
    from trainer.loop import PRETRAINED_LR_SCALE, TrainConfig, _param_groups, model_config

    frozen = _param_groups(CMRCLIP(model_config(TrainConfig(text_layers=0))), 0.05)
    assert [g["lr_scale"] for g in frozen] == [1.0, 1.0]  # frozen text: nothing pretrained
    small = CMRCLIP(CONFIGS["small"])
    groups = _param_groups(small, 0.05)
    transformer = {id(p) for n, p in small.named_parameters() if n.startswith("text.transformer.")}
    for group in groups:
        pretrained = {id(p) in transformer for p in group["params"]}
        assert len(pretrained) == 1  # a group is either all pretrained or none
        assert group["lr_scale"] == (PRETRAINED_LR_SCALE if pretrained.pop() else 1.0)
    trainable = {id(p) for p in small.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == trainable
    assert any(g["lr_scale"] < 1 for g in groups)


def test_run_overrides_change_the_config_the_checkpoint_carries() -> None:
    from cmrclip.config import CONFIGS
    from trainer.loop import TrainConfig, model_config

    assert model_config(TrainConfig()) == CONFIGS["tiny"]
    changed = model_config(TrainConfig(text_layers=0, video_size=64))
    assert changed.text.trainable_layers == 0 and changed.video.size == 64
    assert changed.video.channels == CONFIGS["tiny"].video.channels
    assert CONFIGS["tiny"].text.trainable_layers == 2  # the named config is untouched


def test_a_text_bank_recalls_the_texts_a_step_leaves_out_of_the_fine_tuned_layers() -> None:
    """With fine-tuned layers, a step passes `fresh` of its texts through them; the rest
    come back as their last pass left them: exact before any update, stale after one."""
    import torch

    from cmrclip.model import CMRCLIP
    from trainer.loop import TextBank, TrainConfig, model_config

    torch.manual_seed(0)
    model = CMRCLIP(model_config(TrainConfig(text_layers=1))).eval()
    texts = ["Dilated LV.", "Normal RV size.", "No LGE.", "Mildly dilated aortic root, 42 mm."]
    ids = [3, 0, 2, 1]
    with torch.no_grad():
        bank = TextBank.build(model, texts)
        before = model.text_embeddings(texts)
    first = bank.embed(model, ids, fresh=2, seed=[0])
    torch.testing.assert_close(first, before[ids], atol=1e-5, rtol=0)
    first.sum().backward()
    layer = model.text.transformer.encoder.layer[-1]
    assert layer.output.dense.weight.grad is not None  # the passed texts train the layer
    with torch.no_grad():
        for param in layer.parameters():
            param.add_(0.05 * torch.randn_like(param))
        after = model.text_embeddings(texts)
        second = bank.embed(model, ids, fresh=2, seed=[1])
    fresh = [torch.allclose(second[k], after[i], atol=1e-5) for k, i in enumerate(ids)]
    stale = [torch.allclose(second[k], before[i], atol=1e-5) for k, i in enumerate(ids)]
    assert sum(fresh) == 2 and [not s for s in stale] == fresh


def test_a_views_loss_takes_the_studies_with_it_against_the_statements_about_it() -> None:
    # Statements: "Dilated LV." (neither view's), "Mid-wall LGE.", "No LGE." (LGE's),
    # "Dilated aortic root." (LVOT's); three studies, the third without an LGE view.
    text = torch.eye(4)
    made = torch.tensor(
        [[True, True, False, True], [True, False, True, False], [False, False, True, False]]
    )
    candidates = made.any(dim=0).expand(3, 4)  # what the batch makes, every study's
    about = {
        "lge": torch.tensor([False, True, True, False]),
        "lvot": torch.tensor([False, False, False, True]),
    }
    said = BatchStatements(text, made, candidates, about)
    video = torch.nn.functional.normalize(
        torch.tensor([[0.3, 1.0, 0.1, 0.0], [0.2, 0.4, 1.0, 0.0]]), dim=1
    )
    scale = torch.tensor(4.0)
    rows = torch.tensor([True, True, False])
    got = said.loss(torch.cat([video, torch.tensor([[1.0, 0.0, 0.0, 0.0]])]), scale, "lge", rows)

    # By hand: a 2 x 2 problem, each study's positive its own LGE statement.
    logits = scale * video[:, 1:3]
    by_row = -torch.log_softmax(logits, dim=1).diagonal().mean()
    by_column = -torch.log_softmax(logits, dim=0).diagonal().mean()
    assert got.item() == pytest.approx(((by_row + by_column) / 2).item(), rel=1e-6)
    # The study without an LGE view is left out; with every study counted, it is not.
    other = said.loss(torch.cat([video, torch.tensor([[0.0, 0.0, 1.0, 0.0]])]), scale, "lge", rows)
    assert other.item() == pytest.approx(got.item())
    assert said.loss(torch.cat([video, video[:1]]), scale).item() != pytest.approx(got.item())
    # LVOT: one statement, made by the first study alone; the others, which make none,
    # carry no signal as rows, so the loss is the column's softmax over the three studies.
    every = torch.cat([video, torch.tensor([[0.0, 0.0, 0.6, 0.8]])])
    lvot = said.loss(every, scale, "lvot", torch.tensor([True, True, True]))
    column = -torch.log_softmax(scale * every[:, 3], dim=0)[0]
    assert lvot.item() == pytest.approx((column / 2).item(), rel=1e-6)


def test_a_view_weight_for_a_view_without_its_own_loss_is_refused() -> None:
    with pytest.raises(ConfigError, match="views with their own loss are lge, lvot"):
        TrainConfig(view_statement_weights={"sax_mid": 0.5})
