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
