"""FR4.3.1's deployment package: a completed job's adapter with what a client needs to run it —
`adapters/` (the adapter and its tokenizer), `inference.py` (web/deployment/inference.py: base
model + adapter, the prompt as an argument, temperature and max tokens), `requirements.txt` (the
GPU agent's own pinned versions), `README.md` (set-up, usage, GPU needs, deployment options,
troubleshooting), `example_prompts.json` (ten prompts of the job's own training file, with the
responses it was trained towards), `training_summary.json` (job, configuration, final metrics) and
FR4.3.2's `api_server/` (web/deployment/api_server/: the HTTP API, Docker files and deploy guide).
Written as a ZIP file on disk: an adapter of a 70B model is hundreds of megabytes."""

from __future__ import annotations

import json
import tarfile
import zipfile
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.aggregates.training_job import TrainingJob
from domain.training_file import DatasetFormatError, load
from web.reports.metrics_export import safe_stem

INFERENCE = Path(__file__).parent / "inference.py"
API_SERVER = Path(__file__).parent / "api_server"  # FR4.3.2: copied into the package's api_server/
API_SERVER_FILES = ("app.py", "requirements.txt", "Dockerfile", "docker-compose.yml", "docker-compose.gpu.yml")
DOCKERIGNORE = ".venv\n**/__pycache__\n*.pyc\napi_server/.env\n"
# What inference.py needs, pinned as the GPU agent is (pyproject.toml's `agent` extra; a test keeps
# the two equal). bitsandbytes is only for --load-in-4bit on CUDA.
REQUIREMENTS = ("torch==2.13.0", "transformers==5.24.*", "peft==0.21.2", "accelerate>=1.10", "safetensors>=0.6",
                "tokenizers>=0.22", "bitsandbytes==0.50.2")
EXAMPLES = 10
BUNDLED_BASE = "base_model"  # gpu_agent/finalize.py's folder for a base without a hub id
SUPPORT = "your LoRA Pipeline team (the job's page names who trained it)"


def file_name(job: TrainingJob) -> str:
    """`{job_name}-deployment-package-{job_id}.zip`, the name made safe for a file system."""
    return f"{safe_stem(job.name)}-deployment-package-{job.id}.zip"


def conversations(training_file: bytes | None) -> tuple[Any, ...]:
    """The training file's conversations, JSON or JSON Lines (the catalog's own reader); none when
    the file is missing or not valid."""
    if training_file is None:
        return ()
    try:
        return load(training_file).conversations
    except DatasetFormatError:
        return ()


def example_prompts(convs: tuple[Any, ...], most: int = EXAMPLES) -> list[dict[str, Any]]:
    """Up to `most` prompts of the training file's conversations, one per conversation first, each
    with its system prompt, topic and the response the adapter was trained towards."""
    pairs = [(c, p) for c in convs for p in c.training_pairs]
    firsts = [(c, c.training_pairs[0]) for c in convs if c.training_pairs]
    chosen = firsts[:most]
    chosen += [pair for pair in pairs if pair not in chosen][:most - len(chosen)]
    return [{"prompt": p.user_input, "system_prompt": p.system_prompt, "topic": c.topic,
             "expected_response": p.target_response} for c, p in chosen]


def system_prompt(convs: tuple[Any, ...]) -> str | None:
    """The system prompt the training file uses most: the one the adapter answers best under."""
    found = Counter(p.system_prompt for c in convs for p in c.training_pairs if p.system_prompt)
    return found.most_common(1)[0][0] if found else None


def summary(job: TrainingJob, system: str | None, at: datetime) -> dict[str, Any]:
    config = job.configuration or {}
    return {"job_id": str(job.id), "name": job.name, "created_by": job.created_by, "client": job.client,
            "project": job.project, "training_file": job.file_name, "conversations": job.conversation_count,
            "training_pairs": job.pair_count, "preset": config.get("preset"),
            "hyperparameters": config.get("hyperparameters"), "gpu": config.get("gpu_type"),
            "final_metrics": job.final_metrics, "system_prompt": system, "packaged_at": at.isoformat()}


def readme(job: TrainingJob, base_model: str | None, examples: list[dict[str, Any]]) -> str:
    config = job.configuration or {}
    hyper = config.get("hyperparameters") or {}
    metrics = job.final_metrics or {}
    example = examples[0]["prompt"] if examples else "What are the benefits of a Roth IRA?"
    improvement = metrics.get("perplexity_improvement_percent")
    return f"""# {job.name}: deployment package

A LoRA adapter (rank {hyper.get("r", "?")}, {config.get("preset", "?")} preset) fine-tuned by LoRA Pipeline on
`{job.file_name}` ({job.conversation_count:,} conversations, {job.pair_count:,} training pairs), for the base
model {f"in `{BUNDLED_BASE}/` (bundled: it has no public id)" if base_model == BUNDLED_BASE
           else f"`{base_model or '(see adapters/adapter_config.json)'}`"}.{
f" On the validation set it lowers perplexity by {improvement:.0f}%." if isinstance(improvement, int | float) else ""}

## Contents
- `adapters/`: the adapter (`adapter_model.safetensors`, `adapter_config.json`) and its tokenizer
- `inference.py`: loads the base model and the adapter and answers one prompt
- `requirements.txt`: the library versions the GPU agent pins (bitsandbytes only matters for 4-bit on CUDA)
- `example_prompts.json`: {len(examples)} prompts from the training data, with the responses it was trained towards
- `training_summary.json`: the job, its configuration and final metrics
- `api_server/`: an HTTP API for the adapter (`app.py`: FastAPI, API keys, rate limits, streaming, and an
  OpenAI-compatible `/v1/chat/completions`), its `Dockerfile`, `docker-compose.yml` and `deploy_guide.md`

## Set-up
```sh
python -m venv .venv && . .venv/bin/activate
pip install -r requirements.txt
```
The base model must be reachable: a Hugging Face id you have access to (`huggingface-cli login`), or a
local copy given with `--base-model /path/to/model`.

## Usage
```sh
python inference.py "{example}"
python inference.py "Explain asset allocation" --max-tokens 400 --temperature 0.7
python inference.py "..." --load-in-4bit      # CUDA + bitsandbytes: about a quarter of the memory
python inference.py "..." --system "You are ..."   # another system prompt than the trained one
```

## GPU requirements
- Llama-3-70B in bf16 needs about 140 GB of GPU memory (2 × 80 GB GPUs, `device_map="auto"` spreads it);
  with `--load-in-4bit` about 40 GB (one A100/H100 80 GB, or 2 × 24 GB).
- An 8B base needs about 16 GB in bf16 (one A10G/L4), 6 GB in 4-bit.
- The adapter adds little: its size on disk, in memory.
- Speed: on one H100 a 70B model in 4-bit answers at roughly 10-20 tokens/s; an 8B at 60-100 tokens/s.
  The first call also loads the weights (minutes for 70B).

## Deployment options
- An HTTP API at once: `pip install -r api_server/requirements.txt && API_KEYS=change-me python api_server/app.py`,
  or `docker-compose up` in `api_server/`; any OpenAI client then calls it at `http://host:8000/v1`
  (`api_server/deploy_guide.md`: Docker, Kubernetes, AWS ECS, GCP Cloud Run, Azure, GPUs, many adapters on one base).
- Local or a GPU VM: this script, or merge the adapter into the base for a single model
  (`PeftModel.from_pretrained(base, "adapters").merge_and_unload().save_pretrained("merged")`).
- An API endpoint: serve base + adapter with vLLM (`--enable-lora --lora-modules {job.name.replace(" ", "_")}=adapters`)
  or Text Generation Inference (`LORA_ADAPTERS`), behind your own authentication.
- Cloud: any container service with GPUs (AWS ECS/EKS, GCP Cloud Run with GPUs or GKE, Azure Container Apps).

## Troubleshooting
- `CUDA out of memory`: use `--load-in-4bit`, a smaller `--max-tokens`, or more GPUs.
- `401` / `Repository Not Found` for the base model: log in to Hugging Face and accept the model's licence, or
  pass `--base-model` with a local copy.
- `size mismatch` loading the adapter: the base model is not the one the adapter was trained on.
- Answers in the wrong style: keep the trained system prompt (the default) and a temperature of 0.3-0.8.

## Support
Questions about this adapter: {SUPPORT}. Job `{job.id}`, trained by {job.created_by}.
"""


def build(job: TrainingJob, adapter_archive: Path, training_file: bytes | None, target: Path, at: datetime) -> Path:
    """Writes the package to `target` (a .zip) from the adapter archive (a tar with one folder)."""
    convs = conversations(training_file)
    system, examples = system_prompt(convs), example_prompts(convs)
    with tarfile.open(adapter_archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        adapter_config = next((m for m in members if Path(m.name).name == "adapter_config.json"), None)
        if adapter_config is None:
            raise ValueError("the adapter archive has no adapter_config.json")
        base_model = json.loads(tar.extractfile(adapter_config).read()).get("base_model_name_or_path")
        stamp = at.timetuple()[:6]
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as package:
            for member in members:
                name = packaged_name(member.name)
                if name is None:
                    continue  # the package's own, below
                with tar.extractfile(member) as source, package.open(entry(name, stamp),
                                                                     "w", force_zip64=True) as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
            files = {"inference.py": INFERENCE.read_text(), "requirements.txt": "\n".join(REQUIREMENTS) + "\n",
                     "README.md": readme(job, base_model, examples),
                     "example_prompts.json": json.dumps(examples, indent=2, ensure_ascii=False) + "\n",
                     "training_summary.json": json.dumps(summary(job, system, at), indent=2, default=_plain,
                                                         ensure_ascii=False) + "\n"}
            files |= api_server_files(job, base_model)
            for name, text in files.items():
                package.writestr(entry(name, stamp), text)
    return target


def api_server_files(job: TrainingJob, base_model: str | None) -> dict[str, str]:
    """FR4.3.2's `api_server/`: the FastAPI app, its pinned requirements, Dockerfile, compose files
    and the deploy guide (with this job's model id, base and rank filled in)."""
    files = {f"api_server/{name}": (API_SERVER / name).read_text() for name in API_SERVER_FILES}
    hyper = (job.configuration or {}).get("hyperparameters") or {}
    guide = (API_SERVER / "deploy_guide.md").read_text()
    for key, value in {"JOB_NAME": job.name, "JOB_ID": str(job.id), "JOB_ID_SHORT": str(job.id)[:8],
                       "MODEL_ID": model_id(job.name),
                       "BASE_MODEL": "bundled in `base_model/`" if base_model == BUNDLED_BASE
                       else f"`{base_model or 'see adapters/adapter_config.json'}`",
                       "RANK": str(hyper.get("r", "?"))}.items():
        guide = guide.replace("{{" + key + "}}", value)
    files["api_server/deploy_guide.md"] = guide
    files[".dockerignore"] = DOCKERIGNORE
    return files


def model_id(name: str) -> str:
    """The model's id in the API server's answers (api_server/app.py `slug`): `Advisor tone v3` → `advisor-tone-v3`."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "lora-adapter"


def packaged_name(member: str) -> str | None:
    """Where an archive member goes: the adapter's files in `adapters/`, a base model the agent
    bundled (a tiny base has no hub id) in `base_model/`; None for what the package writes itself."""
    parts = Path(member).parts[1:]  # below the archive's one folder
    if parts[:1] == (BUNDLED_BASE,) and len(parts) > 1:
        return "/".join(parts)
    name = Path(member).name
    return None if name in ("training_summary.json", "README.md") else f"adapters/{name}"


def entry(name: str, stamp: tuple[int, ...]) -> zipfile.ZipInfo:
    """A member with the package's time; compressed, but for weights (dense already)."""
    info = zipfile.ZipInfo(name, stamp)
    info.compress_type = zipfile.ZIP_STORED if name.endswith((".safetensors", ".bin")) else zipfile.ZIP_DEFLATED
    return info


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal | datetime) else repr(value)
