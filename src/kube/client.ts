// Thin adapters for the writes hrto makes: merge patches of annotations, and Events.
import {
  CoreV1Api,
  CustomObjectsApi,
  type CoreV1Event,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { SourceKind } from '../sources/objects.js';
import { FIELD_MANAGER } from '../sources/objects.js';

export const HELM_GROUP = 'helm.toolkit.fluxcd.io';
export const HELM_VERSION = 'v2';
export const HELM_PLURAL = 'helmreleases';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface AnnotationPatch {
  metadata: { annotations: Record<string, string | null> };
}

/** The API calls the reconciler and event recorder need; an interface so tests can count them. */
export interface KubeWriter {
  patchRelease(namespace: string, name: string, patch: AnnotationPatch): Promise<void>;
  patchSource(kind: SourceKind, namespace: string, name: string, patch: AnnotationPatch): Promise<void>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
  patchEvent(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<void>;
}

export function kubeWriter(kc: KubeConfig): KubeWriter {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    async patchRelease(namespace, name, body) {
      await custom.patchNamespacedCustomObject(
        { group: HELM_GROUP, version: HELM_VERSION, plural: HELM_PLURAL, namespace, name, body, fieldManager: FIELD_MANAGER },
        mergePatch,
      );
    },
    async patchSource(kind, namespace, name, body) {
      const param = { namespace, name, body, fieldManager: FIELD_MANAGER };
      // The response (a Secret's data included) is dropped unread.
      if (kind === 'ConfigMap') await core.patchNamespacedConfigMap(param, mergePatch);
      else await core.patchNamespacedSecret(param, mergePatch);
    },
    async createEvent(namespace, body) {
      await core.createNamespacedEvent({ namespace, body });
    },
    async patchEvent(namespace, name, body) {
      await core.patchNamespacedEvent({ namespace, name, body }, mergePatch);
    },
  };
}
