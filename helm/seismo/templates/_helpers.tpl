{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "seismo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-scoped base name of every object. Component objects append
`-<component>`, so the base is cut to 52 characters to leave room for
`-detector` within 63.
*/}}
{{- define "seismo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "seismo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels of every object.
*/}}
{{- define "seismo.labels" -}}
helm.sh/chart: {{ include "seismo.chart" . }}
{{ include "seismo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seismo
{{- end }}

{{- define "seismo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seismo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component's objects. Argument: dict with `root` (the chart
context) and `component` (ingest, detector, notifier, forecast or
experiments).
*/}}
{{- define "seismo.componentLabels" -}}
{{ include "seismo.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "seismo.componentSelectorLabels" -}}
{{ include "seismo.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of one component's objects. Argument: dict with `root` and `component`.
*/}}
{{- define "seismo.componentName" -}}
{{- printf "%s-%s" (include "seismo.fullname" .root) .component }}
{{- end }}

{{- define "seismo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "seismo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference. Argument: dict with `root` and `image` (the component's
`image` values).
*/}}
{{- define "seismo.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Name of the Secret with the bot token and the ClickHouse password.
*/}}
{{- define "seismo.secretName" -}}
{{- default (include "seismo.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
librdkafka properties as the services' KEY=VALUE,KEY=VALUE variable.
*/}}
{{- define "seismo.kafkaProperties" -}}
{{- $pairs := list }}
{{- range $key, $value := .Values.kafka.properties }}
{{- $pairs = append $pairs (printf "%s=%v" $key $value) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
Pod settings shared by every component: service account, security context,
pull secrets, scheduling and the /tmp volume. It ends with the `volumes`
list, so a caller can append more volumes right after it. Argument: dict
with `root` and `values` (the component's values).
*/}}
{{- define "seismo.podCommon" -}}
serviceAccountName: {{ include "seismo.serviceAccountName" .root }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- end }}

{{/*
Container settings shared by every component: image, security context,
probes, resources and the /tmp mount. It ends with the `volumeMounts` list,
so a caller can append more mounts right after it. Argument: dict with
`root` and `values`.
*/}}
{{- define "seismo.containerCommon" -}}
image: {{ include "seismo.image" (dict "root" .root "image" .values.image) }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
livenessProbe:
  {{- toYaml .values.livenessProbe | nindent 2 }}
readinessProbe:
  {{- toYaml .values.readinessProbe | nindent 2 }}
resources:
  {{- toYaml .values.resources | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/*
Checksum of the chart-made Secret, as a pod template annotation, so pods
restart when the token or password changes. Empty with `existingSecret`.
*/}}
{{- define "seismo.secretChecksum" -}}
{{- if not .Values.secret.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/*
Checks across values that the JSON schema cannot express.
*/}}
{{- define "seismo.validate" -}}
{{- $partitions := .Values.kafka.eventsTopicPartitions }}
{{- if and .Values.ingest.enabled $partitions }}
{{- $maxConsumers := .Values.ingest.replicaCount }}
{{- if .Values.ingest.autoscaling.enabled }}
{{- $maxConsumers = .Values.ingest.autoscaling.maxReplicas }}
{{- end }}
{{- if gt (int $maxConsumers) (int $partitions) }}
{{- fail (printf "ingest can run %d replicas but the events topic has %d partitions (kafka.eventsTopicPartitions), so some consumers would stay idle; lower ingest.autoscaling.maxReplicas or ingest.replicaCount to at most %d" (int $maxConsumers) (int $partitions) (int $partitions)) }}
{{- end }}
{{- end }}
{{- if and .Values.ingest.autoscaling.enabled (gt (int .Values.ingest.autoscaling.minReplicas) (int .Values.ingest.autoscaling.maxReplicas)) }}
{{- fail (printf "ingest.autoscaling.minReplicas (%d) exceeds ingest.autoscaling.maxReplicas (%d); lower the minimum or raise the maximum" (int .Values.ingest.autoscaling.minReplicas) (int .Values.ingest.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.forecast.autoscaling.enabled (gt (int .Values.forecast.autoscaling.minReplicas) (int .Values.forecast.autoscaling.maxReplicas)) }}
{{- fail (printf "forecast.autoscaling.minReplicas (%d) exceeds forecast.autoscaling.maxReplicas (%d); lower the minimum or raise the maximum" (int .Values.forecast.autoscaling.minReplicas) (int .Values.forecast.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.notifier.enabled (not .Values.detector.enabled) (not .Values.notifier.detectors) }}
{{- fail "notifier.enabled is true but detector.enabled is false, so the notifier has no detector to follow; set notifier.detectors to the detector gRPC addresses" }}
{{- end }}
{{- end }}
