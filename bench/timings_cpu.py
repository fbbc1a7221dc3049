#!/usr/bin/env python3
"""Runs a command (an `engine generate ... --timings`), echoes its stderr lines, adding the process's CPU time
(user + sys, from /proc/PID/stat) at each 'timing:' line and its increase since the previous one, so a phase's CPU
time is known on a machine too loaded for wall times; at the end the CPU time and peak RSS (wait4's rusage, the
figure /usr/bin/time -v reports). Linux only. Usage: python3 bench/timings_cpu.py dotnet engine.dll generate ..."""
import os, subprocess, sys, time
tick = os.sysconf("SC_CLK_TCK")
p = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, bufsize=1)
start = time.time()
def cpu():
    try:
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick
    except OSError:
        return float("nan")
last = 0.0
for line in p.stderr:
    if line.startswith("timing:"):
        c = cpu()
        print(f"{line.rstrip()}  [cpu {c:.1f} s, +{c - last:.1f} s since the previous line, wall {time.time() - start:.1f} s, load {open('/proc/loadavg').read().split()[0]}]", flush=True)
        last = c
    else:
        print(line.rstrip(), flush=True)
_, status, ru = os.wait4(p.pid, 0)
print(f"exit {os.waitstatus_to_exitcode(status)}; user {ru.ru_utime:.1f} s, sys {ru.ru_stime:.1f} s, wall {time.time() - start:.1f} s, peak RSS {ru.ru_maxrss} kB", flush=True)
