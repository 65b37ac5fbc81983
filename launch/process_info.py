"""Figures of the running process a deploy reports: its age (seconds since it started) and its peak
resident memory. Linux ``/proc`` only; elsewhere both are None."""
import os
import time


def process_age_s():
    """Seconds since this process started (10 ms resolution: the kernel counts its start in clock
    ticks since boot, compared here with CLOCK_BOOTTIME); None without /proc."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])    # field 22 of stat(5), counted after the ")" of the command name
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def peak_rss_mb():
    """Peak resident set size of this process in MiB (VmHWM); None without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None
