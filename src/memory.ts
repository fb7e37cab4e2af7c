// What a controller keeps of each object between its reconciles, made explicit: one record per key,
// fields cleared as what they stand for is done, the record dropped once empty or forgotten.
export class Memory<R extends object> {
  private readonly records = new Map<string, R>();

  get(key: string): R | undefined {
    return this.records.get(key);
  }

  /** The key's record, made if there is none. */
  remember(key: string): R {
    let r = this.records.get(key);
    if (!r) this.records.set(key, (r = {} as R));
    return r;
  }

  /** Clears some fields; a record left with nothing in it goes. */
  clear(key: string, fields: readonly (keyof R)[]): void {
    const r = this.records.get(key);
    if (!r) return;
    for (const f of fields) r[f] = undefined as R[keyof R];
    if (Object.values(r).every((v) => v === undefined || v === false)) this.records.delete(key);
  }

  forget(key: string): void {
    this.records.delete(key);
  }

  entries(): IterableIterator<[string, R]> {
    return this.records.entries();
  }
}
