"""The documentation says what the code does: every config key and default, every doctor rule, runnable examples.

The reference pages are checked against the code they describe (the pydantic
config, the doctor's vocabulary, thresholds and remedies), and the examples of
the README and the guides are run and their stated results checked.
CI also builds the site with ``mkdocs build --strict`` (``.ci/run``), so a
broken page or link fails there.
"""

import re
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import BaseModel

from trainwell.config import Config
from trainwell.data.imbalance import SAMPLERS
from trainwell.doctor import REMEDIES, SYMPTOMS, Thresholds
from trainwell.runs.remedies import config_change

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _leaves(model: type[BaseModel] = Config, prefix: str = "") -> dict[str, object]:
    """Every leaf key of the config (dotted) with its default; sampler arguments under ``data.imbalance``."""
    out: dict[str, object] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.update(_leaves(annotation, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = field.default_factory() if field.default_factory else field.default
    return out


def _sampler_arguments() -> dict[str, object]:
    args: dict[str, object] = {}
    for entry in SAMPLERS:
        for arg, default in SAMPLERS.options(entry.name).items():
            args.setdefault(f"data.imbalance.{arg}", default)
    return args


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows whose first cell is one `key`: key -> the other cells."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [cell.strip() for cell in m.group(2).split("|")]
    return rows


def _yaml(value: object) -> str:
    """A default as the docs write it: YAML scalars (``null``, ``true``, ``0.2``), ``{}``, ``[0.9, 0.999]``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _block_after(text: str, heading: str) -> str:
    return _python_blocks(text.split(heading, 1)[1])[0]


@pytest.fixture
def one_thread():
    """The examples' runs are small: one torch thread is faster on a loaded machine (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the config reference

def test_every_config_key_is_documented():
    rows = _rows(_text("configuration.md"))
    missing = sorted(set(_leaves()) - set(rows))
    assert not missing, f"docs/configuration.md has no row for {missing}"
    missing_args = sorted(set(_sampler_arguments()) - set(rows))
    assert not missing_args, f"docs/configuration.md has no row for the sampler arguments {missing_args}"


def test_every_documented_key_exists():
    keys = set(_leaves()) | set(_sampler_arguments())
    stale = sorted(set(_rows(_text("configuration.md"))) - keys)
    assert not stale, f"docs/configuration.md documents keys the config does not have: {stale}"


def test_documented_defaults_are_the_config_defaults():
    rows = _rows(_text("configuration.md"))
    defaults = {**_sampler_arguments(), **_leaves()}
    for key, default in defaults.items():
        if default is None and key in ("model.depth", "model.width") or key.startswith("optim.") and default is None:
            assert "the family's" in rows[key][0] or "the optimizer's" in rows[key][0], key
            continue
        if key in ("data.imbalance.random_state",):  # None in the sampler; a run passes its own seed
            assert rows[key][0] == "`null`" and "seed" in rows[key][1], key
            continue
        assert rows[key][0] == f"`{_yaml(default)}`", f"{key}: documented {rows[key][0]}, the config's is {default!r}"


def test_family_and_optimizer_defaults_are_stated_right():
    model, optim = Config().model, Config().optim
    rows = _rows(_text("configuration.md"))
    assert f"mlp {model.depth}" in rows["model.depth"][1] and f"mlp {model.width}" in rows["model.width"][1]
    for key, value in (("optim.lr", optim.lr), ("optim.eps", optim.eps)):
        written = re.search(r"adam: ([0-9.e-]+)", rows[key][1])
        assert written and float(written.group(1)) == value, f"{key}: adam's default is {value}"
    assert str(list(optim.betas)) in rows["optim.betas"][1]


# --------------------------------------------------------------------------- the doctor's page

def test_every_symptom_has_a_rule():
    rows = _rows(_text("doctor.md"))
    missing = sorted(set(SYMPTOMS) - set(rows))
    assert not missing, f"docs/doctor.md has no rule row for {missing}"


def test_every_threshold_is_named_with_its_value():
    text = _text("doctor.md")
    for name, value in vars(Thresholds()).items():
        assert f"`{name}`" in text, f"docs/doctor.md does not name the threshold {name}"
        if name == "persist":
            assert value == 2 and "on two samples (`persist`)" in text
            continue
        # the value is written just before its name: "< 1e-2 (`vanishing_ratio`)", "5 times (`oscillation_turns`)"
        # (a threshold may share its name with a symptom: any of its mentions may carry the value)
        windows = [part[-60:] for part in text.split(f"`{name}`")[:-1]]
        numbers = [float(n) for before in windows
                   for n in [m[0] for m in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?(?:e-?\d+)?)(%?)", before)]]
        percents = [float(n) / 100 for before in windows
                    for n, pct in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(%)", before)]
        assert any(abs(n - value) <= 1e-12 * max(1, abs(value)) for n in numbers + percents), \
            f"docs/doctor.md: {name} is {value}, not the number written before it ({windows!r})"


def test_remedy_table_matches_the_run_layer():
    rows = _rows(_text("doctor.md"))
    samples = {"ScaleLR": {"factor": 0.5}, "SetActivation": {"name": "relu"}, "SetInit": {"name": "he_normal"},
               "SetSchedule": {"name": "cosine"}, "SetLoss": {"name": "cross_entropy"}}
    for name, kind in REMEDIES.items():
        row = next((cells for key, cells in rows.items() if key.split("(")[0] == name), None)
        assert row is not None, f"docs/doctor.md has no row for the remedy {name}"
        change = config_change(kind(**samples.get(name, {})))
        key = re.split(r"\*?=", change)[0]
        assert row[-1].strip("`").startswith(key), f"{name}: documented {row[-1]}, the run layer does {change}"


# --------------------------------------------------------------------------- the site

def test_nav_lists_every_page_and_every_page_exists():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def files(items):
        for item in items:
            for value in item.values():
                yield from files(value) if isinstance(value, list) else [value]

    listed = list(files(nav))
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.name for p in DOCS.glob("*.md"))


def test_pages_stand_alone():
    """Users have the repository, not the notes it was written from, and no page promises what is not built."""
    pages = [ROOT / "README.md", *DOCS.glob("*.md")]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for bad in ("../shared", "SPEC.md", "coming soon", "TODO"):
            assert bad not in text, f"{page.name} mentions {bad!r}"
        assert not re.search(r"\bseeds? \d{3}\b", text), f"{page.name} cites a seed note"


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).is_file(), f"README links to {target}, which does not exist"


def test_readme_lists_only_commands_that_exist():
    from typer.main import get_command

    from trainwell.cli import app
    commands = set(get_command(app).commands)
    block = (ROOT / "README.md").read_text().split("## The commands", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"^trainwell ([a-z-]+)", block, flags=re.MULTILINE))
    assert named and named <= commands, f"the README lists {sorted(named - commands)}, not commands of trainwell"
    assert {"train", "evaluate", "cv", "ensemble", "datasets", "components"} <= named


# --------------------------------------------------------------------------- the examples run

def test_readme_example_runs(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(_block_after((ROOT / "README.md").read_text(), "## In Python"), namespace)
    run = namespace["run"]
    assert run.metrics["test"]["accuracy"] >= 0.9 and run.diagnosis["findings"] == []  # "none here"
    assert (tmp_path / "runs" / "moons" / "model.safetensors").is_file()
    repairs = list((tmp_path / "runs").glob("*moons-mlp*"))
    assert len(repairs) == 1
    # the sick run was repaired by lowering the rate from 50
    import json
    diagnosis = json.loads((repairs[0] / "diagnosis.json").read_text())
    change = diagnosis["repairs"][0]["changes"][0]
    assert change.startswith("optim.lr=") and float(change.split("=")[1]) < 5


def test_hand_written_loop_example_repairs_the_rate(one_thread, capsys):
    namespace: dict = {}
    exec(_block_after(_text("doctor.md"), "## In a hand-written loop"), namespace)
    printed = capsys.readouterr().out
    assert "divergence" in printed and "lower the learning rate" in printed
    # what the page says: 30 scaled to 0.0981 by ScaleLR(0.00327), and then nothing found
    assert namespace["lr"] == pytest.approx(30 * 0.00327) and namespace["doctor"].findings == []


def test_trainer_example_runs(one_thread):
    namespace: dict = {}
    exec(_block_after(_text("getting-started.md"), "## The training loop"), namespace)
    history = namespace["history"]
    assert history[-1]["val_loss"] < 0.1 or len(history) == 50  # StopAtLoss stopped it, or all epochs ran
    assert len(history) < 50  # moons at Adam 1e-2 gets below 0.1 well before 50 epochs


def test_checkpoint_example_resumes_bit_identically(tmp_path, monkeypatch, one_thread):
    """The page's resume is exact: 10 epochs, then resumed to 20, equals 20 uninterrupted (the oracle)."""
    monkeypatch.chdir(tmp_path)
    source = _block_after(_text("checkpoints.md"), "## In your own loop")
    source = source.replace("import torch\n", "import torch\ntorch.manual_seed(0)\n", 1)
    assert "epochs=20" in source

    def run(code: str, where: str) -> dict[str, torch.Tensor]:
        namespace: dict = {}
        exec(code.replace('"out/checkpoints"', repr(where)), namespace)
        return {k: v.clone() for k, v in namespace["model"].state_dict().items()}

    run(source.replace("epochs=20", "epochs=10"), "interrupted")
    resumed = run(source, "interrupted")
    whole = run(source, "whole")
    assert resumed.keys() == whole.keys() and all(torch.equal(resumed[k], whole[k]) for k in whole)
