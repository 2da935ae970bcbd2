"""docker/compose.yaml: valid for docker-compose, every mounted file in the repository, wired up."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from callcenter.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
SITE = {
    "POSTGRES_PASSWORD": "pg-pass",
    "AMI_SECRET": "ami-pass",
    "GRAFANA_ADMIN_PASSWORD": "gf-pass",
    "ASTERISK_EXTERNAL_ADDRESS": "192.168.1.10",
    **{f"AGENT_{n}_SECRET": f"agent-{n}" for n in range(1001, 1009)},
}
SERVICES = {"asterisk", "postgres", "prometheus", "grafana", "callcenter", "proxy"}


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.skip("docker-compose is not installed (bash scripts/system-deps.sh installs it)")
    return found


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs `docker-compose config` on the file with only ``env`` in the environment."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **env}
    return subprocess.run(
        [docker_compose(), "--project-directory", str(DOCKER), "-f", str(COMPOSE), "config"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The file as docker-compose resolves it (paths absolute, variables filled in)."""
    done = compose_config(SITE)
    assert done.returncode == 0, done.stderr
    # Debian's docker-compose is Python with PyYAML: its interpreter turns its YAML into JSON.
    interpreter = Path(docker_compose()).read_text().splitlines()[0].removeprefix("#!").split()
    to_json = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    out = subprocess.run(
        [*interpreter, "-c", to_json], input=done.stdout, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    loaded: dict[str, Any] = json.loads(out.stdout)
    return loaded


def test_a_missing_secret_is_named(config: dict[str, Any]) -> None:
    done = compose_config({k: v for k, v in SITE.items() if k != "AMI_SECRET"})
    assert done.returncode != 0 and "set AMI_SECRET" in done.stderr


def test_every_service_is_there_with_a_health_check(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped"
    depends = services["callcenter"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["asterisk"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_every_mounted_file_is_in_the_repository(config: dict[str, Any]) -> None:
    named = set(config.get("volumes", {}))
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source in named:
                continue
            path = Path(source)
            assert path.is_absolute() and path.exists(), f"{name} mounts {source}"
            assert ROOT in path.resolve().parents, f"{name} mounts {source} from outside"
        build = service.get("build")
        if build:
            context = Path(build["context"])
            assert (context / build["dockerfile"]).is_file()
            dockerfile = (context / build["dockerfile"]).read_text()
            for copy in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
                for source in copy.split()[:-1]:  # the last word is the destination
                    assert (context / source).exists(), f"{build['dockerfile']} copies {source}"


def test_the_service_gets_its_settings_and_secrets_from_the_deployment(
    config: dict[str, Any],
) -> None:
    service = config["services"]["callcenter"]
    env = service["environment"]
    [toml] = [v for v in service["volumes"] if v.split(":")[1] == env["CALLCENTER_CONFIG"]]
    settings = load_settings(toml.split(":")[0], env=env)
    assert settings.database_url == "postgresql://callcenter:pg-pass@postgres:5432/callcenter"
    assert settings.asterisk[0].secret == SITE["AMI_SECRET"]
    assert settings.asterisk[0].host in config["services"]
    # Not published: only the TLS proxy, on the internal network, reaches the service's port.
    assert "ports" not in service and [str(settings.http_port)] == service["expose"]
    proxy = config["services"]["proxy"]
    assert sorted(int(p["target"]) for p in proxy["ports"]) == [80, 443]
    caddyfile = (DOCKER / "caddy" / "Caddyfile").read_text()
    assert f"reverse_proxy callcenter:{settings.http_port}" in caddyfile
    assert "read_header" in caddyfile and "tls " in caddyfile
    prometheus = (DOCKER / "prometheus" / "prometheus.yml").read_text()
    assert f'"callcenter:{settings.http_port}"' in prometheus
    # The menu path the settings name is where the image puts the menu.
    assert "/etc/callcenter/menus/" in (DOCKER / "Dockerfile").read_text()
    assert settings.ivr_menu.startswith("/etc/callcenter/menus/")


def test_secrets_are_never_written_in_the_file() -> None:
    for line in COMPOSE.read_text().splitlines():
        match = re.match(r"\s*(\w*(SECRET|PASSWORD)\w*):\s*(.*)$", line)
        if match:
            assert match.group(3).startswith("${"), line


def test_network_addresses_agree_with_asterisk_conf(config: dict[str, Any]) -> None:
    [subnet] = [c["subnet"] for c in config["networks"]["callcenter"]["ipam"]["config"]]
    assert subnet == "172.28.0.0/24"
    conf = ROOT / "asterisk_conf"
    assert "permit = 172.28.0.0/255.255.255.0" in (conf / "manager.conf").read_text()
    assert "local_net = 172.28.0.0/24" in (conf / "pjsip.conf").read_text()
    rtp = (conf / "rtp.conf").read_text()
    start = int(re.search(r"rtpstart = (\d+)", rtp).group(1))  # type: ignore[union-attr]
    end = int(re.search(r"rtpend = (\d+)", rtp).group(1))  # type: ignore[union-attr]
    published = {
        int(p["published"])
        for p in config["services"]["asterisk"]["ports"]
        if p["protocol"] == "udp"
    }
    assert set(range(start, end + 1)) | {5060} == published
    # AMI, FastAGI and PostgreSQL are not published on the host.
    for service in config["services"].values():
        assert not {p["target"] for p in service.get("ports", [])} & {5038, 4573, 5432}


def test_images_run_as_unprivileged_users() -> None:
    for dockerfile in (DOCKER / "Dockerfile", DOCKER / "asterisk" / "Dockerfile"):
        final = dockerfile.read_text().split("\nFROM ")[-1]
        users = re.findall(r"^USER (\S+)", final, re.M)
        assert users and users[-1] not in ("root", "0"), dockerfile
        assert "HEALTHCHECK" in final
