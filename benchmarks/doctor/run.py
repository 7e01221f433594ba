"""The sick-run benchmark: does the doctor name what was broken, and can it repair it?

    python benchmarks/doctor/run.py [--only NAME ...] [--no-repair] [--json OUT] [--rounds 3]
                                    [--held-out | --held-out-2 | ... | --held-out-9]

For every case of cases.py: train with the doctor on, compare its findings
with what was injected; for sick cases with a ``fix``, also train the
healthy twin (the case with the fault undone) and the case with
``doctor.repair=true``, and compare their validation accuracy and wall time
(the median of ``--rounds`` alternating runs of each).
Prints per-symptom recall and precision, NaN-cause and layer accuracy, the
median step of a finding, findings on healthy runs, and repair success.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from cases import (DATA, HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5, HELD_OUT_6, HEALTHY,  # noqa: E402
                   SICK, Case)
from held_out_6 import CUSTOM_6, Setup  # noqa: E402
from held_out_7 import CUSTOM_7, HELD_OUT_7  # noqa: E402
from held_out_8 import CUSTOM_8, HELD_OUT_8  # noqa: E402
from held_out_9 import CUSTOM_9, HELD_OUT_9  # noqa: E402

import torch  # noqa: E402

import trainwell  # noqa: E402
from _common import machine  # noqa: E402
from trainwell.config import apply_overrides, resolve_config  # noqa: E402
from trainwell.doctor import DoctorCallback, Finding, audit  # noqa: E402
from trainwell.loop import Trainer  # noqa: E402
from trainwell.errors import TrainwellError  # noqa: E402

CUSTOM = {**CUSTOM_6, **CUSTOM_7, **CUSTOM_8, **CUSTOM_9}  # the hand-built runs of every set, by builder name


def diagnose_custom(case: Case) -> dict:
    """A hand-built run: the audit, then trainwell's Trainer with the doctor's callback (or the case's own loop)."""
    start = time.perf_counter()
    built = CUSTOM[case.custom]()
    if isinstance(built, Setup):
        d = built.data
        findings = audit(d.train, d.val, d.test, n_classes=d.n_classes)
        doctor = DoctorCallback(every=10)
        trainer = Trainer(built.model, built.optimizer, built.loss_fn, d.train, d.val, epochs=built.epochs,
                          batch_size=built.batch_size, generator=torch.Generator().manual_seed(0),
                          callbacks=[doctor, *built.callbacks])
        trainer.fit()
        findings = findings + doctor.findings
    else:  # a hand-written loop returned its doctor's findings
        findings = list(built)
    return {"findings": [f for f in findings if f.severity != "info"], "seconds": time.perf_counter() - start,
            "error": None}


def diagnose(case: Case, out: Path) -> dict:
    if case.custom:
        return diagnose_custom(case)
    data = DATA[case.data]() if case.data else None
    start = time.perf_counter()
    try:
        run = trainwell.train(case.config, out=out, data=data, progress=False)
        findings, error = run.findings, None
    except TrainwellError as err:  # the audit refuses data it cannot train on: its findings are the diagnosis
        if data is None:  # the case's own config is wrong: not a diagnosis
            raise
        cfg = resolve_config(case.config)
        findings = audit(data.train, data.val, data.test, n_classes=data.n_classes, standardized=cfg.data.standardize)
        error = str(err)
    seconds = time.perf_counter() - start
    return {"findings": [f for f in findings if f.severity != "info"], "seconds": seconds, "error": error}


def repair(case: Case, out: Path, rounds: int = 3) -> dict:
    """Train the healthy twin and the repaired run, alternating, ``rounds`` times each; median wall times.

    The runs are seeded, so every round gives the same accuracies (checked); the
    repeats are for the wall times, which on runs of 0.1-2 s vary by tens of
    percent from one run to the next on this machine.
    """
    data = DATA[case.data]() if case.data else None
    twin = apply_overrides(resolve_config(case.config), case.fix)
    times: dict[str, list[float]] = {"healthy": [], "repaired": []}
    for i in range(rounds):
        start = time.perf_counter()
        healthy = trainwell.train(twin, out=out / f"healthy-{i}", data=data, progress=False)
        times["healthy"].append(time.perf_counter() - start)
        start = time.perf_counter()
        repaired = trainwell.train(case.config, overrides=["doctor.repair=true"], out=out / f"repaired-{i}",
                                   data=data, progress=False)
        times["repaired"].append(time.perf_counter() - start)
        if i == 0:
            h, r = healthy.metrics["val"]["accuracy"], repaired.metrics["val"]["accuracy"]
        elif (healthy.metrics["val"]["accuracy"], repaired.metrics["val"]["accuracy"]) != (h, r):
            raise RuntimeError(f"{case.name}: a seeded run gave another accuracy in round {i + 1}")
    healthy_s, repaired_s = statistics.median(times["healthy"]), statistics.median(times["repaired"])
    return {"healthy_val": h, "repaired_val": r, "success": r >= h - 0.02, "time_ratio": repaired_s / healthy_s,
            "healthy_s": healthy_s, "repaired_s": repaired_s,
            "changes": [c for a in repaired.diagnosis.get("repairs", []) for c in a["changes"]],
            "twin_findings": sorted({f.symptom for f in healthy.findings if f.severity != "info"})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--no-repair", action="store_true")
    parser.add_argument("--json", type=Path, help="write every case's result here")
    parser.add_argument("--held-out", action="store_true", help="run the held-out cases instead (no repair)")
    parser.add_argument("--held-out-2", action="store_true",
                        help="run the second held-out set instead (with repairs where a case has a fix)")
    parser.add_argument("--held-out-3", action="store_true", help="run the third held-out set instead (as the second)")
    parser.add_argument("--held-out-4", action="store_true", help="run the fourth held-out set instead (as the second)")
    parser.add_argument("--held-out-5", action="store_true", help="run the fifth held-out set instead (as the second)")
    parser.add_argument("--held-out-6", action="store_true",
                        help="run the sixth held-out set instead (issue 18: faults of published taxonomies)")
    parser.add_argument("--held-out-7", action="store_true",
                        help="run the seventh held-out set instead (issue 18: written by someone who had not read "
                             "the rules)")
    parser.add_argument("--held-out-8", action="store_true",
                        help="run the eighth held-out set instead (issue 18: new instances of the faults set 7 "
                             "found hard, and more real faults)")
    parser.add_argument("--held-out-9", action="store_true",
                        help="run the ninth held-out set instead (issue 18: new instances of the faults of sets 7 "
                             "and 8, and healthy runs done right)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each twin and repaired run (median)")
    args = parser.parse_args()
    pool = HELD_OUT if args.held_out else HELD_OUT_2 if args.held_out_2 else HELD_OUT_3 if args.held_out_3 \
        else HELD_OUT_4 if args.held_out_4 else HELD_OUT_5 if args.held_out_5 else HELD_OUT_6 if args.held_out_6 \
        else HELD_OUT_7 if args.held_out_7 else HELD_OUT_8 if args.held_out_8 else HELD_OUT_9 if args.held_out_9 \
        else SICK + HEALTHY
    cases = [c for c in pool if not args.only or c.name in args.only]
    print(f"machine: {machine()}; {sum(not c.healthy for c in cases)} sick and {sum(c.healthy for c in cases)} "
          f"healthy cases")
    root = Path(tempfile.mkdtemp())
    results = []
    for case in cases:
        r = diagnose(case, root / case.name)
        found = {f.symptom for f in r["findings"]}
        main = case.main or next(iter(case.expect), None)
        main_finding: Finding | None = next((f for f in r["findings"] if f.symptom == main), None)
        r.update(name=case.name, expect=sorted(case.expect), found=sorted(found),
                 missed=sorted(case.expect - found), extra=sorted(found - case.expect - case.allow))
        if case.cause:
            nan = next((f for f in r["findings"] if f.symptom == "nan_loss"), None)
            r["cause"] = (case.cause, nan.cause if nan else None)
        if case.layer:
            r["layer"] = (case.layer, main_finding.layer if main_finding else None)
        if main_finding is not None and case.data is None:
            r["finding_step"] = main_finding.step
        if case.fix and not args.no_repair:
            r["repair"] = repair(case, root / f"{case.name}-repair", args.rounds)
        r["findings"] = [str(f) for f in r["findings"]]
        results.append(r)
        flag = "ok " if not r["missed"] and not r["extra"] else "BAD"
        print(f"{flag} {case.name:32s} expect {r['expect']} found {r['found']}"
              + (f" cause {r['cause']}" if "cause" in r else "") + (f" layer {r['layer']}" if "layer" in r else "")
              + (f" repair {r['repair']['repaired_val']:.3f} vs {r['repair']['healthy_val']:.3f}"
                 f" x{r['repair']['time_ratio']:.2f} {r['repair']['changes']} twin {r['repair']['twin_findings']}"
                 if "repair" in r else ""), flush=True)
    report(results, {c.name: c for c in cases})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


def report(results: list[dict], cases: dict[str, Case]) -> None:
    symptoms = sorted({s for r in results for s in r["expect"]} | {s for r in results for s in r["extra"]})
    print("\nper symptom: recall (found / injected), precision (right / reported)")
    for s in symptoms:
        injected = [r for r in results if s in r["expect"]]
        hits = sum(s in r["found"] for r in injected)
        reported = [r for r in results if s in r["found"]
                    and (s in cases[r["name"]].expect or s not in cases[r["name"]].allow)]
        right = sum(s in r["expect"] for r in reported)
        recall = hits / len(injected) if injected else float("nan")
        precision = right / len(reported) if reported else float("nan")
        print(f"  {s:24s} recall {hits}/{len(injected)} = {recall:.2f}   precision {right}/{len(reported)} = "
              f"{precision:.2f}")
    causes = [r["cause"] for r in results if "cause" in r]
    layers = [r["layer"] for r in results if "layer" in r]
    print(f"NaN cause right: {sum(a == b for a, b in causes)}/{len(causes)}")
    print(f"layer right: {sum(b is not None and b.startswith(a) for a, b in layers)}/{len(layers)}")
    steps = [r["finding_step"] for r in results if "finding_step" in r]
    if steps:
        print(f"median step of the finding (problems present from step 0): {statistics.median(steps):.0f}")
    healthy = [r for r in results if cases[r["name"]].healthy]
    noisy = [r for r in healthy if r["found"]]
    print(f"healthy runs with a finding above info: {len(noisy)}/{len(healthy)}"
          + "".join(f"\n    {r['name']}: {r['found']}" for r in noisy))
    repairs = [r["repair"] for r in results if "repair" in r]
    if repairs:
        ratios = [x["time_ratio"] for x in repairs]
        print(f"repair success (within 2 points of the healthy twin's val accuracy): "
              f"{sum(x['success'] for x in repairs)}/{len(repairs)}; wall time repaired/healthy: median "
              f"{statistics.median(ratios):.2f}, {sum(x <= 1.5 for x in ratios)} of {len(ratios)} <= 1.5, "
              f"max {max(ratios):.2f}; in seconds, all repaired runs / all twins: "
              f"{sum(x['repaired_s'] for x in repairs) / sum(x['healthy_s'] for x in repairs):.2f}")


if __name__ == "__main__":
    main()
