"""How many full passes over the data the default run makes (preprocessing and postprocessing; not the sorter).

The benchmark counts the frames that SpikeInterface reads from the raw SpikeGLX file and from the saved
preprocessed binary while spikeline's preprocess step (default settings: motion ``compute``) and postprocess step
(default extensions) run on a synthetic SpikeGLX session, in one process (``n_jobs=1``). It wraps the two reader
segments' ``get_traces`` with a counter (instrumentation only; the data and results are unchanged). Passes are
frames read divided by the recording's frames.

Usage::

    python benchmarks/passes.py [--duration-s 60] [--num-channels 64] [--output benchmarks/passes_results.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path


def count_reads(segment_class, counter: Counter, key: str) -> None:
    original = segment_class.get_traces

    def counted(self, start_frame=None, end_frame=None, channel_indices=None):
        start = 0 if start_frame is None else start_frame
        end = self.get_num_samples() if end_frame is None else end_frame
        counter[key] += max(0, end - start)
        return original(self, start_frame, end_frame, channel_indices)

    segment_class.get_traces = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--num-channels", type=int, default=64)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/passes_results.json"))
    args = parser.parse_args()

    import spikeinterface as si
    from spikeinterface.core.binaryrecordingextractor import BinaryRecordingSegment
    from spikeinterface.extractors.neoextractors.neobaseextractor import NeoRecordingSegment

    from spikeline.config import build_config
    from spikeline.layout import ResultsLayout
    from spikeline.pipeline import job_kwargs
    from spikeline.steps import StepContext, postprocess, preprocess
    from spikeline.steps.dispatch import plan_sessions, write_jobs
    from spikeline.synthetic import make_spikeglx_session

    counter: Counter = Counter()
    count_reads(NeoRecordingSegment, counter, "raw")
    count_reads(BinaryRecordingSegment, counter, "preprocessed binary")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        session = make_spikeglx_session(Path(tmp) / "data", num_channels=args.num_channels,
                                        duration_s=args.duration_s, num_units=20)
        config = build_config({"job": {"progress_bar": False, "n_jobs": 1}})
        layout = ResultsLayout(Path(tmp) / "results")
        (plan,) = plan_sessions(session.data_dir, config.dispatch)
        write_jobs(layout, session.data_dir, plan)
        stream = plan.jobs[0]["stream"]
        ctx = StepContext(stream=stream, layout=layout, config=config, job_kwargs=job_kwargs(config))
        num_frames = int(args.duration_s * 30000)
        # the ground truth stands in for the sorter's output (its generator properties dropped: only spikes)
        truth = si.load(session.ground_truth_dir / stream)
        spikes = truth.to_spike_vector()
        gt_folder = Path(tmp) / "sorting"
        si.NumpySorting.from_samples_and_labels([spikes["sample_index"]], [spikes["unit_index"]],
                                                truth.sampling_frequency).save(folder=gt_folder)
        for name, run in (
            ("preprocess", lambda: preprocess.run(ctx, {"job": layout.job_file(stream)},
                                                  layout.step_output("preprocess", stream))),
            ("postprocess", lambda: postprocess.run(ctx, {"preprocess": layout.step_output("preprocess", stream),
                                                          "sort": gt_folder},
                                                    layout.step_output("postprocess", stream))),
        ):
            counter.clear()
            t0 = time.perf_counter()
            run()
            rows.append({"step": name, "wall_s": round(time.perf_counter() - t0, 1),
                         **{f"passes_{k.replace(' ', '_')}": round(v / num_frames, 2) for k, v in counter.items()}})
            print(rows[-1], flush=True)
    print(f"\n{'step':<12} {'wall_s':>7}  passes over the data")
    for row in rows:
        passes = ", ".join(f"{k.removeprefix('passes_')}: {v}" for k, v in row.items() if k.startswith("passes_"))
        print(f"{row['step']:<12} {row['wall_s']:>7.1f}  {passes}")
    args.output.write_text(json.dumps({"duration_s": args.duration_s, "num_channels": args.num_channels,
                                       "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
