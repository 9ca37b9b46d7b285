#!/usr/bin/env python3
"""Check the manifests that `helm template helm/seismo` renders for rules
that schema validation cannot see.

The rules cover the security settings every pod must have, probes on the
admin port, gRPC listen addresses, references between objects (Service
selectors and target ports, HPA and PDB targets, Secret keys, the
ServiceMonitor selector) and the metric definitions in the ConfigMap.
With --services-dir, each variable a container sets must also be declared
by an argument of its service.

Usage: check_manifests.py RENDERED.yaml [--metrics-file FILE]
       [--services-dir DIR] [--external-secret NAME ...]

Exits 1 and prints one line per violation when any rule fails.
"""

import argparse
import pathlib
import re
import sys
from urllib.parse import urlparse

import yaml

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
# Components that must run as exactly one pod, because the detector keeps its
# state in memory and two notifiers would send every alert twice.
SINGLE_REPLICA_COMPONENTS = ("detector", "notifier")
# Variables the services read without a clap `env = "..."` declaration.
# tracing's EnvFilter reads RUST_LOG; the OpenTelemetry SDK reads the OTEL_ ones.
UNDECLARED_VARIABLES = {"RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}
# Crates whose clap arguments every service shares.
SHARED_CRATES = ("telemetry",)


def selector_matches(selector, labels):
    """Return True if a Kubernetes LabelSelector (matchLabels and
    matchExpressions) selects an object with these labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(operator)
        if not matched:
            return False
    return True


def declared_variables(services_dir, crate):
    """Environment variables that clap arguments in the crate's sources (and
    the shared crates') declare with `env = "NAME"`."""
    names = set(UNDECLARED_VARIABLES)
    for name in (crate, *SHARED_CRATES):
        for source in (pathlib.Path(services_dir) / name / "src").rglob("*.rs"):
            names.update(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', source.read_text(encoding="utf-8")))
    return names


class Checker:
    def __init__(self, objects, external_secrets, services_dir):
        self.objects = objects
        self.external_secrets = set(external_secrets)
        self.services_dir = services_dir
        self.failures = []

    def fail(self, obj, message):
        self.failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {message}")

    def of_kind(self, kind):
        return [obj for obj in self.objects if obj["kind"] == kind]

    def find(self, kind, name):
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def deployments_selected_by(self, selector):
        """Deployments whose pod labels contain every selector label."""
        matched = []
        for deployment in self.of_kind("Deployment"):
            pod_labels = deployment["spec"]["template"]["metadata"].get("labels", {})
            if selector and all(pod_labels.get(k) == v for k, v in selector.items()):
                matched.append(deployment)
        return matched

    def check_labels(self):
        for obj in self.objects:
            labels = obj["metadata"].get("labels", {})
            for label in STANDARD_LABELS:
                if label not in labels:
                    self.fail(obj, f"missing label {label}")

    def check_deployment(self, deployment):
        spec = deployment["spec"]
        pod_meta = spec["template"]["metadata"]
        pod = spec["template"]["spec"]
        component = deployment["metadata"]["labels"].get("app.kubernetes.io/component")

        selector = spec["selector"]["matchLabels"]
        pod_labels = pod_meta.get("labels", {})
        if any(pod_labels.get(k) != v for k, v in selector.items()):
            self.fail(deployment, f"selector {selector} does not match the pod labels {pod_labels}")
        if component is None:
            self.fail(deployment, "missing label app.kubernetes.io/component")

        if component in SINGLE_REPLICA_COMPONENTS:
            if spec.get("replicas") != 1:
                self.fail(deployment, f"replicas is {spec.get('replicas')}, expected 1")
            if spec.get("strategy", {}).get("type") != "Recreate":
                self.fail(deployment, "strategy is not Recreate, so an update would run two pods at once")

        pod_security = pod.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            self.fail(deployment, "pod securityContext.runAsNonRoot is not true")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            self.fail(deployment, "pod seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            self.fail(deployment, "automountServiceAccountToken is not false")

        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for container in pod["containers"]:
            self.check_container(deployment, container, volumes)

    def check_container(self, deployment, container, volumes):
        name = container["name"]
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            self.fail(deployment, f"container {name}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            self.fail(deployment, f"container {name}: readOnlyRootFilesystem is not true")
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            self.fail(deployment, f"container {name}: capabilities.drop lacks ALL")

        resources = container.get("resources", {})
        for kind, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            if key not in resources.get(kind, {}):
                self.fail(deployment, f"container {name}: resources.{kind}.{key} is missing")

        tmp_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        if len(tmp_mounts) != 1:
            self.fail(deployment, f"container {name}: /tmp is mounted {len(tmp_mounts)} times, expected once")
        elif "emptyDir" not in volumes.get(tmp_mounts[0]["name"], {}):
            self.fail(deployment, f"container {name}: /tmp is not an emptyDir volume")
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                self.fail(deployment, f"container {name}: volumeMount {mount['name']} has no volume")

        ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        if "admin" not in ports:
            self.fail(deployment, f"container {name}: no port named admin")
        for probe_name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http_get = container.get(probe_name, {}).get("httpGet")
            if http_get is None:
                self.fail(deployment, f"container {name}: {probe_name} has no httpGet")
                continue
            if http_get.get("path") != path:
                self.fail(deployment, f"container {name}: {probe_name} path is {http_get.get('path')}, expected {path}")
            if http_get.get("port") not in ("admin", ports.get("admin")):
                self.fail(deployment, f"container {name}: {probe_name} port {http_get.get('port')} is not the admin port")

        self.check_env(deployment, container, ports)

    def check_env(self, deployment, container, ports):
        name = container["name"]
        env = container.get("env", [])
        names = [variable["name"] for variable in env]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.fail(deployment, f"container {name}: environment variables set twice: {duplicates}")

        values = {variable["name"]: variable.get("value") for variable in env}
        admin_listen = [n for n in names if n.endswith("_ADMIN_LISTEN")]
        if len(admin_listen) != 1:
            self.fail(deployment, f"container {name}: expected one *_ADMIN_LISTEN variable, found {admin_listen}")
        elif "admin" in ports:
            listen = values[admin_listen[0]]
            if listen != f"0.0.0.0:{ports['admin']}":
                self.fail(deployment, f"container {name}: {admin_listen[0]}={listen} does not serve admin port {ports['admin']}")

        # A gRPC server must listen on all interfaces at its grpc port, or the
        # Service reaches nothing.
        if "grpc" in ports:
            grpc_listen = [n for n in names if n.endswith("_LISTEN") and not n.endswith("_ADMIN_LISTEN")]
            if len(grpc_listen) != 1:
                self.fail(deployment, f"container {name}: expected one gRPC *_LISTEN variable, found {grpc_listen}")
            elif values[grpc_listen[0]] != f"0.0.0.0:{ports['grpc']}":
                self.fail(deployment, f"container {name}: {grpc_listen[0]}={values[grpc_listen[0]]} does not serve grpc port {ports['grpc']}")

        for variable in env:
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference is None:
                continue
            secret = self.find("Secret", reference["name"])
            if secret is not None:
                if reference["key"] not in secret.get("data", {}):
                    self.fail(deployment, f"{variable['name']} reads key {reference['key']}, which Secret {reference['name']} lacks")
            elif reference["name"] not in self.external_secrets:
                self.fail(deployment, f"{variable['name']} reads Secret {reference['name']}, which is neither rendered nor expected")

        if name == "notifier" and "SEISMO_DETECTORS" in values:
            self.check_detector_address(deployment, values["SEISMO_DETECTORS"])

        if self.services_dir:
            declared = declared_variables(self.services_dir, name)
            for unknown in sorted(set(names) - declared):
                self.fail(deployment, f"container {name}: {unknown} is read by no argument of services/{name}, so it has no effect")

    def check_detector_address(self, deployment, detectors):
        for address in detectors.split(","):
            url = urlparse(address if "://" in address else f"http://{address}")
            service = self.find("Service", url.hostname)
            if service is None:
                continue  # A detector outside this release.
            ports = [port["port"] for port in service["spec"]["ports"] if port["name"] == "grpc"]
            if url.port not in ports:
                self.fail(deployment, f"SEISMO_DETECTORS port {url.port} is not the grpc port {ports} of Service {url.hostname}")

    def check_service(self, service):
        selected = self.deployments_selected_by(service["spec"].get("selector", {}))
        if len(selected) != 1:
            self.fail(service, f"selects {len(selected)} Deployments, expected 1")
            return
        container_ports = {
            port["name"]
            for container in selected[0]["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in container_ports:
                self.fail(service, f"targetPort {port['targetPort']} is no container port of {selected[0]['metadata']['name']}")

    def check_hpa(self, hpa):
        target = hpa["spec"]["scaleTargetRef"]
        deployment = self.find(target["kind"], target["name"])
        if deployment is None:
            self.fail(hpa, f"scales {target['kind']}/{target['name']}, which is not rendered")
        elif "replicas" in deployment["spec"]:
            self.fail(hpa, f"Deployment {target['name']} sets replicas, which would undo each scaling step on upgrade")
        if hpa["spec"]["minReplicas"] > hpa["spec"]["maxReplicas"]:
            self.fail(hpa, "minReplicas exceeds maxReplicas")

    def check_pdb(self, pdb):
        if len(self.deployments_selected_by(pdb["spec"]["selector"]["matchLabels"])) != 1:
            self.fail(pdb, "does not select exactly one Deployment")

    def check_service_monitor(self, monitor):
        selector = monitor["spec"]["selector"]
        services = [
            service for service in self.of_kind("Service")
            if selector_matches(selector, service["metadata"]["labels"])
        ]
        if not services:
            self.fail(monitor, "selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            for service in services:
                if endpoint["port"] not in {port["name"] for port in service["spec"]["ports"]}:
                    self.fail(monitor, f"Service {service['metadata']['name']} has no port named {endpoint['port']}")
        scraped = {service["metadata"]["labels"].get("app.kubernetes.io/component") for service in services}
        for deployment in self.of_kind("Deployment"):
            component = deployment["metadata"]["labels"].get("app.kubernetes.io/component")
            if component not in scraped:
                self.fail(monitor, f"no selected Service exposes the admin port of {deployment['metadata']['name']}")

    def check_metrics_config(self, metrics_file):
        maps = [c for c in self.of_kind("ConfigMap") if "metrics.toml" in c.get("data", {})]
        if not maps:
            self.failures.append("no ConfigMap holds metrics.toml")
            return
        with open(metrics_file, encoding="utf-8") as file:
            expected = file.read()
        for config_map in maps:
            if config_map["data"]["metrics.toml"] != expected:
                self.fail(config_map, f"metrics.toml differs from {metrics_file}; copy the file into detector.metrics in values.yaml")

    def run(self, metrics_file):
        self.check_labels()
        for deployment in self.of_kind("Deployment"):
            self.check_deployment(deployment)
        for service in self.of_kind("Service"):
            self.check_service(service)
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            self.check_hpa(hpa)
        for pdb in self.of_kind("PodDisruptionBudget"):
            self.check_pdb(pdb)
        for monitor in self.of_kind("ServiceMonitor"):
            self.check_service_monitor(monitor)
        if metrics_file:
            self.check_metrics_config(metrics_file)
        return self.failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", help="output of helm template")
    parser.add_argument("--metrics-file", help="file the ConfigMap's metrics.toml must equal")
    parser.add_argument("--external-secret", action="append", default=[],
                        help="Secret name that pods may reference without the chart rendering it")
    parser.add_argument("--services-dir",
                        help="directory of the service crates; every variable a container sets "
                             "must be declared in services/<container>/src")
    args = parser.parse_args()

    with open(args.rendered, encoding="utf-8") as file:
        objects = [doc for doc in yaml.safe_load_all(file) if doc]
    if not objects:
        print(f"{args.rendered} contains no objects; pass the output of helm template", file=sys.stderr)
        return 1

    failures = Checker(objects, args.external_secret, args.services_dir).run(args.metrics_file)
    for failure in failures:
        print(f"FAIL {args.rendered}: {failure}", file=sys.stderr)
    kinds = sorted({obj["kind"] for obj in objects})
    print(f"{args.rendered}: {len(objects)} objects ({', '.join(kinds)}), {len(failures)} rule violations")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
