// Thin adapters for the writes hrto makes: merge patches of annotations, and Events.
import type { CoreV1Event } from '@kubernetes/client-node';
import type { SourceKind } from '../sources/objects.js';
import { NotLeaderError } from '../errors.js';
import type { Logger } from '../log.js';
import { type KubeApi, MERGE_PATCH, statusOf } from './api.js';
import { FIELD_MANAGER } from '../sources/objects.js';

export const HELM_GROUP = 'helm.toolkit.fluxcd.io';
export const HELM_VERSION = 'v2';
export const HELM_PLURAL = 'helmreleases';

// The API server sends only metadata, so a Secret's data never reaches hrto on this path.
const PARTIAL_OBJECT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

export interface AnnotationPatch {
  metadata: { annotations: Record<string, string | null> };
}

/** A HelmRelease patch: the trigger's annotations, and for a hold spec.suspend; resourceVersion makes it conditional. */
export interface ReleasePatch {
  metadata: { annotations: Record<string, string | null>; resourceVersion?: string };
  spec?: { suspend: boolean };
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
  patchRelease(namespace: string, name: string, patch: ReleasePatch): Promise<void>;
  patchSource(kind: SourceKind, namespace: string, name: string, patch: MetadataPatch): Promise<void>;
  /** Metadata only (never a Secret's data); undefined when the object does not exist. */
  getSourceMetadata(kind: SourceKind, namespace: string, name: string): Promise<SourceMetadata | undefined>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
  patchEvent(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<void>;
}

const sourcePath = (kind: SourceKind, namespace: string, name: string): string =>
  `/api/v1/namespaces/${namespace}/${kind === 'ConfigMap' ? 'configmaps' : 'secrets'}/${name}`;

export function kubeWriter(api: KubeApi): KubeWriter {
  // Answers are dropped unread: asking for metadata only spares the API server serializing, and
  // hrto receiving and decrypting, the whole object (a HelmRelease's status, a source's data).
  const patch = (path: string, body: unknown, fieldManager?: string): Promise<void> =>
    api.send('PATCH', path, { body, contentType: MERGE_PATCH, accept: PARTIAL_OBJECT_METADATA, query: { fieldManager } });
  return {
    patchRelease: (namespace, name, body) =>
      patch(`/apis/${HELM_GROUP}/${HELM_VERSION}/namespaces/${namespace}/${HELM_PLURAL}/${name}`, body, FIELD_MANAGER),
    // The response (a Secret's data included) is dropped unread.
    patchSource: (kind, namespace, name, body) => patch(sourcePath(kind, namespace, name), body, FIELD_MANAGER),
    async getSourceMetadata(kind, namespace, name) {
      try {
        const obj = await api.json<{ metadata?: Partial<SourceMetadata> }>('GET', sourcePath(kind, namespace, name), { accept: PARTIAL_OBJECT_METADATA });
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
    createEvent: (namespace, body) => api.send('POST', `/api/v1/namespaces/${namespace}/events`, { body, accept: PARTIAL_OBJECT_METADATA }),
    patchEvent: (namespace, name, body) => patch(`/api/v1/namespaces/${namespace}/events/${name}`, body),
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

/**
 * Events off where hrto may not write them (the startup access check found it): they are dropped
 * here rather than sent to be refused, so a missing optional permission is one warning at start,
 * not a 403 per Event. Only Kubernetes Events: the EventRecorder still posts to --events-addr.
 */
export function withoutEvents(writer: KubeWriter, off: (namespace: string) => boolean): KubeWriter {
  return {
    ...writer,
    createEvent: (namespace, event) => (off(namespace) ? Promise.resolve() : writer.createEvent(namespace, event)),
    patchEvent: (namespace, name, patch) => (off(namespace) ? Promise.resolve() : writer.patchEvent(namespace, name, patch)),
  };
}
