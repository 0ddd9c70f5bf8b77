"""Pipeline wall time per stage on this machine: a cold image build (no layer cache) and a cached one.

Two real runs on a fake-node control plane of its own and the Docker engine: the first release (cold:
`docker build --no-cache`, every wheel fetched and built again; no canary, nothing to compare with) and a
retrain released through the canary (cached build: only the model layer is new). The seconds come from
the run records (each stage's wall time); the JSON records the commit and the load average.

    python benchmarks/bench_pipeline.py --json benchmarks/results/bench_pipeline.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from shipml.timing import Measurement

TAG_PREFIX = "dev-pipeline-bench-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    from shipml.cluster.controlplane import down, up
    from shipml.pipeline.config import PipelineConfig
    from shipml.pipeline.run import run_pipeline

    measurement = Measurement()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    cluster = up(3, state_dir=scratch / "state", build=False)
    records = {}
    try:
        base = {"workdir": str(scratch / "work"), "tag_prefix": TAG_PREFIX, "cluster": "kubeconfig",
                "kubeconfig": str(cluster.kubeconfig), "context": cluster.context, "node_port": None,
                "rows": args.rows, "holdout_rows": args.rows}
        for name, more in (("cold build, first release", {"no_cache": True}),
                           ("cached build, canary release", {"rows": int(args.rows * 1.2)})):
            record = run_pipeline(PipelineConfig.load(None, **{**base, **more}))
            print(record.summary())
            build = record.stage("build")
            records[name] = {"status": record.status, "seconds": record.seconds(),
                             "total_seconds": round(sum(record.seconds().values()), 2),
                             "build_steps": build.detail["steps"], "cached_steps": build.detail["cached_steps"]}
    finally:
        down(state_dir=scratch / "state")
        _remove_images()
        shutil.rmtree(scratch, ignore_errors=True)
    result = measurement.write({"runs": records}, args.json)
    print(json.dumps(result, indent=2))


def _remove_images() -> None:
    from shipml.containers import remove_tags

    remove_tags("shipml-serving", TAG_PREFIX)


if __name__ == "__main__":
    main()
