// Kubernetes Events, aggregated like client-go's recorder: a repeat of the same event on the same
// object bumps its count instead of creating a new object, so a stuck source cannot flood etcd.
import type { CoreV1Event } from '@kubernetes/client-node';
import { type FluxEventPoster, toFluxEvent } from './flux-events.js';
import { HELM_GROUP, HELM_VERSION, type KubeWriter } from './kube/client.js';
import { statusOf } from './kube/api.js';
import type { Logger } from './log.js';

export const COMPONENT = 'helmrelease-trigger-operator';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

export type EventType = 'Normal' | 'Warning';

/** A HelmRelease as the object an Event is about. */
export function helmReleaseObject(release: { namespace: string; name: string; uid: string }): InvolvedObject {
  return { apiVersion: `${HELM_GROUP}/${HELM_VERSION}`, kind: 'HelmRelease', namespace: release.namespace, name: release.name, uid: release.uid };
}

interface Recorded {
  name: string;
  count: number;
}

export interface EmitOptions {
  /**
   * The message names its moment (a trigger's requestedAt), so the Event never repeats: it is
   * created without being tracked, where it would only push out Events that do repeat.
   */
  unique?: boolean;
}

const MAX_TRACKED = 4096;
const MAX_MESSAGE = 1024;

export class EventRecorder {
  private readonly seen = new Map<string, Recorded>();
  private sequence = 0;

  constructor(
    private readonly writer: KubeWriter,
    private readonly log: Logger,
    private readonly host: string,
    /** --events-addr: each Event also goes to Flux's notification-controller. */
    private readonly flux?: { poster: FluxEventPoster; keyDomain: string },
  ) {}

  /**
   * Fire and forget: an Event that cannot be written is logged, never fails a reconcile. `metadata`
   * (short names: source, digest) travels with the Flux event, under hrto's key domain.
   */
  emit(object: InvolvedObject, type: EventType, reason: string, message: string, metadata: Record<string, string> = {}, { unique = false }: EmitOptions = {}): void {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
    this.write(object, type, reason, text, unique).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, reason, object: `${object.kind}/${object.namespace}/${object.name}` }, 'cannot write Event');
    });
    if (this.flux) {
      const who = { keyDomain: this.flux.keyDomain, controller: COMPONENT, instance: this.host, now: new Date() };
      this.flux.poster.post(toFluxEvent(object, type, reason, text, metadata, who));
    }
  }

  private async write(object: InvolvedObject, type: EventType, reason: string, message: string, unique: boolean): Promise<void> {
    const key = unique ? undefined : [object.uid, object.namespace, object.name, type, reason, message].join('\u0000');
    const now = new Date();
    const previous = key === undefined ? undefined : this.seen.get(key);
    if (key !== undefined && previous) {
      previous.count++;
      this.seen.delete(key);
      this.seen.set(key, previous);
      try {
        await this.writer.patchEvent(object.namespace, previous.name, { count: previous.count, lastTimestamp: now });
        return;
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        // Expired (Events live an hour by default): write a new one.
      }
    }
    const name = `${object.name.slice(0, 200)}.${(Date.now() * 1000 + (this.sequence++ % 1000)).toString(16)}`;
    const event: CoreV1Event = {
      metadata: { name, namespace: object.namespace },
      involvedObject: { ...object },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: COMPONENT, host: this.host },
      reportingComponent: COMPONENT,
      reportingInstance: this.host,
    };
    await this.writer.createEvent(object.namespace, event);
    if (key === undefined) return;
    this.seen.set(key, { name, count: 1 });
    if (this.seen.size > MAX_TRACKED) this.seen.delete(this.seen.keys().next().value!);
  }
}
