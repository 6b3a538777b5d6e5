{{/*
Names and labels.
*/}}
{{- define "flexcord.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, with the chart name appended unless the release name already
contains it. Truncated to leave room for the "-gateway" style suffixes within 63 characters.
*/}}
{{- define "flexcord.fullname" -}}
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

{{- define "flexcord.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; with a component (dict "root" $ "component" "worker") for a role. */}}
{{- define "flexcord.labels" -}}
helm.sh/chart: {{ include "flexcord.chart" .root }}
{{ include "flexcord.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: flexcord
{{- end }}

{{- define "flexcord.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flexcord.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "flexcord.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flexcord.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flexcord.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Whether TLS to Temporal is on: asked for, or implied by a certificate source. */}}
{{- define "flexcord.temporalTLS" -}}
{{- $tls := .Values.temporal.tls }}
{{- if or $tls.enabled $tls.clientCert.existingSecret $tls.serverCA.existingSecret $tls.serverCA.existingConfigMap }}true{{ end }}
{{- end }}

{{/*
The workers' blob store (values blobs): an S3 bucket, a PersistentVolumeClaim, or else an
emptyDir per pod, mounted where the image's default store directory is (./data/blobs from the
working directory /home/nonroot, see deploy/Dockerfile).
*/}}
{{- define "flexcord.blobs.mountPath" -}}
/home/nonroot/data/blobs
{{- end }}

{{/* Whether the blobs go to an S3 bucket. */}}
{{- define "flexcord.blobs.s3" -}}
{{- if .Values.blobs.s3.bucket }}true{{ end }}
{{- end }}

{{/* Whether the blobs go to a PersistentVolumeClaim: asked for, or implied by existingClaim. */}}
{{- define "flexcord.blobs.persistent" -}}
{{- $p := .Values.blobs.persistence }}
{{- if or $p.enabled $p.existingClaim }}true{{ end }}
{{- end }}

{{/* The claim of the blob volume: existingClaim, else the one the chart creates. */}}
{{- define "flexcord.blobs.claimName" -}}
{{- default (printf "%s-blobs" (include "flexcord.fullname" .)) .Values.blobs.persistence.existingClaim }}
{{- end }}

{{/* FLEXCORD_PUBLIC_URL: publicURL, else https://<first host of the Kubernetes Ingress>. */}}
{{- define "flexcord.publicURL" -}}
{{- if .Values.publicURL }}
{{- .Values.publicURL }}
{{- else if and .Values.ingress.kubernetesIngress.enabled .Values.ingress.kubernetesIngress.hosts }}
{{- printf "https://%s" (first .Values.ingress.kubernetesIngress.hosts).host }}
{{- end }}
{{- end }}

{{/*
Checks that fail the render with one line naming the value. Included by the ConfigMap, which
every install renders.
*/}}
{{- define "flexcord.validate" -}}
{{- $v := .Values }}
{{- $_ := required "temporal.address is required: the Temporal frontend host:port, e.g. temporal-frontend.temporal.svc.cluster.local:7233 (Temporal's Helm chart) or the endpoint of a Temporal Cloud namespace" $v.temporal.address }}
{{- $secrets := list "DISCORD_TOKEN" "TWILIO_AUTH_TOKEN" "TWILIO_API_SECRET" "TEMPORAL_API_KEY" "TEMPORAL_TLS_CLIENT_KEY_DATA" "FLEXCORD_S3_ACCESS_KEY" "FLEXCORD_S3_SECRET_KEY" }}
{{- $derived := dict
      "TEMPORAL_ADDRESS" "temporal.address"
      "TEMPORAL_NAMESPACE" "temporal.namespace"
      "TEMPORAL_TLS" "temporal.tls.enabled"
      "TEMPORAL_TLS_CLIENT_CERT_PATH" "temporal.tls.clientCert"
      "TEMPORAL_TLS_CLIENT_KEY_PATH" "temporal.tls.clientCert"
      "TEMPORAL_TLS_SERVER_CA_CERT_PATH" "temporal.tls.serverCA"
      "TEMPORAL_TLS_SERVER_NAME" "temporal.tls.serverName"
      "OTEL_EXPORTER_OTLP_ENDPOINT" "telemetry.otlpEndpoint"
      "FLEXCORD_PUBLIC_URL" "publicURL"
      "FLEXCORD_HTTP_ADDR" "worker.port, ingress.port and gateway.port"
      "DISCORD_SHARD_ID" "gateway.shardCount"
      "DISCORD_SHARD_COUNT" "gateway.shardCount"
      "FLEXCORD_BLOB_DIR" "blobs.persistence"
      "FLEXCORD_S3_BUCKET" "blobs.s3.bucket"
      "FLEXCORD_S3_ENDPOINT" "blobs.s3.endpoint"
      "FLEXCORD_S3_REGION" "blobs.s3.region"
      "FLEXCORD_S3_PREFIX" "blobs.s3.prefix"
      "FLEXCORD_S3_INSECURE" "blobs.s3.insecure" }}
{{- range $name, $_ := $v.config }}
{{- if or (has $name $secrets) (hasPrefix "FLEXCORD_FEED_SECRET_" $name) }}
{{- fail (printf "config.%s is a secret and must not be in values: put it in the Secret named by %s" $name (ternary "blobs.s3.existingSecret" "existingSecret" (hasPrefix "FLEXCORD_S3_" $name))) }}
{{- end }}
{{- if hasKey $derived $name }}
{{- fail (printf "config.%s is set by the chart: use %s instead" $name (get $derived $name)) }}
{{- end }}
{{- end }}
{{- range $where, $list := dict "extraEnv" $v.extraEnv "worker.extraEnv" $v.worker.extraEnv "ingress.extraEnv" $v.ingress.extraEnv "gateway.extraEnv" $v.gateway.extraEnv }}
{{- range $list }}
{{- if and (or (has .name $secrets) (hasPrefix "FLEXCORD_FEED_SECRET_" .name)) (hasKey . "value") }}
{{- fail (printf "%s: %s is a secret: give it valueFrom.secretKeyRef (or put it in existingSecret), not value" $where .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.temporal.tls.serverCA.existingSecret $v.temporal.tls.serverCA.existingConfigMap }}
{{- fail "temporal.tls.serverCA: set existingSecret or existingConfigMap, not both" }}
{{- end }}
{{- range $role := list "worker" "ingress" }}
{{- $r := get $v $role }}
{{- if and $r.autoscaling.enabled (not (and $r.resources $r.resources.requests $r.resources.requests.cpu)) }}
{{- fail (printf "%s.autoscaling scales on CPU utilization and needs %s.resources.requests.cpu" $role $role) }}
{{- end }}
{{- end }}
{{- if and $v.gateway.enabled (lt (int $v.gateway.shardCount) 1) }}
{{- fail "gateway.shardCount must be at least 1" }}
{{- end }}
{{- $ver := $v.worker.versioning }}
{{- if and $ver (ne (empty $ver.deploymentName) (empty $ver.buildId)) }}
{{- fail "worker.versioning: set deploymentName and buildId, or neither" }}
{{- end }}
{{- $s3 := $v.blobs.s3 }}
{{- if $s3.bucket }}
{{- if not $s3.existingSecret }}
{{- fail "blobs.s3.bucket needs blobs.s3.existingSecret: the Secret with the bucket's access key and secret key" }}
{{- end }}
{{- if include "flexcord.blobs.persistent" . }}
{{- fail "blobs: set s3.bucket or persistence (enabled or existingClaim), not both" }}
{{- end }}
{{- else }}
{{- range $key := list "endpoint" "region" "prefix" "insecure" "existingSecret" }}
{{- if get $s3 $key }}
{{- fail (printf "blobs.s3.%s is set but blobs.s3.bucket is not: set the bucket to keep blobs in S3, or leave blobs.s3 empty" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The pod template of a role. Called with a dict:
  root       the chart's top-level context ($)
  component  worker | ingress | gateway
  role       the role's values (.Values.worker, …)
  args       the command line after the binary, e.g. (list "ingress")
  port       the HTTP port the role listens on, or 0 for none
  env        role-specific EnvVars (a list of dicts), placed before extraEnv
  volumes    role-specific Volumes (a list of dicts), placed before extraVolumes
  mounts     role-specific VolumeMounts (a list of dicts), placed before extraVolumeMounts
*/}}
{{- define "flexcord.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $role := .role }}
{{- $tls := $v.temporal.tls }}
{{- $env := concat (list) (.env | default list) }}
{{- if $v.temporal.apiKey.existingSecret }}
{{- $env = append $env (dict "name" "TEMPORAL_API_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $v.temporal.apiKey.existingSecret "key" $v.temporal.apiKey.key))) }}
{{- end }}
{{- $env = concat $env ($v.extraEnv | default list) ($role.extraEnv | default list) }}
{{- $envFrom := list (dict "configMapRef" (dict "name" (include "flexcord.fullname" $root))) }}
{{- if $v.existingSecret }}
{{- $envFrom = append $envFrom (dict "secretRef" (dict "name" $v.existingSecret)) }}
{{- end }}
{{- $envFrom = concat $envFrom ($v.extraEnvFrom | default list) -}}
metadata:
  labels:
    {{- include "flexcord.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
    app.kubernetes.io/part-of: flexcord
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $role.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Restart the pods when the settings change.
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $role.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "flexcord.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $role.terminationGracePeriodSeconds | default 30 }}
  containers:
    - name: {{ .component }}
      image: {{ include "flexcord.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        {{- toYaml (concat .args ($role.extraArgs | default list)) | nindent 8 }}
      {{- with $v.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .port }}
      ports:
        - name: http
          containerPort: {{ .port }}
          protocol: TCP
      {{- end }}
      envFrom:
        {{- toYaml $envFrom | nindent 8 }}
      {{- with $env }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $role.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $role.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $role.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $tls.clientCert.existingSecret }}
        - name: temporal-client-cert
          mountPath: {{ printf "%s/client" $tls.mountPath }}
          readOnly: true
        {{- end }}
        {{- if or $tls.serverCA.existingSecret $tls.serverCA.existingConfigMap }}
        - name: temporal-server-ca
          mountPath: {{ printf "%s/ca" $tls.mountPath }}
          readOnly: true
        {{- end }}
        {{- with .mounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- with $tls.clientCert.existingSecret }}
    - name: temporal-client-cert
      secret:
        secretName: {{ . }}
        defaultMode: 0440
        items:
          - key: {{ $tls.clientCert.certKey }}
            path: tls.crt
          - key: {{ $tls.clientCert.keyKey }}
            path: tls.key
    {{- end }}
    {{- if $tls.serverCA.existingSecret }}
    - name: temporal-server-ca
      secret:
        secretName: {{ $tls.serverCA.existingSecret }}
        defaultMode: 0444
        items:
          - key: {{ $tls.serverCA.key }}
            path: ca.crt
    {{- else if $tls.serverCA.existingConfigMap }}
    - name: temporal-server-ca
      configMap:
        name: {{ $tls.serverCA.existingConfigMap }}
        defaultMode: 0444
        items:
          - key: {{ $tls.serverCA.key }}
            path: ca.crt
    {{- end }}
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with ($role.nodeSelector | default $v.nodeSelector) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($role.tolerations | default $v.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($role.affinity | default $v.affinity) }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
