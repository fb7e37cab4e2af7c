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
import { NotLeaderError } from '../errors.js';
import type { Logger } from '../log.js';
import { getJSON, statusOf } from './http.js';
import { FIELD_MANAGER } from '../sources/objects.js';

export const HELM_GROUP = 'helm.toolkit.fluxcd.io';
export const HELM_VERSION = 'v2';
export const HELM_PLURAL = 'helmreleases';

// The API server sends only metadata, so a Secret's data never reaches hrto on this path.
const PARTIAL_OBJECT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface AnnotationPatch {
  metadata: { annotations: Record<string, string | null> };
}

/** A merge patch of labels and annotations; with resourceVersion it fails with 409 on a stale read. */
export interface MetadataPatch {
  metadata: {
    resourceVersion?: string;
    labels?: Record<string, string | null>;
    annotations?: Record<string, string | null>;
  };
}

export interface SourceMetadata {
  resourceVersion: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The API calls the reconcilers and event recorder make; an interface so tests can count them. */
export interface KubeWriter {
  patchRelease(namespace: string, name: string, patch: AnnotationPatch): Promise<void>;
  patchSource(kind: SourceKind, namespace: string, name: string, patch: MetadataPatch): Promise<void>;
  /** Metadata only (never a Secret's data); undefined when the object does not exist. */
  getSourceMetadata(kind: SourceKind, namespace: string, name: string): Promise<SourceMetadata | undefined>;
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
    async getSourceMetadata(kind, namespace, name) {
      const resource = kind === 'ConfigMap' ? 'configmaps' : 'secrets';
      try {
        const obj = await getJSON<{ metadata?: Partial<SourceMetadata> }>(
          kc,
          `/api/v1/namespaces/${namespace}/${resource}/${name}`,
          {},
          { accept: PARTIAL_OBJECT_METADATA },
        );
        return {
          resourceVersion: obj.metadata?.resourceVersion ?? '',
          uid: obj.metadata?.uid ?? '',
          labels: obj.metadata?.labels ?? {},
          annotations: obj.metadata?.annotations ?? {},
        };
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async createEvent(namespace, body) {
      await core.createNamespacedEvent({ namespace, body });
    },
    async patchEvent(namespace, name, body) {
      await core.patchNamespacedEvent({ namespace, name, body }, mergePatch);
    },
  };
}

/** Only the leader writes: every write checks leadership first, so a deposed leader stops at once. */
export function leaderOnly(writer: KubeWriter, isLeader: () => boolean): KubeWriter {
  const gate = <A extends unknown[]>(what: string, write: (...args: A) => Promise<void>) =>
    async (...args: A): Promise<void> => {
      if (!isLeader()) throw new NotLeaderError(`not the leader: ${what} not sent`);
      await write(...args);
    };
  return {
    patchRelease: gate('HelmRelease patch', writer.patchRelease.bind(writer)),
    patchSource: gate('source patch', writer.patchSource.bind(writer)),
    createEvent: gate('Event', writer.createEvent.bind(writer)),
    patchEvent: gate('Event', writer.patchEvent.bind(writer)),
    getSourceMetadata: writer.getSourceMetadata.bind(writer),
  };
}

/** --dry-run: objects are never patched; reads and Events (which say what would happen) go through. */
export function dryRun(writer: KubeWriter, log: Logger): KubeWriter {
  return {
    ...writer,
    patchRelease: (namespace, name, patch) => {
      log.debug({ target: `${namespace}/${name}`, patch }, 'dry run: not patching the HelmRelease');
      return Promise.resolve();
    },
    patchSource: (kind, namespace, name, patch) => {
      log.info({ source: `${kind}/${namespace}/${name}`, patch }, 'dry run: would patch the source');
      return Promise.resolve();
    },
  };
}
