{{- define "hrto.name" -}}helmrelease-trigger-operator{{- end -}}

{{- define "hrto.labels" -}}
app.kubernetes.io/name: {{ include "hrto.name" . }}
app.kubernetes.io/part-of: helmrelease-trigger-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "hrto.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hrto.name" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{- /* What hrto does to sources, HelmReleases and Events; without Secrets when watchSecrets is false. */ -}}
{{- define "hrto.rules" }}
rules:
  # Watch labeled sources, record digests, read (metadata) and mark sources found through valuesFrom.
  - apiGroups: [""]
    resources: {{ if .Values.watchSecrets }}["configmaps", "secrets"]{{ else }}["configmaps"]{{ end }}
    verbs: ["get", "list", "watch", "patch"]
  # Watch HelmReleases and their valuesFrom; the trigger patch.
  - apiGroups: ["helm.toolkit.fluxcd.io"]
    resources: ["helmreleases"]
    verbs: ["get", "list", "watch", "patch"]
  # Triggered, TargetNotFound, InvalidReference, ... (patch: the count of a repeat).
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
{{- end }}
