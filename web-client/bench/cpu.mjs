// Machine load for the benches: the whole machine's busy share and this
// process tree's between two snapshots of /proc, and the load average.
import { readFileSync, readdirSync } from 'node:fs';

export function cpuSnapshot() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // Gone meanwhile.
    }
  }
  const ours = new Map();
  for (const [pid, p] of procs) {
    for (let q = pid, hops = 0; hops < 64 && q > 1; hops++, q = procs.get(q)?.ppid ?? 0) {
      if (q === process.pid) {
        ours.set(pid, p.ticks);
        break;
      }
    }
  }
  return {
    idle: line[3] + (line[4] ?? 0), total: line.slice(0, 8).reduce((a, b) => a + b, 0), ours,
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
}

export function cpuBusy(a, b) {
  const total = b.total - a.total;
  let ours = 0;
  for (const [pid, t] of b.ours) ours += t - (a.ours.get(pid) ?? 0);
  const busy = total - (b.idle - a.idle);
  return {
    machinePct: Math.round((busy / total) * 100),
    oursPct: Math.round((ours / total) * 100),
    othersPct: Math.max(0, Math.round(((busy - ours) / total) * 100)),
    loadavgBefore: a.loadavg,
    loadavgAfter: b.loadavg,
  };
}
