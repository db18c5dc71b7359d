"""The deployment examples (deploy/) cannot run here: no Docker, no cluster. What can be
checked is: they parse, every command they run is one launch.py accepts, every variable
they set is one the studio reads, and each worker may drain before it is killed."""
from __future__ import annotations

import re

import pytest
import yaml

from launch import parse_args
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
SOURCES = [ROOT / "launch.py", *(path for folder in ("tasks", "ui", "pipelines")
                                  for path in (ROOT / folder).rglob("*.py"))]
CODE = "\n".join(path.read_text() for path in SOURCES)


def containers() -> list[dict]:
    """Every container: its name, command, environment (name -> value), the seconds it is
    given to stop, and its preStop command (Kubernetes)."""
    found = []
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        grace = service.get("stop_grace_period", "10s")
        found.append({"name": f"compose {name}", "command": service.get("command", []),
                      "env": dict(service.get("environment", {})), "grace": int(grace.rstrip("s")), "prestop": None})
    for document in yaml.safe_load_all((DEPLOY / "kubernetes" / "studio.yaml").read_text()):
        if document["kind"] != "Deployment":
            continue
        spec = document["spec"]["template"]["spec"]
        for container in spec["containers"]:
            prestop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
            found.append({"name": f"kubernetes {document['metadata']['name']}", "command": container["command"],
                          "env": {e["name"]: e.get("value") for e in container.get("env", [])},
                          "grace": spec.get("terminationGracePeriodSeconds", 30), "prestop": prestop})
    return found


@pytest.mark.parametrize("container", containers(), ids=lambda c: c["name"])
def test_each_command_is_one_launch_py_accepts(container):
    command = container["command"]
    if "launch.py" in command:
        parse_args(command[command.index("launch.py") + 1:])  # exits on an unknown flag
    else:
        assert command[:3] in (["celery", "-A", "tasks.worker"], ["valkey-server", "--appendonly", "yes"]), command


def test_every_variable_they_set_is_one_the_studio_reads():
    texts = [(DEPLOY / name).read_text() for name in ("compose.yaml", "Dockerfile", "kubernetes/studio.yaml")]
    named = {env for container in containers() for env in container["env"]}
    named |= {name for text in texts for name in re.findall(r"--from-literal=([A-Z_]+)=", text)}
    named |= {name for line in texts[1].splitlines() if line.startswith("ENV ")
              for name in re.findall(r"([A-Z_]+)=", line)}
    assert {"REDIS_URL", "STUDIO_API_TOKEN", "STUDIO_METRICS_TOKEN", "STUDIO_DRAIN_SECONDS"} <= named
    unread = sorted(name for name in named if f'"{name}"' not in CODE)
    assert not unread, f"set in deploy/ but read nowhere: {unread}"


def test_workers_get_time_to_drain_before_they_are_killed():
    workers = [c for c in containers() if "--worker-only" in c["command"]]
    assert len(workers) == 4  # cpu and gpu, in each example
    for worker in workers:
        assert worker["grace"] >= float(worker["env"]["STUDIO_DRAIN_SECONDS"]) + 10, worker["name"]
        if worker["name"].startswith("kubernetes"):  # launch.py is PID 1: TERM starts the drain, then wait for it
            assert "kill -TERM 1" in worker["prestop"][-1] and "kill -0 1" in worker["prestop"][-1]
