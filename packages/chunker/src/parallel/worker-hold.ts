import type { Worker } from 'node:worker_threads';

/**
 * Settles when `worker` runs JavaScript ('online'), or can never (an error or exit before
 * that, which its owner reports through its own listeners). Listen from the Worker's
 * creation: 'online' fires once.
 */
function whenOnline(worker: Worker): Promise<void> {
  return new Promise<void>((settle) => {
    const done = (): void => {
      worker.off('online', done);
      worker.off('error', done);
      worker.off('exit', done);
      settle();
    };
    worker.once('online', done);
    worker.once('error', done);
    worker.once('exit', done);
  });
}

/**
 * A pool worker's hold on its process: held (ref) while it starts and while it has work,
 * let go (unref) once it is started and idle, so an idle pool whose owner forgot close()
 * does not keep a CLI process alive, while a caller awaiting the worker's start or its
 * answers is never left with an empty event loop (Node would end the process, exit code
 * 0, with the await still pending).
 *
 * Make it after the worker's 'message' listener: attaching one refs the worker's port
 * again. Before this, the pools unref'd first and listened after, so every worker stayed
 * held until its first job's answer, and an encode pool started early but never given a
 * chunk (a later day's backup with no new chunk) held the process ~2 s past its end.
 */
export class WorkerHold {
  /** Settles once the worker has started (or failed to). */
  readonly online: Promise<void>;
  private started = false;
  private busy = false;

  constructor(private readonly worker: Worker) {
    worker.ref();
    this.online = whenOnline(worker).then(() => {
      this.started = true;
      this.apply();
    });
  }

  /** The pool's count of the worker's unanswered jobs, after each send and each answer. */
  jobs(count: number): void {
    this.busy = count > 0;
    this.apply();
  }

  private apply(): void {
    if (this.busy || !this.started) this.worker.ref();
    else this.worker.unref();
  }
}
