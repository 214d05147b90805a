/** What a run produces, and how long it keeps its key taken after producing it. */
export interface FlightResult<T> {
  value: T;
  /**
   * Settles when the work behind `value` is finished (a download stored). Until then callers of
   * the same key still join this run instead of starting another.
   */
  hold?: Promise<unknown>;
}

/**
 * At most one run per key on this node: callers arriving while a run is in progress share its
 * result (or its error). A proxy uses it so N clients asking for the same uncached path cause
 * one upstream request.
 */
export class SingleFlight<T> {
  private readonly runs = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<FlightResult<T>>): Promise<T> {
    const current = this.runs.get(key);
    if (current) return current;
    const release = () => {
      if (this.runs.get(key) === flight) this.runs.delete(key);
    };
    const flight: Promise<T> = (async () => {
      await null; // `flight` is registered before the work can settle
      let r: FlightResult<T>;
      try {
        r = await work();
      } catch (e) {
        release();
        throw e;
      }
      if (r.hold) r.hold.then(release, release);
      else release();
      return r.value;
    })();
    this.runs.set(key, flight);
    return flight;
  }

  /** Keys with a run in progress. */
  get size(): number {
    return this.runs.size;
  }
}
