"""python3 kfp_local_compare.py DIR runs each pipeline of kfp_pipelines.py
with kfp.local (SubprocessRunner, no venv) under DIR and prints, as one
JSON object, each pipeline's final state and its outputs (JSON values)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kfp import local  # noqa: E402

import kfp_pipelines  # noqa: E402

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1], raise_on_error=True)
results = {}
for name, pipeline in kfp_pipelines.PIPELINES.items():
    try:
        task = pipeline()
    except Exception as e:  # kfp.local raises on a failed task
        results[name] = {'state': 'FAILED', 'error': str(e)[:300]}
        continue
    outputs = {}
    for key, value in task.outputs.items():
        outputs[key] = value if isinstance(value, (str, int, float, bool, list, dict)) or value is None else repr(value)
    results[name] = {'state': 'SUCCEEDED', 'outputs': outputs}
print('RESULTS ' + json.dumps(results, sort_keys=True))
