"""compose.yaml and k8s/ proven without Docker or a cluster: the manifests validate against
the Kubernetes schemas, their settings are ones Lyre reads, and every command they run starts
here against the local services and passes its own healthcheck."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from shared.infra.settings import Settings
from shared.speech.vllm_backend import VLLM_VERSION
from workers.farm_processes import free_port, processes

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("cpu", "gpu")
K8S_VERSION = "1.32.0"
NOT_LYRE = {"HF_HOME"}  # read by huggingface_hub, for the model cache
DEPLOYMENT_MUST_SET = {  # defaults that only fit one developer machine
    "LYRE_DATABASE__URL",
    "LYRE_REDIS__URL",
    "LYRE_STORAGE__ENDPOINT_URL",
    "LYRE_STORAGE__ACCESS_KEY_ID",
    "LYRE_STORAGE__SECRET_ACCESS_KEY",
    "LYRE_FLOWER__BASIC_AUTH",
}


def render(overlay: str) -> list[dict]:
    """kustomize's output for an overlay, as kubectl renders it."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def lyre_services() -> dict[str, dict]:
    return {
        n: s for n, s in compose()["services"].items() if str(s.get("image", "")).startswith("lyre")
    }


def containers(docs: list[dict]) -> list[tuple[str, dict]]:
    found = []
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        found += [(doc["metadata"]["name"], c) for c in spec.get("containers", [])]
    return found


def setting_names(model: type[BaseModel] = Settings, prefix: str = "LYRE_") -> dict[str, bool]:
    """Every environment variable the settings read, and whether it is required."""
    names = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names.update(setting_names(kind, f"{prefix}{name.upper()}__"))
        else:
            names[f"{prefix}{name.upper()}"] = field.is_required()
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_validates_against_the_kubernetes_schemas(overlay):
    docs = render(overlay)
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "PersistentVolumeClaim",
    } <= kinds
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against the Deployments below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"].get("namespace", "lyre") == "lyre"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_every_worker_on_its_queue_and_priority_lists(overlay):
    """The cpu, stitch and webhook workers on their Redis queues (every priority list); the
    gpu workers on Postgres (their queue holds only the dispatcher's window)."""
    docs = render(overlay)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    queues = {
        "lyre-gpu-worker": "gpu",
        "lyre-cpu-worker": "cpu",
        "lyre-stitch-worker": "stitch",
        "lyre-webhook-worker": "webhooks",
    }
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} == set(queues)
    for obj in scaled:
        target = obj["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        command = deployments[target]["spec"]["template"]["spec"]["containers"][0]["command"]
        queue = queues[target]
        assert command[command.index("-Q") + 1] == queue
        if queue == "gpu":
            assert [t["type"] for t in obj["spec"]["triggers"]] == ["postgresql"]
            continue
        lists = {t["metadata"]["listName"] for t in obj["spec"]["triggers"]}
        assert lists == {queue} | {f"{queue}\x06\x16{p}" for p in (3, 6, 9)}


def gpu_trigger(docs: list[dict]) -> tuple[dict, str]:
    """The gpu workers' KEDA trigger, and the connection string its TriggerAuthentication
    points KEDA at."""
    (obj,) = [d for d in docs if d["kind"] == "ScaledObject" and "gpu" in d["metadata"]["name"]]
    (trigger,) = obj["spec"]["triggers"]
    (auth,) = [
        d
        for d in docs
        if d["kind"] == "TriggerAuthentication"
        and d["metadata"]["name"] == trigger["authenticationRef"]["name"]
    ]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "connection"  # the postgresql scaler's full connection string
    (secret,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"]]
    return trigger, secret["stringData"][ref["key"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gpu_trigger_counts_the_chunks_waiting_in_postgres(overlay, farm_settings):
    """KEDA's query, run here against the migrated schema: it counts the chunks of active jobs
    that no gpu worker has taken (in Postgres or on the queue), and nothing else."""
    from sqlalchemy import text, update

    from api.schemas import JobCreate
    from api.services.jobs import submit
    from shared.farm.dispatch import dispatch
    from shared.farm.jobs import fail_job
    from shared.farm.tenants import create_key
    from shared.infra.db import session_scope
    from shared.infra.models import Chunk
    from tests.burst import BurstFarm

    trigger, connection = gpu_trigger(render(overlay))
    assert connection.startswith("postgresql://") and "+" not in connection.split(":")[0]
    assert float(trigger["metadata"]["targetQueryValue"]) > 0
    query = text(trigger["metadata"]["query"])
    burst = BurstFarm(farm_settings)
    try:
        with session_scope() as session:
            tenant, _ = create_key(session, "acme")
        body = "\n\n".join(f"Sentence {chr(65 + i)} is a chunk of its own here." for i in range(10))
        waiting = submit(burst.farm, tenant, JobCreate(text=body), None)
        failed = submit(burst.farm, tenant, JobCreate(text=body), None)
        fail_job(burst.farm, failed.id, "for the test")
        dispatch(burst.farm, slots=2)  # four sent, on the queue: still waiting for a GPU
        with session_scope() as session:
            assert session.scalar(query) == 10
            session.execute(
                update(Chunk)
                .where(Chunk.job_id == waiting.id, Chunk.index < 3)
                .values(taken_at=Chunk.sent_at)
            )
            assert session.scalar(query) == 7  # three in an engine
    finally:
        burst.close()


def test_gpu_overlay_asks_for_as_many_gpus_as_the_tensor_parallel_size():
    docs = render("gpu")
    (gpu,) = [c for name, c in containers(docs) if name == "lyre-gpu-worker"]
    env = {e["name"]: e["value"] for e in gpu["env"]}
    assert int(gpu["resources"]["limits"]["nvidia.com/gpu"]) == int(
        env["LYRE_ORPHEUS__TENSOR_PARALLEL_SIZE"]
    )
    assert env["LYRE_ORPHEUS__BACKEND"] == "vllm"
    assert gpu["image"].endswith(f":cuda-vllm{VLLM_VERSION}")
    spec = next(d for d in docs if d["metadata"]["name"] == "lyre-gpu-worker")["spec"]
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 120
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod["volumes"])
    assert gpu["startupProbe"]["failureThreshold"] * gpu["startupProbe"]["periodSeconds"] >= 600
    beat = next(d for d in docs if d["metadata"]["name"] == "lyre-beat")
    assert beat["spec"]["replicas"] == 1


def test_one_vllm_version_everywhere():
    """pyproject's gpu extra, the adapter's own constant, the image and both deployments."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extra["optional-dependencies"]["gpu"] == [f"vllm=={VLLM_VERSION}"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^ARG VLLM_VERSION=(\S+)$", dockerfile, re.M) == [VLLM_VERSION]
    gpu = compose()["services"]["gpu-worker"]
    assert gpu["build"]["args"]["VLLM_VERSION"] == VLLM_VERSION
    assert gpu["image"] == f"lyre:cuda-vllm{VLLM_VERSION}"


def test_a_vllm_gpu_worker_runs_a_thread_per_sequence_and_an_eighth_more():
    """The gpu worker's --concurrency is its chunks in flight: where the engine is vLLM, the
    engine's max_num_seqs and an eighth more (bench/batching.py: 72 threads keep 99 % of 64
    sequences busy; exactly 64 leave the batch short while threads fetch their next chunk)."""
    (k8s,) = [c for name, c in containers(render("gpu")) if name == "lyre-gpu-worker"]
    service = compose()["services"]["gpu-worker"]
    workers = [
        (k8s["command"], {e["name"]: e["value"] for e in k8s["env"]}),
        (service["command"], service["environment"]),
    ]
    for command, env in workers:
        assert env["LYRE_ORPHEUS__BACKEND"] == "vllm"
        sequences = int(env.get("LYRE_ORPHEUS__MAX_NUM_SEQS", Settings().orpheus.max_num_seqs))
        threads = int(command[command.index("--concurrency") + 1])
        assert threads == sequences + sequences // 8


def deployed_environment() -> dict[str, set[str]]:
    """Every variable compose.yaml and k8s/ set, with where it is set."""
    where: dict[str, set[str]] = {}
    for name, service in lyre_services().items():
        for var in service.get("environment", {}):
            where.setdefault(var, set()).add(f"compose:{name}")
    for overlay in OVERLAYS:
        docs = render(overlay)
        referenced = {  # the ConfigMaps and Secrets whose keys are pods' environment
            ref.get("configMapRef", ref.get("secretRef", {})).get("name")
            for _, container in containers(docs)
            for ref in container.get("envFrom", [])
        }
        for doc in docs:
            data = {**doc.get("data", {}), **doc.get("stringData", {})}
            if doc["kind"] in ("ConfigMap", "Secret") and doc["metadata"]["name"] in referenced:
                for var in data:
                    where.setdefault(var, set()).add(f"k8s/{overlay}:{doc['metadata']['name']}")
        for name, container in containers(docs):
            for var in container.get("env", []):
                where.setdefault(var["name"], set()).add(f"k8s/{overlay}:{name}")
    return where


def test_the_native_farm_probes_each_process_with_its_compose_healthcheck():
    """The supervisor's liveness probes (workers/liveness.py) are compose's healthchecks."""
    services = lyre_services()
    native = processes(api_port=8000, s3_port=9000, flower_port=5555)
    assert {p.name for p in native} - set(services) == {"s3"}  # moto's S3 stands in for MinIO
    for process in native:
        assert process.liveness is not None, process.name
        if process.name in services:
            health = services[process.name]["healthcheck"]["test"]
            assert ["CMD", "python", *process.liveness.command[1:]] == health, process.name


def test_every_deployed_variable_is_a_setting_and_required_ones_are_set():
    known = setting_names()
    where = deployed_environment()
    unknown = {v: sorted(w) for v, w in where.items() if v not in known and v not in NOT_LYRE}
    assert unknown == {}, "set in compose.yaml or k8s/ but read by nothing"
    required = {name for name, needed in known.items() if needed} | DEPLOYMENT_MUST_SET
    compose_env = lyre_services()["api"]["environment"]
    assert required <= set(compose_env)
    for overlay in OVERLAYS:
        configured = {
            v for v, w in where.items() if any(p.startswith(f"k8s/{overlay}:lyre-") for p in w)
        }
        assert required <= configured, overlay


# --- the commands, run here ---------------------------------------------------------------------


def deployed_commands() -> dict[str, tuple[list[str], list[str] | None]]:
    """Distinct (command, healthcheck) pairs of compose.yaml and both k8s overlays."""
    found: dict[str, tuple[list[str], list[str] | None]] = {}
    for name, service in lyre_services().items():
        health = service.get("healthcheck", {}).get("test")
        found[f"compose:{name}"] = (service["command"], health[1:] if health else None)
    for overlay in OVERLAYS:
        for name, container in containers(render(overlay)):
            probe = (
                container.get("startupProbe")
                or container.get("livenessProbe")
                or container.get("readinessProbe")
                or {}
            )
            health = probe.get("exec", {}).get("command")
            if "httpGet" in probe:
                port = {p["name"]: p["containerPort"] for p in container["ports"]}[
                    probe["httpGet"]["port"]
                ]
                health = [
                    "python",
                    "-m",
                    "workers.healthcheck",
                    "http",
                    f"http://127.0.0.1:{port}{probe['httpGet']['path']}",
                ]
            found[f"k8s/{overlay}:{name}"] = (container["command"], health)
    unique: dict[str, tuple[list[str], list[str] | None]] = {}
    for label, pair in found.items():
        if pair not in unique.values():
            unique[label] = pair
    return unique


def natively(argv: list[str], ports: dict[int, int]) -> list[str]:
    """The container's argv on this machine: the venv's executables, loopback, free ports."""
    out = []
    for arg in argv:
        arg = "127.0.0.1" if arg == "0.0.0.0" else arg
        for old, new in ports.items():
            arg = (
                re.sub(rf"(?<=[:/]){old}(?=\b)", str(new), arg)
                if ":" in arg
                else (str(new) if arg == str(old) else arg)
            )
        out.append(arg)
    executable = Path(sys.executable).parent / out[0]
    return [str(executable) if executable.exists() else out[0], *out[1:]]


QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


@pytest.mark.slow
def test_every_deployed_command_starts_here_and_passes_its_healthcheck(
    farm_settings, farm_env, orpheus_env, tmp_path
):
    commands = deployed_commands()
    assert {
        "compose:migrate",
        "compose:api",
        "compose:gpu-worker",
        "compose:cpu-worker",
        "compose:stitch-worker",
        "compose:webhook-worker",
        "compose:beat",
        "compose:dispatcher",
        "compose:flower",
    } <= set(commands)
    ports = {8000: free_port(), 5555: free_port()}
    env = {
        **os.environ,
        **farm_env,
        **orpheus_env,
        "LYRE_FLOWER__PORT": str(ports[5555]),
        "LYRE_FLOWER__BASIC_AUTH": "ops:s3cret",
        "LYRE_ENGINE": "espeak",
        "LYRE_FLOWER__ADDRESS": "127.0.0.1",
        "PATH": f"{Path(sys.executable).parent}:" + os.environ["PATH"],
    }
    migrate, _ = commands.pop("compose:migrate")
    subprocess.run(natively(migrate, ports), env=env, check=True, timeout=120)
    children = {}
    try:
        for label, (argv, _) in commands.items():
            with (tmp_path / f"{label.replace('/', '_')}.log").open("ab") as log:
                children[label] = subprocess.Popen(
                    natively(argv, ports),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        pending = {label: h for label, (_, h) in commands.items() if h}
        deadline = time.monotonic() + 240
        while pending and time.monotonic() < deadline:
            checks = {  # every pending healthcheck at once, as the orchestrators run them
                label: subprocess.Popen(natively(health, ports), env=env, **QUIET)
                for label, health in pending.items()
            }
            for label, check in checks.items():
                assert children[label].poll() is None, f"{label} exited"
                if check.wait(timeout=60) == 0:
                    del pending[label]
            time.sleep(1)
        assert pending == {}, f"never healthy: {sorted(pending)}"
    finally:
        for child in children.values():
            os.killpg(child.pid, signal.SIGTERM)
        for child in children.values():
            child.wait(timeout=120)
