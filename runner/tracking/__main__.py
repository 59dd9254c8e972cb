"""``python -m runner.tracking``: the tracking worker, detached, at the lowest CPU priority.

The process the training process starts forks the worker and exits at once: the worker is then
no child of the training process, so a pool that kills its workers' process trees (joblib's
loky does, when one of them dies) cannot take with it the runs the worker still has to log.
It lives as long as its pipe: end-of-file ends it, once its runs are logged.

It runs beside training and must never slow it: at nice 19 the scheduler gives training the
cores whenever both want them, and the worker catches up when training waits or ends. The
priority is set, and a thread starts reading the training process's messages, before MLflow
is imported (most of the worker's start-up): a process that closes the pipe before sending a
run (``--help``, an untracked run) ends the worker at once.
"""

import os
import pickle
import queue
import sys
import threading

EOF_MARK = None


def read_stdin(inbox, started):
    """Every message into ``inbox`` as it arrives, then EOF_MARK (also after a cut-off one)."""
    while True:
        try:
            message = pickle.load(sys.stdin.buffer)
        except (EOFError, pickle.UnpicklingError, OSError):
            if not started.is_set():
                os._exit(0)  # nothing was asked of this worker
            inbox.put(EOF_MARK)
            return
        started.set()
        inbox.put(message)


def main():
    inbox, started = queue.Queue(), threading.Event()
    # Replies go to the real stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    threading.Thread(target=read_stdin, args=(inbox, started), daemon=True).start()

    from runner.tracking.collector import imports_without_collection

    with imports_without_collection():
        from runner.tracking import worker

    def reply(message):
        try:
            pickle.dump(message, replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()
        except OSError:  # the training process is gone; its runs are ended all the same
            pass

    return worker.main(inbox, reply)


if __name__ == "__main__":
    if os.fork():
        os._exit(0)
    os.nice(19)
    sys.exit(main())
