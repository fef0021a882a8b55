"""Pod providers behind one interface (`PodProvider`, provider.py: create, terminate, report exits;
optionally adopt a previous worker's pods, find an attempt's pod by name, read its bill), chosen by
PIPELINE_POD_PROVIDER in pipeline/workers/handlers.py:
- local (local.py, local_pod.py): the GPU agent as a host process on this machine, with only the
  pod's environment; pods outlive a handlers restart and the next worker adopts them;
- runpod (runpod.py): RunPod pods over its REST API v2 (runpod_rest.py; its answers typed in
  runpod_models.py, its refusals in runpod_errors.py), priced from its catalog (runpod_prices.py)."""
