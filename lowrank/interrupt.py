"""Ctrl-C reaches Snakemake's main thread at once. Python runs signal handlers only in the main thread, but the
kernel may hand a SIGINT sent to the process (the terminal's Ctrl-C) to any of its threads: seen on this project's
machines whenever other threads start subprocesses (the SLURM executor's status and submission threads run
squeue/sbatch). The handler then only marks the signal; Snakemake's main thread, blocked until a job finishes, raises
KeyboardInterrupt (and cancels the jobs) only when the next job ends, e.g. a training job run to its end. A watcher
thread learns of every SIGINT, whichever thread took it, through signal.set_wakeup_fd, and interrupts the main
thread's wait with a no-op signal, upon which it handles the marked SIGINT."""

from __future__ import annotations

import signal
import socket
import threading

WAKE = signal.SIGURG  # ignored by default; given a no-op handler, it only interrupts the main thread's wait
_wakeup: tuple[socket.socket, socket.socket] | None = None  # the watcher's socket pair, kept open; once per process
_ctrl_c = threading.Event()  # set by the watcher at the first SIGINT


def ctrl_c_seen() -> bool:
    """Has this process received a SIGINT (the user's Ctrl-C) since the watcher started?"""
    return _ctrl_c.is_set()


def forward_ctrl_c_to_main_thread() -> bool:
    """Start the watcher; False (nothing changed) off the main thread or when another wakeup fd is in use."""
    global _wakeup
    if _wakeup is not None:  # Snakemake may parse the workflow several times in one process
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    receive, send = socket.socketpair()
    send.setblocking(False)
    other = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    if other != -1:  # someone else's (an asyncio loop handling signals): give it back
        signal.set_wakeup_fd(other)
        receive.close(), send.close()
        return False
    signal.signal(WAKE, lambda signum, frame: None)
    main = threading.main_thread().ident

    def watch() -> None:
        while data := receive.recv(64):  # one byte per signal caught, its number
            if signal.SIGINT in data:
                _ctrl_c.set()
                signal.pthread_kill(main, WAKE)

    threading.Thread(target=watch, name="ctrl-c-to-main-thread", daemon=True).start()
    _wakeup = receive, send
    return True
