"""What torch_mlp.py and torch_cnn.py share: how a step is timed and the peak RSS read."""
import resource
import time


def median_seconds(step):
    """The median time of `step()`: 5 warm-up calls, then as many timed calls as fit in
    about a second (at least 20, at most 20,000)."""
    for _ in range(5):
        step()
    t = time.perf_counter()
    step()
    once = time.perf_counter() - t
    n = max(20, min(20000, int(1.0 / once)))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[n // 2]


def peak_rss_kb():
    """This process's peak resident set size (kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
