"""FR4.3.1's deployment package: from a real adapter (a tiny Llama base saved locally, LoRA by
peft), the ZIP holds the spec's files, and its inference.py answers a prompt when run as a client
would run it; the package downloads from a completed job's page."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from domain.applications import BudgetPolicy, Pipeline
from tests.factories import queue_sample_job
from tests.integration.test_web_job_detail import add_job, ago, run, training
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture
from web.deployment.package import REQUIREMENTS, build, conversations, example_prompts, file_name

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "financial-advisory.json"
AT = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def tiny_adapter(tmp: Path) -> Path:
    """A saved tiny base model (with its tokenizer) and a LoRA adapter on it, packed as the agent
    packs one: a tar with one folder `adapter/`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from gpu_agent.config import JobSpec
    from gpu_agent.model import build_tokenizer

    texts = [p["user_input"] + " " + p["target_response"] for c in json.loads(SAMPLE.read_text())["conversations"][:40]
             for p in c["training_pairs"]]
    tokenizer = build_tokenizer(JobSpec(training_file=None, hyperparameters={}), texts)  # type: ignore[arg-type]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    base_dir, adapter_dir = tmp / "base", tmp / "adapter"
    LlamaForCausalLM(config).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    (adapter_dir / "training_summary.json").write_text('{"final_loss": 0.3}')
    archive = tmp / "adapter.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(adapter_dir, arcname="adapter")
    return archive


def test_the_package_has_the_spec_files_and_its_inference_script_answers_a_prompt(tmp_path: Path) -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))
    job = app.get_job(queue_sample_job(app, name="Advisor tone v3 / final"))
    target = build(job, tiny_adapter(tmp_path), SAMPLE.read_bytes(), tmp_path / file_name(job), AT)
    assert target.name == f"Advisor-tone-v3-final-deployment-package-{job.id}.zip"
    package = zipfile.ZipFile(target)
    names = set(package.namelist())
    assert {"adapters/adapter_model.safetensors", "adapters/adapter_config.json", "adapters/tokenizer.json",
            "inference.py", "requirements.txt", "README.md", "example_prompts.json",
            "training_summary.json"} <= names
    assert "adapters/training_summary.json" not in names  # the package's own summary, at the top
    examples = json.loads(package.read("example_prompts.json"))
    sample = json.loads(SAMPLE.read_text())["conversations"]
    assert len(examples) == 10 and examples[0]["prompt"] == sample[0]["training_pairs"][0]["user_input"]
    assert len({e["prompt"] for e in examples}) == 10 and all(e["expected_response"] for e in examples)
    summary = json.loads(package.read("training_summary.json"))
    assert summary["job_id"] == str(job.id) and summary["system_prompt"] and summary["preset"] == "balanced"
    readme = package.read("README.md").decode()
    for part in ("## Set-up", "pip install -r requirements.txt", f'python inference.py "{examples[0]["prompt"]}"',
                 "## GPU requirements", "## Deployment options", "## Troubleshooting", str(job.id)):
        assert part in readme, part
    extracted = tmp_path / "unzipped"
    package.extractall(extracted)
    answer = subprocess.run([sys.executable, "inference.py", "What are the benefits of a Roth IRA?",
                             "--max-tokens", "8", "--temperature", "0"], cwd=extracted, capture_output=True,
                            text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert answer.stdout.strip(), "the script printed no answer"
    sampled = subprocess.run([sys.executable, "inference.py", "Hello", "--max-tokens", "0"], cwd=extracted,
                             capture_output=True, text=True, timeout=300)
    assert sampled.returncode == 2 and "--max-tokens must be at least 1" in sampled.stderr


def test_the_requirements_are_the_gpu_agents_own_pins_and_prompts_come_from_the_training_file() -> None:
    agent = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["agent"]
    assert set(REQUIREMENTS) == set(agent)
    assert example_prompts(conversations(None)) == [] and example_prompts(conversations(b"not json")) == []
    sample = json.loads(SAMPLE.read_text())
    two = conversations(json.dumps(sample | {"conversations": sample["conversations"][:2]}).encode())
    first, second = (c["training_pairs"] for c in sample["conversations"][:2])
    rest = [p["user_input"] for p in first[1:] + second[1:]]  # then the others, in file order
    assert [e["prompt"] for e in example_prompts(two, most=4)] == [
        first[0]["user_input"], second[0]["user_input"], *rest[:2]]  # each conversation's first, first
    lines = "\n".join(json.dumps(c) for c in sample["conversations"]).encode()  # JSON Lines, no header
    assert example_prompts(conversations(lines)) == example_prompts(conversations(SAMPLE.read_bytes()))
    assert len(example_prompts(conversations(lines))) == 10


def test_a_completed_job_downloads_its_deployment_package(web: WebRig, tmp_path: Path) -> None:
    archive = tiny_adapter(tmp_path)
    job = add_job(web, name="Packaged advisor")
    training(web, job)
    ref = web.store_adapter(job, archive.read_bytes())
    run(web, job, lambda j: j.complete(ref, {"final_loss": 0.31}, 1, ago(0)))
    web.project()
    assert f'href="/jobs/{job}/deployment-package"' in web.client("alice").get(f"/jobs/{job}",
                                                                            headers={"Accept": "text/html"}).text
    answer = web.client("alice").get(f"/jobs/{job}/deployment-package")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="Packaged-advisor-deployment-package-{job}.zip"')
    package = zipfile.ZipFile(io.BytesIO(answer.content))
    assert "inference.py" in package.namelist() and "adapters/adapter_model.safetensors" in package.namelist()
    assert json.loads(package.read("training_summary.json"))["job_id"] == str(job)
    kinds = [s.topic for s in web.store.app.recorder.select_events(job)]
    assert kinds.count("TrainingJob.MetricsExported") == 1  # recorded for the audit trail
    # FR4.3.1 "Generate signed URL, valid 48 hours": anyone with the link, no sign-in, 48 hours; made
    # by the job's creator or a manager (it carries training prompts), not by any member.
    other = web.form("carol", f"/jobs/{job}/deployment-package/share", {}, headers={"Accept": "text/html"})
    assert other.status_code == 403 and "Only the job&#39;s creator, a manager or an admin" in other.text
    shared = web.form("bob", f"/jobs/{job}/deployment-package/share", {}, headers={"Accept": "text/html"})
    assert shared.status_code == 200 and "(48 hours)" in shared.text
    link = re.search(r'value="([^"]+)" id="share-url"', shared.text).group(1)
    path = link.removeprefix(web.settings.web.public_base_url)
    assert path.startswith("/shared/packages/")
    public = web.client(None).get(path)
    assert public.status_code == 200 and "inference.py" in zipfile.ZipFile(io.BytesIO(public.content)).namelist()
    report_path = path.replace("/shared/packages/", "/shared/reports/")  # a package link opens no report
    assert web.client(None).get(report_path, headers={"Accept": "text/html"}).status_code == 403
    from web import share_links

    secret = web.settings.notifications.approval_secret.get_secret_value()
    old, _ = share_links.share(share_links.PACKAGE, job, "bob", secret, datetime(2026, 1, 1, tzinfo=timezone.utc))
    expired = web.client(None).get(f"/shared/packages/{old}", headers={"Accept": "text/html"})
    assert expired.status_code == 410 and "This deployment package link expired on 2026-01-03" in expired.text
    kinds = [s.topic for s in web.store.app.recorder.select_events(job)]
    assert kinds.count("TrainingJob.MetricsExported") == 2  # the download and the link; not the public fetch
    running = add_job(web, name="Not yet")
    training(web, running)
    refused = web.client("alice").get(f"/jobs/{running}/deployment-package", headers={"Accept": "text/html"})
    assert refused.status_code == 404 and "no adapter" in refused.text.lower()
