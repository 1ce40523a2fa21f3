"""A sampling profile of one gunicorn worker (gthread) while it takes webhook deliveries.

Used as a gunicorn config that first loads the checkout's own gunicorn.conf.py, so the worker runs exactly
as it would (access log and all), then samples every thread's stack each millisecond
(sys._current_frames) and writes, at the worker's exit, the stacks of threads that were running Python
(not waiting in select/poll/locks):

    PROFILE_OUT=bench-out/prof.txt .venv/bin/gunicorn -c benchmarks/intake_profile.py ortto_bridge.wsgi \
        --bind 127.0.0.1:8123 --workers 1 --threads 8

then `python -m benchmarks.intake_profile bench-out/prof.txt` prints the self and inclusive shares.
"""

import collections
import os
import sys
import threading
import time

_conf = os.path.join(os.getcwd(), "gunicorn.conf.py")
if os.path.exists(_conf) and __name__ != "__main__":
    exec(compile(open(_conf).read(), _conf, "exec"))

_IDLE = ("select", "poll", "wait", "acquire", "_wait_for_tstate_lock", "accept", "sleep", "recv_into",
         "_worker", "get")
_samples = collections.Counter()
_stop = threading.Event()


def _frames(frame):
    stack = []
    while frame is not None:
        code = frame.f_code
        stack.append(f"{code.co_filename.rsplit('site-packages/', 1)[-1]}:{code.co_name}")
        frame = frame.f_back
    return tuple(reversed(stack))


def _sampler():
    me = threading.get_ident()
    while not _stop.is_set():
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            stack = _frames(frame)
            _samples[stack] += 1
        time.sleep(0.001)


_profiles = []


def post_fork(server, worker):
    if os.environ.get("PROFILE_MODE") == "cpu":
        # CPU time (time.thread_time) per function: the worker's main loop, and each request handled on a
        # pool thread (one cProfile per thread, enabled around ThreadWorker.handle).
        import cProfile

        from gunicorn.workers import gthread

        local = threading.local()
        handle = gthread.ThreadWorker.handle

        def profiled(self, conn):
            prof = getattr(local, "prof", None)
            if prof is None:
                prof = local.prof = cProfile.Profile(time.thread_time)
                _profiles.append(prof)
            prof.enable()
            try:
                return handle(self, conn)
            finally:
                prof.disable()

        gthread.ThreadWorker.handle = profiled
        main = cProfile.Profile(time.thread_time)
        _profiles.append(main)
        main.enable()
        return
    threading.Thread(target=_sampler, daemon=True).start()


def worker_exit(server, worker):
    _stop.set()
    out = os.environ.get("PROFILE_OUT", "profile.txt")
    if _profiles:
        import pstats

        for prof in _profiles:
            prof.disable()
        stats = pstats.Stats(_profiles[0])
        for prof in _profiles[1:]:
            stats.add(prof)
        stats.dump_stats(out)
        return
    with open(out, "w") as f:
        for stack, n in _samples.most_common():
            f.write(f"{n}\t{';'.join(stack)}\n")


def report(path, top=40):
    own, incl, total = collections.Counter(), collections.Counter(), 0
    for line in open(path):
        n, stack = line.rstrip("\n").split("\t")
        n, frames = int(n), stack.split(";")
        leaf = frames[-1].rsplit(":", 1)[-1]
        if leaf in _IDLE:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"busy samples: {total}")
    print("-- self --")
    for f, n in own.most_common(top):
        print(f"{100 * n / total:5.1f}%  {f}")
    print("-- inclusive --")
    for f, n in incl.most_common(top * 2):
        print(f"{100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    report(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40)
