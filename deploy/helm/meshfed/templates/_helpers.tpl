{{/* Names, labels and addresses shared by the templates. */}}

{{- define "meshfed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshfed.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "meshfed.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshfed.labels" -}}
helm.sh/chart: {{ include "meshfed.chart" . }}
{{ include "meshfed.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "meshfed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshfed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The StatefulSet of the servers; its pods are <server>-0, <server>-1, ... */}}
{{- define "meshfed.server" -}}
{{- printf "%s-server" (include "meshfed.fullname" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The headless Service that gives each server pod its DNS name. */}}
{{- define "meshfed.serverHeadless" -}}
{{- printf "%s-headless" (include "meshfed.server" .) -}}
{{- end -}}

{{/* Stable DNS name of server pod $ordinal: (list $ $ordinal). */}}
{{- define "meshfed.serverPodHost" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "meshfed.server" $) (index . 1) (include "meshfed.serverHeadless" $) $.Release.Namespace $.Values.clusterDomain -}}
{{- end -}}

{{/* The client Service's fully qualified name. */}}
{{- define "meshfed.serverServiceHost" -}}
{{- printf "%s.%s.svc.%s" (include "meshfed.server" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* --initial-cluster: id=advertised-raft-address for every replica. */}}
{{- define "meshfed.initialCluster" -}}
{{- $ := . -}}
{{- $members := list -}}
{{- range $i := until (int .Values.server.replicas) -}}
{{- $members = append $members (printf "%s-%d=%s:%d" (include "meshfed.server" $) $i (include "meshfed.serverPodHost" (list $ $i)) (int $.Values.server.ports.raft)) -}}
{{- end -}}
{{- join "," $members -}}
{{- end -}}

{{/* Agent name of an agents entry: (list $ $agent). */}}
{{- define "meshfed.agentName" -}}
{{- $ := index . 0 -}}
{{- $a := index . 1 -}}
{{- default (printf "%s-agent-%s" (include "meshfed.fullname" $) $a.cluster) $a.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshfed.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "meshfed.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "meshfed.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "meshfed.agentImage" -}}
{{- printf "%s:%s" .Values.agentImage.repository (default .Chart.AppVersion .Values.agentImage.tag) -}}
{{- end -}}

{{/* Refusals of values that cannot work, named by their key. */}}
{{- define "meshfed.validate" -}}
{{- $r := int .Values.server.replicas -}}
{{- if or (lt $r 1) (eq (mod $r 2) 0) -}}
{{- fail (printf "server.replicas: %d is not an odd count of Raft voters: use 1, 3 or 5" $r) -}}
{{- end -}}
{{- if and .Values.server.auth (not .Values.tls.enabled) -}}
{{- fail "server.auth needs tls.enabled: agents prove their cluster with certificates and tokens must not cross the network in clear" -}}
{{- end -}}
{{- if not (has .Values.tls.source (list "secrets" "certManager")) -}}
{{- fail (printf "tls.source: %q is neither secrets nor certManager" .Values.tls.source) -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $a := .Values.agents -}}
{{- if not $a.cluster -}}
{{- fail (printf "agents[%d].cluster: required, the name of the Pulsar cluster's Cluster object" $i) -}}
{{- end -}}
{{- $n := include "meshfed.agentName" (list $ $a) -}}
{{- if hasKey $seen $n -}}
{{- fail (printf "agents[%d].name: %q is used twice: an agent's name is its identity, give each entry its own" $i $n) -}}
{{- end -}}
{{- $_ := set $seen $n true -}}
{{- end -}}
{{- end -}}

{{/* The Pulsar credential files: key of credentials => file name under /etc/meshfed/pulsar. */}}
{{- define "meshfed.pulsarFiles" -}}
token: token
oauth2Key: oauth2-credentials.json
tlsCert: tls.crt
tlsKey: tls.key
ca: ca.crt
password: password
{{- end -}}
