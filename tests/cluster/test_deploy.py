"""The deployment files under deploy/: Kubernetes manifests checked against schemas written
from the Kubernetes API reference (the fields we rely on, with their types), plus the
cross-references between them; compose, nginx and the Dockerfile checked for structure
(no container engine here to build them). Every embedded tiergate config must load."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tiergate.config.loader import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV = {
    "OPENAI_API_KEY": "sk-test",
    "TIERGATE_REDIS_URL": "redis://redis:6379/0",
    "TIERGATE_DATABASE_URL": "postgresql://tiergate@postgres/tiergate",
}

_STR = {"type": "string", "minLength": 1}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
}
_PORT = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, _STR]}
_PROBE = {
    "type": "object",
    "required": ["httpGet"],
    "properties": {
        "httpGet": {
            "type": "object",
            "required": ["path", "port"],
            "properties": {"path": {"type": "string", "pattern": "^/"}, "port": _PORT},
        },
        "periodSeconds": {"type": "integer", "minimum": 1},
        "timeoutSeconds": {"type": "integer", "minimum": 1},
        "failureThreshold": {"type": "integer", "minimum": 1},
        "initialDelaySeconds": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
_CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "properties": {
        "name": _STR,
        "image": _STR,
        "args": {"type": "array", "items": {"type": "string"}},
        "command": {"type": "array", "items": {"type": "string"}},
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["containerPort"],
                "properties": {
                    "containerPort": {"type": "integer"},
                    "name": {"type": "string", "maxLength": 15},
                    "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                },
            },
        },
        "env": {
            "type": "array",
            "items": {"type": "object", "required": ["name"], "properties": {"name": _STR}},
        },
        "envFrom": {"type": "array"},
        "readinessProbe": _PROBE,
        "livenessProbe": _PROBE,
        "startupProbe": _PROBE,
        "lifecycle": {
            "type": "object",
            "properties": {
                "preStop": {
                    "type": "object",
                    "properties": {
                        "exec": {
                            "type": "object",
                            "required": ["command"],
                            "properties": {"command": {"type": "array", "minItems": 1}},
                        }
                    },
                }
            },
        },
        "resources": {
            "type": "object",
            "properties": {"requests": {"type": "object"}, "limits": {"type": "object"}},
        },
        "volumeMounts": {
            "type": "array",
            "items": {"type": "object", "required": ["name", "mountPath"]},
        },
        "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "securityContext": {"type": "object"},
    },
    "additionalProperties": False,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Deployment": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "apps/v1"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["selector", "template"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "selector": {
                        "type": "object",
                        "required": ["matchLabels"],
                        "properties": {"matchLabels": _LABELS},
                    },
                    "template": {
                        "type": "object",
                        "required": ["metadata", "spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["containers"],
                                "properties": {
                                    "containers": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": _CONTAINER,
                                    },
                                    "terminationGracePeriodSeconds": {"type": "integer"},
                                    "volumes": {
                                        "type": "array",
                                        "items": {"type": "object", "required": ["name"]},
                                    },
                                },
                            }
                        },
                    },
                },
            },
        },
    },
    "Service": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "v1"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["selector", "ports"],
                "properties": {
                    "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                    "selector": _LABELS,
                    "ports": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "properties": {"port": {"type": "integer"}, "targetPort": _PORT},
                        },
                    },
                },
            },
        },
    },
    "HorizontalPodAutoscaler": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "autoscaling/v2"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "maxReplicas"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["apiVersion", "kind", "name"],
                    },
                    "minReplicas": {"type": "integer", "minimum": 1},
                    "maxReplicas": {"type": "integer", "minimum": 1},
                    "metrics": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {
                                    "enum": [
                                        "Resource",
                                        "Pods",
                                        "Object",
                                        "External",
                                        "ContainerResource",
                                    ]
                                }
                            },
                        },
                    },
                },
            },
        },
    },
    "ConfigMap": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "data"],
        "properties": {
            "apiVersion": {"const": "v1"},
            "metadata": _META,
            "data": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Secret": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"const": "v1"},
            "metadata": _META,
            "type": {"type": "string"},
            "stringData": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Kustomization": {
        "type": "object",
        "required": ["apiVersion", "kind", "resources"],
        "properties": {"resources": {"type": "array", "items": {"type": "string"}}},
    },
}


def _manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_each_manifest_matches_its_api_schema(kind: str) -> None:
    manifests = _manifests()
    assert kind in manifests, f"no {kind} under deploy/k8s"
    jsonschema.validate(manifests[kind], SCHEMAS[kind])


def test_manifests_refer_to_each_other_and_to_the_gateway() -> None:
    m = _manifests()
    deployment, service, hpa = m["Deployment"], m["Service"], m["HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2  # one instance is not a cluster
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    port_names = {p["name"] for p in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in port_names
    # Shutdown fits the grace period: preStop sleep, then the drain of in-flight work.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    args = container["args"]
    drain = float(args[args.index("--drain-timeout") + 1])
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert float(pre_stop[1]) + drain < grace
    # Secrets, config and spool are wired to what the config expects.
    assert container["envFrom"][0]["secretRef"]["name"] == m["Secret"]["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {v["name"]: v["mountPath"] for v in container["volumeMounts"]}
    assert volumes["config"]["configMap"]["name"] == m["ConfigMap"]["metadata"]["name"]
    config = parse_config(m["ConfigMap"]["data"]["tiergate.yaml"], ENV)
    assert config.ledger.spool_dir == mounts["spool"]
    assert config.redis is not None and config.ledger.url.startswith("postgresql://")
    assert set(ENV) <= set(m["Secret"]["stringData"])
    listed = set(m["Kustomization"]["resources"])
    assert listed == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}


def test_compose_runs_three_gateways_behind_nginx_with_redis_and_postgres() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    gateways = sorted(name for name in services if name.startswith("gateway-"))
    assert len(gateways) == 3
    assert {"redis", "postgres", "nginx"} <= set(services)
    for name in gateways:
        gw = services[name]
        assert (DEPLOY / gw["build"]["context"] / gw["build"]["dockerfile"]).is_file()
        assert set(gw["depends_on"]) == {"redis", "postgres"}
        assert any(v.endswith(":/var/lib/tiergate/spool") for v in gw["volumes"])
        assert "health/ready" in " ".join(gw["healthcheck"]["test"])
    nginx_conf = (DEPLOY / "nginx.conf").read_text()
    upstreams = set(re.findall(r"server (gateway-\d):8080", nginx_conf))
    assert upstreams == set(gateways)
    assert "proxy_buffering off" in nginx_conf  # streams
    mount = services["nginx"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mount).resolve() == (DEPLOY / "nginx.conf").resolve()
    env = services[gateways[0]]["environment"]
    assert env["TIERGATE_REDIS_URL"].startswith("redis://redis:")
    assert "@postgres:" in env["TIERGATE_DATABASE_URL"]


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_builds_a_non_root_image_serving_the_gateway() -> None:
    instructions = _dockerfile()
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "VOLUME", "EXPOSE"}
    known |= {"HEALTHCHECK", "ENTRYPOINT", "CMD", "ARG", "LABEL"}
    assert {op for op, _ in instructions} <= known
    assert instructions[0][0] == "FROM"
    for op, arg in instructions:
        if op == "COPY" and "--from=" not in arg:
            *sources, _dest = shlex.split(arg)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    ops = dict(instructions)  # the last of each
    assert ops["USER"] not in ("root", "0")
    assert ops["EXPOSE"] == "8080"
    assert "/health/live" in ops["HEALTHCHECK"]
    assert '"tiergate", "serve"' in ops["ENTRYPOINT"]
    assert "/var/lib/tiergate/spool" in ops["VOLUME"]


def test_the_image_config_loads() -> None:
    config = load_config(DEPLOY / "tiergate.yaml", ENV)
    assert config.redis is not None and config.ledger.spool_dir == "/var/lib/tiergate/spool"
